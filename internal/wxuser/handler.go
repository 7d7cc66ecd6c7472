// Package wxuser serves the routes that need WeChat's server APIs or the
// user's session_key (docs/design.md §7), in the wechat function:
//
//	POST   /me/phone               {"code"} (getPhoneNumber button) or {"encryptedData","iv"} -> the phone, bound to the user
//	GET    /me/phone               the bound phone, 404 phone_not_bound
//	DELETE /me/phone               204
//	POST   /me/decrypt             {"encryptedData","iv"} -> the data, watermark checked and removed
//	GET    /me/session-key         {"valid": bool} (checksession)
//	POST   /me/session-key/reset   204 (resetusersessionkey; the new key is stored, never returned)
//
// The user comes from the authorizer's principal only; every per-user item
// is keyed by the user key "<appid>#<openid>".
package wxuser

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/internal/wxtoken"
	"github.com/wxsession/wxsession/session"
	"github.com/wxsession/wxsession/wxapi"
)

// MaxBodyBytes is the largest accepted body (encryptedData of up to 16 KiB
// plus the rest).
const MaxBodyBytes = 20 << 10

// DeadlineMargin is the part of the invocation's deadline kept for
// answering (as the login's).
const DeadlineMargin = 750 * time.Millisecond

// Route keys.
const (
	RoutePostPhone       = "POST /me/phone"
	RouteGetPhone        = "GET /me/phone"
	RouteDeletePhone     = "DELETE /me/phone"
	RouteDecrypt         = "POST /me/decrypt"
	RouteSessionKey      = "GET /me/session-key"
	RouteResetSessionKey = "POST /me/session-key/reset"
)

// Retry-After values.
const (
	retryAfterWeChat = 2 * time.Second
	retryAfterRate   = 60 * time.Second
	retryAfterStore  = 1 * time.Second
	// codeLease bounds one exchange of a phone code (WeChat's call with its
	// retries, the quota and the binding).
	codeLease = 15 * time.Second
)

// WeChat calls WeChat server APIs with the shared token (*wxapi.Client).
type WeChat interface {
	Do(ctx context.Context, c wxapi.Call) (wxapi.Bytes, error)
}

// Handler serves the routes. Build it once per process.
type Handler struct {
	// WeChat calls WeChat for the default app (AppID); Apps, when set,
	// for each app served, by appid (docs/design.md §7.9): a request uses
	// its principal's app's client, so its token and its app's phone
	// quota. A session of an app not in Apps is answered 403 unknown_app.
	WeChat WeChat
	Apps   map[string]WeChat
	Store  *Store
	// AppID is the mini-program's appid (watermarks must name it).
	AppID string
	// PhoneUnique: one user per number (PHONE_UNIQUE).
	PhoneUnique bool
	// LookupsPerDay: paid lookups per user per day, China time.
	LookupsPerDay int
	// WatermarkMaxAge: how old a watermark may be.
	WatermarkMaxAge time.Duration
	Logger          *slog.Logger
	// Audit gets phone_lookup, phone_bound and phone_unbound; Metrics one
	// PhoneLookups line per getuserphonenumber call. Nil writes nothing.
	Audit   *audit.Logger
	Metrics *metrics.Emitter
	Now     func() time.Time
}

