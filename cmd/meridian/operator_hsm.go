package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/hsm/soft"
	"github.com/meridiankms/meridian/node/settings"
)

// envSOPIN carries the PKCS#11 security officer PIN for `hsm init`. PINs,
// like the soft passphrase, come from files or the environment, never from
// flag values (which show in ps).
const envSOPIN = "MERIDIAN_HSM_SO_PIN"

// hsmOptions select and open an HSM directly (not through a node): for
// `hsm init` and `hsm status --offline`. Flag names match `server`'s.
type hsmOptions struct {
	backend   string
	softPath  string
	passFile  string
	module    string
	label     string
	pinFile   string
	soPINFile string // init only
	fastKDF   bool   // hidden: tests
}

func addHSMFlags(cmd *cobra.Command, h *hsmOptions, init bool) {
	fs := cmd.Flags()
	fs.StringVar(&h.backend, "hsm", "soft", "HSM backend: soft or pkcs11")
	fs.StringVar(&h.softPath, "hsm-soft-path", "", "soft: the sealed domain-key `FILE`")
	fs.StringVar(&h.passFile, "hsm-passphrase-file", "", "soft: read the passphrase from this `FILE` (or set "+envPassphrase+")")
	fs.StringVar(&h.module, "hsm-module", "", "pkcs11: the module `PATH`, e.g. /usr/lib/softhsm/libsofthsm2.so")
	fs.StringVar(&h.label, "hsm-token-label", "", "pkcs11: the token's `LABEL` (slot ids are not stable; labels are)")
	fs.StringVar(&h.pinFile, "hsm-pin-file", "", "pkcs11: read the user PIN from this `FILE`, mode 0600 (or set "+envPIN+")")
	if init {
		fs.StringVar(&h.soPINFile, "hsm-so-pin-file", "", "pkcs11: read the security officer PIN from this `FILE`, mode 0600 (or set "+envSOPIN+")")
		fs.BoolVar(&h.fastKDF, "insecure-fast-kdf", false, "soft: cheapest passphrase KDF (tests only)")
		_ = fs.MarkHidden("insecure-fast-kdf")
	}
}

func (h *hsmOptions) check() error {
	switch h.backend {
	case "soft":
		if h.softPath == "" {
			return usageErrorf("--hsm soft needs --hsm-soft-path (the sealed domain-key file)")
		}
	case "pkcs11":
		if h.module == "" || h.label == "" {
			return usageErrorf("--hsm pkcs11 needs --hsm-module and --hsm-token-label")
		}
	default:
		return usageErrorf("--hsm %q: want soft or pkcs11", h.backend)
	}
	return nil
}

// readPIN is settings.ReadPIN (the server's), its refusal a usage error.
func readPIN(file, env, flag, what string) (string, error) {
	pin, err := settings.ReadPIN(file, env, flag, what)
	if err != nil {
		return "", usageError{err}
	}
	return pin, nil
}

func (h *hsmOptions) softConfig() (soft.Config, error) {
	pass, err := readPassphrase(h.passFile)
	if err != nil {
		return soft.Config{}, err
	}
	cfg := soft.DefaultConfig()
	cfg.Path, cfg.Passphrase = h.softPath, pass
	if h.fastKDF {
		cfg.KDF = soft.KDFParams{Time: soft.MinKDFTime, MemoryKiB: soft.MinKDFMemoryKiB, Threads: 1}
	}
	return cfg, nil
}

func (h *hsmOptions) pkcs11Config() (pkcs11.Config, error) {
	pin, err := readPIN(h.pinFile, envPIN, "hsm-pin-file", "token's user PIN")
	if err != nil {
		return pkcs11.Config{}, err
	}
	cfg := pkcs11.DefaultConfig()
	cfg.ModulePath, cfg.TokenLabel, cfg.PIN = h.module, h.label, pin
	return cfg, nil
}

func newOperatorHSMCmd(o *clientOptions) *cobra.Command {
	c := groupCmd(&cobra.Command{
		Use:   "hsm",
		Short: "Set up and inspect a node's HSM",
		Long: `Set up a node's HSM (a PKCS#11 token or the soft backend's sealed file) and
inspect it, through a running node or directly. docs/HSM.md walks through
SoftHSM2 and vendor modules.`,
		Example: `  meridian operator hsm init --hsm pkcs11 --hsm-module /usr/lib/softhsm/libsofthsm2.so \
    --hsm-token-label meridian-n1 --hsm-so-pin-file so.pin --hsm-pin-file user.pin
  meridian operator hsm status --insecure --addr 10.0.0.1:7400`,
	})
	c.AddCommand(newHSMInitCmd(), newHSMStatusCmd(o))
	return c
}

