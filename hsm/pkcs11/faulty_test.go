package pkcs11_test

import (
	"sync"
	"sync/atomic"

	pk "github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm/pkcs11"
)

// faulty wraps the real module: it fails calls with chosen PKCS#11 codes
// (device errors SoftHSM cannot produce on demand), hides mechanisms,
// counts open sessions, and can hold GenerateRandom calls at a gate.
type faulty struct {
	pkcs11.P11
	failAll  atomic.Uint64 // every call returns this code; 0: none
	failNext atomic.Uint64 // the next call returns this code; 0: none
	hide     map[uint]bool // mechanisms GetMechanismList leaves out

	mu       sync.Mutex
	sessions int // open sessions, the login one included
	peak     int
	gate     chan struct{} // non-nil: GenerateRandom waits for it to close
	entered  chan struct{} // GenerateRandom signals here before waiting
}

func (f *faulty) err() error {
	if c := f.failNext.Swap(0); c != 0 {
		return pk.Error(c)
	}
	if c := f.failAll.Load(); c != 0 {
		return pk.Error(c)
	}
	return nil
}

func (f *faulty) GetSlotList(present bool) ([]uint, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.P11.GetSlotList(present)
}

func (f *faulty) GetMechanismList(slot uint) ([]*pk.Mechanism, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	ms, err := f.P11.GetMechanismList(slot)
	var out []*pk.Mechanism
	for _, m := range ms {
		if !f.hide[m.Mechanism] {
			out = append(out, m)
		}
	}
	return out, err
}

func (f *faulty) OpenSession(slot, flags uint) (pk.SessionHandle, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	s, err := f.P11.OpenSession(slot, flags)
	if err == nil {
		f.mu.Lock()
		f.sessions++
		f.peak = max(f.peak, f.sessions)
		f.mu.Unlock()
	}
	return s, err
}

func (f *faulty) CloseSession(s pk.SessionHandle) error {
	err := f.P11.CloseSession(s) // always really close: no leaks
	if err == nil {
		f.mu.Lock()
		f.sessions--
		f.mu.Unlock()
	}
	return err
}

func (f *faulty) Login(s pk.SessionHandle, user uint, pin string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.P11.Login(s, user, pin)
}

func (f *faulty) GetSessionInfo(s pk.SessionHandle) (pk.SessionInfo, error) {
	if err := f.err(); err != nil {
		return pk.SessionInfo{}, err
	}
	return f.P11.GetSessionInfo(s)
}

func (f *faulty) FindObjectsInit(s pk.SessionHandle, t []*pk.Attribute) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.P11.FindObjectsInit(s, t)
}

func (f *faulty) CreateObject(s pk.SessionHandle, t []*pk.Attribute) (pk.ObjectHandle, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.P11.CreateObject(s, t)
}

func (f *faulty) WrapKey(s pk.SessionHandle, m []*pk.Mechanism, k, o pk.ObjectHandle) ([]byte, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.P11.WrapKey(s, m, k, o)
}

func (f *faulty) UnwrapKey(s pk.SessionHandle, m []*pk.Mechanism, k pk.ObjectHandle, w []byte, t []*pk.Attribute) (pk.ObjectHandle, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.P11.UnwrapKey(s, m, k, w, t)
}

func (f *faulty) GenerateRandom(s pk.SessionHandle, n int) ([]byte, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	return f.P11.GenerateRandom(s, n)
}

// hold makes GenerateRandom calls wait until the returned release runs;
// entered receives once per call that reached the gate.
func (f *faulty) hold() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate, f.entered = make(chan struct{}), make(chan struct{}, 64)
	gate := f.gate
	return f.entered, func() {
		f.mu.Lock()
		f.gate = nil
		f.mu.Unlock()
		close(gate)
	}
}

func (f *faulty) peakSessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}
