// Package api is wxsession's business function: the routes behind the
// authorizer (docs/design.md §2). It reads the user only through
// session.FromRequest, the equivalent of CloudBase's cloud.getWXContext().
//
//	GET  /me                 the principal, from the authorizer context only
//	GET  /me/profile         the user's profile
//	PUT  /me/profile         replace the user's profile
//	POST /logout             end this session (reason logged_out)
//	POST /logout?scope=all   end every session of this user (logged_out_all)
//	GET  /me/sessions        the user's active sessions (devices), paginated
//	DELETE /me/sessions/{sid} end one of them (revoked)
//	GET  /session            (no authorizer) the state of the presented session
//	DELETE /me               delete the account (account_deleted)
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/profile"
	"github.com/wxsession/wxsession/session"
)

// RetryAfterStore is the Retry-After sent with 503 store_unavailable.
const RetryAfterStore = 1 * time.Second

// Route keys served by Handler (API Gateway's routeKey).
const (
	RouteMe         = "GET /me"
	RouteGetProfile = "GET /me/profile"
	RoutePutProfile = "PUT /me/profile"
	RouteLogout     = "POST /logout"
	// RouteListSessions lists the caller's active sessions (devices).
	RouteListSessions = "GET /me/sessions"
	// RouteDeleteSession ends one of the caller's sessions by its sid.
	RouteDeleteSession = "DELETE /me/sessions/{sid}"
	// RouteSession answers the holder of an id whether it is active, and
	// if not why (no authorizer).
	RouteSession = "GET /session"
	// RouteDeleteMe deletes the caller's account (docs/design.md §8.6).
	RouteDeleteMe = "DELETE /me"
)

// AccountDeleter deletes a user's account: sessions, data, user record
// (implemented by *account.Deleter). It returns how many sessions ended.
type AccountDeleter interface {
	Delete(ctx context.Context, appID, openID string) (int, error)
}

// RetryAfterIncomplete is the Retry-After of 503 logout_incomplete.
const RetryAfterIncomplete = 1 * time.Second

// SessionStore reads and ends sessions (implemented by
// *dynamostore.Store; see there for the exact semantics).
type SessionStore interface {
	// Get returns the active session stored under hash, or
	// session.ErrNotFound.
	Get(ctx context.Context, hash string) (session.Session, error)
	// Lookup returns what is known of the session under hash, ended or
	// not, or session.ErrNotFound.
	Lookup(ctx context.Context, hash string) (session.Session, error)
	// ListSessions returns a page of user's active sessions, newest first,
	// and the next page's cursor.
	ListSessions(ctx context.Context, user, cursor string, limit int) ([]session.Session, string, error)
	// EndSession tombstones one session with reason.
	EndSession(ctx context.Context, hash string, reason session.Reason) (bool, error)
	// EndUserSessions tombstones every session of user, last at the end;
	// dynamostore.ErrIncomplete when time ran out.
	EndUserSessions(ctx context.Context, user string, reason session.Reason, last string) (int, error)
}

// ProfileStore reads and writes profiles (implemented by *profile.Store).
type ProfileStore interface {
	Get(ctx context.Context, openid string) (profile.Profile, error)
	Put(ctx context.Context, openid string, p profile.Profile) (profile.Profile, error)
}

// Handler serves the business routes. Build it once per process.
type Handler struct {
	// Sessions lists and deletes the caller's sessions.
	Sessions SessionStore
	// Profiles stores profiles.
	Profiles ProfileStore
	// Logger gets errors and one DEBUG line per request; nil means
	// slog.Default().
	Logger *slog.Logger
	// Audit gets the security events (logged_out, logged_out_all,
	// session_revoked; docs/design.md §8); nil writes nothing.
	Audit *audit.Logger
	// Metrics counts the sessions ended, by reason; nil writes nothing.
	Metrics *metrics.Emitter
	// MaxLifetime is SESSION_TTL: GET /session calls a session whose
	// expiry lies beyond it from creation unknown, as the authorizer
	// refuses it. 0 means session.DefaultTTL.
	MaxLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Accounts serves DELETE /me; nil answers it 404 like an unknown route.
	Accounts AccountDeleter
}