// wechat is the client of p's app.
func (h *Handler) wechat(p session.Principal) WeChat {
	if wx, ok := h.Apps[p.AppID]; ok {
		return wx
	}
	return h.WeChat
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// Handle routes one request. It always returns a nil error.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	route := httpapi.RouteKey(req)
	var serve func(context.Context, events.APIGatewayV2HTTPRequest, session.Principal) events.APIGatewayV2HTTPResponse
	switch route {
	case RoutePostPhone:
		serve = h.postPhone
	case RouteGetPhone:
		serve = h.getPhone
	case RouteDeletePhone:
		serve = h.deletePhone
	case RouteDecrypt:
		serve = h.decrypt
	case RouteSessionKey:
		serve = h.checkSessionKey
	case RouteResetSessionKey:
		serve = h.resetSessionKey
	default:
		return httpapi.Error(http.StatusNotFound, "not_found", "no such route"), nil
	}
	p, err := session.FromRequest(req)
	if err != nil || p.OpenID == "" {
		h.log().ErrorContext(ctx, "request without a principal: is the route behind the wxsession authorizer?", "route", route)
		return httpapi.Error(http.StatusUnauthorized, "unauthenticated", "no session"), nil
	}
	if p.AppID == "" {
		p.AppID = h.AppID
	}
	if _, ok := h.Apps[p.AppID]; h.Apps != nil && !ok {
		h.log().WarnContext(ctx, "session of an app this deployment does not serve", "appid", p.AppID, "route", route)
		return httpapi.Error(http.StatusForbidden, "unknown_app", "this deployment does not serve the session's mini-program"), nil
	}
	ctx = context.WithValue(ctx, sourceIPKey{}, req.RequestContext.HTTP.SourceIP)
	// Leave DeadlineMargin of the invocation to answer: a slow WeChat or a
	// wait for another instance's token refresh then ends in a 503 with
	// Retry-After, not a Lambda timeout.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-DeadlineMargin))
		defer cancel()
	}
	return serve(ctx, req, p), nil
}

// phoneInput is the POST /me/phone body: a code, or encrypted data.
type phoneInput struct {
	Code          *string `json:"code"`
	EncryptedData *string `json:"encryptedData"`
	IV            *string `json:"iv"`
}

// encryptedInput is the POST /me/decrypt body.
type encryptedInput struct {
	EncryptedData *string `json:"encryptedData"`
	IV            *string `json:"iv"`
}

func readBody(req events.APIGatewayV2HTTPRequest, v any) *events.APIGatewayV2HTTPResponse {
	body, err := httpapi.Body(req, MaxBodyBytes)
	var resp events.APIGatewayV2HTTPResponse
	switch {
	case errors.Is(err, httpapi.ErrBodyTooLarge):
		resp = httpapi.Error(http.StatusRequestEntityTooLarge, "payload_too_large", "request body is larger than 20 KiB")
	case err != nil:
		resp = httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error())
	default:
		if err := httpapi.DecodeObject(body, v); err != nil {
			resp = httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error())
		} else {
			return nil
		}
	}
	return &resp
}

func invalid(msg string) events.APIGatewayV2HTTPResponse {
	return httpapi.Error(http.StatusBadRequest, "invalid_request", msg)
}

// validCode accepts 1-128 characters of [A-Za-z0-9_-] (WeChat's codes are
// 32 or 64).
func validCode(c string) bool {
	return len(c) > 0 && len(c) <= 128 && wechat.ValidCodeChars(c)
}

func (h *Handler) postPhone(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	in, fail := parsePhone(req)
	switch {
	case fail != nil:
		return *fail
	case in.Code != nil:
		return h.phoneByCode(ctx, p, *in.Code)
	default:
		return h.phoneByEncryptedData(ctx, p, *in.EncryptedData, *in.IV)
	}
}

// parsePhone reads and checks a POST /me/phone body: either a valid code,
// or encryptedData and iv (their shape is checked later, by
// ParseCiphertext).
func parsePhone(req events.APIGatewayV2HTTPRequest) (phoneInput, *events.APIGatewayV2HTTPResponse) {
	var in phoneInput
	if r := readBody(req, &in); r != nil {
		return in, r
	}
	fail := func(msg string) (phoneInput, *events.APIGatewayV2HTTPResponse) {
		r := invalid(msg)
		return in, &r
	}
	switch {
	case in.Code != nil && (in.EncryptedData != nil || in.IV != nil):
		return fail(`send either "code" or "encryptedData" and "iv", not both`)
	case in.Code != nil:
		if !validCode(*in.Code) {
			return fail(`field "code" must be 1 to 128 characters of A-Z, a-z, 0-9, "_" and "-"`)
		}
		return in, nil
	case in.EncryptedData != nil && in.IV != nil:
		return in, nil
	default:
		return fail(`field "code" (or "encryptedData" and "iv") is required`)
	}
}

