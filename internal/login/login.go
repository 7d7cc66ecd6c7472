// Package login is the POST /login handler: it exchanges the code a
// mini-program got from wx.login() for the user's identity at WeChat,
// stores a new session and hands its id to the client, in the body and as
// the sessionid cookie (docs/design.md §2).
package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/session"
)

// MaxCodeLength is the longest accepted wx.login() code. WeChat's codes are
// 32 characters; the margin tolerates a format change without letting
// arbitrary data through to WeChat.
const MaxCodeLength = 128

// Retry-After values sent with the retryable errors.
const (
	RetryAfterRateLimited = 60 * time.Second
	RetryAfterWeChat      = 2 * time.Second
	RetryAfterStore       = 1 * time.Second
)

// Exchanger exchanges a wx.login() code at WeChat (implemented by
// *wechat.Client). Errors match the wechat sentinel errors with errors.Is.
type Exchanger interface {
	Exchange(ctx context.Context, code string) (session.Identity, error)
}

// Creator stores a new session (implemented by *dynamostore.Store) and
// returns its raw id, which exists nowhere else.
type Creator interface {
	Create(ctx context.Context, appID string, id session.Identity, ttl time.Duration) (string, session.Session, error)
}

// Handler serves POST /login. Build it once per process.
type Handler struct {
	// WeChat exchanges codes.
	WeChat Exchanger
	// Store creates sessions.
	Store Creator
	// AppID is the mini-program's appid, recorded on every session.
	AppID string
	// TTL is the session lifetime; 0 means session.DefaultTTL.
	TTL time.Duration
	// Logger gets one line per request; nil means slog.Default().
	Logger *slog.Logger
	// Audit gets login_succeeded or login_failed for every request
	// (docs/design.md §8); nil writes nothing.
	Audit *audit.Logger
	// Metrics gets one Logins line per request; nil writes nothing.
	Metrics *metrics.Emitter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Response is the body of a successful login.
type Response struct {
	SessionID string `json:"session_id"`
	TokenType string `json:"token_type"`
	ExpiresAt string `json:"expires_at"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
}

// request is the login body. Code is a pointer to tell "missing" from "".
type request struct {
	Code *string `json:"code"`
}

// outcomeOK names a successful login in logs and metrics.
const outcomeOK = "ok"

// outcome is what one request came to: the HTTP answer and how to log it.
type outcome struct {
	resp   events.APIGatewayV2HTTPResponse
	name   string // outcomeOK or the error code
	level  slog.Level
	err    error  // the cause, for the log line
	openid string // known once the exchange succeeded
	sid    string // the new session's stored hash, on success
	alert  bool
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// Handle serves one POST /login event. It always returns a nil error: every
// failure is an HTTP answer, so Lambda never reports a function error for a
// bad request or an upstream outage.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := h.now()
	// Leave DeadlineMargin of the invocation's deadline to answer: a slow
	// WeChat followed by a slow database then still ends in a 503 with
	// Retry-After instead of a Lambda timeout (a 500 at the gateway).
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-DeadlineMargin))
		defer cancel()
	}
	o := h.serve(ctx, req)
	attrs := []slog.Attr{
		slog.String("outcome", o.name),
		slog.Int("status", o.resp.StatusCode),
		slog.Int64("duration_ms", h.now().Sub(start).Milliseconds()),
	}
	if o.openid != "" {
		attrs = append(attrs, slog.String("openid", session.MaskOpenID(o.openid)))
	}
	if o.err != nil {
		attrs = append(attrs, slog.String("error", o.err.Error()))
	}
	if o.alert {
		attrs = append(attrs, slog.Bool("alert", true))
	}
	h.logger().LogAttrs(ctx, o.level, "login", attrs...)
	h.Metrics.Login(ctx, o.name, o.resp.StatusCode)
	if o.alert {
		h.Metrics.Misconfiguration(ctx)
	}
	rec := audit.Record{Event: audit.LoginSucceeded, AppID: h.AppID, OpenID: o.openid, SID: o.sid, SourceIP: req.RequestContext.HTTP.SourceIP}
	if o.name != outcomeOK {
		rec.Event, rec.Error = audit.LoginFailed, o.name
	}
	h.Audit.Record(ctx, rec)
	return o.resp, nil
}

// DeadlineMargin is the part of the Lambda invocation's deadline the login
// handler keeps for answering: WeChat and the store only get the rest.
const DeadlineMargin = 750 * time.Millisecond

func fail(status int, code, msg string, level slog.Level, err error) outcome {
	return outcome{resp: httpapi.Error(status, code, msg), name: code, level: level, err: err}
}

func (h *Handler) serve(ctx context.Context, req events.APIGatewayV2HTTPRequest) outcome {
	if m := req.RequestContext.HTTP.Method; m != http.MethodPost {
		o := fail(http.StatusMethodNotAllowed, "method_not_allowed", "use POST for /login", slog.LevelInfo, nil)
		o.resp.Headers["Allow"] = http.MethodPost
		return o
	}
	body, err := httpapi.Body(req, httpapi.MaxBodyBytes)
	switch {
	case errors.Is(err, httpapi.ErrBodyTooLarge):
		return fail(http.StatusRequestEntityTooLarge, "payload_too_large", httpapi.TooLargeMessage, slog.LevelInfo, nil)
	case err != nil:
		return fail(http.StatusBadRequest, "invalid_request", err.Error(), slog.LevelInfo, nil)
	}
	code, msg := parseCode(body)
	if msg != "" {
		return fail(http.StatusBadRequest, "invalid_request", msg, slog.LevelInfo, nil)
	}

	ident, err := h.WeChat.Exchange(ctx, code)
	if err != nil {
		return exchangeFailure(err)
	}

	ttl := h.TTL
	if ttl <= 0 {
		ttl = session.DefaultTTL
	}
	id, s, err := h.Store.Create(ctx, h.AppID, ident, ttl)
	if err != nil && !errors.Is(err, session.ErrUnavailable) && !errors.Is(err, session.ErrCollision) {
		// A missing table or denied access does not heal by retrying.
		o := fail(http.StatusInternalServerError, "server_misconfigured", "the server's session store is misconfigured", slog.LevelError, err)
		o.alert = true
		o.openid = ident.OpenID
		return o
	}
	if err != nil {
		o := fail(http.StatusServiceUnavailable, "store_unavailable", "the session store is unavailable, try again", slog.LevelError, err)
		o.resp = httpapi.WithRetryAfter(o.resp, RetryAfterStore)
		o.openid = ident.OpenID
		return o
	}

	// expires_at is whole seconds (the store truncates now), so round the
	// remainder up: a 336h TTL reads 1209600, not 1209599.
	expiresIn := int64((s.ExpiresAt.Sub(h.now()) + time.Second - 1) / time.Second)
	if expiresIn < 0 {
		expiresIn = 0
	}
	resp := httpapi.JSON(http.StatusOK, Response{
		SessionID: id,
		TokenType: "Bearer",
		ExpiresAt: s.ExpiresAt.UTC().Format(time.RFC3339),
		ExpiresIn: expiresIn,
		OpenID:    ident.OpenID,
	})
	resp.Cookies = []string{httpapi.SessionCookie(id, time.Duration(expiresIn)*time.Second)}
	return outcome{resp: resp, name: outcomeOK, level: slog.LevelInfo, openid: ident.OpenID, sid: s.Hash}
}

// parseCode decodes the body and validates code; msg is the client-facing
// reason when it is not acceptable.
func parseCode(body []byte) (code, msg string) {
	var r request
	if err := httpapi.DecodeObject(body, &r); err != nil {
		return "", err.Error()
	}
	if r.Code == nil {
		return "", `field "code" is required`
	}
	c := *r.Code
	if len(c) == 0 || len(c) > MaxCodeLength {
		return "", `field "code" must be 1 to 128 characters`
	}
	if !wechat.ValidCodeChars(c) {
		return "", `field "code" may only contain A-Z, a-z, 0-9, "_" and "-"`
	}
	return c, ""
}

// exchangeFailure maps a WeChat exchange error to its answer (docs/design.md §2).
func exchangeFailure(err error) outcome {
	switch {
	case errors.Is(err, wechat.ErrInvalidCode):
		return fail(http.StatusUnauthorized, "invalid_code", "the login code is invalid or expired; call wx.login() again", slog.LevelInfo, err)
	case errors.Is(err, wechat.ErrCodeUsed):
		return fail(http.StatusUnauthorized, "code_used", "the login code was already used; call wx.login() again", slog.LevelInfo, err)
	case errors.Is(err, wechat.ErrRateLimited):
		o := fail(http.StatusTooManyRequests, "rate_limited", "too many logins, try again later", slog.LevelWarn, err)
		o.resp = httpapi.WithRetryAfter(o.resp, RetryAfterRateLimited)
		return o
	case errors.Is(err, wechat.ErrUserBlocked):
		return fail(http.StatusForbidden, "user_blocked", "WeChat refused the login of this user", slog.LevelInfo, err)
	case errors.Is(err, wechat.ErrMisconfigured):
		o := fail(http.StatusInternalServerError, "server_misconfigured", "the server's WeChat credentials are misconfigured", slog.LevelError, err)
		o.alert = true
		return o
	default: // wechat.ErrUnavailable and anything unexpected: the client may retry
		level := slog.LevelWarn
		if !errors.Is(err, wechat.ErrUnavailable) {
			level = slog.LevelError
		}
		o := fail(http.StatusServiceUnavailable, "wechat_unavailable", "WeChat is unavailable, try again", level, err)
		o.resp = httpapi.WithRetryAfter(o.resp, RetryAfterWeChat)
		return o
	}
}
