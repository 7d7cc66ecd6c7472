// Package gateway is a local stand-in for an Amazon API Gateway HTTP API with
// Lambda proxy integrations (payload format 2.0) and Lambda authorizers
// (payload format 2.0, simple responses). It is an http.Handler built from
// the routes samtemplate reads out of template.yaml; functions are invoked
// through Invoker (a *lambdaruntime.Pool in the local stack).
//
// What it reproduces, because code that passes locally must not fail on AWS:
//
//   - Route selection in API Gateway's order: exact method and path (literal
//     segments before {param}s), then the method with a greedy {proxy+} path,
//     then ANY, then $default; otherwise 404 {"message":"Not Found"}.
//     Matching is on percent-decoded segments and is case-sensitive; "/me/"
//     does not match "/me".
//   - Events as API Gateway builds them: header names lower-case, duplicate
//     headers joined with ",", the Cookie header(s) split on "; " into the
//     cookies array and removed from headers, host and the x-forwarded-* /
//     x-amzn-trace-id headers added, rawQueryString as received,
//     queryStringParameters decoded with duplicates joined by ",",
//     pathParameters decoded, requestContext with a fresh requestId, and the
//     body as text for textual content types (text/*, JSON, XML, JavaScript)
//     and base64 otherwise (isBase64Encoded true) — note that, as on AWS,
//     application/x-www-form-urlencoded bodies arrive base64-encoded.
//   - Authorizers: with identity sources configured, a request missing any
//     of them is answered 401 {"message":"Unauthorized"} without invoking the
//     authorizer; isAuthorized false is 403 {"message":"Forbidden"}; an
//     authorizer error, crash, timeout (10 s, API Gateway's limit) or
//     malformed response is 500 {"message":"Internal Server Error"}; the
//     returned context reaches the integration as
//     requestContext.authorizer.lambda. Results are cached per identity
//     source values for CacheTTL when the authorizer has identity sources.
//   - Integration responses: a JSON object with statusCode is used as
//     statusCode/headers/multiValueHeaders/cookies (one Set-Cookie each)/body
//     (base64-decoded when isBase64Encoded); any other valid JSON is sent as
//     the body with 200 and Content-Type application/json. A function error,
//     crash, Lambda timeout or malformed response is 500
//     {"message":"Internal Server Error"}; exceeding the integration timeout
//     (30 s at most, or the route's TimeoutInMillis) is 503
//     {"message":"Service Unavailable"}.
//   - Limits: a body over MaxBodyBytes (10 MB) is 413 {"message":"Request
//     Entity Too Large"}; a request line plus header values over 10240 bytes
//     (HTTP APIs' quota) is 431 {"message":"Request Header Fields Too
//     Large"} (AWS documents the quota, not the status; 431 is the HTTP
//     status for exactly this).
//   - Every response carries an apigw-requestid header, as on AWS.
//
// When the integration response sets no Content-Type, none is sent (Go's
// content sniffing is suppressed), so clients see what the function said.
// The access log has one JSON line per request with method, path, route,
// status and timings, never header values, query strings or bodies (they
// carry session ids).
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/devstack/samtemplate"
)

// Limits of HTTP APIs (Amazon API Gateway quotas).
const (
	// DefaultMaxBodyBytes is HTTP APIs' payload size quota (10 MB).
	DefaultMaxBodyBytes = 10 << 20
	// MaxIntegrationTimeout is HTTP APIs' maximum integration timeout.
	MaxIntegrationTimeout = 30 * time.Second
	// MaxHeaderBytes is the quota on the request line plus header values.
	MaxHeaderBytes = 10240
	// AuthorizerTimeout is API Gateway's limit on a Lambda authorizer.
	AuthorizerTimeout = 10 * time.Second
	// DefaultAPIID is the apiId in events; DefaultAccountID the accountId.
	DefaultAPIID     = "local"
	DefaultAccountID = lambdaruntime.AccountID
	// authCacheMax bounds the authorizer result cache.
	authCacheMax = 10000
)

// Invoker invokes one Lambda function synchronously. *lambdaruntime.Pool
// implements it.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (lambdaruntime.Result, error)
}

