package fsm

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// createLogs encodes n CREATE_KEY entries shaped like production ones: a
// 36-character uuid id, one version with a 40-byte wrapped blob, no
// description or tags. withRequestIDs adds a client request id to each.
func createLogs(tb testing.TB, n int, withRequestIDs bool) []entry {
	logs := make([]entry, n)
	blob := make([]byte, 40)
	for i := range logs {
		id := uuid()
		_, _ = rand.Read(blob)
		k := &fsmpb.Key{
			Id: id, Spec: specSymmetric, Usage: usageEncrypt, State: enabled, Origin: 1, ProtectionLevel: 1,
			Versions: []*fsmpb.KeyVersion{{Version: 1, WrappedMaterial: blob, DomainKeyVersion: 1, CreatedUnixNano: t0.UnixNano()}},
		}
		reqID := ""
		if withRequestIDs {
			reqID = uuid()
		}
		c, err := NewCommand(tCreate, &fsmpb.CreateKey{Key: k}, reqID, t0.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			tb.Fatal(err)
		}
		b, err := EncodeCommand(c)
		if err != nil {
			tb.Fatal(err)
		}
		logs[i] = entry{index: uint64(i + 1), data: b}
	}
	return logs
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func BenchmarkApplyCreateKey(b *testing.B) {
	for _, withIDs := range []bool{false, true} {
		b.Run(fmt.Sprintf("request-ids=%v", withIDs), func(b *testing.B) {
			logs := createLogs(b, b.N, withIDs)
			f := New(nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := f.Apply(logs[i].index, logs[i].data); res.GetErrorCode() != "" {
					b.Fatal(res)
				}
			}
		})
	}
}

// heapPerKey applies logs to a fresh FSM and returns the retained heap per
// key. The logs are dropped first so that only the FSM's state is counted.
func heapPerKey(tb testing.TB, logs []entry) float64 {
	n := len(logs)
	f := New(nil)
	before := liveHeap()
	for i, l := range logs {
		f.Apply(l.index, l.data)
		logs[i] = entry{} // raft drops applied entries from memory too
	}
	after := liveHeap()
	if f.KeyCount() != n {
		tb.Fatalf("%d keys applied, want %d", f.KeyCount(), n)
	}
	runtime.KeepAlive(f)
	return float64(after-before) / float64(n)
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryPerKey builds 100,000 SYMMETRIC_DEFAULT keys and reports
// the resident bytes per key (target < 2 KiB). Run with -benchtime=1x.
func BenchmarkMemoryPerKey(b *testing.B) {
	for _, withIDs := range []bool{false, true} {
		b.Run(fmt.Sprintf("request-ids=%v", withIDs), func(b *testing.B) {
			var perKey float64
			for range b.N {
				b.StopTimer()
				logs := createLogs(b, 100_000, withIDs)
				b.StartTimer()
				perKey = heapPerKey(b, logs)
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}

// TestMemoryPerKey keeps the memory target from regressing, on fewer keys
// than the benchmark so that it stays quick under -race.
func TestMemoryPerKey(t *testing.T) {
	const target = 2048
	perKey := heapPerKey(t, createLogs(t, 20_000, true))
	t.Logf("%.0f B/key (with request ids)", perKey)
	if perKey >= target {
		t.Fatalf("%.0f B/key, want < %d", perKey, target)
	}
}
