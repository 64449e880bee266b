package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/fakekms"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestCreateParsesFlags(t *testing.T) {
	f, addr := startFake(t)
	out, errOut, code := keyCLI(t, addr, "", "create", "--description", "orders",
		"--spec", "hmac_256", "--usage", "Generate_Verify_Mac", "--protection-level", "hsm",
		"--tag", "team=payments", "--tag", "expr=a=b")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	last := f.Last(t)
	method, req := last.Method, last.Request.(*apiv1.CreateKeyRequest)
	if method != "CreateKey" || req.GetDescription() != "orders" ||
		req.GetKeySpec() != apiv1.KeySpec_KEY_SPEC_HMAC_256 ||
		req.GetKeyUsage() != apiv1.KeyUsage_KEY_USAGE_GENERATE_VERIFY_MAC ||
		req.GetProtectionLevel() != apiv1.ProtectionLevel_PROTECTION_LEVEL_HSM {
		t.Fatalf("server got %s %v", method, req)
	}
	want := []*apiv1.Tag{{TagKey: "team", TagValue: "payments"}, {TagKey: "expr", TagValue: "a=b"}}
	if len(req.GetTags()) != 2 || !proto.Equal(req.GetTags()[0], want[0]) || !proto.Equal(req.GetTags()[1], want[1]) {
		t.Fatalf("tags = %v", req.GetTags())
	}
	if req.GetRequestId() == "" {
		t.Fatal("CreateKey sent no request id")
	}
	for _, line := range []string{"KeyId: k-1\n", "KeySpec: HMAC_256\n", "KeyState: Enabled\n", "CommitIndex: 42\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	f, addr := startFake(t)
	tests := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"bad key spec", []string{"create", "--spec", "AES"},
			[]string{`unknown key spec "AES"`, "allowed: SYMMETRIC_DEFAULT, HMAC_256", "ECC_NIST_P521"}},
		{"unspecified is not a value", []string{"create", "--spec", "UNSPECIFIED"}, []string{"unknown key spec"}},
		{"bad signing algorithm", []string{"sign", "--key", "k", "--message", "m", "--signing-algorithm", "PSS"},
			[]string{`unknown signing algorithm "PSS"`, "RSASSA_PSS_SHA_256", "ECDSA_SHA_512"}},
		{"bad data key spec", []string{"generate-data-key", "--key", "k", "--spec", "AES_512"}, []string{"allowed: AES_128, AES_256"}},
		{"bad output", []string{"list", "-o", "yaml"}, []string{`unknown output format "yaml"`}},
		{"missing key", []string{"describe"}, []string{"--key is required"}},
		{"missing plaintext", []string{"encrypt", "--key", "k"}, []string{"--plaintext or --plaintext-file is required"}},
		{"both plaintexts", []string{"encrypt", "--key", "k", "--plaintext", "a", "--plaintext-file", "-"}, []string{"not both"}},
		{"bad context", []string{"encrypt", "--key", "k", "--plaintext", "a", "--context", "novalue"}, []string{"want KEY=VALUE"}},
		{"repeated context", []string{"encrypt", "--key", "k", "--plaintext", "a", "--context", "a=1", "--context", "a=2"}, []string{`key "a" given twice`}},
		{"bad base64", []string{"decrypt", "--ciphertext", "not*base64"}, []string{"not valid base64", "--binary"}},
		{"spec and bytes", []string{"generate-data-key", "--key", "k", "--spec", "AES_128", "--bytes", "16"}, []string{"either --spec or --bytes"}},
		{"positional argument", []string{"describe", "k-1"}, []string{"takes no positional arguments"}},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate" for "meridian key"`}},
		{"unknown flag", []string{"list", "--bogus"}, []string{"unknown flag: --bogus"}},
		{"two stdin inputs", []string{"verify", "--key", "k", "--signing-algorithm", "ECDSA_SHA_256", "--message-file", "-", "--signature-file", "-"}, []string{"only one input can come from stdin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := keyCLI(t, addr, "", tt.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, "--help' for usage.") {
				t.Errorf("stderr not in the error format: %q", errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
	if n := len(f.Calls()); n != 0 {
		t.Fatalf("usage errors reached the server %d times", n)
	}
}

func TestInsecureRequired(t *testing.T) {
	f, addr := startFake(t)
	_, errOut, code := cli(t, "", "key", "list", "--addr", addr)
	if code != exitUsage || !strings.Contains(errOut, "refusing to connect without TLS") || !strings.Contains(errOut, "--insecure") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if len(f.Calls()) != 0 {
		t.Fatal("the CLI called the server without --insecure")
	}
}

func TestServerErrorFormatAndExitCode(t *testing.T) {
	_, addr := startFake(t)
	out, errOut, code := keyCLI(t, addr, "", "describe", "--key", "alias/missing")
	if code != exitError {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := "error: NotFoundException: key alias/missing not found\n"; errOut != want {
		t.Fatalf("stderr = %q, want %q", errOut, want)
	}
	if out != "" {
		t.Fatalf("stdout = %q", out)
	}
}

func TestUnreachableNodeExits1(t *testing.T) {
	lis := fakekms.ClosedAddr(t)
	_, errOut, code := keyCLI(t, lis, "", "list")
	if code != exitError || !strings.Contains(errOut, "no reachable node") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestEncryptInputs(t *testing.T) {
	f, addr := startFake(t)
	dir := t.TempDir()
	ptFile := filepath.Join(dir, "pt")
	if err := os.WriteFile(ptFile, []byte("from file\x00\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"inline", "", []string{"--plaintext", "hello"}, "hello"},
		{"file", "", []string{"--plaintext-file", ptFile}, "from file\x00\xff"},
		{"stdin", "piped\n", []string{"--plaintext-file", "-"}, "piped\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"encrypt", "--key", "alias/orders", "--context", "app=orders", "--context", "tenant=7"}, tt.args...)
			out, errOut, code := keyCLI(t, addr, tt.stdin, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			req := f.Last(t).Request.(*apiv1.EncryptRequest)
			if string(req.GetPlaintext()) != tt.want || req.GetKeyId() != "alias/orders" ||
				req.GetEncryptionContext()["app"] != "orders" || req.GetEncryptionContext()["tenant"] != "7" {
				t.Fatalf("server got %v", req)
			}
			if line := "CiphertextBlob: " + b64("ct:"+tt.want) + "\n"; !strings.HasPrefix(out, line) {
				t.Fatalf("output %q does not start with %q", out, line)
			}
			if !strings.Contains(out, "EncryptionAlgorithm: SYMMETRIC_DEFAULT\n") {
				t.Fatalf("output lacks the algorithm: %q", out)
			}
		})
	}
}

func TestDecryptInputsAndRawOutput(t *testing.T) {
	f, addr := startFake(t)
	dir := t.TempDir()
	wrapped := filepath.Join(dir, "ct.b64")
	enc := b64("ct:secret message, long enough to wrap")
	if err := os.WriteFile(wrapped, []byte(enc[:20]+"\n"+enc[20:]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "ct.bin")
	if err := os.WriteFile(raw, []byte("ct:raw\x00bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	unpadded := strings.TrimRight(b64("ct:x"), "=")

	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"inline base64", "", []string{"--ciphertext", b64("ct:hi")}, "hi"},
		{"unpadded base64", "", []string{"--ciphertext", unpadded}, "x"},
		{"wrapped base64 file", "", []string{"--ciphertext-file", wrapped}, "secret message, long enough to wrap"},
		{"raw file", "", []string{"--ciphertext-file", raw, "--binary"}, "raw\x00bytes"},
		{"base64 stdin", b64("ct:stdin") + "\n", []string{"--ciphertext-file", "-"}, "stdin"},
		{"raw stdin", "ct:\x01\x02", []string{"--ciphertext-file", "-", "--binary"}, "\x01\x02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := keyCLI(t, addr, tt.stdin, append([]string{"decrypt", "--raw-out", "-"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if out != tt.want {
				t.Fatalf("raw stdout = %q, want %q", out, tt.want)
			}
			if f.Last(t).Request.(*apiv1.DecryptRequest).GetKeyId() != "" {
				t.Fatal("decrypt sent a key id nobody gave")
			}
		})
	}

	// --raw-out FILE: the bytes go to an owner-only file, the text says so.
	dst := filepath.Join(dir, "pt.out")
	out, errOut, code := keyCLI(t, addr, "", "decrypt", "--ciphertext", b64("ct:to file"), "--raw-out", dst)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got, err := os.ReadFile(dst)
	if err != nil || string(got) != "to file" {
		t.Fatalf("file holds %q (%v)", got, err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(out, "Plaintext: written to "+dst+" (7 bytes)\n") || strings.Contains(out, b64("to file")) {
		t.Fatalf("text output %q", out)
	}

	// Default text output is base64.
	out, _, _ = keyCLI(t, addr, "", "decrypt", "--ciphertext", b64("ct:\xff\xfe"))
	if !strings.HasPrefix(out, "Plaintext: "+b64("\xff\xfe")+"\n") {
		t.Fatalf("text output %q", out)
	}

	// A server-side InvalidCiphertext is an operation error, exit 1.
	_, errOut, code = keyCLI(t, addr, "", "decrypt", "--ciphertext", b64("garbage"))
	if code != exitError || errOut != "error: InvalidCiphertextException\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestListTextOutput(t *testing.T) {
	_, addr := startFake(t)
	out, _, code := keyCLI(t, addr, "", "list")
	want := "NextMarker: m-2\nKEY ID  KEY NAME\nk-1     meridian:key/k-1\nk-2     meridian:key/k-2\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, output:\n%q\nwant:\n%q", code, out, want)
	}
}

func TestVerifyExitCodes(t *testing.T) {
	_, addr := startFake(t)
	base := []string{"verify", "--key", "k-1", "--message", "m", "--signing-algorithm", "ecdsa_sha_256"}
	out, errOut, code := keyCLI(t, addr, "", append(base, "--signature", b64("good"))...)
	if code != 0 || !strings.Contains(out, "SignatureValid: true") {
		t.Fatalf("valid: exit %d, out %q, err %q", code, out, errOut)
	}
	_, errOut, code = keyCLI(t, addr, "", append(base, "--signature", b64("bad"))...)
	if code != exitError || !strings.Contains(errOut, "error: KMSInvalidSignatureException") {
		t.Fatalf("invalid: exit %d, err %q", code, errOut)
	}
	// A raw signature file.
	sig := filepath.Join(t.TempDir(), "sig")
	if err := os.WriteFile(sig, []byte("good"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = keyCLI(t, addr, "", append(base, "--signature-file", sig, "--binary")...); code != 0 {
		t.Fatalf("raw signature file: exit %d, %s", code, errOut)
	}
	_, errOut, code = keyCLI(t, addr, "", "verify-mac", "--key", "k-1", "--message", "m", "--mac", b64("bad"), "--mac-algorithm", "HMAC_SHA_256")
	if code != exitError || !strings.Contains(errOut, "KMSInvalidMacException") {
		t.Fatalf("invalid mac: exit %d, err %q", code, errOut)
	}
}

func TestGenerateDataKeyVariants(t *testing.T) {
	f, addr := startFake(t)
	if _, errOut, code := keyCLI(t, addr, "", "generate-data-key", "--key", "k-1"); code != 0 {
		t.Fatal(errOut)
	}
	last := f.Last(t)
	if req := last.Request.(*apiv1.GenerateDataKeyRequest); last.Method != "GenerateDataKey" || req.GetKeySpec() != apiv1.DataKeySpec_DATA_KEY_SPEC_AES_256 {
		t.Fatalf("%s %v", last.Method, req)
	}
	if _, errOut, code := keyCLI(t, addr, "", "generate-data-key", "--key", "k-1", "--bytes", "64", "--no-plaintext"); code != 0 {
		t.Fatal(errOut)
	}
	last = f.Last(t)
	if req := last.Request.(*apiv1.GenerateDataKeyRequest); last.Method != "GenerateDataKeyWithoutPlaintext" || req.GetNumberOfBytes() != 64 || req.GetKeySpec() != 0 {
		t.Fatalf("%s %v", last.Method, req)
	}
	if _, errOut, code := keyCLI(t, addr, "", "generate-data-key-pair", "--key", "k-1", "--spec", "ecc_nist_p384", "--no-plaintext"); code != 0 {
		t.Fatal(errOut)
	}
	last = f.Last(t)
	if req := last.Request.(*apiv1.GenerateDataKeyPairRequest); last.Method != "GenerateDataKeyPairWithoutPlaintext" || req.GetKeyPairSpec() != apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_ECC_NIST_P384 {
		t.Fatalf("%s %v", last.Method, req)
	}
}

func TestAddrFromEnvironment(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("MERIDIAN_ADDR", addr)
	if _, errOut, code := cli(t, "", "key", "list", "--insecure"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(f.Calls()) != 1 {
		t.Fatal("MERIDIAN_ADDR was not used")
	}
	// --addr wins over the environment.
	t.Setenv("MERIDIAN_ADDR", fakekms.ClosedAddr(t))
	if _, errOut, code := cli(t, "", "key", "list", "--insecure", "--addr", addr); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// Every leaf command reaches its RPC with its flags in the request.
func TestEveryCommandReachesItsRPC(t *testing.T) {
	f, addr := startFake(t)
	sig := []string{"--signing-algorithm", "RSASSA_PSS_SHA_256"}
	tests := []struct {
		args   []string
		method string
		check  func(proto.Message) bool
	}{
		{[]string{"create"}, "CreateKey", nil},
		{[]string{"list", "--limit", "5", "--marker", "m"}, "ListKeys", func(m proto.Message) bool {
			r := m.(*apiv1.ListKeysRequest)
			return r.GetLimit() == 5 && r.GetMarker() == "m"
		}},
		{[]string{"describe", "--key", "k-1"}, "DescribeKey", nil},
		{[]string{"update-description", "--key", "k", "--description", ""}, "UpdateKeyDescription", func(m proto.Message) bool {
			return m.(*apiv1.UpdateKeyDescriptionRequest).GetRequestId() != ""
		}},
		{[]string{"enable", "--key", "k"}, "EnableKey", nil},
		{[]string{"disable", "--key", "k"}, "DisableKey", nil},
		{[]string{"schedule-deletion", "--key", "k"}, "ScheduleKeyDeletion", func(m proto.Message) bool {
			return m.(*apiv1.ScheduleKeyDeletionRequest).GetPendingWindowInDays() == 30
		}},
		{[]string{"schedule-deletion", "--key", "k", "--days", "7"}, "ScheduleKeyDeletion", func(m proto.Message) bool {
			return m.(*apiv1.ScheduleKeyDeletionRequest).GetPendingWindowInDays() == 7
		}},
		{[]string{"cancel-deletion", "--key", "k"}, "CancelKeyDeletion", nil},
		{[]string{"rotate", "--key", "k"}, "RotateKeyOnDemand", nil},
		{[]string{"rotation", "enable", "--key", "k", "--period-days", "180"}, "EnableKeyRotation", func(m proto.Message) bool {
			return m.(*apiv1.EnableKeyRotationRequest).GetRotationPeriodInDays() == 180
		}},
		{[]string{"rotation", "disable", "--key", "k"}, "DisableKeyRotation", nil},
		{[]string{"rotation", "status", "--key", "k"}, "GetKeyRotationStatus", nil},
		{[]string{"rotation", "list", "--key", "k"}, "ListKeyRotations", nil},
		{[]string{"encrypt", "--key", "k", "--plaintext", "p", "--encryption-algorithm", "rsaes_oaep_sha_256"}, "Encrypt", func(m proto.Message) bool {
			return m.(*apiv1.EncryptRequest).GetEncryptionAlgorithm() == apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256
		}},
		{[]string{"decrypt", "--ciphertext", b64("ct:x"), "--key", "k"}, "Decrypt", nil},
		{[]string{"re-encrypt", "--ciphertext", b64("c"), "--key", "dst", "--source-key", "src", "--context", "a=1", "--destination-context", "b=2"}, "ReEncrypt", func(m proto.Message) bool {
			r := m.(*apiv1.ReEncryptRequest)
			return r.GetDestinationKeyId() == "dst" && r.GetSourceKeyId() == "src" &&
				r.GetSourceEncryptionContext()["a"] == "1" && r.GetDestinationEncryptionContext()["b"] == "2"
		}},
		{[]string{"generate-data-key", "--key", "k", "--spec", "AES_128"}, "GenerateDataKey", nil},
		{[]string{"generate-data-key-pair", "--key", "k", "--spec", "RSA_2048"}, "GenerateDataKeyPair", nil},
		{[]string{"random", "--bytes", "16"}, "GenerateRandom", func(m proto.Message) bool {
			return m.(*apiv1.GenerateRandomRequest).GetNumberOfBytes() == 16
		}},
		{append([]string{"sign", "--key", "k", "--message", "m", "--message-type", "DIGEST"}, sig...), "Sign", func(m proto.Message) bool {
			return m.(*apiv1.SignRequest).GetMessageType() == apiv1.MessageType_MESSAGE_TYPE_DIGEST
		}},
		{append([]string{"verify", "--key", "k", "--message", "m", "--signature", b64("good")}, sig...), "Verify", nil},
		{[]string{"get-public-key", "--key", "k"}, "GetPublicKey", nil},
		{[]string{"generate-mac", "--key", "k", "--message", "m", "--mac-algorithm", "HMAC_SHA_512"}, "GenerateMac", nil},
		{[]string{"verify-mac", "--key", "k", "--message", "m", "--mac", b64("good"), "--mac-algorithm", "HMAC_SHA_512"}, "VerifyMac", nil},
		{[]string{"alias", "create", "--alias", "alias/a", "--key", "k"}, "CreateAlias", func(m proto.Message) bool {
			r := m.(*apiv1.CreateAliasRequest)
			return r.GetAliasName() == "alias/a" && r.GetTargetKeyId() == "k" && r.GetRequestId() != ""
		}},
		{[]string{"alias", "update", "--alias", "alias/a", "--key", "k2"}, "UpdateAlias", nil},
		{[]string{"alias", "delete", "--alias", "alias/a"}, "DeleteAlias", nil},
		{[]string{"alias", "list", "--key", "k"}, "ListAliases", nil},
		{[]string{"tag", "add", "--key", "k", "--tag", "a=1"}, "TagResource", nil},
		{[]string{"tag", "remove", "--key", "k", "--tag-key", "a", "--tag-key", "b"}, "UntagResource", func(m proto.Message) bool {
			return len(m.(*apiv1.UntagResourceRequest).GetTagKeys()) == 2
		}},
		{[]string{"tag", "list", "--key", "k"}, "ListResourceTags", nil},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		_, errOut, code := keyCLI(t, addr, "", tt.args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", tt.args, code, errOut)
			continue
		}
		last := f.Last(t)
		method, req := last.Method, last.Request
		if method != tt.method {
			t.Errorf("%v called %s, want %s", tt.args, method, tt.method)
		}
		if tt.check != nil && !tt.check(req) {
			t.Errorf("%v: request %v", tt.args, req)
		}
		seen[method] = true
	}
	seen["GenerateDataKeyWithoutPlaintext"], seen["GenerateDataKeyPairWithoutPlaintext"] = true, true // TestGenerateDataKeyVariants
	f.RecordMembers(true)
	for _, args := range [][]string{{"operator", "members"}, {"operator", "raft", "list-peers"}} {
		if _, errOut, code := cli(t, "", append(args, "--insecure", "--no-discovery", "--addr", addr)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if method := f.Last(t).Method; method != "Members" {
			t.Fatalf("%v called %s, want Members", args, method)
		}
		seen["Members"] = true
	}
	for i := range apiv1.KeyManagement_ServiceDesc.Methods {
		if m := apiv1.KeyManagement_ServiceDesc.Methods[i].MethodName; !seen[m] {
			t.Errorf("no command calls %s", m)
		}
	}
}

// Every command documents itself: Short, Long and an Example.
func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Name() != "completion" && !strings.HasPrefix(c.CommandPath(), "meridian completion") {
			if c.Short == "" || c.Long == "" || c.Example == "" {
				t.Errorf("%q lacks Short, Long or Example", c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}

func TestGroupWithoutSubcommandPrintsHelp(t *testing.T) {
	out, errOut, code := cli(t, "", "key", "alias")
	if code != 0 || !strings.Contains(out, "Available Commands:") || errOut != "" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
}

// A commit index from another process makes the call wait for that write.
func TestConsistencyTokenFlagAndEnv(t *testing.T) {
	f, addr := startFake(t)
	if _, errOut, code := keyCLI(t, addr, "", "describe", "--key", "k-1", "--consistency-token", "42"); code != 0 {
		t.Fatal(errOut)
	}
	t.Setenv("MERIDIAN_CONSISTENCY_TOKEN", "77")
	if _, errOut, code := keyCLI(t, addr, "", "describe", "--key", "k-1"); code != 0 {
		t.Fatal(errOut)
	}
	t.Setenv("MERIDIAN_CONSISTENCY_TOKEN", "soon")
	if _, errOut, code := keyCLI(t, addr, "", "describe", "--key", "k-1"); code != exitUsage || !strings.Contains(errOut, "MERIDIAN_CONSISTENCY_TOKEN") {
		t.Fatalf("bad env token: exit %d, %q", code, errOut)
	}
	var tokens []string
	for _, c := range f.Calls() {
		tokens = append(tokens, c.Token)
	}
	if len(tokens) < 2 || tokens[0] != "42" || tokens[1] != "77" {
		t.Fatalf("tokens sent = %q, want 42 then 77", tokens)
	}
}

// A plaintext over Encrypt's 4096-byte limit is refused before any call,
// saying the limit and pointing to envelope encryption.
func TestEncryptPlaintextTooLarge(t *testing.T) {
	f, addr := startFake(t)
	big := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(big, make([]byte, 5<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stdin string
		args        []string
		size        string
	}{
		{"5 MB file", "", []string{"--plaintext-file", big}, "--plaintext-file " + big + " is 5242880 bytes"},
		{"5 MB on stdin", strings.Repeat("x", 5<<20), []string{"--plaintext-file", "-"}, "--plaintext-file - is more than 1048576 bytes"},
		{"one byte over, inline", "", []string{"--plaintext", strings.Repeat("x", 4097)}, "--plaintext is 4097 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := keyCLI(t, addr, tt.stdin, append([]string{"encrypt", "--key", "k-1"}, tt.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2: %s", code, errOut)
			}
			for _, want := range []string{tt.size, "at most 4096 bytes of plaintext", "AWS KMS", "envelope encryption", "meridian key generate-data-key"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
		})
	}
	if len(f.Calls()) != 0 {
		t.Fatal("an oversized plaintext reached the server")
	}
	if _, errOut, code := keyCLI(t, addr, "", "encrypt", "--key", "k-1", "--plaintext", strings.Repeat("x", 4096)); code != 0 {
		t.Fatalf("4096 bytes: exit %d: %s", code, errOut)
	}
}
