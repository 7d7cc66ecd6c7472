package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// request holds what both events share.
type request struct {
	rawQuery string
	cookies  []string
	headers  map[string]string
	query    map[string]string
	params   map[string]string
	ctx      events.APIGatewayV2HTTPRequestContext
	raw      http.Header
}

func (g *Gateway) buildRequest(r *http.Request, rid string, now time.Time, rt *route, rawPath string, params map[string]string) *request {
	req := &request{rawQuery: r.URL.RawQuery, params: params, raw: r.Header}
	req.headers = make(map[string]string, len(r.Header)+5)
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						req.cookies = append(req.cookies, c)
					}
				}
			}
			continue
		}
		req.headers[lk] = strings.Join(vs, ",")
	}
	ip := clientIP(r)
	req.headers["host"] = r.Host
	if xff := req.headers["x-forwarded-for"]; xff != "" {
		req.headers["x-forwarded-for"] = xff + ", " + ip
	} else {
		req.headers["x-forwarded-for"] = ip
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	req.headers["x-forwarded-proto"] = proto
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(la.String()); err == nil {
			req.headers["x-forwarded-port"] = port
		}
	}
	req.headers["x-amzn-trace-id"] = fmt.Sprintf("Root=1-%08x-%s", now.Unix(), randHex(12))
	req.query = parseQuery(r.URL.RawQuery)

	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	prefix, _, _ := strings.Cut(host, ".")
	req.ctx = events.APIGatewayV2HTTPRequestContext{
		AccountID: g.cfg.AccountID, APIID: g.cfg.APIID,
		DomainName: host, DomainPrefix: prefix,
		HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: rawPath, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent()},
		RequestID: rid, RouteKey: rt.key, Stage: g.cfg.Stage,
		Time:      now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		TimeEpoch: now.UnixMilli(),
	}
	return req
}

// identityValue evaluates an identity source expression for this request.
func (req *request) identityValue(src string) string {
	switch {
	case strings.HasPrefix(src, "$request.header."):
		name := strings.ToLower(strings.TrimPrefix(src, "$request.header."))
		if name == "cookie" {
			return strings.Join(req.raw.Values("Cookie"), "; ")
		}
		return req.headers[name]
	case strings.HasPrefix(src, "$request.querystring."):
		return req.query[strings.TrimPrefix(src, "$request.querystring.")]
	case strings.HasPrefix(src, "$context."):
		switch strings.TrimPrefix(src, "$context.") {
		case "requestId":
			return req.ctx.RequestID
		case "routeKey":
			return req.ctx.RouteKey
		case "stage":
			return req.ctx.Stage
		case "apiId":
			return req.ctx.APIID
		case "httpMethod", "http.method":
			return req.ctx.HTTP.Method
		case "identity.sourceIp", "http.sourceIp":
			return req.ctx.HTTP.SourceIP
		case "identity.userAgent", "http.userAgent":
			return req.ctx.HTTP.UserAgent
		case "domainName":
			return req.ctx.DomainName
		}
	}
	return "" // $stageVariables: the local stage has none
}