// phoneByCode exchanges a getPhoneNumber code (a paid lookup), once per
// code: the same code again within 5 minutes gets the same answer from the
// code's record, without a second call. The record is written (with the
// phone) as soon as WeChat has answered and before the binding, so a
// binding that fails on the store is redone by the retry, not paid twice.
func (h *Handler) phoneByCode(ctx context.Context, p session.Principal, code string) events.APIGatewayV2HTTPResponse {
	user := p.UserKey()
	for wait := 0; ; wait++ {
		rec, started, err := h.Store.StartCode(ctx, user, code, codeLease)
		if err != nil {
			return h.storeError(ctx, "start code", err)
		}
		if started {
			break
		}
		if rec.State == "done" {
			if rec.Phone.PurePhoneNumber != "" {
				return h.bind(ctx, p, user, rec.Phone)
			}
			return invalidCode()
		}
		if !pause(ctx, wait) { // another request is exchanging this code
			return wechatUnavailable()
		}
	}
	ph, resp, remember := h.lookupPhone(ctx, p, user, code)
	if !remember {
		h.Store.AbandonCode(ctx, user, code)
		return resp
	}
	if err := h.Store.FinishCode(ctx, user, code, CodeRecord{Phone: ph}); err != nil {
		h.log().WarnContext(ctx, "phone code answer not remembered", "error", err.Error())
	}
	if ph.PurePhoneNumber == "" {
		return resp
	}
	return h.bind(ctx, p, user, ph)
}

// lookupPhone counts and makes the paid getuserphonenumber call. It
// returns the phone, or the answer to give; remember says whether the
// outcome is final for this code (a phone, or WeChat's 40029).
func (h *Handler) lookupPhone(ctx context.Context, p session.Principal, user, code string) (Phone, events.APIGatewayV2HTTPResponse, bool) {
	lookup, err := h.Store.ReserveLookup(ctx, user, h.LookupsPerDay)
	switch {
	case errors.Is(err, ErrLookupLimited):
		h.log().InfoContext(ctx, "phone lookup refused: daily limit", "openid", session.MaskOpenID(p.OpenID), "limit", h.LookupsPerDay)
		return Phone{}, httpapi.WithRetryAfter(httpapi.Error(http.StatusTooManyRequests, "phone_lookup_limited",
			"this user's phone number lookups for today are used up"), untilChinaMidnight(h.now())), false
	case err != nil:
		return Phone{}, h.storeError(ctx, "count lookup", err), false
	}
	var out struct {
		PhoneInfo struct {
			PhoneNumber     string `json:"phoneNumber"`
			PurePhoneNumber string `json:"purePhoneNumber"`
			CountryCode     string `json:"countryCode"`
		} `json:"phone_info"`
	}
	body, _ := json.Marshal(map[string]string{"code": code, "openid": p.OpenID})
	start := h.now()
	b, err := h.wechat(p).Do(ctx, wxapi.Call{Method: http.MethodPost, Path: "/wxa/business/getuserphonenumber",
		Body: json.RawMessage(body), Redact: []string{code}, ConsumedErrcodes: []int{wechat.CodeInvalidCode}})
	if err == nil && (json.Unmarshal(b.Data, &out) != nil || !plausiblePhone(out.PhoneInfo.PurePhoneNumber, out.PhoneInfo.CountryCode)) {
		err = fmt.Errorf("getuserphonenumber answer without a phone number: %w", wechat.ErrUnavailable)
	}
	if err != nil {
		h.Store.RefundLookup(ctx, user, lookup)
		var apiErr *wxapi.Error
		final := errors.As(err, &apiErr) && apiErr.Code == wechat.CodeInvalidCode
		resp := h.wechatError(ctx, "getuserphonenumber", err)
		h.Metrics.PhoneLookup(ctx, errorCode(resp))
		return Phone{}, resp, final
	}
	ph := Phone{PhoneNumber: out.PhoneInfo.PhoneNumber, PurePhoneNumber: out.PhoneInfo.PurePhoneNumber, CountryCode: out.PhoneInfo.CountryCode}
	h.log().LogAttrs(ctx, slog.LevelInfo, "phone lookup",
		slog.Bool("paid", true),
		slog.String("openid", session.MaskOpenID(p.OpenID)), slog.String("phone", ph.Masked()),
		slog.String("day", lookup.Day), slog.Int64("duration_ms", h.now().Sub(start).Milliseconds()))
	h.Metrics.PhoneLookup(ctx, metrics.OutcomeOK)
	h.Audit.Record(ctx, audit.Record{Event: audit.PhoneLookup, AppID: p.AppID, OpenID: p.OpenID, SID: p.SID, SourceIP: sourceIP(ctx)})
	return ph, events.APIGatewayV2HTTPResponse{}, true
}

