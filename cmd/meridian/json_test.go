package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// decodeJSON parses out keeping numbers as json.Number, so a test can tell
// 42 from "42".
func decodeJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value:\n%s", out)
	}
	return v
}

// wantJSON checks fields of obj: a string want is compared as a string, a
// json.Number as a number (not a quoted one), nil as null, anything else
// with ==.
func wantJSON(t *testing.T, what string, obj map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		got, ok := obj[k]
		if !ok {
			t.Errorf("%s: field %q missing", what, k)
			continue
		}
		switch w := w.(type) {
		case []string:
			var g []string
			for _, x := range got.([]any) {
				g = append(g, x.(string))
			}
			if strings.Join(g, ",") != strings.Join(w, ",") {
				t.Errorf("%s: %s = %v, want %v", what, k, got, w)
			}
		default:
			if got != w {
				t.Errorf("%s: %s = %#v, want %#v", what, k, got, w)
			}
		}
	}
}

// -o json spells enums, numbers and times as the text output and
// docs/CLI.md do, not as protojson does.
func TestJSONOutputShape(t *testing.T) {
	f, addr := startFake(t)

	out, errOut, code := keyCLI(t, addr, "", "create", "--spec", "RSA_2048", "--usage", "SIGN_VERIFY", "-o", "json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	v := decodeJSON(t, out)
	wantJSON(t, "create", v, map[string]any{"commitIndex": json.Number("42")})
	wantJSON(t, "create keyMetadata", v["keyMetadata"].(map[string]any), map[string]any{
		"keyId": "k-1", "keySpec": "RSA_2048", "keyState": "Enabled", "enabled": true,
		"keyUsage":          nil, // unset: null, never "KEY_USAGE_UNSPECIFIED"
		"currentKeyVersion": json.Number("0"), "creationDate": nil, "signingAlgorithms": []string{},
	})

	out, errOut, code = keyCLI(t, addr, "", "describe", "--key", "k-1", "-o", "json")
	if code != 0 {
		t.Fatalf("describe: exit %d: %s", code, errOut)
	}
	md := decodeJSON(t, out)["keyMetadata"].(map[string]any)
	wantJSON(t, "describe", md, map[string]any{
		"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT", "keyState": "Disabled",
		"creationDate": "2025-03-04T05:06:07Z", "currentKeyVersion": json.Number("3"),
		"encryptionAlgorithms": []string{"SYMMETRIC_DEFAULT"},
	})
	// The text output says the same things in the same spelling.
	text, _, _ := keyCLI(t, addr, "", "describe", "--key", "k-1")
	for _, line := range []string{"KeySpec: SYMMETRIC_DEFAULT\n", "KeyUsage: ENCRYPT_DECRYPT\n", "KeyState: Disabled\n",
		"CreationDate: 2025-03-04T05:06:07Z\n", "CurrentKeyVersion: 3\n", "EncryptionAlgorithms: SYMMETRIC_DEFAULT\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("describe text lacks %q:\n%s", line, text)
		}
	}

	out, errOut, code = keyCLI(t, addr, "", "encrypt", "--key", "k-1", "--plaintext", "hi", "--output", "JSON")
	if code != 0 {
		t.Fatalf("encrypt: exit %d: %s", code, errOut)
	}
	wantJSON(t, "encrypt", decodeJSON(t, out), map[string]any{
		"ciphertextBlob": b64("ct:hi"), "keyId": "k-1", "keyVersion": json.Number("1"),
		"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
	})

	// Lists: rows as an array of objects; every field present.
	out, _, _ = keyCLI(t, addr, "", "list", "-o", "json")
	v = decodeJSON(t, out)
	wantJSON(t, "list", v, map[string]any{"truncated": true, "nextMarker": "m-2"})
	if keys := v["keys"].([]any); len(keys) != 2 || keys[1].(map[string]any)["keyId"] != "k-2" {
		t.Errorf("list keys = %v", v["keys"])
	}
	out, _, _ = keyCLI(t, addr, "", "random", "-o", "json")
	if _, ok := decodeJSON(t, out)["plaintext"]; !ok {
		t.Errorf("empty bytes field omitted: %s", out)
	}

	// Operator commands: enums without their proto prefix, indexes as numbers.
	f.RecordMembers(true)
	out, errOut, code = cli(t, "", "operator", "members", "--insecure", "--no-discovery", "--addr", addr, "-o", "json")
	if code != 0 {
		t.Fatalf("members: exit %d: %s", code, errOut)
	}
	v = decodeJSON(t, out)
	// Applied up to the create's commit, the one write so far.
	wantJSON(t, "members", v, map[string]any{"appliedIndex": json.Number("42"), "servedBy": "n1"})
	wantJSON(t, "members[0]", v["members"].([]any)[0].(map[string]any), map[string]any{
		"role": "VOTER", "status": "ALIVE", "buildVersion": "v1.2.3", "leader": true,
	})

	// The same bytes every run: scripts diff them.
	a, _, _ := keyCLI(t, addr, "", "describe", "--key", "k-1", "-o", "json")
	b, _, _ := keyCLI(t, addr, "", "describe", "--key", "k-1", "-o", "json")
	if a != b {
		t.Errorf("two runs differ:\n%s\n%s", a, b)
	}
}

// With -o json a failure is one JSON object on stderr, named like the text
// error names it; stdout stays empty and the exit code is unchanged.
func TestJSONErrors(t *testing.T) {
	_, addr := startFake(t)
	tests := []struct {
		name     string
		args     []string
		exit     int
		code     string
		message  string // exact, or "" to check only that it is not empty
		contains string
	}{
		{"server exception", []string{"encrypt", "--key", "k-off", "--plaintext", "x"}, exitError,
			"DisabledException", "key k-off is disabled", ""},
		{"not found", []string{"describe", "--key", "alias/missing"}, exitError,
			"NotFoundException", "key alias/missing not found", ""},
		{"failed verification", []string{"verify", "--key", "k-1", "--message", "m", "--signature", b64("bad"),
			"--signing-algorithm", "ECDSA_SHA_256"}, exitError, "KMSInvalidSignatureException", "the signature is not valid", ""},
		{"usage", []string{"random", "--raw-out", "-"}, exitUsage, codeUsage, "", "cannot be combined with -o json"},
		{"bad flag value", []string{"create", "--spec", "AES"}, exitUsage, codeUsage, "", `unknown key spec "AES"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := keyCLI(t, addr, "", append(tt.args, "-o", "json")...)
			if code != tt.exit || out != "" {
				t.Fatalf("exit %d (want %d), stdout %q", code, tt.exit, out)
			}
			var got struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			dec := json.NewDecoder(strings.NewReader(errOut))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("stderr is not one error object (%v): %q", err, errOut)
			}
			if got.Error.Code != tt.code || (tt.message != "" && got.Error.Message != tt.message) ||
				!strings.Contains(got.Error.Message, tt.contains) || got.Error.Message == "" {
				t.Fatalf("error = %+v, want code %s, message %q/%q", got.Error, tt.code, tt.message, tt.contains)
			}
		})
	}

	// MERIDIAN_OUTPUT=json asks for JSON errors too.
	t.Setenv("MERIDIAN_OUTPUT", "json")
	_, errOut, code := keyCLI(t, addr, "", "describe", "--key", "alias/missing")
	if code != exitError || !bytes.HasPrefix([]byte(errOut), []byte(`{"error":{"code":"NotFoundException"`)) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
