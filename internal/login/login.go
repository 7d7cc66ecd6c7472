// Package login is the POST /login handler: it exchanges the code a
// mini-program got from wx.login() for the user's identity at WeChat,
// stores a new session and hands its id to the client, in the body and as
// the sessionid cookie (docs/design.md §2, §3).
//
// The exchange is idempotent: the session id is derived from the code
// (session.IDFromCode), a claim on its hash makes sure WeChat is asked
// once, and a duplicate of the code gets the same session.
package login

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/dynamostore"
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

// Store is the session store the login needs (implemented by
// *dynamostore.Store).
type Store interface {
	Claim(ctx context.Context, hash, deviceID string) (dynamostore.Claim, error)
	Release(ctx context.Context, c dynamostore.Claim, failure string)
	Issue(ctx context.Context, in dynamostore.IssueInput) (session.Session, []dynamostore.Ended, error)
	// Lookup reads what ended a login superseded mid-way (a ban, or a
	// newer login of the device).
	Lookup(ctx context.Context, hash string) (session.Session, error)
}

// Exchanger exchanges a wx.login() code at WeChat (implemented by
// *wechat.Client). Errors match the wechat sentinel errors with errors.Is.
type Exchanger interface {
	Exchange(ctx context.Context, code string) (session.Identity, error)
}

