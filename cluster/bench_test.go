package cluster_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiankms/meridian/cluster/clustertest"
)

// BenchmarkApply measures committed CREATE_KEY commands per second on a
// 3-node cluster with 64 concurrent writers, proposing on the leader and
// forwarding from a follower.
func BenchmarkApply(b *testing.B) {
	c := clustertest.StartCluster(b, 3)
	leader := c.Leader()
	for _, tc := range []struct {
		name string
		via  *clustertest.Node
	}{{"leader", leader}, {"follower", follower(c, leader)}} {
		b.Run(tc.name, func(b *testing.B) {
			var seq atomic.Uint64
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 writers in all
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("k-bench-%s-%d", tc.name, seq.Add(1))
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					res, err := tc.via.Apply(ctx, createKey(b, id))
					cancel()
					if err != nil || res.GetErrorCode() != "" {
						b.Errorf("create %s: %v %v", id, res, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
