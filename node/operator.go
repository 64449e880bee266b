package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/keystore"
	"github.com/meridiankms/meridian/transport"
)

// operatorBackend adapts the node's keystore, HSM and cluster node to
// transport.OperatorBackend. h is the node's instrumented (and possibly
// fault-wrapped) HSM, the one the keystore uses: operator calls are
// measured and fail with it, and status reports what the keystore sees.
// Its capabilities are the backend's. c carries the calls on other
// members over the cluster plane.
type operatorBackend struct {
	ks *keystore.Store
	h  hsm.HSM
	c  *cluster.Node
}

var _ transport.OperatorBackend = operatorBackend{}

func (b operatorBackend) DomainKeyStatus(ctx context.Context) (keystore.DomainKeyStatus, error) {
	return b.ks.DomainKeyStatus(ctx)
}

func (b operatorBackend) RewrapDomainKey(ctx context.Context, progress func(done, total int)) (uint32, error) {
	return b.ks.RotateDomainKey(ctx, progress)
}

func (b operatorBackend) RotateHSMDomainKey(ctx context.Context) (uint32, error) {
	r, ok := b.h.DomainKeyRotator()
	if !ok {
		return 0, fmt.Errorf("this node's HSM cannot make a new domain key version: %w", keystore.ErrUnsupported)
	}
	v, err := r.RotateDomainKey(ctx)
	return v, operatorHSMErr("rotate the domain key in this node's HSM", err)
}

// MemberDomainKeyVersions, SyncMember and SyncDomainKeysFrom go over the
// cluster plane; their errors carry the status a member (or the cluster's
// refusal) gave them, which transport passes on.
func (b operatorBackend) MemberDomainKeyVersions(ctx context.Context, id string) ([]uint32, error) {
	return b.c.PeerDomainKeyVersions(ctx, id)
}

func (b operatorBackend) SyncMember(ctx context.Context, id, sourceID string) (transport.DomainKeySync, error) {
	res, err := b.c.SyncPeerDomainKeys(ctx, id, sourceID)
	return transport.DomainKeySync{Imported: res.Imported, Versions: res.Versions}, err
}

func (b operatorBackend) SyncDomainKeysFrom(ctx context.Context, sourceID string) (transport.DomainKeySync, error) {
	res, err := b.c.SyncDomainKeysFrom(ctx, sourceID)
	return transport.DomainKeySync{Imported: res.Imported, Versions: res.Versions}, err
}

func (b operatorBackend) enroller() (hsm.Enroller, error) {
	e, ok := b.h.Enroller()
	if !ok {
		return nil, fmt.Errorf("this node's HSM cannot exchange domain keys with other HSMs: %w", keystore.ErrUnsupported)
	}
	return e, nil
}

func (b operatorBackend) TransportPublicKey(ctx context.Context) ([]byte, error) {
	e, err := b.enroller()
	if err != nil {
		return nil, err
	}
	pub, err := e.TransportPublicKey(ctx)
	return pub, operatorHSMErr("make a transport key", err)
}

func (b operatorBackend) ExportDomainKeys(ctx context.Context, pub []byte) ([]byte, error) {
	e, err := b.enroller()
	if err != nil {
		return nil, err
	}
	bundle, err := e.ExportDomainKeys(ctx, pub)
	if err != nil {
		return nil, operatorHSMErr("export domain keys", err)
	}
	raw, err := bundle.MarshalBinary()
	return raw, operatorHSMErr("encode domain key bundle", err)
}

func (b operatorBackend) ImportDomainKeys(ctx context.Context, raw []byte) error {
	e, err := b.enroller()
	if err != nil {
		return err
	}
	var bundle hsm.DomainKeyBundle
	if err := bundle.UnmarshalBinary(raw); err != nil {
		return fmt.Errorf("import domain keys: %w: %w", keystore.ErrValidation, err)
	}
	return operatorHSMErr("import domain keys", e.ImportDomainKeys(ctx, &bundle))
}

func (b operatorBackend) HSMStatus(ctx context.Context) (transport.HSMStatus, error) {
	info := b.h.Info()
	st := transport.HSMStatus{Healthy: true, Backend: info.Backend, Detail: info.Detail}
	if err := b.h.Health(ctx); err != nil {
		st.Healthy, st.Reason = false, err.Error() // hsm errors carry no secrets
	}
	if vs, err := b.h.DomainKeyVersions(ctx); err == nil {
		st.DomainKeyVersions = vs
	}
	if tk, ok := b.h.Token(); ok {
		if ms, err := tk.Mechanisms(ctx); err == nil {
			for _, m := range ms {
				st.Mechanisms = append(st.Mechanisms, transport.HSMMechanism{Name: m.Name, Present: m.Present, Required: m.Required, Use: m.Use})
			}
		}
	}
	return st, nil
}

// operatorHSMErr names the operation in an HSM error. transport's error
// table knows the HSM's own sentinels: a device down or closed, or without
// the domain key, is Unavailable there, and anything else is internal. The
// failures an operator reads the message of are the caller's to fix, and
// keep the keystore sentinel whose exception name their message carries.
func operatorHSMErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, hsm.ErrInvalidInput), errors.Is(err, hsm.ErrUnwrap):
		// A bad transport key, or a bundle not made for this HSM.
		return fmt.Errorf("%s: %w: %w", op, keystore.ErrValidation, err)
	case errors.Is(err, pkcs11.ErrTransportKeyNotTrusted):
		// RequireTrustedWrap: the token's SO must approve the joiner's key.
		return fmt.Errorf("%s: %w: %w", op, keystore.ErrInvalidState, err)
	case errors.Is(err, hsm.ErrUnsupported):
		return fmt.Errorf("%s: %w: %w", op, keystore.ErrUnsupported, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// syncInterval is how often a node checks that its HSM holds every domain
// key version the replicated state uses.
const syncInterval = 5 * time.Second

// keepDomainKeysInSync closes the gap a domain-key rotation leaves on a node
// that was down or partitioned while it ran: when stored key versions use
// a DK version this node's HSM lacks, the node pulls it from the leader's
// HSM through the enrolment exchange, over the cluster plane. Runs until
// the node stops.
func (n *Node) keepDomainKeysInSync() {
	defer n.wg.Done()
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), syncInterval)
		if err := n.syncDomainKeysOnce(ctx); err != nil {
			n.log.Warn("domain key sync", "err", err)
		}
		cancel()
	}
}

func (n *Node) syncDomainKeysOnce(ctx context.Context) error {
	st, err := n.store.DomainKeyStatus(ctx)
	if err != nil {
		return err
	}
	held := map[uint32]bool{}
	for _, v := range st.HSMVersions {
		held[v] = true
	}
	missing := false
	for v, count := range st.Versions {
		if count > 0 && !held[v] {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	leader, _ := n.cluster.Leader()
	if leader == "" || leader == n.cfg.NodeID {
		return nil // nobody to pull from (or we lead and lack it: an operator's problem)
	}
	got, err := n.cluster.SyncDomainKeysFrom(ctx, leader)
	if err != nil {
		return fmt.Errorf("pull domain key versions from %s: %w", leader, err)
	}
	n.log.Info("domain key versions pulled from the leader's HSM", "versions", got.Imported)
	return nil
}
