// Package wechat is the client of WeChat's jscode2session API: it exchanges
// the code a mini-program got from wx.login() for the user's openid, unionid
// and session_key.
//
// It decodes WeChat's JSON whatever the Content-Type (WeChat sends
// text/plain), bounds every attempt with a timeout, retries only what can
// succeed on a second try, fails over from api.weixin.qq.com to
// api2.weixin.qq.com, and never puts the app secret, the code or the
// session_key in an error or a log line.
package wechat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wxsession/wxsession/internal/backoff"
	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/session"
)

// Defaults of Config.
const (
	DefaultAttemptTimeout = 2 * time.Second
	DefaultMaxAttempts    = 3
)

// retryBackoff separates attempts: full jitter, at most 100 ms before the
// second attempt, then 200 ms.
var retryBackoff = backoff.Policy{Base: 100 * time.Millisecond, Cap: 200 * time.Millisecond}

// jscode2sessionPath is appended to a base URL.
const jscode2sessionPath = "/sns/jscode2session"

// Config configures a Client.
type Config struct {
	// AppID is the mini-program's appid. Required.
	AppID string
	// Secret is the mini-program's app secret. Required. Never logged.
	Secret string
	// BaseURLs, HTTPClient, AttemptTimeout, MaxAttempts, Logger and
	// Metrics set the retry and failover policy (see TransportConfig).
	BaseURLs       []string
	HTTPClient     *http.Client
	AttemptTimeout time.Duration
	MaxAttempts    int
	Logger         *slog.Logger
	Metrics        *metrics.Emitter
}

// TransportConfig configures a Transport: the retry and failover policy of
// every WeChat call (docs/design.md §2 and §7).
type TransportConfig struct {
	// BaseURLs are tried in order for failover (see Transport.Do); default
	// config.DefaultAPIBase. Each must be an absolute http(s) URL, with an
	// optional path prefix and no query.
	BaseURLs []string
	// HTTPClient sends the requests; default a client with keep-alive
	// connection reuse, a 2 s TLS handshake timeout and no redirects.
	HTTPClient *http.Client
	// AttemptTimeout bounds each attempt (connect, send, read the answer);
	// default 2 s.
	AttemptTimeout time.Duration
	// MaxAttempts is the number of attempts across all bases; default 3.
	MaxAttempts int
	// Logger receives one line per failed attempt; default slog.Default().
	Logger *slog.Logger
	// Metrics receives one WeChatCalls line per attempt (errcode, latency,
	// availability; docs/design.md §8); nil writes nothing.
	Metrics *metrics.Emitter
	// AppID is named in alert lines (a misconfiguration); optional.
	AppID string
}

// Transport sends WeChat API calls with the retry and failover policy
// described at Do. It is safe for concurrent use; build one per process so
// connections are reused across invocations.
type Transport struct {
	bases          []base
	http           *http.Client
	attemptTimeout time.Duration
	maxAttempts    int
	log            *slog.Logger
	metrics        *metrics.Emitter
	appID          string
}

// Client calls jscode2session and stable_token, the two APIs that take the
// app secret. It is safe for concurrent use; build one per process (a Lambda
// container) so connections are reused across invocations.
type Client struct {
	*Transport
	appID  string
	secret string
}

type base struct {
	url  string // normalised, without trailing '/'
	host string // for logs
}

// New validates cfg and builds a Client. It fails when AppID or Secret is
// empty or a base URL is not an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.AppID) == "" {
		return nil, errors.New("wechat: config: AppID is empty")
	}
	if cfg.Secret == "" {
		return nil, errors.New("wechat: config: Secret is empty")
	}
	t, err := NewTransport(TransportConfig{BaseURLs: cfg.BaseURLs, HTTPClient: cfg.HTTPClient,
		AttemptTimeout: cfg.AttemptTimeout, MaxAttempts: cfg.MaxAttempts, Logger: cfg.Logger,
		Metrics: cfg.Metrics, AppID: cfg.AppID})
	if err != nil {
		return nil, err
	}
	return &Client{Transport: t, appID: cfg.AppID, secret: cfg.Secret}, nil
}