// Handler serves POST /login. Build it once per process.
type Handler struct {
	// WeChat exchanges codes.
	WeChat Exchanger
	// Store claims codes and issues sessions.
	Store Store
	// AppID is the mini-program's appid, recorded on every session: the
	// default app, the one a request naming none logs into.
	AppID string
	// CodeKey is the key session ids are derived from codes with
	// (session.CodeKey of the app secret).
	CodeKey []byte
	// Apps are the other mini-programs served (docs/design.md §7.9), by
	// appid; the default app (AppID, WeChat, CodeKey) need not be listed.
	// A request names its app with "appid" in the body, else with the
	// mini-program's Referer (https://servicewechat.com/{appid}/...); an
	// appid that is neither AppID nor in Apps is 400 unknown_app.
	Apps map[string]App
	// Policy is the session model (lifetime, idle timeout, cap,
	// exclusivity); a zero TTL means session.DefaultTTL.
	Policy dynamostore.Policy
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

// App is one mini-program's exchanger and code key.
type App struct {
	WeChat  Exchanger
	CodeKey []byte
}

// RefererPrefix starts the Referer of every request a mini-program makes:
// https://servicewechat.com/{appid}/{version}/page-frame.html.
const RefererPrefix = "https://servicewechat.com/"

// app picks the request's app: the body's appid, else the Referer's, else
// the default. ok is false for an appid this deployment does not serve.
func (h *Handler) app(named string, headers map[string]string) (appid string, a App, ok bool) {
	if named == "" {
		if ref, found := strings.CutPrefix(httpapi.Header(headers, "Referer"), RefererPrefix); found {
			named, _, _ = strings.Cut(ref, "/")
		}
	}
	if named == "" || named == h.AppID {
		return h.AppID, App{WeChat: h.WeChat, CodeKey: h.CodeKey}, true
	}
	a, ok = h.Apps[named]
	return named, a, ok
}

// Response is the body of a successful login.
type Response struct {
	SessionID string `json:"session_id"`
	TokenType string `json:"token_type"`
	ExpiresAt string `json:"expires_at"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
}

// request is the login body (docs/design.md §2). Code is a pointer to tell
// "missing" from "". The json.RawMessage fields are what common
// mini-program code posts beside the code: accepted and ignored. Any other
// field is refused.
type request struct {
	Code     *string         `json:"code"`
	AppID    *string         `json:"appid"`
	DeviceID *string         `json:"device_id"`
	Device   *session.Device `json:"device"`

	EncryptedData json.RawMessage `json:"encryptedData"`
	IV            json.RawMessage `json:"iv"`
	RawData       json.RawMessage `json:"rawData"`
	Signature     json.RawMessage `json:"signature"`
	UserInfo      json.RawMessage `json:"userInfo"`
	CloudID       json.RawMessage `json:"cloudID"`
}

// input is a validated login body.
type input struct {
	code     string
	appid    string
	deviceID string
	device   session.Device
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
	appid  string // the app logged into, once known
	sid    string // the new session's stored hash, on success
	alert  bool
	ended  []dynamostore.Ended
	// duplicate marks the answer to a duplicate of a code (the session its
	// first exchange made).
	duplicate bool
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
	if len(o.ended) > 0 {
		attrs = append(attrs, slog.Int("sessions_ended", len(o.ended)))
	}
	if o.duplicate {
		attrs = append(attrs, slog.Bool("duplicate_code", true))
	}
	h.logger().LogAttrs(ctx, o.level, "login", attrs...)
	h.Metrics.Login(ctx, o.name, o.resp.StatusCode)
	if o.alert {
		h.Metrics.Misconfiguration(ctx)
	}
	if o.appid == "" { // refused before the app was known: the default app's
		o.appid = h.AppID
	}
	rec := audit.Record{Event: audit.LoginSucceeded, AppID: o.appid, OpenID: o.openid, SID: o.sid, SourceIP: req.RequestContext.HTTP.SourceIP}
	if o.name != outcomeOK {
		rec.Event, rec.Error = audit.LoginFailed, o.name
	}
	h.Audit.Record(ctx, rec)
	for _, e := range o.ended {
		ev := audit.SessionReplaced
		if e.Reason == session.ReasonEvicted {
			ev = audit.SessionEvicted
		}
		h.Metrics.SessionsEnded(ctx, string(e.Reason), 1)
		h.Audit.Record(ctx, audit.Record{Event: ev, AppID: o.appid, OpenID: o.openid, SID: e.Hash, Reason: string(e.Reason), SourceIP: req.RequestContext.HTTP.SourceIP})
	}
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
	in, msg := parseRequest(body)
	if msg != "" {
		return fail(http.StatusBadRequest, "invalid_request", msg, slog.LevelInfo, nil)
	}
	appid, app, ok := h.app(in.appid, req.Headers)
	if !ok {
		return fail(http.StatusBadRequest, "unknown_app", "this deployment does not serve the mini-program named by appid (or the Referer)", slog.LevelInfo, nil)
	}
	o := h.login(ctx, req, in, appid, app)
	o.appid = appid
	return o
}

// login is serve for a request of the app appid.
func (h *Handler) login(ctx context.Context, req events.APIGatewayV2HTTPRequest, in input, appid string, app App) outcome {
	// A login ends the session it carries (docs/design.md §3.3). Carried in
	// the cookie by a browser on behalf of another site, that would let any
	// page end a user's session: refused, as the authorizer refuses such
	// requests (docs/design.md §10.5).
	if _, carrier, err := httpapi.FindSessionID(req.Headers, req.Cookies); err == nil && carrier == httpapi.CarrierCookie &&
		httpapi.CrossSite(req.Headers, req.RequestContext.DomainName) {
		return fail(http.StatusForbidden, "cross_site", "a login carrying the session cookie from another site is refused; send the session in Authorization: Bearer", slog.LevelWarn, nil)
	}
	policy := h.Policy
	if policy.TTL <= 0 {
		policy.TTL = session.DefaultTTL
	}

	// The code's session id, and a claim on its hash: one WeChat call per
	// code, however many duplicates arrive (docs/design.md §3).
	id := session.IDFromCode(app.CodeKey, appid, in.code)
	claim, err := h.Store.Claim(ctx, session.Hash(id), in.deviceID)
	if err != nil {
		return claimFailure(err)
	}
	if claim.Token == "" { // a duplicate: the same session
		o := h.answer(id, claim.Existing)
		o.duplicate = true
		return o
	}

	ident, err := app.WeChat.Exchange(ctx, in.code)
	if err != nil {
		o := exchangeFailure(err)
		failure := o.name
		if o.resp.StatusCode >= 500 || o.resp.StatusCode == http.StatusTooManyRequests {
			failure = "" // retryable: WeChat did not use the code
		}
		h.Store.Release(ctx, claim, failure)
		return o
	}

	presented := ""
	if pid, _, err := httpapi.FindSessionID(req.Headers, req.Cookies); err == nil {
		presented = session.Hash(pid)
	}
	s, ended, err := h.Store.Issue(ctx, dynamostore.IssueInput{
		Claim: claim, AppID: appid, Identity: ident,
		DeviceID: in.deviceID, Device: in.device, SourceIP: req.RequestContext.HTTP.SourceIP,
		Presented: presented, Policy: policy,
	})
	switch {
	case errors.Is(err, dynamostore.ErrTooManySessions):
		h.Store.Release(ctx, claim, "too_many_sessions")
		o := tooManySessions(err)
		o.openid = ident.OpenID
		return o
	case errors.Is(err, dynamostore.ErrBanned):
		h.Store.Release(ctx, claim, codeUserBanned)
		o := bannedFailure(err)
		o.openid = ident.OpenID
		return o
	case errors.Is(err, dynamostore.ErrSuperseded):
		// A ban that ran while this login was under way ended its claim
		// (docs/design.md §8.5): say so, rather than "superseded".
		if ended, lerr := h.Store.Lookup(ctx, session.Hash(id)); lerr == nil && ended.EndedReason == session.ReasonBanned {
			o := bannedFailure(err)
			o.openid = ident.OpenID
			return o
		}
		o := fail(http.StatusConflict, "login_superseded", "a newer login from this device replaced this one", slog.LevelInfo, err)
		o.openid = ident.OpenID
		return o
	case err != nil:
		// WeChat has used the code: a retry with it gets code_used, and
		// the client calls wx.login() again.
		h.Store.Release(ctx, claim, "")
		o := storeFailure(err)
		o.openid = ident.OpenID
		return o
	}
	o := h.answer(id, s)
	o.ended = ended
	return o
}

// answer is the 200 for session s, whose id is id.
func (h *Handler) answer(id string, s session.Session) outcome {
	// expires_at is whole seconds, so round the remainder up: a 336h TTL
	// reads 1209600, not 1209599.
	expiresIn := int64((s.ExpiresAt.Sub(h.now()) + time.Second - 1) / time.Second)
	if expiresIn < 0 {
		expiresIn = 0
	}
	resp := httpapi.JSON(http.StatusOK, Response{
		SessionID: id,
		TokenType: "Bearer",
		ExpiresAt: s.ExpiresAt.UTC().Format(time.RFC3339),
		ExpiresIn: expiresIn,
		OpenID:    s.OpenID,
	})
	resp.Cookies = []string{httpapi.SessionCookie(id, time.Duration(expiresIn)*time.Second)}
	return outcome{resp: resp, name: outcomeOK, level: slog.LevelInfo, openid: s.OpenID, sid: s.Hash}
}

// claimFailure maps what Claim says about a duplicate code.
func claimFailure(err error) outcome {
	var failed *dynamostore.FailedError
	switch {
	case errors.As(err, &failed):
		return failedAgain(failed.Code, err)
	case errors.Is(err, dynamostore.ErrDeviceMismatch):
		return fail(http.StatusConflict, "code_device_mismatch", "this login code was already used from another device; call wx.login() again", slog.LevelWarn, err)
	case errors.Is(err, dynamostore.ErrCodeSpent):
		return exchangeFailure(wechat.ErrCodeUsed)
	case errors.Is(err, dynamostore.ErrClaimPending):
		o := fail(http.StatusServiceUnavailable, "login_in_progress", "a login with this code is still under way, try again", slog.LevelWarn, err)
		o.resp = httpapi.WithRetryAfter(o.resp, RetryAfterStore)
		return o
	default:
		return storeFailure(err)
	}
}

// tooManySessions is the answer of SESSION_OVERFLOW=reject_new at the cap.
func tooManySessions(err error) outcome {
	return fail(http.StatusConflict, "too_many_sessions", "this account has the maximum number of sessions; log out on another device first", slog.LevelInfo, err)
}

// storeFailure answers a store error: 503 store_unavailable with
// Retry-After when the store could not answer now; else 500
// server_misconfigured, logged as an alert (a missing table or denied
// access does not heal by retrying).
func storeFailure(err error) outcome {
	if !errors.Is(err, session.ErrUnavailable) {
		o := fail(http.StatusInternalServerError, "server_misconfigured", "the server's session store is misconfigured", slog.LevelError, err)
		o.alert = true
		return o
	}
	o := fail(http.StatusServiceUnavailable, "store_unavailable", "the session store is unavailable, try again", slog.LevelError, err)
	o.resp = httpapi.WithRetryAfter(o.resp, RetryAfterStore)
	return o
}

// codeUserBanned is the error code of a banned user's login.
const codeUserBanned = "user_banned"

// BannedBody is the body of 403 user_banned: the error, and the end of the
// ban when it has one (docs/design.md §8.5).
type BannedBody struct {
	httpapi.ErrorBody
	// Until is the end of the ban, RFC 3339; absent when it lasts until
	// lifted (and on a duplicate of the code, which does not read it).
	Until string `json:"until,omitempty"`
}

// bannedFailure is the 403 user_banned answer: nothing was issued.
func bannedFailure(err error) outcome {
	body := BannedBody{ErrorBody: httpapi.ErrorBody{Error: codeUserBanned, Message: "this account is banned"}}
	var be *dynamostore.BannedError
	if errors.As(err, &be) && !be.Until.IsZero() {
		body.Until = be.Until.UTC().Format(time.RFC3339)
		body.Message = "this account is banned until " + body.Until
	}
	return outcome{resp: httpapi.JSON(http.StatusForbidden, body), name: codeUserBanned, level: slog.LevelInfo, err: err}
}

// failedAgain answers a duplicate of a code whose first login failed for
// good the way the first one was answered.
func failedAgain(code string, err error) outcome {
	switch code {
	case "invalid_code":
		return exchangeFailure(wechat.ErrInvalidCode)
	case "code_used":
		return exchangeFailure(wechat.ErrCodeUsed)
	case "user_blocked":
		return exchangeFailure(wechat.ErrUserBlocked)
	case "server_misconfigured":
		return exchangeFailure(wechat.ErrMisconfigured)
	case "too_many_sessions":
		return tooManySessions(err)
	case codeUserBanned:
		return bannedFailure(err)
	}
	return exchangeFailure(wechat.ErrCodeUsed)
}

// parseRequest decodes and validates the body; msg is the client-facing
// reason when it is not acceptable.
func parseRequest(body []byte) (in input, msg string) {
	var r request
	if err := httpapi.DecodeObject(body, &r); err != nil {
		return input{}, err.Error()
	}
	if r.Code == nil {
		return input{}, `field "code" is required`
	}
	c := *r.Code
	if len(c) == 0 || len(c) > MaxCodeLength {
		return input{}, `field "code" must be 1 to 128 characters`
	}
	if !wechat.ValidCodeChars(c) {
		return input{}, `field "code" may only contain A-Z, a-z, 0-9, "_" and "-"`
	}
	in.code = c
	if r.AppID != nil {
		if !config.ValidAppID(*r.AppID) {
			return input{}, `field "appid" must be 1 to 32 characters of A-Z, a-z and 0-9`
		}
		in.appid = *r.AppID
	}
	if r.DeviceID != nil {
		if !session.ValidDeviceID(*r.DeviceID) {
			return input{}, `field "device_id" must be 16 to 64 characters of A-Z, a-z, 0-9, "_" and "-"`
		}
		in.deviceID = *r.DeviceID
	}
	if r.Device != nil {
		if err := r.Device.Validate(); err != nil {
			return input{}, err.Error()
		}
		in.device = *r.Device
	}
	return in, ""
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
