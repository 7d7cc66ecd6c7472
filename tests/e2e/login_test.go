package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/session"
)

var sessionCookieRE = regexp.MustCompile(`^sessionid=([A-Za-z0-9_-]{43}); Path=/; Max-Age=(\d+); HttpOnly; Secure; SameSite=Lax$`)

// TestLogin walks wx.login() → POST /login and checks the whole answer.
func TestLogin(t *testing.T) {
	needStack(t)
	is, err := newCode(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Second)
	r := do(t, http.MethodPost, stk.APIURL+"/login", `{"code":"`+is.Code+`"}`)
	after := time.Now()
	if r.Status != http.StatusOK {
		t.Fatalf("POST /login: %s", r)
	}
	m, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := m["session_id"].(string)
	if len(id) != 43 || !session.ValidID(id) {
		t.Errorf("session_id %d chars, valid %v; want a 43-char session id", len(id), session.ValidID(id))
	}
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type = %v, want Bearer", m["token_type"])
	}
	if m["openid"] != is.OpenID {
		t.Errorf("openid = %v, want %s", m["openid"], is.OpenID)
	}
	for _, forbidden := range []string{"session_key", "unionid_key", "secret"} {
		if _, ok := m[forbidden]; ok {
			t.Errorf("login body has field %q", forbidden)
		}
	}
	expiresAt, err := time.Parse(time.RFC3339, str2(m["expires_at"]))
	if err != nil {
		t.Fatalf("expires_at %v is not RFC 3339: %v", m["expires_at"], err)
	}
	expiresIn, ok := m["expires_in"].(float64)
	if !ok || expiresIn <= 0 || expiresIn != float64(int64(expiresIn)) {
		t.Fatalf("expires_in = %v, want a positive whole number of seconds", m["expires_in"])
	}
	// expires_at ≈ the login time + expires_in (both rounded to seconds).
	lo, hi := before.Add(time.Duration(expiresIn)*time.Second-time.Second), after.Add(time.Duration(expiresIn)*time.Second+time.Second)
	if expiresAt.Before(lo) || expiresAt.After(hi) {
		t.Errorf("expires_at %v is not login time + expires_in (%vs): want within [%v, %v]", expiresAt, expiresIn, lo, hi)
	}
	// The template's default SessionTTL is 336h (Django's 14 days).
	if want := (336 * time.Hour).Seconds(); expiresIn > want || expiresIn < want-5 {
		t.Errorf("expires_in = %v, want about %v (SessionTTL 336h)", expiresIn, want)
	}

	cookies := r.Header.Values("Set-Cookie")
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie = %q, want exactly one", cookies)
	}
	cm := sessionCookieRE.FindStringSubmatch(cookies[0])
	if cm == nil {
		t.Fatalf("Set-Cookie %q does not match %s", redact(cookies[0], id), sessionCookieRE)
	}
	if cm[1] != id {
		t.Errorf("cookie value is not the body's session_id")
	}
	if maxAge, _ := strconv.ParseFloat(cm[2], 64); maxAge < expiresIn-1 || maxAge > expiresIn {
		t.Errorf("cookie Max-Age %s, want expires_in %v", cm[2], expiresIn)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}

	// The store keeps the id's hash, never the id; the users table has the
	// user.
	var found bool
	for _, it := range scanAll(t, tblSessions) {
		for name := range it {
			if str(it, name) == id {
				t.Errorf("sessions table stores the raw session id in %q", name)
			}
		}
		if str(it, "sid") == session.Hash(id) {
			found = true
			if str(it, "openid") != is.OpenID {
				t.Errorf("stored session openid = %q, want %q", str(it, "openid"), is.OpenID)
			}
		}
	}
	if !found {
		t.Errorf("no sessions item under the id's hash")
	}
	var user bool
	for _, it := range scanAll(t, tblUsers) {
		user = user || str(it, "openid") == is.OpenID
	}
	if !user {
		t.Errorf("no users item for %s", is.OpenID)
	}

	// The session works right away, and a second login of the same user
	// gets a different id (no fixation) while the first stays valid.
	if me := do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(id)...); me.Status != http.StatusOK || me.str("openid") != is.OpenID {
		t.Errorf("GET /me with the new session: %s", me)
	}
	second := login(t, is.OpenID)
	if second.SessionID == id {
		t.Errorf("a second login returned the same session id")
	}
	for _, sid := range []string{id, second.SessionID} {
		if me := do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(sid)...); me.Status != http.StatusOK {
			t.Errorf("GET /me after a second login: %s", me)
		}
	}
}

func str2(v any) string { s, _ := v.(string); return s }

// redact hides id in s for error messages.
func redact(s, id string) string {
	if id == "" {
		return s
	}
	return strings.ReplaceAll(s, id, "<session id>")
}

// TestLoginInvalidRequest: malformed bodies are 400 invalid_request and
// write nothing.
func TestLoginInvalidRequest(t *testing.T) {
	needStack(t)
	sessions, users := countItems(t, tblSessions), countItems(t, tblUsers)
	tests := []struct{ name, body string }{
		{"empty body", ""},
		{"not JSON", `{code:`},
		{"array", `["abc"]`},
		{"no code", `{}`},
		{"code not a string", `{"code":12345}`},
		{"empty code", `{"code":""}`},
		{"code with bad characters", `{"code":"abc def"}`},
		{"code too long", `{"code":"` + strings.Repeat("a", 129) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodPost, stk.APIURL+"/login", tt.body, "Content-Type", "application/json")
			if r.Status != http.StatusBadRequest || r.str("error") != "invalid_request" || r.str("message") == "" {
				t.Errorf("got %s, want 400 invalid_request with a message", r)
			}
			if len(r.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("error response sets a cookie")
			}
		})
	}
	if s, u := countItems(t, tblSessions), countItems(t, tblUsers); s != sessions || u != users {
		t.Errorf("items after invalid logins: sessions %d→%d, users %d→%d", sessions, s, users, u)
	}
}