// NewTransport validates cfg and builds a Transport. It fails when a base
// URL is not an absolute http(s) URL.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	raw := cfg.BaseURLs
	if len(raw) == 0 {
		raw = config.DefaultAPIBase
	}
	t := &Transport{
		http:           cfg.HTTPClient,
		attemptTimeout: cfg.AttemptTimeout,
		maxAttempts:    cfg.MaxAttempts,
		log:            cfg.Logger,
		metrics:        cfg.Metrics,
		appID:          cfg.AppID,
	}
	for _, r := range raw {
		b, err := parseBase(r)
		if err != nil {
			return nil, err
		}
		t.bases = append(t.bases, b)
	}
	if t.http == nil {
		t.http = defaultHTTPClient()
	}
	if t.attemptTimeout <= 0 {
		t.attemptTimeout = DefaultAttemptTimeout
	}
	if t.maxAttempts <= 0 {
		t.maxAttempts = DefaultMaxAttempts
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	return t, nil
}

func parseBase(raw string) (base, error) {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	u, err := url.Parse(s)
	if err != nil {
		return base{}, fmt.Errorf("wechat: config: base URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return base{}, fmt.Errorf("wechat: config: base URL %q is not an absolute http(s) URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return base{}, fmt.Errorf("wechat: config: base URL %q must not have a query, fragment or user info", raw)
	}
	return base{url: s, host: u.Host}, nil
}

// defaultHTTPClient is tuned for a Lambda container: connections to WeChat
// are kept alive across invocations, handshakes are bounded, redirects are not
// followed (WeChat does not redirect; a redirect means a misrouted base URL).
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 2 * time.Second
	t.MaxIdleConns = 32
	t.MaxIdleConnsPerHost = 8
	t.IdleConnTimeout = 60 * time.Second
	t.ForceAttemptHTTP2 = true
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// AppID returns the mini-program's appid.
func (c *Client) AppID() string { return c.appID }

// Exchange trades a wx.login() code for the user's identity.
//
// Errors match (errors.Is) exactly one of ErrInvalidCode, ErrCodeUsed,
// ErrRateLimited, ErrUserBlocked, ErrUnavailable and ErrMisconfigured;
// errcode answers are also *APIError (errors.As). When ctx ends, the error
// also matches ctx.Err(). Retries and failover are Transport.Do's; the code
// is single-use, so a 40163 after an attempt that may have consumed it is
// ErrUnavailable, not ErrCodeUsed (see Request.ConsumedErrcodes): either way
// the mini-program has to call wx.login() again.
func (c *Client) Exchange(ctx context.Context, code string) (session.Identity, error) {
	if code == "" {
		return session.Identity{}, fmt.Errorf("wechat: jscode2session: empty code: %w", ErrInvalidCode)
	}
	resp, err := c.Do(ctx, Request{
		API:    "jscode2session",
		Method: http.MethodGet,
		Path:   jscode2sessionPath,
		Query: url.Values{
			"appid":      {c.appID},
			"secret":     {c.secret},
			"js_code":    {code},
			"grant_type": {"authorization_code"},
		},
		Redact:           []string{c.secret, code},
		ConsumedErrcodes: []int{CodeCodeUsed},
		Check: func(body []byte) error {
			_, err := decodeResponse(body)
			return err
		},
	})
	if err != nil {
		return session.Identity{}, err
	}
	return decodeResponse(resp.Body)
}

// stableTokenPath is getStableAccessToken's path.
const stableTokenPath = "/cgi-bin/stable_token"

// Longest access_token accepted (WeChat: "keep at least 512 characters").
const maxTokenLength = 2048

// StableToken calls getStableAccessToken (POST /cgi-bin/stable_token): the
// app's access_token and how long it stays valid. force=false answers the
// current token (WeChat renews it in its last 5 minutes); force=true revokes
// every earlier token and answers a new one, which WeChat allows 20 times a
// day and ignores within 30 s of the previous forced call. Errors are
// Exchange's classes (ErrMisconfigured for a wrong appid or secret,
// ErrRateLimited for 45009/45011, ErrUnavailable otherwise). The token is
// never in an error or a log line.
func (c *Client) StableToken(ctx context.Context, force bool) (token string, expiresIn time.Duration, err error) {
	body, err := json.Marshal(struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", c.appID, c.secret, force})
	if err != nil {
		return "", 0, fmt.Errorf("wechat: stable_token: %w", ErrMisconfigured)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	_, err = c.Do(ctx, Request{
		API: "stable_token", Method: http.MethodPost, Path: stableTokenPath, Body: body,
		Redact: []string{c.secret},
		Check: func(b []byte) error {
			if err := checkErrcode(b); err != nil {
				return err
			}
			if json.Unmarshal(b, &out) != nil || !plausibleToken(out.AccessToken, maxTokenLength) || out.ExpiresIn <= 0 || out.ExpiresIn > 86400 {
				return fmt.Errorf("stable_token answer without a plausible access_token and expires_in: %w", errMalformed)
			}
			return nil
		},
	})
	if err != nil {
		return "", 0, err
	}
	return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
}

// Request is one WeChat API call.
type Request struct {
	// API names the call in logs and errors ("getuserphonenumber").
	API string
	// Method is GET or POST.
	Method string
	// Path is appended to the base URL ("/wxa/checksession").
	Path string
	// Query holds the query parameters (access_token among them).
	Query url.Values
	// Body is the JSON body of a POST; nil for none.
	Body []byte
	// Redact lists values (secrets, codes, tokens) removed from every error
	// and log line; the access_token query parameter always is.
	Redact []string
	// ConsumedErrcodes marks a call WeChat acts on only once (a code
	// exchange, a key reset): these errcodes mean "already used", and after
	// an earlier attempt that reached WeChat and lost its answer they are
	// reported as ErrUnavailable instead, because that attempt probably
	// consumed the code; the client did nothing wrong. The same errcode on
	// the first attempt, or after attempts that never reached WeChat
	// (connection refused, DNS failure), is reported as it is.
	ConsumedErrcodes []int
	// Check, when set, decodes a JSON answer instead of the default errcode
	// check: it returns an *APIError for an errcode answer, an error
	// wrapping ErrUnavailable for a malformed one (retried), nil for a good
	// one.
	Check func(body []byte) error
	// MaxBody is the largest answer accepted; 0 means 64 KiB (JSON
	// answers). Image APIs need more (MaxImageBytes).
	MaxBody int
}

// MaxImageBytes is the answer limit for APIs that answer images
// (getwxacodeunlimit: a PNG or JPEG of at most 1280 px).
const MaxImageBytes = 8 << 20

// Response is a successful answer: HTTP 200 and either a JSON body
// without a non-zero errcode or a non-JSON body (an image).
type Response struct {
	ContentType string
	Body        []byte
}

// Do sends req with the retry and failover policy shared by every WeChat
// call (docs/design.md §7):
//
// Retries: at most MaxAttempts attempts, each bounded by AttemptTimeout,
// separated by a full-jitter backoff of at most 100 ms then 200 ms. Only
// errcode -1, HTTP 5xx and 408, network errors, timeouts and malformed bodies
// are retried; every other answer is final. With the defaults a call ends
// within about 3×2 s + 0.3 s, and never after ctx's deadline.
//
// Failover schedule: attempt i (0-based) goes to BaseURLs[min(i, len-1)].
// With the default two bases that is api, api2, api2: one failure of the main
// host moves to the recovery host and stays there, rather than going back to
// a host that just failed.
//
// Errors match (errors.Is) one of the sentinel errors; errcode answers are
// also *APIError (errors.As). The body of an answer is never quoted in an
// error, and neither is anything in req.Redact or the access_token.
func (t *Transport) Do(ctx context.Context, req Request) (Response, error) {
	if tok := req.Query.Get("access_token"); tok != "" {
		req.Redact = append(req.Redact[:len(req.Redact):len(req.Redact)], tok)
	}
	var (
		lastErr     error
		mayConsumed bool // an earlier attempt reached WeChat and lost its answer
	)
	for i := 0; i < t.maxAttempts; i++ {
		if i > 0 {
			if err := retryBackoff.Wait(ctx, i); err != nil {
				return Response{}, t.ctxDone(ctx, req, i, lastErr)
			}
		}
		if ctx.Err() != nil {
			return Response{}, t.ctxDone(ctx, req, i, lastErr)
		}
		b := t.bases[min(i, len(t.bases)-1)]
		start := time.Now()
		r := t.attempt(ctx, b, req)
		dur := time.Since(start)
		t.metrics.WeChatCall(ctx, req.API, r.metricErrcode(), dur, r.unavailable())
		if r.err == nil {
			if i > 0 {
				t.log.LogAttrs(ctx, slog.LevelInfo, "wechat "+req.API+" succeeded after retry",
					slog.Int("attempt", i+1), slog.String("base", b.host), slog.Int64("duration_ms", dur.Milliseconds()))
			}
			return r.resp, nil
		}
		if r.retry && ctx.Err() != nil { // the caller's deadline, not ours: stop now
			t.logAttempt(ctx, req, i, b, r, dur, false)
			return Response{}, t.ctxDone(ctx, req, i+1, r.err)
		}
		var apiErr *APIError
		if mayConsumed && errors.As(r.err, &apiErr) && slices.Contains(req.ConsumedErrcodes, apiErr.Code) {
			r.retry = false
			r.err = fmt.Errorf("errcode %d after an earlier attempt reached WeChat and lost its answer (that attempt probably consumed the code): %w", apiErr.Code, ErrUnavailable)
		}
		t.logAttempt(ctx, req, i, b, r, dur, r.retry && i+1 < t.maxAttempts)
		if !r.retry {
			return Response{}, fmt.Errorf("wechat: %s: %w", req.API, r.err)
		}
		lastErr = r.err
		mayConsumed = mayConsumed || r.wrote
	}
	return Response{}, fmt.Errorf("wechat: %s failed after %d attempts: %w", req.API, t.maxAttempts, lastErr)
}

// ctxDone builds the error for a call stopped by its context.
func (t *Transport) ctxDone(ctx context.Context, req Request, attempts int, last error) error {
	if last != nil {
		return fmt.Errorf("wechat: %s stopped after %d attempts: %w: %w (last: %s)", req.API, attempts, ErrUnavailable, context.Cause(ctx), redact(last.Error(), req.Redact))
	}
	return fmt.Errorf("wechat: %s stopped after %d attempts: %w: %w", req.API, attempts, ErrUnavailable, context.Cause(ctx))
}

// attemptResult is the outcome of one HTTP round trip.
type attemptResult struct {
	resp    Response
	err     error // nil on success; otherwise matches one sentinel
	retry   bool  // worth another attempt
	wrote   bool  // the request was sent, so WeChat may have acted on it
	status  int   // HTTP status, 0 when none
	errcode int   // WeChat errcode, 0 when none
}

// metricErrcode labels the attempt for the Errcode metric dimension:
// WeChat's errcode ("0" on success), else "http_<status>" for an HTTP error,
// "timeout", "network" (no answer) or "malformed" (an unreadable answer).
func (r attemptResult) metricErrcode() string {
	switch {
	case r.errcode != 0:
		return strconv.Itoa(r.errcode)
	case r.err == nil:
		return "0"
	case r.status != 0 && r.status != http.StatusOK:
		return "http_" + strconv.Itoa(r.status)
	case r.status == http.StatusOK:
		return "malformed"
	case errors.Is(r.err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "network"
	}
}

// unavailable reports whether the attempt counts against WeChat's
// availability: every retryable failure (-1, 5xx, no answer, an unreadable
// answer) and every other ErrUnavailable.
func (r attemptResult) unavailable() bool {
	return r.err != nil && (r.retry || errors.Is(r.err, ErrUnavailable))
}

func (t *Transport) attempt(ctx context.Context, b base, req Request) attemptResult {
	actx, cancel := context.WithTimeout(ctx, t.attemptTimeout)
	defer cancel()

	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
	target := b.url + req.Path
	if len(req.Query) > 0 {
		target += "?" + req.Query.Encode()
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), cmp.Or(req.Method, http.MethodGet), target, body)
	if err != nil {
		return attemptResult{err: fmt.Errorf("build request: %w", ErrMisconfigured)}
	}
	hreq.Header.Set("Accept", "application/json, text/plain, */*")
	hreq.Header.Set("User-Agent", "wxsession")
	if req.Body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}

	resp, err := t.http.Do(hreq)
	if err != nil {
		return attemptResult{err: t.transportError(ctx, actx, err, req.Redact), retry: true, wrote: wrote.Load()}
	}
	limit := cmp.Or(req.MaxBody, maxBodyBytes)
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
		_ = resp.Body.Close()
	}()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return attemptResult{err: t.transportError(ctx, actx, fmt.Errorf("read answer: %w", err), req.Redact),
			retry: true, wrote: true, status: resp.StatusCode}
	}
	r := attemptResult{wrote: true, status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		r.err, r.retry = fmt.Errorf("HTTP %d: %w", resp.StatusCode, ErrUnavailable), true
		return r
	case resp.StatusCode == http.StatusTooManyRequests:
		r.err = fmt.Errorf("HTTP %d: %w", resp.StatusCode, ErrRateLimited)
		return r
	case resp.StatusCode != http.StatusOK:
		r.err = fmt.Errorf("HTTP %d: %w", resp.StatusCode, ErrUnavailable)
		return r
	case len(data) > limit:
		r.err, r.retry = fmt.Errorf("answer larger than %d bytes: %w", limit, errMalformed), true
		return r
	}
	ct := resp.Header.Get("Content-Type")
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] != '{' && !strings.HasPrefix(ct, "text/") && !strings.Contains(ct, "json") {
		r.resp = Response{ContentType: ct, Body: data} // an image or other bytes
		return r
	}
	if req.Check != nil {
		err = req.Check(trimmed)
	} else {
		err = checkErrcode(trimmed)
	}
	if err == nil {
		r.resp = Response{ContentType: ct, Body: data}
		return r
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		// Redact first, then cut: a cut first could leave part of a secret
		// or a code, which redact no longer recognises (docs/design.md §10).
		apiErr.Message = truncate(redact(apiErr.Message, req.Redact), maxErrMsgLength)
		r.errcode = apiErr.Code
		r.retry = apiErr.Code == CodeSystemError
	} else {
		r.retry = true // malformed body
	}
	r.err = err
	return r
}

