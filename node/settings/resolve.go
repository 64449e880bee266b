package settings

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/node"
)

// The secrets' environment variables. They are not named after a flag:
// there is no flag for a secret's value (flags show in ps), only for the
// file that holds it.
const (
	EnvHSMPassphrase = "MERIDIAN_HSM_PASSPHRASE"
	EnvHSMPIN        = "MERIDIAN_HSM_PIN"
	EnvGossipKey     = "MERIDIAN_GOSSIP_KEY"
)

// Resolve turns Options into the node.Config that node.Start takes: the
// host name for a missing node id, the secrets read from their files or
// the environment, and node.Config.Validate. No error carries a secret.
func Resolve(o Options) (node.Config, error) {
	cfg := o.Node
	if cfg.NodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return cfg, fmt.Errorf("%w: --node-id not given and the host name is unknown: %v", ErrInvalid, err)
		}
		cfg.NodeID = host
	}
	cfg.HSM.CreateIfMissing = cfg.HSM.CreateIfMissing || cfg.Bootstrap
	if cfg.GossipAddr != "" && !cfg.GossipInsecure {
		key, err := ReadGossipKey(o.GossipKeyFile)
		if err != nil {
			return cfg, err
		}
		cfg.GossipKey = key
	}
	switch cfg.HSM.Backend {
	case "pkcs11":
		pin, err := ReadPIN(o.HSMPINFile, EnvHSMPIN, "hsm-pin-file", "PKCS#11 token's user PIN")
		if err != nil {
			return cfg, err
		}
		cfg.HSM.PIN = pin
	case "", "soft":
		pass, err := ReadPassphrase(o.HSMPassphraseFile, "hsm-passphrase-file")
		if err != nil {
			return cfg, err
		}
		cfg.HSM.Passphrase = pass
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// ReadPassphrase takes the soft HSM passphrase from file (trailing newline
// trimmed) or EnvHSMPassphrase; flag names the file's flag for errors.
func ReadPassphrase(file, flag string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: read --%s: %v", ErrInvalid, flag, err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: --%s %s is empty", ErrInvalid, flag, file)
		}
		return b, nil
	}
	if p := os.Getenv(EnvHSMPassphrase); p != "" {
		return []byte(p), nil
	}
	return nil, fmt.Errorf("%w: the soft HSM needs a passphrase: set %s or pass --%s", ErrInvalid, EnvHSMPassphrase, flag)
}

// ReadPIN takes a PKCS#11 PIN from an owner-only file or the environment
// variable env (EnvHSMPIN for the user PIN); flag names the file's flag
// and what the PIN is for, for errors. The PIN never appears in an error.
func ReadPIN(file, env, flag, what string) (string, error) {
	if file != "" {
		pin, err := pkcs11.ReadPINFile(file)
		if err != nil {
			return "", fmt.Errorf("%w: --%s: %v", ErrInvalid, flag, err)
		}
		return pin, nil
	}
	if pin := os.Getenv(env); pin != "" {
		return pin, nil
	}
	return "", fmt.Errorf("%w: the %s is needed: set %s or pass --%s", ErrInvalid, what, env, flag)
}

// ReadGossipKey reads the base64 gossip key from file or EnvGossipKey.
func ReadGossipKey(file string) ([]byte, error) {
	text := os.Getenv(EnvGossipKey)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: read --gossip-key-file: %v", ErrInvalid, err)
		}
		text = string(b)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("%w: gossip is encrypted: set %s or --gossip-key-file (make a key with `meridian operator gossip-keygen`), "+
			"or pass --gossip-insecure on a trusted test network", ErrInvalid, EnvGossipKey)
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%w: the gossip key must be 32 bytes, base64-encoded (make one with `meridian operator gossip-keygen`)", ErrInvalid)
	}
	return key, nil
}
