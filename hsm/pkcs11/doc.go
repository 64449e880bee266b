// Package pkcs11 is Meridian's production HSM backend: hsm.HSM over any
// PKCS#11 module (github.com/miekg/pkcs11), tested against SoftHSM2.
//
// The domain key (DK) is generated inside the token (InitDomainKey at
// cluster bootstrap, RotateDomainKey for each new version) as a sensitive
// AES-256 token object labelled DomainKeyLabelPrefix+version; its value
// never leaves the token in the clear. Wrap and Unwrap run RFC 5649
// (CKM_AES_KEY_WRAP_PAD) inside the token, byte-for-byte compatible with
// package keywrap and the soft backend, so blobs do not depend on which
// backend made them.
//
// The module is loaded and C_Initialize'd once per process and shared,
// reference-counted, by every HSM using it. Each HSM keeps one logged-in
// session for its lifetime and a pool of operation sessions; every call
// borrows one with the caller's context. A session or device error drops
// the sessions, marks the HSM unavailable (hsm.ErrUnavailable) and the
// next call or Health reconnects by label and logs in again.
//
// DESIGN.md explains the DK attribute policy and the SoftHSM 2.6 key wrap
// quirk this package works around.
package pkcs11
