package soft

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Sealed file layout, format version 1 (all integers big-endian):
//
//	offset size
//	0      8    magic "MRDNSOFT"
//	8      2    format version (1)
//	10     4    argon2id time
//	14     4    argon2id memory, KiB
//	18     1    argon2id threads
//	19     16   salt
//	35     12   AES-256-GCM nonce
//	47     ...  GCM ciphertext of the DK set, tag included
//
// Bytes 0..46 are the GCM additional data. The DK set plaintext is a uint32
// count followed by count entries of (uint32 version, 32-byte key), with
// versions strictly ascending and non-zero; count 0 is a node awaiting
// enrolment.
const (
	magic         = "MRDNSOFT"
	formatVersion = 1
	saltLen       = 16
	nonceLen      = 12
	headerLen     = 8 + 2 + 4 + 4 + 1 + saltLen + nonceLen
	gcmTagLen     = 16
	dkLen         = 32
	entryLen      = 4 + dkLen
	// maxDKVersions bounds the set so a file cannot ask for a huge
	// allocation; a DK rotated daily would take 180 years to reach it.
	maxDKVersions = 1 << 16
	// maxFileLen is the largest file Open reads.
	maxFileLen = headerLen + 4 + maxDKVersions*entryLen + gcmTagLen
)

// header is the authenticated, unencrypted start of a sealed file.
type header struct {
	kdf   KDFParams
	salt  [saltLen]byte
	nonce [nonceLen]byte
}

func (h *header) marshal() []byte {
	b := make([]byte, 0, headerLen)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, formatVersion)
	b = binary.BigEndian.AppendUint32(b, h.kdf.Time)
	b = binary.BigEndian.AppendUint32(b, h.kdf.MemoryKiB)
	b = append(b, h.kdf.Threads)
	b = append(b, h.salt[:]...)
	b = append(b, h.nonce[:]...)
	return b
}

// parseSealed splits a sealed file into its header and ciphertext, checking
// everything that can be checked before the (costly) key derivation. The
// KDF bounds are checked here so a hostile file cannot make argon2id
// allocate without limit.
func parseSealed(file []byte) (header, []byte, error) {
	var h header
	if len(file) < len(magic) || !bytes.Equal(file[:len(magic)], []byte(magic)) {
		return h, nil, fmt.Errorf("%w: not a soft HSM sealed key file (bad magic)", ErrFormat)
	}
	if len(file) < headerLen {
		return h, nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrFormat, len(file), headerLen)
	}
	if v := binary.BigEndian.Uint16(file[8:10]); v != formatVersion {
		return h, nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrFormat, v, formatVersion)
	}
	h.kdf = KDFParams{
		Time:      binary.BigEndian.Uint32(file[10:14]),
		MemoryKiB: binary.BigEndian.Uint32(file[14:18]),
		Threads:   file[18],
	}
	if err := h.kdf.Validate(); err != nil {
		return h, nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	copy(h.salt[:], file[19:19+saltLen])
	copy(h.nonce[:], file[19+saltLen:headerLen])
	ct := file[headerLen:]
	if len(ct) < 4+gcmTagLen || (len(ct)-4-gcmTagLen)%entryLen != 0 {
		return h, nil, fmt.Errorf("%w: sealed body of %d bytes cannot hold a DK set", ErrFormat, len(ct))
	}
	return h, ct, nil
}

// dkEntry is one DK version.
type dkEntry struct {
	version uint32
	key     []byte // dkLen bytes
}

// marshalSet serializes a DK set. The caller wipes the result.
func marshalSet(set []dkEntry) []byte {
	b := make([]byte, 0, 4+len(set)*entryLen)
	b = binary.BigEndian.AppendUint32(b, uint32(len(set)))
	for _, e := range set {
		b = binary.BigEndian.AppendUint32(b, e.version)
		b = append(b, e.key...)
	}
	return b
}

// parseSet reverses marshalSet. The plaintext has passed GCM, so a failure
// here means a bug or a file sealed by something else with this
// passphrase; it is still checked rather than trusted. Keys are copied out,
// so the caller may wipe b.
func parseSet(b []byte) ([]dkEntry, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: DK set truncated", ErrFormat)
	}
	n := binary.BigEndian.Uint32(b[:4])
	// n == 0 is a node awaiting enrolment (CreateEmpty).
	if n > maxDKVersions || uint64(len(b)-4) != uint64(n)*entryLen {
		return nil, fmt.Errorf("%w: DK set of %d bytes does not hold %d versions", ErrFormat, len(b), n)
	}
	set := make([]dkEntry, n)
	keys := make([]byte, int(n)*dkLen) // one backing array: one thing to wipe
	var prev uint32
	for i := range set {
		e := b[4+i*entryLen:]
		v := binary.BigEndian.Uint32(e[:4])
		if v <= prev {
			clear(keys)
			return nil, fmt.Errorf("%w: DK version %d after %d (want strictly ascending, non-zero)", ErrFormat, v, prev)
		}
		prev = v
		k := keys[i*dkLen : (i+1)*dkLen : (i+1)*dkLen]
		copy(k, e[4:entryLen])
		set[i] = dkEntry{version: v, key: k}
	}
	return set, nil
}
