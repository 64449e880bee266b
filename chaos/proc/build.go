package proc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// BuildBinary compiles the module's meridian command (the module rooted at
// moduleDir) into dir/meridian and returns the path. dir is made readable
// and searchable by everyone: nodes run under unprivileged uids. Build it
// once per test process; `meridian chaos run` passes its own executable
// instead.
func BuildBinary(ctx context.Context, moduleDir, dir string) (string, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("build meridian: %w", err)
	}
	out := filepath.Join(dir, "meridian")
	cmd := []string{"build", "-o", out, "./cmd/meridian"}
	if _, err := outputIn(ctx, moduleDir, "go", cmd...); err != nil {
		return "", fmt.Errorf("build meridian: %w", err)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		return "", fmt.Errorf("build meridian: %w", err)
	}
	return out, nil
}
