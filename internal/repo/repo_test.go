package repo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	noMod := t.TempDir()
	tests := []struct {
		name, wd, dir, want string
		wantErr             bool
	}{
		{name: "at the root", wd: root, want: root},
		{name: "below the root", wd: deep, want: root},
		{name: "explicit dir wins", wd: deep, dir: noMod, want: noMod},
		{name: "no go.mod above", wd: noMod, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(tt.wd)
			got, err := Root(tt.dir)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Root(%q) error = %v, wantErr %v", tt.dir, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("Root(%q) = %q, want %q", tt.dir, got, tt.want)
			}
		})
	}
}
