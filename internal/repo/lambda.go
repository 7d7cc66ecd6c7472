package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Lambda describes one Lambda binary to build with the Makefile's
// LAMBDA_BUILD, the one definition of the build flags (static, -tags
// lambda.norpc, -trimpath, -ldflags="-s -w").
type Lambda struct {
	// Root is the repository root (see Root).
	Root string
	// Package is the main package, e.g. "./functions/login".
	Package string
	// Out is the binary's path.
	Out string
	// GOOS and GOARCH default to the Makefile's (linux, arm64).
	GOOS, GOARCH string
	// Go is the go command; "" means the Makefile's (go).
	Go string
}

func (l Lambda) args(dryRun bool) []string {
	args := []string{"--no-print-directory", "-s", "-C", l.Root, "lambda", "PKG=" + l.Package, "OUT=" + l.Out}
	if dryRun {
		args = append(args[:1], append([]string{"-n"}, args[1:]...)...)
	}
	if l.GOOS != "" {
		args = append(args, "LAMBDA_GOOS="+l.GOOS)
	}
	if l.GOARCH != "" {
		args = append(args, "LAMBDA_GOARCH="+l.GOARCH)
	}
	if l.Go != "" {
		args = append(args, "GO="+l.Go)
	}
	return args
}

// BuildLambda runs `make lambda` for l. The error carries make's output.
func BuildLambda(ctx context.Context, l Lambda) error {
	cmd := exec.CommandContext(ctx, "make", l.args(false)...)
	cmd.Env = os.Environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("repo: build %s (make lambda): %w\n%s", l.Package, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// LambdaCommand returns the command line `make lambda` runs for l, without
// running it (make -n), for reports.
func LambdaCommand(ctx context.Context, l Lambda) (string, error) {
	out, err := exec.CommandContext(ctx, "make", l.args(true)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("repo: make -n lambda: %w\n%s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}