// parseQuery decodes a raw query string as API Gateway does: duplicates
// joined with ",", undecodable parts kept as they are.
func parseQuery(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	out := map[string]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = unescapeQuery(k), unescapeQuery(v)
		if k == "" {
			continue
		}
		if prev, ok := out[k]; ok {
			out[k] = prev + "," + v
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// decodeSegments splits the escaped path and decodes each segment, so an
// encoded "/" (%2F) stays inside its segment.
func decodeSegments(escaped string) []string {
	segs := splitPath(escaped)
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	return segs
}

// isText reports whether API Gateway passes a body of this content type as
// text (else it is base64-encoded). Bytes that are not valid UTF-8 cannot
// travel as JSON text, so they are base64-encoded whatever the type says.
func isText(contentType string, body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/graphql":
		return true
	}
	return false
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// skipHeaders are response headers the gateway owns.
var skipHeaders = map[string]bool{
	"content-length": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "upgrade": true, "apigw-requestid": true, "trailer": true,
}

// writeIntegration turns the function's payload into the HTTP response. On
// a malformed payload it answers 500 and returns the error.
func writeIntegration(w http.ResponseWriter, payload []byte) (int, error) {
	trimmed := bytes.TrimSpace(payload)
	var probe map[string]json.RawMessage
	// Every valid JSON object decodes into probe, so for an object the
	// decode is the validity check (no separate json.Valid pass).
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if json.Unmarshal(trimmed, &probe) != nil {
			return writeMessage(w, http.StatusInternalServerError), errors.New("the function's response is not JSON")
		}
	} else if !json.Valid(trimmed) {
		return writeMessage(w, http.StatusInternalServerError), errors.New("the function's response is not JSON")
	}
	if probe["statusCode"] == nil {
		// Not a structured response: AWS assumes 200 and sends it as JSON.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(payload)
		return http.StatusOK, nil
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(trimmed, &resp); err != nil {
		return writeMessage(w, http.StatusInternalServerError), fmt.Errorf("decoding the structured response: %w", err)
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return writeMessage(w, http.StatusInternalServerError), fmt.Errorf("statusCode %d is not an HTTP status", resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return writeMessage(w, http.StatusInternalServerError), fmt.Errorf("isBase64Encoded body does not decode: %w", err)
		}
	}
	type kv struct{ k, v string }
	var hdrs []kv
	for k, v := range resp.Headers {
		hdrs = append(hdrs, kv{k, v})
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			hdrs = append(hdrs, kv{k, v})
		}
	}
	for _, c := range resp.Cookies {
		hdrs = append(hdrs, kv{"Set-Cookie", c})
	}
	for _, e := range hdrs {
		if !validHeaderName(e.k) || !validHeaderValue(e.v) {
			return writeMessage(w, http.StatusInternalServerError), fmt.Errorf("invalid response header %q", e.k)
		}
	}
	h := w.Header()
	for _, e := range hdrs {
		if !skipHeaders[strings.ToLower(e.k)] {
			h.Add(e.k, e.v)
		}
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: send what the function said
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return resp.StatusCode, nil
}

// newRequestID returns an id shaped like API Gateway's ("JKJaXmPLvHcESHA="):
// 15 alphanumerics and "=".
func newRequestID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b) + "="
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// accessRecord is one access-log line. It never holds header values, query
// strings or bodies.
type accessRecord struct {
	Time            string  `json:"time"`
	RequestID       string  `json:"requestId"`
	IP              string  `json:"ip"`
	Method          string  `json:"method"`
	Path            string  `json:"path"`
	Protocol        string  `json:"protocol"`
	Route           string  `json:"routeKey,omitempty"`
	Status          int     `json:"status"`
	ResponseBytes   int     `json:"responseLength"`
	LatencyMs       float64 `json:"latencyMs"`
	AuthStatus      string  `json:"authorizerStatus,omitempty"`
	AuthorizerMs    float64 `json:"authorizerMs,omitempty"`
	IntegrationMs   float64 `json:"integrationMs,omitempty"`
	LambdaRequestID string  `json:"lambdaRequestId,omitempty"`
	Error           string  `json:"error,omitempty"`
}

func (g *Gateway) access(rec accessRecord) {
	if g.cfg.AccessLog == nil {
		return
	}
	rec.Time = time.Now().UTC().Format(time.RFC3339Nano)
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	line = append(line, '\n')
	g.accessMu.Lock()
	_, _ = g.cfg.AccessLog.Write(line)
	g.accessMu.Unlock()
}

// authCache holds authorizer results by identity source values.
type authCache struct {
	mu sync.Mutex
	m  map[string]authEntry
}

type authEntry struct {
	allowed bool
	context map[string]any
	expires time.Time
}

func newAuthCache() *authCache { return &authCache{m: map[string]authEntry{}} }

func (c *authCache) get(k string) (authEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Now().After(e.expires) {
		delete(c.m, k)
		return authEntry{}, false
	}
	return e, true
}

func (c *authCache) put(k string, e authEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= authCacheMax {
		now := time.Now()
		for key, old := range c.m {
			if now.After(old.expires) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= authCacheMax {
			c.m = map[string]authEntry{}
		}
	}
	c.m[k] = e
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 0x80 || c <= ' ' || strings.IndexByte("\"(),/:;<=>?@[\\]{}\x7f", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
