// Package repo finds the repository's root directory: the nearest directory
// with go.mod at or above the working directory. The local stack, the
// benchmark, dynalite's tools directory and the test suites that run the
// real stack all start from it.
package repo

import (
	"fmt"
	"os"
	"path/filepath"
)

// Root returns dir made absolute when dir is not empty; otherwise the
// nearest directory at or above the working directory that holds go.mod
// (go test runs in the package's directory, go run in the caller's).
func Root(dir string) (string, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("repo: %w", err)
		}
		return abs, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo: working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("repo: no go.mod at or above %s", wd)
		}
	}
}
