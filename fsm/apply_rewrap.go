package fsm

import (
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// MaxRewrapBatch bounds the entries of one REWRAP_VERSIONS command, so a
// log entry stays small (about 100 bytes per entry); the keystore sends
// fewer.
const MaxRewrapBatch = 1000

// applyRewrapVersions moves key versions to a new domain-key version after
// a DK rotation. Entries are checked first (a malformed one fails the whole
// command); then each applies only while its version is still wrapped under
// from_domain_key_version, and is skipped otherwise: the key was deleted,
// or this or a racing run already moved it. So the command is idempotent
// and a re-run of the whole rotation is a no-op, whatever the key's state
// (disabled and pending keys move too, so no blob is left on an old DK).
//
// Subscribers are not told: the material behind the blob is the same
// bytes, so whatever a node cached from the old blob stays valid, and a
// rotation does not cost every node a wave of unwraps.
func applyRewrapVersions(tx *txn, p *fsmpb.RewrapVersions) *fsmpb.Result {
	entries := p.GetVersions()
	if len(entries) == 0 || len(entries) > MaxRewrapBatch {
		return failure(CodeInvalid, "rewrap versions: %d entries; must be 1-%d", len(entries), MaxRewrapBatch)
	}
	for i, e := range entries {
		switch {
		case e.GetKeyId() == "":
			return failure(CodeInvalid, "rewrap entry %d: key id is empty", i)
		case e.GetVersion() == 0:
			return failure(CodeInvalid, "rewrap entry %d (key %s): version 0", i, e.GetKeyId())
		case len(e.GetWrappedMaterial()) == 0:
			return failure(CodeInvalid, "rewrap entry %d (key %s v%d): no wrapped material", i, e.GetKeyId(), e.GetVersion())
		case e.GetFromDomainKeyVersion() == e.GetToDomainKeyVersion():
			return failure(CodeInvalid, "rewrap entry %d (key %s v%d): from and to domain key version are both %d",
				i, e.GetKeyId(), e.GetVersion(), e.GetToDomainKeyVersion())
		}
	}
	// One clone per key however many of its versions move; order is the
	// entries' order, so every node stores the same thing.
	clones := map[string]*fsmpb.Key{}
	var order []string
	for _, e := range entries {
		id := e.GetKeyId()
		k := clones[id]
		if k == nil {
			published, ok := tx.keys.get(id)
			if !ok {
				continue
			}
			k = published
		}
		i := VersionIndex(k, e.GetVersion())
		if i < 0 || k.GetVersions()[i].GetDomainKeyVersion() != e.GetFromDomainKeyVersion() {
			continue
		}
		if clones[id] == nil {
			k = cloneKey(k)
			clones[id] = k
			order = append(order, id)
		}
		v := k.Versions[i]
		v.WrappedMaterial = e.GetWrappedMaterial()
		v.DomainKeyVersion = e.GetToDomainKeyVersion()
	}
	for _, id := range order {
		// Only versions changed: the time indexes stay as they are, and
		// no subscriber is told (see above).
		tx.keys.put(id, clones[id])
	}
	return success(nil)
}

// VersionIndex is the position of version v in k.Versions, or -1.
// Versions are numbered from 1 without gaps, so v-1 is checked first.
// The keystore finds a ciphertext's version with it too.
func VersionIndex(k *fsmpb.Key, v uint32) int {
	vs := k.GetVersions()
	if v >= 1 && int(v) <= len(vs) && vs[v-1].GetVersion() == v {
		return int(v - 1)
	}
	for i, x := range vs {
		if x.GetVersion() == v {
			return i
		}
	}
	return -1
}
