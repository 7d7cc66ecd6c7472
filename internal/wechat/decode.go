package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/wxsession/wxsession/session"
)

// Limits on what a jscode2session answer may hold. Real openids and unionids
// are 28 characters of [A-Za-z0-9_-]; a session_key is 16 bytes in standard
// base64 (24 characters).
const (
	maxBodyBytes      = 64 << 10
	maxIDLength       = 128
	sessionKeyBytes   = 16
	maxErrMsgLength   = 256
	errMalformedShort = "malformed WeChat answer"
)

// errMalformed classifies an answer that is not a well-formed WeChat
// response (not JSON, not an object, wrong field types, duplicate or
// miscased keys, missing or implausible openid or session_key). It is
// retried and ends as ErrUnavailable.
var errMalformed = fmt.Errorf("%s: %w", errMalformedShort, ErrUnavailable)

// wireResponse is the jscode2session answer. errcode is kept raw: WeChat sends
// a number, some proxies a string.
type wireResponse struct {
	OpenID     string
	SessionKey string
	UnionID    string
	ErrCode    json.RawMessage
	ErrMsg     string
}

// The answer's keys, matched exactly (docs/design.md §10).
var wireKeys = [...]string{"openid", "session_key", "unionid", "errcode", "errmsg"}

// decodeResponse turns a jscode2session body into an Identity, an *APIError
// (errcode answer) or an error wrapping errMalformed. It never returns an
// Identity without openid and session_key together with a nil error, and the
// errors it returns never quote the body (it may hold a session_key).
//
// Decoding is strict (docs/design.md §10): key names must match exactly
// (encoding/json would take "OPENID" for "openid"), a key may appear only
// once (encoding/json keeps the last), openid and unionid are 1..128
// characters of [A-Za-z0-9_-], and session_key is standard base64 of
// exactly 16 bytes. The APIError's Message is WeChat's errmsg in full: the
// caller removes secrets from it before cutting it (see Client.attempt).
func decodeResponse(body []byte) (session.Identity, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return session.Identity{}, fmt.Errorf("empty body: %w", errMalformed)
	}
	if body[0] != '{' {
		return session.Identity{}, fmt.Errorf("body is not a JSON object: %w", errMalformed)
	}
	w, err := decodeWire(body)
	if err != nil {
		return session.Identity{}, err
	}
	code, err := parseErrCode(w.ErrCode)
	if err != nil {
		return session.Identity{}, err
	}
	if code != 0 {
		return session.Identity{}, &APIError{Code: code, Message: w.ErrMsg}
	}
	if w.OpenID == "" || w.SessionKey == "" {
		return session.Identity{}, fmt.Errorf("answer without openid or session_key: %w", errMalformed)
	}
	if !validID(w.OpenID) || (w.UnionID != "" && !validID(w.UnionID)) {
		return session.Identity{}, fmt.Errorf("answer with an openid or unionid that is not 1..%d characters of [A-Za-z0-9_-]: %w", maxIDLength, errMalformed)
	}
	if !validSessionKey(w.SessionKey) {
		return session.Identity{}, fmt.Errorf("answer with a session_key that is not base64 of %d bytes: %w", sessionKeyBytes, errMalformed)
	}
	return session.Identity{OpenID: w.OpenID, UnionID: w.UnionID, SessionKey: w.SessionKey}, nil
}

// decodeWire reads one JSON object token by token: known keys must be
// spelled exactly and appear once; unknown keys are skipped (WeChat may add
// fields) but may not repeat either, nor differ from a known key only in
// case; nothing may follow the object.
func decodeWire(body []byte) (wireResponse, error) {
	var w wireResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '{', checked by the caller
		return w, syntaxError(err)
	}
	var seen [len(wireKeys)]bool
	var other map[string]bool // unknown keys seen; allocated on the first one
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return w, syntaxError(err)
		}
		key, _ := tok.(string) // inside an object the decoder only yields string keys
		i := slices.Index(wireKeys[:], key)
		if i < 0 {
			for _, k := range wireKeys {
				if strings.EqualFold(key, k) {
					return w, fmt.Errorf("key spelled differently from %q: %w", k, errMalformed)
				}
			}
			if other[key] {
				return w, fmt.Errorf("duplicate key: %w", errMalformed)
			}
			if other == nil {
				other = map[string]bool{}
			}
			other[key] = true
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return w, syntaxError(err)
			}
			continue
		}
		if seen[i] {
			return w, fmt.Errorf("duplicate key %q: %w", key, errMalformed)
		}
		seen[i] = true
		var dst any
		switch i {
		case 0:
			dst = &w.OpenID
		case 1:
			dst = &w.SessionKey
		case 2:
			dst = &w.UnionID
		case 3:
			dst = &w.ErrCode
		case 4:
			dst = &w.ErrMsg
		}
		if err := dec.Decode(dst); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				return w, fmt.Errorf("field %q has JSON type %s: %w", key, typ.Value, errMalformed)
			}
			return w, syntaxError(err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return w, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return w, fmt.Errorf("data after the JSON object: %w", errMalformed)
	}
	return w, nil
}

// syntaxError describes a decoding error without quoting the body.
func syntaxError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("invalid JSON at offset %d: %w", syn.Offset, errMalformed)
	}
	return fmt.Errorf("invalid JSON: %w", errMalformed)
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

// validID reports whether s is 1..maxIDLength characters of [A-Za-z0-9_-],
// as every openid and unionid WeChat issues is. The user key
// "<appid>#<openid>" relies on it holding no '#'.
func validID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validSessionKey reports whether s is the standard, padded base64 encoding
// of exactly sessionKeyBytes bytes (the AES-128 key of encryptedData).
func validSessionKey(s string) bool {
	if len(s) != base64.StdEncoding.EncodedLen(sessionKeyBytes) {
		return false
	}
	var buf [sessionKeyBytes + 2]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(s))
	return err == nil && n == sessionKeyBytes
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

// checkErrcode reads only errcode and errmsg of a WeChat JSON answer: nil
// for errcode 0 or absent, an *APIError for a non-zero one, an error
// wrapping errMalformed when body is not a JSON object. It never quotes the
// body.
func checkErrcode(body []byte) error {
	if len(body) == 0 || body[0] != '{' {
		return fmt.Errorf("body is not a JSON object: %w", errMalformed)
	}
	var w struct {
		ErrCode json.RawMessage `json:"errcode"`
		ErrMsg  string          `json:"errmsg"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return fmt.Errorf("invalid JSON answer: %w", errMalformed)
	}
	code, err := parseErrCode(w.ErrCode)
	if err != nil {
		return err
	}
	if code != 0 {
		return &APIError{Code: code, Message: w.ErrMsg}
	}
	return nil
}

// plausibleToken reports whether s is 1..max printable ASCII characters
// without spaces, as every access_token WeChat issues is.
func plausibleToken(s string, max int) bool {
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
