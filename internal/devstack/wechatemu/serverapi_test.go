package wechatemu_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
)

// tokenAnswer is a decoded stable_token answer.
type tokenAnswer struct {
	status      int
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Errcode     int    `json:"errcode"`
	Errmsg      string `json:"errmsg"`
}

func (e *env) stableToken(t *testing.T, body string) tokenAnswer {
	t.Helper()
	status, raw := e.post(t, "/cgi-bin/stable_token", body)
	a := tokenAnswer{status: status}
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		t.Fatalf("stable_token answer %q: %v", raw, err)
	}
	return a
}

func tokenBody(force bool) string {
	b, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": wechatemu.DefaultAppID,
		"secret": wechatemu.DefaultSecret, "force_refresh": force})
	return string(b)
}

func TestStableTokenParameters(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		body map[string]any
		want int
	}{
		{"appid missing", map[string]any{"grant_type": "client_credential", "secret": wechatemu.DefaultSecret}, 41002},
		{"wrong appid", map[string]any{"grant_type": "client_credential", "appid": "wxother", "secret": wechatemu.DefaultSecret}, 40013},
		{"secret missing", map[string]any{"grant_type": "client_credential", "appid": wechatemu.DefaultAppID}, 41004},
		{"wrong secret", map[string]any{"grant_type": "client_credential", "appid": wechatemu.DefaultAppID, "secret": "x"}, 40125},
		{"wrong grant_type", map[string]any{"grant_type": "x", "appid": wechatemu.DefaultAppID, "secret": wechatemu.DefaultSecret}, 40002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.body)
			if a := e.stableToken(t, string(b)); a.Errcode != tt.want || a.AccessToken != "" {
				t.Errorf("errcode %d token %q, want %d", a.Errcode, a.AccessToken, tt.want)
			}
		})
	}
	if a := e.stableToken(t, "not json"); a.Errcode != 47001 {
		t.Errorf("garbage body: errcode %d, want 47001", a.Errcode)
	}
}

func TestStableTokenModes(t *testing.T) {
	e := newEnv(t)
	first := e.stableToken(t, tokenBody(false))
	if first.AccessToken == "" || first.ExpiresIn != 7200 {
		t.Fatalf("first token: %+v", first)
	}
	e.clock.Add(10 * time.Minute)
	again := e.stableToken(t, tokenBody(false))
	if again.AccessToken != first.AccessToken || again.ExpiresIn != 7200-600 {
		t.Fatalf("normal mode changed the token or its expiry: %+v", again)
	}
	// Forced: a new token, the old one revoked.
	forced := e.stableToken(t, tokenBody(true))
	if forced.AccessToken == first.AccessToken || forced.ExpiresIn != 7200 {
		t.Fatalf("forced refresh: %+v", forced)
	}
	if c := e.phoneCall(t, first.AccessToken, `{"code":"x"}`); c != 40001 {
		t.Errorf("revoked token: errcode %d, want 40001", c)
	}
	// Within 30 s: no refresh, the current token.
	e.clock.Add(29 * time.Second)
	if a := e.stableToken(t, tokenBody(true)); a.AccessToken != forced.AccessToken {
		t.Errorf("forced refresh within 30 s replaced the token")
	}
	e.clock.Add(time.Second)
	third := e.stableToken(t, tokenBody(true))
	if third.AccessToken == forced.AccessToken {
		t.Errorf("forced refresh after 30 s kept the token")
	}
	// Last 5 minutes: normal mode hands out a new token; the old one works
	// until it expires.
	e.clock.Add(7200*time.Second - 5*time.Minute)
	renewed := e.stableToken(t, tokenBody(false))
	if renewed.AccessToken == third.AccessToken || renewed.ExpiresIn != 7200 {
		t.Fatalf("early renewal: %+v", renewed)
	}
	if c := e.phoneCall(t, third.AccessToken, `{"code":"x"}`); c != 40029 {
		t.Errorf("old token in its last minutes: errcode %d, want 40029 (token accepted)", c)
	}
	e.clock.Add(5 * time.Minute)
	if c := e.phoneCall(t, third.AccessToken, `{"code":"x"}`); c != 42001 {
		t.Errorf("expired token: errcode %d, want 42001", c)
	}
	if st := e.emu.Stats(); st.StableToken != 6 || st.StableTokenForced != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestForcedRefreshDailyLimit(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		if a := e.stableToken(t, tokenBody(true)); a.AccessToken == "" {
			t.Fatalf("forced refresh %d: %+v", i+1, a)
		}
		e.clock.Add(31 * time.Second)
	}
	if a := e.stableToken(t, tokenBody(true)); a.Errcode != 45009 {
		t.Fatalf("21st forced refresh: %+v, want 45009", a)
	}
	e.clock.Add(24 * time.Hour)
	if a := e.stableToken(t, tokenBody(true)); a.AccessToken == "" {
		t.Fatalf("forced refresh the next day: %+v", a)
	}
}

