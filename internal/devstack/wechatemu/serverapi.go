package wechatemu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxsession/wxsession/session"
)

// WeChat errcodes of the server APIs (access_token, phone number,
// session_key checks, mini-program codes).
const (
	codeInvalidCredential = 40001
	codeInvalidToken      = 40014
	codeTokenMissing      = 41001
	codeTokenExpired      = 42001
	codeDailyQuota        = 45009
	codeDataFormat        = 47001
	codeInvalidArgs       = 40097
	codeInvalidSignature  = 87009
	codePhoneQuota        = 1400001
)

func init() {
	for k, v := range map[int]string{
		codeInvalidCredential: "invalid credential, access_token is invalid or not latest",
		codeInvalidToken:      "invalid access_token",
		codeTokenMissing:      "access_token missing",
		codeTokenExpired:      "access_token expired",
		codeDailyQuota:        "reach max api daily quota limit",
		codeDataFormat:        "data format error",
		codeInvalidArgs:       "invalid args",
		codeInvalidSignature:  "invalid signature",
		codePhoneQuota:        "user phone number quota exhausted",
	} {
		errmsgs[k] = v
	}
}

// WeChat's documented limits on forced refreshes of the stable token: at
// most 20 a day, and one within 30 s of the previous one does not refresh
// (it answers the current token).
const (
	forcedRefreshesPerDay = 20
	forcedRefreshInterval = 30 * time.Second
	// tokenEarlyRenewal: in normal mode WeChat hands out a new token when
	// the current one has less than 5 minutes left (both stay valid).
	tokenEarlyRenewal = 5 * time.Minute
)

// chinaTime is UTC+8, the day WeChat counts its quotas in.
var chinaTime = time.FixedZone("UTC+8", 8*3600)

type accessToken struct {
	appid   string
	expires time.Time
	revoked bool
}

type phoneCode struct {
	openid      string
	pure        string
	countryCode string
	expires     time.Time
	used        bool
}

// IssuedPhoneCode is what POST /test/phone-codes returns.
type IssuedPhoneCode struct {
	Code string `json:"code"`
}

// serveStableToken is POST /cgi-bin/stable_token (getStableAccessToken).
func (e *Emulator) serveStableToken(w http.ResponseWriter, r *http.Request) {
	if e.serveFault(w, r, APIStableToken) {
		return
	}
	var in struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if json.Unmarshal(body, &in) != nil {
		e.answerErrcode(w, r, APIStableToken, codeDataFormat)
		return
	}
	errcode := 0
	switch {
	case in.AppID == "":
		errcode = codeAppIDMissing
	case !e.serves(in.AppID):
		errcode = codeInvalidAppID
	case in.Secret == "":
		errcode = codeSecretMissing
	case in.Secret != e.secret:
		errcode = codeInvalidSecret
	case in.GrantType != "client_credential":
		errcode = codeInvalidGrantType
	}
	if errcode != 0 {
		e.answerErrcode(w, r, APIStableToken, errcode)
		return
	}
	tok, expiresIn, errcode := e.stableToken(in.AppID, in.ForceRefresh)
	if errcode != 0 {
		e.answerErrcode(w, r, APIStableToken, errcode)
		return
	}
	e.count(0, false)
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "wechatemu: stable_token ok", slog.Bool("force_refresh", in.ForceRefresh))
	out, _ := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}{tok, expiresIn})
	writeWeChat(w, http.StatusOK, out)
}

