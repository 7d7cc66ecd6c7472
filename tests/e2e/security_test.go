package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestCrossSiteCookie: through the real gateway and authorizer, a browser's
// cross-site POST /logout that carries the session cookie is refused (403)
// and the session survives; the same request with the Bearer header, or
// from the API's own origin, goes through (docs/design.md §10).
func TestCrossSiteCookie(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	cookie := []string{"Cookie", "sessionid=" + lr.SessionID}
	for _, h := range [][]string{
		append(cookie, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"),
		append(cookie, "Origin", "https://evil.example"),
		append(cookie, "Origin", "null"),
	} {
		if r := do(t, http.MethodPost, stk.APIURL+"/logout", "", h...); r.Status != http.StatusForbidden {
			t.Errorf("cross-site POST /logout %q: %s, want 403", h[2:], r)
		}
	}
	if got := me(t, lr.SessionID); got != http.StatusOK {
		t.Fatalf("GET /me after refused cross-site logouts: %d, want 200", got)
	}
	// A cross-site GET is not state-changing: allowed.
	if r := do(t, http.MethodGet, stk.APIURL+"/me", "", append(cookie, "Sec-Fetch-Site", "cross-site")...); r.Status != http.StatusOK {
		t.Errorf("cross-site GET /me with the cookie: %s, want 200", r)
	}
	// The API's own origin (Host as the client sent it) is same-origin.
	own := stk.APIURL
	if r := do(t, http.MethodPut, stk.APIURL+"/me/profile", `{"nickname":"same-origin"}`, append(cookie, "Origin", own)...); r.Status != http.StatusOK {
		t.Errorf("same-origin PUT /me/profile with the cookie: %s, want 200", r)
	}
	h := append(bearer(lr.SessionID), "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if r := do(t, http.MethodPost, stk.APIURL+"/logout", "", h...); r.Status != http.StatusNoContent {
		t.Errorf("cross-site POST /logout with the Bearer header: %s, want 204", r)
	}
}

// TestProfileRefusesInvisibleAndLocal: PUT /me/profile answers 400
// invalid_request for nicknames with bidi overrides or zero-width characters
// and for avatar URLs on loopback, link-local or private hosts or with
// quotes, and stores nothing.
func TestProfileRefusesInvisibleAndLocal(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	for _, body := range []map[string]string{
		{"nickname": "abc\u202Egpj.exe"},
		{"nickname": "ad\u200Bmin"},
		{"nickname": "ok", "avatar_url": "https://169.254.169.254/latest/meta-data/"},
		{"nickname": "ok", "avatar_url": "https://127.0.0.1:3000/me"},
		{"nickname": "ok", "avatar_url": "https://localhost/a.png"},
		{"nickname": "ok", "avatar_url": "https://10.1.2.3/a.png"},
		{"nickname": "ok", "avatar_url": `https://example.com/a.png"onerror="x`},
	} {
		b, _ := json.Marshal(body)
		r := putProfile(t, lr.SessionID, string(b))
		if r.Status != http.StatusBadRequest || r.str("error") != "invalid_request" {
			t.Errorf("PUT /me/profile %s: %s, want 400 invalid_request", b, r)
		}
	}
	if n, av := getProfile(t, lr.SessionID, lr.OpenID); n != "" || av != "" {
		t.Errorf("refused profiles left nickname %q avatar %q", n, av)
	}
}
