package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestMiniProgramClient runs client/test/ (node's built-in test runner)
// against this stack: the mini-program client library, with a simulated wx
// object doing real HTTP. node is required, not optional.
func TestMiniProgramClient(t *testing.T) {
	needStack(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the mini-program client tests: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "client/test/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"WXSESSION_API_URL="+stk.APIURL,
		"WXSESSION_WECHAT_URL="+stk.WeChatURL,
		"NO_COLOR=1",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err = cmd.Run()
	t.Logf("node --test client/test/ (%v):\n%s", time.Since(t0).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("node --test client/test/ failed: %v", err)
	}
	if !bytes.Contains(out.Bytes(), []byte("# pass")) || bytes.Contains(out.Bytes(), []byte("# pass 0")) {
		t.Errorf("node ran no passing tests")
	}
}
