package main

import (
	"strings"
	"testing"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// The prefix every spelling strips is derived from the enum's name; this
// holds it to every enum of the API, so a new enum that breaks the naming
// rule fails here instead of printing half a prefix.
func TestEnumPrefixesMatchTheAPI(t *testing.T) {
	enums := apiv1.File_api_meridian_v1_meridian_proto.Enums()
	for i := range enums.Len() {
		ed := enums.Get(i)
		prefix := enumPrefix(ed)
		for j := range ed.Values().Len() {
			if name := string(ed.Values().Get(j).Name()); !strings.HasPrefix(name, prefix) {
				t.Errorf("%s value %s lacks the derived prefix %q", ed.Name(), name, prefix)
			}
		}
	}
}

func TestEnumSpellings(t *testing.T) {
	tests := []struct{ got, want string }{
		{enumText(apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT), "SYMMETRIC_DEFAULT"},
		{enumText(apiv1.KeySpec_KEY_SPEC_ECC_NIST_P256), "ECC_NIST_P256"},
		{enumText(apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256), "RSAES_OAEP_SHA_256"},
		{enumText(apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_RSA_2048), "RSA_2048"},
		{enumText(apiv1.KeyState_KEY_STATE_ENABLED), "Enabled"}, // AWS writes KeyState in PascalCase
		{enumText(apiv1.KeyState_KEY_STATE_DISABLED), "Disabled"},
		{enumText(apiv1.KeyState_KEY_STATE_PENDING_DELETION), "PendingDeletion"},
		{enumText(apiv1.MemberRole_MEMBER_ROLE_NONVOTER), "NONVOTER"},
		{enumText(apiv1.KeySpec_KEY_SPEC_UNSPECIFIED), ""},
		{enumText(apiv1.KeySpec(99)), "99"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
