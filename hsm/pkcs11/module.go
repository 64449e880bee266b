package pkcs11

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// p11 is the part of *pkcs11.Ctx this backend calls. It is an interface so
// tests can wrap the real module and make calls fail with errors SoftHSM
// cannot produce on demand (device errors, a lost login, a missing
// mechanism).
type p11 interface {
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error)
	GetMechanismList(slotID uint) ([]*pkcs11.Mechanism, error)
	InitToken(slotID uint, soPIN, label string) error
	InitPIN(sh pkcs11.SessionHandle, pin string) error
	OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error)
	CloseSession(sh pkcs11.SessionHandle) error
	GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error)
	Login(sh pkcs11.SessionHandle, userType uint, pin string) error
	Logout(sh pkcs11.SessionHandle) error
	CreateObject(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	CopyObject(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	DestroyObject(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle) error
	GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error)
	FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error
	FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error)
	FindObjectsFinal(sh pkcs11.SessionHandle) error
	GenerateKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrappingkey, key pkcs11.ObjectHandle) ([]byte, error)
	UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, unwrappingkey pkcs11.ObjectHandle, wrappedkey []byte, a []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	GenerateRandom(sh pkcs11.SessionHandle, length int) ([]byte, error)
	EncryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Encrypt(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
	// KeyOps (keyops.go): operations with keys unwrapped into the token.
	DecryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Decrypt(sh pkcs11.SessionHandle, cipher []byte) ([]byte, error)
	SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
	// Enrolment (enrol.go): the transport key pair.
	GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error)
}

var _ p11 = (*pkcs11.Ctx)(nil)

// module is one loaded, initialised PKCS#11 library. Cryptoki state is
// per process (C_Initialize once, C_Finalize once), so modules live in a
// process-wide registry, reference-counted by the HSMs using them: several
// in-process test nodes share one library, and the last Close finalises it.
type module struct {
	path  string // resolved: symlinks to one library share one entry
	raw   *pkcs11.Ctx
	owned bool // our C_Initialize succeeded, so C_Finalize is ours too
	refs  int
	open  map[string]bool // token labels held by an open HSM
}

// registry is process-wide on purpose: it mirrors the library's own
// process-wide state, which a per-HSM value could not.
var registry = struct {
	mu   sync.Mutex
	mods map[string]*module
}{mods: make(map[string]*module)}

// acquireModule loads and initialises the library at path, or returns the
// already-loaded one with one more reference.
func acquireModule(path string) (*module, error) {
	resolved, err := resolveModule(path)
	if err != nil {
		return nil, err
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m, ok := registry.mods[resolved]; ok {
		m.refs++
		return m, nil
	}
	raw := pkcs11.New(resolved)
	if raw == nil {
		return nil, fmt.Errorf("%w: %s is not a PKCS#11 library (it does not load, or has no C_GetFunctionList)", ErrModule, path)
	}
	owned := true
	if err := raw.Initialize(); err != nil {
		if !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			raw.Destroy()
			return nil, fmt.Errorf("%w: C_Initialize of %s: %w", ErrModule, path, err)
		}
		owned = false // someone else in the process initialised it; they finalise it
	}
	m := &module{path: resolved, raw: raw, owned: owned, refs: 1, open: make(map[string]bool)}
	registry.mods[resolved] = m
	return m, nil
}

func resolveModule(path string) (string, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: module file %s does not exist", ErrModule, path)
	}
	if err != nil {
		return "", fmt.Errorf("%w: module %s: %w", ErrModule, path, err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("%w: module path %s is a directory", ErrModule, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%w: module %s: %w", ErrModule, path, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%w: module %s: %w", ErrModule, path, err)
	}
	return resolved, nil
}

// claim marks a token label as open; it fails if another HSM in this
// process holds it.
func (m *module) claim(label string) error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m.open[label] {
		return fmt.Errorf("%w: token %q", ErrTokenInUse, label)
	}
	m.open[label] = true
	return nil
}

func (m *module) unclaim(label string) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	delete(m.open, label)
}

// release drops one reference; the last one finalises and unloads.
func (m *module) release() {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(registry.mods, m.path)
	if m.owned {
		_ = m.raw.Finalize() // nothing useful to do with a failure at unload
	}
	m.raw.Destroy()
}

// moduleRefs reports how many HSMs share the module at path (tests).
func moduleRefs(path string) int {
	resolved, err := resolveModule(path)
	if err != nil {
		return 0
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m, ok := registry.mods[resolved]; ok {
		return m.refs
	}
	return 0
}

// isCode reports whether err is the PKCS#11 return value code.
func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}
