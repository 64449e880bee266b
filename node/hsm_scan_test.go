package node_test

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/hsm/keywrap"
	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
)

// noSecretsAtRest runs last: after real operations of every spec, an
// enrolment of a late node and a DK rotation, with a fresh snapshot, no
// file the nodes wrote (bolt logs and stable store, snapshots), no log line
// and no non-object file of the SoftHSM set-up holds plaintexts, unwrapped
// key material, a PIN or a domain key in the clear.
//
// The token directories' *.object files are excluded: they are SoftHSM's
// own object store, i.e. the HSM itself (a hardware HSM keeps the same
// objects in its secure storage). The DK lives there, encrypted under the
// token's PIN-derived key, and a test cannot read it back (it is
// CKA_SENSITIVE), so the DK is looked for indirectly: no 32-byte window
// of any scanned byte may unwrap a blob known to be wrapped under it.
func (f *hsmFixture) noSecretsAtRest(t *testing.T) {
	leader := f.c.WaitLeader()
	if err := f.node(leader).Cluster().Snapshot(ctxT(t)); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	secrets := append([][]byte(nil), f.pts...)
	for _, h := range f.hsms {
		secrets = append(secrets, []byte(h.pin))
	}
	keys, _ := f.node(0).FSM().Keys("", 0)
	for _, k := range keys {
		for _, v := range k.GetVersions() {
			m, err := f.node(0).HSM().Unwrap(ctxT(t), v.GetDomainKeyVersion(), v.GetWrappedMaterial())
			if err != nil {
				t.Fatalf("unwrap %s v%d: %v", k.GetId(), v.GetVersion(), err)
			}
			secrets = append(secrets, m)
		}
	}
	// One tiny blob per DK version: an 8-byte wrap is a single AES block,
	// so trying a window as its key costs one block decryption.
	dkBlobs := map[uint32][]byte{}
	dks, err := f.node(0).HSM().DomainKeyVersions(ctxT(t))
	if err != nil || len(dks) < 2 {
		t.Fatalf("DK versions %v (err %v): want the old and the rotated one", dks, err)
	}
	for _, v := range dks {
		probe := randomBytes(8)
		blob, err := f.node(0).HSM().Wrap(ctxT(t), v, probe)
		if err != nil {
			t.Fatalf("wrap a probe under DK v%d: %v", v, err)
		}
		if back, err := f.node(0).HSM().Unwrap(ctxT(t), v, blob); err != nil || !bytes.Equal(back, probe) {
			t.Fatalf("probe under DK v%d does not round-trip (err %v)", v, err)
		}
		dkBlobs[v] = blob
	}
	f.c.CloseAll()

	var files []string
	if err := filepath.WalkDir(f.c.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var snapshots int
	for _, p := range files {
		if strings.Contains(p, string(filepath.Separator)+"snapshots"+string(filepath.Separator)) {
			snapshots++
		}
	}
	if snapshots == 0 {
		t.Fatalf("no snapshot files among %d data files", len(files))
	}
	softhsm := []string{os.Getenv("SOFTHSM2_CONF")}
	objects := 0
	if err := filepath.WalkDir(softhsmtest.TokenDir(), func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
		case strings.HasSuffix(p, ".object"):
			objects++ // the HSM's own storage: see above
		default:
			softhsm = append(softhsm, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if objects == 0 {
		t.Fatal("no SoftHSM object files found: the token directory is not where the nodes' tokens are")
	}

	began := time.Now()
	// Positive control: the data files hold the replicated wrapped blobs,
	// so the scan reads the FSM's real bytes (and would see material).
	var control []byte
	for _, k := range keys {
		control = k.GetVersions()[0].GetWrappedMaterial()[:16]
	}
	controlSeen := false
	var scanned, windows int
	scan := func(where string, data []byte) {
		scanned += len(data)
		for _, s := range secrets {
			probe := s
			if len(probe) > 16 {
				probe = probe[:16] // 16 bytes are unmistakable
			}
			// Raw, and as a log line or config file would spell it.
			for enc, p := range map[string][]byte{"raw": probe, "hex": []byte(hex.EncodeToString(probe)),
				"base64": []byte(base64.StdEncoding.EncodeToString(probe)[:20])} {
				if bytes.Contains(data, p) {
					t.Errorf("%s contains secret bytes (%s, %d-byte secret)", where, enc, len(s))
				}
			}
		}
		off, v, n := dkWindow(data, dkBlobs)
		windows += n
		if off >= 0 {
			t.Errorf("%s: bytes %d..%d are DK v%d in the clear", where, off, off+32, v)
		}
	}
	for _, p := range append(files, softhsm...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		controlSeen = controlSeen || bytes.Contains(b, control)
		scan(p, b)
	}
	if !controlSeen {
		t.Fatal("no data file holds a replicated wrapped blob: the scan is not reading the nodes' state")
	}
	logs := f.c.Logs.Bytes()
	if len(logs) == 0 {
		t.Fatal("no logs captured")
	}
	scan("logs", logs)
	t.Logf("scanned %d data files (%d snapshot files), %d SoftHSM non-object files and %d log bytes: %d bytes in all, %d secrets, %d DK versions (%d high-entropy windows tried), in %v (%d token object files excluded)",
		len(files), snapshots, len(softhsm), len(logs), scanned, len(secrets), len(dkBlobs), windows, time.Since(began).Round(time.Millisecond), objects)
}

// minDistinct is the fewest distinct byte values a 32-byte window must
// have to be checked as a possible DK. 32 random bytes (an HSM-made DK)
// have 23 or more with probability above 1-10^-5 and fewer than 20 with
// probability far below 10^-9; bolt's zeroed free space, UUIDs, hex and
// most text have fewer, and skipping them is what makes the scan fast.
const minDistinct = 20

// dkWindow returns the offset of a 32-byte window of data that opens one
// of blobs (so is the DK version that wrapped it) and that version, or -1;
// checked counts the windows tried.
func dkWindow(data []byte, blobs map[uint32][]byte) (off int, version uint32, checked int) {
	var count [256]uint8
	distinct := 0
	for i, c := range data {
		if count[c] == 0 {
			distinct++
		}
		count[c]++
		if i >= 32 {
			old := data[i-32]
			count[old]--
			if count[old] == 0 {
				distinct--
			}
		}
		if i < 31 || distinct < minDistinct {
			continue
		}
		checked++
		b, err := aes.NewCipher(data[i-31 : i+1])
		if err != nil {
			panic(err) // 32 bytes are always an AES-256 key
		}
		for v, blob := range blobs {
			if _, err := keywrap.Unwrap(b, blob); err == nil {
				return i - 31, v, checked
			}
		}
	}
	return -1, 0, checked
}
