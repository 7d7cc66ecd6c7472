// Package authorizer is the HTTP API Lambda authorizer (payload format 2.0,
// simple responses): it finds the session id in the request (Bearer token,
// then sessionid cookie), reads the session with one DynamoDB GetItem and
// allows the request with the principal as context, or denies it.
//
// Deployment notes (template.yaml): the authorizer must have no identity
// sources. With identity sources set, API Gateway answers 401 without
// calling the authorizer whenever one of them is absent, and a client may
// legitimately send only the Bearer header or only the cookie. HTTP APIs
// allow an empty identity source only with result caching off, which is
// what the design wants anyway (a logout takes effect on the next request).
//
// It must stay small and fast: it runs before every authenticated request.
// It imports neither the WeChat client nor anything under internal/devstack/ (a test
// checks the function binary's dependencies).
package authorizer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/session"
)

// ErrStoreUnavailable is returned by Handle when the session store cannot
// answer. Lambda reports it as a function error and API Gateway answers the
// client 500.
var ErrStoreUnavailable = errors.New("authorizer: session store unavailable")

// Store reads sessions and renews their idle clock (implemented by
// *dynamostore.Store). Get returns session.ErrNotFound for anything but an
// active session.
type Store interface {
	Get(ctx context.Context, hash string) (session.Session, error)
	Touch(ctx context.Context, hash string, now, idleExpiresAt time.Time) error
}

// Handler is the authorizer. Build it once per process.
type Handler struct {
	// Store reads sessions.
	Store Store
	// MaxLifetime is SESSION_TTL: a session whose expiry lies further than
	// that from its creation was not made by the login, and is refused.
	// 0 means session.DefaultTTL.
	MaxLifetime time.Duration
	// IdleTimeout is SESSION_IDLE_TIMEOUT (0 = off): a use extends the
	// idle clock to now + IdleTimeout, capped by the absolute expiry.
	IdleTimeout time.Duration
	// TouchInterval is SESSION_TOUCH_INTERVAL: the renewal (last_active_at,
	// and the idle clock) is written only when the last one is at least
	// that old, so most requests cost one read. 0 = never write.
	TouchInterval time.Duration
	// Logger gets store failures (ERROR) and, at DEBUG, decisions; nil
	// means slog.Default().
	Logger *slog.Logger
	// Metrics gets one AuthorizerDecisions line per request (allow, deny or
	// error; docs/design.md §8): a write to standard output, no I/O to
	// AWS. nil writes nothing.
	Metrics *metrics.Emitter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var deny = events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}

// Handle decides one request.
//
//   - No carrier or a malformed one: deny, without reading the store.
//   - A state-changing request (not GET, HEAD or OPTIONS) whose session
//     comes in the cookie and that a browser sent from another site
//     (httpapi.CrossSite): deny, without reading the store.
//   - Session found, active and plausible: allow, context = the principal
//     (openid, unionid, appid, sid, expires_at). Both clocks are checked
//     here again even though the store checks them, so a store that
//     forgets cannot let an ended session through; a session whose expiry
//     lies beyond MaxLifetime from its creation is denied (only the login
//     function makes sessions, docs/design.md §4).
//   - When the last renewal is TouchInterval old: one conditional
//     UpdateItem of last_active_at (and the idle clock) before allowing.
//     A failed renewal is logged and the request still allowed: the read
//     proved the session active.
//   - Session not found (missing, ended, a claim): deny.
//   - Any other store error: return an error, never allow. API Gateway then
//     answers 500 instead of 403. Denying would tell every client "your
//     session is gone" and make all of them re-login at once during a
//     database outage (and re-login would fail too, as login needs the
//     same database); a 500 says "try again" and keeps the sessions. The
//     error carries no session id or hash.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error) {
	resp, err := h.decide(ctx, req)
	switch {
	case err != nil:
		h.Metrics.Authorizer(ctx, metrics.DecisionError)
	case resp.IsAuthorized:
		h.Metrics.Authorizer(ctx, metrics.DecisionAllow)
	default:
		h.Metrics.Authorizer(ctx, metrics.DecisionDeny)
	}
	return resp, err
}

// decide is Handle without the metric.
func (h *Handler) decide(ctx context.Context, req events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error) {
	log := h.logger()
	debug := log.Enabled(ctx, slog.LevelDebug) // guards every DEBUG call: no log arguments built otherwise
	id, carrier, err := httpapi.FindSessionID(req.Headers, req.Cookies)
	if err != nil {
		if debug {
			log.DebugContext(ctx, "deny", "reason", reason(err))
		}
		return deny, nil
	}
	// Cross-site request forgery (docs/design.md §10): a browser attaches
	// the cookie to requests other sites make; the Bearer header it never
	// sends on its own. Checked here, before the read, at no extra cost.
	if carrier == httpapi.CarrierCookie && !httpapi.SafeMethod(req.RequestContext.HTTP.Method) &&
		httpapi.CrossSite(req.Headers, req.RequestContext.DomainName) {
		log.WarnContext(ctx, "deny", "reason", "cross-site request with the session cookie",
			"method", req.RequestContext.HTTP.Method, "route", req.RouteKey)
		return deny, nil
	}
	s, err := h.Store.Get(ctx, session.Hash(id))
	switch {
	case errors.Is(err, session.ErrNotFound):
		if debug {
			log.DebugContext(ctx, "deny", "reason", "unknown session")
		}
		return deny, nil
	case err != nil:
		log.ErrorContext(ctx, "session store unavailable, failing the request", "error", err.Error())
		return deny, ErrStoreUnavailable
	}
	now := h.now()
	if !s.Active(now) {
		if debug {
			log.DebugContext(ctx, "deny", "reason", string(s.EndReason(now)))
		}
		return deny, nil
	}
	switch s.CheckLifetime(h.MaxLifetime) {
	case session.LifetimeShortened:
		log.InfoContext(ctx, "deny: session longer than SESSION_TTL (made before SESSION_TTL was lowered)", "openid", session.MaskOpenID(s.OpenID))
		return deny, nil
	case session.LifetimeForged:
		log.WarnContext(ctx, "deny: session lifetime beyond any SESSION_TTL (not made by the login function?)", "openid", session.MaskOpenID(s.OpenID))
		return deny, nil
	}
	if h.TouchInterval > 0 && now.Sub(s.LastActiveAt) >= h.TouchInterval {
		var idle time.Time
		if !s.IdleExpiresAt.IsZero() && h.IdleTimeout > 0 {
			idle = now.Add(h.IdleTimeout)
			if idle.After(s.ExpiresAt) {
				idle = s.ExpiresAt
			}
		}
		if err := h.Store.Touch(ctx, s.Hash, now, idle); err != nil {
			log.WarnContext(ctx, "session renewal failed; allowing on the read", "error", err.Error())
		}
	}
	if debug {
		log.DebugContext(ctx, "allow", "openid", session.MaskOpenID(s.OpenID))
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{
		IsAuthorized: true,
		Context:      session.PrincipalOf(s).Context(),
	}, nil
}

func reason(err error) string {
	if errors.Is(err, httpapi.ErrNoCredentials) {
		return "no credentials"
	}
	return "malformed credentials"
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