func newHSMInitCmd() *cobra.Command {
	h := &hsmOptions{}
	var noDK, existing bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Initialise a PKCS#11 token or a soft HSM file, with domain key v1",
		Long: `Prepare the HSM of a node that is not running.

PKCS#11: initialise a fresh token with --hsm-token-label on the first slot
holding an uninitialised token, set its security officer and user PINs, and
generate domain key version 1 inside it (AES-256, sensitive, never
extractable in the clear). With --existing-token the token was initialised
by the vendor's tools and only the domain key is made. The PINs are read
from files (mode 0600) or the MERIDIAN_HSM_SO_PIN and MERIDIAN_HSM_PIN
environment variables, never from flag values.

Soft: create the sealed file at --hsm-soft-path holding domain key v1,
sealed with the passphrase from --hsm-passphrase-file or
MERIDIAN_HSM_PASSPHRASE. An existing file is never overwritten.

Only the first node of a new cluster needs a domain key. With --no-domain-key
the HSM is prepared empty: a node joining the cluster receives the domain
key by enrolment, inside its HSM.`,
		Example: `  # SoftHSM token for the first node (docs/HSM.md)
  meridian operator hsm init --hsm pkcs11 --hsm-module /usr/lib/softhsm/libsofthsm2.so \
    --hsm-token-label meridian-n1 --hsm-so-pin-file /etc/meridian/so.pin --hsm-pin-file /etc/meridian/user.pin

  # a joining node's token: no domain key, it arrives by enrolment
  meridian operator hsm init --hsm pkcs11 --hsm-module /usr/lib/softhsm/libsofthsm2.so \
    --hsm-token-label meridian-n2 --hsm-so-pin-file so.pin --hsm-pin-file user.pin --no-domain-key

  # soft backend
  MERIDIAN_HSM_PASSPHRASE=... meridian operator hsm init --hsm-soft-path /var/lib/meridian/hsm/domain.sealed`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := h.check(); err != nil {
				return err
			}
			if existing && h.backend != "pkcs11" {
				return usageErrorf("--existing-token applies to --hsm pkcs11 only")
			}
			if h.backend == "soft" {
				return initSoft(cmd, h, noDK)
			}
			return initPKCS11(cmd, h, noDK, existing)
		},
	}
	addHSMFlags(cmd, h, true)
	cmd.Flags().BoolVar(&noDK, "no-domain-key", false, "prepare the HSM without a domain key (a joining node, enrolled by the cluster)")
	cmd.Flags().BoolVar(&existing, "existing-token", false, "pkcs11: the token is already initialised (by vendor tools); only make the domain key")
	return cmd
}

func initSoft(cmd *cobra.Command, h *hsmOptions, noDK bool) error {
	cfg, err := h.softConfig()
	if err != nil {
		return err
	}
	defer clear(cfg.Passphrase)
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return fmt.Errorf("create directory of %s: %w", cfg.Path, err)
	}
	create := soft.Create
	if noDK {
		create = soft.CreateEmpty
	}
	s, err := create(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return printInitResult(cmd, s, fmt.Sprintf("created sealed domain-key file %s", cfg.Path))
}

func initPKCS11(cmd *cobra.Command, h *hsmOptions, noDK, existing bool) error {
	cfg, err := h.pkcs11Config()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	what := fmt.Sprintf("token %q found (initialised beforehand)", h.label)
	if !existing {
		so, err := readPIN(h.soPINFile, envSOPIN, "hsm-so-pin-file", "token's security officer PIN")
		if err != nil {
			return err
		}
		if err := pkcs11.InitToken(ctx, h.module, h.label, so, cfg.PIN); err != nil {
			return err
		}
		what = fmt.Sprintf("initialised token %q with its SO and user PINs", h.label)
	}
	p, err := pkcs11.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	if !noDK {
		if _, err := p.InitDomainKey(ctx); err != nil {
			return fmt.Errorf("create domain key v1 in token %q: %w", h.label, err)
		}
	}
	return printInitResult(cmd, p, what)
}

