package e2e

import (
	"net/http"
	"testing"
)

const clearedCookie = "sessionid=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"

// me returns the status of GET /me with a Bearer id.
func me(t testing.TB, id string) int {
	t.Helper()
	return do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(id)...).Status
}

// TestLogout: POST /logout answers 204 with a cleared cookie, and the same id
// is denied on the very next request (no authorizer cache), whichever
// carrier was used; another session of the same user is untouched.
func TestLogout(t *testing.T) {
	needStack(t)
	for _, carrier := range []string{"bearer", "cookie"} {
		t.Run(carrier, func(t *testing.T) {
			lr := login(t, "")
			other := login(t, lr.OpenID) // the same user on another device
			h := bearer(lr.SessionID)
			if carrier == "cookie" {
				h = []string{"Cookie", "lang=zh_CN; sessionid=" + lr.SessionID}
			}
			if got := me(t, lr.SessionID); got != http.StatusOK {
				t.Fatalf("GET /me before logout: %d", got)
			}
			r := do(t, http.MethodPost, stk.APIURL+"/logout", "", h...)
			if r.Status != http.StatusNoContent || len(r.Body) != 0 {
				t.Fatalf("POST /logout: %s, want 204 without a body", r)
			}
			if got := r.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != clearedCookie {
				t.Errorf("Set-Cookie = %q, want [%q]", got, clearedCookie)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
			}
			// Immediately: the authorizer reads the store on every request.
			for _, hh := range [][]string{bearer(lr.SessionID), {"Cookie", "sessionid=" + lr.SessionID}} {
				if r := do(t, http.MethodGet, stk.APIURL+"/me", "", hh...); r.Status != http.StatusForbidden || string(r.Body) != forbiddenBody {
					t.Errorf("GET /me right after logout: %s, want 403 %s", r, forbiddenBody)
				}
			}
			if r := do(t, http.MethodPost, stk.APIURL+"/logout", "", h...); r.Status != http.StatusForbidden {
				t.Errorf("second POST /logout with the same id: %s, want 403", r)
			}
			if got := me(t, other.SessionID); got != http.StatusOK {
				t.Errorf("the user's other session after a single logout: %d, want 200", got)
			}
		})
	}
}

// TestLogoutAll: POST /logout?scope=all from one device ends every session
// of that user (and leaves none in the table) but no other user's.
func TestLogoutAll(t *testing.T) {
	needStack(t)
	dev1 := login(t, "")
	dev2 := login(t, dev1.OpenID)
	dev3 := login(t, dev1.OpenID)
	stranger := login(t, "")
	for _, id := range []string{dev1.SessionID, dev2.SessionID, dev3.SessionID, stranger.SessionID} {
		if got := me(t, id); got != http.StatusOK {
			t.Fatalf("GET /me before logout-all: %d", got)
		}
	}
	if r := do(t, http.MethodPost, stk.APIURL+"/logout?scope=everything", "", bearer(dev1.SessionID)...); r.Status != http.StatusBadRequest || r.str("error") != "invalid_request" {
		t.Errorf("scope=everything: %s, want 400 invalid_request", r)
	}
	r := do(t, http.MethodPost, stk.APIURL+"/logout?scope=all", "", bearer(dev1.SessionID)...)
	if r.Status != http.StatusNoContent {
		t.Fatalf("POST /logout?scope=all: %s", r)
	}
	if got := r.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != clearedCookie {
		t.Errorf("Set-Cookie = %q, want [%q]", got, clearedCookie)
	}
	for name, id := range map[string]string{"device 1": dev1.SessionID, "device 2": dev2.SessionID, "device 3": dev3.SessionID} {
		if got := me(t, id); got != http.StatusForbidden {
			t.Errorf("%s after logout-all: %d, want 403", name, got)
		}
	}
	if got := me(t, stranger.SessionID); got != http.StatusOK {
		t.Errorf("another user's session after logout-all: %d, want 200", got)
	}
	left := 0
	for _, it := range scanAll(t, tblSessions) {
		if str(it, "openid") == dev1.OpenID {
			left++
		}
	}
	if left != 0 {
		t.Errorf("%d session item(s) of the user left after logout-all", left)
	}
	// Logging in again works.
	if got := me(t, login(t, dev1.OpenID).SessionID); got != http.StatusOK {
		t.Errorf("GET /me after logging in again: %d", got)
	}
}
