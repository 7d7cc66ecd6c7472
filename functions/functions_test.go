// Package functions_test builds the three real Lambda bootstraps and runs
// them through the local Lambda Runtime API (internal/devstack/lambdaruntime), against
// dynalite and the WeChat emulator, the way the local stack and AWS run them.
package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/repo"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the three functions once per test binary, as SAM does
// (make lambda), for the host's GOOS/GOARCH.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "wxsession-functions-")
		if buildErr != nil {
			return
		}
		root, err := repo.Root("")
		if err != nil {
			buildErr = err
			return
		}
		for _, fn := range []string{"login", "authorizer", "api"} {
			if buildErr = repo.BuildLambda(context.Background(), repo.Lambda{
				Root: root, Package: "./functions/" + fn, Out: filepath.Join(binDir, fn),
				GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Go: "go", // go test puts $GOROOT/bin first in PATH
			}); buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func fixture(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := testutil.Event(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func invoke[Resp any](t *testing.T, p *lambdaruntime.Pool, event any) Resp {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke %s: %v", p.Config().Name, err)
	}
	if res.FunctionError != "" {
		t.Fatalf("invoke %s: function error %s: %s", p.Config().Name, res.FunctionError, res.Payload)
	}
	var out Resp
	if err := json.Unmarshal(res.Payload, &out); err != nil {
		t.Fatalf("invoke %s: response %s: %v", p.Config().Name, res.Payload, err)
	}
	return out
}

func TestFunctionsEndToEnd(t *testing.T) {
	dir := binaries(t)
	srv := dynalitetest.NewTestServer(t)
	db := dynalitetest.Client(t, srv)
	tables := dynalitetest.Tables(t, db, "SessionsTable", "UsersTable", "ProfilesTable", "PhonesTable")
	sessions, users, profiles := tables["SessionsTable"], tables["UsersTable"], tables["ProfilesTable"]
	emu := wechatemu.New(wechatemu.Config{Logger: slog.New(slog.DiscardHandler)})
	wx := httptest.NewServer(emu)
	t.Cleanup(wx.Close)

	common := map[string]string{
		config.VarSessionsTable:    sessions,
		config.VarUsersTable:       users,
		config.VarProfilesTable:    profiles,
		config.VarPhonesTable:      tables["PhonesTable"],
		config.VarDynamoDBEndpoint: srv.Endpoint,
		config.VarLogLevel:         "debug",
	}
	logs := &testutil.Buffer{}
	pool := func(name string, extra map[string]string) *lambdaruntime.Pool {
		env := map[string]string{}
		for k, v := range common {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		p := lambdaruntime.NewPool(lambdaruntime.FunctionConfig{
			Name: name, Binary: filepath.Join(dir, strings.ToLower(strings.TrimSuffix(name, "Function"))),
			Env: env, Timeout: 10 * time.Second, MemoryMB: 128,
		}, nil, logs)
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	loginFn := pool("LoginFunction", map[string]string{
		config.VarAppID: wechatemu.DefaultAppID, config.VarSecret: wechatemu.DefaultSecret,
		config.VarAPIBase: wx.URL, config.VarSessionTTL: "1h",
	})
	authFn := pool("AuthorizerFunction", nil)
	apiFn := pool("ApiFunction", nil)

	const openid = "oFunctionUser00000000000001"
	code, err := emu.IssueCode(openid, "uFunctionUnion")
	if err != nil {
		t.Fatal(err)
	}

	// POST /login
	var loginReq events.APIGatewayV2HTTPRequest
	fixture(t, "apigw-v2-request-no-authorizer.json", &loginReq)
	loginReq.RouteKey, loginReq.RawPath = "POST /login", "/login"
	loginReq.RequestContext.HTTP.Method, loginReq.RequestContext.HTTP.Path = "POST", "/login"
	loginReq.Body = `{"code":"` + code + `"}`
	loginResp := invoke[events.APIGatewayV2HTTPResponse](t, loginFn, loginReq)
	if loginResp.StatusCode != 200 {
		t.Fatalf("login: %d %s", loginResp.StatusCode, loginResp.Body)
	}
	var body struct {
		SessionID string `json:"session_id"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(loginResp.Body), &body); err != nil || !session.ValidID(body.SessionID) {
		t.Fatalf("login body %s: %v", loginResp.Body, err)
	}
	if body.ExpiresIn > 3600 || body.ExpiresIn < 3590 || len(loginResp.Cookies) != 1 || !strings.HasPrefix(loginResp.Cookies[0], "sessionid="+body.SessionID+";") {
		t.Errorf("SESSION_TTL=1h not applied or cookie missing: %s %v", loginResp.Body, loginResp.Cookies)
	}

	// The same code again: the same session (an idempotent exchange).
	again := invoke[events.APIGatewayV2HTTPResponse](t, loginFn, loginReq)
	if again.StatusCode != 200 || !strings.Contains(again.Body, body.SessionID) {
		t.Errorf("repeated code: %d %s", again.StatusCode, again.Body)
	}

	// Authorizer: allow with the bearer, deny without.
	var authReq events.APIGatewayV2CustomAuthorizerV2Request
	fixture(t, "apigw-v2-custom-authorizer-v2-request.json", &authReq)
	authReq.RouteKey, authReq.RawPath = "GET /me", "/me"
	authReq.IdentitySource = nil
	authReq.Headers = map[string]string{"authorization": "Bearer " + body.SessionID}
	authReq.Cookies = nil
	allow := invoke[events.APIGatewayV2CustomAuthorizerSimpleResponse](t, authFn, authReq)
	if !allow.IsAuthorized || allow.Context["openid"] != openid || allow.Context["sid"] != session.Hash(body.SessionID) {
		t.Fatalf("authorizer: %+v", allow)
	}
	authReq.Headers = map[string]string{}
	other, _ := session.NewID()
	authReq.Cookies = []string{"sessionid=" + other}
	if deny := invoke[events.APIGatewayV2CustomAuthorizerSimpleResponse](t, authFn, authReq); deny.IsAuthorized {
		t.Fatalf("authorizer allowed a wrong id: %+v", deny)
	}

	// GET /me with the authorizer's context.
	var meReq events.APIGatewayV2HTTPRequest
	fixture(t, "apigw-v2-request-lambda-authorizer.json", &meReq)
	meReq.RouteKey, meReq.RawPath = "GET /me", "/me"
	meReq.RequestContext.HTTP.Method, meReq.RequestContext.HTTP.Path = "GET", "/me"
	meReq.Body = ""
	meReq.RequestContext.Authorizer.Lambda = allow.Context
	me := invoke[events.APIGatewayV2HTTPResponse](t, apiFn, meReq)
	if me.StatusCode != 200 || !strings.Contains(me.Body, `"openid":"`+openid+`"`) || !strings.Contains(me.Body, `"unionid":"uFunctionUnion"`) {
		t.Fatalf("GET /me: %d %s", me.StatusCode, me.Body)
	}

	// POST /logout, then the authorizer denies the same id.
	meReq.RouteKey, meReq.RawPath = "POST /logout", "/logout"
	meReq.RequestContext.HTTP.Method = "POST"
	if out := invoke[events.APIGatewayV2HTTPResponse](t, apiFn, meReq); out.StatusCode != 204 {
		t.Fatalf("logout: %d %s", out.StatusCode, out.Body)
	}
	authReq.Cookies = []string{"sessionid=" + body.SessionID}
	if deny := invoke[events.APIGatewayV2CustomAuthorizerSimpleResponse](t, authFn, authReq); deny.IsAuthorized {
		t.Fatal("authorizer allowed a logged-out session")
	}

	// The functions' logs: JSON with request_id, never the id or secrets.
	out := logs.String()
	for _, secret := range []string{body.SessionID, code, wechatemu.DefaultSecret, emu.SessionKey(openid)} {
		if strings.Contains(out, secret) {
			t.Errorf("function logs contain a secret (%.6s…):\n%s", secret, out)
		}
	}
	found := false
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // START/END/REPORT lines
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if m["msg"] == "login" && m["outcome"] == "ok" {
			found = true
			if id, _ := m["request_id"].(string); id == "" {
				t.Errorf("login line without request_id: %s", line)
			}
		}
	}
	if !found {
		t.Errorf("no login log line:\n%s", out)
	}
}

// TestMissingConfiguration runs each binary as Lambda would, with required
// variables missing: the cold start must fail at once, with one log line
// naming every missing variable.
func TestMissingConfiguration(t *testing.T) {
	dir := binaries(t)
	tests := []struct {
		fn      string
		env     []string
		missing []string
	}{
		{fn: "login", missing: []string{config.VarAppID, config.VarSessionsTable, config.VarUsersTable, config.VarSecret}},
		{fn: "login", env: []string{"WECHAT_APPID=wx1", "WECHAT_SECRET=s3cr3t-value", "USERS_TABLE=u"}, missing: []string{config.VarSessionsTable}},
		{fn: "authorizer", missing: []string{config.VarSessionsTable}},
		{fn: "api", env: []string{"SESSIONS_TABLE=s"}, missing: []string{config.VarProfilesTable}},
	}
	for _, tt := range tests {
		t.Run(tt.fn+" "+strings.Join(tt.missing, ","), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(dir, tt.fn))
			// The runtime API is never reached: the function must give up
			// before it asks for an event.
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9", "AWS_REGION=us-east-1"}, tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v (stdout %q, stderr %q)", err, stdout.String(), stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()+stderr.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one log line, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
				t.Fatalf("line %q is not JSON: %v", lines[0], err)
			}
			msg, _ := m["error"].(string)
			if m["level"] != "ERROR" || m["msg"] != "cold start failed" || !strings.Contains(msg, "missing") {
				t.Fatalf("line = %v", m)
			}
			for _, v := range tt.missing {
				if !strings.Contains(msg, v) {
					t.Errorf("line does not name %s: %s", v, msg)
				}
			}
			if strings.Contains(lines[0], "s3cr3t-value") {
				t.Errorf("the secret is in the log line")
			}
		})
	}

	// Through the runtime API: Lambda reports an init failure.
	p := lambdaruntime.NewPool(lambdaruntime.FunctionConfig{Name: "AuthorizerFunction", Binary: filepath.Join(dir, "authorizer")}, nil, nil)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.Invoke(ctx, []byte(`{}`)); !errors.Is(err, lambdaruntime.ErrInitFailed) {
		t.Fatalf("Invoke = %v, want ErrInitFailed", err)
	}
}