// transportError turns an http.Client error into one without the request URL
// (a *url.Error quotes it, secrets included) that matches
// ErrUnavailable and, for timeouts, context.DeadlineExceeded.
func (t *Transport) transportError(ctx, actx context.Context, err error, secrets []string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	clean := &redactedError{msg: redact(err.Error(), secrets), cause: err}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("caller's context ended: %w: %w", ErrUnavailable, clean)
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("attempt timed out after %s: %w: %w", t.attemptTimeout, ErrUnavailable, clean)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, clean)
}

// redact removes each of secrets (raw and URL-encoded) from s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, "[redacted]")
		if e := url.QueryEscape(v); e != v {
			s = strings.ReplaceAll(s, e, "[redacted]")
		}
	}
	return s
}

// logAttempt writes one line per failed attempt. Answers caused by the user
// or the client (invalid or used code, blocked user) are INFO, a
// misconfiguration is ERROR (an alert), everything else WARN.
func (t *Transport) logAttempt(ctx context.Context, req Request, i int, b base, r attemptResult, dur time.Duration, willRetry bool) {
	level := slog.LevelWarn
	switch {
	case errors.Is(r.err, ErrMisconfigured):
		level = slog.LevelError
	case errors.Is(r.err, ErrInvalidCode), errors.Is(r.err, ErrCodeUsed), errors.Is(r.err, ErrUserBlocked):
		level = slog.LevelInfo
	}
	attrs := []slog.Attr{
		slog.Int("attempt", i+1),
		slog.Int("max_attempts", t.maxAttempts),
		slog.String("base", b.host),
		slog.Int("status", r.status),
		slog.Int("errcode", r.errcode),
		slog.Int64("duration_ms", dur.Milliseconds()),
		slog.Bool("retry", willRetry),
		slog.String("error", redact(r.err.Error(), req.Redact)),
	}
	if r.errcode != 0 && !knownCode(r.errcode) {
		attrs = append(attrs, slog.Bool("unknown_errcode", true))
	}
	if level == slog.LevelError {
		attrs = append(attrs, slog.Bool("alert", true))
		if t.appID != "" {
			attrs = append(attrs, slog.String("appid", t.appID))
		}
	}
	t.log.LogAttrs(ctx, level, "wechat "+req.API+" attempt failed", attrs...)
}
