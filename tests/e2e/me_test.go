package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/session"
)

const forbiddenBody = `{"message":"Forbidden"}`
const notFoundBody = `{"message":"Not Found"}`

// fakeID returns a well-formed session id that was never issued (and adds it
// to the leak check: it must not show up in logs either).
func fakeID(t testing.TB) string {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	secrets.add(id, "unissued session id", -1)
	return id
}

// TestMeCarriers: GET /me accepts the session as a Bearer token (any case
// of the scheme) or as the sessionid cookie set by hand, and denies
// everything else with API Gateway's 403.
func TestMeCarriers(t *testing.T) {
	needStack(t)
	lr := login(t, "")
	id := lr.SessionID
	other := login(t, "") // a second user: the carrier order decides whose /me this is
	unknown := fakeID(t)

	tests := []struct {
		name    string
		headers []string
		want    int
		openid  string // for 200
	}{
		{"bearer", []string{"Authorization", "Bearer " + id}, 200, lr.OpenID},
		{"bearer lower-case scheme", []string{"Authorization", "bearer " + id}, 200, lr.OpenID},
		{"bearer upper-case scheme", []string{"Authorization", "BEARER " + id}, 200, lr.OpenID},
		{"cookie alone", []string{"Cookie", "sessionid=" + id}, 200, lr.OpenID},
		{"cookie among others", []string{"Cookie", "theme=dark; sessionid=" + id + "; lang=zh_CN"}, 200, lr.OpenID},
		{"cookie in a second Cookie header", []string{"Cookie", "theme=dark", "Cookie", "sessionid=" + id}, 200, lr.OpenID},
		{"bearer wins over the cookie", []string{"Authorization", "Bearer " + id, "Cookie", "sessionid=" + other.SessionID}, 200, lr.OpenID},
		{"other scheme falls back to the cookie", []string{"Authorization", "Basic dXNlcjpwYXNz", "Cookie", "sessionid=" + id}, 200, lr.OpenID},

		{"no credentials", nil, 403, ""},
		{"unknown id", []string{"Authorization", "Bearer " + unknown}, 403, ""},
		{"unknown id in the cookie", []string{"Cookie", "sessionid=" + unknown}, 403, ""},
		{"malformed id", []string{"Authorization", "Bearer not-a-session-id"}, 403, ""},
		{"id with a character changed", []string{"Authorization", "Bearer " + flipFirst(id)}, 403, ""},
		{"the id's hash instead of the id", []string{"Authorization", "Bearer " + session.Hash(id)}, 403, ""},
		{"empty bearer", []string{"Authorization", "Bearer "}, 403, ""},
		{"bearer without token, valid cookie", []string{"Authorization", "Bearer", "Cookie", "sessionid=" + id}, 403, ""},
		{"malformed cookie", []string{"Cookie", "sessionid=abc"}, 403, ""},
		{"cookie name in another case", []string{"Cookie", "SessionID=" + id}, 403, ""},
		{"two different sessionid cookies", []string{"Cookie", "sessionid=" + id + "; sessionid=" + other.SessionID}, 403, ""},
		{"id in the query string", nil, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := stk.APIURL + "/me"
			if tt.name == "id in the query string" {
				u += "?sessionid=" + id
			}
			r := do(t, http.MethodGet, u, "", tt.headers...)
			if r.Status != tt.want {
				t.Fatalf("got %s, want %d", redact(r.String(), id), tt.want)
			}
			if tt.want == http.StatusForbidden {
				if string(r.Body) != forbiddenBody {
					t.Errorf("403 body %q, want %s", r.Body, forbiddenBody)
				}
				return
			}
			m, err := r.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if m["openid"] != tt.openid {
				t.Errorf("openid = %v, want %s", m["openid"], tt.openid)
			}
			if m["appid"] != stk.Emulator.AppID() {
				t.Errorf("appid = %v, want %s", m["appid"], stk.Emulator.AppID())
			}
			sess, _ := m["session"].(map[string]any)
			got, err := time.Parse(time.RFC3339, str2(sess["expires_at"]))
			if err != nil || !got.Equal(lr.ExpiresAt) {
				t.Errorf("session.expires_at = %v, want the login's %v", sess["expires_at"], lr.ExpiresAt)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
			}
		})
	}
}

// flipFirst changes id's first character to another valid one (the last
// character of a 43-char id carries only 4 bits, so the first is safer).
func flipFirst(id string) string {
	c := byte('A')
	if id[0] == 'A' {
		c = 'B'
	}
	return string(c) + id[1:]
}

// TestRouting: unknown routes and known paths with another method are 404
// {"message":"Not Found"} (HTTP APIs match the route before running the
// authorizer), with or without a session.
func TestRouting(t *testing.T) {
	needStack(t)
	id := login(t, "").SessionID
	tests := []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/"},
		{"GET", "/me/"},
		{"GET", "/me/profile/extra"},
		{"GET", "/ME"},
		{"POST", "/me"},
		{"PATCH", "/me"}, // DELETE /me is the account deletion (admin_test.go)
		{"PATCH", "/me/profile"},
		{"DELETE", "/me/profile"},
		{"GET", "/login"},
		{"PUT", "/login"},
		{"GET", "/logout"},
	}
	for _, tt := range tests {
		for _, auth := range []bool{false, true} {
			name := tt.method + " " + tt.path
			if auth {
				name += " with session"
			}
			t.Run(name, func(t *testing.T) {
				var h []string
				if auth {
					h = bearer(id)
				}
				body := ""
				if tt.method != "GET" && tt.method != "DELETE" {
					body = "{}"
				}
				r := do(t, tt.method, stk.APIURL+tt.path, body, h...)
				if r.Status != http.StatusNotFound || strings.TrimSpace(string(r.Body)) != notFoundBody {
					t.Errorf("got %s, want 404 %s", r, notFoundBody)
				}
			})
		}
	}
}
