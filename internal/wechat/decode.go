package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/wxsession/wxsession/session"
)

// Limits on what a jscode2session answer may hold. Real openids and unionids
// are 28 characters and session_keys 24; anything far longer is not WeChat.
const (
	maxBodyBytes      = 64 << 10
	maxIDLength       = 128
	maxSessionKeyLen  = 256
	maxErrMsgLength   = 256
	errMalformedShort = "malformed jscode2session answer"
)

// errMalformed classifies an answer that is not a well-formed jscode2session
// response (not JSON, not an object, wrong field types, missing openid or
// session_key). It is retried and ends as ErrUnavailable.
var errMalformed = fmt.Errorf("%s: %w", errMalformedShort, ErrUnavailable)

// wireResponse is the jscode2session answer. errcode is kept raw: WeChat sends
// a number, some proxies a string.
type wireResponse struct {
	OpenID     string          `json:"openid"`
	SessionKey string          `json:"session_key"`
	UnionID    string          `json:"unionid"`
	ErrCode    json.RawMessage `json:"errcode"`
	ErrMsg     string          `json:"errmsg"`
}

// decodeResponse turns a jscode2session body into an Identity, an *APIError
// (errcode answer) or an error wrapping errMalformed. It never returns an
// Identity without openid and session_key together with a nil error, and the
// errors it returns never quote the body (it may hold a session_key).
func decodeResponse(body []byte) (session.Identity, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return session.Identity{}, fmt.Errorf("empty body: %w", errMalformed)
	}
	if body[0] != '{' {
		return session.Identity{}, fmt.Errorf("body is not a JSON object: %w", errMalformed)
	}
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return session.Identity{}, fmt.Errorf("invalid JSON at offset %d: %w", syn.Offset, errMalformed)
		case errors.As(err, &typ):
			return session.Identity{}, fmt.Errorf("field %q has JSON type %s: %w", typ.Field, typ.Value, errMalformed)
		default:
			return session.Identity{}, fmt.Errorf("invalid JSON: %w", errMalformed)
		}
	}
	code, err := parseErrCode(w.ErrCode)
	if err != nil {
		return session.Identity{}, err
	}
	if code != 0 {
		return session.Identity{}, &APIError{Code: code, Message: truncate(w.ErrMsg, maxErrMsgLength)}
	}
	if w.OpenID == "" || w.SessionKey == "" {
		return session.Identity{}, fmt.Errorf("answer without openid or session_key: %w", errMalformed)
	}
	if !plausible(w.OpenID, maxIDLength) || !plausible(w.SessionKey, maxSessionKeyLen) ||
		(w.UnionID != "" && !plausible(w.UnionID, maxIDLength)) {
		return session.Identity{}, fmt.Errorf("answer with implausible openid, unionid or session_key: %w", errMalformed)
	}
	return session.Identity{OpenID: w.OpenID, UnionID: w.UnionID, SessionKey: w.SessionKey}, nil
}

// parseErrCode reads errcode: absent or null means 0; a JSON integer or a
// string holding one is accepted; anything else is malformed.
func parseErrCode(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if n, err := strconv.Atoi(s); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("errcode is not an integer: %w", errMalformed)
}

// plausible reports whether s is 1..max printable ASCII characters without
// spaces, which every openid, unionid and session_key WeChat issues is.
func plausible(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes (on a rune boundary).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}
