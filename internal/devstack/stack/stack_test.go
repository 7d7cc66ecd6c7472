package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/devstack/samtemplate"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/repo"
	"github.com/wxsession/wxsession/internal/testutil"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := repo.Root("")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func postJSON(t *testing.T, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestStackSmoke starts the whole stack (real binaries, dynalite, the
// emulator, the gateway) on free ports and walks the login flow.
func TestStackSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the functions and starts dynalite")
	}
	var logs, out testutil.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	// Addresses without a host: loopback, not every interface.
	s, err := Start(ctx, Options{
		Root: repoRoot(t), APIAddr: ":0", WeChatAddr: ":0", DynamoAddr: ":0",
		DynamoEndpoint: dynalitetest.ExternalEndpoint(),
		Logger:         slog.New(slog.NewJSONHandler(&logs, nil)), LogOut: &out,
		Getenv: func(string) string { return "" },
	})
	if err != nil {
		t.Fatalf("Start: %v\nlogs:\n%s\noutput:\n%s", err, logs.String(), out.String())
	}
	for _, u := range []string{s.APIURL, s.WeChatURL, s.DynamoURL} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") && dynalitetest.ExternalEndpoint() == "" {
			t.Errorf("listener %s is not on 127.0.0.1", u)
		}
	}
	if len(s.Exposed) != 0 || strings.Contains(s.Banner(), "WARNING") || strings.Contains(logs.String(), "WARNING") {
		t.Errorf("loopback stack warns about exposure: %q\n%s", s.Exposed, s.Banner())
	}
	t.Logf("stack started in %v", time.Since(t0))
	// The --env-vars file for sam local names the ports this stack uses
	// (not hard-coded ones) and parses as SAM's format.
	samEnv, err := s.SAMEnv()
	if err != nil {
		t.Fatal(err)
	}
	samFile := filepath.Join(t.TempDir(), "sam-env.json")
	if err := os.WriteFile(samFile, samEnv, 0o644); err != nil {
		t.Fatal(err)
	}
	env, err := LoadEnvVars(samFile)
	if err != nil {
		t.Fatalf("SAMEnv does not parse: %v\n%s", err, samEnv)
	}
	dynPort, wxPort := s.DynamoURL[strings.LastIndex(s.DynamoURL, ":")+1:], s.WeChatURL[strings.LastIndex(s.WeChatURL, ":")+1:]
	if g := env[GlobalEnvKey]; g["DYNAMODB_ENDPOINT"] != "http://host.docker.internal:"+dynPort ||
		g["WECHAT_API_BASE"] != "http://host.docker.internal:"+wxPort || g["WECHAT_APPID"] != s.Emulator.AppID() {
		t.Errorf("SAMEnv = %s (DynamoDB %s, emulator %s)", samEnv, s.DynamoURL, s.WeChatURL)
	}

	// Progress while building: what is built, then each function done.
	if !strings.Contains(logs.String(), "building the functions") {
		t.Errorf("no progress line before the build:\n%s", logs.String())
	}
	for id := range s.Template.Functions {
		if !strings.Contains(logs.String(), `"msg":"function built","function":"`+id+`"`) {
			t.Errorf("no progress line for %s:\n%s", id, logs.String())
		}
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s\noutput:\n%s", logs.String(), out.String())
		}
	}()

	// wx.login() → code, then POST /login.
	resp, body := postJSON(t, s.WeChatURL+"/test/codes", `{}`, nil)
	var code struct {
		Code string `json:"code"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &code) != nil || code.Code == "" {
		t.Fatalf("POST /test/codes: %d %s", resp.StatusCode, body)
	}
	resp, body = postJSON(t, s.APIURL+"/login", `{"code":"`+code.Code+`"}`, nil)
	var login struct {
		SessionID string `json:"session_id"`
		OpenID    string `json:"openid"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &login) != nil || login.SessionID == "" {
		t.Fatalf("POST /login: %d %s", resp.StatusCode, body)
	}
	if c := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(c, "sessionid="+login.SessionID) {
		t.Errorf("Set-Cookie = %q", c)
	}
	if resp.Header.Get("Apigw-Requestid") == "" {
		t.Error("no apigw-requestid header")
	}

	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"bearer", map[string]string{"Authorization": "Bearer " + login.SessionID}},
		{"cookie", map[string]string{"Cookie": "theme=dark; sessionid=" + login.SessionID}},
	} {
		resp, body := get(t, s.APIURL+"/me", tc.hdr)
		var me struct {
			OpenID string `json:"openid"`
			AppID  string `json:"appid"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &me) != nil {
			t.Fatalf("GET /me (%s): %d %s", tc.name, resp.StatusCode, body)
		}
		if me.OpenID != login.OpenID || me.AppID != wechatemu.DefaultAppID {
			t.Errorf("GET /me (%s) = %s, want openid %s and appid %s", tc.name, body, login.OpenID, wechatemu.DefaultAppID)
		}
	}

	resp, body = get(t, s.APIURL+"/me", nil)
	if resp.StatusCode != 403 || string(body) != `{"message":"Forbidden"}` {
		t.Errorf("GET /me without credentials: %d %s, want 403 Forbidden", resp.StatusCode, body)
	}
	resp, body = get(t, s.APIURL+"/me", map[string]string{"Authorization": "Bearer " + strings.Repeat("A", 43)})
	if resp.StatusCode != 403 {
		t.Errorf("GET /me with an unknown session: %d %s, want 403", resp.StatusCode, body)
	}
	resp, body = get(t, s.APIURL+"/no/such/route", nil)
	if resp.StatusCode != 404 || string(body) != `{"message":"Not Found"}` {
		t.Errorf("unknown route: %d %s, want 404 Not Found", resp.StatusCode, body)
	}

	// Warm latency of an authorized request (authorizer + integration, two
	// DynamoDB-backed Lambda invocations).
	hdr := map[string]string{"Authorization": "Bearer " + login.SessionID}
	var lat []time.Duration
	for i := 0; i < 50; i++ {
		t1 := time.Now()
		resp, _ := get(t, s.APIURL+"/me", hdr)
		lat = append(lat, time.Since(t1))
		if resp.StatusCode != 200 {
			t.Fatalf("GET /me #%d: %d", i, resp.StatusCode)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("warm GET /me: p50 %v, p95 %v, max %v", lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1])

	// Builds are reproducible (-trimpath), so a rebuild with no source
	// change replaces nothing.
	t1 := time.Now()
	reports, err := s.Rebuild(ctx)
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	t.Logf("no-change rebuild of %d functions: %v", len(reports), time.Since(t1))
	for _, r := range reports {
		if r.Changed {
			t.Errorf("%s changed without a source change", r.Function)
		}
	}

	access := out.String()
	if strings.Contains(access, login.SessionID) {
		t.Error("the session id appears in the function output or access log")
	}
	if !strings.Contains(access, `"routeKey":"GET /me"`) {
		t.Error("no access log line for GET /me")
	}
}

func TestFunctionEnvPrecedence(t *testing.T) {
	s := &Stack{
		DynamoURL: "http://127.0.0.1:8000", WeChatURL: "http://127.0.0.1:3001",
		Emulator: wechatemu.New(wechatemu.Config{AppID: "wxabcdefgh"}),
		opts: Options{
			Getenv: func(k string) string { return map[string]string{"SESSION_TTL": "1h"}[k] },
			EnvOverrides: map[string]map[string]string{
				GlobalEnvKey: {"LOG_LEVEL": "debug", "X": "global"},
				"Fn":         {"X": "fn"},
				"Other":      {"X": "other"},
			},
		},
	}
	got := s.functionEnv(samtemplate.Function{LogicalID: "Fn", Env: map[string]string{
		"SESSIONS_TABLE": "SessionsTable", "WECHAT_API_BASE": "", "SESSION_TTL": "336h", "LOG_LEVEL": "info",
	}})
	want := map[string]string{
		"SESSIONS_TABLE": "SessionsTable", "WECHAT_API_BASE": "http://127.0.0.1:3001",
		"DYNAMODB_ENDPOINT": "http://127.0.0.1:8000", "WECHAT_APPID": "wxabcdefgh", "WECHAT_SECRET": wechatemu.DefaultSecret,
		"SESSION_TTL": "1h", "LOG_LEVEL": "debug", "X": "fn",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env:\n got %v\nwant %v", got, want)
	}
	// A setting reaches only the functions whose template declares it.
	other := s.functionEnv(samtemplate.Function{LogicalID: "Other", Env: map[string]string{"LOG_LEVEL": "info"}})
	if v, ok := other["SESSION_TTL"]; ok {
		t.Errorf("SESSION_TTL=%q passed to a function that does not declare it", v)
	}
}

func TestParseParameterOverrides(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		err  bool
	}{
		{"", map[string]string{}, false},
		{"A=1,B=2", map[string]string{"A": "1", "B": "2"}, false},
		{"A=1 B=x=y", map[string]string{"A": "1", "B": "x=y"}, false},
		{"WeChatApiBase=http://a,http://b,LogLevel=debug", map[string]string{"WeChatApiBase": "http://a,http://b", "LogLevel": "debug"}, false},
		{"ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue=", map[string]string{"A": "1", "B": ""}, false},
		{"novalue", nil, true},
		{"=x", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseParameterOverrides(tt.in)
		if (err != nil) != tt.err || (!tt.err && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("ParseParameterOverrides(%q) = %v, %v; want %v (err %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestLoadEnvVars(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "env.json")
	os.WriteFile(good, []byte(`{"Parameters":{"A":"1","N":5,"B":true},"LoginFunction":{"X":"y"}}`), 0o644)
	got, err := LoadEnvVars(good)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"Parameters": {"A": "1", "N": "5", "B": "true"}, "LoginFunction": {"X": "y"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"Parameters":{"A":{"nested":1}}}`), 0o644)
	if _, err := LoadEnvVars(bad); err == nil {
		t.Error("nested value accepted")
	}
}

