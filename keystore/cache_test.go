package keystore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
)

// cached returns the cached material of a key version (white box).
func (h *harness) cached(id string, v uint32) *material {
	h.s.cache.mu.RLock()
	defer h.s.cache.mu.RUnlock()
	return h.s.cache.keys[id][slot{version: v}]
}

func TestCacheWipedOnDisableDeletionAndClose(t *testing.T) {
	h := newHarness(t, Config{})
	mac := h.create(SpecHMAC256, "")
	sym := h.create("", "")
	_, err := h.s.GenerateMac(bg, MacInput{KeyID: mac.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256})
	must(t, err)
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: sym.KeyID, Plaintext: []byte("m")})
	must(t, err)
	if n := h.s.cache.len(); n != 2 {
		t.Fatalf("cache holds %d versions, want 2", n)
	}
	m := h.cached(mac.KeyID, 1)
	keyBytes := m.mac
	if bytes.Equal(keyBytes, make([]byte, 32)) {
		t.Fatal("cached HMAC key is all zero before the wipe")
	}
	_, err = h.s.DisableKey(bg, mac.KeyID)
	must(t, err)
	if n := h.s.cache.len(); n != 1 || h.cached(mac.KeyID, 1) != nil {
		t.Fatalf("disable left %d cached versions", n)
	}
	if !bytes.Equal(keyBytes, make([]byte, 32)) || m.mac != nil {
		t.Fatal("disable did not zero the HMAC key bytes")
	}
	_, err = h.s.GenerateMac(bg, MacInput{KeyID: mac.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256})
	wantErr(t, err, ErrDisabled, "")
	if n := h.s.cache.len(); n != 1 {
		t.Fatalf("a refused operation cached material: %d", n)
	}

	s := h.cached(sym.KeyID, 1)
	_, err = h.s.ScheduleKeyDeletion(bg, sym.KeyID, 7)
	must(t, err)
	if h.s.cache.len() != 0 || s.sym != nil {
		t.Fatal("scheduling deletion did not evict and wipe the symmetric key")
	}

	other := h.create("", "")
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: other.KeyID, Plaintext: []byte("m")})
	must(t, err)
	o := h.cached(other.KeyID, 1)
	must(t, h.s.Close())
	if h.s.cache.len() != 0 || o.sym != nil {
		t.Fatal("Close did not wipe the cache")
	}
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: other.KeyID, Plaintext: []byte("m")})
	wantErr(t, err, ErrUnavailable, "closed")
}

// An operation holding material keeps it intact while an eviction runs; the
// wipe happens when it lets go.
func TestCacheWipeWaitsForUsers(t *testing.T) {
	h := newHarness(t, Config{})
	mac := h.create(SpecHMAC256, "")
	k, _ := h.fsm.Key(mac.KeyID)
	m, err := h.s.material(bg, k, k.GetVersions()[0])
	must(t, err)
	h.s.cache.evict(mac.KeyID)
	if m.mac == nil {
		t.Fatal("eviction wiped material still in use")
	}
	m.release()
	if m.mac != nil {
		t.Fatal("last release did not wipe")
	}
}

// Concurrent first uses unwrap once, and the cache respects its bound.
func TestCacheSingleUnwrapAndBound(t *testing.T) {
	h := newHarness(t, Config{MaxCachedVersions: 2})
	k := h.create("", "")
	key, _ := h.fsm.Key(k.KeyID)
	var loads int
	var mu sync.Mutex
	var wg sync.WaitGroup
	ck := cacheKey{k.KeyID, slot{version: 1}}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := h.s.cache.get(bg, ck, func(ctx context.Context) (*material, error) {
				mu.Lock()
				loads++
				mu.Unlock()
				raw, err := h.hsm.Unwrap(ctx, key.GetVersions()[0].GetDomainKeyVersion(), key.GetVersions()[0].GetWrappedMaterial())
				if err != nil {
					return nil, err
				}
				return newMaterial(SpecSymmetricDefault, raw)
			}, func() bool { return true })
			if err != nil {
				t.Error(err)
				return
			}
			m.release()
		}()
	}
	wg.Wait()
	if loads != 1 {
		t.Fatalf("%d unwraps for one version", loads)
	}
	for i := 0; i < 4; i++ {
		o := h.create("", "")
		_, err := h.s.Encrypt(bg, EncryptInput{KeyID: o.KeyID, Plaintext: []byte("x")})
		must(t, err)
	}
	if n := h.s.cache.len(); n > 2 {
		t.Fatalf("cache holds %d versions, bound 2", n)
	}
}

// No plaintext key material in the replicated state, its snapshot or the
// log entries: only wrapped blobs (and public keys) leave the node.
func TestNoPlaintextMaterialInState(t *testing.T) { bothLevels(t, testNoPlaintextMaterialInState) }

func testNoPlaintextMaterialInState(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	for _, spec := range []KeySpec{SpecSymmetricDefault, SpecHMAC512, SpecRSA2048, SpecECCP384} {
		h.create(spec, "")
	}
	sym := h.create("", "")
	_, _, err := h.s.RotateKeyOnDemand(bg, sym.KeyID)
	must(t, err)

	var state bytes.Buffer
	keys, _ := h.fsm.Keys("", 0)
	for _, k := range keys {
		b, err := proto.Marshal(k)
		must(t, err)
		state.Write(b)
	}
	must(t, h.fsm.Snapshot().Persist(&state))
	for _, e := range h.ap.logged {
		state.Write(e)
	}

	secrets := 0
	for _, k := range keys {
		for _, v := range k.GetVersions() {
			raw, err := h.hsm.Unwrap(bg, v.GetDomainKeyVersion(), v.GetWrappedMaterial())
			must(t, err)
			// Any 16-byte window of the secret would be a leak.
			for _, secret := range secretParts(t, raw) {
				for i := 0; i+16 <= len(secret); i += 16 {
					if bytes.Contains(state.Bytes(), secret[i:i+16]) {
						t.Fatalf("key %s v%d: plaintext material found in the state", k.GetId(), v.GetVersion())
					}
				}
			}
			secrets++
		}
	}
	if secrets != 6 {
		t.Fatalf("scanned %d versions, want 6", secrets)
	}
}

// secretParts returns the secret bytes of unwrapped material: all of it for
// symmetric and HMAC keys; the private scalars of a PKCS#8 key (the rest of
// it is the public key, which is replicated on purpose).
func secretParts(t *testing.T, raw []byte) [][]byte {
	k, err := x509.ParsePKCS8PrivateKey(raw)
	if err != nil {
		return [][]byte{raw}
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		out := [][]byte{k.D.Bytes()}
		for _, p := range k.Primes {
			out = append(out, p.Bytes())
		}
		return out
	case *ecdsa.PrivateKey:
		d, err := k.Bytes()
		must(t, err)
		return [][]byte{d}
	}
	t.Fatalf("unexpected key type %T", k)
	return nil
}