// ended records that n sessions of p ended: the audit event and the
// SessionsEnded metric (reason is the session end reason).
func (h *Handler) ended(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal, ev audit.Event, reason, sid string, n int) {
	h.Metrics.SessionsEnded(ctx, reason, n)
	h.Audit.Record(ctx, audit.Record{Event: ev, AppID: p.AppID, OpenID: p.OpenID, SID: sid, Reason: reason,
		SourceIP: req.RequestContext.HTTP.SourceIP, Count: n})
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// MeResponse is the body of GET /me.
type MeResponse struct {
	OpenID  string    `json:"openid"`
	UnionID string    `json:"unionid"`
	AppID   string    `json:"appid"`
	Session MeSession `json:"session"`
}

// MeSession describes the caller's session in GET /me.
type MeSession struct {
	ExpiresAt string `json:"expires_at"`
}

// SessionsResponse is the body of GET /me/sessions.
type SessionsResponse struct {
	Sessions []SessionInfo `json:"sessions"`
	// NextCursor, when present, fetches the next page
	// (GET /me/sessions?cursor=...).
	NextCursor string `json:"next_cursor,omitempty"`
}

// SessionInfo describes one active session (one device) of the caller.
type SessionInfo struct {
	// SID is the stored hash of the session id: it names the session for
	// DELETE /me/sessions/{sid} and cannot be used to authenticate.
	SID string `json:"sid"`
	// Current is true for the session that made this request.
	Current      bool   `json:"current"`
	CreatedAt    string `json:"created_at"`
	LastActiveAt string `json:"last_active_at"`
	ExpiresAt    string `json:"expires_at"`
	// IdleExpiresAt is present when the idle clock is on.
	IdleExpiresAt string         `json:"idle_expires_at,omitempty"`
	DeviceID      string         `json:"device_id"`
	Device        session.Device `json:"device"`
	SourceIP      string         `json:"source_ip"`
}

// SessionState is the body of GET /session.
type SessionState struct {
	// State is "active", "ended" or "unknown".
	State         string `json:"state"`
	ExpiresAt     string `json:"expires_at,omitempty"`
	IdleExpiresAt string `json:"idle_expires_at,omitempty"`
	// Reason is set when State is "ended" (a session.Reason).
	Reason string `json:"reason,omitempty"`
}

// ProfileResponse is the body of GET and PUT /me/profile.
type ProfileResponse struct {
	OpenID string `json:"openid"`
	profile.Profile
}

// profileInput is the PUT /me/profile body: only the editable fields.
// Missing fields are cleared (PUT replaces the profile).
type profileInput struct {
	Nickname  string `json:"nickname"`
	AvatarURL string `json:"avatar_url"`
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// Handle routes one request by its routeKey. It always returns a nil error:
// every failure is an HTTP answer.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	route := httpapi.RouteKey(req)
	if route == RouteSession {
		return h.sessionState(ctx, req), nil
	}
	var serve func(context.Context, events.APIGatewayV2HTTPRequest, session.Principal) events.APIGatewayV2HTTPResponse
	switch route {
	case RouteMe:
		serve = h.me
	case RouteGetProfile:
		serve = h.getProfile
	case RoutePutProfile:
		serve = h.putProfile
	case RouteLogout:
		serve = h.logout
	case RouteListSessions:
		serve = h.listSessions
	case RouteDeleteSession:
		serve = h.deleteSession
	case RouteDeleteMe:
		if h.Accounts == nil {
			return httpapi.Error(http.StatusNotFound, "not_found", "no such route"), nil
		}
		serve = h.deleteMe
	default:
		return httpapi.Error(http.StatusNotFound, "not_found", "no such route"), nil
	}
	p, err := session.FromRequest(req)
	if err != nil {
		// Only reachable when the route is not behind the authorizer: a
		// deployment error, not a client error.
		h.logger().ErrorContext(ctx, "request without a principal: is the route behind the wxsession authorizer?", "route", route, "error", err.Error())
		return httpapi.Error(http.StatusUnauthorized, "unauthenticated", "no session"), nil
	}
	return serve(ctx, req, p), nil
}

func (h *Handler) me(_ context.Context, _ events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	resp := MeResponse{OpenID: p.OpenID, UnionID: p.UnionID, AppID: p.AppID}
	if !p.ExpiresAt.IsZero() {
		resp.Session.ExpiresAt = p.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return httpapi.JSON(http.StatusOK, resp)
}

func (h *Handler) getProfile(ctx context.Context, _ events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	prof, err := h.Profiles.Get(ctx, p.OpenID)
	if err != nil {
		return h.storeError(ctx, "get profile", err)
	}
	return httpapi.JSON(http.StatusOK, ProfileResponse{OpenID: p.OpenID, Profile: prof})
}

func (h *Handler) putProfile(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	body, err := httpapi.Body(req, httpapi.MaxBodyBytes)
	switch {
	case errors.Is(err, httpapi.ErrBodyTooLarge):
		return httpapi.Error(http.StatusRequestEntityTooLarge, "payload_too_large", httpapi.TooLargeMessage)
	case err != nil:
		return httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error())
	}
	var in profileInput
	if err := httpapi.DecodeObject(body, &in); err != nil {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error())
	}
	prof := profile.Profile{Nickname: in.Nickname, AvatarURL: in.AvatarURL}
	if err := prof.Validate(); err != nil {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error())
	}
	stored, err := h.Profiles.Put(ctx, p.OpenID, prof)
	switch {
	case errors.Is(err, profile.ErrInvalid):
		return httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error())
	case err != nil:
		return h.storeError(ctx, "put profile", err)
	}
	return httpapi.JSON(http.StatusOK, ProfileResponse{OpenID: p.OpenID, Profile: stored})
}

