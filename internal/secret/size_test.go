package secret

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	dir := t.TempDir()
	size := func(name string) int64 {
		out := filepath.Join(dir, name)
		cmd := exec.Command(gobin, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/sizecheck/"+name)
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, b)
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
