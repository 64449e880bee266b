package keystore

import (
	"crypto"
	"crypto/elliptic"
	// Register the hashes the signing and MAC algorithms name.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// family groups key specs by the operations they allow.
type family int

const (
	famSymmetric family = iota + 1
	famHMAC
	famRSA
	famECC
)

// specInfo is everything the keystore knows about a key spec. number is
// the fsm record's enum value.
type specInfo struct {
	number fsmpb.KeySpec
	family family
	usages []KeyUsage // allowed; the first is the default
	bits   int        // RSA modulus size
	curve  elliptic.Curve
	hash   crypto.Hash // HMAC hash; the ECDSA hash the curve pairs with
	size   int         // symmetric and HMAC key size in bytes
}

var specs = map[KeySpec]specInfo{
	SpecSymmetricDefault: {number: fsmpb.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT, family: famSymmetric, usages: []KeyUsage{UsageEncryptDecrypt}, size: 32},
	SpecHMAC256:          {number: fsmpb.KeySpec_KEY_SPEC_HMAC_256, family: famHMAC, usages: []KeyUsage{UsageGenerateVerifyMAC}, hash: crypto.SHA256, size: 32},
	SpecHMAC384:          {number: fsmpb.KeySpec_KEY_SPEC_HMAC_384, family: famHMAC, usages: []KeyUsage{UsageGenerateVerifyMAC}, hash: crypto.SHA384, size: 48},
	SpecHMAC512:          {number: fsmpb.KeySpec_KEY_SPEC_HMAC_512, family: famHMAC, usages: []KeyUsage{UsageGenerateVerifyMAC}, hash: crypto.SHA512, size: 64},
	SpecRSA2048:          {number: fsmpb.KeySpec_KEY_SPEC_RSA_2048, family: famRSA, usages: []KeyUsage{UsageEncryptDecrypt, UsageSignVerify}, bits: 2048},
	SpecRSA3072:          {number: fsmpb.KeySpec_KEY_SPEC_RSA_3072, family: famRSA, usages: []KeyUsage{UsageEncryptDecrypt, UsageSignVerify}, bits: 3072},
	SpecRSA4096:          {number: fsmpb.KeySpec_KEY_SPEC_RSA_4096, family: famRSA, usages: []KeyUsage{UsageEncryptDecrypt, UsageSignVerify}, bits: 4096},
	SpecECCP256:          {number: fsmpb.KeySpec_KEY_SPEC_ECC_NIST_P256, family: famECC, usages: []KeyUsage{UsageSignVerify}, curve: elliptic.P256(), hash: crypto.SHA256},
	SpecECCP384:          {number: fsmpb.KeySpec_KEY_SPEC_ECC_NIST_P384, family: famECC, usages: []KeyUsage{UsageSignVerify}, curve: elliptic.P384(), hash: crypto.SHA384},
	SpecECCP521:          {number: fsmpb.KeySpec_KEY_SPEC_ECC_NIST_P521, family: famECC, usages: []KeyUsage{UsageSignVerify}, curve: elliptic.P521(), hash: crypto.SHA512},
}

// recordEnum names the values of one fsm record enum (N): index = the
// enum number, value = the keystore's name ("" for UNSPECIFIED and gaps).
// The fsm owns the numbers and keeps them forever; the keystore converts
// here, at the edge, and transport converts names to the api's enums.
type recordEnum[N ~int32, T comparable] []T

// specByNumber inverts specs.
var specByNumber = func() recordEnum[fsmpb.KeySpec, KeySpec] {
	var out recordEnum[fsmpb.KeySpec, KeySpec]
	for s, i := range specs {
		if int(i.number) >= len(out) {
			out = append(out, make([]KeySpec, int(i.number)+1-len(out))...)
		}
		out[i.number] = s
	}
	return out
}()

var (
	usageByNumber = recordEnum[fsmpb.KeyUsage, KeyUsage]{
		fsmpb.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT:     UsageEncryptDecrypt,
		fsmpb.KeyUsage_KEY_USAGE_SIGN_VERIFY:         UsageSignVerify,
		fsmpb.KeyUsage_KEY_USAGE_GENERATE_VERIFY_MAC: UsageGenerateVerifyMAC,
	}
	originByNumber = recordEnum[fsmpb.Origin, Origin]{
		fsmpb.Origin_ORIGIN_MERIDIAN: OriginMeridian,
	}
	protectionByNumber = recordEnum[fsmpb.ProtectionLevel, ProtectionLevel]{
		fsmpb.ProtectionLevel_PROTECTION_LEVEL_SOFTWARE: ProtectionSoftware,
		fsmpb.ProtectionLevel_PROTECTION_LEVEL_HSM:      ProtectionHSM,
	}
	stateByNumber = recordEnum[fsmpb.KeyState, KeyState]{
		fsmpb.KeyState_KEY_STATE_ENABLED:          StateEnabled,
		fsmpb.KeyState_KEY_STATE_DISABLED:         StateDisabled,
		fsmpb.KeyState_KEY_STATE_PENDING_DELETION: StatePendingDeletion,
	}
)

// enumNumber returns v's record enum number in table, or 0 (UNSPECIFIED).
func enumNumber[N ~int32, T comparable](table recordEnum[N, T], v T) N {
	var zero T
	for i, x := range table {
		if x != zero && x == v {
			return N(i)
		}
	}
	return 0
}

// enumName returns the name of record enum number n, or "" for an unknown
// number.
func enumName[N ~int32, T comparable](table recordEnum[N, T], n N) T {
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
