package fsm

import (
	"maps"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

const (
	dayNanos = int64(24 * time.Hour)
	// maxDays bounds windows and periods so time arithmetic cannot
	// overflow; the keystore enforces the much tighter API ranges.
	maxDays = 36500

	enabled  = fsmpb.KeyState_KEY_STATE_ENABLED
	disabled = fsmpb.KeyState_KEY_STATE_DISABLED
	pending  = fsmpb.KeyState_KEY_STATE_PENDING_DELETION
)

// cloneKey copies a published key before a handler modifies it.
func cloneKey(k *fsmpb.Key) *fsmpb.Key { return proto.Clone(k).(*fsmpb.Key) }

// lookupKey loads the key a command names, or the failure to return.
func (t *txn) lookupKey(id string) (*fsmpb.Key, *fsmpb.Result) {
	if id == "" {
		return nil, failure(CodeInvalid, "key id is empty")
	}
	k, ok := t.keys.get(id)
	if !ok {
		return nil, failure(CodeNotFound, "key %s not found", id)
	}
	return k, nil
}

// notPending refuses commands on a key waiting to be deleted.
func notPending(k *fsmpb.Key) *fsmpb.Result {
	if k.GetState() == pending {
		return failure(CodeInvalidState, "key %s is pending deletion", k.GetId())
	}
	return nil
}

// usable refuses commands that need an ENABLED key.
func usable(k *fsmpb.Key) *fsmpb.Result {
	if r := notPending(k); r != nil {
		return r
	}
	if k.GetState() == disabled {
		return failure(CodeDisabled, "key %s is disabled", k.GetId())
	}
	return nil
}

func applyCreateKey(tx *txn, p *fsmpb.CreateKey) *fsmpb.Result {
	k := p.GetKey()
	switch {
	case k == nil:
		return failure(CodeInvalid, "create key: no key")
	case k.GetId() == "":
		return failure(CodeInvalid, "create key: key id is empty")
	case k.GetState() != enabled && k.GetState() != disabled:
		return failure(CodeInvalid, "create key %s: initial state %s", k.GetId(), k.GetState())
	case len(k.GetVersions()) == 0:
		return failure(CodeInvalid, "create key %s: no key version", k.GetId())
	case k.GetRotationPeriodDays() > maxDays:
		return failure(CodeInvalid, "create key %s: rotation period %d days", k.GetId(), k.GetRotationPeriodDays())
	}
	for i, v := range k.GetVersions() {
		if v.GetVersion() != uint32(i+1) {
			return failure(CodeInvalid, "create key %s: version %d at position %d", k.GetId(), v.GetVersion(), i+1)
		}
		if len(v.GetWrappedMaterial()) == 0 {
			return failure(CodeInvalid, "create key %s v%d: no wrapped material", k.GetId(), v.GetVersion())
		}
	}
	if _, taken := tx.keys.get(k.GetId()); taken {
		return failure(CodeAlreadyExists, "key %s already exists", k.GetId())
	}
	// The payload was decoded for this Apply alone, so it can be stored
	// as it is, with the defaults filled from the command's time.
	if k.CreatedUnixNano == 0 {
		k.CreatedUnixNano = tx.now
	}
	k.DeletionUnixNano, k.PendingWindowDays = 0, 0
	if k.GetRotationPeriodDays() == 0 {
		k.NextRotationUnixNano = 0
	} else if k.GetNextRotationUnixNano() == 0 {
		k.NextRotationUnixNano = tx.now + int64(k.GetRotationPeriodDays())*dayNanos
	}
	tx.putKey(nil, k)
	return success(k)
}

func applyUpdateDescription(tx *txn, p *fsmpb.UpdateDescription) *fsmpb.Result {
	return tx.modifyKey(p.GetKeyId(), notPending, func(k *fsmpb.Key) {
		k.Description = p.GetDescription()
	})
}

func applyTagKey(tx *txn, p *fsmpb.TagKey) *fsmpb.Result {
	return tx.modifyKey(p.GetKeyId(), notPending, func(k *fsmpb.Key) {
		if len(p.GetTags()) == 0 {
			return
		}
		if k.Tags == nil {
			k.Tags = make(map[string]string, len(p.GetTags()))
		}
		maps.Copy(k.Tags, p.GetTags())
	})
}

func applyUntagKey(tx *txn, p *fsmpb.UntagKey) *fsmpb.Result {
	return tx.modifyKey(p.GetKeyId(), notPending, func(k *fsmpb.Key) {
		for _, name := range p.GetTagKeys() {
			delete(k.Tags, name)
		}
	})
}

func applyEnableKey(tx *txn, p *fsmpb.KeyRef) *fsmpb.Result {
	return tx.transition(p.GetKeyId(), notPending, func(k *fsmpb.Key) bool {
		if k.GetState() == enabled {
			return false
		}
		k.State = enabled
		return true
	})
}

func applyDisableKey(tx *txn, p *fsmpb.KeyRef) *fsmpb.Result {
	return tx.transition(p.GetKeyId(), notPending, func(k *fsmpb.Key) bool {
		if k.GetState() == disabled {
			return false
		}
		k.State = disabled
		return true
	})
}

func applyScheduleDeletion(tx *txn, p *fsmpb.ScheduleDeletion) *fsmpb.Result {
	days := p.GetPendingWindowDays()
	if days == 0 || days > maxDays {
		return failure(CodeInvalid, "schedule deletion of key %s: window of %d days", p.GetKeyId(), days)
	}
	return tx.modifyKey(p.GetKeyId(), notPending, func(k *fsmpb.Key) {
		k.State = pending
		k.PendingWindowDays = days
		k.DeletionUnixNano = tx.now + int64(days)*dayNanos
	})
}

func applyCancelDeletion(tx *txn, p *fsmpb.KeyRef) *fsmpb.Result {
	return tx.modifyKey(p.GetKeyId(), isPending, func(k *fsmpb.Key) {
		k.State = disabled
		k.DeletionUnixNano, k.PendingWindowDays = 0, 0
	})
}

func isPending(k *fsmpb.Key) *fsmpb.Result {
	if k.GetState() != pending {
		return failure(CodeInvalidState, "key %s is %s, not pending deletion", k.GetId(), k.GetState())
	}
	return nil
}

func applyDeleteKey(tx *txn, p *fsmpb.KeyRef) *fsmpb.Result {
	k, fail := tx.lookupKey(p.GetKeyId())
	if fail != nil {
		return fail
	}
	if r := isPending(k); r != nil {
		return r
	}
	if k.GetDeletionUnixNano() > tx.now {
		return failure(CodeInvalidState, "key %s is not due for deletion until %s", k.GetId(),
			time.Unix(0, k.GetDeletionUnixNano()).UTC().Format(time.RFC3339))
	}
	for _, a := range tx.aliasesOf(k.GetId()) {
		tx.deleteAlias(a)
	}
	tx.deleteKey(k)
	return success(nil)
}

func applyEnableRotation(tx *txn, p *fsmpb.EnableRotation) *fsmpb.Result {
	days := p.GetPeriodDays()
	if days == 0 || days > maxDays {
		return failure(CodeInvalid, "enable rotation of key %s: period of %d days", p.GetKeyId(), days)
	}
	return tx.modifyKey(p.GetKeyId(), usable, func(k *fsmpb.Key) {
		k.RotationPeriodDays = days
		k.NextRotationUnixNano = tx.now + int64(days)*dayNanos
	})
}

func applyDisableRotation(tx *txn, p *fsmpb.KeyRef) *fsmpb.Result {
	return tx.modifyKey(p.GetKeyId(), usable, func(k *fsmpb.Key) {
		k.RotationPeriodDays, k.NextRotationUnixNano = 0, 0
	})
}

func applyRotateKey(tx *txn, p *fsmpb.RotateKey) *fsmpb.Result {
	v := p.GetVersion()
	if v == nil || len(v.GetWrappedMaterial()) == 0 {
		return failure(CodeInvalid, "rotate key %s: no wrapped material", p.GetKeyId())
	}
	k, fail := tx.lookupKey(p.GetKeyId())
	if fail != nil {
		return fail
	}
	if r := usable(k); r != nil {
		return r
	}
	current := uint32(len(k.GetVersions()))
	if v.GetVersion() != current+1 {
		return failure(CodeConflict, "rotate key %s: proposed v%d but current is v%d", k.GetId(), v.GetVersion(), current)
	}
	if v.CreatedUnixNano == 0 {
		v.CreatedUnixNano = tx.now
	}
	c := cloneKey(k)
	c.Versions = append(c.Versions, v)
	if c.GetRotationPeriodDays() > 0 {
		c.NextRotationUnixNano = tx.now + int64(c.GetRotationPeriodDays())*dayNanos
	}
	tx.putKey(k, c)
	return success(c)
}

// modifyKey loads id, applies check, then stores a modified clone.
func (t *txn) modifyKey(id string, check func(*fsmpb.Key) *fsmpb.Result, change func(*fsmpb.Key)) *fsmpb.Result {
	return t.transition(id, check, func(k *fsmpb.Key) bool { change(k); return true })
}

// transition is modifyKey for changes that may be no-ops: when change
// reports false the published key stays and no subscriber hears of it.
func (t *txn) transition(id string, check func(*fsmpb.Key) *fsmpb.Result, change func(*fsmpb.Key) bool) *fsmpb.Result {
	k, fail := t.lookupKey(id)
	if fail != nil {
		return fail
	}
	if r := check(k); r != nil {
		return r
	}
	c := cloneKey(k)
	if !change(c) {
		return success(k)
	}
	t.putKey(k, c)
	return success(c)
}