// phoneCall calls getuserphonenumber and returns the errcode.
func (e *env) phoneCall(t *testing.T, token, body string) int {
	t.Helper()
	_, raw := e.post(t, "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(token), body)
	var a struct{ Errcode int }
	_ = json.Unmarshal([]byte(raw), &a)
	return a.Errcode
}

func TestGetUserPhoneNumber(t *testing.T) {
	e := newEnv(t)
	tok := e.stableToken(t, tokenBody(false)).AccessToken
	status, raw := e.post(t, "/test/phone-codes", `{"openid":"oPhone1","phone_number":"13800138000"}`)
	var pc struct{ Code string }
	if status != 200 || json.Unmarshal([]byte(raw), &pc) != nil || len(pc.Code) != 64 {
		t.Fatalf("phone-codes: %d %s", status, raw)
	}
	intl, _ := e.emu.IssuePhoneCode("oPhone2", "91234567", "852")
	tests := []struct {
		name, token, body string
		errcode           int
		phone, pure, cc   string
	}{
		{"no token", "", `{"code":"` + pc.Code + `"}`, 41001, "", "", ""},
		{"unknown token", strings.Repeat("A", 136), `{"code":"` + pc.Code + `"}`, 40001, "", "", ""},
		{"malformed token", "abc", `{"code":"` + pc.Code + `"}`, 40014, "", "", ""},
		{"not JSON", tok, `nope`, 47001, "", "", ""},
		{"unknown code", tok, `{"code":"0000"}`, 40029, "", "", ""},
		{"other user's code", tok, `{"code":"` + pc.Code + `","openid":"oSomeoneElse"}`, 40029, "", "", ""},
		{"ok", tok, `{"code":"` + pc.Code + `","openid":"oPhone1"}`, 0, "13800138000", "13800138000", "86"},
		{"used", tok, `{"code":"` + pc.Code + `"}`, 40029, "", "", ""},
		{"country code", tok, `{"code":"` + intl + `"}`, 0, "+852 91234567", "91234567", "852"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, raw := e.post(t, "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tt.token), tt.body)
			var a struct {
				Errcode   int
				PhoneInfo struct {
					PhoneNumber, PurePhoneNumber, CountryCode string
					Watermark                                 struct {
						Timestamp int64
						AppID     string
					}
				} `json:"phone_info"`
			}
			if err := json.Unmarshal([]byte(raw), &a); err != nil {
				t.Fatal(err)
			}
			p := a.PhoneInfo
			if a.Errcode != tt.errcode || p.PhoneNumber != tt.phone || p.PurePhoneNumber != tt.pure || p.CountryCode != tt.cc {
				t.Fatalf("answer %s", raw)
			}
			if tt.errcode == 0 && (p.Watermark.AppID != wechatemu.DefaultAppID || p.Watermark.Timestamp != e.clock.Now().Unix()) {
				t.Errorf("watermark %+v", p.Watermark)
			}
		})
	}
	for _, body := range []string{`{}`, `{"openid":"o1","phone_number":"12ab"}`, `{"openid":"o1","country_code":"x"}`} {
		if status, _ := e.post(t, "/test/phone-codes", body); status != 400 {
			t.Errorf("phone-codes %s: %d, want 400", body, status)
		}
	}
}

func TestCheckAndResetSessionKey(t *testing.T) {
	e := newEnv(t)
	tok := e.stableToken(t, tokenBody(false)).AccessToken
	code := e.issue(t, "oKey1", "")
	e.exchange(t, code)
	key := e.emu.SessionKey("oKey1")
	get := func(path, openid, sig, method string) (int, string) {
		q := url.Values{"access_token": {tok}, "openid": {openid}, "signature": {sig}, "sig_method": {method}}
		resp, err := http.Get(e.srv.URL + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var a struct{ Errcode int }
		_ = json.Unmarshal(b, &a)
		return a.Errcode, string(b)
	}
	tests := []struct {
		name, openid, sig, method string
		want                      int
	}{
		{"valid", "oKey1", wechatemu.Signature(key), "hmac_sha256", 0},
		{"wrong key", "oKey1", wechatemu.Signature("bm90IHRoZSBrZXkAAAAAAA=="), "hmac_sha256", 87009},
		{"wrong method", "oKey1", wechatemu.Signature(key), "md5", 87009},
		{"unknown user", "oNobody", wechatemu.Signature(key), "hmac_sha256", 87009},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, raw := get("/wxa/checksession", tt.openid, tt.sig, tt.method); c != tt.want {
				t.Errorf("checksession: %s, want %d", raw, tt.want)
			}
		})
	}
	c, raw := get("/wxa/resetusersessionkey", "oKey1", wechatemu.Signature(key), "hmac_sha256")
	var reset struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}
	_ = json.Unmarshal([]byte(raw), &reset)
	if c != 0 || reset.OpenID != "oKey1" || reset.SessionKey == key || reset.SessionKey != e.emu.SessionKey("oKey1") {
		t.Fatalf("reset: %s", raw)
	}
	if c, _ := get("/wxa/checksession", "oKey1", wechatemu.Signature(key), "hmac_sha256"); c != 87009 {
		t.Errorf("old key after reset: %d, want 87009", c)
	}
	if st := e.emu.Stats(); st.CheckSession != 5 || st.ResetUserSessionKey != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestEncryptedData(t *testing.T) {
	e := newEnv(t)
	e.exchange(t, e.issue(t, "oEnc1", ""))
	status, raw := e.post(t, "/test/encrypted-data", `{"openid":"oEnc1","data":{"phoneNumber":"13800138000"},"timestamp":123}`)
	var ed wechatemu.EncryptedData
	if status != 200 || json.Unmarshal([]byte(raw), &ed) != nil {
		t.Fatalf("%d %s", status, raw)
	}
	key, _ := base64.StdEncoding.DecodeString(e.emu.SessionKey("oEnc1"))
	ct, _ := base64.StdEncoding.DecodeString(ed.EncryptedData)
	iv, _ := base64.StdEncoding.DecodeString(ed.IV)
	block, _ := aes.NewCipher(key)
	if len(iv) != 16 || len(ct)%16 != 0 {
		t.Fatalf("iv %d bytes, ciphertext %d bytes", len(iv), len(ct))
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(ct, ct)
	pad := int(ct[len(ct)-1])
	if pad < 1 || pad > 16 || !bytes.Equal(ct[len(ct)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("bad padding")
	}
	var got map[string]any
	if err := json.Unmarshal(ct[:len(ct)-pad], &got); err != nil {
		t.Fatal(err)
	}
	wm, _ := got["watermark"].(map[string]any)
	if got["phoneNumber"] != "13800138000" || wm["appid"] != wechatemu.DefaultAppID || wm["timestamp"] != 123.0 {
		t.Errorf("plaintext %v", got)
	}
	if status, _ := e.post(t, "/test/encrypted-data", `{"openid":"oNoLogin","data":{}}`); status != 400 {
		t.Errorf("user without session_key: %d, want 400", status)
	}
}

func TestFaultsPerAPI(t *testing.T) {
	e := newEnv(t)
	if status, _ := e.post(t, "/test/faults", `{"api":"nope","errcode":-1,"count":1}`); status != 400 {
		t.Fatalf("unknown api: %d", status)
	}
	for _, api := range []string{"stable_token", "getuserphonenumber", "checksession", "resetusersessionkey"} {
		if status, raw := e.post(t, "/test/faults", `{"api":"`+api+`","errcode":45011,"count":1}`); status != 200 || !strings.Contains(raw, `"api":"`+api+`"`) {
			t.Fatalf("%s: %d %s", api, status, raw)
		}
	}
	// jscode2session is unaffected.
	if a := e.exchange(t, e.issue(t, "oF1", "")); a.Errcode != 0 {
		t.Fatalf("jscode2session faulted: %+v", a)
	}
	if a := e.stableToken(t, tokenBody(false)); a.Errcode != 45011 {
		t.Fatalf("stable_token fault: %+v", a)
	}
	tok := e.stableToken(t, tokenBody(false)).AccessToken
	if c := e.phoneCall(t, tok, `{"code":"x"}`); c != 45011 {
		t.Errorf("getuserphonenumber fault: %d", c)
	}
	if c := e.phoneCall(t, tok, `{"code":"x"}`); c != 40029 {
		t.Errorf("after the fault: %d", c)
	}
	resp, _ := http.Get(e.srv.URL + "/wxa/checksession?access_token=" + tok)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "45011") {
		t.Errorf("checksession fault: %s", b)
	}
	// Stats as JSON carry the five keys.
	resp, err := http.Get(e.srv.URL + "/test/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&st)
	for k, want := range map[string]float64{"jscode2session": 1, "stable_token": 2, "getuserphonenumber": 2, "checksession": 1, "resetusersessionkey": 0} {
		if st[k] != want {
			t.Errorf("stats %s = %v, want %v", k, st[k], want)
		}
	}
}

func TestInvalidateTokensAndWXACode(t *testing.T) {
	e := newEnv(t)
	tok := e.stableToken(t, tokenBody(false)).AccessToken
	call := func() (*http.Response, []byte) {
		resp, err := http.Post(e.srv.URL+"/wxa/getwxacodeunlimit?access_token="+tok, "application/json", strings.NewReader(`{"scene":"a=1"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := call()
	if resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("getwxacodeunlimit: %s %q", resp.Header.Get("Content-Type"), b)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if status, _ := e.post(t, "/test/tokens/invalidate", ""); status != 204 {
		t.Fatalf("invalidate: %d", status)
	}
	if _, b := call(); !strings.Contains(string(b), `"errcode":40001`) {
		t.Fatalf("after invalidation: %s", b)
	}
	// Normal mode still answers the revoked token, as WeChat does until a
	// forced refresh: that is the trap the shared token must get out of.
	if a := e.stableToken(t, tokenBody(false)); a.AccessToken != tok {
		t.Errorf("normal mode after invalidation returned a new token")
	}
	if a := e.stableToken(t, tokenBody(true)); a.AccessToken == tok {
		t.Errorf("forced refresh kept the revoked token")
	}
}
