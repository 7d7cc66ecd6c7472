package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWipeRefusesTheRepository(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, ".wxlocal", "dynamodb")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, filepath.Dir(root), "/"} {
		if err := wipe(root, dir); err == nil {
			t.Errorf("wipe(%s) was allowed", dir)
		}
	}
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("data dir gone after refused wipes: %v", err)
	}
	if err := wipe(root, data); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir still there: %v", err)
	}
}
