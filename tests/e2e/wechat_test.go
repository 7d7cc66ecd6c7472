package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
)

const (
	fnWechat  = "WechatFunction"
	tblTokens = "TokensTable"
	tblPhones = "PhonesTable"
)

// wechatEnv is what the e2e stack sets for the wechat function: unique
// phone numbers (the default, false, is covered by internal/wxuser's tests).
var wechatEnv = map[string]string{"PHONE_UNIQUE": "true"}

// emu POSTs body to an emulator test hook and decodes the answer into out.
func emu(t testing.TB, path string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	r := do(t, http.MethodPost, stk.WeChatURL+path, string(b))
	if r.Status/100 != 2 {
		t.Fatalf("POST %s %s: %s", path, b, r)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
	}
}

// emuStats is GET /test/stats.
func emuStats(t testing.TB) map[string]int {
	t.Helper()
	r := do(t, http.MethodGet, stk.WeChatURL+"/test/stats", "")
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, k := range []string{"jscode2session", "stable_token", "stable_token_forced", "getuserphonenumber", "checksession", "resetusersessionkey"} {
		v, ok := m[k].(float64)
		if !ok {
			t.Fatalf("GET /test/stats has no %q: %s", k, r.Body)
		}
		out[k] = int(v)
	}
	return out
}

// randomNumber is an 11-digit mobile number no other test uses.
func randomNumber() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "139" + fmt.Sprintf("%08d", (uint64(b[0])<<32|uint64(b[1])<<24|uint64(b[2])<<16|uint64(b[3])<<8|uint64(b[4]))%100_000_000)
}

// phoneCode is the getPhoneNumber button: a code for openid's number.
func phoneCode(t testing.TB, openid, number string) string {
	t.Helper()
	secrets.addLogsOnly(number, "phone number")
	var out struct{ Code string }
	emu(t, "/test/phone-codes", map[string]string{"openid": openid, "phone_number": number}, &out)
	secrets.add(out.Code, "phone code", -1)
	return out.Code
}

// encrypted is encryptedData/iv for openid's current session_key.
func encrypted(t testing.TB, openid string, data map[string]any, appid string, ts int64) (string, string) {
	t.Helper()
	var out wechatemu.EncryptedData
	body := map[string]any{"openid": openid, "data": data}
	if appid != "" {
		body["appid"] = appid
	}
	if ts != 0 {
		body["timestamp"] = ts
	}
	emu(t, "/test/encrypted-data", body, &out)
	return out.EncryptedData, out.IV
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// noteKeysAndTokens adds the current session_key of openid and every
// access_token to the leak check.
func noteKeysAndTokens(openid string) {
	secrets.add(stk.Emulator.SessionKey(openid), "session_key", -1)
	for _, tok := range stk.Emulator.Tokens() {
		secrets.add(tok, "access_token", -1)
	}
}

func TestPhoneByCode(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	id := lr.SessionID
	number := randomNumber()
	code := phoneCode(t, lr.OpenID, number)
	before := emuStats(t)

	r := do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": code}), bearer(id)...)
	want := map[string]any{"phone_number": number, "pure_phone_number": number, "country_code": "86"}
	if m, err := r.JSON(); err != nil || r.Status != 200 || fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("POST /me/phone: %s", r)
	}
	// The same code again (one after the other, then 8 at once): the same
	// answer, no second paid call.
	var wg sync.WaitGroup
	errs := &errList{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(context.Background(), http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": code}), bearer(id))
			if err != nil || r.Status != 200 || r.str("pure_phone_number") != number {
				errs.add(fmt.Errorf("repeat: %v %s", err, r))
			}
		}()
	}
	wg.Wait()
	if err := errs.err(); err != nil {
		t.Fatal(err)
	}
	if d := emuStats(t)["getuserphonenumber"] - before["getuserphonenumber"]; d != 1 {
		t.Errorf("getuserphonenumber calls = %d, want 1", d)
	}
	if r := do(t, http.MethodGet, stk.APIURL+"/me/phone", "", bearer(id)...); r.Status != 200 || r.str("phone_number") != number {
		t.Errorf("GET /me/phone: %s", r)
	}
	for range 2 { // idempotent
		if r := do(t, http.MethodDelete, stk.APIURL+"/me/phone", "", bearer(id)...); r.Status != 204 {
			t.Errorf("DELETE /me/phone: %s", r)
		}
	}
	if r := do(t, http.MethodGet, stk.APIURL+"/me/phone", "", bearer(id)...); r.Status != 404 || r.str("error") != "phone_not_bound" {
		t.Errorf("GET /me/phone after DELETE: %s", r)
	}
	// Outside China: phone_number carries the country code.
	var hk struct{ Code string }
	emu(t, "/test/phone-codes", map[string]string{"openid": lr.OpenID, "phone_number": "91234567", "country_code": "852"}, &hk)
	secrets.add(hk.Code, "phone code", -1)
	r = do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": hk.Code}), bearer(id)...)
	if r.Status != 200 || r.str("phone_number") != "+852 91234567" || r.str("country_code") != "852" {
		t.Errorf("POST /me/phone (852): %s", r)
	}
	noteKeysAndTokens(lr.OpenID)
}

