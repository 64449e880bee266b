package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/fakekms"
)

func rotationScript() []*apiv1.RotateDomainKeyProgress {
	return []*apiv1.RotateDomainKeyProgress{
		{Phase: apiv1.RotatePhase_ROTATE_PHASE_ROTATE_HSM, DomainKeyVersion: 2},
		{Phase: apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE, DomainKeyVersion: 2, NodeId: "n2", ApiAddr: "10.0.0.2:7400",
			Outcome: apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_OK, ImportedVersions: []uint32{2}},
		{Phase: apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE, DomainKeyVersion: 2, NodeId: "n3", ApiAddr: "10.0.0.3:7400",
			Outcome: apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_SKIPPED, Detail: "node is DEAD"},
		{Phase: apiv1.RotatePhase_ROTATE_PHASE_REWRAP, Done: 0, Total: 3},
		{Phase: apiv1.RotatePhase_ROTATE_PHASE_REWRAP, Done: 3, Total: 3},
		{Phase: apiv1.RotatePhase_ROTATE_PHASE_DONE, DomainKeyVersion: 2},
	}
}

func TestDomainKeyRotatePrintsProgress(t *testing.T) {
	addr := startFakeOperator(t, &fakeOperator{progress: rotationScript()})
	out, errOut, code := opCLI(t, addr, "domain-key", "rotate")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{
		"rotate-hsm: made domain key v2 in this node's HSM",
		"distribute: n2 (10.0.0.2:7400) ok, imported v2",
		"distribute: n3 (10.0.0.3:7400) skipped: node is DEAD",
		"rewrap: 0/3 key versions",
		"rewrap: 3/3 key versions",
		"done: every key version is under domain key v2",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}

func TestDomainKeyRotateFailure(t *testing.T) {
	script := rotationScript()[:1]
	script = append(script, &apiv1.RotateDomainKeyProgress{Phase: apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE, NodeId: "n2", ApiAddr: "10.0.0.2:7400",
		Outcome: apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_FAILED, Detail: "Unavailable: connection refused"})
	addr := startFakeOperator(t, &fakeOperator{progress: script,
		rotateErr: fakekms.APIError(codes.Unavailable, "KMSUnavailableException", "1 member(s) did not receive domain key v2: node n2")})
	out, errOut, code := opCLI(t, addr, "domain-key", "rotate")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "distribute: n2 (10.0.0.2:7400) FAILED: Unavailable: connection refused") {
		t.Errorf("output lacks the failure line:\n%s", out)
	}
	if !strings.Contains(errOut, "node "+addr+": KMSUnavailableException: 1 member(s) did not receive domain key v2: node n2") {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestDomainKeyRotateJSONLines(t *testing.T) {
	addr := startFakeOperator(t, &fakeOperator{progress: rotationScript()})
	out, errOut, code := opCLI(t, addr, "domain-key", "rotate", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(rotationScript()) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(rotationScript()), out)
	}
	var last struct {
		Phase            string `json:"phase"`
		DomainKeyVersion int    `json:"domainKeyVersion"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Phase != "DONE" || last.DomainKeyVersion != 2 {
		t.Fatalf("last line %+v", last)
	}
}

func TestProgressBarOnTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progressPrinter{w: &b, tty: true}
	for _, m := range rotationScript()[3:] {
		if err := p.print(m); err != nil {
			t.Fatal(err)
		}
	}
	got := b.String()
	if !strings.Contains(got, "\rrewrap: [..............................] 0/3") ||
		!strings.Contains(got, "\rrewrap: [##############################] 3/3 key versions\ndone:") {
		t.Fatalf("bar output %q", got)
	}
}

func TestDomainKeyStatusAndSync(t *testing.T) {
	f := &fakeOperator{dk: &apiv1.DomainKeyStatusResponse{NodeId: "n1", HsmBackend: "pkcs11", HsmDomainKeyVersions: []uint32{1, 2},
		CurrentDomainKeyVersion: 2, TotalKeyVersions: 7, PendingKeyVersions: 3,
		KeyVersions: []*apiv1.DomainKeyVersionCount{{DomainKeyVersion: 1, KeyVersions: 3}, {DomainKeyVersion: 2, KeyVersions: 4}}}}
	addr := startFakeOperator(t, f)
	out, errOut, code := opCLI(t, addr, "domain-key", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{"Node: n1", "HSMBackend: pkcs11", "HSMDomainKeyVersions: v1,v2", "Current: v2", "KeyVersions: 7", "Pending: 3", "v1          3", "v2          4"} {
		if !strings.Contains(out, w) {
			t.Errorf("status output lacks %q:\n%s", w, out)
		}
	}

	_, errOut, code = opCLI(t, addr, "domain-key", "sync")
	if code != 2 || !strings.Contains(errOut, "--from is required") {
		t.Fatalf("sync without --from: exit %d: %s", code, errOut)
	}
	out, errOut, code = opCLI(t, addr, "domain-key", "sync", "--from", "10.0.0.1:7400")
	if code != 0 || !strings.Contains(out, "Imported: v2") || !strings.Contains(out, "HSMDomainKeyVersions: v1,v2") {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	if len(f.syncFrom) != 1 || f.syncFrom[0] != "10.0.0.1:7400" {
		t.Fatalf("server saw sync from %v", f.syncFrom)
	}
}

func TestHSMStatusOnline(t *testing.T) {
	addr := startFakeOperator(t, &fakeOperator{hsm: &apiv1.HSMStatusResponse{NodeId: "n1", Backend: "pkcs11",
		Detail: `module /usr/lib/softhsm/libsofthsm2.so, token "meridian-n1"`, Healthy: false, Reason: "hsm: unavailable",
		DomainKeyVersions: []uint32{1},
		Mechanisms: []*apiv1.HSMMechanism{{Name: "CKM_AES_KEY_GEN", Present: true, Required: true, Use: "domain key generation"},
			{Name: "CKM_ECDSA", Use: "HSM-level ECDSA signing"}}}})
	out, errOut, code := opCLI(t, addr, "hsm", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{"Backend: pkcs11", "Healthy: false", "Reason: hsm: unavailable", "DomainKeyVersions: v1",
		"Mechanisms: 1 of 2 present", "CKM_ECDSA        false    false     HSM-level ECDSA signing"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestOperatorCommandErrors(t *testing.T) {
	_, errOut, code := cli(t, "", "operator", "domain-key", "rotate", "--addr", "127.0.0.1:1")
	if code != 2 || !strings.Contains(errOut, "--insecure") {
		t.Fatalf("without --insecure: exit %d: %s", code, errOut)
	}
	addr := fakekms.ClosedAddr(t)
	_, errOut, code = opCLI(t, addr, "domain-key", "status")
	if code != 1 || !strings.Contains(errOut, "node "+addr+" unreachable") {
		t.Fatalf("closed address: exit %d: %s", code, errOut)
	}
	// A KeyManagement-only server (older node) lacks the Operator API.
	_, kmAddr := startFake(t)
	_, errOut, code = opCLI(t, kmAddr, "hsm", "status")
	if code != 1 || !strings.Contains(errOut, "does not serve the Operator API") {
		t.Fatalf("no operator service: exit %d: %s", code, errOut)
	}
}
