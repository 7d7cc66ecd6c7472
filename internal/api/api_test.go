package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/api"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/logging"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/profile"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

var server *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &server) }

type env struct {
	t        *testing.T
	counter  *testutil.CountingClient
	store    *dynamostore.Store
	profiles *profile.Store
	logs     *testutil.Buffer
	h        *api.Handler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, logs: &testutil.Buffer{}, counter: &testutil.CountingClient{}}
	logger := logging.New(e.logs, "debug")
	db := dynalitetest.Client(t, server, func(o *dynamodb.Options) { o.HTTPClient = e.counter })
	tables := dynalitetest.Tables(t, db, "SessionsTable", "UsersTable", "ProfilesTable")
	sessions, users, profiles := tables["SessionsTable"], tables["UsersTable"], tables["ProfilesTable"]
	var err error
	if e.store, err = dynamostore.New(db, dynamostore.Config{SessionsTable: sessions, UsersTable: users, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	if e.profiles, err = profile.New(db, profile.Config{Table: profiles}); err != nil {
		t.Fatal(err)
	}
	e.h = &api.Handler{Sessions: e.store, Profiles: e.profiles, Logger: logger,
		Audit: audit.New(e.logs, audit.ActorUser), Metrics: metrics.New(e.logs, "")}
	return e
}

// login creates a session and returns it (the raw id is not needed here:
// the api function only ever sees the authorizer's context).
func (e *env) login(openid, unionid string) session.Session {
	e.t.Helper()
	_, s := e.loginRaw(openid, unionid, "")
	return s
}

// loginRaw creates a session from deviceID ("" = none) and returns its raw
// id too.
func (e *env) loginRaw(openid, unionid, deviceID string) (string, session.Session) {
	e.t.Helper()
	ctx := context.Background()
	code, _ := session.NewID()
	id := session.IDFromCode([]byte("k"), "wxappid0000000001", code)
	c, err := e.store.Claim(ctx, session.Hash(id), deviceID)
	if err != nil {
		e.t.Fatal(err)
	}
	s, _, err := e.store.Issue(ctx, dynamostore.IssueInput{Claim: c, AppID: "wxappid0000000001", DeviceID: deviceID,
		Identity: session.Identity{OpenID: openid, UnionID: unionid}, Policy: dynamostore.Policy{TTL: time.Hour}})
	if err != nil {
		e.t.Fatal(err)
	}
	return id, s
}

// request builds an event from the AWS sample "lambda authorizer" event,
// with the principal's context as API Gateway passes it (JSON round trip).
// A nil principal removes the authorizer block.
func request(t *testing.T, routeKey, body string, query map[string]string, s *session.Session) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := testutil.Event("apigw-v2-request-lambda-authorizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	method, path, _ := strings.Cut(routeKey, " ")
	req.RouteKey, req.RawPath = routeKey, path
	req.RequestContext.RouteKey = routeKey
	req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path = method, path
	req.QueryStringParameters = query
	req.RawQueryString = ""
	req.Body = body
	req.PathParameters = nil
	if s == nil {
		req.RequestContext.Authorizer = nil
		return req
	}
	ctxJSON, _ := json.Marshal(session.PrincipalOf(*s).Context())
	var lambdaCtx map[string]any
	_ = json.Unmarshal(ctxJSON, &lambdaCtx)
	req.RequestContext.Authorizer.Lambda = lambdaCtx
	return req
}

func (e *env) do(req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	resp, err := e.h.Handle(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Handle returned a Go error: %v", err)
	}
	return resp
}

func errorCode(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var b httpapi.ErrorBody
	if err := json.Unmarshal([]byte(resp.Body), &b); err != nil || b.Message == "" {
		t.Fatalf("bad error body %q: %v", resp.Body, err)
	}
	return b.Error
}

func TestMe(t *testing.T) {
	e := newEnv(t)
	s := e.login("oMeUser000000000000000000001", "uMe")
	before := e.counter.Count()
	resp := e.do(request(t, api.RouteMe, "", nil, &s))
	if e.counter.Count() != before {
		t.Error("GET /me read the database")
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Body)
	}
	want := `{"openid":"oMeUser000000000000000000001","unionid":"uMe","appid":"wxappid0000000001","session":{"expires_at":"` +
		s.ExpiresAt.UTC().Format(time.RFC3339) + `"}}`
	if resp.Body != want {
		t.Errorf("body\n got %s\nwant %s", resp.Body, want)
	}
}

