package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/node"
)

// isUnavailable reports a KMSUnavailableException (gRPC Unavailable).
func isUnavailable(err error) bool { return client.CodeOf(err) == codes.Unavailable }

// hsmFailureOnOneNode: node 2's HSM fails. It goes unready (gRPC health
// NOT_SERVING, Ready's error), its HSM-bound crypto answers Unavailable,
// meridian_hsm_errors_total grows, a discovery client sees no failure, the
// other nodes keep serving, and node 2 recovers by itself.
func (f *hsmFixture) hsmFailureOnOneNode(t *testing.T) {
	const bad = 1
	sick := f.node(bad)
	// A key node 2 has never used: its first use there needs an unwrap.
	res := mustCreateKey(t, f.c.Client(0), &apiv1.CreateKeyRequest{})
	fresh := res.GetKeyMetadata().GetKeyId()
	var hsmSym *sealed
	for i := range f.saved {
		if s := &f.saved[i]; s.level == apiv1.ProtectionLevel_PROTECTION_LEVEL_HSM && s.ectx != nil {
			hsmSym = s
		}
	}
	if hsmSym == nil {
		t.Fatal("no HSM-level symmetric ciphertext saved")
	}
	healthy := mustEncrypt(t, f.c.Client(0), fresh, []byte("made while healthy"))
	// And one node 2 has just used, so its material is cached there.
	res = mustCreateKey(t, f.c.Client(0), &apiv1.CreateKeyRequest{})
	warm := res.GetKeyMetadata().GetKeyId()
	f.c.WaitApplied(res.GetCommitIndex())
	warmCT := mustEncrypt(t, f.c.Client(bad), warm, []byte("warm"))

	// A nearest-node client that knew node 2 healthy and prefers its
	// region: its first calls land there and must fail over.
	ccfg := client.DefaultConfig(sick.APIAddr())
	ccfg.Insecure, ccfg.Region = true, sick.Region()
	early, err := client.New(ctxT(t), ccfg)
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	defer early.Close()

	errsBefore := hsmErrors(t, sick)
	f.c.Faults(bad).Fail(true)
	defer f.c.Faults(bad).Fail(false)

	testwait.Eventually(t, 5*time.Second, "sick node reports NOT_SERVING", func() bool {
		return healthStatus(t, sick) == healthpb.HealthCheckResponse_NOT_SERVING
	})
	err = sick.Ready(ctxT(t))
	if !errors.Is(err, node.ErrNotReady) || !errors.Is(err, hsm.ErrUnavailable) || !strings.Contains(err.Error(), "hsm") {
		t.Fatalf("Ready of the sick node = %v, want ErrNotReady naming the HSM", err)
	}

	pinned := f.c.Client(bad)
	calls := map[string]func() error{
		"encrypt with a key not yet unwrapped here": func() error {
			_, err := pinned.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: fresh, Plaintext: []byte("x")})
			return err
		},
		"decrypt with a key not yet unwrapped here": func() error {
			_, err := pinned.Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: healthy})
			return err
		},
		"HSM-level decrypt": func() error {
			_, err := pinned.Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: hsmSym.ct, EncryptionContext: hsmSym.ectx})
			return err
		},
		"create key": func() error {
			_, err := pinned.CreateKey(ctxT(t), &apiv1.CreateKeyRequest{})
			return err
		},
		"generate random": func() error {
			_, err := pinned.GenerateRandom(ctxT(t), &apiv1.GenerateRandomRequest{NumberOfBytes: 16})
			return err
		},
	}
	for what, call := range calls {
		err := call()
		if !isUnavailable(err) {
			t.Errorf("%s on the sick node: got %v, want Unavailable", what, err)
			continue
		}
		assertNoSecret(t, what, err.Error(), f.hsms[bad].pin)
	}
	if got := hsmErrors(t, sick); got <= errsBefore {
		t.Errorf("meridian_hsm_errors_total on the sick node stayed at %v", got)
	}
	// A SOFTWARE key already unwrapped on the sick node is served from its
	// cache without the HSM; record what the node does so the report can
	// say it (the node is unready, so routed clients go elsewhere anyway).
	if _, err := pinned.Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: warmCT}); err != nil {
		t.Logf("cached SOFTWARE key on the sick node: refused (%v)", client.CodeOf(err))
	} else {
		t.Logf("cached SOFTWARE key on the sick node: still served from process memory")
	}

	// The others serve, and a nearest-node client never sees the failure.
	for _, j := range []int{0, 2} {
		ct := mustEncrypt(t, f.c.Client(j), fresh, []byte("others serve"))
		f.checkSealed(t, j, sealed{what: "encrypt", keyID: fresh, pt: []byte("others serve"), ct: ct})
		f.checkSealed(t, j, *hsmSym)
	}
	if via := f.noFailureThrough(t, "client made before the failure", early, bad, fresh, hsmSym); via == 0 {
		t.Error("the client made before the failure never tried the sick node: the failover path was not exercised")
	}
	// A client that starts now learns from Members that node 2 is unready.
	late, err := client.New(ctxT(t), ccfg)
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	defer late.Close()
	f.noFailureThrough(t, "client made during the failure", late, bad, fresh, hsmSym)

	f.c.Faults(bad).Fail(false)
	testwait.Eventually(t, 5*time.Second, "recovered node reports SERVING", func() bool {
		return healthStatus(t, sick) == healthpb.HealthCheckResponse_SERVING && sick.Ready(ctxT(t)) == nil
	})
	for what, call := range calls {
		if err := call(); err != nil {
			t.Errorf("%s on the recovered node: %v", what, err)
		}
	}
}

func mustEncrypt(t *testing.T, cl *client.Client, id string, pt []byte) []byte {
	t.Helper()
	res, err := cl.Encrypt(ctxT(t), &apiv1.EncryptRequest{KeyId: id, Plaintext: pt})
	if err != nil {
		t.Fatalf("encrypt with %s: %v", id, err)
	}
	return res.GetCiphertextBlob()
}

// noFailureThrough runs calls through a discovery-enabled client while
// node bad's HSM is down: none may fail, and none may be answered by bad.
// It returns how many attempts went to bad (and failed over).
func (f *hsmFixture) noFailureThrough(t *testing.T, name string, cl *client.Client, bad int, fresh string, hsmSym *sealed) int {
	t.Helper()
	var failed, viaSick, served int
	for k := 0; k < 20; k++ {
		var info client.CallInfo
		ctx := client.WithCallInfo(ctxT(t), &info)
		var err error
		if k%2 == 0 {
			_, err = cl.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: fresh, Plaintext: []byte("routed")})
		} else {
			var dec *apiv1.DecryptResponse
			dec, err = cl.Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: hsmSym.ct, EncryptionContext: hsmSym.ectx})
			if err == nil && !bytes.Equal(dec.GetPlaintext(), hsmSym.pt) {
				err = fmt.Errorf("wrong plaintext")
			}
		}
		if err != nil {
			failed++
			t.Errorf("call %d through the discovery client failed: %v", k, err)
		}
		served++
		for _, a := range info.Tries {
			if a.NodeID == f.node(bad).ID() {
				viaSick++
			}
		}
		if info.NodeID == f.node(bad).ID() && err == nil {
			t.Errorf("call %d was answered by the sick node", k)
		}
	}
	t.Logf("%s: %d calls, %d failed, %d attempts reached the sick node", name, served, failed, viaSick)
	return viaSick
}
