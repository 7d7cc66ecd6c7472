// Package api is wxsession's business function: the routes behind the
// authorizer (docs/design.md §2). It reads the user only through
// session.FromRequest, the equivalent of CloudBase's cloud.getWXContext().
//
//	GET  /me                 the principal, from the authorizer context only
//	GET  /me/profile         the user's profile
//	PUT  /me/profile         replace the user's profile
//	POST /logout             delete this session
//	POST /logout?scope=all   delete every session of this user (all devices)
//	GET  /me/sessions        the user's active sessions (devices)
//	DELETE /me/sessions/{sid} end one of them
package api

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
)

// SessionStore reads and deletes sessions (implemented by
// *dynamostore.Store).
type SessionStore interface {
	// Get returns the session stored under hash, or session.ErrNotFound
	// when it is missing or expired.
	Get(ctx context.Context, hash string) (session.Session, error)
	// List returns openid's active sessions, newest first.
	List(ctx context.Context, openid string) ([]session.Session, error)
	// Delete removes the session stored under hash; a missing one is not
	// an error.
	Delete(ctx context.Context, hash string) error
	// DeleteAll removes every session of openid and returns how many.
	DeleteAll(ctx context.Context, openid string) (int, error)
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
}

// ended records that n sessions of p ended: the audit event and the
// SessionsEnded metric (reason is the session end reason).
func (h *Handler) ended(ctx context.Context, req events.APIGatewayV2HTTPRequest, p session.Principal, ev audit.Event, reason, sid string, n int) {
	h.Metrics.SessionsEnded(ctx, reason, n)
	h.Audit.Record(ctx, audit.Record{Event: ev, AppID: p.AppID, OpenID: p.OpenID, SID: sid, Reason: reason,
		SourceIP: req.RequestContext.HTTP.SourceIP, Count: n})
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
}

// SessionInfo describes one active session (one device) of the caller.
type SessionInfo struct {
	// SID is the stored hash of the session id: it names the session for
	// DELETE /me/sessions/{sid} and cannot be used to authenticate.
	SID       string `json:"sid"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at"`
	// Current is true for the session that made this request.
	Current bool `json:"current"`
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
	route := req.RouteKey
	if route == "" || route == "$default" {
		route = req.RequestContext.HTTP.Method + " " + req.RawPath
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
	switch scope := req.QueryStringParameters["scope"]; scope {
	case "":
		if p.SID == "" {
			h.logger().ErrorContext(ctx, "authorizer context has no sid; cannot log out this session")
			return httpapi.Error(http.StatusUnauthorized, "unauthenticated", "no session")
		}
		if err := h.Sessions.Delete(ctx, p.SID); err != nil && !errors.Is(err, session.ErrNotFound) {
			return h.storeError(ctx, "logout", err)
		}
		h.logger().InfoContext(ctx, "logout", "openid", session.MaskOpenID(p.OpenID), "scope", "session")
		h.ended(ctx, req, p, audit.LoggedOut, "logged_out", p.SID, 1)
	case "all":
		n, err := h.Sessions.DeleteAll(ctx, p.OpenID)
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

func (h *Handler) listSessions(ctx context.Context, _ events.APIGatewayV2HTTPRequest, p session.Principal) events.APIGatewayV2HTTPResponse {
	list, err := h.Sessions.List(ctx, p.OpenID)
	if err != nil {
		return h.storeError(ctx, "list sessions", err)
	}
	resp := SessionsResponse{Sessions: make([]SessionInfo, 0, len(list))}
	for _, s := range list {
		resp.Sessions = append(resp.Sessions, SessionInfo{
			SID:       s.Hash,
			CreatedAt: s.CreatedAt.UTC().Format(time.RFC3339),
			ExpiresAt: s.ExpiresAt.UTC().Format(time.RFC3339),
			Current:   s.Hash == p.SID,
		})
	}
	return httpapi.JSON(http.StatusOK, resp)
}

// deleteSession ends one session of the caller (log out another device).
// A sid that is malformed, unknown, expired or another user's gets the same
// 404: the route tells nobody which sessions exist.
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
	case s.OpenID != p.OpenID:
		return notFound
	}
	if err := h.Sessions.Delete(ctx, sid); err != nil && !errors.Is(err, session.ErrNotFound) {
		return h.storeError(ctx, "delete session", err)
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
