package reliability_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/session"
)

// loginDevice logs openid in from deviceID and returns the answer (a 200's
// session id is registered as a secret).
func (h *harness) loginDevice(openid, deviceID string) (string, reply) {
	h.t.Helper()
	body := fmt.Sprintf(`{"code":%q,"device_id":%q}`, h.code(openid), deviceID)
	r := h.post("/login", body)
	var lb loginBody
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &lb); err != nil {
			h.t.Fatal(err)
		}
		h.secret(lb.SessionID, h.s.Emulator.SessionKey(openid))
	}
	return lb.SessionID, r
}

// live returns how many of ids are live sessions, by the table and by the
// API (which must agree).
func (h *harness) live(ids ...string) int {
	h.t.Helper()
	n := 0
	for i, id := range ids {
		inTable := h.sessionItem(id) != nil
		status := h.get("/me", bearer(id)).Status
		if inTable != (status == http.StatusOK) {
			h.t.Errorf("session %d: in the table %v, GET /me %d", i, inTable, status)
		}
		if inTable {
			n++
		}
	}
	return n
}

// TestReplacementAndEvictionFaults fails each write of a replacing or
// evicting login in turn: whatever fails, the user never has an extra live
// session, a session the login ended keeps its tombstone, and no login
// claim is left behind (docs/design.md §3, the write order of a login).
func TestReplacementAndEvictionFaults(t *testing.T) {
	h := newHarness(t, stackOpts{proxy: true, env: map[string]map[string]string{
		"Parameters": {"SESSION_MAX_PER_USER": "2"},
	}})
	p := h.proxy
	t.Cleanup(p.Reset)
	sessions := h.table("SessionsTable")
	// The sessions-table PutItems of a login, in order: the claim, the
	// tombstones, the session.
	tests := []struct {
		name   string
		evict  bool // two other devices first: the login evicts the oldest
		skip   int  // PutItems let through before the fault
		ended  bool // the old session ends (its tombstone was written)
		status int
	}{
		{"replacement: tombstone write fails", false, 1, false, http.StatusServiceUnavailable},
		{"replacement: session write fails", false, 2, true, http.StatusServiceUnavailable},
		{"eviction: tombstone write fails", true, 1, false, http.StatusServiceUnavailable},
		{"eviction: session write fails", true, 2, true, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := h.at(t)
			openid := randomOpenID(t, "Rep")
			devA, devB, devC := "dev-A-"+openid, "dev-B-"+openid, "dev-C-"+openid
			old, _ := h.loginDevice(openid, devA)
			ids := []string{old}
			login := devA // the same device: a replacement
			reason := "replaced"
			if tc.evict {
				b, _ := h.loginDevice(openid, devB)
				ids = append(ids, b)
				login, reason = devC, "evicted"
			}
			before := h.count("SessionsTable")
			p.SetRules(faultservers.Rule{Op: "PutItem", Table: sessions, Skip: tc.skip, Action: faultservers.Throttle})
			_, r := h.loginDevice(openid, login)
			p.Reset()
			if r.Status != tc.status || r.errorCode() != "store_unavailable" {
				t.Fatalf("login during the fault: %s", r)
			}
			wantLive := len(ids)
			if tc.ended {
				wantLive--
				if got := h.endReason(old); got != reason {
					t.Errorf("the ended session's tombstone: %q, want %q", got, reason)
				}
			} else if got := h.endReason(old); got != "" {
				t.Errorf("the old session ended (%q) although the login failed before its tombstone", got)
			}
			if n := h.live(ids...); n != wantLive {
				t.Errorf("%d live sessions after the failed login, want %d", n, wantLive)
			}
			if n := len(h.sessionsOf(openid)); n != wantLive {
				t.Errorf("%d sessions in the index, want %d (no extra session)", n, wantLive)
			}
			if n := h.count("SessionsTable"); n != before {
				t.Errorf("sessions table %d items, before %d: a claim or an extra session was left", n, before)
			}
			// The client logs in again: one session per device, within the cap.
			id, r := h.loginDevice(openid, login)
			if r.Status != http.StatusOK {
				t.Fatalf("login after the fault: %s", r)
			}
			all := append(ids, id)
			want := 1
			if tc.evict {
				want = 2
			}
			if n := h.live(all...); n != want {
				t.Errorf("%d live sessions after the retry, want %d", n, want)
			}
			if got := h.endReason(old); got != reason {
				t.Errorf("the old session: %q, want %q", got, reason)
			}
		})
	}
}

