package transport

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// checkEnum walks every value of a generated api enum: each known value must
// convert to the keystore's AWS spelling (the api name minus its prefix) and
// back; UNSPECIFIED must be ""; unknown numbers and strings must be refused.
func checkEnum[A ~int32, K ~string](t *testing.T, table enumTable[A, K], names map[int32]string) {
	t.Helper()
	prefix := strings.TrimSuffix(names[0], "UNSPECIFIED")
	if prefix == names[0] {
		t.Fatalf("%s: value 0 is %q, not *_UNSPECIFIED", table.field, names[0])
	}
	var c conv
	if got := table.in(&c, 0); got != "" || c.err != nil {
		t.Errorf("%s: UNSPECIFIED -> %q, %v; want \"\"", table.field, got, c.err)
	}
	if got := table.out(&c, ""); got != 0 || c.err != nil {
		t.Errorf("%s: \"\" -> %v, %v; want UNSPECIFIED", table.field, got, c.err)
	}
	maxN := int32(0)
	for n, name := range names {
		maxN = max(maxN, n)
		if n == 0 {
			continue
		}
		var c conv
		k := table.in(&c, A(n))
		if c.err != nil {
			t.Errorf("%s: %s has no keystore value: %v", table.field, name, c.err)
			continue
		}
		if want := strings.TrimPrefix(name, prefix); string(k) != want {
			t.Errorf("%s: %s -> %q, want %q", table.field, name, k, want)
		}
		if back := table.out(&c, k); back != A(n) || c.err != nil {
			t.Errorf("%s: %q -> %v, %v; want %s", table.field, k, back, c.err, name)
		}
	}
	if len(table.toStore) != len(names)-1 {
		t.Errorf("%s: table has %d rows, api enum has %d values", table.field, len(table.toStore), len(names)-1)
	}
	for _, bad := range []A{A(maxN + 1), -1, math.MaxInt32} {
		var c conv
		table.in(&c, bad)
		if !errors.Is(c.err, keystore.ErrValidation) {
			t.Errorf("%s: unknown number %d gave %v, want ValidationException", table.field, bad, c.err)
		}
	}
	c = conv{}
	table.out(&c, "NOT_A_VALUE")
	if !errors.Is(c.err, keystore.ErrInternal) {
		t.Errorf("%s: unknown keystore value gave %v, want ErrInternal", table.field, c.err)
	}
}

func TestEnumRoundTrips(t *testing.T) {
	checkEnum(t, keySpecs, apiv1.KeySpec_name)
	checkEnum(t, keyUsages, apiv1.KeyUsage_name)
	checkEnum(t, keyStates, apiv1.KeyState_name)
	checkEnum(t, origins, apiv1.Origin_name)
	checkEnum(t, protectionLevels, apiv1.ProtectionLevel_name)
	checkEnum(t, encryptionAlgorithms, apiv1.EncryptionAlgorithm_name)
	checkEnum(t, signingAlgorithms, apiv1.SigningAlgorithm_name)
	checkEnum(t, macAlgorithms, apiv1.MacAlgorithm_name)
	checkEnum(t, messageTypes, apiv1.MessageType_name)
	checkEnum(t, dataKeySpecs, apiv1.DataKeySpec_name)
	checkEnum(t, dataKeyPairSpecs, apiv1.DataKeyPairSpec_name)
	checkEnum(t, rotationTypes, apiv1.RotationType_name)
	checkEnum(t, memberRoles, apiv1.MemberRole_name)
	checkEnum(t, memberStatusTable, apiv1.MemberStatus_name)
}

// max_staleness: unset and zero mean no bound; anything negative, malformed
// or beyond time.Duration is the caller's error, never silently clamped.
func TestDurationIn(t *testing.T) {
	good := []struct {
		in   *durationpb.Duration
		want time.Duration
	}{
		{nil, 0},
		{&durationpb.Duration{}, 0},
		{durationpb.New(2 * time.Second), 2 * time.Second},
		{&durationpb.Duration{Seconds: 1, Nanos: 500_000_000}, 1500 * time.Millisecond},
		{&durationpb.Duration{Seconds: 9223372035, Nanos: 999_999_999}, time.Duration(9223372035999999999)},
	}
	for _, tc := range good {
		var c conv
		if got := durationIn(&c, "max_staleness", tc.in); got != tc.want || c.err != nil {
			t.Errorf("%v -> %v, %v; want %v", tc.in, got, c.err, tc.want)
		}
	}
	bad := []*durationpb.Duration{
		{Seconds: -1},
		{Nanos: -1},
		{Seconds: 1, Nanos: -1},            // mixed signs
		{Nanos: 1_000_000_000},             // nanos out of range
		{Seconds: 9223372036},              // past time.Duration
		{Seconds: 315576000000},            // the proto maximum, far past it
		{Seconds: 315576000001},            // past the proto maximum
		{Seconds: -315576000000, Nanos: 0}, // the proto minimum
	}
	for _, d := range bad {
		var c conv
		got := durationIn(&c, "max_staleness", d)
		if !errors.Is(c.err, keystore.ErrValidation) || got != 0 || !strings.Contains(c.err.Error(), "max_staleness") {
			t.Errorf("%v -> %v, %v; want a ValidationException naming max_staleness", d, got, c.err)
		}
	}
}

