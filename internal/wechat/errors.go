package wechat

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped) by every call (Client.Exchange,
// Client.StableToken, Transport.Do). Match them with
// errors.Is; the login handler maps them to HTTP answers (DESIGN §2).
var (
	// ErrInvalidCode: WeChat does not know the code or it has expired
	// (errcode 40029; also 41008 "missing code" and an empty code, which is
	// rejected without calling WeChat). HTTP 401 invalid_code.
	ErrInvalidCode = errors.New("wechat: invalid code")

	// ErrCodeUsed: the code was already exchanged (errcode 40163). HTTP 401
	// code_used. Not returned when this very Exchange may have consumed the
	// code in an earlier attempt whose answer was lost: see Client.Exchange.
	ErrCodeUsed = errors.New("wechat: code already used")

	// ErrRateLimited: the app's per-minute quota is exhausted (errcode 45011).
	// HTTP 429 rate_limited.
	ErrRateLimited = errors.New("wechat: rate limited")

	// ErrUserBlocked: WeChat refuses the login of a high-risk user (errcode
	// 40226). HTTP 403 user_blocked.
	ErrUserBlocked = errors.New("wechat: user blocked")

	// ErrUnavailable: WeChat could not be reached or gave no usable answer
	// (errcode -1, HTTP 5xx or any non-200 status, timeout, network error,
	// body that is not a well-formed answer, unknown errcode), after the
	// bounded retries. HTTP 503 wechat_unavailable.
	ErrUnavailable = errors.New("wechat: service unavailable")

	// ErrMisconfigured: WeChat rejects our credentials or request shape
	// (errcodes 40013 invalid appid, 40125 invalid appsecret, 41002 appid
	// missing, 41004 appsecret missing, 40002 invalid grant_type). HTTP 500
	// server_misconfigured, to be logged as an alert.
	ErrMisconfigured = errors.New("wechat: server misconfigured")

	// ErrTokenRejected: WeChat refused the access_token (errcodes 40001
	// invalid or not latest, 42001 expired, 40014 invalid, 41001 missing).
	// The shared token recovers with one forced refresh and one retry
	// (docs/design.md §7); after that, HTTP 503 wechat_unavailable.
	ErrTokenRejected = errors.New("wechat: access_token rejected")
)

// WeChat errcodes of the jscode2session API.
const (
	CodeSystemError      = -1
	CodeInvalidGrantType = 40002
	CodeInvalidAppID     = 40013
	CodeInvalidCode      = 40029
	CodeInvalidSecret    = 40125
	CodeCodeUsed         = 40163
	CodeUserBlocked      = 40226
	CodeAppIDMissing     = 41002
	CodeSecretMissing    = 41004
	CodeCodeMissing      = 41008
	CodeRateLimited      = 45011

	CodeInvalidCredential = 40001
	CodeInvalidToken      = 40014
	CodeTokenMissing      = 41001
	CodeTokenExpired      = 42001
	CodeDailyQuota        = 45009
	CodeInvalidSignature  = 87009
	CodePhoneQuota        = 1400001
	// CodeIPNotAllowed and CodeIPNotAllowedAPI: the caller's IP address is
	// not in the app's API IP whitelist (Lambda's addresses change; see
	// docs/design.md §7).
	CodeIPNotAllowed    = 40164
	CodeIPNotAllowedAPI = 61004
)

// APIError is an errcode answer from WeChat. errors.Is maps it onto the
// sentinel errors:
//
//	40029, 41008                       -> ErrInvalidCode
//	40163                              -> ErrCodeUsed
//	45011                              -> ErrRateLimited
//	40226                              -> ErrUserBlocked
//	45009                              -> ErrRateLimited
//	40001, 42001, 40014, 41001         -> ErrTokenRejected
//	40013, 40125, 41002, 41004, 40002,
//	40164, 61004 (IP whitelist)        -> ErrMisconfigured
//	-1 and every other (unknown) code  -> ErrUnavailable
//
// Unknown errcodes are treated as "WeChat gave no usable answer" (503, so the
// client may try again later) and are logged with their code, so a new code
// shows up in the logs rather than as a wrong 4xx for users.
type APIError struct {
	// Code is WeChat's errcode.
	Code int
	// Message is WeChat's errmsg, with any echo of the secret or the code
	// removed.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("errcode %d", e.Code)
	}
	return fmt.Sprintf("errcode %d: %s", e.Code, e.Message)
}

// Is reports whether the errcode belongs to the class of target.
func (e *APIError) Is(target error) bool {
	return target != nil && target == sentinelFor(e.Code)
}

// sentinelFor returns the sentinel error class of an errcode.
func sentinelFor(code int) error {
	switch code {
	case CodeInvalidCode, CodeCodeMissing:
		return ErrInvalidCode
	case CodeCodeUsed:
		return ErrCodeUsed
	case CodeRateLimited, CodeDailyQuota:
		return ErrRateLimited
	case CodeInvalidCredential, CodeTokenExpired, CodeInvalidToken, CodeTokenMissing:
		return ErrTokenRejected
	case CodeUserBlocked:
		return ErrUserBlocked
	case CodeInvalidAppID, CodeInvalidSecret, CodeAppIDMissing, CodeSecretMissing, CodeInvalidGrantType,
		CodeIPNotAllowed, CodeIPNotAllowedAPI:
		return ErrMisconfigured
	default:
		return ErrUnavailable
	}
}

// knownCode reports whether the errcode is one this package documents.
func knownCode(code int) bool {
	switch code {
	case CodeSystemError, CodeInvalidGrantType, CodeInvalidAppID, CodeInvalidCode, CodeInvalidSecret,
		CodeCodeUsed, CodeUserBlocked, CodeAppIDMissing, CodeSecretMissing, CodeCodeMissing, CodeRateLimited,
		CodeInvalidCredential, CodeInvalidToken, CodeTokenMissing, CodeTokenExpired, CodeDailyQuota,
		CodeInvalidSignature, CodePhoneQuota, CodeIPNotAllowed, CodeIPNotAllowedAPI:
		return true
	}
	return false
}

// redactedError carries an error whose message has had secrets removed.
// Unwrap exposes the cause (never a *url.Error, whose text holds the request
// URL) so errors.Is(err, context.DeadlineExceeded) and friends still work.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// ValidCodeChars reports whether c is made only of [A-Za-z0-9_-], the
// characters of every code WeChat hands a mini-program (wx.login()'s, the
// getPhoneNumber button's). Callers check the length themselves.
func ValidCodeChars(c string) bool {
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}
