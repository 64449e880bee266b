package soft

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// fileMode is the sealed file's permission: the file is ciphertext, but
// there is no reason for anyone else to read it and offline guessing of a
// weak passphrase starts with a copy.
const fileMode = 0o600

// readSealed reads the sealed file, refusing one larger than any DK set
// this format can hold.
func readSealed(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileLen+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileLen {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFormat, maxFileLen)
	}
	return b, nil
}

// writeSealed writes data to path atomically: a reader (or a crash) sees
// either the old file or the new one, never a torn one. With noClobber it
// fails with ErrExists rather than replace an existing file.
func writeSealed(path string, data []byte, noClobber bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(fileMode); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if noClobber {
		err = linkNoClobber(tmpName, path)
		_ = os.Remove(tmpName) // the link (if any) keeps the data
	} else {
		err = os.Rename(tmpName, path)
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// linkNoClobber publishes tmp at path only if nothing is there: link(2)
// fails with EEXIST atomically, where a stat-then-rename would race with a
// second Create.
func linkNoClobber(tmp, path string) error {
	err := os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExists, path)
	}
	return err
}

// syncDir makes the rename or link itself durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
