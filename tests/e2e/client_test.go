package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/config"
)

// TestMiniProgramClient runs the mini-program client's suites (client/test/*.test.js,
// node's built-in test runner) against this stack: simulated wx, uni and Taro objects doing
// real HTTP, the package checks (npm pack, tsc on sample apps, size) and the sample
// mini-program in examples/miniprogram. node and client/node_modules (npm ci in client/,
// which `make test` runs) are required, not optional.
func TestMiniProgramClient(t *testing.T) {
	needStack(t)
	runClientSuites(t, stk.APIURL, stk.WeChatURL, "client/test/*.test.js")
}

// runClientSuites runs the node test files matching pattern (relative to the repository
// root) against the API and emulator at the given URLs.
func runClientSuites(t *testing.T, apiURL, wechatURL, pattern string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the mini-program client tests: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "client", "node_modules", "typescript")); err != nil {
		t.Fatalf("client/node_modules is missing (run `make tools`, or `npm ci` in client/): %v", err)
	}
	files, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
	if err != nil || len(files) == 0 {
		t.Fatalf("no client test files match %s: %v", pattern, err)
	}
	// The suites write every session id they receive here; the leak check then looks for
	// those ids (and knows their hashes, which appear in device-list paths) in every log.
	seen := filepath.Join(t.TempDir(), "session-ids")
	defer func() {
		b, err := os.ReadFile(seen)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("reading the client's session ids: %v", err)
		}
		for _, id := range strings.Fields(string(b)) {
			secrets.add(id, "session id (node client)", -1)
		}
	}()
	// admin.js runs wxadmin -local against this stack's DynamoDB and writes its audit lines
	// here, for the end-of-run audit and leak checks.
	adminOut := filepath.Join(t.TempDir(), "wxadmin-stderr")
	defer func() {
		b, err := os.ReadFile(adminOut)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("reading wxadmin's output: %v", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "{") {
				_, _ = adminLog.Write([]byte(l + "\n"))
			}
		}
	}()
	wxadminBin := wxadminBinary(t)
	// One node process per file, one after the other: the files share the emulator's global
	// fault state, and older node releases lack --test-concurrency.
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(root, "client"), f)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", rel)
		cmd.Dir = filepath.Join(root, "client")
		cmd.Env = append(os.Environ(),
			"WXSESSION_API_URL="+apiURL,
			"WXSESSION_WECHAT_URL="+wechatURL,
			"WXSESSION_SEEN_IDS="+seen,
			"WXSESSION_WXADMIN="+wxadminBin,
			"WXSESSION_WXADMIN_LOG="+adminOut,
			"WXSESSION_DYNAMODB_URL="+stk.DynamoURL,
			"NO_COLOR=1",
		)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t0 := time.Now()
		err := cmd.Run()
		cancel()
		t.Logf("node --test %s (%v):\n%s", rel, time.Since(t0).Round(time.Millisecond), out.String())
		if err != nil {
			t.Errorf("node --test %s failed: %v", rel, err)
			continue
		}
		pass := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out.Bytes())
		if pass == nil || string(pass[1]) == "0" {
			t.Errorf("node --test %s ran no passing tests", rel)
		}
	}
}

// TestMiniProgramClientClocks runs client/test/clocks.js with short session durations on the
// package's stack: sessions that the server ends by its clocks (expired, idle_timeout) are
// reported and replaced with one login, and a client with a true clock renews before the
// lifetime ends.
func TestMiniProgramClientClocks(t *testing.T) {
	needStack(t)
	for _, c := range []struct {
		clock string
		env   map[string]string
	}{
		{"ttl", map[string]string{config.VarSessionTTL: "3s"}},
		{"idle", map[string]string{config.VarSessionIdleTimeout: "2s"}},
	} {
		t.Run(c.clock, func(t *testing.T) {
			withSettings(t, c.env)
			t.Setenv("WXSESSION_CLOCK", c.clock)
			runClientSuites(t, stk.APIURL, stk.WeChatURL, "client/test/clocks.js")
		})
	}
}

// TestMiniProgramClientPages runs client/test/pages.js with a per-user cap above a page of
// GET /me/sessions, so that the client's sessions() must follow next_cursor.
func TestMiniProgramClientPages(t *testing.T) {
	needStack(t)
	withSettings(t, map[string]string{config.VarSessionMaxPerUser: "30"})
	runClientSuites(t, stk.APIURL, stk.WeChatURL, "client/test/pages.js")
}
