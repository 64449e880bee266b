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
// A joining node starts with CreateEmpty (or OpenOrCreateEmpty): a sealed
// file holding no DK, so Health says hsm.ErrNoDomainKey. Enrolment
// (hsm.Enroller, enrol.go) then hands it the cluster's DK versions wrapped
// to its in-memory RSA-3072 transport key; ImportDomainKeys adds them to
// the set and re-seals the file through the same write-then-swap path
// RotateDomainKey uses, so the file stays the one place a soft node keeps
// its DK and a restarted node still holds it. Copying one sealed file to
// every node (same passphrase, sent separately) still works for clusters
// set up by hand; after a RotateDomainKey other nodes need the new
// version before they can unwrap blobs made under it.
package soft
