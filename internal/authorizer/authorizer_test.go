package authorizer_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/authorizer"
	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/logging"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

var server *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &server) }

type env struct {
	t        *testing.T
	db       *dynamodb.Client
	counter  *testutil.CountingClient
	sessions string
	store    *dynamostore.Store
	logs     *testutil.Buffer
	h        *authorizer.Handler
	secrets  []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, logs: &testutil.Buffer{}, counter: &testutil.CountingClient{}}
	logger := logging.New(e.logs, "debug")
	e.db = dynalitetest.Client(t, server, func(o *dynamodb.Options) { o.HTTPClient = e.counter })
	tables := dynalitetest.Tables(t, e.db, "SessionsTable", "UsersTable")
	e.sessions = tables["SessionsTable"]
	users := tables["UsersTable"]
	var err error
	e.store, err = dynamostore.New(e.db, dynamostore.Config{SessionsTable: e.sessions, UsersTable: users, OpTimeout: 2 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.h = &authorizer.Handler{Store: e.store, Logger: logger}
	t.Cleanup(func() {
		logs := e.logs.String()
		for _, s := range e.secrets {
			if strings.Contains(logs, s) {
				t.Errorf("session id %.6s… appears in the logs:\n%s", s, logs)
			}
		}
	})
	return e
}

// create logs a user in through the store and returns the raw id.
func (e *env) create(openid, unionid string) (string, session.Session) {
	return e.createWith(openid, unionid, dynamostore.Policy{TTL: time.Hour})
}

// createWith is create with a session policy.
func (e *env) createWith(openid, unionid string, pol dynamostore.Policy) (string, session.Session) {
	e.t.Helper()
	ctx := context.Background()
	code, _ := session.NewID()
	id := session.IDFromCode([]byte("k"), "wxappid0000000001", code)
	c, err := e.store.Claim(ctx, session.Hash(id), "")
	if err != nil {
		e.t.Fatal(err)
	}
	s, _, err := e.store.Issue(ctx, dynamostore.IssueInput{Claim: c, AppID: "wxappid0000000001",
		Identity: session.Identity{OpenID: openid, UnionID: unionid, SessionKey: "sk-" + openid}, Policy: pol})
	if err != nil {
		e.t.Fatal(err)
	}
	e.secrets = append(e.secrets, id)
	return id, s
}

// request builds an authorizer event from the AWS sample event.
func request(t *testing.T, headers map[string]string, cookies []string) events.APIGatewayV2CustomAuthorizerV2Request {
	t.Helper()
	raw, err := testutil.Event("apigw-v2-custom-authorizer-v2-request.json")
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayV2CustomAuthorizerV2Request
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	req.RouteKey = "GET /me"
	req.RawPath = "/me"
	req.RequestContext.HTTP.Method = "GET"
	req.RequestContext.HTTP.Path = "/me"
	req.IdentitySource = nil
	// Payload 2.0: lower-case header names, cookies in their own array.
	req.Headers = map[string]string{"host": "api.example.com", "user-agent": "wechat-miniprogram"}
	for k, v := range headers {
		req.Headers[k] = v
	}
	req.Cookies = append([]string{"theme=dark"}, cookies...)
	return req
}

func TestAuthorizer(t *testing.T) {
	e := newEnv(t)
	alice, aliceSession := e.create("oAlice0000000000000000000001", "uAlice")
	bob, bobSession := e.create("oBob00000000000000000000002", "")
	deleted, deletedSession := e.create("oCarol000000000000000000003", "")
	if _, err := e.store.EndSession(context.Background(), deletedSession.Hash, session.ReasonLoggedOut); err != nil {
		t.Fatal(err)
	}

	// An expired session still in the table (TTL lags by days).
	expired, _ := session.NewID()
	e.secrets = append(e.secrets, expired)
	item, err := attributevalue.MarshalMap(map[string]any{
		"sid": session.Hash(expired), "user": "wxappid0000000001#oExpired00000000000000004", "openid": "oExpired00000000000000004", "appid": "wxappid0000000001",
		"created_at": time.Now().Add(-2 * time.Hour).Unix(), "expires_at": time.Now().Add(-time.Minute).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.sessions), Item: item}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := session.NewID()
	e.secrets = append(e.secrets, unknown)

	tests := []struct {
		name      string
		headers   map[string]string
		cookies   []string
		want      *session.Session // nil = deny
		wantReads int64
	}{
		{name: "bearer", headers: map[string]string{"authorization": "Bearer " + alice}, want: &aliceSession, wantReads: 1},
		{name: "bearer canonical header case", headers: map[string]string{"Authorization": "bearer " + alice}, want: &aliceSession, wantReads: 1},
		{name: "cookie", cookies: []string{"sessionid=" + bob}, want: &bobSession, wantReads: 1},
		{name: "cookie in a combined element", cookies: []string{"lang=zh; sessionid=" + bob}, want: &bobSession, wantReads: 1},
		{name: "bearer wins over cookie", headers: map[string]string{"authorization": "Bearer " + alice}, cookies: []string{"sessionid=" + bob}, want: &aliceSession, wantReads: 1},
		{name: "basic auth falls through to cookie", headers: map[string]string{"authorization": "Basic YTpi"}, cookies: []string{"sessionid=" + bob}, want: &bobSession, wantReads: 1},
		{name: "expired but not deleted", headers: map[string]string{"authorization": "Bearer " + expired}, wantReads: 1},
		{name: "ended (tombstone)", headers: map[string]string{"authorization": "Bearer " + deleted}, wantReads: 1},
		{name: "unknown", cookies: []string{"sessionid=" + unknown}, wantReads: 1},
		{name: "missing", wantReads: 0},
		{name: "cookie header instead of cookies array", headers: map[string]string{"cookie": "sessionid=" + alice}, wantReads: 0},
		{name: "malformed bearer", headers: map[string]string{"authorization": "Bearer not-a-session-id"}, wantReads: 0},
		{name: "empty bearer", headers: map[string]string{"authorization": "Bearer"}, cookies: []string{"sessionid=" + alice}, wantReads: 0},
		{name: "malformed cookie", cookies: []string{"sessionid=" + alice[:40]}, wantReads: 0},
		{name: "two different cookies", cookies: []string{"sessionid=" + alice, "sessionid=" + bob}, wantReads: 0},
		{name: "huge bearer", headers: map[string]string{"authorization": "Bearer " + strings.Repeat("A", 8192)}, wantReads: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.counter.Count()
			resp, err := e.h.Handle(context.Background(), request(t, tt.headers, tt.cookies))
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			if reads := e.counter.Count() - before; reads != tt.wantReads {
				t.Errorf("%d DynamoDB requests, want %d", reads, tt.wantReads)
			}
			if tt.want == nil {
				if resp.IsAuthorized || resp.Context != nil {
					t.Fatalf("allowed: %+v", resp)
				}
				return
			}
			if !resp.IsAuthorized {
				t.Fatal("denied")
			}
			want := session.PrincipalOf(*tt.want).Context()
			if len(resp.Context) != len(want) {
				t.Fatalf("context %v, want %v", resp.Context, want)
			}
			for k, v := range want {
				if resp.Context[k] != v {
					t.Errorf("context[%q] = %v, want %v", k, resp.Context[k], v)
				}
				if _, ok := resp.Context[k].(string); !ok {
					t.Errorf("context[%q] is %T, want string", k, resp.Context[k])
				}
			}
			// What API Gateway hands the integration parses back into the principal.
			raw, _ := json.Marshal(resp)
			var simple struct {
				Context map[string]any `json:"context"`
			}
			_ = json.Unmarshal(raw, &simple)
			p, err := session.FromContext(simple.Context)
			if err != nil || p.OpenID != tt.want.OpenID || p.SID != tt.want.Hash || !p.ExpiresAt.Equal(tt.want.ExpiresAt) {
				t.Errorf("principal %+v, %v", p, err)
			}
		})
	}
}