type profileBody struct {
	OpenID    string     `json:"openid"`
	Nickname  string     `json:"nickname"`
	AvatarURL string     `json:"avatar_url"`
	UpdatedAt *time.Time `json:"updated_at"`
}

func decodeProfile(t *testing.T, resp events.APIGatewayV2HTTPResponse) profileBody {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Body)
	}
	var p profileBody
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProfileIsolation(t *testing.T) {
	e := newEnv(t)
	alice := e.login("oAlice0000000000000000000001", "")
	bob := e.login("oBob00000000000000000000002", "")

	if p := decodeProfile(t, e.do(request(t, api.RouteGetProfile, "", nil, &alice))); p.OpenID != alice.OpenID || p.Nickname != "" || p.UpdatedAt != nil {
		t.Fatalf("fresh profile = %+v", p)
	}
	if !strings.Contains(e.do(request(t, api.RouteGetProfile, "", nil, &alice)).Body, `"updated_at":null`) {
		t.Error("a fresh profile should have updated_at null")
	}
	put := decodeProfile(t, e.do(request(t, api.RoutePutProfile, `{"nickname":"小明 Alice","avatar_url":"https://example.com/a.png"}`, nil, &alice)))
	if put.OpenID != alice.OpenID || put.Nickname != "小明 Alice" || put.AvatarURL != "https://example.com/a.png" || put.UpdatedAt == nil || time.Since(*put.UpdatedAt) > time.Minute {
		t.Fatalf("PUT returned %+v", put)
	}
	if p := decodeProfile(t, e.do(request(t, api.RouteGetProfile, "", nil, &bob))); p.OpenID != bob.OpenID || p.Nickname != "" || p.AvatarURL != "" {
		t.Fatalf("bob sees %+v", p)
	}
	decodeProfile(t, e.do(request(t, api.RoutePutProfile, `{"nickname":"Bob"}`, nil, &bob)))
	got := decodeProfile(t, e.do(request(t, api.RouteGetProfile, "", nil, &alice)))
	if got.Nickname != "小明 Alice" || got.AvatarURL != "https://example.com/a.png" || !got.UpdatedAt.Equal(*put.UpdatedAt) {
		t.Fatalf("alice's profile after bob's PUT = %+v, want %+v", got, put)
	}
	// PUT replaces: a field left out is cleared.
	if p := decodeProfile(t, e.do(request(t, api.RoutePutProfile, `{"nickname":"Alice"}`, nil, &alice))); p.AvatarURL != "" {
		t.Fatalf("avatar_url kept after PUT without it: %+v", p)
	}
}

