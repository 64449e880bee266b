package keystore

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// keySet is one key of each kind a crypto operation needs, with a sample
// blob, signature and MAC made while the keys were enabled.
type keySet struct {
	sym, rsaEnc, signer, mac KeyMetadata
	blob, rsaBlob, sig, tag  []byte
}

func makeKeySet(t *testing.T, h *harness) *keySet {
	t.Helper()
	return makeKeySetWith(t, h, h.create)
}

// makeKeySetWith is makeKeySet with the keys made by create.
func makeKeySetWith(t *testing.T, h *harness, create func(KeySpec, KeyUsage) KeyMetadata) *keySet {
	t.Helper()
	ks := &keySet{
		sym:    create("", ""),
		rsaEnc: create(SpecRSA2048, UsageEncryptDecrypt),
		signer: create(SpecECCP256, ""),
		mac:    create(SpecHMAC256, ""),
	}
	e, err := h.s.Encrypt(bg, EncryptInput{KeyID: ks.sym.KeyID, Plaintext: []byte("x")})
	must(t, err)
	ks.blob = e.CiphertextBlob
	e, err = h.s.Encrypt(bg, EncryptInput{KeyID: ks.rsaEnc.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: EncRSAOAEPSHA256})
	must(t, err)
	ks.rsaBlob = e.CiphertextBlob
	s, err := h.s.Sign(bg, SignInput{KeyID: ks.signer.KeyID, Message: []byte("m"), SigningAlgorithm: SignECDSASHA256})
	must(t, err)
	ks.sig = s.Signature
	m, err := h.s.GenerateMac(bg, MacInput{KeyID: ks.mac.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256})
	must(t, err)
	ks.tag = m.Mac
	return ks
}

// cryptoOps runs every cryptographic operation against the key set.
func cryptoOps(h *harness, ks *keySet) map[string]func() error {
	s := h.s
	return map[string]func() error{
		"Encrypt": func() error {
			_, err := s.Encrypt(bg, EncryptInput{KeyID: ks.sym.KeyID, Plaintext: []byte("x")})
			return err
		},
		"Decrypt": func() error { _, err := s.Decrypt(bg, DecryptInput{CiphertextBlob: ks.blob}); return err },
		"Decrypt RSA": func() error {
			_, err := s.Decrypt(bg, DecryptInput{CiphertextBlob: ks.rsaBlob, EncryptionAlgorithm: EncRSAOAEPSHA256})
			return err
		},
		"ReEncrypt": func() error {
			_, err := s.ReEncrypt(bg, ReEncryptInput{CiphertextBlob: ks.blob, DestinationKeyID: ks.sym.KeyID})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := s.GenerateDataKey(bg, GenerateDataKeyInput{KeyID: ks.sym.KeyID, KeySpec: DataKeyAES256})
			return err
		},
		"GenerateDataKeyPair": func() error {
			_, err := s.GenerateDataKeyPair(bg, GenerateDataKeyPairInput{KeyID: ks.sym.KeyID, KeyPairSpec: PairECCP256})
			return err
		},
		"Sign": func() error {
			_, err := s.Sign(bg, SignInput{KeyID: ks.signer.KeyID, Message: []byte("m"), SigningAlgorithm: SignECDSASHA256})
			return err
		},
		"Verify": func() error {
			_, err := s.Verify(bg, VerifyInput{KeyID: ks.signer.KeyID, Message: []byte("m"), Signature: ks.sig, SigningAlgorithm: SignECDSASHA256})
			return err
		},
		"GetPublicKey": func() error { _, err := s.GetPublicKey(bg, ks.signer.KeyID); return err },
		"GenerateMac": func() error {
			_, err := s.GenerateMac(bg, MacInput{KeyID: ks.mac.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256})
			return err
		},
		"VerifyMac": func() error {
			_, err := s.VerifyMac(bg, MacInput{KeyID: ks.mac.KeyID, Message: []byte("m"), Mac: ks.tag, MacAlgorithm: MacHMACSHA256})
			return err
		},
	}
}

func (ks *keySet) ids() []string {
	return []string{ks.sym.KeyID, ks.rsaEnc.KeyID, ks.signer.KeyID, ks.mac.KeyID}
}

func TestKeyStatesRefuseCrypto(t *testing.T) { bothLevels(t, testKeyStatesRefuseCrypto) }

func testKeyStatesRefuseCrypto(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	ks := makeKeySet(t, h)
	ops := cryptoOps(h, ks)
	for name, op := range ops {
		if err := op(); err != nil {
			t.Fatalf("%s on enabled keys: %v", name, err)
		}
	}
	for _, id := range ks.ids() {
		_, err := h.s.DisableKey(bg, id)
		must(t, err)
	}
	for name, op := range ops {
		err := op()
		wantErr(t, err, ErrDisabled, "is disabled")
		if !strings.Contains(err.Error(), "key ") {
			t.Fatalf("%s: message %q does not name the key", name, err)
		}
	}
	for _, id := range ks.ids() {
		_, err := h.s.ScheduleKeyDeletion(bg, id, 7)
		must(t, err)
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("%s on a key pending deletion: %v, want ErrInvalidState", name, err)
		}
	}
	for _, id := range ks.ids() {
		_, err := h.s.CancelKeyDeletion(bg, id)
		must(t, err)
		_, err = h.s.EnableKey(bg, id)
		must(t, err)
	}
	for name, op := range ops {
		if err := op(); err != nil {
			t.Fatalf("%s after re-enabling: %v", name, err)
		}
	}
}