// stableToken applies WeChat's rules: normal mode answers the current token
// (a new one in its last 5 minutes); force mode revokes every token and
// issues a new one, at most 20 times a day and not within 30 s of the
// previous forced refresh (then the current token is answered).
func (e *Emulator) stableToken(appid string, force bool) (string, int64, int) {
	fresh, err := randomToken()
	if err != nil {
		return "", 0, codeSystemError
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.StableTokenByApp[appid]++
	st := e.apps[appid]
	now := e.now()
	cur := e.tokens[st.current]
	switch {
	case force && (st.lastForced.IsZero() || now.Sub(st.lastForced) >= forcedRefreshInterval):
		day := now.In(chinaTime).Format(time.DateOnly)
		if st.forcedDay != day {
			st.forcedDay, st.forcedN = day, 0
		}
		if st.forcedN >= forcedRefreshesPerDay {
			return "", 0, codeDailyQuota
		}
		st.forcedN++
		st.lastForced = now
		e.stats.StableTokenForced++
		for _, t := range e.tokens {
			if t.appid == appid {
				t.revoked = true
			}
		}
		cur = nil
	case cur != nil && cur.expires.Sub(now) <= tokenEarlyRenewal:
		if !now.Before(cur.expires) {
			delete(e.tokens, st.current)
		}
		cur = nil
	}
	if cur == nil {
		for k, t := range e.tokens { // forget long-dead tokens
			if now.Sub(t.expires) > time.Hour {
				delete(e.tokens, k)
			}
		}
		st.current = fresh
		cur = &accessToken{appid: appid, expires: now.Add(e.tokenTTL)}
		e.tokens[fresh] = cur
	}
	return st.current, int64(cur.expires.Sub(now) / time.Second), 0
}

// checkToken returns 0 and the token's appid when the request's
// access_token is valid, else the errcode WeChat answers.
func (e *Emulator) checkToken(r *http.Request) (int, string) {
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		return codeTokenMissing, ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tokens[tok]
	switch {
	case t == nil && len(tok) < 16:
		return codeInvalidToken, ""
	case t == nil || t.revoked:
		return codeInvalidCredential, ""
	case !e.now().Before(t.expires):
		return codeTokenExpired, ""
	}
	return 0, t.appid
}

// InvalidateTokens makes WeChat reject every access_token issued so far
// with 40001, as after a forced refresh elsewhere.
func (e *Emulator) InvalidateTokens() {
	e.mu.Lock()
	for _, t := range e.tokens {
		t.revoked = true
	}
	e.mu.Unlock()
}

// serveInvalidateTokens is POST /test/tokens/invalidate.
func (e *Emulator) serveInvalidateTokens(w http.ResponseWriter, _ *http.Request) {
	e.InvalidateTokens()
	w.WriteHeader(http.StatusNoContent)
}

// serveGetUserPhoneNumber is POST /wxa/business/getuserphonenumber.
func (e *Emulator) serveGetUserPhoneNumber(w http.ResponseWriter, r *http.Request) {
	if e.serveFault(w, r, APIGetUserPhoneNumber) {
		return
	}
	c, appid := e.checkToken(r)
	if c != 0 {
		e.answerErrcode(w, r, APIGetUserPhoneNumber, c)
		return
	}
	var in struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if json.Unmarshal(body, &in) != nil {
		e.answerErrcode(w, r, APIGetUserPhoneNumber, codeDataFormat)
		return
	}
	if in.Code == "" {
		e.answerErrcode(w, r, APIGetUserPhoneNumber, codeCodeMissing)
		return
	}
	e.mu.Lock()
	pc := e.phoneCodes[in.Code]
	ok := pc != nil && !pc.used && e.now().Before(pc.expires) && (in.OpenID == "" || in.OpenID == pc.openid)
	if ok {
		pc.used = true
	}
	now := e.now()
	e.mu.Unlock()
	if !ok {
		e.answerErrcode(w, r, APIGetUserPhoneNumber, codeInvalidCode)
		return
	}
	full := pc.pure
	if pc.countryCode != "86" {
		full = "+" + pc.countryCode + " " + pc.pure
	}
	type watermark struct {
		Timestamp int64  `json:"timestamp"`
		AppID     string `json:"appid"`
	}
	type phoneInfo struct {
		PhoneNumber     string    `json:"phoneNumber"`
		PurePhoneNumber string    `json:"purePhoneNumber"`
		CountryCode     string    `json:"countryCode"`
		Watermark       watermark `json:"watermark"`
	}
	out, _ := json.Marshal(struct {
		Errcode   int       `json:"errcode"`
		Errmsg    string    `json:"errmsg"`
		PhoneInfo phoneInfo `json:"phone_info"`
	}{0, "ok", phoneInfo{full, pc.pure, pc.countryCode, watermark{now.Unix(), appid}}})
	e.count(0, false)
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "wechatemu: getuserphonenumber ok", slog.String("openid", session.MaskOpenID(pc.openid)))
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// userSignature checks the checksession/resetusersessionkey parameters:
// the token, then sig_method=hmac_sha256 and signature =
// hex(hmac_sha256(session_key, "")) with the user's current key.
func (e *Emulator) userSignature(r *http.Request) (openid string, errcode int) {
	if c, _ := e.checkToken(r); c != 0 {
		return "", c
	}
	q := r.URL.Query()
	openid = q.Get("openid")
	if q.Get("sig_method") != "hmac_sha256" || openid == "" {
		return "", codeInvalidSignature
	}
	key := e.SessionKey(openid)
	if key == "" || !hmac.Equal([]byte(q.Get("signature")), []byte(Signature(key))) {
		return "", codeInvalidSignature
	}
	return openid, 0
}

// Signature is WeChat's user-state signature of a session_key:
// hex(hmac_sha256(key = session_key, message = "")).
func Signature(sessionKey string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	return hex.EncodeToString(m.Sum(nil))
}

// serveCheckSession is GET /wxa/checksession.
func (e *Emulator) serveCheckSession(w http.ResponseWriter, r *http.Request) {
	if e.serveFault(w, r, APICheckSession) {
		return
	}
	if _, c := e.userSignature(r); c != 0 {
		e.answerErrcode(w, r, APICheckSession, c)
		return
	}
	e.count(0, false)
	writeWeChat(w, http.StatusOK, []byte(`{"errcode":0,"errmsg":"ok"}`))
}

// serveResetUserSessionKey is GET /wxa/resetusersessionkey: a new
// session_key for the user, signed with the current one.
func (e *Emulator) serveResetUserSessionKey(w http.ResponseWriter, r *http.Request) {
	if e.serveFault(w, r, APIResetUserSessionKey) {
		return
	}
	openid, c := e.userSignature(r)
	if c != 0 {
		e.answerErrcode(w, r, APIResetUserSessionKey, c)
		return
	}
	key, err := randomSessionKey()
	if err != nil {
		e.answerErrcode(w, r, APIResetUserSessionKey, codeSystemError)
		return
	}
	e.mu.Lock()
	e.users[openid].sessionKey = key // userSignature found the user
	e.mu.Unlock()
	e.count(0, false)
	out, _ := json.Marshal(struct {
		Errcode    int    `json:"errcode"`
		Errmsg     string `json:"errmsg"`
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}{0, "ok", openid, key})
	writeWeChat(w, http.StatusOK, out)
}

// serveGetWXACodeUnlimit is POST /wxa/getwxacodeunlimit: a PNG on success
// (Content-Type image/png), an errcode JSON otherwise.
func (e *Emulator) serveGetWXACodeUnlimit(w http.ResponseWriter, r *http.Request) {
	if e.serveFault(w, r, APIGetWXACodeUnlimit) {
		return
	}
	if c, _ := e.checkToken(r); c != 0 {
		e.answerErrcode(w, r, APIGetWXACodeUnlimit, c)
		return
	}
	var in struct {
		Scene string `json:"scene"`
		Width int    `json:"width"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if json.Unmarshal(body, &in) != nil {
		e.answerErrcode(w, r, APIGetWXACodeUnlimit, codeDataFormat)
		return
	}
	if in.Scene == "" || len(in.Scene) > 32 {
		e.answerErrcode(w, r, APIGetWXACodeUnlimit, codeInvalidArgs)
		return
	}
	size := 64
	img := image.NewGray(image.Rect(0, 0, size, size))
	sum := sha256.Sum256([]byte(in.Scene))
	for y := range size {
		for x := range size {
			bit := sum[(y/8*8+x/8)%32] >> (uint(x+y) % 8) & 1
			img.SetGray(x, y, color.Gray{Y: uint8(255 * bit)})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	e.count(0, false)
	w.Header().Set("Content-Type", "image/png")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// answerErrcode counts and writes an errcode answer.
func (e *Emulator) answerErrcode(w http.ResponseWriter, r *http.Request, api string, errcode int) {
	e.count(errcode, false)
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "wechatemu: refused", slog.String("api", api), slog.Int("errcode", errcode))
	writeWeChat(w, http.StatusOK, e.errBody(errcode))
}

// IssuePhoneCode hands out a getPhoneNumber code for openid: pure is the
// number without country code (default: a random 11-digit mobile number
// starting with 1), countryCode defaults to "86". Codes are 64 hex
// characters, valid for the code TTL (5 minutes) and usable once.
func (e *Emulator) IssuePhoneCode(openid, pure, countryCode string) (string, error) {
	if openid == "" {
		return "", errors.New("wechatemu: openid is required")
	}
	if err := checkID("openid", openid); err != nil {
		return "", err
	}
	if countryCode == "" {
		countryCode = "86"
	}
	if !digits(countryCode, 1, 4) {
		return "", errors.New("wechatemu: country_code must be 1 to 4 digits")
	}
	if pure == "" {
		var buf [8]byte
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		n := uint64(0)
		for _, b := range buf {
			n = n<<8 | uint64(b)
		}
		pure = fmt.Sprintf("1%d%09d", 3+n%7, (n/7)%1_000_000_000)
	}
	if !digits(pure, 4, 15) {
		return "", errors.New("wechatemu: phone_number must be 4 to 15 digits")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	code := hex.EncodeToString(raw[:])
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if len(e.phoneCodes) >= 1024 {
		for c, pc := range e.phoneCodes {
			if !now.Before(pc.expires) {
				delete(e.phoneCodes, c)
			}
		}
	}
	e.phoneCodes[code] = &phoneCode{openid: openid, pure: pure, countryCode: countryCode, expires: now.Add(e.ttl)}
	if e.users[openid] == nil {
		e.users[openid] = &user{}
	}
	e.stats.PhoneCodesIssued++
	return code, nil
}

func digits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// servePhoneCodes is POST /test/phone-codes.
func (e *Emulator) servePhoneCodes(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OpenID      string `json:"openid"`
		PhoneNumber string `json:"phone_number"`
		CountryCode string `json:"country_code"`
	}
	if err := decodeBody(r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	code, err := e.IssuePhoneCode(in.OpenID, in.PhoneNumber, in.CountryCode)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, IssuedPhoneCode{Code: code})
}

// EncryptedData is what POST /test/encrypted-data returns: the
// encryptedData and iv a mini-program API (getPhoneNumber's legacy answer,
// wx.getWeRunData, ...) hands the mini-program, in standard base64.
type EncryptedData struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
}

// Encrypt encrypts data (a JSON object) plus a watermark {timestamp, appid}
// with the user's current session_key, as WeChat does: AES-128-CBC, PKCS#7
// padding, a random iv. appid "" means the emulator's; timestamp 0 means now.
func (e *Emulator) Encrypt(openid string, data map[string]any, appid string, timestamp int64) (EncryptedData, error) {
	key := e.SessionKey(openid)
	if key == "" {
		return EncryptedData{}, errors.New("wechatemu: the user has no session_key yet (log in first)")
	}
	rawKey, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return EncryptedData{}, err
	}
	if appid == "" {
		appid = e.appID
	}
	if timestamp == 0 {
		timestamp = e.now().Unix()
	}
	obj := make(map[string]any, len(data)+1)
	for k, v := range data {
		obj[k] = v
	}
	obj["watermark"] = map[string]any{"timestamp": timestamp, "appid": appid}
	plain, err := json.Marshal(obj)
	if err != nil {
		return EncryptedData{}, err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(rawKey)
	if err != nil {
		return EncryptedData{}, err
	}
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return EncryptedData{}, err
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return EncryptedData{
		EncryptedData: base64.StdEncoding.EncodeToString(out),
		IV:            base64.StdEncoding.EncodeToString(iv),
	}, nil
}

// serveEncryptedData is POST /test/encrypted-data.
func (e *Emulator) serveEncryptedData(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OpenID    string         `json:"openid"`
		Data      map[string]any `json:"data"`
		AppID     string         `json:"appid"`
		Timestamp int64          `json:"timestamp"`
	}
	if err := decodeBody(r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if in.OpenID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "openid is required")
		return
	}
	out, err := e.Encrypt(in.OpenID, in.Data, in.AppID, in.Timestamp)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// randomToken draws an access_token shaped like WeChat's: 136 characters
// of [A-Za-z0-9_-] (102 random bytes in base64url).
func randomToken() (string, error) {
	var buf [102]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("wechatemu: draw access_token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf[:]), nil
}

// CurrentToken returns the access_token normal stable_token calls answer
// for AppID ("" before the first). Tests use it to assert the token never
// leaks.
func (e *Emulator) CurrentToken() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.apps[e.appID].current
}

// Tokens returns every access_token the emulator still remembers (issued
// within the last hour past their expiry); the leak check looks for them.
func (e *Emulator) Tokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.tokens))
	for k := range e.tokens {
		out = append(out, k)
	}
	return out
}
