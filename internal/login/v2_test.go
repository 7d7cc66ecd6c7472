package login_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wxsession/wxsession/internal/login"
	"github.com/wxsession/wxsession/session"
)

const deviceA = "phone-A-0123456789"

// ok logs in with body and returns the session id, failing on anything
// but 200.
func (e *env) ok(t *testing.T, body string, hdr ...string) string {
	t.Helper()
	req := request(t, http.MethodPost, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Headers[hdr[i]] = hdr[i+1]
	}
	resp := e.login(req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Body)
	}
	var b login.Response
	if err := json.Unmarshal([]byte(resp.Body), &b); err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, b.SessionID)
	return b.SessionID
}

// TestLoginBody: the tolerated fields are accepted and ignored; device
// fields are checked; nothing is written and WeChat is not called for a
// refused body.
func TestLoginBody(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		body     func(code string) string
		wantCode string // "" = 200
		wantMsg  string
	}{
		{"tolerated fields", func(c string) string {
			return `{"code":"` + c + `","encryptedData":"AAAA","iv":"BBBB","rawData":"{\"nickName\":\"x\"}","signature":"abc","userInfo":{"nickName":"x"},"cloudID":"c1"}`
		}, "", ""},
		{"device id and device", func(c string) string {
			return `{"code":"` + c + `","device_id":"` + deviceA + `","device":{"platform":"ios","brand":"Apple","model":"iPhone 15 Pro","system":"iOS 18.1"}}`
		}, "", ""},
		{"device id too short", func(c string) string { return `{"code":"` + c + `","device_id":"short"}` }, "invalid_request", `"device_id"`},
		{"device id with a space", func(c string) string { return `{"code":"` + c + `","device_id":"phone A 0123456789"}` }, "invalid_request", `"device_id"`},
		{"device id not a string", func(c string) string { return `{"code":"` + c + `","device_id":12345678901234567}` }, "invalid_request", `"device_id"`},
		{"device field too long", func(c string) string {
			return `{"code":"` + c + `","device":{"model":"` + strings.Repeat("型", 65) + `"}}`
		}, "invalid_request", "device.model"},
		{"device control character", func(c string) string { return `{"code":"` + c + `","device":{"brand":"a\u0000b"}}` }, "invalid_request", "device.brand"},
		{"device bidi override", func(c string) string { return `{"code":"` + c + `","device":{"brand":"a\u202eb"}}` }, "invalid_request", "device.brand"},
		{"device unknown field", func(c string) string { return `{"code":"` + c + `","device":{"imei":"123"}}` }, "invalid_request", "imei"},
		{"device not an object", func(c string) string { return `{"code":"` + c + `","device":"iPhone"}` }, "invalid_request", "device"},
		{"other unknown field", func(c string) string { return `{"code":"` + c + `","nickName":"x"}` }, "invalid_request", `"nickName"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code := e.code("", "")
			before := e.emu.Stats().JSCode2Session
			items := len(e.scan(e.sessions))
			resp := e.login(request(t, http.MethodPost, tc.body(code)))
			if tc.wantCode == "" {
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, resp.Body)
				}
				var b login.Response
				_ = json.Unmarshal([]byte(resp.Body), &b)
				e.secrets = append(e.secrets, b.SessionID)
				return
			}
			if b := decodeError(t, resp); resp.StatusCode != 400 || b.Error != tc.wantCode || !strings.Contains(b.Message, tc.wantMsg) {
				t.Fatalf("%d %+v, want 400 %s mentioning %s", resp.StatusCode, b, tc.wantCode, tc.wantMsg)
			}
			if e.emu.Stats().JSCode2Session != before || len(e.scan(e.sessions)) != items {
				t.Fatal("a refused body reached WeChat or the store")
			}
		})
	}
}

// TestLoginDuplicateCode: the same code again (one after the other or at
// once) gets the same session with one WeChat call; from another device it
// is refused.
func TestLoginDuplicateCode(t *testing.T) {
	e := newEnv(t)
	code := e.code("oDuplicate-user-0001", "")
	body := `{"code":"` + code + `","device_id":"` + deviceA + `"}`
	before := e.emu.Stats().JSCode2Session
	var wg sync.WaitGroup
	ids := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := e.login(request(t, http.MethodPost, body))
			var b login.Response
			if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &b) != nil {
				t.Errorf("duplicate: %d %s", resp.StatusCode, resp.Body)
				return
			}
			ids <- b.SessionID
		}()
	}
	wg.Wait()
	close(ids)
	var first string
	for id := range ids {
		e.secrets = append(e.secrets, id)
		if first == "" {
			first = id
		}
		if id != first {
			t.Fatalf("duplicates got different sessions")
		}
	}
	if again := e.ok(t, body); again != first {
		t.Fatal("a sequential duplicate got another session")
	}
	if n := e.emu.Stats().JSCode2Session - before; n != 1 {
		t.Fatalf("%d WeChat calls for one code, want 1", n)
	}
	succeeded := 0
	for _, l := range e.auditLines() {
		if l["event"] == "login_succeeded" && l["session"] == session.Hash(first) {
			succeeded++
		}
	}
	if succeeded != 9 {
		t.Errorf("%d login_succeeded audit lines for the 9 answers with the session, want 9", succeeded)
	}
	e.secrets = append(e.secrets, e.emu.SessionKey("oDuplicate-user-0001"))
	resp := e.login(request(t, http.MethodPost, `{"code":"`+code+`","device_id":"phone-B-0123456789"}`))
	if b := decodeError(t, resp); resp.StatusCode != http.StatusConflict || b.Error != "code_device_mismatch" {
		t.Fatalf("another device: %d %+v", resp.StatusCode, b)
	}
	if strings.Contains(resp.Body, first) {
		t.Fatal("another device got the first caller's session")
	}
	// A code WeChat refused: the duplicate is refused the same way, without
	// a second call.
	bad := "0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p"
	for i := range 2 {
		resp := e.login(request(t, http.MethodPost, codeBody(bad)))
		if b := decodeError(t, resp); resp.StatusCode != 401 || b.Error != "invalid_code" {
			t.Fatalf("try %d: %d %+v", i, resp.StatusCode, b)
		}
	}
	if n := e.emu.Stats().JSCode2Session - before; n != 2 {
		t.Fatalf("%d WeChat calls, want 2 (one per distinct code)", n)
	}
}

// TestLoginReplaces: a login from the same device, or one presenting its
// session, ends the earlier session; unionid is carried over.
func TestLoginReplaces(t *testing.T) {
	e := newEnv(t)
	const openid = "oReplace-user-000001"
	id1 := e.ok(t, `{"code":"`+e.code(openid, "uUnion-replace-01")+`","device_id":"`+deviceA+`"}`)
	id2 := e.ok(t, `{"code":"`+e.code(openid, "")+`","device_id":"`+deviceA+`"}`)
	id3 := e.ok(t, codeBody(e.code(openid, "")), "authorization", "Bearer "+id2)
	e.secrets = append(e.secrets, e.emu.SessionKey(openid))
	for i, tc := range []struct {
		id   string
		want session.Reason
	}{{id1, session.ReasonReplaced}, {id2, session.ReasonReplaced}, {id3, ""}} {
		s, err := e.store.Lookup(t.Context(), session.Hash(tc.id))
		if err != nil {
			t.Fatal(err)
		}
		if r := s.EndReason(s.CreatedAt); r != tc.want {
			t.Errorf("session %d: %q, want %q", i+1, r, tc.want)
		}
		if s.UnionID != "uUnion-replace-01" && tc.want == "" {
			t.Errorf("session %d lost the unionid: %q", i+1, s.UnionID)
		}
	}
	var replaced int
	for _, l := range e.auditLines() {
		if l["event"] == "session_replaced" {
			replaced++
		}
	}
	if replaced != 2 {
		t.Errorf("%d session_replaced audit lines, want 2", replaced)
	}
}

// TestLoginCrossSiteCookie: a login that carries the session cookie in a
// browser request from another site is refused and ends nothing (else any
// page could end a user's session); carried as Bearer it proceeds and ends
// the carried session (docs/design.md §10.5).
func TestLoginCrossSiteCookie(t *testing.T) {
	e := newEnv(t)
	const openid = "oCrossSite-user-00001"
	id1 := e.ok(t, codeBody(e.code(openid, "")))
	req := request(t, http.MethodPost, codeBody(e.code(openid, "")))
	req.Cookies = []string{"sessionid=" + id1}
	req.Headers["sec-fetch-site"] = "cross-site"
	resp := e.login(req)
	if b := decodeError(t, resp); resp.StatusCode != http.StatusForbidden || b.Error != "cross_site" {
		t.Fatalf("cross-site login with the cookie: %d %+v, want 403 cross_site", resp.StatusCode, b)
	}
	if _, err := e.store.Get(t.Context(), session.Hash(id1)); err != nil {
		t.Fatalf("the carried session ended: %v", err)
	}
	e.ok(t, codeBody(e.code(openid, "")), "authorization", "Bearer "+id1, "sec-fetch-site", "cross-site")
	e.secrets = append(e.secrets, e.emu.SessionKey(openid))
	if s, err := e.store.Lookup(t.Context(), session.Hash(id1)); err != nil || s.EndedReason != session.ReasonReplaced {
		t.Fatalf("the session carried as Bearer: %+v, %v; want replaced", s, err)
	}
}
