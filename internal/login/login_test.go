package login_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/logging"
	"github.com/wxsession/wxsession/internal/login"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/session"
)

var server *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &server) }

// env is one test's world: a real emulator behind httptest, the real WeChat
// client, the real store on its own dynalite tables, and every log line.
type env struct {
	t        *testing.T
	emu      *wechatemu.Emulator
	wx       *wechat.Client
	db       *dynamodb.Client
	sessions string
	users    string
	store    *dynamostore.Store
	logs     *testutil.Buffer
	logger   *slog.Logger
	h        *login.Handler
	secrets  []string // must never appear in logs: ids, session keys, codes, the app secret
}

type envOption func(*envConfig)

type envConfig struct {
	secret   string
	baseURLs []string
	db       *dynamodb.Client
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, logs: &testutil.Buffer{}}
	e.logger = logging.New(e.logs, "debug")
	e.emu = wechatemu.New(wechatemu.Config{Logger: e.logger})
	srv := httptest.NewServer(e.emu)
	t.Cleanup(srv.Close)

	cfg := envConfig{secret: wechatemu.DefaultSecret, baseURLs: []string{srv.URL}}
	for _, o := range opts {
		o(&cfg)
	}
	e.secrets = append(e.secrets, wechatemu.DefaultSecret, cfg.secret)

	var err error
	e.wx, err = wechat.New(wechat.Config{
		AppID:          wechatemu.DefaultAppID,
		Secret:         cfg.secret,
		BaseURLs:       cfg.baseURLs,
		AttemptTimeout: 300 * time.Millisecond,
		MaxAttempts:    2,
		Logger:         e.logger,
		Metrics:        metrics.New(e.logs, ""),
	})
	if err != nil {
		t.Fatal(err)
	}

	e.db = dynalitetest.Client(t, server)
	tables := dynalitetest.Tables(t, e.db, "SessionsTable", "UsersTable")
	e.sessions, e.users = tables["SessionsTable"], tables["UsersTable"]
	storeDB := e.db
	if cfg.db != nil {
		storeDB = cfg.db
	}
	e.store, err = dynamostore.New(storeDB, dynamostore.Config{
		SessionsTable: e.sessions,
		UsersTable:    e.users,
		OpTimeout:     2 * time.Second,
		Logger:        e.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.h = &login.Handler{WeChat: e.wx, Store: e.store, AppID: wechatemu.DefaultAppID, CodeKey: session.CodeKey(cfg.secret),
		Policy: dynamostore.Policy{TTL: 336 * time.Hour, MaxPerUser: 10}, Logger: e.logger,
		Audit: audit.New(e.logs, audit.ActorUser), Metrics: metrics.New(e.logs, "")}
	t.Cleanup(e.checkLeaks)
	return e
}

// checkLeaks fails the test if any secret reached a log line.
func (e *env) checkLeaks() {
	logs := e.logs.String()
	for _, s := range e.secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("secret %.6s… appears in the logs:\n%s", s, logs)
		}
	}
}

// code issues a wx.login() code for openid.
func (e *env) code(openid, unionid string) string {
	e.t.Helper()
	c, err := e.emu.IssueCode(openid, unionid)
	if err != nil {
		e.t.Fatal(err)
	}
	e.secrets = append(e.secrets, c)
	return c
}

