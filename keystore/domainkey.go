package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/hsm"
)

// DomainKeyStatus is where the key versions stand in the domain-key
// hierarchy, for `meridian operator domain-key status`.
type DomainKeyStatus struct {
	// HSMVersions are the DK versions this node's HSM holds, ascending;
	// empty on a node that has not received the DK.
	HSMVersions []uint32
	// Current is the newest of them (0 if none): new material is wrapped
	// under it, and RotateDomainKey moves everything to it.
	Current uint32
	// Versions counts key versions (of keys in every state) by the DK
	// version that wraps them.
	Versions map[uint32]int
	// Total is the number of key versions; Pending those not under
	// Current, which RotateDomainKey would re-wrap.
	Total, Pending int
}

// DomainKeyStatus counts key versions per DK version from the local
// replica, and reports which DK versions this node's HSM holds.
func (s *Store) DomainKeyStatus(ctx context.Context) (DomainKeyStatus, error) {
	held, err := s.hsm.DomainKeyVersions(ctx)
	if err != nil {
		return DomainKeyStatus{}, hsmErr("domain key versions", err)
	}
	st := DomainKeyStatus{HSMVersions: held, Versions: map[uint32]int{}}
	if len(held) > 0 {
		st.Current = slices.Max(held)
	}
	keys, _ := s.state.Keys("", 0)
	for _, k := range keys {
		for _, v := range k.GetVersions() {
			st.Versions[v.GetDomainKeyVersion()]++
			st.Total++
			if v.GetDomainKeyVersion() != st.Current {
				st.Pending++
			}
		}
	}
	return st, nil
}

// rewrapItem is one key version to move to the current DK.
type rewrapItem struct {
	keyID   string
	version uint32
	from    uint32
	wrapped []byte
}

// RotateDomainKey re-wraps every key version under this HSM's current
// domain-key version, online. The HSM-level rotation comes first and is the
// caller's (hsm/soft or hsm/pkcs11 RotateDomainKey, through `meridian
// operator domain-key rotate`), and every node's HSM must hold the new DK
// version before this runs (enrolment or copying the sealed file gives it
// to them): a node without it could not unwrap the new blobs.
//
// Each version is unwrapped under its DK version and wrapped under the
// current one here, and proposed in batches (Config.RewrapBatch) of
// conditional REWRAP_VERSIONS entries; progress (may be nil) hears
// (done, total) after each batch. Serving goes on throughout: the material
// is the same bytes, so caches stay valid and every old ciphertext keeps
// decrypting. An interrupted run is resumed by running again: versions
// already under the current DK are skipped, and when all are, this is a
// no-op returning the current version.
//
// Like creation, a re-wrap holds HSM-level material briefly in process
// memory; doing it inside the HSM (unwrap and wrap without extraction) is
// a later backend step.
func (s *Store) RotateDomainKey(ctx context.Context, progress func(done, total int)) (uint32, error) {
	if progress == nil {
		progress = func(int, int) {}
	}
	cur, err := s.hsm.CurrentDomainKeyVersion(ctx)
	if err != nil {
		return 0, hsmErr("rotate domain key: current domain key version", err)
	}
	held, err := s.hsm.DomainKeyVersions(ctx)
	if err != nil {
		return 0, hsmErr("rotate domain key: domain key versions", err)
	}
	todo, err := s.rewrapPlan(cur, held)
	if err != nil {
		return 0, err
	}
	total := len(todo)
	progress(0, total)
	if total == 0 {
		return cur, nil
	}
	s.log.Info("re-wrapping key versions under the current domain key", "versions", total, "domain_key_version", cur)
	for done := 0; done < total; {
		batch := todo[done:min(done+s.cfg.RewrapBatch, total)]
		p := &fsmpb.RewrapVersions{Versions: make([]*fsmpb.Rewrap, 0, len(batch))}
		for _, it := range batch {
			w, err := s.rewrapOne(ctx, it, cur)
			if err != nil {
				return 0, err
			}
			p.Versions = append(p.Versions, &fsmpb.Rewrap{
				KeyId: it.keyID, Version: it.version,
				FromDomainKeyVersion: it.from, ToDomainKeyVersion: cur, WrappedMaterial: w,
			})
		}
		if _, err := s.propose(ctx, "rotate domain key: re-wrap", fsmpb.CommandType_COMMAND_TYPE_REWRAP_VERSIONS, p, ""); err != nil {
			return 0, fmt.Errorf("%w (%d of %d versions re-wrapped; run again to resume)", err, done, total)
		}
		done += len(batch)
		progress(done, total)
	}
	s.log.Info("domain key rotation complete", "versions", total, "domain_key_version", cur)
	return cur, nil
}

// rewrapPlan lists the versions not under cur, after checking that this
// HSM can do the work: it holds every DK version still in use, and none in
// use is newer than its current one.
func (s *Store) rewrapPlan(cur uint32, held []uint32) ([]rewrapItem, error) {
	var todo []rewrapItem
	keys, _ := s.state.Keys("", 0)
	for _, k := range keys {
		for _, v := range k.GetVersions() {
			dk := v.GetDomainKeyVersion()
			switch {
			case dk == cur:
				continue
			case dk > cur:
				return nil, userErr(ErrUnavailable, "this node's HSM holds domain key versions up to v%d, but key %s v%d is wrapped under v%d: run the re-wrap on a node whose HSM holds the newest domain key",
					cur, k.GetId(), v.GetVersion(), dk)
			case !slices.Contains(held, dk):
				return nil, userErr(ErrUnavailable, "this node's HSM lacks domain key v%d, which still wraps key %s v%d: enrol it from a node that holds it",
					dk, k.GetId(), v.GetVersion())
			}
			todo = append(todo, rewrapItem{keyID: k.GetId(), version: v.GetVersion(), from: dk, wrapped: v.GetWrappedMaterial()})
		}
	}
	return todo, nil
}

// rewrapOne moves one blob from its DK version to cur, wiping the
// material in between.
func (s *Store) rewrapOne(ctx context.Context, it rewrapItem, cur uint32) ([]byte, error) {
	raw, err := s.hsm.Unwrap(ctx, it.from, it.wrapped)
	if err != nil {
		if errors.Is(err, hsm.ErrUnwrap) {
			return nil, fmt.Errorf("rotate domain key: key %s v%d does not unwrap under domain key v%d: %w: %w", it.keyID, it.version, it.from, ErrInternal, err)
		}
		return nil, hsmErr(fmt.Sprintf("rotate domain key: unwrap key %s v%d", it.keyID, it.version), err)
	}
	defer clear(raw)
	w, err := s.hsm.Wrap(ctx, cur, raw)
	if err != nil {
		return nil, hsmErr(fmt.Sprintf("rotate domain key: wrap key %s v%d under domain key v%d", it.keyID, it.version, cur), err)
	}
	return w, nil
}
