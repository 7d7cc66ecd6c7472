package reliability_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/session"
)

// concurrencyBound bounds each concurrent request: 20 at once queue behind
// at most 8 instances per function on a 2-core machine.
const concurrencyBound = 8 * time.Second

// sessionsOf returns the stored hashes of openid's sessions (through the
// user index, as logout-all finds them).
func (h *harness) sessionsOf(openid string) map[string]bool {
	h.t.Helper()
	out, err := h.s.Dynamo.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(h.table("SessionsTable")),
		IndexName:                 aws.String("user-index"),
		KeyConditionExpression:    aws.String("#u = :u"),
		ExpressionAttributeNames:  map[string]string{"#u": "user"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": &types.AttributeValueMemberS{Value: session.UserKey(h.s.Emulator.AppID(), openid)}},
	})
	if err != nil {
		h.t.Fatalf("query sessions of user: %v", err)
	}
	m := map[string]bool{}
	for _, it := range out.Items {
		if s, ok := it["sid"].(*types.AttributeValueMemberS); ok {
			m[s.Value] = true
		}
	}
	return m
}

// TestConcurrentLoginsOneUser logs one openid in from 20 "devices" at once:
// with the default cap of 10 sessions, exactly 10 stay and the other 10
// end with reason evicted (docs/design.md §3), however the logins
// interleave.
func TestConcurrentLoginsOneUser(t *testing.T) {
	h := newHarness(t, stackOpts{})
	openid := randomOpenID(t, "Multi")
	const devices = 20
	codes := make([]string, devices)
	for i := range codes {
		codes[i] = h.code(openid)
	}
	ids := make([]string, devices)
	replies := make([]reply, devices)
	errs := make([]error, devices)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var lb loginBody
			lb, replies[i], errs[i] = h.tryLogin(codes[i])
			ids[i] = lb.SessionID
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent logins of one user in %v", devices, time.Since(t0).Round(time.Millisecond))

	seen := map[string]bool{}
	for i := range ids {
		if errs[i] != nil || replies[i].Status != http.StatusOK {
			t.Fatalf("login %d: %s %v", i, replies[i], errs[i])
		}
		if replies[i].Dur > concurrencyBound {
			t.Errorf("login %d took %v", i, replies[i].Dur)
		}
		if seen[ids[i]] {
			t.Errorf("login %d: session id handed out twice", i)
		}
		seen[ids[i]] = true
	}
	const maxPerUser = 10
	live := 0
	for i, id := range ids {
		r := h.get("/me", bearer(id))
		var me struct {
			OpenID string `json:"openid"`
		}
		switch {
		case r.Status == http.StatusOK && json.Unmarshal(r.Body, &me) == nil && me.OpenID == openid:
			live++
		case r.Status == http.StatusForbidden && h.endReason(id) == "evicted":
		default:
			t.Errorf("session %d: GET /me %s, reason %q", i, r, h.endReason(id))
		}
	}
	if live != maxPerUser {
		t.Errorf("%d live sessions after %d concurrent logins, want the cap %d", live, devices, maxPerUser)
	}
	if n := len(h.sessionsOf(openid)); n != maxPerUser {
		t.Errorf("user has %d sessions in the index, want %d", n, maxPerUser)
	}
	if !h.userExists(openid) {
		t.Error("no users record")
	}
}

// TestLogoutAllRacesLogins runs 10 logins against 3 logout-alls of the same
// user, in rounds with the logout-alls started at different offsets, and
// checks after each round that the table and the API agree.
func TestLogoutAllRacesLogins(t *testing.T) {
	h := newHarness(t, stackOpts{})
	openid := randomOpenID(t, "Race")
	for round, offset := range []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond} {
		t.Run("logout-alls delayed "+offset.String(), func(t *testing.T) {
			h := h.at(t)
			raceRound(t, h, openid, offset)
		})
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
}

func raceRound(t *testing.T, h *harness, openid string, offset time.Duration) {
	const logins, logouts = 10, 3
	initial := make([]string, logouts)
	for i := range initial {
		initial[i] = h.login(openid).SessionID
	}
	codes := make([]string, logins)
	for i := range codes {
		codes[i] = h.code(openid)
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	loginIDs := make([]string, logins)
	loginReplies := make([]reply, logins)
	loginErrs := make([]error, logins)
	logoutReplies := make([]reply, logouts)
	logoutErrs := make([]error, logouts)
	for i := 0; i < logins; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var lb loginBody
			lb, loginReplies[i], loginErrs[i] = h.tryLogin(codes[i])
			loginIDs[i] = lb.SessionID
		}()
	}
	for i := 0; i < logouts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			time.Sleep(offset)
			logoutReplies[i], logoutErrs[i] = h.send(h.request("POST", "/logout?scope=all", nil, bearer(initial[i])))
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)

	anyLogout := false
	for i, r := range logoutReplies {
		if logoutErrs[i] != nil {
			t.Fatalf("logout-all %d: %v", i, logoutErrs[i])
		}
		// 403: another logout-all removed this caller's session first.
		if r.Status != http.StatusNoContent && r.Status != http.StatusForbidden {
			t.Errorf("logout-all %d: %s", i, r)
		}
		if r.Status == http.StatusNoContent {
			anyLogout = true
		}
		if r.Dur > concurrencyBound {
			t.Errorf("logout-all %d took %v", i, r.Dur)
		}
	}
	if !anyLogout {
		t.Error("no logout-all succeeded")
	}
	var all []string
	for i, r := range loginReplies {
		if loginErrs[i] != nil || r.Status != http.StatusOK {
			t.Fatalf("login %d: %s %v", i, r, loginErrs[i])
		}
		all = append(all, loginIDs[i])
	}
	all = append(all, initial...)

	// The table and the API agree on every session.
	stored := h.sessionsOf(openid)
	alive := 0
	for i, id := range all {
		inTable := h.sessionItem(id) != nil
		r := h.get("/me", bearer(id))
		switch {
		case inTable && r.Status != http.StatusOK:
			t.Errorf("session %d is in the table but GET /me answers %s", i, r)
		case !inTable && r.Status != http.StatusForbidden:
			t.Errorf("session %d is not in the table but GET /me answers %s", i, r)
		}
		if inTable != stored[session.Hash(id)] {
			t.Errorf("session %d: table %v, GSI %v", i, inTable, stored[session.Hash(id)])
		}
		if inTable {
			alive++
		}
	}
	// Every session that existed before the first logout-all is gone.
	for i, id := range initial {
		if h.sessionItem(id) != nil {
			t.Errorf("initial session %d survived a successful logout-all", i)
		}
	}
	if len(stored) != alive {
		t.Errorf("GSI lists %d sessions, %d of the issued ones are alive: unknown sessions exist", len(stored), alive)
	}
	if !h.userExists(openid) {
		t.Error("no users record")
	}
	t.Logf("%d logins racing %d logout-alls in %v: %d of the %d new sessions survive", logins, logouts, elapsed.Round(time.Millisecond), alive, logins)

	// And a final logout-all from a surviving session (or a new one) clears everything.
	sid := h.login(openid).SessionID
	if r := h.post("/logout?scope=all", "", bearer(sid)); r.Status != http.StatusNoContent {
		t.Fatalf("final logout-all: %s", r)
	}
	if n := len(h.sessionsOf(openid)); n != 0 {
		t.Errorf("%d sessions left after the final logout-all", n)
	}
	for i, id := range all {
		if r := h.get("/me", bearer(id)); r.Status != http.StatusForbidden {
			t.Errorf("session %d after the final logout-all: %s", i, r)
		}
	}
}