// A negative max_staleness is refused over the wire before the store runs.
func TestNegativeMaxStalenessRefused(t *testing.T) {
	h := newHarness(t)
	_, err := h.client.CreateKey(testCtx(t), &apiv1.CreateKeyRequest{MaxStaleness: durationpb.New(-time.Second)})
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument || ExceptionFromStatus(st) != "ValidationException" ||
		!strings.Contains(st.Message(), "max_staleness") {
		t.Fatalf("got %v, want InvalidArgument ValidationException naming max_staleness", err)
	}
	if n := h.store.numCalls(); n != 0 {
		t.Errorf("store called %d times", n)
	}
}

func TestDurationOut(t *testing.T) {
	var c conv
	if d := durationOut(&c, "max_staleness", 0); d != nil || c.err != nil {
		t.Errorf("0 -> %v, %v; want absent", d, c.err)
	}
	if d := durationOut(&c, "max_staleness", 2500*time.Millisecond); d.AsDuration() != 2500*time.Millisecond || c.err != nil {
		t.Errorf("2.5s -> %v, %v", d, c.err)
	}
	durationOut(&c, "max_staleness", -time.Second)
	if !errors.Is(c.err, keystore.ErrInternal) {
		t.Errorf("negative from the store gave %v, want ErrInternal", c.err)
	}
}

func TestTimeOut(t *testing.T) {
	if timeOut(time.Time{}) != nil {
		t.Error("zero time should be an absent timestamp")
	}
	tokyo := time.FixedZone("JST", 9*3600)
	for _, tm := range []time.Time{
		fakeTime,
		time.Unix(0, 1).UTC(),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2099, 1, 2, 3, 4, 5, 6, tokyo),
	} {
		ts := timeOut(tm)
		if ts == nil || !ts.AsTime().Equal(tm) {
			t.Errorf("%v -> %v, not the same instant", tm, ts)
		}
	}
}

func TestIntArgClamps(t *testing.T) {
	if got := intArg(math.MaxUint32); got != math.MaxInt32 {
		t.Errorf("intArg(MaxUint32) = %d", got)
	}
	if got := intArg(1000); got != 1000 {
		t.Errorf("intArg(1000) = %d", got)
	}
}

// The full metadata crosses the wire field by field, zero times as absent.
func TestDescribeKeyResponse(t *testing.T) {
	h := newHarness(t)
	resp, err := h.client.DescribeKey(testCtx(t), &apiv1.DescribeKeyRequest{KeyId: "alias/a"})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := h.store.lastCall(); c.args != "alias/a" {
		t.Errorf("store got key id %v", c.args)
	}
	md := resp.GetKeyMetadata()
	want := h.store.md
	if md.GetKeyId() != want.KeyID || md.GetKeyName() != want.KeyName || md.GetDescription() != want.Description ||
		md.GetKeySpec() != apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT ||
		md.GetKeyUsage() != apiv1.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT ||
		md.GetKeyState() != apiv1.KeyState_KEY_STATE_ENABLED || !md.GetEnabled() ||
		md.GetOrigin() != apiv1.Origin_ORIGIN_MERIDIAN ||
		md.GetProtectionLevel() != apiv1.ProtectionLevel_PROTECTION_LEVEL_SOFTWARE ||
		!md.GetCreationDate().AsTime().Equal(want.CreationDate) || md.GetDeletionDate() != nil ||
		!md.GetKeyRotationEnabled() || md.GetRotationPeriodInDays() != 365 ||
		!md.GetNextRotationDate().AsTime().Equal(want.NextRotationDate) || md.GetCurrentKeyVersion() != 3 ||
		!reflect.DeepEqual(md.GetEncryptionAlgorithms(), []apiv1.EncryptionAlgorithm{apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT}) ||
		md.GetSigningAlgorithms() != nil || md.GetMaxStaleness().AsDuration() != 1500*time.Millisecond {
		t.Errorf("metadata does not match the store's:\n%v", md)
	}
}

// A request enum this server does not know is the caller's error, refused
// before the store is called.
func TestUnknownEnumRefused(t *testing.T) {
	h := newHarness(t)
	_, err := h.client.CreateKey(testCtx(t), &apiv1.CreateKeyRequest{KeySpec: 99})
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument || ExceptionFromStatus(st) != "ValidationException" ||
		!strings.Contains(st.Message(), "key_spec 99") {
		t.Fatalf("got %v, want InvalidArgument ValidationException naming key_spec 99", err)
	}
	if n := h.store.numCalls(); n != 0 {
		t.Errorf("store called %d times", n)
	}
}

// A keystore enum the api cannot express is this server's bug: Internal.
func TestUnknownStoreEnumIsInternal(t *testing.T) {
	h := newHarness(t)
	h.store.set(func(f *fakeStore) { f.md.KeySpec = "QUANTUM_9000" })
	_, err := h.client.DescribeKey(testCtx(t), &apiv1.DescribeKeyRequest{KeyId: "k-1"})
	st, _ := status.FromError(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "QUANTUM") {
		t.Fatalf("got %v, want a generic Internal", err)
	}
	if !strings.Contains(h.logs.String(), "QUANTUM_9000") {
		t.Error("the unknown value is not in the server log")
	}
}
