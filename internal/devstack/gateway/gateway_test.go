package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/devstack/samtemplate"
	"github.com/wxsession/wxsession/internal/testutil"
)

// fn is an in-process Invoker: the gateway's contract is the event it sends
// and the response it reads, so a function written in the test is enough.
type fn struct {
	calls atomic.Int64
	mu    sync.Mutex
	last  []byte
	do    func(ctx context.Context, payload []byte) (lambdaruntime.Result, error)
}

func (f *fn) Invoke(ctx context.Context, payload []byte) (lambdaruntime.Result, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.last = append([]byte(nil), payload...)
	f.mu.Unlock()
	return f.do(ctx, payload)
}

func (f *fn) lastEvent(t *testing.T) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var m map[string]any
	if err := json.Unmarshal(f.last, &m); err != nil {
		t.Fatalf("event is not JSON: %v: %s", err, f.last)
	}
	return m
}

func respond(payload string) *fn {
	return &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
		return lambdaruntime.Result{Payload: []byte(payload), RequestID: "lambda-req"}, nil
	}}
}

// echo returns the event it got as the body of a structured response.
func echo() *fn {
	return &fn{do: func(_ context.Context, p []byte) (lambdaruntime.Result, error) {
		resp, _ := json.Marshal(map[string]any{"statusCode": 200, "headers": map[string]string{"content-type": "application/json"}, "body": string(p)})
		return lambdaruntime.Result{Payload: resp}, nil
	}}
}

func allow(ctx map[string]any) *fn {
	b, _ := json.Marshal(map[string]any{"isAuthorized": true, "context": ctx})
	return respond(string(b))
}

type setup struct {
	api     samtemplate.API
	fns     map[string]Invoker
	timeout time.Duration
	maxBody int64
	access  io.Writer
}

func start(t *testing.T, s setup) *httptest.Server {
	t.Helper()
	g, err := New(Config{API: s.api, Functions: s.fns, IntegrationTimeout: s.timeout, MaxBodyBytes: s.maxBody, AccessLog: s.access})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Apigw-Requestid") == "" {
		t.Errorf("%s %s: no apigw-requestid header", req.Method, req.URL)
	}
	return resp, string(b)
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestIntegrationEventShape(t *testing.T) {
	f := echo()
	srv := start(t, setup{
		api: samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/me/{id}", FunctionLogicalID: "F"}}},
		fns: map[string]Invoker{"F": f},
	})
	req := newReq(t, "GET", srv.URL+"/me/a%20b?a=1&a=2&b=%20x&flag", nil)
	req.Header.Add("Cookie", "sessionid=abc; x=y")
	req.Header.Add("Cookie", "z=w")
	req.Header.Add("X-Dup", "1")
	req.Header.Add("X-Dup", "2")
	req.Header.Set("User-Agent", "wxtest/1.0")
	req.Header.Set("Authorization", "Bearer tok")
	resp, _ := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ev := f.lastEvent(t)
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("version", ev["version"], "2.0")
	check("routeKey", ev["routeKey"], "GET /me/{id}")
	check("rawPath", ev["rawPath"], "/me/a%20b")
	check("rawQueryString", ev["rawQueryString"], "a=1&a=2&b=%20x&flag")
	check("cookies", ev["cookies"], []any{"sessionid=abc", "x=y", "z=w"})
	check("queryStringParameters", ev["queryStringParameters"], map[string]any{"a": "1,2", "b": " x", "flag": ""})
	check("pathParameters", ev["pathParameters"], map[string]any{"id": "a b"})
	check("isBase64Encoded", ev["isBase64Encoded"], false)
	for _, absent := range []string{"body", "stageVariables"} {
		if _, ok := ev[absent]; ok {
			t.Errorf("event has %q: %v", absent, ev[absent])
		}
	}
	h := ev["headers"].(map[string]any)
	if _, ok := h["cookie"]; ok {
		t.Error("headers must not carry the cookie header")
	}
	for k := range h {
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower-case", k)
		}
	}
	check("headers.x-dup", h["x-dup"], "1,2")
	check("headers.authorization", h["authorization"], "Bearer tok")
	check("headers.user-agent", h["user-agent"], "wxtest/1.0")
	check("headers.host", h["host"], strings.TrimPrefix(srv.URL, "http://"))
	check("headers.x-forwarded-for", h["x-forwarded-for"], "127.0.0.1")
	check("headers.x-forwarded-proto", h["x-forwarded-proto"], "http")
	rc := ev["requestContext"].(map[string]any)
	check("requestContext.routeKey", rc["routeKey"], "GET /me/{id}")
	check("requestContext.stage", rc["stage"], "$default")
	check("requestContext.apiId", rc["apiId"], DefaultAPIID)
	check("requestContext.accountId", rc["accountId"], DefaultAccountID)
	check("requestContext.domainName", rc["domainName"], "127.0.0.1")
	check("requestContext.domainPrefix", rc["domainPrefix"], "127")
	check("requestContext.requestId", rc["requestId"], resp.Header.Get("Apigw-Requestid"))
	check("requestContext.http", rc["http"], map[string]any{
		"method": "GET", "path": "/me/a%20b", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "wxtest/1.0",
	})
	if _, ok := rc["authorizer"]; ok {
		t.Error("no authorizer on this route, yet requestContext.authorizer is set")
	}
	if s, _ := rc["time"].(string); !regexp.MustCompile(`^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$`).MatchString(s) {
		t.Errorf("requestContext.time = %q", s)
	}
	if ms, _ := rc["timeEpoch"].(float64); time.Since(time.UnixMilli(int64(ms))) > time.Minute {
		t.Errorf("requestContext.timeEpoch = %v", rc["timeEpoch"])
	}
}

