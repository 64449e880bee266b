package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/meridiankms/meridian/client"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		kind Kind
		err  error
		want Outcome
	}{
		{EnableKey, nil, Ok},
		{Encrypt, nil, Ok},
		{EnableKey, &client.Error{Code: codes.FailedPrecondition, Exception: string(client.InvalidState)}, Failed},
		{DisableKey, &client.Error{Code: codes.NotFound, Exception: string(client.NotFound)}, Failed},
		{CreateKey, &client.Error{Code: codes.InvalidArgument, Exception: string(client.Validation)}, Failed},
		{CreateKey, &client.Error{Code: codes.InvalidArgument}, Failed},
		{CreateKey, &client.Error{Code: codes.Unavailable}, Unknown},
		{CreateKey, &client.Error{Code: codes.Unavailable, Exception: string(client.Unavailable)}, Unknown},
		{DisableKey, &client.Error{Code: codes.DeadlineExceeded}, Unknown},
		{DisableKey, &client.Error{Code: codes.Canceled}, Unknown},
		{RotateKeyOnDemand, &client.Error{Code: codes.Internal, Exception: string(client.Internal)}, Unknown},
		{RotateKeyOnDemand, fmt.Errorf("dial: %w", context.DeadlineExceeded), Unknown},
		{RotateKeyOnDemand, errors.New("connection reset"), Unknown},
		// Reads have no effect: any error is a definite failure.
		{DescribeKey, &client.Error{Code: codes.DeadlineExceeded}, Failed},
		{Encrypt, &client.Error{Code: codes.Unavailable}, Failed},
		{Decrypt, errors.New("connection reset"), Failed},
	}
	for _, c := range cases {
		if got := Classify(c.kind, c.err); got != c.want {
			t.Errorf("Classify(%s, %v) = %q, want %q", c.kind, c.err, got, c.want)
		}
	}
}

func TestErrorName(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&client.Error{Code: codes.FailedPrecondition, Exception: "DisabledException"}, "DisabledException"},
		{fmt.Errorf("x: %w", &client.Error{Code: codes.Unavailable}), "Unavailable"},
		{context.DeadlineExceeded, "DeadlineExceeded"},
		{context.Canceled, "Canceled"},
		{errors.New("boom"), "Unknown"},
	}
	for _, c := range cases {
		if got := ErrorName(c.err); got != c.want {
			t.Errorf("ErrorName(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder()
	const clients, each = 8, 50
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h := r.Invoke(c, DisableKey, fmt.Sprintf("k-%d", i), Input{RequestID: "r"})
				var err error
				if i%3 == 0 {
					err = &client.Error{Code: codes.Unavailable}
				}
				if cerr := r.Complete(h, Output{Node: "n1"}, err); cerr != nil {
					t.Error(cerr)
				}
			}
		}()
	}
	wg.Wait()
	h := r.History()
	if len(h.Ops) != clients*each {
		t.Fatalf("got %d ops, want %d", len(h.Ops), clients*each)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	unknown := 0
	for _, op := range h.Ops {
		if op.Outcome == Unknown {
			unknown++
			if op.Output.Error != "Unavailable" {
				t.Errorf("op %d error %q, want Unavailable", op.Index, op.Output.Error)
			}
		}
	}
	if want := clients * ((each + 2) / 3); unknown != want {
		t.Errorf("%d unknown ops, want %d", unknown, want)
	}
}

func TestRecorderHandles(t *testing.T) {
	r := NewRecorder()
	w := r.Invoke(1, EnableKey, "k", Input{})
	rd := r.Invoke(2, DescribeKey, "k", Input{})
	done := r.Invoke(3, CreateKey, "", Input{})
	if err := r.Complete(done, Output{KeyID: "k2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Complete(done, Output{}, nil); !errors.Is(err, ErrCompleted) {
		t.Errorf("second Complete: %v, want ErrCompleted", err)
	}
	if err := r.Complete(Handle(99), Output{}, nil); !errors.Is(err, ErrBadHandle) {
		t.Errorf("Complete(99): %v, want ErrBadHandle", err)
	}
	if err := r.Complete(Handle(-1), Output{}, nil); !errors.Is(err, ErrBadHandle) {
		t.Errorf("Complete(-1): %v, want ErrBadHandle", err)
	}
	h := r.History()
	if got := h.Ops[w].Outcome; got != Unknown {
		t.Errorf("pending write closed as %q, want unknown", got)
	}
	if got := h.Ops[rd].Outcome; got != Failed {
		t.Errorf("pending read closed as %q, want failed", got)
	}
	if h.Ops[w].Complete != h.End {
		t.Errorf("pending write completes at %v, want end %v", h.Ops[w].Complete, h.End)
	}
	if got := h.Ops[done].Key(); got != "k2" {
		t.Errorf("Key() = %q, want k2", got)
	}
	// The recorder keeps the pending op open: a later Complete still works.
	if err := r.Complete(w, Output{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	r := NewRecorder()
	h1 := r.Invoke(1, Encrypt, "alias/a", Input{PlaintextHash: HashPlaintext([]byte("p")), Context: map[string]string{"a": "b"}})
	if err := r.Complete(h1, Output{KeyID: "k", KeyVersion: 2, Ciphertext: []byte{0, 1, 2}, Node: "r1n1"}, nil); err != nil {
		t.Fatal(err)
	}
	h := r.History()
	path := filepath.Join(t.TempDir(), "h.json")
	if err := h.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := h.Encode(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("round trip differs:\n%s\n%s", a.String(), b.String())
	}
	if !got.Start.Equal(h.Start) || got.Ops[0].Invoke != h.Ops[0].Invoke {
		t.Errorf("times not preserved")
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]string{
		"not json":       `{`,
		"unknown field":  `{"ops":[],"bogus":1}`,
		"bad index":      `{"end_ns":10,"ops":[{"index":1,"kind":"CreateKey","outcome":"ok"}]}`,
		"no kind":        `{"end_ns":10,"ops":[{"index":0,"outcome":"ok"}]}`,
		"bad outcome":    `{"end_ns":10,"ops":[{"index":0,"kind":"CreateKey","outcome":"maybe"}]}`,
		"time backwards": `{"end_ns":10,"ops":[{"index":0,"kind":"CreateKey","outcome":"ok","invoke_ns":5,"complete_ns":4}]}`,
		"after end":      `{"end_ns":10,"ops":[{"index":0,"kind":"CreateKey","outcome":"ok","invoke_ns":5,"complete_ns":11}]}`,
		"negative end":   `{"end_ns":-1,"ops":[]}`,
	}
	for name, in := range cases {
		if _, err := Decode(bytes.NewBufferString(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode = %v, want ErrInvalid", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"end_ns":10,"ops":[{"index":0,"kind":"CreateKey","outcome":"ok","invoke_ns":1,"complete_ns":2,"output":{"key_id":"k"}}]}`))
	f.Add([]byte(`{"ops":[{"index":0,"kind":"Encrypt","outcome":"unknown","output":{"ciphertext":"AAE="}}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid history: %v", err)
		}
		var buf bytes.Buffer
		if err := h.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(&buf); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