func printInitResult(cmd *cobra.Command, h hsm.HSM, what string) error {
	vs, err := h.DomainKeyVersions(cmd.Context())
	if err != nil {
		return fmt.Errorf("read domain key versions: %w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, what)
	if len(vs) == 0 {
		fmt.Fprintln(out, "domain key: none (the node receives it by enrolment when it joins)")
		return nil
	}
	fmt.Fprintf(out, "domain key: %s created inside the HSM\n", versionList(vs))
	return nil
}

func newHSMStatusCmd(o *clientOptions) *cobra.Command {
	h := &hsmOptions{}
	var offline bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a node's HSM: backend, health, domain key versions, mechanisms",
		Long: `Show a node's HSM: the backend and what it opened (module and token label,
or the sealed file; never a PIN or passphrase), whether it is healthy and
if not why, the domain key versions it holds, and for PKCS#11 each
mechanism Meridian uses and whether the token offers it.

By default it asks the running node at --addr (the HSMStatus RPC). With
--offline it opens the HSM directly instead, with the same --hsm flags as
init: for a token or file no running node is using (a PKCS#11 token is
logged in by one process at a time on most HSMs).`,
		Example: `  meridian operator hsm status --insecure --addr 10.0.0.1:7400
  MERIDIAN_HSM_PIN=... meridian operator hsm status --offline --hsm pkcs11 \
    --hsm-module /usr/lib/softhsm/libsofthsm2.so --hsm-token-label meridian-n1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !offline {
				return o.operatorCall(cmd, false, func(ctx context.Context, c apiv1.OperatorClient) error {
					resp, err := c.HSMStatus(ctx, &apiv1.HSMStatusRequest{})
					if err != nil {
						return err
					}
					return emit(cmd, o, rawOut{}, hsmStatusResult(resp))
				})
			}
			if err := h.check(); err != nil {
				return err
			}
			resp, err := offlineHSMStatus(cmd.Context(), h)
			if err != nil {
				return err
			}
			return emit(cmd, o, rawOut{}, hsmStatusResult(resp))
		},
	}
	addHSMFlags(cmd, h, false)
	cmd.Flags().BoolVar(&offline, "offline", false, "open the HSM directly (with the --hsm flags) instead of asking a node")
	return cmd
}

// offlineHSMStatus opens the HSM itself and answers as the RPC would.
func offlineHSMStatus(ctx context.Context, h *hsmOptions) (*apiv1.HSMStatusResponse, error) {
	var dev hsm.HSM
	if h.backend == "soft" {
		cfg, err := h.softConfig()
		if err != nil {
			return nil, err
		}
		s, err := soft.Open(ctx, cfg)
		clear(cfg.Passphrase)
		if err != nil {
			return nil, err
		}
		dev = s
	} else {
		cfg, err := h.pkcs11Config()
		if err != nil {
			return nil, err
		}
		p, err := pkcs11.Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		dev = p
	}
	defer dev.Close()
	var mechs []hsm.Mechanism
	if tk, ok := dev.Token(); ok {
		var err error
		if mechs, err = tk.Mechanisms(ctx); err != nil {
			return nil, err
		}
	}
	info := dev.Info()
	resp := &apiv1.HSMStatusResponse{Healthy: true, Backend: info.Backend, Detail: info.Detail}
	if err := dev.Health(ctx); err != nil {
		resp.Healthy, resp.Reason = false, err.Error()
	}
	vs, err := dev.DomainKeyVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read domain key versions: %w", err)
	}
	resp.DomainKeyVersions = vs
	for _, m := range mechs {
		resp.Mechanisms = append(resp.Mechanisms, &apiv1.HSMMechanism{Name: m.Name, Present: m.Present, Required: m.Required, Use: m.Use})
	}
	return resp, nil
}

func hsmStatusResult(resp *apiv1.HSMStatusResponse) *result {
	r := &result{msg: resp}
	r.add("Node", resp.GetNodeId())
	r.add("Backend", resp.GetBackend())
	r.add("Detail", resp.GetDetail())
	r.addBool("Healthy", resp.GetHealthy())
	r.add("Reason", resp.GetReason())
	dks := versionList(resp.GetDomainKeyVersions())
	if dks == "" {
		dks = "none (not initialised or enrolled)"
	}
	r.add("DomainKeyVersions", dks)
	if ms := resp.GetMechanisms(); len(ms) > 0 {
		missing := 0
		t := &table{header: []string{"MECHANISM", "PRESENT", "REQUIRED", "USE"}}
		for _, m := range ms {
			if !m.GetPresent() {
				missing++
			}
			t.rows = append(t.rows, []string{m.GetName(), strconv.FormatBool(m.GetPresent()), strconv.FormatBool(m.GetRequired()), m.GetUse()})
		}
		r.add("Mechanisms", fmt.Sprintf("%d of %d present", len(ms)-missing, len(ms)))
		r.table = t
	}
	return r
}

// errNoAddr: operator commands talk to one node, the first --addr.
var errNoAddr = errors.New("no node address: pass --addr HOST:PORT (or set MERIDIAN_ADDR)")