// TestAuthorizerRechecksExpiry uses a store whose clock is an hour behind,
// so the store returns a session that has in fact expired: the handler's
// own check must deny it.
func TestAuthorizerRechecksExpiry(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create("oLate0000000000000000000005", "")
	lagging, err := dynamostore.New(e.db, dynamostore.Config{
		SessionsTable: e.sessions, UsersTable: e.sessions + "-u",
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	future := func() time.Time { return time.Now().Add(2 * time.Hour) }
	for _, tc := range []struct {
		name  string
		h     *authorizer.Handler
		allow bool
	}{
		{"handler clock now", &authorizer.Handler{Store: lagging}, true},
		{"handler clock after expiry", &authorizer.Handler{Store: lagging, Now: future}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.h.Handle(context.Background(), request(t, map[string]string{"authorization": "Bearer " + id}, nil))
			if err != nil || resp.IsAuthorized != tc.allow {
				t.Fatalf("IsAuthorized = %v, err %v; want %v", resp.IsAuthorized, err, tc.allow)
			}
		})
	}
}

func TestAuthorizerStoreDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	_ = l.Close()
	dead, err := dynalite.LocalClient(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	store, err := dynamostore.New(dead, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users", OpTimeout: 2 * time.Second, Logger: logging.New(logs, "debug")})
	if err != nil {
		t.Fatal(err)
	}
	h := &authorizer.Handler{Store: store, Logger: logging.New(logs, "info")}
	id, _ := session.NewID()
	for _, req := range []events.APIGatewayV2CustomAuthorizerV2Request{
		request(t, map[string]string{"authorization": "Bearer " + id}, nil),
		request(t, nil, []string{"sessionid=" + id}),
	} {
		start := time.Now()
		resp, err := h.Handle(context.Background(), req)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v with the store down", d)
		}
		if err == nil {
			t.Fatal("no error with the store down")
		}
		if resp.IsAuthorized {
			t.Fatal("allowed with the store down")
		}
		if strings.Contains(err.Error(), id) || strings.Contains(err.Error(), session.Hash(id)) {
			t.Errorf("error %q holds the id or its hash", err)
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("no ERROR line:\n%s", out)
	}
	if strings.Contains(out, id) {
		t.Errorf("id in the logs:\n%s", out)
	}
}

// TestAuthorizerQuietOnSuccess: nothing is logged on the hot path above
// DEBUG.
func TestAuthorizerQuietOnSuccess(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create("oQuiet000000000000000000006", "")
	logs := &testutil.Buffer{}
	h := &authorizer.Handler{Store: e.store, Logger: logging.New(logs, "info")}
	for _, hdr := range []map[string]string{{"authorization": "Bearer " + id}, {"authorization": "Bearer junk"}, nil} {
		if _, err := h.Handle(context.Background(), request(t, hdr, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if logs.String() != "" {
		t.Errorf("logged at info level:\n%s", logs.String())
	}
}

// TestAuthorizerMetrics: one EMF line per decision, allow, deny or error,
// and nothing else written.
func TestAuthorizerMetrics(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create("oMetrics0000000000000000007", "")
	dead, err := dynalite.LocalClient(context.Background(), closedEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	deadStore, err := dynamostore.New(dead, dynamostore.Config{SessionsTable: "sessions", OpTimeout: time.Second, Logger: logging.New(io.Discard, "error")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		store authorizer.Store
		hdr   map[string]string
		want  string
	}{
		{"allow", e.store, map[string]string{"authorization": "Bearer " + id}, metrics.DecisionAllow},
		{"deny without credentials", e.store, nil, metrics.DecisionDeny},
		{"deny unknown", e.store, map[string]string{"authorization": "Bearer " + strings.Repeat("A", 43)}, metrics.DecisionDeny},
		{"error", deadStore, map[string]string{"authorization": "Bearer " + id}, metrics.DecisionError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out testutil.Buffer
			h := &authorizer.Handler{Store: tt.store, Logger: logging.New(io.Discard, "error"), Metrics: metrics.New(&out, "")}
			_, _ = h.Handle(context.Background(), request(t, tt.hdr, nil))
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1: %s", len(lines), out.String())
			}
			if err := metrics.Validate([]byte(lines[0])); err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.Unmarshal([]byte(lines[0]), &m)
			if m[metrics.DimDecision] != tt.want || m[metrics.AuthorizerDecisions] != 1.0 {
				t.Errorf("line %s, want Decision %s", lines[0], tt.want)
			}
		})
	}
}

// TestAuthorizerCrossSite: a state-changing request that carries the session
// in the cookie is denied, without a read, when a browser sent it from
// another site; the Bearer header, safe methods and clients that send no
// Origin or Sec-Fetch-Site (mini-programs) are unaffected.
func TestAuthorizerCrossSite(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create("oCross000000000000000000001", "")
	cookie := []string{"sessionid=" + id}
	bearer := map[string]string{"authorization": "Bearer " + id}
	with := testutil.With
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		cookies []string
		allow   bool
	}{
		{"cookie POST, no browser headers", "POST", nil, cookie, true},
		{"cookie POST same-origin", "POST", with(nil, "sec-fetch-site", "same-origin", "origin", "https://api.example.com"), cookie, true},
		{"cookie POST same-site", "POST", with(nil, "sec-fetch-site", "same-site", "origin", "https://app.example.com"), cookie, true},
		{"cookie POST user-initiated", "POST", with(nil, "sec-fetch-site", "none"), cookie, true},
		{"cookie POST cross-site", "POST", with(nil, "sec-fetch-site", "cross-site", "origin", "https://evil.example"), cookie, false},
		{"cookie DELETE cross-site", "DELETE", with(nil, "sec-fetch-site", "cross-site"), cookie, false},
		{"cookie PUT cross-site, header name in another case", "PUT", with(nil, "Sec-Fetch-Site", "Cross-Site"), cookie, false},
		{"cookie POST unknown Sec-Fetch-Site", "POST", with(nil, "sec-fetch-site", "bogus"), cookie, false},
		{"cookie POST foreign Origin only", "POST", with(nil, "origin", "https://evil.example"), cookie, false},
		{"cookie POST null Origin", "POST", with(nil, "origin", "null"), cookie, false},
		{"cookie POST own Origin only", "POST", with(nil, "origin", "https://api.example.com"), cookie, true},
		{"cookie POST own Origin with default port", "POST", with(nil, "origin", "https://API.example.com:443"), cookie, true},
		{"cookie POST Origin on another port", "POST", with(nil, "origin", "https://api.example.com:8443"), cookie, false},
		{"Sec-Fetch-Site wins over Origin", "POST", with(nil, "sec-fetch-site", "same-origin", "origin", "https://other.example"), cookie, true},
		{"cookie GET cross-site", "GET", with(nil, "sec-fetch-site", "cross-site"), cookie, true},
		{"cookie HEAD cross-site", "HEAD", with(nil, "sec-fetch-site", "cross-site"), cookie, true},
		{"bearer POST cross-site", "POST", with(bearer, "sec-fetch-site", "cross-site", "origin", "https://evil.example"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, tt.headers, tt.cookies)
			req.RequestContext.HTTP.Method = tt.method
			req.RouteKey = tt.method + " /logout"
			req.RequestContext.DomainName = "api.example.com"
			before := e.counter.Count()
			resp, err := e.h.Handle(context.Background(), req)
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			if resp.IsAuthorized != tt.allow {
				t.Fatalf("IsAuthorized = %v, want %v", resp.IsAuthorized, tt.allow)
			}
			if reads := e.counter.Count() - before; !tt.allow && reads != 0 {
				t.Errorf("%d DynamoDB requests for a cross-site request, want 0", reads)
			}
		})
	}
}

// closedEndpoint is the URL of a port nobody listens on.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	_ = l.Close()
	return endpoint
}

// TestAuthorizerTwoClocks: with an idle timeout, use renews the idle clock
// with at most one write per touch interval (one read per request at the
// median); an unused session ends; a session whose expiry lies beyond
// SESSION_TTL from its creation (a forged item) is refused.
func TestAuthorizerTwoClocks(t *testing.T) {
	e := newEnv(t)
	const idle, touch = 10 * time.Minute, time.Minute
	id, s := e.createWith("oIdle00000000000000000000006", "", dynamostore.Policy{TTL: time.Hour, IdleTimeout: idle})
	now := s.CreatedAt
	h := &authorizer.Handler{Store: e.store, MaxLifetime: time.Hour, IdleTimeout: idle, TouchInterval: touch, Now: func() time.Time { return now }}
	auth := func() bool {
		t.Helper()
		resp, err := h.Handle(context.Background(), request(t, map[string]string{"authorization": "Bearer " + id}, nil))
		if err != nil {
			t.Fatal(err)
		}
		return resp.IsAuthorized
	}
	before := e.counter.Count()
	const requests = 100
	for i := range requests {
		now = s.CreatedAt.Add(time.Duration(i) * 6 * time.Second) // 10 minutes in all
		if !auth() {
			t.Fatalf("request %d denied", i)
		}
	}
	n := e.counter.Count() - before
	// One read each, and one renewal write per touch interval.
	if writes := n - requests; writes < 8 || writes > 10 {
		t.Errorf("%d requests over 10 minutes cost %d DynamoDB requests: %d writes, want about one per minute", requests, n, writes)
	}
	// Well past the original idle clock, still active thanks to the renewals.
	now = s.CreatedAt.Add(15 * time.Minute)
	if !auth() {
		t.Fatal("denied after renewals")
	}
	// Unused for longer than the idle timeout: ended.
	now = now.Add(idle + time.Second)
	if auth() {
		t.Fatal("allowed after the idle timeout")
	}
	got, err := e.store.Lookup(context.Background(), s.Hash)
	if err != nil || got.EndReason(now) != session.ReasonIdleTimeout {
		t.Fatalf("reason %q, %v; want idle_timeout", got.EndReason(now), err)
	}

	// A forged item: 10 years of lifetime.
	forged, _ := session.NewID()
	e.secrets = append(e.secrets, forged)
	item, _ := attributevalue.MarshalMap(map[string]any{
		"sid": session.Hash(forged), "user": "wxappid0000000001#oForged", "openid": "oForged", "appid": "wxappid0000000001",
		"created_at": time.Now().Unix(), "expires_at": time.Now().Add(10 * 365 * 24 * time.Hour).Unix(), "last_active_at": time.Now().Unix(),
	})
	if _, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.sessions), Item: item}); err != nil {
		t.Fatal(err)
	}
	for _, max := range []time.Duration{0, session.DefaultTTL, time.Hour} {
		h := &authorizer.Handler{Store: e.store, MaxLifetime: max}
		resp, err := h.Handle(context.Background(), request(t, map[string]string{"authorization": "Bearer " + forged}, nil))
		if err != nil || resp.IsAuthorized {
			t.Fatalf("MaxLifetime %v: a 10-year session was allowed (%v)", max, err)
		}
	}
}