// request builds a POST /login event from the AWS sample event.
func request(t *testing.T, method, body string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := testutil.Event("apigw-v2-request-no-authorizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	req.RouteKey = "POST /login"
	req.RawPath = "/login"
	req.RequestContext.RouteKey = req.RouteKey
	req.RequestContext.HTTP.Method = method
	req.RequestContext.HTTP.Path = "/login"
	req.Headers["content-type"] = "application/json"
	req.Body = body
	return req
}

func codeBody(code string) string { return `{"code":"` + code + `"}` }

func (e *env) login(req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	resp, err := e.h.Handle(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Handle returned a Go error: %v", err)
	}
	return resp
}

// scan returns every item of a table.
func (e *env) scan(table string) []map[string]types.AttributeValue {
	e.t.Helper()
	out, err := e.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Items
}

// assertNothingWritten checks that no session and no user was written (a
// failed exchange may leave its code's failure marker, which holds no
// session: docs/design.md §3).
func (e *env) assertNothingWritten() {
	e.t.Helper()
	for _, it := range e.scan(e.sessions) {
		if _, ok := it["user"]; ok {
			e.t.Errorf("a session was written: %v", it["sid"])
		}
	}
	if n := len(e.scan(e.users)); n != 0 {
		e.t.Errorf("users table has %d items, want 0", n)
	}
}

func decodeError(t *testing.T, resp events.APIGatewayV2HTTPResponse) httpapi.ErrorBody {
	t.Helper()
	var b httpapi.ErrorBody
	if err := json.Unmarshal([]byte(resp.Body), &b); err != nil {
		t.Fatalf("error body %q: %v", resp.Body, err)
	}
	if b.Error == "" || b.Message == "" {
		t.Fatalf("error body %q lacks error or message", resp.Body)
	}
	return b
}

// logLines returns the "login" lines.
func (e *env) loginLines() []map[string]any {
	e.t.Helper()
	return e.lines(func(m map[string]any) bool { return m["msg"] == "login" })
}

// auditLines returns the audit lines.
func (e *env) auditLines() []map[string]any {
	e.t.Helper()
	return e.lines(func(m map[string]any) bool { return m["msg"] == audit.Msg })
}

// metricLines returns the EMF lines holding metric name, each checked
// against the EMF specification.
func (e *env) metricLines(name string) []map[string]any {
	e.t.Helper()
	return e.lines(func(m map[string]any) bool {
		if _, ok := m["_aws"]; !ok {
			return false
		}
		b, _ := json.Marshal(m)
		if err := metrics.Validate(b); err != nil {
			e.t.Errorf("invalid EMF line: %v", err)
		}
		_, ok := m[name]
		return ok
	})
}

// lines returns the JSON log lines keep accepts.
func (e *env) lines(keep func(map[string]any) bool) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			e.t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

func TestLoginSuccess(t *testing.T) {
	e := newEnv(t)
	const openid, unionid = "oTestUserSuccess000000000001", "uTestUnion0001"
	code := e.code(openid, unionid)
	before := time.Now()
	resp := e.login(request(t, http.MethodPost, codeBody(code)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, resp.Body)
	}
	sk := e.emu.SessionKey(openid)
	if sk == "" {
		t.Fatal("emulator has no session_key after the exchange")
	}
	e.secrets = append(e.secrets, sk)

	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"session_id", "token_type", "expires_at", "expires_in", "openid"}
	if len(body) != len(wantKeys) {
		t.Errorf("body has keys %v, want exactly %v", body, wantKeys)
	}
	id, _ := body["session_id"].(string)
	e.secrets = append(e.secrets, id)
	if !session.ValidID(id) {
		t.Fatalf("session_id %q is not a valid id", id)
	}
	if body["token_type"] != "Bearer" || body["openid"] != openid {
		t.Errorf("body = %v", body)
	}
	if strings.Contains(resp.Body, sk) || strings.Contains(resp.Body, "session_key") {
		t.Errorf("session_key leaked into the response: %s", resp.Body)
	}
	exp, err := time.Parse(time.RFC3339, body["expires_at"].(string))
	if err != nil || !strings.HasSuffix(body["expires_at"].(string), "Z") {
		t.Fatalf("expires_at %v: %v", body["expires_at"], err)
	}
	if d := exp.Sub(before); d < 336*time.Hour-5*time.Second || d > 336*time.Hour+5*time.Second {
		t.Errorf("expires_at %v is %v after the request, want ~336h", exp, d)
	}
	expiresIn, ok := body["expires_in"].(float64)
	if !ok || expiresIn != float64(int64(expiresIn)) || expiresIn < 336*3600-5 || expiresIn > 336*3600 {
		t.Errorf("expires_in = %v, want an integer ~1209600", body["expires_in"])
	}
	if resp.Headers["Content-Type"] != "application/json; charset=utf-8" || resp.Headers["Cache-Control"] != "no-store" {
		t.Errorf("headers = %v", resp.Headers)
	}

	if len(resp.Cookies) != 1 {
		t.Fatalf("cookies = %v, want one", resp.Cookies)
	}
	c, err := http.ParseSetCookie(resp.Cookies[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "sessionid" || c.Value != id || c.Path != "/" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != int(expiresIn) {
		t.Errorf("cookie %q parsed as %+v", resp.Cookies[0], c)
	}

	// Stored under the hash, never the id; the session_key only in users.
	items := e.scan(e.sessions)
	if len(items) != 1 {
		t.Fatalf("sessions table has %d items, want 1", len(items))
	}
	if sid := items[0]["sid"].(*types.AttributeValueMemberS).Value; sid != session.Hash(id) {
		t.Errorf("item sid = %q, want Hash(id)", sid)
	}
	for k, v := range items[0] {
		if s, ok := v.(*types.AttributeValueMemberS); ok && (s.Value == id || s.Value == sk) {
			t.Errorf("sessions item attribute %q holds the raw id or the session_key", k)
		}
	}
	al := e.auditLines()
	if len(al) != 1 || al[0]["event"] != string(audit.LoginSucceeded) || al[0]["session"] != session.Hash(id) ||
		al[0]["user"] != audit.UserPseudonym(wechatemu.DefaultAppID, openid) || al[0]["error"] != "" {
		t.Errorf("audit lines %v, want one login_succeeded with the session hash and user pseudonym", al)
	}
	if strings.Contains(e.logs.String(), openid) {
		t.Error("the full openid appears in the logs")
	}
	if ls := e.metricLines(metrics.Logins); len(ls) != 1 || ls[0]["Outcome"] != "ok" || ls[0][metrics.Login5xx] != 0.0 {
		t.Errorf("Logins lines %v, want one ok", ls)
	}
	if ls := e.metricLines(metrics.WeChatCalls); len(ls) != 1 || ls[0]["Errcode"] != "0" || ls[0]["Api"] != "jscode2session" {
		t.Errorf("WeChatCalls lines %v, want one errcode 0", ls)
	}
	users := e.scan(e.users)
	if len(users) != 1 {
		t.Fatalf("users table has %d items, want 1", len(users))
	}
	if got := users[0]["session_key"].(*types.AttributeValueMemberS).Value; got != sk {
		t.Errorf("users.session_key is not the emulator's current key")
	}
	got, err := e.store.Get(context.Background(), session.Hash(id))
	if err != nil || got.OpenID != openid || got.UnionID != unionid || got.AppID != wechatemu.DefaultAppID {
		t.Errorf("stored session %+v, %v", got, err)
	}

	// A second login gives a new id (no fixation) and rotates the key.
	code2 := e.code(openid, "")
	resp2 := e.login(request(t, http.MethodPost, codeBody(code2)))
	if resp2.StatusCode != http.StatusOK {
		t.Fatalf("second login: %d %s", resp2.StatusCode, resp2.Body)
	}
	var body2 login.Response
	_ = json.Unmarshal([]byte(resp2.Body), &body2)
	e.secrets = append(e.secrets, body2.SessionID, e.emu.SessionKey(openid))
	if body2.SessionID == id {
		t.Error("second login reused the session id")
	}
	if n := len(e.scan(e.sessions)); n != 2 {
		t.Errorf("sessions table has %d items after two logins, want 2", n)
	}

	lines := e.loginLines()
	if len(lines) != 2 {
		t.Fatalf("got %d login log lines, want 2", len(lines))
	}
	l := lines[0]
	if l["level"] != "INFO" || l["outcome"] != "ok" || l["openid"] != session.MaskOpenID(openid) || l["duration_ms"] == nil {
		t.Errorf("log line = %v", l)
	}
}

func TestLoginBase64Body(t *testing.T) {
	e := newEnv(t)
	req := request(t, http.MethodPost, base64.StdEncoding.EncodeToString([]byte(codeBody(e.code("", "")))))
	req.IsBase64Encoded = true
	if resp := e.login(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, resp.Body)
	} else {
		var b login.Response
		_ = json.Unmarshal([]byte(resp.Body), &b)
		e.secrets = append(e.secrets, b.SessionID)
	}
}

func intp(i int) *int { return &i }

func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

func TestLoginWeChatErrors(t *testing.T) {
	notJSON := "<html>bad gateway</html>"
	tests := []struct {
		name       string
		opts       []envOption
		fault      *wechatemu.Fault
		code       func(e *env) string
		wantStatus int
		wantCode   string
		retryAfter string
		wantLevel  string
		alert      bool
	}{
		{name: "unknown code", code: func(*env) string { return "0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p" }, wantStatus: 401, wantCode: "invalid_code", wantLevel: "INFO"},
		{name: "errcode 40029", fault: &wechatemu.Fault{Errcode: intp(40029), Count: 5}, wantStatus: 401, wantCode: "invalid_code", wantLevel: "INFO"},
		{name: "code used", code: func(e *env) string {
			c := e.code("oUsedTwice", "")
			if r := e.login(request(e.t, http.MethodPost, codeBody(c))); r.StatusCode != 200 {
				e.t.Fatalf("first use: %d", r.StatusCode)
			}
			e.secrets = append(e.secrets, e.emu.SessionKey("oUsedTwice"))
			// Wipe the first login's writes so "nothing written" checks the second.
			e.wipe()
			return c
		}, wantStatus: 401, wantCode: "code_used", wantLevel: "INFO"},
		{name: "errcode 40163", fault: &wechatemu.Fault{Errcode: intp(40163), Count: 5}, wantStatus: 401, wantCode: "code_used", wantLevel: "INFO"},
		{name: "rate limited", fault: &wechatemu.Fault{Errcode: intp(45011), Count: 5}, wantStatus: 429, wantCode: "rate_limited", retryAfter: "60", wantLevel: "WARN"},
		{name: "user blocked", fault: &wechatemu.Fault{Errcode: intp(40226), Count: 5}, wantStatus: 403, wantCode: "user_blocked", wantLevel: "INFO"},
		{name: "system busy -1", fault: &wechatemu.Fault{Errcode: intp(-1), Count: 5}, wantStatus: 503, wantCode: "wechat_unavailable", retryAfter: "2", wantLevel: "WARN"},
		{name: "http 500", fault: &wechatemu.Fault{Status: 500, Count: 5}, wantStatus: 503, wantCode: "wechat_unavailable", retryAfter: "2", wantLevel: "WARN"},
		{name: "http 502", fault: &wechatemu.Fault{Status: 502, Count: 5}, wantStatus: 503, wantCode: "wechat_unavailable", retryAfter: "2", wantLevel: "WARN"},
		{name: "body not JSON", fault: &wechatemu.Fault{Body: &notJSON, Count: 5}, wantStatus: 503, wantCode: "wechat_unavailable", retryAfter: "2", wantLevel: "WARN"},
		{name: "timeout", fault: &wechatemu.Fault{DelayMS: 2000, Count: 5}, wantStatus: 503, wantCode: "wechat_unavailable", retryAfter: "2", wantLevel: "WARN"},
		{name: "network error", opts: []envOption{func(c *envConfig) { c.baseURLs = []string{closedURL(t)} }}, wantStatus: 503, wantCode: "wechat_unavailable", retryAfter: "2", wantLevel: "WARN"},
		{name: "wrong secret", opts: []envOption{func(c *envConfig) { c.secret = "wrong-secret-wrong-secret-000000" }}, wantStatus: 500, wantCode: "server_misconfigured", wantLevel: "ERROR", alert: true},
		{name: "errcode 40013 bad appid", fault: &wechatemu.Fault{Errcode: intp(40013), Count: 5}, wantStatus: 500, wantCode: "server_misconfigured", wantLevel: "ERROR", alert: true},
		{name: "errcode 41002 appid missing", fault: &wechatemu.Fault{Errcode: intp(41002), Count: 5}, wantStatus: 500, wantCode: "server_misconfigured", wantLevel: "ERROR", alert: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			var code string
			if tt.code != nil {
				code = tt.code(e)
			} else {
				code = e.code("oErrorCase", "")
			}
			if tt.fault != nil {
				if err := e.emu.SetFaults(*tt.fault); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			resp := e.login(request(t, http.MethodPost, codeBody(code)))
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("login took %v", d)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, resp.Body)
			}
			if b := decodeError(t, resp); b.Error != tt.wantCode {
				t.Errorf("error %q, want %q", b.Error, tt.wantCode)
			}
			if got := resp.Headers["Retry-After"]; got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if len(resp.Cookies) != 0 {
				t.Errorf("cookies set on failure: %v", resp.Cookies)
			}
			e.assertNothingWritten()
			lines := e.loginLines()
			if len(lines) == 0 {
				t.Fatal("no login log line")
			}
			l := lines[len(lines)-1]
			if l["level"] != tt.wantLevel || l["outcome"] != tt.wantCode {
				t.Errorf("log line = %v, want level %s outcome %s", l, tt.wantLevel, tt.wantCode)
			}
			if alert, _ := l["alert"].(bool); alert != tt.alert {
				t.Errorf("alert = %v, want %v", l["alert"], tt.alert)
			}
			checkFailureRecorded(t, e, tt.wantCode, tt.wantStatus, tt.alert)
		})
	}
}

