package xaes

import (
	"crypto/cipher"
	"crypto/rand"
	"sync"
	"sync/atomic"
)

// PrefixMessages is how many nonces NewNonce issues under one 12-byte nonce
// prefix before drawing another. Under one prefix XAES is AES-256-GCM under
// one derived key with random 96-bit nonces, so this stays far below the
// 2^32 messages NIST SP 800-38D allows (collision chance about 2^-41 at the
// limit). Total messages per key are unbounded: each prefix is a new key.
const PrefixMessages = 1 << 28

// openCacheSize bounds the derived keys Cached keeps for opening: one per
// node that encrypts under the key is the steady state.
const openCacheSize = 16

// Cached is XAES-256-GCM that amortises the per-nonce key derivation. The
// derived AES-256-GCM depends only on the nonce's first 12 bytes, so NewNonce
// hands out nonces that share a random prefix (re-drawn every PrefixMessages)
// with a random 12-byte tail, and Seal and Open reuse the derived GCM of a
// prefix they have seen. The wire format is plain XAES-256-GCM: any nonce
// works and any XAES implementation interoperates.
type Cached struct {
	x   *AEAD
	cur atomic.Pointer[epoch]

	mu   sync.RWMutex
	open map[[12]byte]cipher.AEAD
}

type epoch struct {
	prefix [12]byte
	gcm    cipher.AEAD
	used   atomic.Uint64
}

// NewCached returns a Cached AEAD under key (KeySize bytes; not retained).
func NewCached(key []byte) (*Cached, error) {
	x, err := New(key)
	if err != nil {
		return nil, err
	}
	return &Cached{x: x}, nil
}

// NewNonce fills nonce (NonceSize bytes) with a fresh nonce: the current
// prefix and 12 random bytes.
func (c *Cached) NewNonce(nonce []byte) {
	e := c.cur.Load()
	if e == nil || e.used.Add(1) > PrefixMessages {
		e = c.newEpoch(e)
	}
	copy(nonce[:12], e.prefix[:])
	rand.Read(nonce[12:NonceSize])
}

// newEpoch replaces old (if still current) with a new random prefix; when
// another goroutine won the race, its epoch is used.
func (c *Cached) newEpoch(old *epoch) *epoch {
	e := &epoch{}
	rand.Read(e.prefix[:])
	e.gcm = c.x.gcm(e.prefix[:])
	e.used.Store(1)
	if c.cur.CompareAndSwap(old, e) {
		return e
	}
	if now := c.cur.Load(); now != nil {
		now.used.Add(1)
		return now
	}
	return e
}

// gcmFor returns the derived AES-256-GCM for nonce's prefix, from the current
// epoch, the open cache, or a fresh derivation (then cached).
func (c *Cached) gcmFor(nonce []byte) cipher.AEAD {
	var p [12]byte
	copy(p[:], nonce[:12])
	if e := c.cur.Load(); e != nil && e.prefix == p {
		return e.gcm
	}
	c.mu.RLock()
	g, ok := c.open[p]
	c.mu.RUnlock()
	if ok {
		return g
	}
	g = c.x.gcm(nonce)
	c.mu.Lock()
	if c.open == nil {
		c.open = make(map[[12]byte]cipher.AEAD, openCacheSize)
	}
	if len(c.open) >= openCacheSize {
		for k := range c.open { // evict an arbitrary entry
			delete(c.open, k)
			break
		}
	}
	c.open[p] = g
	c.mu.Unlock()
	return g
}

// Seal is XAES-256-GCM Seal; fast when nonce came from NewNonce. It panics
// if nonce is not NonceSize bytes.
func (c *Cached) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize {
		panic("xaes: incorrect nonce length given to XAES-256-GCM")
	}
	return c.gcmFor(nonce).Seal(dst, nonce[12:], plaintext, additionalData)
}

// Open is XAES-256-GCM Open; every failure returns ErrOpen.
func (c *Cached) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize || len(ciphertext) < Overhead {
		return nil, ErrOpen
	}
	out, err := c.gcmFor(nonce).Open(dst, nonce[12:], ciphertext, additionalData)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Wipe drops every derived GCM and wipes the underlying AEAD. Go cannot zero
// the AES schedules inside crypto/aes and crypto/cipher; they become garbage.
// Wipe must not run concurrently with other methods.
func (c *Cached) Wipe() {
	c.cur.Store(nil)
	c.mu.Lock()
	clear(c.open)
	c.mu.Unlock()
	c.x.Wipe()
}
