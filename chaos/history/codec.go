package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrInvalid: a history (read from outside or built by hand) breaks one of
// its invariants.
var ErrInvalid = errors.New("history: invalid")

// maxDecode bounds what Decode will read, so a hostile or corrupt file
// cannot exhaust memory.
const maxDecode = 1 << 30

// Validate checks the invariants the checker relies on: ops in index order,
// a known outcome, a kind, and 0 <= Invoke <= Complete <= End.
func (h *History) Validate() error {
	if h.End < 0 {
		return fmt.Errorf("%w: negative end %v", ErrInvalid, h.End)
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		switch {
		case op.Index != i:
			return fmt.Errorf("%w: op %d has index %d", ErrInvalid, i, op.Index)
		case op.Kind == "":
			return fmt.Errorf("%w: op %d has no kind", ErrInvalid, i)
		case op.Outcome != Ok && op.Outcome != Failed && op.Outcome != Unknown:
			return fmt.Errorf("%w: op %d has outcome %q", ErrInvalid, i, op.Outcome)
		case op.Invoke < 0 || op.Complete < op.Invoke:
			return fmt.Errorf("%w: op %d invoked at %v, completed at %v", ErrInvalid, i, op.Invoke, op.Complete)
		case op.Complete > h.End:
			return fmt.Errorf("%w: op %d completed at %v after the end %v", ErrInvalid, i, op.Complete, h.End)
		}
	}
	return nil
}

// Encode writes h as indented JSON.
func (h *History) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	return nil
}

// Decode reads a history written by Encode and validates it.
func Decode(r io.Reader) (*History, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxDecode))
	dec.DisallowUnknownFields()
	var h History
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("decode history: %w: %w", ErrInvalid, err)
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("decode history: %w", err)
	}
	return &h, nil
}

// WriteFile writes h to path (mode 0644: it holds no secrets, only hashes).
func (h *History) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write history %s: %w", path, err)
	}
	if err := h.Encode(f); err != nil {
		f.Close()
		return fmt.Errorf("write history %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write history %s: %w", path, err)
	}
	return nil
}

// ReadFile reads a history written by WriteFile.
func ReadFile(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read history %s: %w", path, err)
	}
	defer f.Close()
	h, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("read history %s: %w", path, err)
	}
	return h, nil
}