// checkFailureRecorded checks the audit line and the metrics of a failed
// login: login_failed with the error code, a Logins line with that outcome
// (Login5xx set for a 5xx), a Misconfigured line for an alert, and a
// WeChatCalls line per attempt that reached the emulator or failed.
func checkFailureRecorded(t *testing.T, e *env, code string, status int, alert bool) {
	t.Helper()
	al := e.auditLines()
	if len(al) == 0 {
		t.Fatal("no audit line")
	}
	last := al[len(al)-1]
	if last["event"] != string(audit.LoginFailed) || last["error"] != code || last["app"] != wechatemu.DefaultAppID ||
		last["source_ip"] == "" || last["session"] != "" {
		t.Errorf("audit line %v, want login_failed %s with app and source_ip", last, code)
	}
	ls := e.metricLines(metrics.Logins)
	if len(ls) == 0 {
		t.Fatal("no Logins metric line")
	}
	m := ls[len(ls)-1]
	want5xx := 0.0
	if status >= 500 {
		want5xx = 1
	}
	if m["Outcome"] != code || m[metrics.Login5xx] != want5xx {
		t.Errorf("Logins line %v, want Outcome %s and Login5xx %v", m, code, want5xx)
	}
	if got := len(e.metricLines(metrics.Misconfigured)); (got > 0) != alert {
		t.Errorf("%d Misconfigured lines, alert %v", got, alert)
	}
	if code != "invalid_request" && len(e.metricLines(metrics.WeChatCalls)) == 0 {
		t.Error("no WeChatCalls metric line")
	}
}

