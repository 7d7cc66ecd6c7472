package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// LambdaBuildFlags are the Makefile's LAMBDA_BUILD flags: every binary the
// benchmark measures is built exactly like the product.
var LambdaBuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

// Build builds the main package pkg (e.g. "./functions/login") of the module
// at root for linux/goarch with CGO_ENABLED=0 and LambdaBuildFlags, writes
// it to out and returns its size in bytes. goCmd is the go command.
func Build(ctx context.Context, goCmd, root, pkg, goarch, out string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return 0, fmt.Errorf("bench: build %s: %w", pkg, err)
	}
	args := append([]string{"build"}, LambdaBuildFlags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("bench: build %s for linux/%s: %w\n%s", pkg, goarch, err, strings.TrimSpace(buf.String()))
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, fmt.Errorf("bench: build %s: %w", pkg, err)
	}
	return fi.Size(), nil
}

// BuildCommand renders the build command line for the report.
func BuildCommand(goarch string) string {
	return fmt.Sprintf(`CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -tags lambda.norpc -trimpath -ldflags="-s -w"`, goarch)
}