func TestPhoneErrors(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	id := lr.SessionID
	t.Cleanup(func() { clearFaults(t) })
	tests := []struct {
		name       string
		fault      map[string]any
		body       string // "" = a fresh valid code
		status     int
		code       string
		retryAfter bool
	}{
		{name: "not JSON", body: `{"code":`, status: 400, code: "invalid_request"},
		{name: "empty object", body: `{}`, status: 400, code: "invalid_request"},
		{name: "code not a string", body: `{"code":12}`, status: 400, code: "invalid_request"},
		{name: "code with spaces", body: `{"code":"a b"}`, status: 400, code: "invalid_request"},
		{name: "code and encryptedData", body: `{"code":"abc","encryptedData":"x","iv":"y"}`, status: 400, code: "invalid_request"},
		{name: "unknown field", body: `{"code":"abc","x":1}`, status: 400, code: "invalid_request"},
		{name: "huge body", body: `{"code":"` + strings.Repeat("a", 64<<10) + `"}`, status: 413, code: "payload_too_large"},
		{name: "40029 unknown code", body: `{"code":"` + strings.Repeat("0", 64) + `"}`, status: 400, code: "invalid_code"},
		{name: "40029 fault", fault: map[string]any{"api": "getuserphonenumber", "errcode": 40029, "count": 1}, status: 400, code: "invalid_code"},
		{name: "1400001 quota", fault: map[string]any{"api": "getuserphonenumber", "errcode": 1400001, "count": 1}, status: 503, code: "phone_quota_exhausted", retryAfter: true},
		{name: "-1 system error", fault: map[string]any{"api": "getuserphonenumber", "errcode": -1, "count": 5}, status: 503, code: "wechat_unavailable", retryAfter: true},
		{name: "HTTP 500", fault: map[string]any{"api": "getuserphonenumber", "status": 500, "count": 5}, status: 503, code: "wechat_unavailable", retryAfter: true},
		{name: "45011 rate limit", fault: map[string]any{"api": "getuserphonenumber", "errcode": 45011, "count": 1}, status: 429, code: "rate_limited", retryAfter: true},
		{name: "40013 misconfigured", fault: map[string]any{"api": "getuserphonenumber", "errcode": 40164, "count": 1}, status: 500, code: "server_misconfigured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearFaults(t)
			body := tt.body
			if body == "" {
				body = jsonBody(map[string]string{"code": phoneCode(t, lr.OpenID, randomNumber())})
			}
			if tt.fault != nil {
				setFault(t, tt.fault)
			}
			r := do(t, http.MethodPost, stk.APIURL+"/me/phone", body, bearer(id)...)
			if r.Status != tt.status || r.str("error") != tt.code {
				t.Fatalf("got %s, want %d %s", r, tt.status, tt.code)
			}
			if got := r.Header.Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After present = %v, want %v", got, tt.retryAfter)
			}
		})
	}
	// After a WeChat outage the same code works: a failed lookup is not
	// remembered and not counted.
	clearFaults(t)
	code := phoneCode(t, lr.OpenID, randomNumber())
	setFault(t, map[string]any{"api": "getuserphonenumber", "status": 503, "count": 3})
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": code}), bearer(id)...); r.Status != 503 {
		t.Fatalf("during the outage: %s", r)
	}
	clearFaults(t)
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": code}), bearer(id)...); r.Status != 200 {
		t.Fatalf("after the outage: %s", r)
	}
	// No session: the authorizer denies.
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", `{"code":"abc"}`); r.Status != 403 {
		t.Errorf("without a session: %s", r)
	}
	noteKeysAndTokens(lr.OpenID)
}

