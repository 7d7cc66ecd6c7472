package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
)

// TestRunRefusesBadDynamoDBEndpoint: flag mistakes about the external
// DynamoDB endpoint stop wxlocal with status 2 before anything starts.
func TestRunRefusesBadDynamoDBEndpoint(t *testing.T) {
	for _, args := range [][]string{
		{"-dynamodb-endpoint", "127.0.0.1:8000"},
		{"-dynamodb-endpoint", "ftp://127.0.0.1:8000"},
		{"-dynamodb-endpoint", "http://127.0.0.1:8000/tables"},
		{"-dynamodb-endpoint", "http://127.0.0.1:8000", "-reset"},
	} {
		if got := run(args); got != 2 {
			t.Errorf("run(%q) = %d, want 2", args, got)
		}
	}
}

// TestResetRefusesADataDirInUse: -reset never wipes the data of a stack
// that runs on the directory (it holds the directory's lock).
func TestResetRefusesADataDirInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "CURRENT")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	release, err := dynalite.LockDataDir(dir) // as a running stack does
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := run([]string{"-reset", "-data-dir", dir}); got != 1 {
		t.Fatalf("run(-reset) on a directory in use = %d, want 1", got)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("the data of the running stack was wiped: %v", err)
	}
}
