package httpapi

import (
	"errors"
	"strings"

	"github.com/wxsession/wxsession/session"
)

// ErrNoCredentials reports a request that carries no session: no Bearer
// Authorization header and no sessionid cookie.
var ErrNoCredentials = errors.New("httpapi: no session credentials")

// ErrMalformed reports a request whose session carrier is present but
// unusable: an empty Bearer token, an id that is not shaped like a session id,
// or several sessionid cookies with different values.
var ErrMalformed = errors.New("httpapi: malformed session credentials")

// SessionID extracts the session id from a payload-2.0 request's headers and
// cookies, without any I/O. Carriers, in order:
//
//  1. Authorization: Bearer <id>. The header name and the scheme are matched
//     case-insensitively. "Bearer" with no token is ErrMalformed. Other
//     schemes (Basic, ...) are not ours and are ignored: the cookie is tried.
//  2. The sessionid cookie, from the event's cookies array (payload 2.0 moves
//     cookies there; each element may hold several "a=b; c=d" pairs). The
//     cookie name is case-sensitive, as in browsers and Django; a value in
//     double quotes is unquoted. The same value sent twice is accepted;
//     different values are ambiguous and give ErrMalformed.
//
// A cookie header in headers is deliberately not read: API Gateway never
// sends one in payload 2.0, and reading it would hide a local gateway that
// builds events differently from AWS.
//
// A returned id always satisfies session.ValidID; otherwise the error is
// ErrMalformed, or ErrNoCredentials when neither carrier is present.
func SessionID(headers map[string]string, cookies []string) (string, error) {
	id, _, err := FindSessionID(headers, cookies)
	return id, err
}

// Carrier is where FindSessionID found the session id.
type Carrier int

const (
	// CarrierNone: no id (an error was returned).
	CarrierNone Carrier = iota
	// CarrierBearer: the Authorization: Bearer header. Browsers never
	// attach it on their own, so it needs no cross-site check.
	CarrierBearer
	// CarrierCookie: the sessionid cookie, which a browser attaches to
	// requests that other sites make (see CrossSite).
	CarrierCookie
)

// FindSessionID is SessionID that also tells which carrier held the id.
func FindSessionID(headers map[string]string, cookies []string) (string, Carrier, error) {
	if auth, ok, err := authorization(headers); err != nil {
		return "", CarrierNone, err
	} else if ok {
		if token, bearer := bearerToken(auth); bearer {
			if !session.ValidID(token) {
				return "", CarrierNone, ErrMalformed
			}
			return token, CarrierBearer, nil
		}
	}
	id, err := cookieSessionID(cookies)
	if err != nil {
		return "", CarrierNone, err
	}
	return id, CarrierCookie, nil
}

// authorization returns the Authorization header, looking it up in any case.
// Several spellings with different values (possible only in hand-built
// events) are ErrMalformed.
func authorization(headers map[string]string) (string, bool, error) {
	var (
		val   string
		found bool
	)
	for k, v := range headers {
		if len(k) != len("authorization") || !strings.EqualFold(k, "authorization") {
			continue
		}
		if found && v != val {
			return "", false, ErrMalformed
		}
		val, found = v, true
	}
	return val, found, nil
}

// bearerToken reports whether auth uses the Bearer scheme and returns its
// token (trimmed; empty when missing).
func bearerToken(auth string) (string, bool) {
	auth = strings.Trim(auth, " \t")
	const scheme = "bearer"
	if len(auth) < len(scheme) || !strings.EqualFold(auth[:len(scheme)], scheme) {
		return "", false
	}
	rest := auth[len(scheme):]
	if rest == "" {
		return "", true // "Bearer" alone
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", false // e.g. "Bearerish x": another scheme
	}
	return strings.Trim(rest, " \t"), true
}

// cookieSessionID finds the sessionid cookie in a payload-2.0 cookies array.
// It is not net/http's parser (Request.CookiesNamed), which gives different
// answers on inputs TestSessionID covers: it keeps the spaces of
// "sessionid = v" (RFC 6265 §5.2 and browsers trim them) and reads a bare
// "sessionid" as an empty cookie (docs/design.md §11).
func cookieSessionID(cookies []string) (string, error) {
	var (
		val   string
		found bool
	)
	for _, c := range cookies {
		for c != "" {
			var part string
			part, c, _ = strings.Cut(c, ";")
			part = strings.Trim(part, " \t")
			name, v, ok := strings.Cut(part, "=")
			if !ok || strings.TrimRight(name, " \t") != CookieName {
				continue
			}
			v = strings.Trim(v, " \t")
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if found && v != val {
				return "", ErrMalformed
			}
			val, found = v, true
		}
	}
	if !found {
		return "", ErrNoCredentials
	}
	if !session.ValidID(val) {
		return "", ErrMalformed
	}
	return val, nil
}
