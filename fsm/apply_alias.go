package fsm

import (
	"strings"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// AliasPrefix starts every alias name, as in AWS KMS.
const AliasPrefix = "alias/"

func validAliasName(name string) *fsmpb.Result {
	if !strings.HasPrefix(name, AliasPrefix) || len(name) == len(AliasPrefix) {
		return failure(CodeInvalid, "alias name %q does not start with %q", name, AliasPrefix)
	}
	return nil
}

func applyCreateAlias(tx *txn, p *fsmpb.AliasChange) *fsmpb.Result {
	if r := validAliasName(p.GetName()); r != nil {
		return r
	}
	if _, taken := tx.aliases.get(p.GetName()); taken {
		return failure(CodeAlreadyExists, "alias %s already exists", p.GetName())
	}
	k, fail := tx.lookupKey(p.GetKeyId())
	if fail != nil {
		return fail
	}
	if r := notPending(k); r != nil {
		return r
	}
	tx.putAlias(nil, &fsmpb.Alias{
		Name:            p.GetName(),
		KeyId:           k.GetId(),
		CreatedUnixNano: tx.now,
		UpdatedUnixNano: tx.now,
	})
	return success(nil)
}

func applyUpdateAlias(tx *txn, p *fsmpb.AliasChange) *fsmpb.Result {
	if r := validAliasName(p.GetName()); r != nil {
		return r
	}
	old, ok := tx.aliases.get(p.GetName())
	if !ok {
		return failure(CodeNotFound, "alias %s not found", p.GetName())
	}
	k, fail := tx.lookupKey(p.GetKeyId())
	if fail != nil {
		return fail
	}
	if r := notPending(k); r != nil {
		return r
	}
	// Callers encrypt through an alias and decrypt with whatever the
	// ciphertext names; a different kind of key behind the same name would
	// break them, so the target may change only within one spec and usage.
	if prev, ok := tx.keys.get(old.GetKeyId()); ok &&
		(prev.GetSpec() != k.GetSpec() || prev.GetUsage() != k.GetUsage()) {
		return failure(CodeInvalid, "alias %s: key %s has a different spec or usage than key %s",
			p.GetName(), k.GetId(), prev.GetId())
	}
	tx.putAlias(old, &fsmpb.Alias{
		Name:            old.GetName(),
		KeyId:           k.GetId(),
		CreatedUnixNano: old.GetCreatedUnixNano(),
		UpdatedUnixNano: tx.now,
	})
	return success(nil)
}

func applyDeleteAlias(tx *txn, p *fsmpb.AliasChange) *fsmpb.Result {
	a, ok := tx.aliases.get(p.GetName())
	if !ok {
		return failure(CodeNotFound, "alias %s not found", p.GetName())
	}
	tx.deleteAlias(a)
	return success(nil)
}

func applyRegisterNode(tx *txn, n *fsmpb.Node) *fsmpb.Result {
	if n.GetId() == "" {
		return failure(CodeInvalid, "register node: node id is empty")
	}
	tx.nodes.put(n.GetId(), n)
	return success(nil)
}

func applyDeregisterNode(tx *txn, n *fsmpb.Node) *fsmpb.Result {
	if n.GetId() == "" {
		return failure(CodeInvalid, "deregister node: node id is empty")
	}
	if _, ok := tx.nodes.get(n.GetId()); ok {
		tx.nodes.del(n.GetId())
	}
	return success(nil)
}
