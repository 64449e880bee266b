package pkcs11

import (
	"fmt"
	"os"
	"strings"
)

// ReadPINFile reads a PIN from path, dropping one trailing newline. It
// refuses a file other users can read: a PIN on a flag would show in ps,
// and one in a world-readable file is no better.
func ReadPINFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: PIN file: %w", ErrInvalidConfig, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: PIN file %s is readable by group or others (mode %v); chmod 600 it", ErrInvalidConfig, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: PIN file: %w", ErrInvalidConfig, err)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	clear(b)
	if pin == "" {
		return "", fmt.Errorf("%w: PIN file %s is empty", ErrInvalidConfig, path)
	}
	return pin, nil
}
