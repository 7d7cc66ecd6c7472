package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

// withSettings runs the stack's functions with vars until the test ends
// (docs/design.md §6: make dev takes every session setting).
func withSettings(t *testing.T, vars map[string]string) {
	t.Helper()
	stk.SetEnv(vars)
	t.Cleanup(func() {
		reset := map[string]string{}
		for k := range vars {
			reset[k] = ""
		}
		stk.SetEnv(reset)
	})
}

// deviceID is a device id unique to this run.
func deviceID(name string) string { return fmt.Sprintf("%s-%s-0123456789", name, uniq()) }

// loginWith logs openid in with body fields beside the code and optional
// request headers, and returns the answer.
func loginWith(t *testing.T, openid string, fields map[string]any, h ...string) (response, issued) {
	t.Helper()
	is, err := newCode(t.Context(), openid)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"code": is.Code}
	for k, v := range fields {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	return do(t, http.MethodPost, stk.APIURL+"/login", string(b), h...), is
}

// loginOK is loginWith that wants a 200 and returns the session id.
func loginOK(t *testing.T, openid string, fields map[string]any, h ...string) (string, string) {
	t.Helper()
	r, is := loginWith(t, openid, fields, h...)
	if r.Status != http.StatusOK || r.str("session_id") == "" {
		t.Fatalf("POST /login: %s", r)
	}
	return r.str("session_id"), is.OpenID
}

// sessionState is GET /session with id as Bearer.
func sessionState(t *testing.T, id string) (state, reason string) {
	t.Helper()
	r := do(t, http.MethodGet, stk.APIURL+"/session", "", bearer(id)...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /session: %s", r)
	}
	return r.str("state"), r.str("reason")
}

// wantEnded checks that id is refused and GET /session gives reason.
func wantEnded(t *testing.T, what, id, reason string) {
	t.Helper()
	if got := me(t, id); got != http.StatusForbidden {
		t.Errorf("%s: GET /me %d, want 403", what, got)
	}
	if st, r := sessionState(t, id); st != "ended" || r != reason {
		t.Errorf("%s: GET /session = %s/%s, want ended/%s", what, st, r, reason)
	}
}

// wantActive checks that id works.
func wantActive(t *testing.T, what, id string) {
	t.Helper()
	if got := me(t, id); got != http.StatusOK {
		t.Errorf("%s: GET /me %d, want 200", what, got)
	}
	if st, _ := sessionState(t, id); st != "active" {
		t.Errorf("%s: GET /session = %s, want active", what, st)
	}
}

