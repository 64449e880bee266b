package soft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// FuzzParseSealed feeds arbitrary files to the parsing Open does before it
// derives a key. It must never panic, must only fail with ErrFormat, must
// never accept KDF parameters outside the bounds (a hostile file must not
// choose argon2id's memory), and what it accepts must round-trip.
func FuzzParseSealed(f *testing.F) {
	h := header{kdf: testKDF}
	for i := range h.salt {
		h.salt[i] = byte(i)
	}
	valid := append(h.marshal(), make([]byte, 4+entryLen+gcmTagLen)...)
	f.Add(valid)
	f.Add(valid[:headerLen])
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Add(append(bytes.Clone(valid), make([]byte, entryLen)...))
	hostile := bytes.Clone(valid)
	binary.BigEndian.PutUint32(hostile[14:], 0xffffffff)
	f.Add(hostile)
	if golden, err := os.ReadFile(goldenFile); err == nil {
		f.Add(golden)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		hdr, ct, err := parseSealed(file)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if err := hdr.kdf.Validate(); err != nil {
			t.Fatalf("accepted out-of-bounds KDF params: %v", err)
		}
		if !bytes.Equal(hdr.marshal(), file[:headerLen]) {
			t.Fatal("accepted header does not re-marshal to itself")
		}
		if !bytes.Equal(ct, file[headerLen:]) {
			t.Fatal("ciphertext is not the rest of the file")
		}
		if (len(ct)-4-gcmTagLen)%entryLen != 0 {
			t.Fatalf("accepted a %d-byte body", len(ct))
		}
	})
}

// FuzzParseSet covers the DK set decoder. Its input has passed GCM, but it
// is still decoded defensively; anything accepted must re-marshal exactly.
func FuzzParseSet(f *testing.F) {
	k := bytes.Repeat([]byte{7}, dkLen)
	f.Add(marshalSet([]dkEntry{{1, k}}))
	f.Add(marshalSet([]dkEntry{{1, k}, {2, k}, {9, k}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := parseSet(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if !bytes.Equal(marshalSet(set), b) {
			t.Fatal("accepted set does not re-marshal to its input")
		}
	})
}