// TestPhoneDailyLimit: PHONE_LOOKUPS_PER_USER_PER_DAY (5) paid lookups a
// day; the sixth is 429 phone_lookup_limited without calling WeChat.
func TestPhoneDailyLimit(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	for i := range 5 {
		r := do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": phoneCode(t, lr.OpenID, randomNumber())}), bearer(lr.SessionID)...)
		if r.Status != 200 {
			t.Fatalf("lookup %d: %s", i+1, r)
		}
	}
	before := emuStats(t)["getuserphonenumber"]
	r := do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": phoneCode(t, lr.OpenID, randomNumber())}), bearer(lr.SessionID)...)
	if r.Status != 429 || r.str("error") != "phone_lookup_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth lookup: %s", r)
	}
	if d := emuStats(t)["getuserphonenumber"] - before; d != 0 {
		t.Errorf("the refused lookup called WeChat %d times", d)
	}
	// Another user is not limited.
	other := login(t, "")
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": phoneCode(t, other.OpenID, randomNumber())}), bearer(other.SessionID)...); r.Status != 200 {
		t.Errorf("another user: %s", r)
	}
}

// TestPhoneUnique: with PHONE_UNIQUE=true a number has one user at a time.
func TestPhoneUnique(t *testing.T) {
	needStack(t)
	a, b := login(t, ""), login(t, "")
	number := randomNumber()
	post := func(lr loginResult) response {
		return do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": phoneCode(t, lr.OpenID, number)}), bearer(lr.SessionID)...)
	}
	if r := post(a); r.Status != 200 {
		t.Fatalf("a: %s", r)
	}
	if r := post(b); r.Status != 409 || r.str("error") != "phone_in_use" {
		t.Fatalf("b while a holds it: %s", r)
	}
	if r := do(t, http.MethodGet, stk.APIURL+"/me/phone", "", bearer(b.SessionID)...); r.Status != 404 {
		t.Errorf("b has a phone after 409: %s", r)
	}
	// a moves to another number: the old one is free.
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"code": phoneCode(t, a.OpenID, randomNumber())}), bearer(a.SessionID)...); r.Status != 200 {
		t.Fatalf("a rebinds: %s", r)
	}
	if r := post(b); r.Status != 200 {
		t.Fatalf("b after a moved: %s", r)
	}
}

