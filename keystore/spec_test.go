package keystore

import (
	"strings"
	"testing"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// The keystore names the fsm record enums (whose numbers the fsm owns and
// freezes) by their fsmpb names without the prefix, as transport names the
// api's: every record value has exactly its name here and back.
func TestRecordEnumNames(t *testing.T) {
	checkRecordEnum(t, specByNumber, fsmpb.KeySpec_name, "KEY_SPEC_")
	checkRecordEnum(t, usageByNumber, fsmpb.KeyUsage_name, "KEY_USAGE_")
	checkRecordEnum(t, originByNumber, fsmpb.Origin_name, "ORIGIN_")
	checkRecordEnum(t, protectionByNumber, fsmpb.ProtectionLevel_name, "PROTECTION_LEVEL_")
	checkRecordEnum(t, stateByNumber, fsmpb.KeyState_name, "KEY_STATE_")
	for spec, info := range specs {
		if n := fsmpb.KeySpec_value["KEY_SPEC_"+string(spec)]; n != int32(info.number) {
			t.Errorf("spec %s: keystore %d, fsm %d", spec, info.number, n)
		}
	}
}

func checkRecordEnum[N ~int32, T ~string](t *testing.T, table recordEnum[N, T], fsmNames map[int32]string, prefix string) {
	t.Helper()
	for n, name := range fsmNames {
		if n == 0 {
			continue
		}
		want := T(strings.TrimPrefix(name, prefix))
		if got := enumName(table, N(n)); got != want {
			t.Errorf("%s (%d): keystore name %q, want %q", name, n, got, want)
		}
		if got := enumNumber(table, want); got != N(n) {
			t.Errorf("%s: keystore number %d, want %d", want, got, n)
		}
	}
	for i, v := range table {
		if _, ok := fsmNames[int32(i)]; v != "" && !ok {
			t.Errorf("keystore %q has number %d, which the fsm lacks", v, i)
		}
	}
}