// Config configures New.
type Config struct {
	// API holds the routes and authorizers (samtemplate.Template.API).
	API samtemplate.API
	// Functions are the invokers by function logical id; every route's
	// and authorizer's function must be present.
	Functions map[string]Invoker
	// Stage is the stage name; "" means "$default" (no path prefix). A
	// named stage is served under /<stage>/, as on AWS.
	Stage string
	// Logger receives operational messages (nil: slog.Default()).
	Logger *slog.Logger
	// AccessLog receives one JSON line per request (nil: none).
	AccessLog io.Writer
	// MaxBodyBytes defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// IntegrationTimeout defaults to, and is capped at, 30 s.
	IntegrationTimeout time.Duration
	// APIID, AccountID and Region fill requestContext and routeArn;
	// defaults DefaultAPIID, DefaultAccountID and us-east-1.
	APIID, AccountID, Region string
}

// Gateway is the local HTTP API. It is safe for concurrent use.
type Gateway struct {
	cfg    Config
	routes []*route
	def    *route // $default
	log    *slog.Logger
	cache  *authCache

	accessMu sync.Mutex
}

type route struct {
	samtemplate.Route
	key    string
	segs   []segment
	greedy bool
	fn     Invoker
	auth   *authorizer
}

type segment struct {
	literal string
	param   string // "" for a literal
}

type authorizer struct {
	samtemplate.Authorizer
	fn Invoker
}

// New checks cfg against the API and returns the gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Stage == "" {
		cfg.Stage = "$default"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.IntegrationTimeout <= 0 || cfg.IntegrationTimeout > MaxIntegrationTimeout {
		cfg.IntegrationTimeout = MaxIntegrationTimeout
	}
	if cfg.APIID == "" {
		cfg.APIID = DefaultAPIID
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if cfg.Region == "" {
		cfg.Region = lambdaruntime.DefaultRegion
	}
	if cfg.AccessLog == io.Discard {
		cfg.AccessLog = nil // skip encoding lines nobody reads
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, cache: newAuthCache()}
	if g.log == nil {
		g.log = slog.Default()
	}
	auths := map[string]*authorizer{}
	for name, a := range cfg.API.Authorizers {
		if a.PayloadFormatVersion != "2.0" {
			return nil, fmt.Errorf("gateway: authorizer %s: payload format %q is not supported (only \"2.0\")", name, a.PayloadFormatVersion)
		}
		if !a.SimpleResponses {
			return nil, fmt.Errorf("gateway: authorizer %s: IAM policy responses are not supported (set EnableSimpleResponses: true)", name)
		}
		fn := cfg.Functions[a.FunctionLogicalID]
		if fn == nil {
			return nil, fmt.Errorf("gateway: authorizer %s: no invoker for function %s", name, a.FunctionLogicalID)
		}
		for _, src := range a.IdentitySources {
			if !validIdentitySource(src) {
				return nil, fmt.Errorf("gateway: authorizer %s: identity source %q is not supported", name, src)
			}
		}
		auths[name] = &authorizer{Authorizer: a, fn: fn}
	}
	seen := map[string]bool{}
	for _, r := range cfg.API.Routes {
		rt := &route{Route: r, key: r.Key(), fn: cfg.Functions[r.FunctionLogicalID]}
		if rt.fn == nil {
			return nil, fmt.Errorf("gateway: route %s: no invoker for function %s", rt.key, r.FunctionLogicalID)
		}
		if r.Authorizer != "" {
			if rt.auth = auths[r.Authorizer]; rt.auth == nil {
				return nil, fmt.Errorf("gateway: route %s: unknown authorizer %s", rt.key, r.Authorizer)
			}
		}
		if seen[rt.key] {
			return nil, fmt.Errorf("gateway: route %s is defined twice", rt.key)
		}
		seen[rt.key] = true
		if r.Path == "$default" {
			g.def = rt
			continue
		}
		if r.Method == "" || !strings.HasPrefix(r.Path, "/") {
			return nil, fmt.Errorf("gateway: route %q: want METHOD /path", rt.key)
		}
		for _, s := range splitPath(r.Path) {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
				rt.greedy = true
				rt.segs = append(rt.segs, segment{param: s[1 : len(s)-2]})
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				rt.segs = append(rt.segs, segment{param: s[1 : len(s)-1]})
			default:
				rt.segs = append(rt.segs, segment{literal: s})
			}
		}
		g.routes = append(g.routes, rt)
	}
	return g, nil
}