func TestProfileInvalid(t *testing.T) {
	e := newEnv(t)
	u := e.login("oInvalid00000000000000000001", "")
	decodeProfile(t, e.do(request(t, api.RoutePutProfile, `{"nickname":"Original"}`, nil, &u)))
	tests := []struct {
		name, body string
		wantStatus int
		wantCode   string
	}{
		{"nickname 33 runes", `{"nickname":"` + strings.Repeat("字", 33) + `"}`, 400, "invalid_request"},
		{"nickname control char", `{"nickname":"a\u0007b"}`, 400, "invalid_request"},
		{"nickname newline", `{"nickname":"a\nb"}`, 400, "invalid_request"},
		{"nickname invalid UTF-8", "{\"nickname\":\"a\xffb\"}", 400, "invalid_request"},
		{"nickname lone surrogate escape", `{"nickname":"\ud800"}`, 400, "invalid_request"},
		{"avatar http", `{"avatar_url":"http://example.com/a.png"}`, 400, "invalid_request"},
		{"avatar relative", `{"avatar_url":"/a.png"}`, 400, "invalid_request"},
		{"avatar javascript", `{"avatar_url":"javascript:alert(1)"}`, 400, "invalid_request"},
		{"avatar user info", `{"avatar_url":"https://u:p@example.com/a.png"}`, 400, "invalid_request"},
		{"avatar space", `{"avatar_url":"https://example.com/a b.png"}`, 400, "invalid_request"},
		{"avatar too long", `{"avatar_url":"https://example.com/` + strings.Repeat("a", 1024) + `"}`, 400, "invalid_request"},
		{"nickname number", `{"nickname":1}`, 400, "invalid_request"},
		{"unknown field", `{"nickname":"x","age":3}`, 400, "invalid_request"},
		{"openid in body", `{"nickname":"x","openid":"oSomeoneElse"}`, 400, "invalid_request"},
		{"not an object", `["x"]`, 400, "invalid_request"},
		{"empty body", ``, 400, "invalid_request"},
		{"trailing data", `{"nickname":"x"}x`, 400, "invalid_request"},
		{"too large", `{"nickname":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, 413, "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(request(t, api.RoutePutProfile, tt.body, nil, &u))
			if resp.StatusCode != tt.wantStatus || errorCode(t, resp) != tt.wantCode {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, resp.Body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	if p := decodeProfile(t, e.do(request(t, api.RouteGetProfile, "", nil, &u))); p.Nickname != "Original" {
		t.Fatalf("profile changed by invalid PUTs: %+v", p)
	}
	// The limits themselves are accepted.
	ok := `{"nickname":"` + strings.Repeat("字", 32) + `","avatar_url":"https://example.com/` + strings.Repeat("a", 1024-len("https://example.com/")) + `"}`
	decodeProfile(t, e.do(request(t, api.RoutePutProfile, ok, nil, &u)))
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	a1 := e.login("oAlice0000000000000000000001", "")
	a2 := e.login("oAlice0000000000000000000001", "")
	a3 := e.login("oAlice0000000000000000000001", "")
	b1 := e.login("oBob00000000000000000000002", "")
	ctx := context.Background()
	alive := func(s session.Session) bool {
		_, err := e.store.Get(ctx, s.Hash)
		if err != nil && !errors.Is(err, session.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	checkCleared := func(resp events.APIGatewayV2HTTPResponse) {
		t.Helper()
		if resp.StatusCode != 204 || resp.Body != "" {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Body)
		}
		if len(resp.Cookies) != 1 {
			t.Fatalf("cookies %v", resp.Cookies)
		}
		c, err := http.ParseSetCookie(resp.Cookies[0])
		if err != nil || c.Name != "sessionid" || c.Value != "" || c.MaxAge >= 0 && !strings.Contains(resp.Cookies[0], "Max-Age=0") {
			t.Fatalf("cookie %q: %+v %v", resp.Cookies[0], c, err)
		}
	}

	checkCleared(e.do(request(t, api.RouteLogout, "", nil, &a1)))
	if alive(a1) || !alive(a2) || !alive(a3) || !alive(b1) {
		t.Fatalf("after logout: a1 %v a2 %v a3 %v b1 %v", alive(a1), alive(a2), alive(a3), alive(b1))
	}
	// Logging out a deleted session again is harmless.
	checkCleared(e.do(request(t, api.RouteLogout, "", nil, &a1)))

	if resp := e.do(request(t, api.RouteLogout, "", map[string]string{"scope": "everything"}, &a2)); resp.StatusCode != 400 || errorCode(t, resp) != "invalid_request" {
		t.Fatalf("bad scope: %d %s", resp.StatusCode, resp.Body)
	}
	if !alive(a2) {
		t.Fatal("bad scope deleted the session")
	}

	checkCleared(e.do(request(t, api.RouteLogout, "", map[string]string{"scope": "all"}, &a2)))
	if alive(a2) || alive(a3) {
		t.Fatal("logout-all left alice's sessions")
	}
	if !alive(b1) {
		t.Fatal("logout-all of alice deleted bob's session")
	}
	e.checkRecorded([]recorded{
		{audit.LoggedOut, a1.Hash, "logged_out", 1},
		{audit.LoggedOut, a1.Hash, "logged_out", 1},
		{audit.LoggedOutAll, a2.Hash, "logged_out_all", 2},
	})
}

// recorded is an audit event and the SessionsEnded metric beside it.
type recorded struct {
	event  audit.Event
	sid    string
	reason string
	n      float64
}

// checkRecorded checks the audit lines and SessionsEnded metric lines
// written so far, in order.
func (e *env) checkRecorded(want []recorded) {
	e.t.Helper()
	var events, ended []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		switch {
		case m["msg"] == audit.Msg:
			events = append(events, m)
		case m[metrics.SessionsEnded] != nil:
			if err := metrics.Validate([]byte(l)); err != nil {
				e.t.Error(err)
			}
			ended = append(ended, m)
		}
	}
	if len(events) != len(want) || len(ended) != len(want) {
		e.t.Fatalf("%d audit lines and %d SessionsEnded lines, want %d:\n%v\n%v", len(events), len(ended), len(want), events, ended)
	}
	for i, w := range want {
		ev, m := events[i], ended[i]
		if ev["event"] != string(w.event) || ev["session"] != w.sid || ev["reason"] != w.reason || ev["user"] == "" || ev["source_ip"] == "" {
			e.t.Errorf("audit line %d = %v, want %+v", i, ev, w)
		}
		if m[metrics.DimReason] != w.reason || m[metrics.SessionsEnded] != w.n {
			e.t.Errorf("SessionsEnded line %d = %v, want %+v", i, m, w)
		}
	}
}

func TestRoutingAndAuth(t *testing.T) {
	e := newEnv(t)
	s := e.login("oRoute000000000000000000001", "")
	tests := []struct {
		name       string
		req        events.APIGatewayV2HTTPRequest
		wantStatus int
		wantCode   string
		wantLog    bool
	}{
		{"unknown route", request(t, "GET /admin", "", nil, &s), 404, "not_found", false},
		{"wrong method", request(t, "DELETE /me", "", nil, &s), 404, "not_found", false},
		{"me without principal", request(t, api.RouteMe, "", nil, nil), 401, "unauthenticated", true},
		{"logout without principal", request(t, api.RouteLogout, "", nil, nil), 401, "unauthenticated", true},
		{"profile without principal", request(t, api.RoutePutProfile, `{"nickname":"x"}`, nil, nil), 401, "unauthenticated", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.logs.String())
			resp := e.do(tt.req)
			if resp.StatusCode != tt.wantStatus || errorCode(t, resp) != tt.wantCode {
				t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
			}
			newLogs := e.logs.String()[before:]
			if got := strings.Contains(newLogs, `"level":"ERROR"`); got != tt.wantLog {
				t.Errorf("ERROR logged = %v, want %v: %s", got, tt.wantLog, newLogs)
			}
		})
	}
	// A $default route falls back to method and path.
	req := request(t, api.RouteMe, "", nil, &s)
	req.RouteKey = "$default"
	if resp := e.do(req); resp.StatusCode != 200 {
		t.Errorf("$default GET /me: %d", resp.StatusCode)
	}
}

func TestStoreDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	_ = l.Close()
	db, err := dynalite.LocalClient(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := dynamostore.New(db, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users", OpTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	profiles, _ := profile.New(db, profile.Config{Table: "profiles", OpTimeout: time.Second})
	h := &api.Handler{Sessions: store, Profiles: profiles, Logger: slog.New(slog.DiscardHandler)}
	s := session.Session{Hash: strings.Repeat("h", 43), OpenID: "oDown", AppID: "wx", ExpiresAt: time.Now().Add(time.Hour)}
	for _, req := range []events.APIGatewayV2HTTPRequest{
		request(t, api.RouteGetProfile, "", nil, &s),
		request(t, api.RoutePutProfile, `{"nickname":"x"}`, nil, &s),
		request(t, api.RouteLogout, "", nil, &s),
		request(t, api.RouteLogout, "", map[string]string{"scope": "all"}, &s),
		request(t, api.RouteListSessions, "", nil, &s),
		withSID(request(t, api.RouteDeleteSession, "", nil, &s), session.Hash("some id")),
	} {
		resp, err := h.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 503 || errorCode(t, resp) != "store_unavailable" || resp.Headers["Retry-After"] == "" {
			t.Errorf("%s: got %d %s %v", req.RouteKey, resp.StatusCode, resp.Body, resp.Headers)
		}
		if len(resp.Cookies) != 0 {
			t.Errorf("%s: cookie cleared although the session was not deleted", req.RouteKey)
		}
	}
}

// TestStoreMisconfigured: a table that does not exist (or, the same class,
// denied access) is not "try again": every route answers 500
// server_misconfigured without Retry-After and logs an alert.
func TestStoreMisconfigured(t *testing.T) {
	logs := &testutil.Buffer{}
	logger := logging.New(logs, "debug")
	db := dynalitetest.Client(t, server)
	store, _ := dynamostore.New(db, dynamostore.Config{SessionsTable: "no-such-sessions", UsersTable: "no-such-users", OpTimeout: 5 * time.Second, Logger: logger})
	profiles, _ := profile.New(db, profile.Config{Table: "no-such-profiles", OpTimeout: 5 * time.Second})
	h := &api.Handler{Sessions: store, Profiles: profiles, Logger: logger}
	s := session.Session{Hash: strings.Repeat("h", 43), OpenID: "oNoTable", AppID: "wx", ExpiresAt: time.Now().Add(time.Hour)}
	tests := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
	}{
		{"get profile", request(t, api.RouteGetProfile, "", nil, &s)},
		{"put profile", request(t, api.RoutePutProfile, `{"nickname":"x"}`, nil, &s)},
		{"logout", request(t, api.RouteLogout, "", nil, &s)},
		{"logout all", request(t, api.RouteLogout, "", map[string]string{"scope": "all"}, &s)},
		{"list sessions", request(t, api.RouteListSessions, "", nil, &s)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := strings.Count(logs.String(), `"alert":true`)
			resp, err := h.Handle(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 500 || errorCode(t, resp) != "server_misconfigured" || resp.Headers["Retry-After"] != "" {
				t.Errorf("got %d %s %v, want 500 server_misconfigured without Retry-After", resp.StatusCode, resp.Body, resp.Headers)
			}
			if strings.Count(logs.String(), `"alert":true`) <= before {
				t.Errorf("no alert logged:\n%s", logs.String())
			}
		})
	}
}

// withSID sets the {sid} path parameter as API Gateway does.
func withSID(req events.APIGatewayV2HTTPRequest, sid string) events.APIGatewayV2HTTPRequest {
	req.PathParameters = map[string]string{"sid": sid}
	req.RawPath = "/me/sessions/" + sid
	req.RequestContext.HTTP.Path = req.RawPath
	return req
}

func TestListSessions(t *testing.T) {
	e := newEnv(t)
	phone := e.login("oDevices00000000000000000001", "")
	tablet := e.login("oDevices00000000000000000001", "")
	other := e.login("oOtherUser000000000000000001", "")

	resp := e.do(request(t, api.RouteListSessions, "", nil, &phone))
	if resp.StatusCode != 200 {
		t.Fatalf("GET /me/sessions: %d %s", resp.StatusCode, resp.Body)
	}
	var body api.SessionsResponse
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatal(err)
	}
	got := map[string]api.SessionInfo{}
	for _, si := range body.Sessions {
		got[si.SID] = si
	}
	if len(got) != 2 || got[phone.Hash].SID == "" || got[tablet.Hash].SID == "" {
		t.Fatalf("sessions = %s, want exactly the phone's and the tablet's", resp.Body)
	}
	if _, leaked := got[other.Hash]; leaked {
		t.Fatalf("another user's session is listed: %s", resp.Body)
	}
	if !got[phone.Hash].Current || got[tablet.Hash].Current {
		t.Errorf("current flags wrong: %s", resp.Body)
	}
	if got[phone.Hash].ExpiresAt != phone.ExpiresAt.UTC().Format(time.RFC3339) {
		t.Errorf("expires_at = %q, want %v", got[phone.Hash].ExpiresAt, phone.ExpiresAt)
	}
}

