package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Reason says why a session ended (docs/design.md §3). Stores keep it in
// the session's tombstone; GET /session tells it to the holder of the id.
type Reason string

// End reasons. Every ending but the two clocks' writes a tombstone with its
// reason; ReasonIdleTimeout and ReasonExpired are read off the clocks.
const (
	// ReasonLoggedOut: POST /logout (Django's logout/flush of one session).
	ReasonLoggedOut Reason = "logged_out"
	// ReasonLoggedOutAll: POST /logout?scope=all from one of the user's sessions.
	ReasonLoggedOutAll Reason = "logged_out_all"
	// ReasonReplaced: a newer login from the same device, a login that
	// presented this session (cycle key), or SESSION_EXCLUSIVE.
	ReasonReplaced Reason = "replaced"
	// ReasonEvicted: SESSION_MAX_PER_USER was reached and this was the
	// oldest session (SESSION_OVERFLOW=evict_oldest).
	ReasonEvicted Reason = "evicted"
	// ReasonRevoked: ended by the user from another device
	// (DELETE /me/sessions/{sid}).
	ReasonRevoked Reason = "revoked"
	// ReasonKicked: ended by an operator (wxadmin sessions revoke).
	ReasonKicked Reason = "kicked"
	// ReasonBanned: the user was banned.
	ReasonBanned Reason = "banned"
	// ReasonAccountDeleted: the user deleted the account (DELETE /me).
	ReasonAccountDeleted Reason = "account_deleted"
	// ReasonIdleTimeout: unused for longer than SESSION_IDLE_TIMEOUT.
	ReasonIdleTimeout Reason = "idle_timeout"
	// ReasonExpired: the absolute lifetime (SESSION_TTL) ran out.
	ReasonExpired Reason = "expired"
)

// Reasons lists every end reason, in the order docs/design.md §3 gives them.
var Reasons = []Reason{
	ReasonLoggedOut, ReasonLoggedOutAll, ReasonReplaced, ReasonEvicted, ReasonRevoked,
	ReasonKicked, ReasonBanned, ReasonAccountDeleted, ReasonIdleTimeout, ReasonExpired,
}

// Valid reports whether r is one of Reasons.
func (r Reason) Valid() bool {
	for _, x := range Reasons {
		if r == x {
			return true
		}
	}
	return false
}

// Stored reports whether a tombstone may carry r: every reason but the two
// that the clocks decide.
func (r Reason) Stored() bool {
	return r.Valid() && r != ReasonIdleTimeout && r != ReasonExpired
}

// TombstoneRetention is how long a tombstone (and a session past either of
// its clocks) stays readable, so GET /session can tell the reason.
const TombstoneRetention = 7 * 24 * time.Hour

// UserKey is the key of every per-user item: "<appid>#<openid>"
// (docs/design.md §1). An appid never contains "#".
func UserKey(appID, openID string) string { return appID + "#" + openID }

// SplitUserKey splits a user key into appid and openid.
func SplitUserKey(user string) (appID, openID string, ok bool) {
	appID, openID, ok = strings.Cut(user, "#")
	return appID, openID, ok && appID != "" && openID != ""
}

// UserKey returns the principal's user key.
func (p Principal) UserKey() string { return UserKey(p.AppID, p.OpenID) }

// Device id and device field limits (docs/design.md §3).
const (
	MinDeviceIDLength = 16
	MaxDeviceIDLength = 64
	// MaxDeviceFieldLength is the longest device field, in characters.
	MaxDeviceFieldLength = 64
)

// ValidDeviceID reports whether s is a device id: 16 to 64 characters of
// [A-Za-z0-9_-].
func ValidDeviceID(s string) bool {
	if len(s) < MinDeviceIDLength || len(s) > MaxDeviceIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Device is the client's own, untrusted report of the device a session was
// made on (the fields of wx.getDeviceInfo() that the device list shows).
type Device struct {
	Platform string `json:"platform,omitempty" dynamodbav:"platform,omitempty"`
	Brand    string `json:"brand,omitempty" dynamodbav:"brand,omitempty"`
	Model    string `json:"model,omitempty" dynamodbav:"model,omitempty"`
	System   string `json:"system,omitempty" dynamodbav:"system,omitempty"`
}

// ErrInvalidDevice reports a device field that Device.Validate refuses.
var ErrInvalidDevice = errors.New("invalid device")

// Validate checks every field: valid UTF-8, at most MaxDeviceFieldLength
// characters, no control, separator or format characters. The error names
// the field and is safe to show the client.
func (d Device) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"platform", d.Platform}, {"brand", d.Brand}, {"model", d.Model}, {"system", d.System},
	} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: device.%s is not valid UTF-8", ErrInvalidDevice, f.name)
		}
		if utf8.RuneCountInString(f.v) > MaxDeviceFieldLength {
			return fmt.Errorf("%w: device.%s is longer than %d characters", ErrInvalidDevice, f.name, MaxDeviceFieldLength)
		}
		for _, r := range f.v {
			// Control, line/paragraph separator and format characters (bidi
			// overrides, zero-width ones), as package profile refuses in
			// nicknames. Not unicode.IsPrint: its tables cost the login
			// binary 200 KB.
			if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Cf, r) {
				return fmt.Errorf("%w: device.%s contains a control or format character", ErrInvalidDevice, f.name)
			}
		}
	}
	return nil
}

// IDFromCode derives the session id of a wx.login() code: HMAC-SHA256 with
// key over "wxsession/session-id/v1", appid and code, base64url without
// padding (43 characters, a valid id). The same code always yields the same
// id, which makes the code exchange idempotent without keeping the id
// anywhere (docs/design.md §3); without the key the id cannot be computed
// from the code.
func IDFromCode(key []byte, appID, code string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("wxsession/session-id/v1\x00"))
	m.Write([]byte(appID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CodeKey derives the key of IDFromCode from the app secret, so that no
// further secret needs deploying: HMAC-SHA256(secret, label).
func CodeKey(appSecret string) []byte {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write([]byte("wxsession/code-key/v1"))
	return m.Sum(nil)
}