// Rotation writes follow the fsm's state rules, mapped to the sentinels.
func TestRotationStateRules(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	for _, p := range []int{89, 2561, -5} {
		_, err := h.s.EnableKeyRotation(bg, k.KeyID, p)
		wantErr(t, err, ErrValidation, "must be 90-2560")
	}
	_, err := h.s.EnableKeyRotation(bg, k.KeyID, 0)
	must(t, err)
	st, err := h.s.GetKeyRotationStatus(bg, k.KeyID)
	must(t, err)
	if !st.RotationEnabled || st.RotationPeriodDays != 365 || st.NextRotationDate.IsZero() {
		t.Fatalf("status %+v", st)
	}
	_, err = h.s.DisableKeyRotation(bg, k.KeyID)
	must(t, err)
	if st, _ := h.s.GetKeyRotationStatus(bg, k.KeyID); st.RotationEnabled || !st.NextRotationDate.IsZero() {
		t.Fatalf("status after disable %+v", st)
	}
	_, err = h.s.DisableKey(bg, k.KeyID)
	must(t, err)
	_, err = h.s.EnableKeyRotation(bg, k.KeyID, 90)
	wantErr(t, err, ErrDisabled, "")
	_, _, err = h.s.RotateKeyOnDemand(bg, k.KeyID)
	wantErr(t, err, ErrDisabled, "is disabled")
	_, err = h.s.ScheduleKeyDeletion(bg, k.KeyID, 7)
	must(t, err)
	_, _, err = h.s.RotateKeyOnDemand(bg, k.KeyID)
	wantErr(t, err, ErrInvalidState, "")
	_, err = h.s.DisableKeyRotation(bg, k.KeyID)
	wantErr(t, err, ErrInvalidState, "")

	for _, spec := range []KeySpec{SpecHMAC256, SpecECCP256} {
		a := h.create(spec, "")
		_, _, err := h.s.RotateKeyOnDemand(bg, a.KeyID)
		wantErr(t, err, ErrUnsupported, "only SYMMETRIC_DEFAULT keys rotate")
		_, err = h.s.EnableKeyRotation(bg, a.KeyID, 90)
		wantErr(t, err, ErrUnsupported, "")
		_, err = h.s.GetKeyRotationStatus(bg, a.KeyID)
		wantErr(t, err, ErrUnsupported, "")
	}
}

// A rotation that loses the race for its version number retries with the
// next one.
func TestRotateOnDemandRetriesConflict(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	var fired atomic.Bool
	hook := func(cmd *fsmpb.Command) {
		if cmd.GetType() != fsmpb.CommandType_COMMAND_TYPE_ROTATE_KEY {
			return
		}
		if fired.CompareAndSwap(false, true) { // a competing rotation lands first
			key, _ := h.fsm.Key(k.KeyID)
			_, err := h.s.rotate(bg, "competing rotation", key, true, "competitor")
			must(t, err)
		}
	}
	h.ap.before.Store(&hook)
	r, _, err := h.s.RotateKeyOnDemand(WithRequest(bg, Request{ID: "mine"}), k.KeyID)
	h.ap.before.Store(nil)
	must(t, err)
	if r.KeyVersion != 3 {
		t.Fatalf("rotation after a conflict made version %d, want 3", r.KeyVersion)
	}
	// The same request id replays the successful attempt.
	r2, _, err := h.s.RotateKeyOnDemand(WithRequest(bg, Request{ID: "mine"}), k.KeyID)
	must(t, err)
	if r2.KeyVersion != 3 {
		t.Fatalf("retried request made version %d", r2.KeyVersion)
	}
	if m, _ := h.s.DescribeKey(bg, k.KeyID); m.CurrentVersion != 3 {
		t.Fatalf("current version %d", m.CurrentVersion)
	}
}

// Crypto racing disable/enable: no data race, and only ErrDisabled.
func TestConcurrentCryptoAndStateChanges(t *testing.T) {
	bothLevels(t, testConcurrentCryptoAndStateChanges)
}

func testConcurrentCryptoAndStateChanges(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	k := h.create("", "")
	out, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	must(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")}); err != nil && !errors.Is(err, ErrDisabled) {
					errs <- err
					return
				}
				if _, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: out.CiphertextBlob}); err != nil && !errors.Is(err, ErrDisabled) {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		_, err := h.s.DisableKey(bg, k.KeyID)
		must(t, err)
		_, err = h.s.EnableKey(bg, k.KeyID)
		must(t, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
