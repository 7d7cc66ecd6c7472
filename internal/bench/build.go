package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wxsession/wxsession/internal/repo"
)

// Build builds the main package pkg (e.g. "./functions/login") of the module
// at root for linux/goarch exactly like the product (the Makefile's `make
// lambda`, the one definition of the build flags), writes it to out and
// returns its size in bytes. goCmd is the go command.
func Build(ctx context.Context, goCmd, root, pkg, goarch, out string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return 0, fmt.Errorf("bench: build %s: %w", pkg, err)
	}
	if err := repo.BuildLambda(ctx, repo.Lambda{Root: root, Package: pkg, Out: out, GOOS: "linux", GOARCH: goarch, Go: goCmd}); err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, fmt.Errorf("bench: build %s: %w", pkg, err)
	}
	return fi.Size(), nil
}

// BuildCommand renders the build command line for the report: what `make
// lambda` runs for linux/goarch (make -n).
func BuildCommand(ctx context.Context, root, goarch string) string {
	cmd, err := repo.LambdaCommand(ctx, repo.Lambda{Root: root, Package: "PKG", Out: "OUT", GOOS: "linux", GOARCH: goarch})
	if err != nil {
		return "make lambda (" + err.Error() + ")"
	}
	return cmd
}
