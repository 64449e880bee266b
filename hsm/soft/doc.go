// Package soft is Meridian's embedded HSM backend: pure Go, no device, so
// `meridian demo`, tests and small installations run with nothing else
// installed. It implements hsm.HSM with the same wrap format (RFC 5649, see
// package keywrap) a PKCS#11 token produces, so stored blobs do not depend
// on which backend made them.
//
// # The sealed file
//
// The domain key (DK) set - versions 1..n, each a random 256-bit AES key -
// lives in one file sealed under a passphrase: argon2id turns the
// passphrase and a random salt into a key-encryption key, and AES-256-GCM
// seals the serialized set with the whole file header (magic, format
// version, argon2id parameters, salt, nonce) as additional data, so no
// header byte can be changed without Open noticing. The argon2id
// parameters are read from the file, so a file made with stronger (or, in
// tests, weaker) parameters opens with exactly those. The file is written
// atomically (temporary file, fsync, rename) with mode 0600 and never holds
// a DK byte in the clear. hsm/DESIGN.md gives the byte layout.
//
// In memory the HSM keeps the DK set and the derived key-encryption key
// (so RotateDomainKey can re-seal without the passphrase); it does not keep
// the passphrase. Close wipes both.
//
// # Several nodes
//
// Until HSM enrolment arrives (a joining node's HSM receives the DK wrapped
// to its own transport key), every node of a cluster that uses the soft
// backend must hold the same DK set: an operator creates the sealed file
// once (Create, or `meridian demo` / bootstrap through OpenOrCreate), then
// copies that file to each node, and every node opens it with the same
// passphrase. The file is safe to copy over ordinary channels - it is
// ciphertext - but the passphrase must travel separately. After a
// RotateDomainKey the new file must be copied again before other nodes
// can unwrap blobs made under the new version.
//
// Enrolment will replace the copying without changing this format: a node
// that receives DK versions adds them to its set and re-seals through the
// same write-then-swap path RotateDomainKey uses, so the file stays the
// one place a soft node keeps its DK.
package soft
