package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/api"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

// TestSessionState: GET /session answers the holder of an id, with at most
// one read, whatever became of the session; no carrier is 401.
func TestSessionState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	activeID, _ := e.loginRaw("oState-active-000001", "", "")
	endedID, ended := e.loginRaw("oState-ended-0000001", "", "")
	if _, err := e.store.EndSession(ctx, ended.Hash, session.ReasonBanned); err != nil {
		t.Fatal(err)
	}
	unknown, _ := session.NewID()
	// A session of a 10-year lifetime: no SESSION_TTL a login sets.
	forged, _ := session.NewID()
	c, err := e.store.Claim(ctx, session.Hash(forged), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.Issue(ctx, dynamostore.IssueInput{Claim: c, AppID: "wxappid0000000001",
		Identity: session.Identity{OpenID: "oState-forged-000001"}, Policy: dynamostore.Policy{TTL: 10 * 365 * 24 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		headers     map[string]string
		cookies     []string
		status      int
		state       string
		reason      string
		reads       int64
		maxLifetime time.Duration // the handler's SESSION_TTL (0: the default)
	}{
		{"active by bearer", map[string]string{"authorization": "Bearer " + activeID}, nil, 200, "active", "", 1, 0},
		{"active by cookie", nil, []string{"sessionid=" + activeID}, 200, "active", "", 1, 0},
		{"ended", map[string]string{"authorization": "Bearer " + endedID}, nil, 200, "ended", "banned", 1, 0},
		{"never issued", map[string]string{"authorization": "Bearer " + unknown}, nil, 200, "unknown", "", 1, 0},
		{"malformed", map[string]string{"authorization": "Bearer nope"}, nil, 200, "unknown", "", 0, 0},
		{"no carrier", nil, nil, 401, "", "", 0, 0},
		// SESSION_TTL lowered below the session's 1 h lifetime: ended, expired.
		{"ttl lowered", map[string]string{"authorization": "Bearer " + activeID}, nil, 200, "ended", "expired", 1, 10 * time.Minute},
		{"beyond any ttl", map[string]string{"authorization": "Bearer " + forged}, nil, 200, "unknown", "", 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, api.RouteSession, "", nil, nil)
			req.Headers = tc.headers
			req.Cookies = tc.cookies
			e.h.MaxLifetime = tc.maxLifetime
			before := e.counter.Count()
			resp := e.do(req)
			if n := e.counter.Count() - before; n != tc.reads {
				t.Errorf("%d DynamoDB requests, want %d", n, tc.reads)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
			if tc.status == 401 {
				if errorCode(t, resp) != "no_session" {
					t.Fatalf("body %s", resp.Body)
				}
				return
			}
			var st api.SessionState
			if err := json.Unmarshal([]byte(resp.Body), &st); err != nil || st.State != tc.state || st.Reason != tc.reason {
				t.Fatalf("body %s, want state %s reason %q", resp.Body, tc.state, tc.reason)
			}
			if tc.state == "active" && st.ExpiresAt == "" {
				t.Errorf("active without expires_at: %s", resp.Body)
			}
			if strings.Contains(resp.Body, "openid") || strings.Contains(resp.Body, "oState") {
				t.Errorf("GET /session tells more than the state: %s", resp.Body)
			}
		})
	}
}

// TestSessionListFields and logout reasons: the device list shows the
// device fields and pages; logouts leave the right reasons.
func TestSessionListAndReasons(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const openid = "oList-user-00000001"
	var all []session.Session
	for _, dev := range []string{"device-1-0123456789", "device-2-0123456789", "device-3-0123456789"} {
		_, s := e.loginRaw(openid, "", dev)
		all = append(all, s)
	}
	me := all[0]
	var got []api.SessionInfo
	cursor := ""
	for range 5 {
		q := map[string]string{"limit": "2"}
		if cursor != "" {
			q["cursor"] = cursor
		}
		resp := e.do(request(t, api.RouteListSessions, "", q, &me))
		var page api.SessionsResponse
		if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &page) != nil {
			t.Fatalf("%d %s", resp.StatusCode, resp.Body)
		}
		got = append(got, page.Sessions...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != 3 || got[0].SID != all[2].Hash || got[2].SID != me.Hash || !got[2].Current || got[0].Current {
		t.Fatalf("list %+v, want the three sessions newest first, the caller's current", got)
	}
	for _, s := range got {
		if s.DeviceID == "" || s.LastActiveAt == "" || s.CreatedAt == "" || s.ExpiresAt == "" {
			t.Errorf("entry lacks fields: %+v", s)
		}
	}
	for _, q := range []map[string]string{{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "bogus"}} {
		if resp := e.do(request(t, api.RouteListSessions, "", q, &me)); resp.StatusCode != 400 {
			t.Errorf("query %v: %d", q, resp.StatusCode)
		}
	}

	// Another device ended from here: revoked; this one: logged_out; the
	// rest, logout-all: logged_out_all.
	if resp := e.do(withSID(request(t, api.RouteDeleteSession, "", nil, &me), all[1].Hash)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := e.do(request(t, api.RouteLogout, "", map[string]string{"scope": "all"}, &me)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout all: %d %s", resp.StatusCode, resp.Body)
	}
	for i, want := range []session.Reason{session.ReasonLoggedOutAll, session.ReasonRevoked, session.ReasonLoggedOutAll} {
		s, err := e.store.Lookup(ctx, all[i].Hash)
		if err != nil || s.EndedReason != want {
			t.Errorf("session %d: %q, %v; want %q", i, s.EndedReason, err, want)
		}
	}
}
