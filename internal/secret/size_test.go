package secret

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wxsession/wxsession/internal/repo"
)

// TestBinarySizeBudget builds two Lambda-style binaries the way SAM builds
// ours (linux/arm64, lambda.norpc, -trimpath, -s -w): testdata/sizecheck/base
// links aws-sdk-go-v2/config and service/dynamodb only; withsecret adds
// packages config and secret. The budget is withsecret ≤ 1.05 × base.
// Opt-in (it cross-compiles the SDK): WXSESSION_SIZECHECK=1 go test -run BinarySize -v ./secret
func TestBinarySizeBudget(t *testing.T) {
	if os.Getenv("WXSESSION_SIZECHECK") != "1" {
		t.Skip("set WXSESSION_SIZECHECK=1 to build and compare the binaries")
	}
	root, err := repo.Root("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	size := func(name string) int64 {
		out := filepath.Join(dir, name)
		if err := repo.BuildLambda(context.Background(), repo.Lambda{Root: root, Package: "./internal/secret/testdata/sizecheck/" + name, Out: out, Go: "go"}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	base, with := size("base"), size("withsecret")
	ratio := float64(with) / float64(base)
	t.Logf("base (config+dynamodb) %d bytes; with config+secret %d bytes; +%d bytes (×%.4f)", base, with, with-base, ratio)
	if ratio > 1.05 {
		t.Errorf("binary with secret is ×%.4f the baseline, budget ×1.05", ratio)
	}
}