func validIdentitySource(s string) bool {
	for _, p := range []string{"$request.header.", "$request.querystring.", "$context.", "$stageVariables."} {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return true
		}
	}
	return false
}

// splitPath splits "/a/b" into ["a", "b"]; "/" into none.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match selects the route for method and the decoded path segments, in API
// Gateway's priority order, and returns its path parameters.
func (g *Gateway) match(method string, segs []string) (*route, map[string]string) {
	type tier struct {
		any, greedy bool
	}
	for _, t := range []tier{{false, false}, {false, true}, {true, false}, {true, true}} {
		var best *route
		var bestParams map[string]string
		for _, rt := range g.routes {
			if rt.greedy != t.greedy || (rt.Method == "ANY") != t.any || (!t.any && rt.Method != method) {
				continue
			}
			params, ok := rt.matches(segs)
			if !ok {
				continue
			}
			if best == nil || rt.moreSpecific(best) {
				best, bestParams = rt, params
			}
		}
		if best != nil {
			return best, bestParams
		}
	}
	return g.def, nil
}

func (rt *route) matches(segs []string) (map[string]string, bool) {
	n := len(rt.segs)
	if rt.greedy {
		if len(segs) < n {
			return nil, false
		}
	} else if len(segs) != n {
		return nil, false
	}
	var params map[string]string
	for i, s := range rt.segs {
		if s.param == "" {
			if segs[i] != s.literal {
				return nil, false
			}
			continue
		}
		v := segs[i]
		if rt.greedy && i == n-1 {
			v = strings.Join(segs[i:], "/")
		}
		if v == "" {
			return nil, false
		}
		if params == nil {
			params = map[string]string{}
		}
		params[s.param] = v
	}
	return params, true
}

