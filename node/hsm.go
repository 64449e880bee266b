package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/hsm/soft"
)

// openHSM opens the configured backend. A bootstrapping node (or one told
// to) gets a domain key; any other node starts without one when it has
// none yet and is enrolled by the cluster when it joins.
func openHSM(ctx context.Context, cfg Config) (hsm.HSM, error) {
	switch cfg.HSM.Backend {
	case "pkcs11":
		return openPKCS11(ctx, cfg)
	default:
		return openSoft(ctx, cfg)
	}
}

func openSoft(ctx context.Context, cfg Config) (hsm.HSM, error) {
	scfg := soft.DefaultConfig()
	scfg.Path, scfg.Passphrase = cfg.HSM.SoftPath, cfg.HSM.Passphrase
	if cfg.HSM.FastKDF {
		scfg.KDF = soft.KDFParams{Time: soft.MinKDFTime, MemoryKiB: soft.MinKDFMemoryKiB, Threads: 1}
	}
	if err := os.MkdirAll(filepath.Dir(scfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("create hsm dir: %w", err)
	}
	var (
		h   *soft.HSM
		err error
	)
	if cfg.HSM.CreateIfMissing {
		h, err = soft.OpenOrCreate(ctx, scfg)
	} else {
		h, err = soft.OpenOrCreateEmpty(ctx, scfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open soft hsm: %w", err)
	}
	return h, nil
}

func openPKCS11(ctx context.Context, cfg Config) (hsm.HSM, error) {
	pcfg := pkcs11.DefaultConfig()
	pcfg.ModulePath, pcfg.TokenLabel, pcfg.PIN = cfg.HSM.ModulePath, cfg.HSM.TokenLabel, cfg.HSM.PIN
	if cfg.HSM.MaxSessions > 0 {
		pcfg.MaxSessions = cfg.HSM.MaxSessions
	}
	h, err := pkcs11.Open(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open pkcs11 hsm: %w", err)
	}
	if cfg.HSM.CreateIfMissing {
		vs, err := h.DomainKeyVersions(ctx)
		if err == nil && len(vs) == 0 {
			_, err = h.InitDomainKey(ctx)
		}
		if err != nil && !errors.Is(err, pkcs11.ErrDomainKeyExists) {
			h.Close()
			return nil, fmt.Errorf("create the domain key in token %q: %w", cfg.HSM.TokenLabel, err)
		}
	}
	return h, nil
}

// hsmExporter lets the cluster's leader enrol joining nodes' HSMs.
type hsmExporter struct{ e hsm.Enroller }

func (x hsmExporter) ExportDomainKeys(ctx context.Context, pub []byte) ([]byte, error) {
	b, err := x.e.ExportDomainKeys(ctx, pub)
	if errors.Is(err, hsm.ErrInvalidInput) {
		return nil, fmt.Errorf("%w: %w", cluster.ErrInvalidTransportKey, err)
	}
	if err != nil {
		return nil, err
	}
	return b.MarshalBinary()
}

// exporterFor returns the enrolment hook, or nil when h cannot enrol: a
// nil hook is what makes the cluster refuse an enrolling joiner for good
// instead of letting it retry until its deadline. h is the node's
// instrumented HSM, which has the Enroller capability exactly when its
// backend does.
func exporterFor(h hsm.HSM) cluster.DomainKeyExporter {
	e, ok := h.Enroller()
	if !ok {
		return nil
	}
	return hsmExporter{e}
}

// join joins the cluster through cfg.Join. A node whose HSM holds no
// domain key yet is enrolled on the way: its HSM makes a transport key, the
// leader's HSM wraps the domain keys to it, and this HSM unwraps them.
func (n *Node) join(ctx context.Context) error {
	vs, err := n.hsm.DomainKeyVersions(ctx)
	if err != nil {
		return fmt.Errorf("read domain key versions: %w", err)
	}
	e, canEnrol := n.hsm.Enroller()
	if len(vs) > 0 || !canEnrol {
		if err := n.cluster.Join(ctx, n.cfg.Join); err != nil {
			return fmt.Errorf("join %v: %w", n.cfg.Join, err)
		}
		return nil
	}
	pub, err := e.TransportPublicKey(ctx)
	if err != nil {
		return fmt.Errorf("enrolment: make transport key: %w", err)
	}
	raw, err := n.cluster.JoinWithEnrolment(ctx, n.cfg.Join, pub)
	if err != nil {
		return fmt.Errorf("join %v with enrolment: %w", n.cfg.Join, err)
	}
	var b hsm.DomainKeyBundle
	if err := b.UnmarshalBinary(raw); err != nil {
		return fmt.Errorf("enrolment: read domain key bundle: %w", err)
	}
	if err := e.ImportDomainKeys(ctx, &b); err != nil {
		return fmt.Errorf("enrolment: import domain keys: %w", err)
	}
	n.log.Info("enrolled: domain keys imported into this node's HSM", "versions", len(b.Versions))
	return nil
}