func phoneInUse() events.APIGatewayV2HTTPResponse {
	return httpapi.Error(http.StatusConflict, "phone_in_use", "this phone number is bound to another user")
}

func invalidCode() events.APIGatewayV2HTTPResponse {
	return httpapi.Error(http.StatusBadRequest, "invalid_code", "the phone code is invalid, expired or used; ask the user again")
}

func wechatUnavailable() events.APIGatewayV2HTTPResponse {
	return httpapi.WithRetryAfter(httpapi.Error(http.StatusServiceUnavailable, "wechat_unavailable", "WeChat is unavailable, try again"), retryAfterWeChat)
}

func plausiblePhone(pure, cc string) bool {
	return digitsOnly(pure, 4, 20) && digitsOnly(cc, 1, 4)
}

func digitsOnly(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// bind binds ph to the user and answers the phone.
func (h *Handler) bind(ctx context.Context, p session.Principal, user string, ph Phone) events.APIGatewayV2HTTPResponse {
	err := h.Store.Bind(ctx, user, p.AppID, ph, h.PhoneUnique)
	switch {
	case errors.Is(err, ErrPhoneInUse):
		h.log().InfoContext(ctx, "phone bind refused: number in use", "openid", session.MaskOpenID(p.OpenID), "phone", ph.Masked())
		return phoneInUse()
	case err != nil:
		return h.storeError(ctx, "bind phone", err)
	}
	h.log().InfoContext(ctx, "phone bound", "openid", session.MaskOpenID(p.OpenID), "phone", ph.Masked())
	h.Audit.Record(ctx, audit.Record{Event: audit.PhoneBound, AppID: p.AppID, OpenID: p.OpenID, SID: p.SID, SourceIP: sourceIP(ctx)})
	return httpapi.JSON(http.StatusOK, ph)
}

// open decrypts encrypted data with the user's latest session_key and
// checks the watermark; resp is set on failure.
func (h *Handler) open(ctx context.Context, p session.Principal, encryptedData, iv string) (map[string]json.RawMessage, *events.APIGatewayV2HTTPResponse) {
	fail := func(r events.APIGatewayV2HTTPResponse) (map[string]json.RawMessage, *events.APIGatewayV2HTTPResponse) {
		return nil, &r
	}
	ct, err := ParseCiphertext(encryptedData, iv)
	if err != nil {
		return fail(invalid("encryptedData and iv must be standard base64: iv 16 bytes, encryptedData whole 16-byte blocks of at most 16 KiB"))
	}
	key, err := h.Store.SessionKey(ctx, p.AppID, p.OpenID)
	if errors.Is(err, ErrNotFound) {
		return fail(sessionKeyStale())
	}
	if err != nil {
		return fail(h.storeError(ctx, "read session_key", err))
	}
	obj, err := ct.Open(key)
	if err != nil {
		h.log().InfoContext(ctx, "encrypted data refused: stale session_key", "openid", session.MaskOpenID(p.OpenID))
		return fail(sessionKeyStale())
	}
	data, err := CheckWatermark(obj, p.AppID, h.now(), h.WatermarkMaxAge)
	if err != nil {
		h.log().InfoContext(ctx, "encrypted data refused: watermark", "openid", session.MaskOpenID(p.OpenID))
		return fail(httpapi.Error(http.StatusUnprocessableEntity, "watermark_mismatch",
			"the data's watermark names another app or is too old; get it again"))
	}
	return data, nil
}

func sessionKeyStale() events.APIGatewayV2HTTPResponse {
	return httpapi.Error(http.StatusConflict, "session_key_stale",
		"the data was not encrypted with this user's latest session_key; call wx.login() and POST /login, then get the data again")
}

func (h *Handler) phoneByEncryptedData(ctx context.Context, p session.Principal, encryptedData, iv string) events.APIGatewayV2HTTPResponse {
	data, fail := h.open(ctx, p, encryptedData, iv)
	if fail != nil {
		return *fail
	}
	var ph struct {
		PhoneNumber     string `json:"phoneNumber"`
		PurePhoneNumber string `json:"purePhoneNumber"`
		CountryCode     string `json:"countryCode"`
	}
	raw, _ := json.Marshal(data)
	if json.Unmarshal(raw, &ph) != nil || !plausiblePhone(ph.PurePhoneNumber, ph.CountryCode) {
		return invalid("the encrypted data holds no phone number")
	}
	return h.bind(ctx, p, p.UserKey(), Phone{PhoneNumber: ph.PhoneNumber, PurePhoneNumber: ph.PurePhoneNumber, CountryCode: ph.CountryCode})
}

func (h *Handler) decrypt(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	var in encryptedInput
	if r := readBody(req, &in); r != nil {
		return *r
	}
	if in.EncryptedData == nil || in.IV == nil {
		return invalid(`fields "encryptedData" and "iv" are required`)
	}
	data, fail := h.open(ctx, p, *in.EncryptedData, *in.IV)
	if fail != nil {
		return *fail
	}
	h.log().InfoContext(ctx, "encrypted data opened", "openid", session.MaskOpenID(p.OpenID), "fields", len(data))
	return httpapi.JSON(http.StatusOK, data)
}

func (h *Handler) getPhone(ctx context.Context, _ events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	ph, err := h.Store.Phone(ctx, p.UserKey())
	switch {
	case errors.Is(err, ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "phone_not_bound", "no phone number is bound to this user")
	case err != nil:
		return h.storeError(ctx, "read phone", err)
	}
	return httpapi.JSON(http.StatusOK, ph)
}

func (h *Handler) deletePhone(ctx context.Context, _ events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	old, had, err := h.Store.Unbind(ctx, p.UserKey(), p.AppID)
	if err != nil {
		return h.storeError(ctx, "unbind phone", err)
	}
	if had {
		h.log().InfoContext(ctx, "phone unbound", "openid", session.MaskOpenID(p.OpenID), "phone", old.Masked())
		h.Audit.Record(ctx, audit.Record{Event: audit.PhoneUnbound, AppID: p.AppID, OpenID: p.OpenID, SID: p.SID, SourceIP: sourceIP(ctx)})
	}
	return httpapi.NoContent()
}

// signedQuery is the checksession/resetusersessionkey query for key.
func signedQuery(openid, key string) (url.Values, string) {
	sig := wechatSignature(key)
	return url.Values{"openid": {openid}, "signature": {sig}, "sig_method": {"hmac_sha256"}}, sig
}

func (h *Handler) checkSessionKey(ctx context.Context, _ events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	key, err := h.Store.SessionKey(ctx, p.AppID, p.OpenID)
	if errors.Is(err, ErrNotFound) {
		return httpapi.JSON(http.StatusOK, map[string]bool{"valid": false})
	}
	if err != nil {
		return h.storeError(ctx, "read session_key", err)
	}
	q, sig := signedQuery(p.OpenID, key)
	_, err = h.wechat(p).Do(ctx, wxapi.Call{Method: http.MethodGet, Path: "/wxa/checksession", Query: q, Redact: []string{sig, key}})
	var apiErr *wxapi.Error
	switch {
	case err == nil:
		return httpapi.JSON(http.StatusOK, map[string]bool{"valid": true})
	case errors.As(err, &apiErr) && apiErr.Code == wechat.CodeInvalidSignature:
		return httpapi.JSON(http.StatusOK, map[string]bool{"valid": false})
	}
	return h.wechatError(ctx, "checksession", err)
}

func (h *Handler) resetSessionKey(ctx context.Context, _ events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	key, err := h.Store.SessionKey(ctx, p.AppID, p.OpenID)
	if errors.Is(err, ErrNotFound) {
		return sessionKeyStale()
	}
	if err != nil {
		return h.storeError(ctx, "read session_key", err)
	}
	q, sig := signedQuery(p.OpenID, key)
	b, err := h.wechat(p).Do(ctx, wxapi.Call{Method: http.MethodGet, Path: "/wxa/resetusersessionkey", Query: q,
		Redact: []string{sig, key}, ConsumedErrcodes: []int{wechat.CodeInvalidSignature}})
	var apiErr *wxapi.Error
	if errors.As(err, &apiErr) && apiErr.Code == wechat.CodeInvalidSignature {
		return sessionKeyStale()
	}
	if err != nil {
		return h.wechatError(ctx, "resetusersessionkey", err)
	}
	var out struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}
	if json.Unmarshal(b.Data, &out) != nil || out.SessionKey == "" || len(out.SessionKey) > 256 || (out.OpenID != "" && out.OpenID != p.OpenID) {
		h.log().WarnContext(ctx, "resetusersessionkey answer without a session_key")
		return wechatUnavailable()
	}
	replaced, err := h.Store.SetSessionKey(ctx, p.AppID, p.OpenID, key, out.SessionKey)
	if err != nil {
		return h.storeError(ctx, "write session_key", err)
	}
	h.log().InfoContext(ctx, "session_key reset", "openid", session.MaskOpenID(p.OpenID), "stored", replaced)
	return httpapi.NoContent()
}

