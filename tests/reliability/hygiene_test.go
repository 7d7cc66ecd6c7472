package reliability_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/session"
)

// TestSessionHygiene checks the OWASP session-management basics end to end:
// a new id on every login (never reused, never the one presented), cookie
// attributes, no cacheable token, one DynamoDB read per authorization (none
// for a malformed id), unknown and expired ids answered alike, and no raw id
// in the table.
func TestSessionHygiene(t *testing.T) {
	h := newHarness(t, stackOpts{proxy: true})
	p := h.proxy
	openid := randomOpenID(t, "Hyg")

	t.Run("new id on every login", func(t *testing.T) {
		h := h.at(t)
		seen := map[string]bool{}
		var prev string
		for i := 0; i < 5; i++ {
			var hdrs []header
			if prev != "" {
				// Presenting a session (a fixation attempt, or a client
				// without a device id) gets a new id and ends the
				// presented one (Django's cycle_key).
				hdrs = []header{bearer(prev), cookie("sessionid=" + prev)}
			}
			code := h.code(openid)
			r := h.post("/login", `{"code":"`+code+`"}`, hdrs...)
			var lb loginBody
			if r.Status != 200 || json.Unmarshal(r.Body, &lb) != nil {
				t.Fatalf("login %d: %s", i, r)
			}
			h.secret(lb.SessionID)
			if !session.ValidID(lb.SessionID) || len(lb.SessionID) != session.IDLength {
				t.Errorf("login %d: id is not 43 chars of base64url", i)
			}
			if seen[lb.SessionID] || lb.SessionID == prev {
				t.Errorf("login %d: id reused", i)
			}
			seen[lb.SessionID] = true
			prev = lb.SessionID
		}
		h.secret(h.s.Emulator.SessionKey(openid))
		// Each presented session ended (replaced); the last one works.
		for id := range seen {
			want := http.StatusForbidden
			if id == prev {
				want = http.StatusOK
			}
			if r := h.get("/me", bearer(id)); r.Status != want {
				t.Errorf("GET /me: %s, want %d", r, want)
			}
			if id != prev && h.endReason(id) != "replaced" {
				t.Errorf("a presented session: reason %q, want replaced", h.endReason(id))
			}
		}
	})

	t.Run("cookie attributes", func(t *testing.T) {
		h := h.at(t)
		r := h.post("/login", `{"code":"`+h.code(openid)+`"}`)
		var lb loginBody
		if r.Status != 200 || json.Unmarshal(r.Body, &lb) != nil {
			t.Fatalf("login: %s", r)
		}
		h.secret(lb.SessionID)
		if lb.TokenType != "Bearer" || lb.ExpiresIn <= 0 || lb.OpenID != openid {
			t.Errorf("login body: %s", r.Body)
		}
		exp, err := time.Parse(time.RFC3339, lb.ExpiresAt)
		if err != nil || exp.Sub(time.Now().Add(time.Duration(lb.ExpiresIn)*time.Second)).Abs() > 2*time.Second {
			t.Errorf("expires_at %q does not match expires_in %d", lb.ExpiresAt, lb.ExpiresIn)
		}
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("login answer Cache-Control %q: the token could be cached", cc)
		}
		sc := r.Header.Values("Set-Cookie")
		if len(sc) != 1 {
			t.Fatalf("%d Set-Cookie headers, want 1", len(sc))
		}
		c, err := http.ParseSetCookie(sc[0])
		if err != nil {
			t.Fatalf("Set-Cookie does not parse: %v", err)
		}
		if c.Name != "sessionid" || c.Value != lb.SessionID || c.Path != "/" || !c.HttpOnly || !c.Secure ||
			c.SameSite != http.SameSiteLaxMode || c.Domain != "" || (c.MaxAge-int(lb.ExpiresIn)) > 1 || (int(lb.ExpiresIn)-c.MaxAge) > 1 {
			t.Errorf("Set-Cookie attributes: name %q, value matches %v, path %q, HttpOnly %v, Secure %v, SameSite %v, domain %q, Max-Age %d (expires_in %d)",
				c.Name, c.Value == lb.SessionID, c.Path, c.HttpOnly, c.Secure, c.SameSite, c.Domain, c.MaxAge, lb.ExpiresIn)
		}
		// Logout clears the cookie with the same attributes.
		r = h.post("/logout", "", cookie("sessionid="+lb.SessionID))
		if r.Status != 204 {
			t.Fatalf("logout: %s", r)
		}
		sc = r.Header.Values("Set-Cookie")
		if len(sc) != 1 {
			t.Fatalf("logout: %d Set-Cookie headers", len(sc))
		}
		c, err = http.ParseSetCookie(sc[0])
		if err != nil || c.Name != "sessionid" || c.Value != "" || c.MaxAge >= 0 || c.Path != "/" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("logout Set-Cookie %q does not clear the cookie (%v)", sc[0], err)
		}
		if r := h.get("/me", cookie("sessionid="+lb.SessionID)); r.Status != 403 {
			t.Errorf("logged-out session: %s", r)
		}
		// Failed logins set no cookie.
		r = h.post("/login", `{"code":"wellFormedButUnknownCode0123"}`)
		if r.Status != 401 || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("failed login: %s, %d Set-Cookie", r, len(r.Header.Values("Set-Cookie")))
		}
	})

	t.Run("one read per authorization", func(t *testing.T) {
		h := h.at(t)
		live := h.login(openid).SessionID
		unknown, _ := session.NewID()
		expired := h.putSession(openid, time.Now().Add(-time.Minute))
		expiredNow := h.putSession(openid, time.Now()) // expires_at == now: expired
		for _, tc := range []struct {
			name   string
			hdrs   []header
			status int
			reads  int
		}{
			{"live", []header{bearer(live)}, 200, 1},
			{"unknown", []header{bearer(unknown)}, 403, 1},
			{"expired a minute ago", []header{bearer(expired)}, 403, 1},
			{"expires this second", []header{bearer(expiredNow)}, 403, 1},
			{"unknown (cookie)", []header{cookie("sessionid=" + unknown)}, 403, 1},
			{"expired (cookie)", []header{cookie("sessionid=" + expired)}, 403, 1},
			{"malformed", []header{bearer("x")}, 403, 0},
			{"malformed 43 chars", []header{bearer(strings.Repeat("!", 43))}, 403, 0},
			{"no credentials", nil, 403, 0},
		} {
			p.Reset()
			r := h.get("/me", tc.hdrs...)
			if r.Status != tc.status {
				t.Errorf("%s: %s, want %d", tc.name, r, tc.status)
			}
			if tc.status == 403 && r.gatewayMessage() != "Forbidden" {
				t.Errorf("%s: body %s, want API Gateway's Forbidden", tc.name, r.Body)
			}
			reqs := p.Requests()
			if len(reqs) != tc.reads {
				t.Errorf("%s: %d DynamoDB requests, want %d: %+v", tc.name, len(reqs), tc.reads, reqs)
			}
			for _, q := range reqs {
				if q.Op != "GetItem" || len(q.Tables) != 1 || q.Tables[0] != h.table("SessionsTable") {
					t.Errorf("%s: unexpected DynamoDB request %+v", tc.name, q)
				}
			}
		}
		// Expired sessions stay readable in DynamoDB (TTL lags): the
		// deny came from the expiry check, not from a missing item.
		if h.sessionItem(expired) == nil {
			t.Error("the expired session item is gone: the test did not test expiry")
		}
	})

	t.Run("no raw id or session_key in the sessions table", func(t *testing.T) {
		h := h.at(t)
		h.sec.mu.Lock()
		secrets := append([]string(nil), h.sec.list...)
		h.sec.mu.Unlock()
		items := h.items("SessionsTable")
		if len(items) == 0 {
			t.Fatal("no sessions")
		}
		for _, it := range items {
			for name, av := range it {
				s := attrString(av)
				for _, sec := range secrets {
					if strings.Contains(s, sec) {
						t.Errorf("attribute %s of a session item holds a secret", name)
					}
				}
			}
			if sid := attrString(it["sid"]); len(sid) != 43 {
				t.Errorf("sid %q is not a SHA-256 in base64url", sid)
			}
			if _, ok := it["session_key"]; ok {
				t.Error("a session item has a session_key")
			}
		}
		// The users table holds the latest session_key, and only there.
		users := h.items("UsersTable")
		found := false
		for _, it := range users {
			if attrString(it["openid"]) == openid && attrString(it["session_key"]) == h.s.Emulator.SessionKey(openid) {
				found = true
			}
		}
		if !found {
			t.Error("the user's latest session_key is not in the users table")
		}
	})
}

func attrString(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case nil:
		return ""
	}
	b, _ := json.Marshal(av)
	return strconv.Quote(string(b))
}