// wipe deletes every item of both tables.
func (e *env) wipe() {
	e.t.Helper()
	for table, key := range map[string]string{e.sessions: "sid", e.users: "user"} {
		for _, it := range e.scan(table) {
			if _, err := e.db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
				TableName: aws.String(table), Key: map[string]types.AttributeValue{key: it[key]},
			}); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

func TestLoginBadRequests(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "GET", method: http.MethodGet, body: codeBody("abc"), wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "PUT", method: http.MethodPut, body: codeBody("abc"), wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "too large", method: http.MethodPost, body: `{"code":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, wantStatus: 413, wantCode: "payload_too_large"},
		{name: "empty body", method: http.MethodPost, body: "", wantStatus: 400, wantCode: "invalid_request", wantMsg: "empty"},
		{name: "not JSON", method: http.MethodPost, body: "code=abc", wantStatus: 400, wantCode: "invalid_request", wantMsg: "JSON object"},
		{name: "array", method: http.MethodPost, body: `["abc"]`, wantStatus: 400, wantCode: "invalid_request", wantMsg: "JSON object"},
		{name: "string", method: http.MethodPost, body: `"abc"`, wantStatus: 400, wantCode: "invalid_request", wantMsg: "JSON object"},
		{name: "code missing", method: http.MethodPost, body: `{}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `"code" is required`},
		{name: "code null", method: http.MethodPost, body: `{"code":null}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `"code" is required`},
		{name: "code number", method: http.MethodPost, body: `{"code":123}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `"code" must be a string`},
		{name: "code object", method: http.MethodPost, body: `{"code":{}}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `"code" must be a string`},
		{name: "code empty", method: http.MethodPost, body: `{"code":""}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: "1 to 128"},
		{name: "code 129 chars", method: http.MethodPost, body: codeBody(strings.Repeat("a", 129)), wantStatus: 400, wantCode: "invalid_request", wantMsg: "1 to 128"},
		{name: "code with space", method: http.MethodPost, body: codeBody("ab cd"), wantStatus: 400, wantCode: "invalid_request", wantMsg: "may only contain"},
		{name: "code with slash", method: http.MethodPost, body: codeBody("ab/cd"), wantStatus: 400, wantCode: "invalid_request", wantMsg: "may only contain"},
		{name: "code non-ASCII", method: http.MethodPost, body: codeBody("验证码"), wantStatus: 400, wantCode: "invalid_request", wantMsg: "may only contain"},
		{name: "unknown field", method: http.MethodPost, body: `{"code":"abc","openid":"x"}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `unknown field "openid"`},
		{name: "unknown appid", method: http.MethodPost, body: `{"code":"abc","appid":"wxNotServedHere"}`, wantStatus: 400, wantCode: "unknown_app", wantMsg: "does not serve"},
		{name: "appid not a string", method: http.MethodPost, body: `{"code":"abc","appid":1}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `"appid"`},
		{name: "appid with a slash", method: http.MethodPost, body: `{"code":"abc","appid":"wx/1"}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `"appid" must be`},
		{name: "appid empty", method: http.MethodPost, body: `{"code":"abc","appid":""}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: `"appid" must be`},
		{name: "trailing data", method: http.MethodPost, body: `{"code":"abc"} {}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: "after the JSON object"},
		{name: "duplicate code", method: http.MethodPost, body: `{"code":"abc","code":"def"}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: "duplicate"},
		{name: "deeply nested", method: http.MethodPost, body: `{"code":` + strings.Repeat("[", 1000) + `}`, wantStatus: 400, wantCode: "invalid_request", wantMsg: "nested"},
		{name: "invalid UTF-8", method: http.MethodPost, body: "{\"code\":\"\xff\"}", wantStatus: 400, wantCode: "invalid_request", wantMsg: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.emu.Stats().Requests
			resp := e.login(request(t, tt.method, tt.body))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, resp.Body)
			}
			b := decodeError(t, resp)
			if b.Error != tt.wantCode || !strings.Contains(b.Message, tt.wantMsg) {
				t.Errorf("error %+v, want %s containing %q", b, tt.wantCode, tt.wantMsg)
			}
			if tt.wantStatus == 405 && resp.Headers["Allow"] != "POST" {
				t.Errorf("Allow = %q", resp.Headers["Allow"])
			}
			if after := e.emu.Stats().Requests; after != before {
				t.Errorf("WeChat was called for a bad request")
			}
		})
	}
	e.assertNothingWritten()
}