// wechatError maps a WeChat call's error to the answer (docs/design.md §7).
func (h *Handler) wechatError(ctx context.Context, api string, err error) events.APIGatewayV2HTTPResponse {
	var apiErr *wxapi.Error
	code := 0
	if errors.As(err, &apiErr) {
		code = apiErr.Code
	}
	log := h.log().With("api", api, "errcode", code, "error", err.Error())
	switch {
	case code == wechat.CodePhoneQuota:
		log.ErrorContext(ctx, "WeChat phone number quota exhausted", "alert", true)
		return httpapi.WithRetryAfter(httpapi.Error(http.StatusServiceUnavailable, "phone_quota_exhausted",
			"the app's phone number quota at WeChat is used up"), retryAfterRate)
	case errors.Is(err, wechat.ErrInvalidCode):
		log.InfoContext(ctx, "WeChat refused the code")
		return invalidCode()
	case errors.Is(err, wechat.ErrRateLimited):
		log.WarnContext(ctx, "WeChat rate limit")
		return httpapi.WithRetryAfter(httpapi.Error(http.StatusTooManyRequests, "rate_limited", "too many requests, try again later"), retryAfterRate)
	case errors.Is(err, wechat.ErrMisconfigured):
		log.ErrorContext(ctx, "WeChat refused our credentials or address (IP whitelist?)", "alert", true)
		return httpapi.Error(http.StatusInternalServerError, "server_misconfigured", "the server's WeChat credentials are misconfigured")
	}
	log.WarnContext(ctx, "WeChat unavailable")
	return wechatUnavailable()
}

