package keystore

import (
	"encoding/binary"
	"fmt"

	"github.com/meridiankms/meridian/keystore/internal/xaes"
)

// Ciphertext formats. Every blob starts with
//
//	format (1) | key id length L (1) | key id (L) | key version (4, big endian)
//
// then, for formatSymmetric, the 24-byte XAES-256-GCM nonce and the sealed
// bytes (ciphertext and 16-byte tag); for formatHSMSymmetric (symmetric
// keys of protection level HSM), the 12-byte AES-256-GCM nonce and the
// sealed bytes; for formatRSA, the RSAES-OAEP ciphertext. docs/CRYPTO.md
// describes the formats and their AAD.
const (
	formatSymmetric    byte = 0x01
	formatRSA          byte = 0x02
	formatHSMSymmetric byte = 0x03

	gcmNonceSize = 12
	gcmTagSize   = 16

	maxBlobKeyID = 255
)

// nonceSize is the nonce length of a format (0: none).
func nonceSize(format byte) int {
	switch format {
	case formatSymmetric:
		return xaes.NonceSize
	case formatHSMSymmetric:
		return gcmNonceSize
	}
	return 0
}

// errInvalidCiphertext is the one error every undecryptable blob gives:
// malformed, foreign, truncated, tampered, unknown key or version, or the
// wrong encryption context. Identical value and message, so the answer
// tells an attacker nothing about which check failed.
var errInvalidCiphertext = &userError{
	kind: ErrInvalidCiphertext,
	msg:  "the ciphertext is invalid: it is malformed or damaged, was not made by this service, or the encryption context does not match",
}

// ciphertext is a parsed blob. Its slices alias the input.
type ciphertext struct {
	format  byte
	keyID   []byte
	version uint32
	header  []byte // format through nonce (symmetric) or version (RSA): bound as AAD
	nonce   []byte // symmetric formats only
	body    []byte // sealed bytes (symmetric) or OAEP ciphertext (RSA)
}

// parseCiphertext parses outside bytes. ok is false for anything that is
// not structurally a Meridian blob; it never panics.
func parseCiphertext(b []byte) (c ciphertext, ok bool) {
	if len(b) < 2 {
		return c, false
	}
	c.format = b[0]
	if c.format != formatSymmetric && c.format != formatRSA && c.format != formatHSMSymmetric {
		return c, false
	}
	idLen := int(b[1])
	if idLen == 0 {
		return c, false
	}
	pos := 2 + idLen
	if len(b) < pos+4 {
		return c, false
	}
	c.keyID = b[2:pos]
	c.version = binary.BigEndian.Uint32(b[pos:])
	pos += 4
	if c.version == 0 {
		return c, false
	}
	if n := nonceSize(c.format); n > 0 {
		// Both symmetric formats end in a 16-byte GCM tag.
		if len(b) < pos+n+gcmTagSize {
			return c, false
		}
		c.nonce = b[pos : pos+n]
		pos += n
	} else if len(b) == pos {
		return c, false
	}
	c.header = b[:pos]
	c.body = b[pos:]
	return c, true
}

// headerSize is the size of a blob's header for a key id.
func headerSize(format byte, keyID string) int {
	return 2 + len(keyID) + 4 + nonceSize(format)
}

// appendHeader appends format, key id and version (not the nonce).
func appendHeader(dst []byte, format byte, keyID string, version uint32) ([]byte, error) {
	if len(keyID) == 0 || len(keyID) > maxBlobKeyID {
		return nil, fmt.Errorf("%w: key id of %d bytes does not fit the ciphertext format", ErrInternal, len(keyID))
	}
	dst = append(dst, format, byte(len(keyID)))
	dst = append(dst, keyID...)
	return binary.BigEndian.AppendUint32(dst, version), nil
}