func (h *Handler) logout(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	if p.SID == "" {
		h.logger().ErrorContext(ctx, "authorizer context has no sid; cannot log out this session")
		return httpapi.Error(http.StatusUnauthorized, "unauthenticated", "no session")
	}
	switch scope := req.QueryStringParameters["scope"]; scope {
	case "":
		if _, err := h.Sessions.EndSession(ctx, p.SID, session.ReasonLoggedOut); err != nil {
			return h.storeError(ctx, "logout", err)
		}
		h.logger().InfoContext(ctx, "logout", "openid", session.MaskOpenID(p.OpenID), "scope", "session")
		h.ended(ctx, req, p, audit.LoggedOut, "logged_out", p.SID, 1)
	case "all":
		n, err := h.Sessions.EndUserSessions(ctx, p.UserKey(), session.ReasonLoggedOutAll, p.SID)
		if errors.Is(err, dynamostore.ErrIncomplete) {
			// The caller's session is ended last, so it can call again.
			h.logger().WarnContext(ctx, "logout all incomplete", "openid", session.MaskOpenID(p.OpenID), "sessions", n)
			return httpapi.WithRetryAfter(httpapi.Error(http.StatusServiceUnavailable, "logout_incomplete",
				fmt.Sprintf("ended %d sessions but not all of them in time; call again to finish", n)), RetryAfterIncomplete)
		}
		if err != nil {
			return h.storeError(ctx, "logout all", err)
		}
		h.logger().InfoContext(ctx, "logout", "openid", session.MaskOpenID(p.OpenID), "scope", "all", "sessions", n)
		h.ended(ctx, req, p, audit.LoggedOutAll, "logged_out_all", p.SID, n)
	default:
		return httpapi.Error(http.StatusBadRequest, "invalid_request", `query parameter "scope" must be "all" or absent`)
	}
	resp := httpapi.NoContent()
	resp.Cookies = []string{httpapi.ClearSessionCookie()}
	return resp
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (h *Handler) listSessions(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	limit := 0
	if v, ok := req.QueryStringParameters["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > dynamostore.MaxListLimit {
			return httpapi.Error(http.StatusBadRequest, "invalid_request", fmt.Sprintf(`query parameter "limit" must be an integer from 1 to %d`, dynamostore.MaxListLimit))
		}
		limit = n
	}
	list, next, err := h.Sessions.ListSessions(ctx, p.UserKey(), req.QueryStringParameters["cursor"], limit)
	if errors.Is(err, dynamostore.ErrInvalidCursor) {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", `query parameter "cursor" is not one this API handed out`)
	}
	if err != nil {
		return h.storeError(ctx, "list sessions", err)
	}
	resp := SessionsResponse{Sessions: make([]SessionInfo, 0, len(list)), NextCursor: next}
	for _, s := range list {
		resp.Sessions = append(resp.Sessions, SessionInfo{
			SID:           s.Hash,
			Current:       s.Hash == p.SID,
			CreatedAt:     rfc3339(s.CreatedAt),
			LastActiveAt:  rfc3339(s.LastActiveAt),
			ExpiresAt:     rfc3339(s.ExpiresAt),
			IdleExpiresAt: rfc3339(s.IdleExpiresAt),
			DeviceID:      s.DeviceID,
			Device:        s.Device,
			SourceIP:      s.SourceIP,
		})
	}
	return httpapi.JSON(http.StatusOK, resp)
}

