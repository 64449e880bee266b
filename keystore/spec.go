package keystore

import (
	"crypto"
	"crypto/elliptic"
	// Register the hashes the signing and MAC algorithms name.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// family groups key specs by the operations they allow.
type family int

const (
	famSymmetric family = iota + 1
	famHMAC
	famRSA
	famECC
)

// specInfo is everything the keystore knows about a key spec. number is the
// api (and fsm) enum number.
type specInfo struct {
	number int32
	family family
	usages []KeyUsage // allowed; the first is the default
	bits   int        // RSA modulus size
	curve  elliptic.Curve
	hash   crypto.Hash // HMAC hash; the ECDSA hash the curve pairs with
	size   int         // symmetric and HMAC key size in bytes
}

var specs = map[KeySpec]specInfo{
	SpecSymmetricDefault: {number: 1, family: famSymmetric, usages: []KeyUsage{UsageEncryptDecrypt}, size: 32},
	SpecHMAC256:          {number: 2, family: famHMAC, usages: []KeyUsage{UsageGenerateVerifyMAC}, hash: crypto.SHA256, size: 32},
	SpecHMAC384:          {number: 3, family: famHMAC, usages: []KeyUsage{UsageGenerateVerifyMAC}, hash: crypto.SHA384, size: 48},
	SpecHMAC512:          {number: 4, family: famHMAC, usages: []KeyUsage{UsageGenerateVerifyMAC}, hash: crypto.SHA512, size: 64},
	SpecRSA2048:          {number: 5, family: famRSA, usages: []KeyUsage{UsageEncryptDecrypt, UsageSignVerify}, bits: 2048},
	SpecRSA3072:          {number: 6, family: famRSA, usages: []KeyUsage{UsageEncryptDecrypt, UsageSignVerify}, bits: 3072},
	SpecRSA4096:          {number: 7, family: famRSA, usages: []KeyUsage{UsageEncryptDecrypt, UsageSignVerify}, bits: 4096},
	SpecECCP256:          {number: 8, family: famECC, usages: []KeyUsage{UsageSignVerify}, curve: elliptic.P256(), hash: crypto.SHA256},
	SpecECCP384:          {number: 9, family: famECC, usages: []KeyUsage{UsageSignVerify}, curve: elliptic.P384(), hash: crypto.SHA384},
	SpecECCP521:          {number: 10, family: famECC, usages: []KeyUsage{UsageSignVerify}, curve: elliptic.P521(), hash: crypto.SHA512},
}

// specByNumber inverts specs; index = enum number.
var specByNumber = func() []KeySpec {
	out := make([]KeySpec, 11)
	for s, i := range specs {
		out[i.number] = s
	}
	return out
}()

// Enum numbers shared with the api and the fsm records; index = number.
var (
	usageByNumber      = []KeyUsage{"", UsageEncryptDecrypt, UsageSignVerify, UsageGenerateVerifyMAC}
	originByNumber     = []Origin{"", OriginMeridian}
	protectionByNumber = []ProtectionLevel{"", ProtectionSoftware, ProtectionHSM}
	stateByNumber      = []KeyState{"", StateEnabled, StateDisabled, StatePendingDeletion}
)

// enumNumber returns v's index in table (its enum number), or 0.
func enumNumber[T comparable](table []T, v T) int32 {
	for i, x := range table {
		if i > 0 && x == v {
			return int32(i)
		}
	}
	return 0
}

// enumName returns table[n], or "" for an unknown number.
func enumName[T any](table []T, n int32) T {
	var zero T
	if n <= 0 || int(n) >= len(table) {
		return zero
	}
	return table[n]
}

// signInfo describes a signing algorithm.
type signInfo struct {
	family family
	pss    bool
	hash   crypto.Hash
}

var signAlgs = map[SigningAlgorithm]signInfo{
	SignRSAPSSSHA256:   {famRSA, true, crypto.SHA256},
	SignRSAPSSSHA384:   {famRSA, true, crypto.SHA384},
	SignRSAPSSSHA512:   {famRSA, true, crypto.SHA512},
	SignRSAPKCS1SHA256: {famRSA, false, crypto.SHA256},
	SignRSAPKCS1SHA384: {famRSA, false, crypto.SHA384},
	SignRSAPKCS1SHA512: {famRSA, false, crypto.SHA512},
	SignECDSASHA256:    {famECC, false, crypto.SHA256},
	SignECDSASHA384:    {famECC, false, crypto.SHA384},
	SignECDSASHA512:    {famECC, false, crypto.SHA512},
}

var rsaSignAlgs = []SigningAlgorithm{
	SignRSAPSSSHA256, SignRSAPSSSHA384, SignRSAPSSSHA512,
	SignRSAPKCS1SHA256, SignRSAPKCS1SHA384, SignRSAPKCS1SHA512,
}

// macAlgs maps a MAC algorithm to its hash.
var macAlgs = map[MacAlgorithm]crypto.Hash{
	MacHMACSHA256: crypto.SHA256,
	MacHMACSHA384: crypto.SHA384,
	MacHMACSHA512: crypto.SHA512,
}

// oaepHash maps an RSA encryption algorithm to its OAEP hash.
var oaepHash = map[EncryptionAlgorithm]crypto.Hash{
	EncRSAOAEPSHA1:   crypto.SHA1,
	EncRSAOAEPSHA256: crypto.SHA256,
}

// allows reports whether the spec permits usage.
func (i specInfo) allows(u KeyUsage) bool {
	for _, x := range i.usages {
		if x == u {
			return true
		}
	}
	return false
}

// encryptionAlgorithms lists what a key of this spec and usage encrypts with.
func encryptionAlgorithms(spec KeySpec, usage KeyUsage) []EncryptionAlgorithm {
	if usage != UsageEncryptDecrypt {
		return nil
	}
	switch specs[spec].family {
	case famSymmetric:
		return []EncryptionAlgorithm{EncSymmetricDefault}
	case famRSA:
		return []EncryptionAlgorithm{EncRSAOAEPSHA1, EncRSAOAEPSHA256}
	}
	return nil
}

// signingAlgorithms lists what a key of this spec and usage signs with. An
// ECC key signs with the hash its curve pairs with, as in AWS KMS.
func signingAlgorithms(spec KeySpec, usage KeyUsage) []SigningAlgorithm {
	if usage != UsageSignVerify {
		return nil
	}
	info := specs[spec]
	switch info.family {
	case famRSA:
		return append([]SigningAlgorithm(nil), rsaSignAlgs...)
	case famECC:
		for a, s := range signAlgs {
			if s.family == famECC && s.hash == info.hash {
				return []SigningAlgorithm{a}
			}
		}
	}
	return nil
}

// macAlgorithms lists the one MAC algorithm an HMAC key computes.
func macAlgorithms(spec KeySpec) []MacAlgorithm {
	info := specs[spec]
	if info.family != famHMAC {
		return nil
	}
	for a, h := range macAlgs {
		if h == info.hash {
			return []MacAlgorithm{a}
		}
	}
	return nil
}

// signAlgAllowed reports whether alg fits the key spec.
func signAlgAllowed(spec KeySpec, alg SigningAlgorithm) bool {
	a, info := signAlgs[alg], specs[spec]
	if a.family != info.family {
		return false
	}
	return a.family == famRSA || a.hash == info.hash
}
