package pki

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names. A certificate and its key sit side by side, the key named
// after the certificate with -key, so `ls` shows them as a pair and no
// node's files can be confused with another's.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// File modes: a private key is its owner's alone; certificates are public.
const (
	KeyFileMode  fs.FileMode = 0o600
	CertFileMode fs.FileMode = 0o644
)

// dirMode is the mode of an output directory this package creates: it
// holds private keys.
const dirMode fs.FileMode = 0o700

// Paths are the files a certificate was written to.
type Paths struct {
	Cert string `json:"certificate"`
	Key  string `json:"privateKey"`
}

// CAPaths are ca.pem and ca-key.pem in dir.
func CAPaths(dir string) Paths {
	return Paths{Cert: filepath.Join(dir, CACertFile), Key: filepath.Join(dir, CAKeyFile)}
}

// LeafPaths are <kind>-<name>.pem and <kind>-<name>-key.pem in dir:
// node-n1.pem, client-alice-key.pem. Names are SPIFFE path segments
// (letters, digits, '.', '-', '_'), so they are always safe file names.
func LeafPaths(dir string, kind Kind, name string) Paths {
	base := string(kind) + "-" + name
	return Paths{Cert: filepath.Join(dir, base+".pem"), Key: filepath.Join(dir, base+"-key.pem")}
}

// WriteCA writes the CA certificate and its software key (key) into dir as
// ca.pem and ca-key.pem. Without force it refuses, writing nothing, when
// either file exists: overwriting a CA key orphans every certificate it
// issued.
func WriteCA(dir string, ca *CA, key crypto.PrivateKey, force bool) (Paths, error) {
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return Paths{}, err
	}
	if pub, ok := publicOf(key); !ok || !samePublicKey(pub, ca.cert.PublicKey) {
		return Paths{}, fmt.Errorf("%w: the key to write is not the CA's", ErrKeyMismatch)
	}
	p := CAPaths(dir)
	return p, writePair(dir, p, ca.CertPEM(), keyPEM, force)
}

// WriteIssued writes an issued certificate and key into dir under
// LeafPaths, refusing existing files unless force.
func WriteIssued(dir string, iss *Issued, force bool) (Paths, error) {
	keyPEM, err := iss.KeyPEM()
	if err != nil {
		return Paths{}, err
	}
	p := LeafPaths(dir, iss.Kind, iss.Name)
	return p, writePair(dir, p, iss.CertPEM(), keyPEM, force)
}

// writePair writes a certificate and its key. Both names are checked
// before either is written, so a refusal leaves nothing half-done; the key
// goes first so a certificate never sits on disk without its key.
func writePair(dir string, p Paths, certPEM, keyPEM []byte, force bool) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	if !force {
		for _, path := range []string{p.Key, p.Cert} {
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%w: %s", ErrExists, path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := WriteFile(p.Key, keyPEM, KeyFileMode, force); err != nil {
		return err
	}
	if err := WriteFile(p.Cert, certPEM, CertFileMode, force); err != nil {
		if !force {
			_ = os.Remove(p.Key) // ours: it did not exist a moment ago
		}
		return err
	}
	return nil
}

// WriteFile writes data to path with mode, atomically: a reader (a node
// reloading its certificate, say) sees the old file or the new one, never
// a torn one, and the mode is set before any byte is written, so a key is
// never readable by others even for a moment. Without force it fails with
// ErrExists rather than replace a file, checked atomically by link(2).
func WriteFile(path string, data []byte, mode fs.FileMode, force bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if force {
		err = os.Rename(tmpName, path)
	} else {
		err = os.Link(tmpName, path)
		_ = os.Remove(tmpName) // the link, if made, keeps the data
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes the rename or link itself durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
