package session

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Authorizer context keys. The authorizer writes them as strings into its
// simple response; API Gateway hands them to integrations as
// requestContext.authorizer.lambda.
const (
	ContextOpenID    = "openid"
	ContextUnionID   = "unionid"
	ContextAppID     = "appid"
	ContextSID       = "sid"
	ContextExpiresAt = "expires_at"
)

// ErrNoPrincipal reports a request that carries no authorizer context: the
// route is not behind the wxsession authorizer, or the event was not built by
// API Gateway.
var ErrNoPrincipal = errors.New("session: no authorizer context on the request (is the route behind the wxsession authorizer?)")

// Principal is the authenticated user of a request, as resolved by the
// authorizer. It is what CloudBase's cloud.getWXContext() gives cloud
// functions.
type Principal struct {
	// OpenID is the user's openid; never empty in a valid principal.
	OpenID string
	// UnionID is the user's unionid, empty when WeChat did not return one.
	UnionID string
	// AppID is the mini-program's appid.
	AppID string
	// SID is the stored hash of the session id (not the id itself): enough
	// to delete this session, useless to impersonate the user.
	SID string
	// ExpiresAt is when the session expires.
	ExpiresAt time.Time
}

// PrincipalOf returns the principal of a session.
func PrincipalOf(s Session) Principal {
	return Principal{OpenID: s.OpenID, UnionID: s.UnionID, AppID: s.AppID, SID: s.Hash, ExpiresAt: s.ExpiresAt}
}

// Context renders the principal as the authorizer's response context: string
// values only, expires_at in RFC 3339 (UTC, seconds).
func (p Principal) Context() map[string]any {
	return map[string]any{
		ContextOpenID:    p.OpenID,
		ContextUnionID:   p.UnionID,
		ContextAppID:     p.AppID,
		ContextSID:       p.SID,
		ContextExpiresAt: p.ExpiresAt.UTC().Format(time.RFC3339),
	}
}

// FromRequest returns the principal the authorizer resolved for an HTTP API
// (payload 2.0) request. It is the one way business code should read the
// user: it fails with ErrNoPrincipal when the context is missing and with a
// descriptive error when it is malformed, never with a zero principal.
func FromRequest(req events.APIGatewayV2HTTPRequest) (Principal, error) {
	if req.RequestContext.Authorizer == nil || req.RequestContext.Authorizer.Lambda == nil {
		return Principal{}, ErrNoPrincipal
	}
	return FromContext(req.RequestContext.Authorizer.Lambda)
}

// FromContext parses an authorizer context map (requestContext.authorizer.lambda
// of payload 2.0; for REST APIs, requestContext.authorizer).
func FromContext(ctx map[string]any) (Principal, error) {
	if len(ctx) == 0 {
		return Principal{}, ErrNoPrincipal
	}
	str := func(k string) (string, error) {
		v, ok := ctx[k]
		if !ok || v == nil {
			return "", nil
		}
		switch t := v.(type) {
		case string:
			return t, nil
		case float64: // JSON numbers, should a proxy rewrite the context
			return strconv.FormatFloat(t, 'f', -1, 64), nil
		default:
			return "", fmt.Errorf("session: authorizer context %q has type %T, want string", k, v)
		}
	}
	var p Principal
	var err error
	if p.OpenID, err = str(ContextOpenID); err != nil {
		return Principal{}, err
	}
	if p.OpenID == "" {
		return Principal{}, fmt.Errorf("session: authorizer context has no %q: %w", ContextOpenID, ErrNoPrincipal)
	}
	if p.UnionID, err = str(ContextUnionID); err != nil {
		return Principal{}, err
	}
	if p.AppID, err = str(ContextAppID); err != nil {
		return Principal{}, err
	}
	if p.SID, err = str(ContextSID); err != nil {
		return Principal{}, err
	}
	exp, err := str(ContextExpiresAt)
	if err != nil {
		return Principal{}, err
	}
	if exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return Principal{}, fmt.Errorf("session: authorizer context %q: %w", ContextExpiresAt, err)
		}
		p.ExpiresAt = t
	}
	return p, nil
}
