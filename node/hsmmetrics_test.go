package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
	"github.com/meridiankms/meridian/keystore"
)

// instrumented is h with the node's HSM metrics, and their registry.
func instrumented(t *testing.T, h hsm.HSM) (hsm.HSM, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := instrumentHSM(h, "stub", reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// hsmSeries reads the node's HSM metrics for one operation: how many
// calls were timed, and how many failures were counted (any kind).
func hsmSeries(t *testing.T, reg *prometheus.Registry, op hsm.Op) (timed uint64, errs float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == "operation" && l.GetValue() == string(op)
			}) {
				continue
			}
			switch mf.GetName() {
			case "meridian_hsm_operation_duration_seconds":
				timed += m.GetHistogram().GetSampleCount()
			case "meridian_hsm_errors_total":
				errs += m.GetCounter().GetValue()
			}
		}
	}
	return timed, errs
}

func TestInstrumentedHSMForwardsHonestly(t *testing.T) {
	hsmtest.RunDecoratorContract(t, func(t *testing.T, h hsm.HSM) hsm.HSM {
		m, _ := instrumented(t, h)
		return m
	})
}

// Every call through the instrumented HSM, those through its capabilities
// included, is timed under its operation label and its device failures
// counted, except cheap bookkeeping and Destroy.
func TestInstrumentedHSMMeasuresEveryCall(t *testing.T) {
	untimed := []hsm.Op{hsm.OpDomainKeyVersions, hsm.OpCurrentDomainKeyVersion, hsm.OpDestroy}
	for _, c := range hsmtest.Calls {
		t.Run(string(c.Op), func(t *testing.T) {
			s := hsmtest.NewStub()
			m, reg := instrumented(t, s)
			if _, err := c.Do(t.Context(), m); err != nil {
				t.Fatal(err)
			}
			s.Err = fmt.Errorf("stub: %w", hsm.ErrUnavailable)
			if _, err := c.Do(t.Context(), m); !errors.Is(err, hsm.ErrUnavailable) {
				t.Fatalf("err = %v, want the HSM's", err)
			}
			wantTimed, wantErrs := uint64(2), 1.0
			if slices.Contains(untimed, c.Op) {
				wantTimed, wantErrs = 0, 0
			}
			if timed, errs := hsmSeries(t, reg, c.Op); timed != wantTimed || errs != wantErrs {
				t.Errorf("operation %q: %d calls timed, %v errors counted; want %d and %v", c.Op, timed, errs, wantTimed, wantErrs)
			}
		})
	}
}

// The cluster's enrolment hook exists exactly when the HSM under the
// metrics can enrol (a Config.HSMWrapper that hides Enroller hides it from
// the hook too), and its export is measured.
func TestEnrolmentHookFollowsTheBackend(t *testing.T) {
	for name, h := range map[string]hsm.HSM{
		"backend without Enroller": hsmtest.NewStub(hsmtest.CapEnroller),
		"wrapper hiding Enroller":  hideEnroller(hsmtest.NewStub()),
	} {
		m, _ := instrumented(t, h)
		if x := exporterFor(m); x != nil {
			t.Errorf("%s: enrolment hook %v for an HSM that cannot enrol", name, x)
		}
	}
	s := hsmtest.NewStub()
	m, reg := instrumented(t, s)
	x := exporterFor(m)
	if x == nil {
		t.Fatal("no enrolment hook for an HSM that enrols")
	}
	raw, err := x.ExportDomainKeys(t.Context(), []byte("pub"))
	if err != nil {
		t.Fatal(err)
	}
	var b hsm.DomainKeyBundle
	if err := b.UnmarshalBinary(raw); err != nil || len(b.Versions) != 1 {
		t.Fatalf("bundle %v, %v", b, err)
	}
	if timed, _ := hsmSeries(t, reg, hsm.OpExportDomainKeys); timed != 1 {
		t.Errorf("%d exports timed, want 1", timed)
	}
}

// Operator commands use the node's instrumented HSM: what they call is
// measured, and they find the backend's capabilities through it.
func TestOperatorCallsAreMeasured(t *testing.T) {
	s := hsmtest.NewStub()
	m, reg := instrumented(t, s)
	b := operatorBackend{h: m}
	ctx := t.Context()
	st, err := b.HSMStatus(ctx)
	if err != nil || st.Backend != "stub" || !st.Healthy || len(st.Mechanisms) != 1 || st.Mechanisms[0].Name != "CKM_STUB" {
		t.Fatalf("HSMStatus = %+v, %v", st, err)
	}
	if v, err := b.RotateHSMDomainKey(ctx); err != nil || v != 3 {
		t.Fatalf("RotateHSMDomainKey = %d, %v", v, err)
	}
	pub, err := b.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ImportDomainKeys(ctx, raw); err != nil {
		t.Fatal(err)
	}
	for _, op := range []hsm.Op{hsm.OpHealth, hsm.OpMechanisms, hsm.OpRotateDomainKey,
		hsm.OpTransportPublicKey, hsm.OpExportDomainKeys, hsm.OpImportDomainKeys} {
		if timed, _ := hsmSeries(t, reg, op); timed != 1 {
			t.Errorf("operation %q: %d calls timed, want 1", op, timed)
		}
	}
}

// An HSM without the capabilities: the operator commands that need them
// say Unsupported without calling the HSM, and status lists no mechanisms.
func TestOperatorWithoutCapabilities(t *testing.T) {
	s := hsmtest.NewStub(hsmtest.Capabilities...)
	m, _ := instrumented(t, s)
	b := operatorBackend{h: m}
	ctx := t.Context()
	st, err := b.HSMStatus(ctx)
	if err != nil || st.Mechanisms != nil {
		t.Fatalf("HSMStatus = %+v, %v; want no mechanisms", st, err)
	}
	if _, err := b.RotateHSMDomainKey(ctx); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("RotateHSMDomainKey: %v, want keystore.ErrUnsupported", err)
	}
	if _, err := b.TransportPublicKey(ctx); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("TransportPublicKey: %v, want keystore.ErrUnsupported", err)
	}
	if _, err := b.ExportDomainKeys(ctx, []byte("pub")); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("ExportDomainKeys: %v, want keystore.ErrUnsupported", err)
	}
	if err := b.ImportDomainKeys(ctx, nil); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("ImportDomainKeys: %v, want keystore.ErrUnsupported", err)
	}
	if calls := s.Calls(); !slices.Equal(calls, []hsm.Op{hsm.OpHealth, hsm.OpDomainKeyVersions}) {
		t.Errorf("the HSM received %v; want only status's health and versions", calls)
	}
}

// noEnrol hides the Enroller capability, as a Config.HSMWrapper might.
type noEnrol struct{ hsm.HSM }

func (noEnrol) Enroller() (hsm.Enroller, bool) { return nil, false }

func hideEnroller(h hsm.HSM) hsm.HSM { return noEnrol{h} }