// deviceList is GET /me/sessions, all pages.
func deviceList(t *testing.T, id string) []map[string]any {
	t.Helper()
	var all []map[string]any
	cursor := ""
	for page := 0; page < 100; page++ {
		url := stk.APIURL + "/me/sessions?limit=2"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		r := do(t, http.MethodGet, url, "", bearer(id)...)
		var body struct {
			Sessions   []map[string]any `json:"sessions"`
			NextCursor string           `json:"next_cursor"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &body) != nil {
			t.Fatalf("GET /me/sessions: %s", r)
		}
		all = append(all, body.Sessions...)
		if cursor = body.NextCursor; cursor == "" {
			return all
		}
	}
	t.Fatal("GET /me/sessions does not end")
	return nil
}

// TestFiveReloginsOneDevice: five logins from one device leave one entry
// in the device list and four refused ids whose reason is replaced.
func TestFiveReloginsOneDevice(t *testing.T) {
	needStack(t)
	dev := deviceID("phone")
	device := map[string]any{"platform": "ios", "brand": "Apple", "model": "iPhone 15", "system": "iOS 18.1"}
	var ids []string
	openid := ""
	for range 5 {
		id, o := loginOK(t, openid, map[string]any{"device_id": dev, "device": device})
		ids, openid = append(ids, id), o
	}
	for i, id := range ids[:4] {
		wantEnded(t, fmt.Sprintf("login %d", i+1), id, "replaced")
	}
	wantActive(t, "login 5", ids[4])
	list := deviceList(t, ids[4])
	if len(list) != 1 {
		t.Fatalf("device list has %d entries, want 1: %v", len(list), list)
	}
	e := list[0]
	for _, f := range []string{"sid", "current", "created_at", "last_active_at", "expires_at", "device_id", "device", "source_ip"} {
		if _, ok := e[f]; !ok {
			t.Errorf("entry lacks %q: %v", f, e)
		}
	}
	if e["device_id"] != dev || e["current"] != true || e["sid"] != session.Hash(ids[4]) || e["source_ip"] == "" {
		t.Errorf("entry %v", e)
	}
	if d, _ := e["device"].(map[string]any); d["model"] != "iPhone 15" || d["platform"] != "ios" {
		t.Errorf("device %v", e["device"])
	}
}

// TestPresentedSessionRotation: a login that carries a live session (no
// device id) ends it, by Bearer or by cookie (Django's cycle_key).
func TestPresentedSessionRotation(t *testing.T) {
	needStack(t)
	first, openid := loginOK(t, "", nil)
	second, _ := loginOK(t, openid, nil, bearer(first)...)
	third, _ := loginOK(t, openid, nil, "Cookie", "sessionid="+second)
	wantEnded(t, "first (presented by Bearer)", first, "replaced")
	wantEnded(t, "second (presented by cookie)", second, "replaced")
	wantActive(t, "third", third)
	if n := len(deviceList(t, third)); n != 1 {
		t.Errorf("%d sessions listed, want 1", n)
	}
}

// TestCaps: SESSION_MAX_PER_USER with both overflow policies.
func TestCaps(t *testing.T) {
	needStack(t)
	t.Run("evict_oldest", func(t *testing.T) {
		withSettings(t, map[string]string{"SESSION_MAX_PER_USER": "2", "SESSION_OVERFLOW": "evict_oldest"})
		a, openid := loginOK(t, "", map[string]any{"device_id": deviceID("a")})
		b, _ := loginOK(t, openid, map[string]any{"device_id": deviceID("b")})
		c, _ := loginOK(t, openid, map[string]any{"device_id": deviceID("c")})
		wantEnded(t, "the oldest", a, "evicted")
		wantActive(t, "b", b)
		wantActive(t, "c", c)
	})
	t.Run("reject_new", func(t *testing.T) {
		withSettings(t, map[string]string{"SESSION_MAX_PER_USER": "2", "SESSION_OVERFLOW": "reject_new"})
		devA := deviceID("a")
		a, openid := loginOK(t, "", map[string]any{"device_id": devA})
		b, _ := loginOK(t, openid, map[string]any{"device_id": deviceID("b")})
		r, _ := loginWith(t, openid, map[string]any{"device_id": deviceID("c")})
		if r.Status != http.StatusConflict || r.str("error") != "too_many_sessions" || r.str("session_id") != "" {
			t.Fatalf("third device: %s, want 409 too_many_sessions", r)
		}
		wantActive(t, "a", a)
		wantActive(t, "b", b)
		// Re-login on a known device is a replacement, not a new session.
		a2, _ := loginOK(t, openid, map[string]any{"device_id": devA})
		wantEnded(t, "a", a, "replaced")
		wantActive(t, "a again", a2)
	})
}

// TestExclusiveModes: SESSION_EXCLUSIVE none, platform and all.
func TestExclusiveModes(t *testing.T) {
	needStack(t)
	plat := func(p string) map[string]any {
		return map[string]any{"device_id": deviceID(p), "device": map[string]any{"platform": p}}
	}
	tests := []struct {
		mode string
		want [3]string // end state of ios #1, android, ios #2: "" active, else reason
	}{
		{"none", [3]string{"", "", ""}},
		{"platform", [3]string{"replaced", "", ""}},
		{"all", [3]string{"replaced", "replaced", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			withSettings(t, map[string]string{"SESSION_EXCLUSIVE": tc.mode})
			ios1, openid := loginOK(t, "", plat("ios"))
			android, _ := loginOK(t, openid, plat("android"))
			ios2, _ := loginOK(t, openid, plat("ios"))
			for i, id := range []string{ios1, android, ios2} {
				if tc.want[i] == "" {
					wantActive(t, fmt.Sprint("session ", i+1), id)
				} else {
					wantEnded(t, fmt.Sprint("session ", i+1), id, tc.want[i])
				}
			}
		})
	}
}

// waitEnded polls GET /session until id has ended (or the deadline) and
// returns the reason.
func waitEnded(t *testing.T, id string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, reason := sessionState(t, id)
		if st == "ended" {
			return reason
		}
		if st != "active" {
			t.Fatalf("GET /session = %s", st)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still active after %v", within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClocks: SESSION_IDLE_TIMEOUT ends an unused session within seconds;
// SESSION_TTL ends any session at its lifetime.
func TestClocks(t *testing.T) {
	needStack(t)
	t.Run("idle", func(t *testing.T) {
		withSettings(t, map[string]string{"SESSION_IDLE_TIMEOUT": "2s"})
		id, _ := loginOK(t, "", nil)
		r := do(t, http.MethodGet, stk.APIURL+"/session", "", bearer(id)...)
		if r.str("state") != "active" || r.str("idle_expires_at") == "" {
			t.Fatalf("GET /session: %s, want active with idle_expires_at", r)
		}
		if reason := waitEnded(t, id, 30*time.Second); reason != "idle_timeout" {
			t.Fatalf("reason %q, want idle_timeout", reason)
		}
		if got := me(t, id); got != http.StatusForbidden {
			t.Errorf("GET /me after the idle timeout: %d", got)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		withSettings(t, map[string]string{"SESSION_TTL": "2s"})
		r, _ := loginWith(t, "", nil)
		var lr loginResult
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &lr) != nil || lr.ExpiresIn > 2 || lr.ExpiresIn < 1 {
			t.Fatalf("login with SESSION_TTL=2s: %s", r)
		}
		if reason := waitEnded(t, lr.SessionID, 30*time.Second); reason != "expired" {
			t.Fatalf("reason %q, want expired", reason)
		}
		if got := me(t, lr.SessionID); got != http.StatusForbidden {
			t.Errorf("GET /me after expiry: %d", got)
		}
	})
}

// TestEveryReason: GET /session tells the holder of an id why it ended, for
// every reason; no carrier is 401; an unknown id is "unknown".
func TestEveryReason(t *testing.T) {
	needStack(t)
	ctx := context.Background()
	store, err := dynamostore.New(stk.Dynamo, dynamostore.Config{SessionsTable: tableName(t, tblSessions)})
	if err != nil {
		t.Fatal(err)
	}
	// logged_out
	id, _ := loginOK(t, "", nil)
	do(t, http.MethodPost, stk.APIURL+"/logout", "", bearer(id)...)
	wantEnded(t, "logout", id, "logged_out")
	// logged_out_all, on both devices
	a, openid := loginOK(t, "", map[string]any{"device_id": deviceID("a")})
	b, _ := loginOK(t, openid, map[string]any{"device_id": deviceID("b")})
	if r := do(t, http.MethodPost, stk.APIURL+"/logout?scope=all", "", bearer(a)...); r.Status != http.StatusNoContent {
		t.Fatalf("logout all: %s", r)
	}
	wantEnded(t, "logout all (caller)", a, "logged_out_all")
	wantEnded(t, "logout all (other)", b, "logged_out_all")
	// revoked: ended from another device
	a, openid = loginOK(t, "", map[string]any{"device_id": deviceID("a")})
	b, _ = loginOK(t, openid, map[string]any{"device_id": deviceID("b")})
	if r := do(t, http.MethodDelete, stk.APIURL+"/me/sessions/"+session.Hash(b), "", bearer(a)...); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE /me/sessions: %s", r)
	}
	wantEnded(t, "revoked", b, "revoked")
	// kicked, banned, account_deleted: the operator's and account
	// deletion's store operations (docs/design.md §3).
	for _, reason := range []session.Reason{session.ReasonKicked, session.ReasonBanned} {
		id, _ := loginOK(t, "", nil)
		if ok, err := store.EndSession(ctx, session.Hash(id), reason); !ok || err != nil {
			t.Fatalf("EndSession(%s) = %v, %v", reason, ok, err)
		}
		wantEnded(t, string(reason), id, string(reason))
	}
	a, openid = loginOK(t, "", map[string]any{"device_id": deviceID("a")})
	b, _ = loginOK(t, openid, map[string]any{"device_id": deviceID("b")})
	if n, err := store.EndUserSessions(ctx, session.UserKey(stk.Emulator.AppID(), openid), session.ReasonAccountDeleted, ""); n != 2 || err != nil {
		t.Fatalf("EndUserSessions = %d, %v", n, err)
	}
	wantEnded(t, "account deleted", a, "account_deleted")
	wantEnded(t, "account deleted", b, "account_deleted")
	// replaced, evicted, idle_timeout and expired: the tests above.

	if st, _ := sessionState(t, fakeID(t)); st != "unknown" {
		t.Errorf("a never-issued id: %s", st)
	}
	if r := do(t, http.MethodGet, stk.APIURL+"/session", ""); r.Status != http.StatusUnauthorized || r.str("error") != "no_session" {
		t.Errorf("no carrier: %s", r)
	}
}

// wxStats is the emulator's GET /test/stats.
func wxStats(t *testing.T) map[string]int {
	t.Helper()
	r := do(t, http.MethodGet, stk.WeChatURL+"/test/stats", "")
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("GET /test/stats: %s", r)
	}
	out := map[string]int{}
	for k, v := range m {
		if f, ok := v.(float64); ok {
			out[k] = int(f)
		}
	}
	return out
}

// TestDuplicateCodes: eight copies of one code at once get one session
// with one WeChat call; later a copy from another device is refused.
func TestDuplicateCodes(t *testing.T) {
	needStack(t)
	is, err := newCode(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	dev := deviceID("dup")
	body := `{"code":"` + is.Code + `","device_id":"` + dev + `"}`
	before := wxStats(t)["jscode2session"]
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(context.Background(), http.MethodPost, stk.APIURL+"/login", body, nil)
			if err != nil || r.Status != http.StatusOK {
				t.Errorf("duplicate: %v %s", err, r)
				return
			}
			mu.Lock()
			ids[r.str("session_id")]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if calls := wxStats(t)["jscode2session"] - before; calls != 1 {
		t.Errorf("%d jscode2session calls for 8 copies of one code, want 1", calls)
	}
	if len(ids) != 1 {
		t.Fatalf("%d different session ids, want 1", len(ids))
	}
	r := do(t, http.MethodPost, stk.APIURL+"/login", `{"code":"`+is.Code+`","device_id":"`+deviceID("other")+`"}`)
	if r.Status != http.StatusConflict || r.str("error") != "code_device_mismatch" || r.str("session_id") != "" {
		t.Errorf("the code from another device: %s, want 409 code_device_mismatch", r)
	}
	for id := range ids {
		wantActive(t, "the duplicated session", id)
	}
}

// TestUnionIDOnEverySession: a login whose exchange carries no unionid
// still gets the user's known one.
func TestUnionIDOnEverySession(t *testing.T) {
	needStack(t)
	openid, unionid := "oE2eUnion"+uniq(), "uE2eUnion"+uniq()
	b, _ := json.Marshal(map[string]string{"openid": openid, "unionid": unionid})
	r := do(t, http.MethodPost, stk.WeChatURL+"/test/codes", string(b))
	var is issued
	if err := json.Unmarshal(r.Body, &is); err != nil || is.Code == "" {
		t.Fatalf("POST /test/codes: %s", r)
	}
	lr := do(t, http.MethodPost, stk.APIURL+"/login", `{"code":"`+is.Code+`"}`)
	first := lr.str("session_id")
	// The next exchange answers without a unionid.
	clearFaults(t)
	t.Cleanup(func() { clearFaults(t) })
	setFault(t, map[string]any{"count": 1, "body": `{"openid":"` + openid + `","session_key":"bm8tdW5pb25pZC1rZXk9PQ=="}`})
	second, _ := loginOK(t, "", nil)
	for i, id := range []string{first, second} {
		if got := do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(id)...); got.str("unionid") != unionid || got.str("openid") != openid {
			t.Errorf("session %d: GET /me %s, want unionid %s", i+1, got, unionid)
		}
	}
}