// TestHostileDeviceInput: malformed device ids and oversized or hostile
// device fields get a clear 400 and write nothing; odd but valid text is
// stored and given back as data, never interpreted.
func TestHostileDeviceInput(t *testing.T) {
	h := newHarness(t, stackOpts{})
	long := strings.Repeat("数", 65)
	tests := []struct {
		name  string
		extra string // JSON members after the code
		want  int
		msg   string
	}{
		{"device_id 15 characters", `"device_id":"abcdefghijklmno"`, 400, "device_id"},
		{"device_id 65 characters", `"device_id":"` + strings.Repeat("a", 65) + `"`, 400, "device_id"},
		{"device_id path traversal", `"device_id":"../../etc/passwd0000"`, 400, "device_id"},
		{"device_id with NUL", `"device_id":"abcdefghijklmnop\u0000"`, 400, "device_id"},
		{"device_id non-ASCII", `"device_id":"设备设备设备设备设备设备设备设备"`, 400, "device_id"},
		{"device_id null", `"device_id":null`, 200, ""},
		{"device_id object", `"device_id":{"a":1}`, 400, "device_id"},
		{"device model 65 characters", `"device":{"model":"` + long + `"}`, 400, "device.model"},
		{"device brand control character", `"device":{"brand":"x\u001by"}`, 400, "device.brand"},
		{"device system bidi override", `"device":{"system":"iOS\u202e81"}`, 400, "device.system"},
		{"device platform zero-width joiner", `"device":{"platform":"io\u200ds"}`, 400, "device.platform"},
		{"device unknown member", `"device":{"platform":"ios","imei":"35"}`, 400, "imei"},
		{"device nested", `"device":{"model":{"name":"x"}}`, 400, "device"},
		{"device array", `"device":["ios"]`, 400, "device"},
		{"device huge", `"device":{"model":"` + strings.Repeat("A", 5000) + `"}`, 413, ""},
		{"markup is data", `"device":{"model":"<script>alert(1)</script>","brand":"'; DROP TABLE--"}`, 200, ""},
		{"64 characters of CJK", `"device":{"model":"` + strings.Repeat("数", 64) + `"}`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := h.at(t)
			openid := randomOpenID(t, "Dev")
			before := h.count("SessionsTable")
			r := h.post("/login", `{"code":"`+h.code(openid)+`",`+tc.extra+`}`)
			if r.Status != tc.want {
				t.Fatalf("got %s, want %d", r, tc.want)
			}
			if tc.want != http.StatusOK {
				if tc.msg != "" && (r.errorCode() != "invalid_request" || !strings.Contains(string(r.Body), tc.msg)) {
					t.Errorf("answer %s does not name %s", r, tc.msg)
				}
				if n := h.count("SessionsTable"); n != before {
					t.Errorf("a refused login wrote to the sessions table (%d → %d)", before, n)
				}
				if h.userExists(openid) {
					t.Error("a refused login wrote the user")
				}
				return
			}
			var lb loginBody
			_ = json.Unmarshal(r.Body, &lb)
			h.secret(lb.SessionID, h.s.Emulator.SessionKey(openid))
			list := h.get("/me/sessions", bearer(lb.SessionID))
			var body struct {
				Sessions []struct {
					SID    string         `json:"sid"`
					Device session.Device `json:"device"`
				} `json:"sessions"`
			}
			if list.Status != http.StatusOK || json.Unmarshal(list.Body, &body) != nil || len(body.Sessions) != 1 {
				t.Fatalf("GET /me/sessions: %s", list)
			}
			if ct := list.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