// deleteSession ends one session of the caller (log out another device,
// reason revoked; the caller's own, logged_out). A sid that is malformed,
// unknown, ended or another user's gets the same 404: the route tells
// nobody which sessions exist.
func (h *Handler) deleteSession(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	sid := req.PathParameters["sid"]
	notFound := httpapi.Error(http.StatusNotFound, "session_not_found", "no such session")
	if !session.ValidID(sid) { // a hash has the same shape as an id
		return notFound
	}
	s, err := h.Sessions.Get(ctx, sid)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return notFound
	case err != nil:
		return h.storeError(ctx, "get session", err)
	case s.User != p.UserKey():
		return notFound
	}
	reason := session.ReasonRevoked
	if sid == p.SID {
		reason = session.ReasonLoggedOut
	}
	if _, err := h.Sessions.EndSession(ctx, sid, reason); err != nil {
		return h.storeError(ctx, "end session", err)
	}
	h.logger().InfoContext(ctx, "logout", "openid", session.MaskOpenID(p.OpenID), "scope", "device", "current", sid == p.SID)
	if sid == p.SID {
		h.ended(ctx, req, p, audit.LoggedOut, "logged_out", sid, 1)
	} else {
		h.ended(ctx, req, p, audit.SessionRevoked, "revoked", sid, 1)
	}
	resp := httpapi.NoContent()
	if sid == p.SID {
		resp.Cookies = []string{httpapi.ClearSessionCookie()}
	}
	return resp
}

// sessionState serves GET /session (docs/design.md §3): the state of the
// session the request carries, with at most one read. It says nothing
// about any other session.
func (h *Handler) sessionState(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	id, err := httpapi.SessionID(req.Headers, req.Cookies)
	if errors.Is(err, httpapi.ErrNoCredentials) {
		return httpapi.Error(http.StatusUnauthorized, "no_session", "the request carries no session (Authorization: Bearer or the sessionid cookie)")
	}
	unknown := httpapi.JSON(http.StatusOK, SessionState{State: "unknown"})
	if err != nil {
		return unknown
	}
	s, err := h.Sessions.Lookup(ctx, session.Hash(id))
	switch {
	case errors.Is(err, session.ErrNotFound):
		return unknown
	case err != nil:
		return h.storeError(ctx, "session state", err)
	}
	if s.EndedReason == "" {
		// Longer than SESSION_TTL: the authorizer refuses it. Made under
		// an earlier, longer SESSION_TTL (lowering it ends longer
		// sessions): ended, expired. Beyond any TTL a login sets: not the
		// login's, unknown (docs/design.md §3).
		switch s.CheckLifetime(h.MaxLifetime) {
		case session.LifetimeShortened:
			return httpapi.JSON(http.StatusOK, SessionState{State: "ended", Reason: string(session.ReasonExpired)})
		case session.LifetimeForged:
			return unknown
		}
	}
	if r := s.EndReason(h.now()); r != "" {
		return httpapi.JSON(http.StatusOK, SessionState{State: "ended", Reason: string(r)})
	}
	return httpapi.JSON(http.StatusOK, SessionState{State: "active", ExpiresAt: rfc3339(s.ExpiresAt), IdleExpiresAt: rfc3339(s.IdleExpiresAt)})
}

// deleteMe deletes the caller's account (PIPL's right to deletion; WeChat's
// review asks for it): every session ends with reason account_deleted, the
// profile and the other per-user data go, then the user record. It answers
// 204 and clears the cookie; a repeat (the session is gone by then, so only
// a retry racing the first call gets here) is 204 again.
func (h *Handler) deleteMe(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	n, err := h.Accounts.Delete(ctx, p.AppID, p.OpenID)
	if err != nil {
		return h.storeError(ctx, "delete account", err)
	}
	h.logger().InfoContext(ctx, "account deleted", "openid", session.MaskOpenID(p.OpenID), "sessions", n)
	h.ended(ctx, req, p, audit.AccountDeleted, "account_deleted", p.SID, n)
	resp := httpapi.NoContent()
	resp.Cookies = []string{httpapi.ClearSessionCookie()}
	return resp
}

// storeError answers a store failure: 503 store_unavailable with
// Retry-After when the store could not answer now (session.ErrUnavailable),
// else 500 server_misconfigured, logged as an alert (a missing table or
// denied access does not heal by retrying; docs/design.md §2).
func (h *Handler) storeError(ctx context.Context, op string, err error) events.APIGatewayV2HTTPResponse {
	if !errors.Is(err, session.ErrUnavailable) {
		h.logger().ErrorContext(ctx, "store error", "op", op, "error", err.Error(), "alert", true)
		return httpapi.Error(http.StatusInternalServerError, "server_misconfigured", "the server's data store is misconfigured")
	}
	h.logger().ErrorContext(ctx, "store error", "op", op, "error", err.Error())
	return httpapi.WithRetryAfter(
		httpapi.Error(http.StatusServiceUnavailable, "store_unavailable", "the data store is unavailable, try again"),
		RetryAfterStore)
}