func TestEncryptedData(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	id := lr.SessionID
	secretValue := "DECRYPTED-" + hex.EncodeToString([]byte(lr.OpenID[:6]))
	secrets.addLogsOnly(secretValue, "decrypted data")
	number := randomNumber()
	secrets.addLogsOnly(number, "phone number")
	now := time.Now().Unix()

	ed, iv := encrypted(t, lr.OpenID, map[string]any{"stepInfoList": []any{map[string]any{"timestamp": now, "step": 1234}}, "note": secretValue}, "", 0)
	r := do(t, http.MethodPost, stk.APIURL+"/me/decrypt", jsonBody(map[string]string{"encryptedData": ed, "iv": iv}), bearer(id)...)
	m, err := r.JSON()
	if err != nil || r.Status != 200 || m["note"] != secretValue || m["watermark"] != nil || m["stepInfoList"] == nil {
		t.Fatalf("POST /me/decrypt: %s", r)
	}
	// The legacy phone flow: bind from encryptedData, no paid lookup.
	before := emuStats(t)["getuserphonenumber"]
	ed, iv = encrypted(t, lr.OpenID, map[string]any{"phoneNumber": number, "purePhoneNumber": number, "countryCode": "86"}, "", 0)
	r = do(t, http.MethodPost, stk.APIURL+"/me/phone", jsonBody(map[string]string{"encryptedData": ed, "iv": iv}), bearer(id)...)
	if r.Status != 200 || r.str("pure_phone_number") != number {
		t.Fatalf("POST /me/phone (encryptedData): %s", r)
	}
	if emuStats(t)["getuserphonenumber"] != before {
		t.Errorf("encryptedData binding called getuserphonenumber")
	}

	good := map[string]any{"note": secretValue}
	edOld, ivOld := encrypted(t, lr.OpenID, good, "", 0)
	login(t, lr.OpenID) // a new login rotates the session_key: edOld is stale now
	lr2 := login(t, lr.OpenID)
	tests := []struct {
		name, path string
		body       string
		status     int
		code       string
	}{
		{"stale key", "/me/decrypt", jsonBody(map[string]string{"encryptedData": edOld, "iv": ivOld}), 409, "session_key_stale"},
		{"stale key (phone)", "/me/phone", jsonBody(map[string]string{"encryptedData": edOld, "iv": ivOld}), 409, "session_key_stale"},
		{"other appid", "/me/decrypt", func() string {
			e, i := encrypted(t, lr.OpenID, good, "wxsomeotherapp01", 0)
			return jsonBody(map[string]string{"encryptedData": e, "iv": i})
		}(), 422, "watermark_mismatch"},
		{"old watermark", "/me/decrypt", func() string {
			e, i := encrypted(t, lr.OpenID, good, "", now-3600)
			return jsonBody(map[string]string{"encryptedData": e, "iv": i})
		}(), 422, "watermark_mismatch"},
		{"future watermark", "/me/decrypt", func() string {
			e, i := encrypted(t, lr.OpenID, good, "", now+3600)
			return jsonBody(map[string]string{"encryptedData": e, "iv": i})
		}(), 422, "watermark_mismatch"},
		{"not base64", "/me/decrypt", `{"encryptedData":"!!!!","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 400, "invalid_request"},
		{"iv 8 bytes", "/me/decrypt", `{"encryptedData":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAA="}`, 400, "invalid_request"},
		{"partial block", "/me/decrypt", `{"encryptedData":"AAAAAAAAAAAAAAAAAAAA","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 400, "invalid_request"},
		{"missing iv", "/me/decrypt", `{"encryptedData":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 400, "invalid_request"},
		{"garbage block", "/me/decrypt", `{"encryptedData":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 409, "session_key_stale"},
		{"huge", "/me/decrypt", `{"encryptedData":"` + strings.Repeat("A", 40<<10) + `","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 413, "payload_too_large"},
		{"not a phone", "/me/phone", func() string {
			e, i := encrypted(t, lr.OpenID, good, "", 0)
			return jsonBody(map[string]string{"encryptedData": e, "iv": i})
		}(), 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodPost, stk.APIURL+tt.path, tt.body, bearer(lr2.SessionID)...)
			if r.Status != tt.status || r.str("error") != tt.code {
				t.Errorf("got %s, want %d %s", r, tt.status, tt.code)
			}
		})
	}
	// Padding-oracle probes (every last byte of the iv) all get the same
	// answer as any other wrong key.
	ed, iv = encrypted(t, lr.OpenID, good, "", 0) // the current key...
	login(t, lr.OpenID)                           // ...no longer current
	lr3 := login(t, lr.OpenID)
	answers := map[string]int{}
	ivBytes := []byte(iv)
	for _, c := range []byte("ABCDEFGHIJKLMNOP") {
		ivBytes[20] = c
		r := do(t, http.MethodPost, stk.APIURL+"/me/decrypt", jsonBody(map[string]string{"encryptedData": ed, "iv": string(ivBytes)}), bearer(lr3.SessionID)...)
		answers[fmt.Sprintf("%d %s", r.Status, r.Body)]++
	}
	if len(answers) != 1 {
		t.Errorf("padding probes got %d different answers: %v", len(answers), answers)
	}
	noteKeysAndTokens(lr.OpenID)
}

func TestSessionKeyCheckAndReset(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	id := lr.SessionID
	noteKeysAndTokens(lr.OpenID)
	if r := do(t, http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(id)...); r.Status != 200 || string(r.Body) != `{"valid":true}` {
		t.Fatalf("GET /me/session-key: %s", r)
	}
	old := stk.Emulator.SessionKey(lr.OpenID)
	if r := do(t, http.MethodPost, stk.APIURL+"/me/session-key/reset", "", bearer(id)...); r.Status != 204 || len(r.Body) != 0 {
		t.Fatalf("POST /me/session-key/reset: %s", r)
	}
	noteKeysAndTokens(lr.OpenID)
	if stk.Emulator.SessionKey(lr.OpenID) == old {
		t.Fatal("WeChat's session_key did not change")
	}
	// The new key is stored: still valid, and it decrypts.
	if r := do(t, http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(id)...); string(r.Body) != `{"valid":true}` {
		t.Errorf("after reset: %s", r)
	}
	ed, iv := encrypted(t, lr.OpenID, map[string]any{"x": 1}, "", 0)
	if r := do(t, http.MethodPost, stk.APIURL+"/me/decrypt", jsonBody(map[string]string{"encryptedData": ed, "iv": iv}), bearer(id)...); r.Status != 200 {
		t.Errorf("decrypt with the reset key: %s", r)
	}
	// WeChat rotates the key behind our back (another reset elsewhere):
	// the stored key is invalid; a reset then is 409.
	stale := login(t, lr.OpenID) // stores the new key...
	code, _ := stk.Emulator.IssueCode(lr.OpenID, "")
	secrets.add(code, "login code", -1)
	if r := do(t, http.MethodGet, stk.WeChatURL+"/sns/jscode2session?appid="+stk.Emulator.AppID()+"&secret="+wechatemu.DefaultSecret+"&js_code="+code+"&grant_type=authorization_code", ""); r.Status != 200 {
		t.Fatal(r)
	}
	noteKeysAndTokens(lr.OpenID)
	if r := do(t, http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(stale.SessionID)...); string(r.Body) != `{"valid":false}` {
		t.Errorf("stale key: %s", r)
	}
	if r := do(t, http.MethodPost, stk.APIURL+"/me/session-key/reset", "", bearer(stale.SessionID)...); r.Status != 409 || r.str("error") != "session_key_stale" {
		t.Errorf("reset with a stale key: %s", r)
	}
	// WeChat faults on both APIs.
	t.Cleanup(func() { clearFaults(t) })
	for _, api := range []string{"checksession", "resetusersessionkey"} {
		path, method := "/me/session-key", http.MethodGet
		if api == "resetusersessionkey" {
			path, method = "/me/session-key/reset", http.MethodPost
		}
		setFault(t, map[string]any{"api": api, "status": 502, "count": 5})
		if r := do(t, method, stk.APIURL+path, "", bearer(stale.SessionID)...); r.Status != 503 || r.str("error") != "wechat_unavailable" {
			t.Errorf("%s 502: %s", api, r)
		}
		clearFaults(t)
		setFault(t, map[string]any{"api": api, "errcode": 45011, "count": 1})
		if r := do(t, method, stk.APIURL+path, "", bearer(stale.SessionID)...); r.Status != 429 || r.str("error") != "rate_limited" {
			t.Errorf("%s 45011: %s", api, r)
		}
		clearFaults(t)
	}
}

// coldToken empties the token cache: fresh instances of the wechat
// function (no token in memory) and no token item.
func coldToken(t *testing.T) {
	t.Helper()
	p := stk.Pool(fnWechat)
	p.Replace(p.Config().Binary)
	_, err := stk.Dynamo.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(tableName(t, tblTokens)),
		Key:       map[string]types.AttributeValue{"appid": &types.AttributeValueMemberS{Value: stk.Emulator.AppID()}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// parallelCheck runs n GET /me/session-key at once, each as its own user.
func parallelCheck(t *testing.T, users []loginResult) {
	t.Helper()
	var wg sync.WaitGroup
	errs := &errList{}
	start := make(chan struct{})
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := send(context.Background(), http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(u.SessionID))
			if err != nil || r.Status != 200 || string(r.Body) != `{"valid":true}` {
				errs.add(fmt.Errorf("%v %s", err, r))
			}
		}()
	}
	close(start)
	wg.Wait()
	if err := errs.err(); err != nil {
		t.Fatal(err)
	}
}

// TestSharedToken: 16 concurrent requests on a cold cache make one
// stable_token call; a token invalidated at WeChat makes one forced refresh
// however many requests hit it.
func TestSharedToken(t *testing.T) {
	needStack(t)
	users := make([]loginResult, 16)
	for i := range users {
		users[i] = login(t, "")
	}
	coldToken(t)
	before := emuStats(t)
	parallelCheck(t, users)
	after := emuStats(t)
	if d := after["stable_token"] - before["stable_token"]; d != 1 {
		t.Errorf("cold cache: %d stable_token calls, want 1", d)
	}
	if d := after["checksession"] - before["checksession"]; d != 16 {
		t.Errorf("checksession calls %d, want 16", d)
	}
	// Invalidate every token at WeChat: each of the 16 gets 40001 once,
	// one forced refresh serves them all.
	emu(t, "/test/tokens/invalidate", nil, nil)
	before = emuStats(t)
	parallelCheck(t, users)
	after = emuStats(t)
	if d := after["stable_token"] - before["stable_token"]; d != 1 {
		t.Errorf("invalidated: %d stable_token calls, want 1", d)
	}
	if d := after["stable_token_forced"] - before["stable_token_forced"]; d != 1 {
		t.Errorf("invalidated: %d forced refreshes, want 1", d)
	}
	for _, u := range users {
		noteKeysAndTokens(u.OpenID)
	}
	// The token never reaches the table's readers other than the function:
	// it is in the tokens table only.
	for _, it := range scanAll(t, tblTokens) {
		if str(it, "access_token") == "" {
			t.Errorf("token item without a token: %v", it["appid"])
		}
	}
}

// TestTokenRejectedCodes: 42001 and 40014 are recovered like 40001 (one
// forced refresh, one retry); a second rejection within 30 s is not forced
// again: 503, and WeChat sees no second forced call.
func TestTokenRejectedCodes(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	t.Cleanup(func() { clearFaults(t); noteKeysAndTokens(lr.OpenID) })
	coldToken(t) // also forgets when the last forced refresh was
	check := func() response {
		return do(t, http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(lr.SessionID)...)
	}
	if r := check(); r.Status != 200 {
		t.Fatalf("warm-up: %s", r)
	}
	for i, errcode := range []int{42001, 40014} {
		setFault(t, map[string]any{"api": "checksession", "errcode": errcode, "count": 1})
		before := emuStats(t)
		r := check()
		d := emuStats(t)["stable_token"] - before["stable_token"]
		if i == 0 {
			if r.Status != 200 || string(r.Body) != `{"valid":true}` || d != 1 {
				t.Errorf("%d: %s after %d stable_token calls, want 200 after 1 forced call", errcode, r, d)
			}
			continue
		}
		if r.Status != 503 || r.str("error") != "wechat_unavailable" || d != 0 {
			t.Errorf("%d within 30 s of the forced refresh: %s after %d stable_token calls, want 503 and none", errcode, r, d)
		}
	}
}
