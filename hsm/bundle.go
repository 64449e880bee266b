package hsm

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"fmt"
)

// DomainKeyBundle wire format, version 1 (integers big-endian):
//
//	4 bytes  magic "MDKB"
//	1 byte   format version (1)
//	2 bytes  count, 1..MaxBundleVersions
//	count x (4 bytes DK version | 2 bytes length | length bytes wrapped)
//
// Versions are strictly ascending and non-zero; nothing may follow the last
// entry. The bytes come from another node over the network, so every bound
// is checked before anything is allocated from a length field.
const (
	bundleMagic   = "MDKB"
	bundleVersion = 1
	bundleHeader  = len(bundleMagic) + 1 + 2
	entryHeader   = 4 + 2

	// MaxBundleVersions is the most DK versions one bundle carries: a DK
	// rotated monthly reaches it after five years, long after the oldest
	// versions should have been retired.
	MaxBundleVersions = 64
	// MaxWrappedDomainKey bounds one wrapped DK: an RSA-8192 OAEP
	// ciphertext is 1024 bytes, and the transport key is RSA-3072 (384).
	MaxWrappedDomainKey = 1024
)

// Validate checks what every backend and the wire format rely on: 1 to
// MaxBundleVersions entries, versions strictly ascending and non-zero,
// each wrapped key 1 to MaxWrappedDomainKey bytes. Errors wrap
// ErrInvalidInput.
func (b *DomainKeyBundle) Validate() error {
	if b == nil {
		return fmt.Errorf("domain key bundle is nil: %w", ErrInvalidInput)
	}
	n := len(b.Versions)
	if n == 0 || n > MaxBundleVersions {
		return fmt.Errorf("domain key bundle holds %d versions, want 1..%d: %w", n, MaxBundleVersions, ErrInvalidInput)
	}
	var prev uint32
	for _, w := range b.Versions {
		if w.Version <= prev {
			return fmt.Errorf("domain key bundle: version %d after %d (want strictly ascending, non-zero): %w", w.Version, prev, ErrInvalidInput)
		}
		prev = w.Version
		if len(w.Wrapped) == 0 || len(w.Wrapped) > MaxWrappedDomainKey {
			return fmt.Errorf("domain key bundle: dk v%d wrapped in %d bytes, want 1..%d: %w", w.Version, len(w.Wrapped), MaxWrappedDomainKey, ErrInvalidInput)
		}
	}
	return nil
}

// MarshalBinary encodes the bundle for the join reply. It refuses a bundle
// that Validate refuses, so every encoding it makes decodes again.
func (b *DomainKeyBundle) MarshalBinary() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("encode %w", err)
	}
	size := bundleHeader
	for _, w := range b.Versions {
		size += entryHeader + len(w.Wrapped)
	}
	out := make([]byte, 0, size)
	out = append(out, bundleMagic...)
	out = append(out, bundleVersion)
	out = binary.BigEndian.AppendUint16(out, uint16(len(b.Versions)))
	for _, w := range b.Versions {
		out = binary.BigEndian.AppendUint32(out, w.Version)
		out = binary.BigEndian.AppendUint16(out, uint16(len(w.Wrapped)))
		out = append(out, w.Wrapped...)
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary made, replacing b's contents.
// Malformed input gives an error wrapping ErrInvalidInput and leaves b
// unchanged. The wrapped keys are copied, so data may be reused.
func (b *DomainKeyBundle) UnmarshalBinary(data []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("decode domain key bundle: "+format+": %w", append(args, ErrInvalidInput)...)
	}
	if len(data) < bundleHeader || !bytes.Equal(data[:len(bundleMagic)], []byte(bundleMagic)) {
		return bad("not a domain key bundle (bad magic or %d bytes)", len(data))
	}
	if v := data[len(bundleMagic)]; v != bundleVersion {
		return bad("format version %d, this build reads %d", v, bundleVersion)
	}
	n := int(binary.BigEndian.Uint16(data[len(bundleMagic)+1:]))
	if n == 0 || n > MaxBundleVersions {
		return bad("count %d outside 1..%d", n, MaxBundleVersions)
	}
	rest := data[bundleHeader:]
	out := DomainKeyBundle{Versions: make([]WrappedDomainKey, 0, n)}
	for i := range n {
		if len(rest) < entryHeader {
			return bad("entry %d truncated", i)
		}
		v := binary.BigEndian.Uint32(rest)
		l := int(binary.BigEndian.Uint16(rest[4:]))
		rest = rest[entryHeader:]
		if l == 0 || l > MaxWrappedDomainKey {
			return bad("dk v%d wrapped in %d bytes, want 1..%d", v, l, MaxWrappedDomainKey)
		}
		if len(rest) < l {
			return bad("dk v%d says %d bytes, %d remain", v, l, len(rest))
		}
		out.Versions = append(out.Versions, WrappedDomainKey{Version: v, Wrapped: bytes.Clone(rest[:l])})
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return bad("%d bytes after the last entry", len(rest))
	}
	if err := out.Validate(); err != nil {
		return fmt.Errorf("decode %w", err)
	}
	*b = out
	return nil
}

// Transport key bounds. RSA-3072 is what backends make (about 128-bit
// strength, matching the AES-256 DK's wrap of lesser keys); a bigger key
// is accepted, a smaller one refused, so nobody on the join path can talk
// a member into wrapping the DK to a weak key.
const (
	MinTransportKeyBits = 3072
	MaxTransportKeyBits = 8192
)

// ParseTransportPublicKey parses and checks a PKIX DER transport public
// key: RSA, MinTransportKeyBits..MaxTransportKeyBits, exponent 3..2^31-1
// and odd. Every Enroller checks the key this way before wrapping a DK to
// it. Errors wrap ErrInvalidInput.
func ParseTransportPublicKey(der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("transport public key: %w: %w", ErrInvalidInput, err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("transport public key is %T, want RSA: %w", k, ErrInvalidInput)
	}
	if bits := pub.N.BitLen(); bits < MinTransportKeyBits || bits > MaxTransportKeyBits {
		return nil, fmt.Errorf("transport public key has %d bits, want %d..%d: %w", bits, MinTransportKeyBits, MaxTransportKeyBits, ErrInvalidInput)
	}
	if pub.E < 3 || pub.E&1 == 0 {
		return nil, fmt.Errorf("transport public key exponent %d is not an odd number >= 3: %w", pub.E, ErrInvalidInput)
	}
	return pub, nil
}
