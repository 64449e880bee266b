// Package keywrap implements AES key wrap with padding (RFC 5649), the
// format in which Meridian stores every piece of key material under the
// domain key. It is the same algorithm a PKCS#11 token runs as
// CKM_AES_KEY_WRAP_KWP, so blobs made by the soft backend and by a token
// share one format.
//
// Wrap is deterministic: the same key and plaintext always give the same
// blob. That is what RFC 5649 specifies and is safe for wrapping random key
// material; do not use it to encrypt low-entropy data.
package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrIntegrity: the blob did not unwrap under this key (wrong key, or
	// the blob was altered). Deliberately carries no detail about which
	// check failed, so it cannot serve as a padding oracle.
	ErrIntegrity = errors.New("keywrap: integrity check failed")
	// ErrLength: the plaintext or the blob has a length the RFC does not
	// allow.
	ErrLength = errors.New("keywrap: invalid length")
	// ErrKEK: the key-encryption key is not a usable AES key or block.
	ErrKEK = errors.New("keywrap: invalid key-encryption key")
)

// MaxPlaintext is the largest plaintext RFC 5649 can wrap: its length
// travels in a 32-bit field of the alternative initial value.
const MaxPlaintext = 1<<32 - 1

// aivPrefix is the constant half of the RFC 5649 alternative initial value.
var aivPrefix = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// WrapKey wraps plaintext under the AES key kek (16, 24 or 32 bytes).
func WrapKey(kek, plaintext []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("%w: %d-byte key", ErrKEK, len(kek))
	}
	return Wrap(b, plaintext)
}

// UnwrapKey reverses WrapKey.
func UnwrapKey(kek, wrapped []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("%w: %d-byte key", ErrKEK, len(kek))
	}
	return Unwrap(b, wrapped)
}

// WrappedLen is the length of the blob Wrap makes for an n-byte plaintext.
func WrappedLen(n int) int {
	return 8 + (n+7)/8*8
}

// Wrap wraps plaintext (1..MaxPlaintext bytes) under kek, which must have
// a 16-byte block (AES). The result is 8 bytes longer than the plaintext
// rounded up to a multiple of 8.
func Wrap(kek cipher.Block, plaintext []byte) ([]byte, error) {
	if err := checkBlock(kek); err != nil {
		return nil, err
	}
	if err := checkPlaintextLen(uint64(len(plaintext))); err != nil {
		return nil, err
	}
	out := make([]byte, WrappedLen(len(plaintext)))
	copy(out[:4], aivPrefix[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext) // the zero padding is already there

	if len(out) == 16 {
		// One semiblock of plaintext: RFC 5649 section 4.1 encrypts
		// AIV || P as a single AES block instead of running W.
		kek.Encrypt(out, out)
		return out, nil
	}
	wrapRounds(kek, out)
	return out, nil
}

// Unwrap reverses Wrap. Any blob that is not a wrap of some plaintext under
// kek fails with ErrIntegrity; a blob whose length no wrap can have fails
// with ErrLength. The returned slice is freshly allocated.
func Unwrap(kek cipher.Block, wrapped []byte) ([]byte, error) {
	if err := checkBlock(kek); err != nil {
		return nil, err
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 || uint64(len(wrapped)-8) > maxPadded {
		return nil, fmt.Errorf("%w: %d-byte wrapped blob", ErrLength, len(wrapped))
	}
	buf := make([]byte, len(wrapped))
	copy(buf, wrapped)
	defer clear(buf)

	if len(buf) == 16 {
		kek.Decrypt(buf, buf)
	} else {
		unwrapRounds(kek, buf)
	}
	mli, ok := checkAIV(buf)
	if !ok {
		return nil, ErrIntegrity
	}
	out := make([]byte, mli)
	copy(out, buf[8:])
	return out, nil
}

// maxPadded is the longest padded plaintext: MaxPlaintext rounded up to 8.
const maxPadded = (MaxPlaintext + 7) / 8 * 8

func checkBlock(kek cipher.Block) error {
	if kek == nil {
		return fmt.Errorf("%w: nil block", ErrKEK)
	}
	if kek.BlockSize() != 16 {
		return fmt.Errorf("%w: block size %d, want 16", ErrKEK, kek.BlockSize())
	}
	return nil
}

// checkPlaintextLen takes a uint64 so the upper bound can be tested without
// allocating 4 GiB.
func checkPlaintextLen(n uint64) error {
	if n == 0 || n > MaxPlaintext {
		return fmt.Errorf("%w: %d-byte plaintext, want 1..%d", ErrLength, n, uint64(MaxPlaintext))
	}
	return nil
}

// wrapRounds is RFC 3394's wrapping process W, in place: buf holds the
// initial value then n semiblocks, and ends holding the ciphertext.
func wrapRounds(kek cipher.Block, buf []byte) {
	n := uint64(len(buf)/8 - 1)
	var b [16]byte
	copy(b[:8], buf[:8])
	for j := uint64(0); j < 6; j++ {
		for i := uint64(1); i <= n; i++ {
			r := buf[i*8 : i*8+8]
			copy(b[8:], r)
			kek.Encrypt(b[:], b[:])
			t := n*j + i
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(r, b[8:])
		}
	}
	copy(buf[:8], b[:8])
	clear(b[:])
}

// unwrapRounds is RFC 3394's unwrapping process W^-1, in place.
func unwrapRounds(kek cipher.Block, buf []byte) {
	n := uint64(len(buf)/8 - 1)
	var b [16]byte
	copy(b[:8], buf[:8])
	for j := uint64(6); j > 0; j-- {
		for i := n; i >= 1; i-- {
			r := buf[i*8 : i*8+8]
			t := n*(j-1) + i
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(b[8:], r)
			kek.Decrypt(b[:], b[:])
			copy(r, b[8:])
		}
	}
	copy(buf[:8], b[:8])
	clear(b[:])
}

// checkAIV runs RFC 5649 section 3's three checks (prefix, length bounds,
// zero padding) over the unwrapped buffer without branching on secret data,
// and reports the message length indicator when all of them pass.
func checkAIV(buf []byte) (mli uint64, ok bool) {
	padded := uint64(len(buf) - 8)
	mli = uint64(binary.BigEndian.Uint32(buf[4:8]))

	good := subtle.ConstantTimeCompare(buf[:4], aivPrefix[:])
	// padded-8 < mli <= padded, with both sides well below 2^62.
	good &= ctLessOrEq(padded-7, mli) & ctLessOrEq(mli, padded)

	// Every byte of the last semiblock at or past mli must be zero. Scan
	// all eight so the work does not depend on mli.
	var nonzero byte
	for k := padded - 8; k < padded; k++ {
		inPad := byte(ctLessOrEq(mli, k)) * 0xff
		nonzero |= buf[8+k] & inPad
	}
	good &= subtle.ConstantTimeByteEq(nonzero, 0)
	return mli, good == 1
}

// ctLessOrEq returns 1 if x <= y and 0 otherwise, in constant time, for
// x and y below 2^63.
func ctLessOrEq(x, y uint64) int {
	return int((x - y - 1) >> 63)
}
