// Package session holds wxsession's domain: session ids and their stored hash,
// the session record, the principal that the authorizer hands to business code,
// and the errors every adapter maps its failures to.
//
// It depends on nothing but the standard library and the aws-lambda-go event
// types, so every function (login, authorizer, api) links it cheaply.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// IDBytes is the number of random bytes in a session id (256 bits).
const IDBytes = 32

// IDLength is the length of an encoded session id: 32 bytes in base64url
// without padding.
const IDLength = 43

// DefaultTTL is the default session lifetime: 14 days, Django's
// SESSION_COOKIE_AGE.
const DefaultTTL = 14 * 24 * time.Hour

// MaxTTL is the longest lifetime taken for one a login set under an
// earlier, longer SESSION_TTL (a year). A session longer than the current
// SESSION_TTL but within MaxTTL is refused as ended (expired: the TTL
// was lowered); one beyond MaxTTL is treated as not made by the login
// (docs/design.md §3, §11).
const MaxTTL = 366 * 24 * time.Hour

// ErrNotFound reports a session that does not exist, was deleted or has
// expired. Callers cannot and need not tell those cases apart.
var ErrNotFound = errors.New("session not found")

// ErrCollision reports that a newly drawn id already exists in the store. With
// 256-bit ids this does not happen unless the random source is broken.
var ErrCollision = errors.New("session id collision")

// ErrUnavailable reports that the session store could not answer (network
// error, timeout, throttling). The authorizer denies on it; login and the
// business API answer 503.
var ErrUnavailable = errors.New("session store unavailable")

var idEncoding = base64.RawURLEncoding.Strict()

// NewID draws a new session id from crypto/rand: 32 bytes, base64url without
// padding (43 characters).
func NewID() (string, error) {
	var b [IDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: draw id: %w", err)
	}
	return idEncoding.EncodeToString(b[:]), nil
}

// ValidID reports whether s has the exact shape of an id made by NewID: 43
// characters of the base64url alphabet that decode canonically to 32 bytes. It
// does no I/O, so malformed ids are rejected before any database read.
func ValidID(s string) bool {
	if len(s) != IDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	// 42 characters carry 252 bits; the last one carries the final 4 bits and
	// 2 padding bits that must be zero for a canonical encoding.
	return base64URLValue(s[IDLength-1])&0x03 == 0
}

func base64URLValue(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	default: // '_'
		return 63
	}
}

// Hash returns the key a session is stored under: SHA-256 of the id,
// base64url without padding. A copy of the table therefore holds no usable
// session id.
func Hash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Session is one login on one device, as stored. It never holds the raw id.
type Session struct {
	// Hash is Hash(id), the stored key, exposed to business code as "sid".
	Hash string
	// OpenID is the user's openid for this mini-program.
	OpenID string
	// UnionID is the user's unionid, empty when WeChat did not return one.
	UnionID string
	// AppID is the mini-program the session belongs to.
	AppID string
	// User is the user key, UserKey(AppID, OpenID).
	User string
	// CreatedAt is when the session was issued (microsecond precision:
	// it orders a user's sessions exactly, docs/design.md §3).
	CreatedAt time.Time
	// ExpiresAt is the end of the absolute lifetime (SESSION_TTL); never
	// extended.
	ExpiresAt time.Time
	// IdleExpiresAt is when the session ends unless used
	// (SESSION_IDLE_TIMEOUT); zero when the idle clock is off.
	IdleExpiresAt time.Time
	// LastActiveAt is the last renewal (or the login), to the touch
	// interval's precision.
	LastActiveAt time.Time
	// DeviceID is the client's stable device id; "" when it sent none.
	DeviceID string
	// Device is the client's own report of the device (untrusted).
	Device Device
	// SourceIP is the login request's source address.
	SourceIP string
	// EndedReason is why the session ended, from its tombstone; "" while
	// it has not been ended (it may still have run out of either clock,
	// see EndReason).
	EndedReason Reason
	// EndedAt is when the tombstone was written.
	EndedAt time.Time
}

// EndReason returns why the session is not valid at now, or "" when it is
// active: the tombstone's reason, else ReasonExpired past the absolute
// lifetime, else ReasonIdleTimeout past the idle clock.
func (s Session) EndReason(now time.Time) Reason {
	switch {
	case s.EndedReason != "":
		return s.EndedReason
	case !now.Before(s.ExpiresAt):
		return ReasonExpired
	case !s.IdleExpiresAt.IsZero() && !now.Before(s.IdleExpiresAt):
		return ReasonIdleTimeout
	}
	return ""
}

// Active reports whether the session is valid at now (EndReason is "").
func (s Session) Active(now time.Time) bool { return s.EndReason(now) == "" }

// Lifetime is how a session's clocks compare with the lifetime a login
// could have given it (docs/design.md §3, §4).
type Lifetime int

const (
	// LifetimeOK: the expiry lies at most SESSION_TTL (plus one second of
	// rounding) after creation and the idle clock not beyond the expiry.
	LifetimeOK Lifetime = iota
	// LifetimeShortened: longer than SESSION_TTL but within MaxTTL, so made
	// under an earlier, longer SESSION_TTL since lowered: the session has
	// ended, reason expired.
	LifetimeShortened
	// LifetimeForged: beyond any lifetime a login sets (MaxTTL), or with
	// inconsistent clocks: not made by the login function; refused and
	// reported as unknown.
	LifetimeForged
)

// CheckLifetime classifies the session's clocks against maxLifetime
// (SESSION_TTL; 0 or less means DefaultTTL). The authorizer refuses
// anything but LifetimeOK: only the login function creates sessions, and a
// forged item with a far expiry must not be honoured.
func (s Session) CheckLifetime(maxLifetime time.Duration) Lifetime {
	if maxLifetime <= 0 {
		maxLifetime = DefaultTTL
	}
	if s.CreatedAt.IsZero() || (!s.IdleExpiresAt.IsZero() && s.IdleExpiresAt.After(s.ExpiresAt)) {
		return LifetimeForged
	}
	switch life := s.ExpiresAt.Sub(s.CreatedAt); {
	case life <= maxLifetime+time.Second:
		return LifetimeOK
	case life <= MaxTTL+time.Second:
		return LifetimeShortened
	}
	return LifetimeForged
}

// Expired reports whether the absolute lifetime has run out at now. Stores
// must check it on every read: DynamoDB's TTL deletes items days late.
func (s Session) Expired(now time.Time) bool {
	return !now.Before(s.ExpiresAt)
}

// Identity is what a successful WeChat code exchange says about the user.
type Identity struct {
	// OpenID is the user's id within the mini-program.
	OpenID string
	// UnionID is the user's id across the developer's apps; may be empty.
	UnionID string
	// SessionKey is WeChat's session_key: kept server-side only, for
	// decrypting encryptedData later. Never returned, never logged.
	SessionKey string
}

// String hides the session_key so an Identity can never leak it through fmt or
// slog.
func (i Identity) String() string {
	return fmt.Sprintf("Identity{OpenID:%s UnionID:%s SessionKey:[redacted]}", MaskOpenID(i.OpenID), MaskOpenID(i.UnionID))
}

// MaskOpenID shortens an openid or unionid for logs: the first 6 characters
// and a marker, so log lines can be correlated without holding the full id.
func MaskOpenID(id string) string {
	if len(id) <= 6 {
		if id == "" {
			return ""
		}
		return "***"
	}
	return id[:6] + "***"
}