func TestLoginStoreFailures(t *testing.T) {
	t.Run("store unreachable", func(t *testing.T) {
		dead, err := dynalite.LocalClient(context.Background(), closedURL(t))
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, func(c *envConfig) { c.db = dead })
		start := time.Now()
		resp := e.login(request(t, http.MethodPost, codeBody(e.code("oStoreDown", ""))))
		e.secrets = append(e.secrets, e.emu.SessionKey("oStoreDown"))
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
		if resp.StatusCode != 503 || decodeError(t, resp).Error != "store_unavailable" || resp.Headers["Retry-After"] != "1" {
			t.Fatalf("got %d %s %v", resp.StatusCode, resp.Body, resp.Headers)
		}
		if len(resp.Cookies) != 0 {
			t.Errorf("cookie set: %v", resp.Cookies)
		}
	})
	t.Run("table missing", func(t *testing.T) {
		e := newEnv(t)
		var err error
		e.h.Store, err = dynamostore.New(e.db, dynamostore.Config{SessionsTable: e.sessions, UsersTable: "no-such-users", Logger: e.logger})
		if err != nil {
			t.Fatal(err)
		}
		resp := e.login(request(t, http.MethodPost, codeBody(e.code("oNoTable", ""))))
		e.secrets = append(e.secrets, e.emu.SessionKey("oNoTable"))
		if resp.StatusCode != 500 || decodeError(t, resp).Error != "server_misconfigured" || resp.Headers["Retry-After"] != "" {
			t.Fatalf("got %d %s %v, want 500 server_misconfigured without Retry-After", resp.StatusCode, resp.Body, resp.Headers)
		}
		if !strings.Contains(e.logs.String(), `"alert":true`) {
			t.Errorf("no alert logged:\n%s", e.logs.String())
		}
	})
}

// TestLoginAnswersBeforeTheInvocationDeadline: a hung database must end in a
// 503 with Retry-After while the invocation still has DeadlineMargin left,
// not in a Lambda timeout (which the gateway turns into a bare 500).
func TestLoginAnswersBeforeTheInvocationDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accept and never answer
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	hung, err := dynalite.LocalClient(context.Background(), "http://"+ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *envConfig) { c.db = hung })
	code := e.code("oDeadline1", "")
	const budget = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	resp, err := e.h.Handle(ctx, request(t, http.MethodPost, codeBody(code)))
	took := time.Since(start)
	e.secrets = append(e.secrets, e.emu.SessionKey("oDeadline1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" {
		t.Fatalf("got %d %s %v", resp.StatusCode, resp.Body, resp.Headers)
	}
	if limit := budget - login.DeadlineMargin + 250*time.Millisecond; took > limit {
		t.Fatalf("answered after %v, want within %v (the deadline minus the margin)", took, limit)
	}
}