func TestDeleteSession(t *testing.T) {
	e := newEnv(t)
	phone := e.login("oRevoke000000000000000000001", "")
	tablet := e.login("oRevoke000000000000000000001", "")
	other := e.login("oRevokeOther0000000000000001", "")
	ctx := context.Background()

	tests := []struct {
		name   string
		sid    string
		status int
	}{
		{"malformed sid", "not-a-hash", 404},
		{"unknown sid", strings.Repeat("A", 43), 404},
		{"another user's session", other.Hash, 404},
		{"the tablet, from the phone", tablet.Hash, 204},
		{"the tablet again", tablet.Hash, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(withSID(request(t, api.RouteDeleteSession, "", nil, &phone), tc.sid))
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, resp.Body, tc.status)
			}
			if tc.status == 404 && errorCode(t, resp) != "session_not_found" {
				t.Errorf("error = %s", resp.Body)
			}
			if len(resp.Cookies) != 0 {
				t.Errorf("ending another session cleared this device's cookie: %v", resp.Cookies)
			}
		})
	}
	if _, err := e.store.Get(ctx, tablet.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("tablet session still there: %v", err)
	}
	if _, err := e.store.Get(ctx, other.Hash); err != nil {
		t.Errorf("another user's session was touched: %v", err)
	}
	// Ending the current session is a logout: the cookie is cleared.
	resp := e.do(withSID(request(t, api.RouteDeleteSession, "", nil, &phone), phone.Hash))
	if resp.StatusCode != 204 || len(resp.Cookies) != 1 || !strings.Contains(resp.Cookies[0], "Max-Age=0") {
		t.Fatalf("delete current: %d %v", resp.StatusCode, resp.Cookies)
	}
	if _, err := e.store.Get(ctx, phone.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("phone session still there: %v", err)
	}
}
