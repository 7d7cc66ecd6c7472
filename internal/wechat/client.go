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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
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

// apiJSCode2Session names the API in metrics (dimension Api).
const apiJSCode2Session = "jscode2session"

// Config configures a Client.
type Config struct {
	// AppID is the mini-program's appid. Required.
	AppID string
	// Secret is the mini-program's app secret. Required. Never logged.
	Secret string
	// BaseURLs are tried in order for failover (see Client.Exchange);
	// default config.DefaultAPIBase. Each must be an absolute http(s) URL, with an
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
}

// Client calls jscode2session. It is safe for concurrent use; build one per
// process (a Lambda container) so connections are reused across invocations.
type Client struct {
	appID          string
	secret         string
	bases          []base
	http           *http.Client
	attemptTimeout time.Duration
	maxAttempts    int
	log            *slog.Logger
	metrics        *metrics.Emitter
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
	raw := cfg.BaseURLs
	if len(raw) == 0 {
		raw = config.DefaultAPIBase
	}
	c := &Client{
		appID:          cfg.AppID,
		secret:         cfg.Secret,
		http:           cfg.HTTPClient,
		attemptTimeout: cfg.AttemptTimeout,
		maxAttempts:    cfg.MaxAttempts,
		log:            cfg.Logger,
		metrics:        cfg.Metrics,
	}
	for _, r := range raw {
		b, err := parseBase(r)
		if err != nil {
			return nil, err
		}
		c.bases = append(c.bases, b)
	}
	if c.http == nil {
		c.http = defaultHTTPClient()
	}
	if c.attemptTimeout <= 0 {
		c.attemptTimeout = DefaultAttemptTimeout
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
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
// also matches ctx.Err().
//
// Retries: at most MaxAttempts attempts, each bounded by AttemptTimeout,
// separated by a full-jitter backoff of at most 100 ms then 200 ms. Only
// errcode -1, HTTP 5xx and 408, network errors, timeouts and malformed bodies
// are retried; every other answer is final. With the defaults an Exchange
// ends within about 3×2 s + 0.3 s, and never after ctx's deadline.
//
// Failover schedule: attempt i (0-based) goes to BaseURLs[min(i, len-1)].
// With the default two bases that is api, api2, api2: one failure of the main
// host moves to the recovery host and stays there, rather than going back to
// a host that just failed.
//
// A code is single-use. If an attempt that reached WeChat lost its answer
// (timeout, connection reset, 5xx, -1, garbage), WeChat may have consumed the
// code; a retry then gets 40163. Exchange reports that case as
// ErrUnavailable (503, "try again"), not ErrCodeUsed, because the client did
// nothing wrong; either way the mini-program has to call wx.login() again.
// A 40163 on the first attempt, or after attempts that never reached WeChat
// (connection refused, DNS failure), is ErrCodeUsed.
func (c *Client) Exchange(ctx context.Context, code string) (session.Identity, error) {
	if code == "" {
		return session.Identity{}, fmt.Errorf("wechat: jscode2session: empty code: %w", ErrInvalidCode)
	}
	var (
		lastErr     error
		mayConsumed bool // an earlier attempt reached WeChat and lost its answer
	)
	for i := 0; i < c.maxAttempts; i++ {
		if i > 0 {
			if err := retryBackoff.Wait(ctx, i); err != nil {
				return session.Identity{}, c.ctxDone(ctx, i, lastErr)
			}
		}
		if ctx.Err() != nil {
			return session.Identity{}, c.ctxDone(ctx, i, lastErr)
		}
		b := c.bases[min(i, len(c.bases)-1)]
		start := time.Now()
		r := c.attempt(ctx, b, code)
		dur := time.Since(start)
		c.metrics.WeChatCall(ctx, apiJSCode2Session, r.metricErrcode(), dur, r.unavailable())
		if r.err == nil {
			if i > 0 {
				c.log.LogAttrs(ctx, slog.LevelInfo, "wechat jscode2session succeeded after retry",
					slog.Int("attempt", i+1), slog.String("base", b.host), slog.Int64("duration_ms", dur.Milliseconds()))
			}
			return r.id, nil
		}
		if r.retry && ctx.Err() != nil { // the caller's deadline, not ours: stop now
			c.logAttempt(ctx, i, b, r, dur, false)
			return session.Identity{}, c.ctxDone(ctx, i+1, r.err)
		}
		var apiErr *APIError
		if errors.As(r.err, &apiErr) && apiErr.Code == CodeCodeUsed && mayConsumed {
			r.err = fmt.Errorf("errcode 40163 after an earlier attempt reached WeChat and lost its answer (that attempt probably consumed the code): %w", ErrUnavailable)
			r.retry = false
		}
		c.logAttempt(ctx, i, b, r, dur, r.retry && i+1 < c.maxAttempts)
		if !r.retry {
			return session.Identity{}, fmt.Errorf("wechat: jscode2session: %w", r.err)
		}
		lastErr = r.err
		mayConsumed = mayConsumed || r.wrote
	}
	return session.Identity{}, fmt.Errorf("wechat: jscode2session failed after %d attempts: %w", c.maxAttempts, lastErr)
}

// ctxDone builds the error for an Exchange stopped by its context.
func (c *Client) ctxDone(ctx context.Context, attempts int, last error) error {
	if last != nil {
		return fmt.Errorf("wechat: jscode2session stopped after %d attempts: %w: %w (last: %s)", attempts, ErrUnavailable, context.Cause(ctx), c.redact(last.Error(), ""))
	}
	return fmt.Errorf("wechat: jscode2session stopped after %d attempts: %w: %w", attempts, ErrUnavailable, context.Cause(ctx))
}

// attemptResult is the outcome of one HTTP round trip.
type attemptResult struct {
	id      session.Identity
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

func (c *Client) attempt(ctx context.Context, b base, code string) attemptResult {
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()

	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.secret},
		"js_code":    {code},
		"grant_type": {"authorization_code"},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodGet,
		b.url+jscode2sessionPath+"?"+q.Encode(), nil)
	if err != nil {
		return attemptResult{err: fmt.Errorf("build request: %w", ErrMisconfigured)}
	}
	req.Header.Set("Accept", "application/json, text/plain, */*")
	req.Header.Set("User-Agent", "wxsession")

	resp, err := c.http.Do(req)
	if err != nil {
		return attemptResult{err: c.transportError(ctx, actx, err, code), retry: true, wrote: wrote.Load()}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return attemptResult{err: c.transportError(ctx, actx, fmt.Errorf("read answer: %w", err), code),
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
	case len(body) > maxBodyBytes:
		r.err, r.retry = fmt.Errorf("answer larger than %d bytes: %w", maxBodyBytes, errMalformed), true
		return r
	}
	id, err := decodeResponse(body)
	if err == nil {
		r.id = id
		return r
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		// Redact first, then cut: a cut first could leave part of the secret
		// or the code, which redact no longer recognises (docs/design.md §10).
		apiErr.Message = truncate(c.redact(apiErr.Message, code), maxErrMsgLength)
		r.errcode = apiErr.Code
		r.retry = apiErr.Code == CodeSystemError
	} else {
		r.retry = true // malformed body
	}
	r.err = err
	return r
}

// transportError turns an http.Client error into one without the request URL
// (a *url.Error quotes it, secret and code included) that matches
// ErrUnavailable and, for timeouts, context.DeadlineExceeded.
func (c *Client) transportError(ctx, actx context.Context, err error, code string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	clean := &redactedError{msg: c.redact(err.Error(), code), cause: err}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("caller's context ended: %w: %w", ErrUnavailable, clean)
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("attempt timed out after %s: %w: %w", c.attemptTimeout, ErrUnavailable, clean)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, clean)
}

// redact removes the secret and the code (raw and URL-encoded) from s.
func (c *Client) redact(s, code string) string {
	for _, v := range []string{c.secret, code} {
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
func (c *Client) logAttempt(ctx context.Context, i int, b base, r attemptResult, dur time.Duration, willRetry bool) {
	level := slog.LevelWarn
	switch {
	case errors.Is(r.err, ErrMisconfigured):
		level = slog.LevelError
	case errors.Is(r.err, ErrInvalidCode), errors.Is(r.err, ErrCodeUsed), errors.Is(r.err, ErrUserBlocked):
		level = slog.LevelInfo
	}
	attrs := []slog.Attr{
		slog.Int("attempt", i+1),
		slog.Int("max_attempts", c.maxAttempts),
		slog.String("base", b.host),
		slog.Int("status", r.status),
		slog.Int("errcode", r.errcode),
		slog.Int64("duration_ms", dur.Milliseconds()),
		slog.Bool("retry", willRetry),
		slog.String("error", c.redact(r.err.Error(), "")),
	}
	if r.errcode != 0 && !knownCode(r.errcode) {
		attrs = append(attrs, slog.Bool("unknown_errcode", true))
	}
	if level == slog.LevelError {
		attrs = append(attrs, slog.Bool("alert", true), slog.String("appid", c.appID))
	}
	c.log.LogAttrs(ctx, level, "wechat jscode2session attempt failed", attrs...)
}
