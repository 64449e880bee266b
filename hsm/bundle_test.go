package hsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func sampleBundle() *DomainKeyBundle {
	return &DomainKeyBundle{Versions: []WrappedDomainKey{
		{Version: 1, Wrapped: bytes.Repeat([]byte{0xa1}, 384)},
		{Version: 2, Wrapped: bytes.Repeat([]byte{0xb2}, 384)},
		{Version: 7, Wrapped: []byte{0xc3}},
	}}
}

func TestBundleRoundTrip(t *testing.T) {
	for _, b := range []*DomainKeyBundle{
		sampleBundle(),
		{Versions: []WrappedDomainKey{{Version: 1<<32 - 1, Wrapped: make([]byte, MaxWrappedDomainKey)}}},
		maxBundle(),
	} {
		enc, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		var got DomainKeyBundle
		if err := got.UnmarshalBinary(enc); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		if !reflect.DeepEqual(&got, b) {
			t.Fatalf("round trip changed the bundle")
		}
		// The decoded bundle owns its bytes.
		clear(enc)
		if !reflect.DeepEqual(&got, b) {
			t.Fatal("decoded bundle aliases the input")
		}
	}
}

func maxBundle() *DomainKeyBundle {
	b := &DomainKeyBundle{}
	for v := range MaxBundleVersions {
		b.Versions = append(b.Versions, WrappedDomainKey{Version: uint32(v + 1), Wrapped: []byte{byte(v)}})
	}
	return b
}

// The layout is pinned: other nodes of other builds read it.
func TestBundleGolden(t *testing.T) {
	b := &DomainKeyBundle{Versions: []WrappedDomainKey{{Version: 1, Wrapped: []byte{0xaa, 0xbb}}, {Version: 3, Wrapped: []byte{0xcc}}}}
	enc, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("MDKB\x01\x00\x02" + "\x00\x00\x00\x01\x00\x02\xaa\xbb" + "\x00\x00\x00\x03\x00\x01\xcc")
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding\n got %x\nwant %x", enc, want)
	}
}

func TestBundleMarshalRefusesInvalid(t *testing.T) {
	big := maxBundle()
	big.Versions = append(big.Versions, WrappedDomainKey{Version: MaxBundleVersions + 1, Wrapped: []byte{1}})
	for name, b := range map[string]*DomainKeyBundle{
		"nil":           nil,
		"empty":         {},
		"too many":      big,
		"version 0":     {Versions: []WrappedDomainKey{{Version: 0, Wrapped: []byte{1}}}},
		"descending":    {Versions: []WrappedDomainKey{{Version: 2, Wrapped: []byte{1}}, {Version: 1, Wrapped: []byte{1}}}},
		"duplicate":     {Versions: []WrappedDomainKey{{Version: 1, Wrapped: []byte{1}}, {Version: 1, Wrapped: []byte{1}}}},
		"empty wrapped": {Versions: []WrappedDomainKey{{Version: 1}}},
		"oversized":     {Versions: []WrappedDomainKey{{Version: 1, Wrapped: make([]byte, MaxWrappedDomainKey+1)}}},
	} {
		if _, err := b.MarshalBinary(); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: MarshalBinary err = %v, want ErrInvalidInput", name, err)
		}
	}
}

func TestBundleUnmarshalRejects(t *testing.T) {
	good, err := sampleBundle().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	entry := func(v uint32, n int) []byte {
		b := binary.BigEndian.AppendUint32(nil, v)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		return append(b, make([]byte, n)...)
	}
	hdr := func(count uint16) []byte {
		return binary.BigEndian.AppendUint16([]byte("MDKB\x01"), count)
	}
	cases := map[string][]byte{
		"empty":              nil,
		"short":              []byte("MDK"),
		"bad magic":          append([]byte("XDKB"), good[4:]...),
		"newer version":      append([]byte("MDKB\x02"), good[5:]...),
		"count 0":            hdr(0),
		"count 65":           append(hdr(65), entry(1, 1)...),
		"count beyond data":  append(hdr(2), entry(1, 1)...),
		"entry header cut":   append(hdr(1), 0, 0, 0),
		"length beyond data": append(hdr(1), entry(1, 8)[:10]...),
		"length 0":           append(hdr(1), entry(1, 0)...),
		"length 1025":        append(hdr(1), entry(1, MaxWrappedDomainKey+1)...),
		"version 0":          append(hdr(1), entry(0, 1)...),
		"descending":         append(append(hdr(2), entry(2, 1)...), entry(1, 1)...),
		"trailing byte":      append(bytes.Clone(good), 0),
		"truncated by one":   good[:len(good)-1],
	}
	for name, data := range cases {
		b := sampleBundle()
		if err := b.UnmarshalBinary(data); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
		if !reflect.DeepEqual(b, sampleBundle()) {
			t.Errorf("%s: a failed decode changed the bundle", name)
		}
	}
}

// FuzzBundle: no input panics, anything accepted re-encodes to the same
// bytes (the encoding is canonical) and passes Validate.
func FuzzBundle(f *testing.F) {
	good, err := sampleBundle().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("MDKB\x01\x00\x01\x00\x00\x00\x01\x00\x01\xff"))
	f.Add([]byte("MDKB\x01\x00\x00"))
	f.Add([]byte("MDKB\x01\xff\xff"))
	f.Add([]byte("MDKB\x01\x00\x01\x00\x00\x00\x01\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b DomainKeyBundle
		if err := b.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v does not wrap ErrInvalidInput", err)
			}
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("decoded bundle fails Validate: %v", err)
		}
		enc, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, data)
		}
	})
}

func TestParseTransportPublicKey(t *testing.T) {
	der := func(pub any) []byte {
		b, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	k3072, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	k2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := der(&k3072.PublicKey)
	if pub, err := ParseTransportPublicKey(good); err != nil || pub.N.Cmp(k3072.N) != 0 {
		t.Fatalf("RSA-3072: %v", err)
	}
	for name, b := range map[string][]byte{
		"nil":        nil,
		"garbage":    []byte("-----BEGIN PUBLIC KEY-----"),
		"truncated":  good[:len(good)-3],
		"RSA-2048":   der(&k2048.PublicKey),
		"EC P-384":   der(&ec.PublicKey),
		"exponent 1": der(&rsa.PublicKey{N: k3072.N, E: 1}),
		"exponent 4": der(&rsa.PublicKey{N: k3072.N, E: 4}),
	} {
		if _, err := ParseTransportPublicKey(b); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
}