// moreSpecific reports whether rt beats other for the same request: more
// segments (for greedy routes, a longer fixed prefix), then literals before
// parameters from left to right.
func (rt *route) moreSpecific(other *route) bool {
	if len(rt.segs) != len(other.segs) {
		return len(rt.segs) > len(other.segs)
	}
	for i := range rt.segs {
		a, b := rt.segs[i].param == "", other.segs[i].param == ""
		if a != b {
			return a
		}
	}
	return false
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	cw := &countingWriter{ResponseWriter: w}
	w = cw
	rec := accessRecord{Method: r.Method, Protocol: r.Proto}
	rid := newRequestID()
	rec.RequestID = rid
	w.Header().Set("Apigw-Requestid", rid)
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("gateway: panic serving request", "requestId", rid, "panic", fmt.Sprint(p))
			if rec.Status == 0 {
				rec.Status = writeMessage(w, http.StatusInternalServerError)
			}
		}
		rec.LatencyMs = ms(time.Since(start))
		rec.ResponseBytes = cw.n // every answer, the gateway's own messages included
		g.access(rec)
	}()

	rawPath := r.URL.EscapedPath()
	if rawPath == "" {
		rawPath = "/"
	}
	rec.Path = rawPath
	rec.IP = clientIP(r)

	if headerBytes(r) > MaxHeaderBytes {
		rec.Status = writeMessage(w, http.StatusRequestHeaderFieldsTooLarge)
		return
	}

	routePath := rawPath
	if g.cfg.Stage != "$default" {
		prefix := "/" + g.cfg.Stage
		if routePath != prefix && !strings.HasPrefix(routePath, prefix+"/") {
			rec.Status = writeMessage(w, http.StatusNotFound)
			return
		}
		routePath = strings.TrimPrefix(routePath, prefix)
	}
	rt, params := g.match(r.Method, decodeSegments(routePath))
	if rt == nil {
		rec.Status = writeMessage(w, http.StatusNotFound)
		return
	}
	rec.Route = rt.key

	if r.ContentLength > g.cfg.MaxBodyBytes {
		rec.Status = writeMessage(w, http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.cfg.MaxBodyBytes+1))
	if err != nil {
		rec.Status = writeMessage(w, http.StatusBadRequest)
		rec.Error = "reading request body failed"
		return
	}
	if int64(len(body)) > g.cfg.MaxBodyBytes {
		rec.Status = writeMessage(w, http.StatusRequestEntityTooLarge)
		return
	}

	req := g.buildRequest(r, rid, start, rt, rawPath, params)

	if rt.auth != nil {
		t0 := time.Now()
		status, authCtx := g.authorize(r.Context(), rt.auth, req, &rec)
		rec.AuthorizerMs = ms(time.Since(t0))
		if status != 0 {
			rec.Status = writeMessage(w, status)
			return
		}
		req.ctx.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: authCtx}
	}

	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: rt.key, RawPath: rawPath, RawQueryString: req.rawQuery,
		Cookies: req.cookies, Headers: req.headers, QueryStringParameters: req.query,
		PathParameters: params, RequestContext: req.ctx,
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type"), body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = b64(body), true
		}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		g.log.Error("gateway: encoding integration event", "requestId", rid, "err", err)
		rec.Status = writeMessage(w, http.StatusInternalServerError)
		return
	}

	timeout := g.cfg.IntegrationTimeout
	if rt.Timeout > 0 && rt.Timeout < timeout {
		timeout = rt.Timeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	t0 := time.Now()
	res, err := rt.fn.Invoke(ctx, payload)
	rec.IntegrationMs = ms(time.Since(t0))
	rec.LambdaRequestID = res.RequestID
	switch {
	case err != nil && r.Context().Err() != nil:
		rec.Status = 499 // client closed the connection; nothing to answer
		rec.Error = "client went away"
		return
	case err != nil && ctx.Err() != nil:
		rec.Error = "integration timeout"
		rec.Status = writeMessage(w, http.StatusServiceUnavailable)
		return
	case errors.Is(err, lambdaruntime.ErrRequestTooLarge):
		rec.Status = writeMessage(w, http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		rec.Error = "integration failed: " + errKind(err)
		g.log.Warn("gateway: integration failed", "requestId", rid, "route", rt.key, "function", rt.FunctionLogicalID, "err", err)
		rec.Status = writeMessage(w, http.StatusInternalServerError)
		return
	case res.FunctionError != "":
		rec.Error = "function error: " + res.FunctionError
		g.log.Warn("gateway: function error", "requestId", rid, "route", rt.key, "function", rt.FunctionLogicalID, "errorType", res.FunctionError)
		rec.Status = writeMessage(w, http.StatusInternalServerError)
		return
	}
	status, err := writeIntegration(w, res.Payload)
	if err != nil {
		rec.Error = "malformed integration response"
		g.log.Warn("gateway: malformed integration response", "requestId", rid, "route", rt.key, "function", rt.FunctionLogicalID, "err", err)
	}
	rec.Status = status
}

// errKind names an invocation error without its details.
func errKind(err error) string {
	switch {
	case errors.Is(err, lambdaruntime.ErrTimeout):
		return "lambda timeout"
	case errors.Is(err, lambdaruntime.ErrInitFailed):
		return "init failed"
	case errors.Is(err, lambdaruntime.ErrCrashed):
		return "runtime crashed"
	case errors.Is(err, lambdaruntime.ErrClosed):
		return "function stopped"
	}
	return "invoke error"
}

// authorize runs rt's authorizer. It returns 0 and the context when the
// request may proceed, else the status to answer.
func (g *Gateway) authorize(ctx context.Context, a *authorizer, req *request, rec *accessRecord) (int, map[string]any) {
	var identity []string
	for _, src := range a.IdentitySources {
		v := req.identityValue(src)
		if v == "" {
			rec.AuthStatus = "missing identity"
			return http.StatusUnauthorized, nil
		}
		identity = append(identity, v)
	}
	cacheKey := ""
	if a.CacheTTL > 0 && len(identity) > 0 {
		cacheKey = a.Name + "\x00" + strings.Join(identity, "\x00")
		if e, ok := g.cache.get(cacheKey); ok {
			rec.AuthStatus = "cached"
			if !e.allowed {
				return http.StatusForbidden, nil
			}
			return 0, e.context
		}
	}
	ev := events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST",
		RouteArn:       fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s%s", g.cfg.Region, g.cfg.AccountID, g.cfg.APIID, g.cfg.Stage, req.ctx.HTTP.Method, req.ctx.HTTP.Path),
		IdentitySource: identity, RouteKey: req.ctx.RouteKey, RawPath: req.ctx.HTTP.Path, RawQueryString: req.rawQuery,
		Cookies: req.cookies, Headers: req.headers, QueryStringParameters: req.query,
		PathParameters: req.params, RequestContext: req.ctx,
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		g.log.Error("gateway: encoding authorizer event", "err", err)
		return http.StatusInternalServerError, nil
	}
	actx, cancel := context.WithTimeout(ctx, AuthorizerTimeout)
	defer cancel()
	res, err := a.fn.Invoke(actx, payload)
	switch {
	case err != nil:
		rec.AuthStatus = "error"
		rec.Error = "authorizer failed: " + errKind(err)
		if actx.Err() != nil && ctx.Err() == nil {
			rec.Error = "authorizer timeout"
		}
		g.log.Warn("gateway: authorizer failed", "requestId", req.ctx.RequestID, "authorizer", a.Name, "err", err)
		return http.StatusInternalServerError, nil
	case res.FunctionError != "":
		rec.AuthStatus = "error"
		rec.Error = "authorizer function error: " + res.FunctionError
		g.log.Warn("gateway: authorizer function error", "requestId", req.ctx.RequestID, "authorizer", a.Name, "errorType", res.FunctionError)
		return http.StatusInternalServerError, nil
	}
	var resp struct {
		IsAuthorized *bool          `json:"isAuthorized"`
		Context      map[string]any `json:"context"`
	}
	if err := json.Unmarshal(res.Payload, &resp); err != nil || resp.IsAuthorized == nil {
		rec.AuthStatus = "error"
		rec.Error = "malformed authorizer response"
		g.log.Warn("gateway: malformed authorizer response (want {\"isAuthorized\": bool, \"context\": {...}})", "requestId", req.ctx.RequestID, "authorizer", a.Name)
		return http.StatusInternalServerError, nil
	}
	if cacheKey != "" {
		g.cache.put(cacheKey, authEntry{allowed: *resp.IsAuthorized, context: resp.Context, expires: time.Now().Add(a.CacheTTL)})
	}
	if !*resp.IsAuthorized {
		rec.AuthStatus = "denied"
		return http.StatusForbidden, nil
	}
	rec.AuthStatus = "allowed"
	return 0, resp.Context
}

// messages are API Gateway's bodies for the answers it makes itself.
var messages = map[int]string{
	http.StatusUnauthorized:                "Unauthorized",
	http.StatusForbidden:                   "Forbidden",
	http.StatusNotFound:                    "Not Found",
	http.StatusBadRequest:                  "Bad Request",
	http.StatusRequestEntityTooLarge:       "Request Entity Too Large",
	http.StatusRequestHeaderFieldsTooLarge: "Request Header Fields Too Large",
	http.StatusInternalServerError:         "Internal Server Error",
	http.StatusServiceUnavailable:          "Service Unavailable",
}

// countingWriter counts the body bytes written, for the access log.
type countingWriter struct {
	http.ResponseWriter
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += n
	return n, err
}

// writeMessage answers {"message": ...} as API Gateway does.
func writeMessage(w http.ResponseWriter, status int) int {
	msg := messages[status]
	if msg == "" {
		msg = http.StatusText(status)
	}
	body, _ := json.Marshal(map[string]string{"message": msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// clientIP is the peer's address (API Gateway's sourceIp).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// headerBytes is the size API Gateway's quota counts: the request line and
// the header values.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + len(r.Host)
	for _, vs := range r.Header {
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}
