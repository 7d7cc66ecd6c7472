package dynalite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MinNodeMajor is the oldest Node.js major version the pinned dynalite runs
// on (its package.json engines field: node >= 20).
const MinNodeMajor = 20

// ErrDataDirInUse reports a data directory another running stack holds.
var ErrDataDirInUse = errors.New("data directory in use by another stack; pass -data-dir")

// checkNode fails unless node reports a major version ≥ MinNodeMajor.
func checkNode(ctx context.Context, node string) error {
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return fmt.Errorf("dynalite: %s --version: %w", node, err)
	}
	v := strings.TrimSpace(string(out))
	major, err := nodeMajor(v)
	if err != nil {
		return fmt.Errorf("dynalite: %w", err)
	}
	if major < MinNodeMajor {
		return fmt.Errorf("dynalite: Node.js %s is too old: the pinned dynalite needs Node.js %d or newer", v, MinNodeMajor)
	}
	return nil
}

// nodeMajor parses `node --version` output ("v20.20.2").
func nodeMajor(v string) (int, error) {
	s, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("cannot read the Node.js version %q", v)
	}
	return n, nil
}

// lockDataDir takes an exclusive lock on dir (a lock file beside it,
// <dir>.lock, so dynalite's LevelDB directory stays its own) for as long as
// the returned file is open. A second stack on the same directory gets
// ErrDataDirInUse instead of LevelDB's iterator errors. The kernel drops the
// lock when the process dies, so a killed stack leaves nothing to clean up.
func lockDataDir(dir string) (*os.File, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dynalite: data dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("dynalite: data dir: %w", err)
	}
	f, err := os.OpenFile(abs+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dynalite: lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("dynalite: %s: %w", abs, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("dynalite: lock data dir: %w", err)
	}
	return f, nil
}

// LockDataDir takes the same lock Start takes on dir, for callers that
// change the directory before starting (make dev -reset wipes it): it fails
// with ErrDataDirInUse while a stack runs on dir. Call the returned function
// to release it.
func LockDataDir(dir string) (release func(), err error) {
	f, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}
