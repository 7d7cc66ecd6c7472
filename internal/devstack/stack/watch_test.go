package stack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/testutil"
)

// copyRepo copies the tracked files of the repository into a temporary
// directory, so a test can edit sources without touching the real tree.
// The pinned dynalite install is linked, not copied.
func copyRepo(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("needs a git checkout: %v", err)
	}
	dst := t.TempDir()
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if rel == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			continue // deleted in the working tree
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nm := filepath.Join(root, "tools", "dynalite", "node_modules")
	if _, err := os.Stat(nm); err == nil {
		if err := os.Symlink(nm, filepath.Join(dst, "tools", "dynalite", "node_modules")); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestWatchRebuildsChangedFunction edits the api function's source while the
// stack runs and expects the new behaviour to be served within seconds,
// with the other functions and the sessions untouched.
func TestWatchRebuildsChangedFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the functions and starts dynalite")
	}
	root := copyRepo(t)
	var logs, out testutil.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{
		Root: root, APIAddr: "127.0.0.1:0", WeChatAddr: "127.0.0.1:0", DynamoAddr: "127.0.0.1:0",
		Watch: true, WatchInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), LogOut: &out, AccessLog: io.Discard,
		Getenv: func(string) string { return "" },
	})
	if err != nil {
		t.Fatalf("Start: %v\nlogs:\n%s", err, logs.String())
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()

	_, body := postJSON(t, s.WeChatURL+"/test/codes", `{}`, nil)
	var code struct{ Code string }
	if err := json.Unmarshal(body, &code); err != nil {
		t.Fatal(err)
	}
	_, body = postJSON(t, s.APIURL+"/login", `{"code":"`+code.Code+`"}`, nil)
	var login struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal(body, &login); err != nil || login.SessionID == "" {
		t.Fatalf("login: %s", body)
	}
	bearer := map[string]string{"Authorization": "Bearer " + login.SessionID}
	if resp, body := get(t, s.APIURL+"/me", bearer); resp.StatusCode != 200 || !strings.Contains(string(body), `"appid"`) {
		t.Fatalf("GET /me before the edit: %d %s", resp.StatusCode, body)
	}
	loginBefore, authBefore := s.builder.current("LoginFunction"), s.builder.current("AuthorizerFunction")

	src := filepath.Join(root, "internal", "api", "api.go")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "`json:\"appid\"`", "`json:\"app_id\"`", 1)
	if edited == string(data) {
		t.Fatal("internal/api/api.go no longer has the appid tag this test edits")
	}
	edit := time.Now()
	if err := os.WriteFile(src, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	for {
		resp, body := get(t, s.APIURL+"/me", bearer)
		if resp.StatusCode == 200 && strings.Contains(string(body), `"app_id"`) {
			t.Logf("edit served after %v", time.Since(edit))
			break
		}
		if time.Since(edit) > 60*time.Second {
			t.Fatalf("the edit was not served within 60 s; last answer %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s.builder.current("LoginFunction") != loginBefore || s.builder.current("AuthorizerFunction") != authBefore {
		t.Error("functions whose binaries did not change were replaced")
	}
}
