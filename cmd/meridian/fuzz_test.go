package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// FuzzDecodeBase64 feeds the ciphertext/signature decoder arbitrary file
// contents: it must never panic, and what it accepts must be base64 of the
// bytes it returns (whitespace and padding aside).
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"", "aGk=", "aGk", "aGk=\n", "aG\nk=", " ", "====", "a", "ab=c", "*", "AAAA\r\nAAAA", "aGk==="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := decodeBase64("ciphertext", in)
		if err != nil {
			return
		}
		want := strings.TrimRight(string(bytes.Join(bytes.Fields(in), nil)), "=")
		if got := base64.RawStdEncoding.EncodeToString(out); got != want {
			t.Fatalf("decoded %q to %x, which encodes as %q", in, out, got)
		}
	})
}

// FuzzParsePairs: --context and --tag values never panic the parser, and an
// accepted value splits at its first '=' with a non-empty key.
func FuzzParsePairs(f *testing.F) {
	for _, s := range []string{"a=b", "=b", "a", "a==", "a=b=c", "", "é=ü"} {
		f.Add(s, "x=y")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		pairs, err := parsePairs("context", []string{a, b})
		if err != nil {
			return
		}
		for i, in := range []string{a, b} {
			if pairs[i][0] == "" || pairs[i][0]+"="+pairs[i][1] != in || strings.Contains(pairs[i][0], "=") {
				t.Fatalf("%q parsed as %q", in, pairs[i])
			}
		}
		if pairs[0][0] == pairs[1][0] {
			t.Fatal("accepted a repeated key")
		}
	})
}

// FuzzParseEnum: any spelling either maps to a real, specified value whose
// printed name parses back to it, or is an error listing the allowed values.
func FuzzParseEnum(f *testing.F) {
	for _, s := range []string{"SYMMETRIC_DEFAULT", "hmac-256", "KEY_SPEC_RSA_2048", "UNSPECIFIED", "", "KEY_SPEC_", " rsa_4096 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseEnum[apiv1.KeySpec](s, "key spec")
		if err != nil {
			if !strings.Contains(err.Error(), "allowed: SYMMETRIC_DEFAULT") {
				t.Fatalf("error %q does not list the allowed values", err)
			}
			return
		}
		if v == 0 {
			t.Fatalf("%q parsed to UNSPECIFIED", s)
		}
		back, err := parseEnum[apiv1.KeySpec](enumText(v), "key spec")
		if err != nil || back != v {
			t.Fatalf("%q -> %v does not round-trip (%v)", s, v, err)
		}
	})
}
