package repo

import (
	"os"
	"path/filepath"
	"strings"
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

// TestSAMBuildsInSource: sam build must not copy the repository (with the
// local stack's .wxlocal/, build/ and node_modules/) into a scratch
// directory before running the Makefile targets.
func TestSAMBuildsInSource(t *testing.T) {
	root, err := Root("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ file, section, want string }{
		{"samconfig.toml", "[default.build.parameters]", "build_in_source = true"},
		{"Makefile", "deploy:", "sam build --build-in-source"},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join(root, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		i := strings.Index(s, tt.section)
		if i < 0 || !strings.Contains(s[i:], tt.want) {
			t.Errorf("%s: %q does not set %q", tt.file, tt.section, tt.want)
		}
	}
}
