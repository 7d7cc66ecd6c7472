package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wxsession/wxsession/session"
)

// TestDevices: GET /me/sessions lists the user's sessions (one per device)
// through the gateway, and DELETE /me/sessions/{sid} (a path parameter)
// ends another device's session at once, but never another user's.
func TestDevices(t *testing.T) {
	needStack(t)
	phone := login(t, "")
	tablet := login(t, phone.OpenID)
	stranger := login(t, "")

	r := do(t, http.MethodGet, stk.APIURL+"/me/sessions", "", bearer(phone.SessionID)...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /me/sessions: %s", r)
	}
	var list struct {
		Sessions []struct {
			SID     string `json:"sid"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	current := map[string]bool{}
	for _, s := range list.Sessions {
		current[s.SID] = s.Current
	}
	phoneSID, tabletSID := session.Hash(phone.SessionID), session.Hash(tablet.SessionID)
	if len(current) != 2 || !current[phoneSID] || current[tabletSID] {
		t.Fatalf("sessions = %s, want the phone (current) and the tablet", r.Body)
	}
	if _, ok := current[session.Hash(stranger.SessionID)]; ok {
		t.Fatalf("another user's session listed: %s", r.Body)
	}

	strangerSID := session.Hash(stranger.SessionID)
	if r := do(t, http.MethodDelete, stk.APIURL+"/me/sessions/"+strangerSID, "", bearer(phone.SessionID)...); r.Status != http.StatusNotFound {
		t.Errorf("DELETE another user's session: %s, want 404", r)
	}
	if got := me(t, stranger.SessionID); got != http.StatusOK {
		t.Errorf("the other user's session after a refused delete: %d, want 200", got)
	}
	r = do(t, http.MethodDelete, stk.APIURL+"/me/sessions/"+tabletSID, "", bearer(phone.SessionID)...)
	if r.Status != http.StatusNoContent || len(r.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("DELETE the tablet's session: %s, want 204 without a cookie change", r)
	}
	if got := me(t, tablet.SessionID); got != http.StatusForbidden {
		t.Errorf("the tablet right after its session was ended: %d, want 403", got)
	}
	if got := me(t, phone.SessionID); got != http.StatusOK {
		t.Errorf("the phone after ending the tablet: %d, want 200", got)
	}
}
