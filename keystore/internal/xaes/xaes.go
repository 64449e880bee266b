// Package xaes implements XAES-256-GCM as specified by C2SP
// (c2sp.org/XAES-256-GCM): AES-256-GCM with 192-bit nonces. Each message's
// AES-256 key is derived from the long-term key and the first 12 nonce bytes
// with the NIST SP 800-108r1 counter-mode KDF over CMAC-AES-256; the last 12
// nonce bytes are the GCM nonce. Random 192-bit nonces can be drawn for
// effectively unlimited messages per key, unlike 96-bit GCM nonces (about
// 2^32 messages before the collision risk passes 2^-32).
//
// The standard library has XAES only inside crypto/internal, hence this
// small package.
package xaes

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

const (
	// KeySize is the size of an XAES-256-GCM key.
	KeySize = 32
	// NonceSize is the size of an XAES-256-GCM nonce.
	NonceSize = 24
	// Overhead is the size of the GCM tag appended to every ciphertext.
	Overhead = 16
)

// ErrOpen is returned by Open for any authentication failure.
var ErrOpen = errors.New("xaes: message authentication failed")

// AEAD is XAES-256-GCM under one key. It keeps the key's AES schedule and the
// CMAC subkey K1 precomputed, so that each message costs two AES block
// encryptions plus one AES-256-GCM key setup. Safe for concurrent use; Wipe
// must not run concurrently with Seal or Open.
type AEAD struct {
	block cipher.Block
	k1    [aes.BlockSize]byte
}

var _ cipher.AEAD = (*AEAD)(nil)

// New returns XAES-256-GCM under key, which must be KeySize bytes. The
// caller may wipe key afterwards: nothing retains it.
func New(key []byte) (*AEAD, error) {
	if len(key) != KeySize {
		return nil, errors.New("xaes: key must be 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a := &AEAD{block: b}
	// K1 = dbl(L), L = AES-256_K(0^128): the CMAC subkey for complete
	// blocks; the KDF inputs are exactly one block each.
	var l [aes.BlockSize]byte
	b.Encrypt(l[:], l[:])
	msb := l[0] >> 7
	for i := 0; i < aes.BlockSize-1; i++ {
		a.k1[i] = l[i]<<1 | l[i+1]>>7
	}
	// Constant time: the polynomial goes in only when L's top bit is set.
	a.k1[aes.BlockSize-1] = l[aes.BlockSize-1]<<1 ^ (msb * 0x87)
	clear(l[:])
	return a, nil
}

// NonceSize implements cipher.AEAD.
func (*AEAD) NonceSize() int { return NonceSize }

// Overhead implements cipher.AEAD.
func (*AEAD) Overhead() int { return Overhead }

// deriveKey computes Kx = CMAC(M1) || CMAC(M2) with
// Mi = 0x00 || i || "X" || 0x00 || nonce[:12]; each Mi is one full block, so
// CMAC reduces to AES_K(Mi xor K1).
func (a *AEAD) deriveKey(nonce []byte, kx *[KeySize]byte) {
	var m [2 * aes.BlockSize]byte
	m[0], m[1], m[2], m[3] = 0, 1, 'X', 0
	copy(m[4:16], nonce[:12])
	m[16], m[17], m[18], m[19] = 0, 2, 'X', 0
	copy(m[20:32], nonce[:12])
	subtle.XORBytes(m[:16], m[:16], a.k1[:])
	subtle.XORBytes(m[16:], m[16:], a.k1[:])
	a.block.Encrypt(kx[:16], m[:16])
	a.block.Encrypt(kx[16:], m[16:])
}

// gcm returns the per-nonce AES-256-GCM. The derived key bytes are wiped at
// once; the key schedule inside crypto/aes cannot be (it is unexported) and
// becomes garbage when the caller returns.
func (a *AEAD) gcm(nonce []byte) cipher.AEAD {
	var kx [KeySize]byte
	a.deriveKey(nonce, &kx)
	b, err := aes.NewCipher(kx[:])
	clear(kx[:])
	if err != nil {
		panic("xaes: derived key rejected: " + err.Error()) // cannot happen: 32 bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("xaes: " + err.Error()) // cannot happen for AES
	}
	return g
}

// Seal encrypts and authenticates plaintext and additionalData, appending
// the result to dst. It panics if nonce is not NonceSize bytes, as every
// cipher.AEAD does.
func (a *AEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize {
		panic("xaes: incorrect nonce length given to XAES-256-GCM")
	}
	return a.gcm(nonce).Seal(dst, nonce[12:], plaintext, additionalData)
}

// Open authenticates and decrypts ciphertext, appending the plaintext to
// dst. Every failure, including a wrong nonce size, returns ErrOpen.
func (a *AEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize || len(ciphertext) < Overhead {
		return nil, ErrOpen
	}
	out, err := a.gcm(nonce).Open(dst, nonce[12:], ciphertext, additionalData)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Wipe zeroes the CMAC subkey and drops the AES schedule so that the AEAD
// can no longer be used. The schedule's memory lives in crypto/aes and is
// reclaimed by the garbage collector without being zeroed: Go offers no way
// to wipe it.
func (a *AEAD) Wipe() {
	clear(a.k1[:])
	a.block = nil
}