func (h *Handler) storeError(ctx context.Context, op string, err error) events.APIGatewayV2HTTPResponse {
	if !errors.Is(err, session.ErrUnavailable) {
		h.log().ErrorContext(ctx, "store error", "op", op, "error", err.Error(), "alert", true)
		return httpapi.Error(http.StatusInternalServerError, "server_misconfigured", "the server's data store is misconfigured")
	}
	h.log().ErrorContext(ctx, "store error", "op", op, "error", err.Error())
	return httpapi.WithRetryAfter(
		httpapi.Error(http.StatusServiceUnavailable, "store_unavailable", "the data store is unavailable, try again"),
		retryAfterStore)
}

// errorCode is the "error" field of an error answer.
func errorCode(resp events.APIGatewayV2HTTPResponse) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(resp.Body), &e)
	return e.Error
}

// sourceIP is the client's address, carried in ctx by Handle.
func sourceIP(ctx context.Context) string {
	ip, _ := ctx.Value(sourceIPKey{}).(string)
	return ip
}

type sourceIPKey struct{}

// untilChinaMidnight is the time left until the next day in UTC+8.
func untilChinaMidnight(now time.Time) time.Duration {
	c := now.In(chinaTime)
	next := time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, chinaTime)
	return next.Sub(now).Round(time.Second)
}

// pause waits before polling a code record again (wxtoken.Poll's delays)
// unless ctx ends.
func pause(ctx context.Context, n int) bool {
	return wxtoken.Poll.Wait(ctx, n+1) == nil
}

// wechatSignature is WeChat's user-state signature:
// hex(hmac_sha256(key = session_key, message = "")).
func wechatSignature(sessionKey string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	return hex.EncodeToString(m.Sum(nil))
}
