// Package audit writes wxsession's audit trail: one JSON line per security
// event (a login, a logout, a session ended by someone else, a ban, an
// account deletion, a paid phone lookup, an access token refresh), with a
// stable schema that CloudWatch Logs Insights reads as fields
// (docs/design.md §8):
//
//	{"time":"2026-11-30T07:00:00.123Z","level":"INFO","msg":"audit",
//	 "event":"login_failed","actor":"user","app":"wx1234567890abcdef",
//	 "user":"u_3q2-7wEJ0zB1c9Yb3pX1qA","session":"","reason":"",
//	 "error":"invalid_code","source_ip":"203.0.113.7","request_id":"…"}
//
// Every field of the schema is present on every line (empty when it does
// not apply), except "until" (user_banned with an end time) and "count"
// (events that end several sessions), which appear only when set.
//
// "user" is a pseudonym of the user key <appid>#<openid> (see UserPseudonym),
// never the openid itself: the logs, which many people can read and which
// are kept long, hold no WeChat identifier. "session" is the session's
// stored hash (sid), never the session id. Lines never carry a secret, a
// session_key, a token or a phone number.
//
// Audit lines are written whatever LOG_LEVEL says: they are a record, not
// diagnostics.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Msg is the "msg" of every audit line; filter on it to find the trail.
const Msg = "audit"

// Event names an audit event (the "event" field).
type Event string

// The audit events (docs/design.md §8).
const (
	LoginSucceeded  Event = "login_succeeded"
	LoginFailed     Event = "login_failed" // "error" holds the error code answered
	LoggedOut       Event = "logged_out"
	LoggedOutAll    Event = "logged_out_all"
	SessionReplaced Event = "session_replaced"
	SessionEvicted  Event = "session_evicted"
	SessionRevoked  Event = "session_revoked" // ended by the user from another device
	SessionKicked   Event = "session_kicked"  // ended by an operator
	UserBanned      Event = "user_banned"
	UserUnbanned    Event = "user_unbanned"
	PhoneBound      Event = "phone_bound"
	PhoneUnbound    Event = "phone_unbound"
	PhoneLookup     Event = "phone_lookup" // a paid getuserphonenumber call
	AccountDeleted  Event = "account_deleted"
	TokenRefreshed  Event = "token_refreshed"
)

// Events lists every event, in the order of the design document.
var Events = []Event{
	LoginSucceeded, LoginFailed, LoggedOut, LoggedOutAll, SessionReplaced,
	SessionEvicted, SessionRevoked, SessionKicked, UserBanned, UserUnbanned,
	PhoneBound, PhoneUnbound, PhoneLookup, AccountDeleted, TokenRefreshed,
}

// Actors (the "actor" field): who caused the event.
const (
	// ActorUser: the user, through the API (log in, log out, delete).
	ActorUser = "user"
	// ActorSystem: wxsession itself (a replaced or evicted session, a
	// token refresh).
	ActorSystem = "system"
	// ActorOperatorPrefix starts the actor of an operator's action
	// ("operator:" and the operator's name, see cmd/wxadmin).
	ActorOperatorPrefix = "operator:"
)

// Record is one event to write.
type Record struct {
	// Event is required.
	Event Event
	// Actor overrides the Logger's actor for this record.
	Actor string
	// AppID and OpenID name the user; the line carries the pseudonym of
	// <AppID>#<OpenID>, "" when OpenID is empty.
	AppID, OpenID string
	// SID is the session's stored hash (never the session id).
	SID string
	// Reason is the end reason of a session (replaced, banned, ...) or an
	// operator's free-text reason for a ban.
	Reason string
	// Error is the error code answered (login_failed).
	Error string
	// SourceIP is the client's address (requestContext.http.sourceIp).
	SourceIP string
	// RequestID overrides the Lambda request id taken from ctx.
	RequestID string
	// Until is the end of a ban (zero: none).
	Until time.Time
	// Before is the cut-off of `sessions revoke-all -before T`: sessions
	// created before it were ended (zero: none).
	Before time.Time
	// Count is how many sessions the event ended, when it ended several.
	Count int
}

// Line is the JSON shape of an audit line, in field order.
type Line struct {
	Time      string `json:"time"`
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Event     Event  `json:"event"`
	Actor     string `json:"actor"`
	App       string `json:"app"`
	User      string `json:"user"`
	Session   string `json:"session"`
	Reason    string `json:"reason"`
	Error     string `json:"error"`
	SourceIP  string `json:"source_ip"`
	RequestID string `json:"request_id"`
	Until     string `json:"until,omitempty"`
	Before    string `json:"before,omitempty"`
	Count     int    `json:"count,omitempty"`
}

// Logger writes audit lines. It is safe for concurrent use; a nil *Logger
// writes nothing.
type Logger struct {
	w     io.Writer
	actor string
	now   func() time.Time
	mu    sync.Mutex
}

// New returns a Logger writing one line per Record to w (os.Stdout in a
// Lambda function, so that the lines land in its log group), with actor as
// the default actor (ActorUser in the functions).
func New(w io.Writer, actor string) *Logger {
	return &Logger{w: w, actor: actor, now: time.Now}
}

// WithClock returns a copy of l reading the time from now (tests).
func (l *Logger) WithClock(now func() time.Time) *Logger {
	return &Logger{w: l.w, actor: l.actor, now: now}
}

// Record writes r as one line and returns the line (without its newline),
// so that a caller can also store it (cmd/wxadmin does). A write error is
// ignored: the event happened whether or not its line could be written,
// and the caller must not fail the user's request for it.
func (l *Logger) Record(ctx context.Context, r Record) Line {
	if l == nil {
		return Line{}
	}
	line := l.line(ctx, r)
	b, err := json.Marshal(line)
	if err != nil { // cannot happen: only strings and an int
		return line
	}
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
	return line
}

func (l *Logger) line(ctx context.Context, r Record) Line {
	out := Line{
		Time:      l.now().UTC().Format(time.RFC3339Nano),
		Level:     "INFO",
		Msg:       Msg,
		Event:     r.Event,
		Actor:     r.Actor,
		App:       r.AppID,
		User:      UserPseudonym(r.AppID, r.OpenID),
		Session:   r.SID,
		Reason:    r.Reason,
		Error:     r.Error,
		SourceIP:  r.SourceIP,
		RequestID: r.RequestID,
		Count:     r.Count,
	}
	if out.Actor == "" {
		out.Actor = l.actor
	}
	if out.RequestID == "" && ctx != nil {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			out.RequestID = lc.AwsRequestID
		}
	}
	if !r.Until.IsZero() {
		out.Until = r.Until.UTC().Format(time.RFC3339)
	}
	if !r.Before.IsZero() {
		out.Before = r.Before.UTC().Format(time.RFC3339)
	}
	return out
}

// pseudonymPrefix starts every pseudonym, so that one is never mistaken for
// an openid (or for a session hash: it is shorter than 43 characters).
const pseudonymPrefix = "u_"

// UserPseudonym is the "user" of audit lines: "u_" and the first 22
// characters (132 bits) of base64url(SHA-256("<appid>#<openid>")). It is ""
// when openid is empty.
//
// It is a pseudonym, not an encryption: anyone who holds an openid can
// compute it (wxadmin users show prints it, to search the logs for that
// user's history), and mapping a pseudonym back to an openid needs the list
// of openids, i.e. read access to the users table (wxadmin users show
// -user). People who can only read the logs cannot.
func UserPseudonym(appID, openID string) string {
	if openID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(appID + "#" + openID))
	return pseudonymPrefix + base64.RawURLEncoding.EncodeToString(sum[:])[:22]
}