func TestSnapshotSeesSourceChanges(t *testing.T) {
	root := t.TempDir()
	write := func(rel, s string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x")
	write("a/a.go", "package a")
	write("a/a_test.go", "package a")
	write("node_modules/x/y.go", "package y")
	write(".wxlocal/bin/z.go", "package z")
	write("README.md", "x")
	s1 := snapshot(root)
	keys := slices.Sorted(maps.Keys(s1))
	if !reflect.DeepEqual(keys, []string{"a/a.go", "go.mod"}) {
		t.Fatalf("watched files = %v", keys)
	}
	write("a/a.go", "package a // changed")
	write("b/b.go", "package b")
	if got := changedFiles(s1, snapshot(root)); !reflect.DeepEqual(got, []string{"a/a.go", "b/b.go"}) {
		t.Errorf("changed = %v", got)
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		addr, want string
		exposed    bool
		err        bool
	}{
		{":3000", "127.0.0.1:3000", false, false},
		{":0", "127.0.0.1:0", false, false},
		{"127.0.0.1:3000", "127.0.0.1:3000", false, false},
		{"127.0.0.2:3000", "127.0.0.2:3000", false, false},
		{"[::1]:3000", "[::1]:3000", false, false},
		{"localhost:3000", "localhost:3000", false, false},
		{"LocalHost:3000", "LocalHost:3000", false, false},
		{"0.0.0.0:3000", "0.0.0.0:3000", true, false},
		{"[::]:3000", "[::]:3000", true, false},
		{"192.168.1.20:3000", "192.168.1.20:3000", true, false},
		{"devbox.lan:3000", "devbox.lan:3000", true, false},
		{"3000", "", false, true},
	}
	for _, tt := range tests {
		got, exposed, err := Loopback(tt.addr)
		if (err != nil) != tt.err || got != tt.want || exposed != tt.exposed {
			t.Errorf("Loopback(%q) = %q, %v, %v; want %q, %v, error %v", tt.addr, got, exposed, err, tt.want, tt.exposed, tt.err)
		}
	}
	if w := exposedWarning([]string{"API on 0.0.0.0:3000"}); !strings.HasPrefix(w, "WARNING") || !strings.Contains(w, "0.0.0.0:3000") {
		t.Errorf("warning %q", w)
	}
}

func TestExternalEndpoint(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://127.0.0.1:5000", "http://127.0.0.1:5000"},
		{"http://127.0.0.1:5000/", "http://127.0.0.1:5000"},
		{"https://dynamodb.example:443", "https://dynamodb.example:443"},
		{"127.0.0.1:5000", ""},
		{"ftp://h:1", ""},
		{"http://h:1/path", ""},
		{"http://u:p@h:1", ""},
		{"http://h:1?x=1", ""},
		{"http://", ""},
	} {
		got, err := ExternalEndpoint(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ExternalEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestStartRefusesBadSettings: an invalid setting stops Start with the
// message before anything is built; the local stack accepts durations down
// to 1 s (docs/design.md §5).
func TestStartRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		over    map[string]map[string]string
		wantErr string
	}{
		{name: "not a duration", env: map[string]string{"SESSION_TTL": "abc"}, wantErr: `Function: configuration: invalid SESSION_TTL="abc"`}, // every function reads the session model,
		{name: "below the local minimum", env: map[string]string{"SESSION_TTL": "500ms"}, wantErr: `invalid SESSION_TTL="500ms" (want a Go duration ≥ 1s)`},
		{name: "overflow choice", env: map[string]string{"SESSION_OVERFLOW": "bogus"}, wantErr: `invalid SESSION_OVERFLOW="bogus" (want one of evict_oldest, reject_new)`},
		{name: "exclusive choice", env: map[string]string{"SESSION_EXCLUSIVE": "x"}, wantErr: `invalid SESSION_EXCLUSIVE="x" (want one of none, platform, all)`},
		{name: "negative cap", env: map[string]string{"SESSION_MAX_PER_USER": "-1"}, wantErr: `invalid SESSION_MAX_PER_USER="-1"`},
		{name: "idle below the minimum", env: map[string]string{"SESSION_IDLE_TIMEOUT": "500ms"}, wantErr: `invalid SESSION_IDLE_TIMEOUT="500ms" (want 0 (off) or a Go duration ≥ 1s)`},
		{name: "idle not a duration", env: map[string]string{"SESSION_IDLE_TIMEOUT": "abc"}, wantErr: `invalid SESSION_IDLE_TIMEOUT="abc"`},
		{name: "env-vars file", over: map[string]map[string]string{"ApiFunction": {"DYNAMODB_ENDPOINT": "nope"}}, wantErr: `ApiFunction: configuration: invalid DYNAMODB_ENDPOINT="nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s, err := Start(context.Background(), Options{
				Root: repoRoot(t), APIAddr: "127.0.0.1:0", WeChatAddr: "127.0.0.1:0", DynamoAddr: "127.0.0.1:0",
				Logger: slog.New(slog.NewJSONHandler(&logs, nil)), EnvOverrides: tt.over,
				Getenv: func(k string) string { return tt.env[k] },
			})
			if err == nil {
				_ = s.Close()
				t.Fatal("Start accepted the setting")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Start error = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(logs.String(), "dynalite") || strings.Contains(logs.String(), "build") {
				t.Fatalf("Start began the stack before refusing the setting:\n%s", logs.String())
			}
		})
	}
	// 3s is accepted by the check (the smoke test starts a whole stack).
	env := map[string]string{"SESSION_TTL": "3s", "DYNAMODB_ENDPOINT": "http://127.0.0.1:8000"}
	if err := config.Check(func(k string) string { return env[k] }); err != nil {
		t.Fatalf("SESSION_TTL=3s refused locally: %v", err)
	}
}
