package dynalite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNodeMajor(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"v20.20.2", 20, false},
		{"v18.19.0", 18, false},
		{"v22.1.0", 22, false},
		{"20", 20, false},
		{"", 0, true},
		{"vX.1", 0, true},
	}
	for _, tt := range tests {
		got, err := nodeMajor(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("nodeMajor(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestCheckNode runs checkNode against fake node commands.
func TestCheckNode(t *testing.T) {
	tests := []struct {
		version, wantErr string
	}{
		{"v20.0.0", ""},
		{"v24.1.0", ""},
		{"v18.19.0", "Node.js v18.19.0 is too old: the pinned dynalite needs Node.js 20 or newer"},
		{"garbage", "cannot read the Node.js version"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			node := filepath.Join(t.TempDir(), "node")
			if err := os.WriteFile(node, []byte("#!/bin/sh\necho "+tt.version+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			err := checkNode(context.Background(), node)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkNode(%s) = %v, want %q", tt.version, err, tt.wantErr)
			}
		})
	}
}
