package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
)

// ClientSize is the mini-program client's size (client/scripts/size.js): the file as shipped,
// minified with the pinned terser, and minified + gzip, in bytes.
type ClientSize struct {
	File         string `json:"file"`
	Bytes        int64  `json:"bytes"`
	MinBytes     int64  `json:"min_bytes"`
	MinGzipBytes int64  `json:"min_gzip_bytes"`
}

// measureClient runs client/scripts/size.js with node (client/node_modules must be
// installed: make bench depends on make tools).
func measureClient(ctx context.Context, root string) (*ClientSize, error) {
	cmd := exec.CommandContext(ctx, "node", filepath.Join("scripts", "size.js"))
	cmd.Dir = filepath.Join(root, "client")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("client size: %w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("client size: %w", err)
	}
	var c ClientSize
	if err := json.Unmarshal(out, &c); err != nil || c.MinBytes <= 0 {
		return nil, fmt.Errorf("client size: unexpected output %q: %v", out, err)
	}
	return &c, nil
}