func TestBodyEncoding(t *testing.T) {
	f := echo()
	srv := start(t, setup{
		api: samtemplate.API{Routes: []samtemplate.Route{{Method: "POST", Path: "/x", FunctionLogicalID: "F"}}},
		fns: map[string]Invoker{"F": f},
	})
	bin := []byte{0x89, 'P', 'N', 'G', 0, 0xff}
	tests := []struct {
		name, ctype string
		body        []byte
		wantB64     bool
	}{
		{"json", "application/json; charset=utf-8", []byte(`{"code":"abc"}`), false},
		{"text", "text/plain", []byte("héllo"), false},
		{"problem+json", "application/problem+json", []byte(`{}`), false},
		{"png", "image/png", bin, true},
		{"form", "application/x-www-form-urlencoded", []byte("a=1"), true},
		{"no content type", "", []byte("abc"), true},
		{"text but not utf-8", "text/plain", []byte{0xff, 0xfe}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t, "POST", srv.URL+"/x", bytes.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if resp, _ := do(t, req); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			ev := f.lastEvent(t)
			if ev["isBase64Encoded"] != tt.wantB64 {
				t.Fatalf("isBase64Encoded = %v, want %v", ev["isBase64Encoded"], tt.wantB64)
			}
			got := []byte(ev["body"].(string))
			if tt.wantB64 {
				var err error
				if got, err = base64.StdEncoding.DecodeString(string(got)); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, tt.body) {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestRouteSelection(t *testing.T) {
	routes := []samtemplate.Route{
		{Method: "GET", Path: "/pets/dog/1", FunctionLogicalID: "exact"},
		{Method: "GET", Path: "/pets/dog/{id}", FunctionLogicalID: "param"},
		{Method: "GET", Path: "/pets/{a}/{b}", FunctionLogicalID: "twoparams"},
		{Method: "GET", Path: "/pets/{proxy+}", FunctionLogicalID: "greedy"},
		{Method: "ANY", Path: "/pets/dog/1", FunctionLogicalID: "any"},
		{Method: "ANY", Path: "/{proxy+}", FunctionLogicalID: "anygreedy"},
		{Method: "GET", Path: "/", FunctionLogicalID: "root"},
	}
	fns := map[string]Invoker{}
	for _, r := range routes {
		fns[r.FunctionLogicalID] = respond(fmt.Sprintf(`{"statusCode":200,"body":%q}`, r.FunctionLogicalID))
	}
	srv := start(t, setup{api: samtemplate.API{Routes: routes}, fns: fns})

	withDefault := append(append([]samtemplate.Route(nil), routes[:4]...), samtemplate.Route{Path: "$default", FunctionLogicalID: "def"})
	fns2 := map[string]Invoker{"def": respond(`{"statusCode":200,"body":"def"}`)}
	for k, v := range fns {
		fns2[k] = v
	}
	srvDef := start(t, setup{api: samtemplate.API{Routes: withDefault}, fns: fns2})

	tests := []struct {
		srv          *httptest.Server
		method, path string
		want         string // function, or "404"
	}{
		{srv, "GET", "/pets/dog/1", "exact"},
		{srv, "GET", "/pets/dog/2", "param"},
		{srv, "GET", "/pets/cat/2", "twoparams"},
		{srv, "GET", "/pets/cat/2/3", "greedy"},
		{srv, "GET", "/pets/dog", "greedy"},
		{srv, "POST", "/pets/dog/1", "any"},
		{srv, "POST", "/pets/dog/2", "anygreedy"},
		{srv, "DELETE", "/anything/at/all", "anygreedy"},
		{srv, "GET", "/", "root"},
		{srv, "POST", "/", "404"},
		{srvDef, "GET", "/pets/dog/1", "exact"},
		{srvDef, "POST", "/pets/dog/1", "def"},
		{srvDef, "GET", "/pets", "def"},
		{srvDef, "GET", "/pets/", "def"},
		{srvDef, "PURGE", "/nowhere", "def"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			resp, body := do(t, newReq(t, tt.method, tt.srv.URL+tt.path, nil))
			if tt.want == "404" {
				if resp.StatusCode != 404 || body != `{"message":"Not Found"}` {
					t.Errorf("got %d %s, want 404 Not Found", resp.StatusCode, body)
				}
				return
			}
			if body != tt.want {
				t.Errorf("routed to %q (status %d), want %q", body, resp.StatusCode, tt.want)
			}
		})
	}
}

func TestGreedyAndRawPathParameters(t *testing.T) {
	f := echo()
	srv := start(t, setup{
		api: samtemplate.API{Routes: []samtemplate.Route{{Method: "ANY", Path: "/files/{proxy+}", FunctionLogicalID: "F"}}},
		fns: map[string]Invoker{"F": f},
	})
	do(t, newReq(t, "PUT", srv.URL+"/files/a/b%2Fc/d", nil))
	ev := f.lastEvent(t)
	if got := ev["pathParameters"]; !reflect.DeepEqual(got, map[string]any{"proxy": "a/b/c/d"}) {
		t.Errorf("pathParameters = %v", got)
	}
	if ev["routeKey"] != "ANY /files/{proxy+}" || ev["rawPath"] != "/files/a/b%2Fc/d" {
		t.Errorf("routeKey %v rawPath %v", ev["routeKey"], ev["rawPath"])
	}
}

func authAPI(a samtemplate.Authorizer) samtemplate.API {
	a.Name, a.FunctionLogicalID, a.PayloadFormatVersion, a.SimpleResponses = "A", "Auth", "2.0", true
	return samtemplate.API{
		DefaultAuthorizer: "A",
		Authorizers:       map[string]samtemplate.Authorizer{"A": a},
		Routes: []samtemplate.Route{
			{Method: "GET", Path: "/me", FunctionLogicalID: "F", Authorizer: "A"},
			{Method: "POST", Path: "/login", FunctionLogicalID: "F"},
		},
	}
}

func TestAuthorizerAllowPassesContext(t *testing.T) {
	authz := allow(map[string]any{"openid": "o1", "appid": "wx1", "n": 3.0})
	f := echo()
	srv := start(t, setup{api: authAPI(samtemplate.Authorizer{}), fns: map[string]Invoker{"Auth": authz, "F": f}})

	req := newReq(t, "GET", srv.URL+"/me?x=1", nil)
	req.Header.Set("Cookie", "sessionid=s1")
	req.Header.Set("Authorization", "Bearer b1")
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	ae := authz.lastEvent(t)
	if ae["version"] != "2.0" || ae["type"] != "REQUEST" || ae["routeKey"] != "GET /me" || ae["rawPath"] != "/me" || ae["rawQueryString"] != "x=1" {
		t.Errorf("authorizer event = %v", ae)
	}
	if ae["identitySource"] != nil {
		t.Errorf("identitySource = %v, want null (no identity sources)", ae["identitySource"])
	}
	if ae["routeArn"] != "arn:aws:execute-api:us-east-1:"+DefaultAccountID+":local/$default/GET/me" {
		t.Errorf("routeArn = %v", ae["routeArn"])
	}
	if !reflect.DeepEqual(ae["cookies"], []any{"sessionid=s1"}) {
		t.Errorf("authorizer cookies = %v", ae["cookies"])
	}
	ah := ae["headers"].(map[string]any)
	if _, ok := ah["cookie"]; ok || ah["authorization"] != "Bearer b1" {
		t.Errorf("authorizer headers = %v", ah)
	}
	rc := f.lastEvent(t)["requestContext"].(map[string]any)
	want := map[string]any{"lambda": map[string]any{"openid": "o1", "appid": "wx1", "n": 3.0}}
	if !reflect.DeepEqual(rc["authorizer"], want) {
		t.Errorf("requestContext.authorizer = %v, want %v", rc["authorizer"], want)
	}

	// A route with no authorizer does not call it.
	before := authz.calls.Load()
	do(t, newReq(t, "POST", srv.URL+"/login", nil))
	if authz.calls.Load() != before {
		t.Error("POST /login (Authorizer NONE) invoked the authorizer")
	}
}

func TestAuthorizerFailures(t *testing.T) {
	tests := []struct {
		name       string
		authz      *fn
		wantStatus int
		wantBody   string
	}{
		{"deny", respond(`{"isAuthorized":false}`), 403, `{"message":"Forbidden"}`},
		{"function error", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{FunctionError: "Unhandled", Payload: []byte(`{"errorMessage":"x"}`)}, nil
		}}, 500, `{"message":"Internal Server Error"}`},
		{"crash", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{}, lambdaruntime.ErrCrashed
		}}, 500, `{"message":"Internal Server Error"}`},
		{"lambda timeout", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{}, lambdaruntime.ErrTimeout
		}}, 500, `{"message":"Internal Server Error"}`},
		{"not json", respond(`nope`), 500, `{"message":"Internal Server Error"}`},
		{"no isAuthorized", respond(`{"context":{}}`), 500, `{"message":"Internal Server Error"}`},
		{"isAuthorized not bool", respond(`{"isAuthorized":"true"}`), 500, `{"message":"Internal Server Error"}`},
		{"IAM policy shape", respond(`{"principalId":"u","policyDocument":{}}`), 500, `{"message":"Internal Server Error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := echo()
			srv := start(t, setup{api: authAPI(samtemplate.Authorizer{}), fns: map[string]Invoker{"Auth": tt.authz, "F": f}})
			resp, body := do(t, newReq(t, "GET", srv.URL+"/me", nil))
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if f.calls.Load() != 0 {
				t.Error("the integration ran although the authorizer did not allow")
			}
		})
	}
}

func TestAuthorizerIdentitySourcesAndCache(t *testing.T) {
	authz := allow(map[string]any{"openid": "o"})
	f := echo()
	srv := start(t, setup{
		api: authAPI(samtemplate.Authorizer{
			IdentitySources: []string{"$request.header.Authorization", "$request.querystring.v"},
			CacheTTL:        time.Minute,
		}),
		fns: map[string]Invoker{"Auth": authz, "F": f},
	})
	// Missing either source: 401 without invoking the authorizer.
	for _, tc := range []struct{ url, auth string }{{"/me?v=1", ""}, {"/me", "Bearer a"}, {"/me?v=", "Bearer a"}} {
		req := newReq(t, "GET", srv.URL+tc.url, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, body := do(t, req)
		if resp.StatusCode != 401 || body != `{"message":"Unauthorized"}` {
			t.Errorf("%s auth=%q: got %d %s, want 401", tc.url, tc.auth, resp.StatusCode, body)
		}
	}
	if n := authz.calls.Load(); n != 0 {
		t.Fatalf("authorizer invoked %d times for requests missing identity sources", n)
	}
	get := func(auth string) {
		req := newReq(t, "GET", srv.URL+"/me?v=1", nil)
		req.Header.Set("Authorization", auth)
		if resp, body := do(t, req); resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
	}
	get("Bearer a")
	if ids := authz.lastEvent(t)["identitySource"]; !reflect.DeepEqual(ids, []any{"Bearer a", "1"}) {
		t.Errorf("identitySource = %v", ids)
	}
	get("Bearer a")
	if n := authz.calls.Load(); n != 1 {
		t.Errorf("authorizer invoked %d times, want 1 (second result cached)", n)
	}
	get("Bearer b")
	if n := authz.calls.Load(); n != 2 {
		t.Errorf("authorizer invoked %d times, want 2 (other identity)", n)
	}
	rc := f.lastEvent(t)["requestContext"].(map[string]any)
	if !reflect.DeepEqual(rc["authorizer"], map[string]any{"lambda": map[string]any{"openid": "o"}}) {
		t.Errorf("authorizer context = %v", rc["authorizer"])
	}
}

func TestIntegrationResponses(t *testing.T) {
	tests := []struct {
		name       string
		payload    string
		wantStatus int
		wantBody   string
		wantHeader map[string][]string
	}{
		{"structured", `{"statusCode":201,"headers":{"content-type":"application/json; charset=utf-8","x-a":"1"},"multiValueHeaders":{"x-m":["a","b"]},"body":"{\"ok\":true}","cookies":["sessionid=abc; Path=/; HttpOnly","b=2"]}`,
			201, `{"ok":true}`, map[string][]string{
				"Content-Type": {"application/json; charset=utf-8"}, "X-A": {"1"}, "X-M": {"a", "b"},
				"Set-Cookie": {"sessionid=abc; Path=/; HttpOnly", "b=2"},
			}},
		{"base64 body", `{"statusCode":200,"headers":{"content-type":"image/png"},"isBase64Encoded":true,"body":"iVBORw=="}`,
			200, "\x89PNG", map[string][]string{"Content-Type": {"image/png"}}},
		{"no content type", `{"statusCode":204}`, 204, "", map[string][]string{"Content-Type": nil}},
		{"object without statusCode", `{"openid":"o"}`, 200, `{"openid":"o"}`, map[string][]string{"Content-Type": {"application/json"}}},
		{"bare string", `"hello"`, 200, `"hello"`, map[string][]string{"Content-Type": {"application/json"}}},
		{"null", `null`, 200, `null`, nil},
		{"not json", `{oops`, 500, `{"message":"Internal Server Error"}`, nil},
		{"bad statusCode", `{"statusCode":"200"}`, 500, `{"message":"Internal Server Error"}`, nil},
		{"statusCode out of range", `{"statusCode":42}`, 500, `{"message":"Internal Server Error"}`, nil},
		{"bad base64", `{"statusCode":200,"isBase64Encoded":true,"body":"***"}`, 500, `{"message":"Internal Server Error"}`, nil},
		{"header injection", `{"statusCode":200,"headers":{"x-a":"1\r\nSet-Cookie: evil=1"},"cookies":["ok=1"]}`, 500, `{"message":"Internal Server Error"}`, map[string][]string{"Set-Cookie": nil}},
		{"content-length ignored", `{"statusCode":200,"headers":{"content-length":"999"},"body":"abc"}`, 200, "abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, setup{
				api: samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/x", FunctionLogicalID: "F"}}},
				fns: map[string]Invoker{"F": respond(tt.payload)},
			})
			resp, body := do(t, newReq(t, "GET", srv.URL+"/x", nil))
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			for k, want := range tt.wantHeader {
				if got := resp.Header.Values(k); !reflect.DeepEqual(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestIntegrationFailures(t *testing.T) {
	block := &fn{do: func(ctx context.Context, _ []byte) (lambdaruntime.Result, error) {
		<-ctx.Done()
		return lambdaruntime.Result{}, fmt.Errorf("invoke: %w", ctx.Err())
	}}
	tests := []struct {
		name       string
		f          *fn
		wantStatus int
		wantBody   string
	}{
		{"function error", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{FunctionError: "errorString", Payload: []byte(`{"errorMessage":"boom","errorType":"errorString"}`)}, nil
		}}, 500, `{"message":"Internal Server Error"}`},
		{"crash", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{}, fmt.Errorf("x: %w", lambdaruntime.ErrCrashed)
		}}, 500, `{"message":"Internal Server Error"}`},
		{"lambda timeout", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{}, lambdaruntime.ErrTimeout
		}}, 500, `{"message":"Internal Server Error"}`},
		{"init failed", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{}, &lambdaruntime.InitError{Function: "F", ErrorType: "Runtime.ExitError"}
		}}, 500, `{"message":"Internal Server Error"}`},
		{"integration timeout", block, 503, `{"message":"Service Unavailable"}`},
		{"payload too large for lambda", &fn{do: func(context.Context, []byte) (lambdaruntime.Result, error) {
			return lambdaruntime.Result{}, lambdaruntime.ErrRequestTooLarge
		}}, 413, `{"message":"Request Entity Too Large"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, setup{
				api:     samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/x", FunctionLogicalID: "F"}}},
				fns:     map[string]Invoker{"F": tt.f},
				timeout: 100 * time.Millisecond,
			})
			t0 := time.Now()
			resp, body := do(t, newReq(t, "GET", srv.URL+"/x", nil))
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestRouteTimeout(t *testing.T) {
	block := &fn{do: func(ctx context.Context, _ []byte) (lambdaruntime.Result, error) {
		<-ctx.Done()
		return lambdaruntime.Result{}, ctx.Err()
	}}
	srv := start(t, setup{
		api: samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/x", FunctionLogicalID: "F", Timeout: 50 * time.Millisecond}}},
		fns: map[string]Invoker{"F": block},
	})
	resp, _ := do(t, newReq(t, "GET", srv.URL+"/x", nil))
	if resp.StatusCode != 503 {
		t.Errorf("status %d, want 503 after the route's TimeoutInMillis", resp.StatusCode)
	}
}

func TestLimits(t *testing.T) {
	f := echo()
	srv := start(t, setup{
		api:     samtemplate.API{Routes: []samtemplate.Route{{Method: "POST", Path: "/x", FunctionLogicalID: "F"}}},
		fns:     map[string]Invoker{"F": f},
		maxBody: 16,
	})
	resp, body := do(t, newReq(t, "POST", srv.URL+"/x", strings.NewReader(strings.Repeat("a", 17))))
	if resp.StatusCode != 413 || body != `{"message":"Request Entity Too Large"}` {
		t.Errorf("over MaxBodyBytes: %d %s", resp.StatusCode, body)
	}
	// Chunked (no Content-Length) bodies are counted too.
	req := newReq(t, "POST", srv.URL+"/x", io.MultiReader(strings.NewReader(strings.Repeat("b", 20))))
	req.ContentLength = -1
	if resp, _ := do(t, req); resp.StatusCode != 413 {
		t.Errorf("chunked over MaxBodyBytes: %d", resp.StatusCode)
	}
	if resp, _ := do(t, newReq(t, "POST", srv.URL+"/x", strings.NewReader(strings.Repeat("a", 16)))); resp.StatusCode != 200 {
		t.Errorf("at MaxBodyBytes: %d", resp.StatusCode)
	}
	req = newReq(t, "POST", srv.URL+"/x", nil)
	for i := 0; i < 11; i++ {
		req.Header.Add(fmt.Sprintf("X-Big-%d", i), strings.Repeat("v", 1000))
	}
	resp, body = do(t, req)
	if resp.StatusCode != 431 || body != `{"message":"Request Header Fields Too Large"}` {
		t.Errorf("headers over 10240 bytes: %d %s", resp.StatusCode, body)
	}
	if f.calls.Load() != 1 {
		t.Errorf("function invoked %d times, want 1", f.calls.Load())
	}
}

func TestConcurrentRequests(t *testing.T) {
	f := &fn{do: func(_ context.Context, p []byte) (lambdaruntime.Result, error) {
		var ev struct {
			PathParameters map[string]string `json:"pathParameters"`
		}
		if err := json.Unmarshal(p, &ev); err != nil {
			return lambdaruntime.Result{}, err
		}
		time.Sleep(time.Millisecond)
		return lambdaruntime.Result{Payload: []byte(fmt.Sprintf(`{"statusCode":200,"body":%q}`, "id="+ev.PathParameters["id"]))}, nil
	}}
	srv := start(t, setup{
		api: samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/u/{id}", FunctionLogicalID: "F"}}},
		fns: map[string]Invoker{"F": f},
	})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	ids := sync.Map{}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(fmt.Sprintf("%s/u/%d", srv.URL, i))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("id=%d", i); string(b) != want {
				errs <- fmt.Errorf("request %d got %q", i, b)
			}
			if _, dup := ids.LoadOrStore(resp.Header.Get("Apigw-Requestid"), true); dup {
				errs <- errors.New("duplicate apigw-requestid")
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHostileInput sends raw requests a client library would refuse to
// build; the gateway must answer each without crashing.
func TestHostileInput(t *testing.T) {
	f := echo()
	srv := start(t, setup{
		api: samtemplate.API{Routes: []samtemplate.Route{
			{Method: "ANY", Path: "/{proxy+}", FunctionLogicalID: "F"},
		}},
		fns: map[string]Invoker{"F": f},
	})
	addr := strings.TrimPrefix(srv.URL, "http://")
	raw := []string{
		"FOO /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /\xff\xfe?\xff=\xfe&%zz=%%&a=b HTTP/1.1\r\nHost: h\r\nX-Bin: \xff\xfe\xfd\r\nCookie: ;;; =; a\r\n\r\n",
		"GET /a/../b//c HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /x?" + strings.Repeat("a=1&", 3000) + " HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n\xff\x00\x01",
	}
	for i, r := range raw {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(r)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("request %d: status %d", i, resp.StatusCode)
		}
	}
	if f.calls.Load() == 0 {
		t.Error("no hostile request reached the function")
	}
}

func TestAccessLogHasNoSecrets(t *testing.T) {
	var buf testutil.Buffer
	srv := start(t, setup{
		api:    authAPI(samtemplate.Authorizer{}),
		fns:    map[string]Invoker{"Auth": allow(map[string]any{"openid": "o"}), "F": echo()},
		access: &buf,
	})
	const secret = "S3cr3tSessionIdValue"
	req := newReq(t, "GET", srv.URL+"/me?token="+secret, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Cookie", "sessionid="+secret)
	do(t, req)
	do(t, newReq(t, "GET", srv.URL+"/nope", nil))
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("access log leaks the session id: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", out)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"requestId", "method", "path", "routeKey", "status", "latencyMs", "authorizerMs", "integrationMs"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("access log line lacks %q: %s", k, lines[0])
		}
	}
	if rec["status"] != 200.0 || rec["routeKey"] != "GET /me" || rec["authorizerStatus"] != "allowed" {
		t.Errorf("line = %s", lines[0])
	}
	if n, _ := rec["responseLength"].(float64); n <= 0 {
		t.Errorf("integration response length = %v, want > 0: %s", rec["responseLength"], lines[0])
	}
	var notFound map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &notFound); err != nil {
		t.Fatal(err)
	}
	// The gateway's own answers count too: {"message":"Not Found"} is 23 bytes.
	if notFound["status"] != 404.0 || notFound["responseLength"] != float64(len(`{"message":"Not Found"}`)) {
		t.Errorf("404 line = %s", lines[1])
	}
}

func TestNewRejectsUnsupported(t *testing.T) {
	fns := map[string]Invoker{"F": echo(), "Auth": echo()}
	tests := []struct {
		name string
		api  samtemplate.API
		want string
	}{
		{"missing function", samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/x", FunctionLogicalID: "G"}}}, "no invoker for function G"},
		{"iam responses", samtemplate.API{Authorizers: map[string]samtemplate.Authorizer{"A": {Name: "A", FunctionLogicalID: "Auth", PayloadFormatVersion: "2.0"}}}, "EnableSimpleResponses"},
		{"payload 1.0", samtemplate.API{Authorizers: map[string]samtemplate.Authorizer{"A": {Name: "A", FunctionLogicalID: "Auth", PayloadFormatVersion: "1.0", SimpleResponses: true}}}, "only \"2.0\""},
		{"unknown authorizer", samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/x", FunctionLogicalID: "F", Authorizer: "Z"}}}, "unknown authorizer Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{API: tt.api, Functions: fns})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNamedStage(t *testing.T) {
	f := echo()
	g, err := New(Config{
		API:       samtemplate.API{Routes: []samtemplate.Route{{Method: "GET", Path: "/me", FunctionLogicalID: "F"}}},
		Functions: map[string]Invoker{"F": f}, Stage: "dev",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	if resp, _ := do(t, newReq(t, "GET", srv.URL+"/me", nil)); resp.StatusCode != 404 {
		t.Errorf("GET /me outside the stage: %d, want 404", resp.StatusCode)
	}
	if resp, _ := do(t, newReq(t, "GET", srv.URL+"/dev/me", nil)); resp.StatusCode != 200 {
		t.Fatalf("GET /dev/me: %d", resp.StatusCode)
	}
	ev := f.lastEvent(t)
	rc := ev["requestContext"].(map[string]any)
	if ev["rawPath"] != "/dev/me" || rc["stage"] != "dev" || ev["routeKey"] != "GET /me" {
		t.Errorf("rawPath %v stage %v routeKey %v", ev["rawPath"], rc["stage"], ev["routeKey"])
	}
}
