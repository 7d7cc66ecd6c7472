package dynamostore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

const appID = "wx0123456789abcdef"

const (
	devA = "device-A-0123456789"
	devB = "device-B-0123456789"
	devC = "device-C-0123456789"
)

func ident(openid string) session.Identity {
	return session.Identity{OpenID: openid, SessionKey: "sk-" + openid}
}

// TestIssueRequestsAndItems: the DynamoDB requests of each login case, and
// what is stored (never a raw id or a session_key on a session item).
func TestIssueRequestsAndItems(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	u := session.Identity{OpenID: "oUser-items-0001", UnionID: "oUnion-items-01", SessionKey: "SECRETkey/+=="}
	dev := session.Device{Platform: "ios", Brand: "Apple", Model: "iPhone 15", System: "iOS 18.1"}
	tests := []struct {
		name   string
		in     dynamostore.IssueInput
		want   map[string]int
		nEnded int
	}{
		{"new device", dynamostore.IssueInput{DeviceID: devA, Device: dev, SourceIP: "203.0.113.7"}, map[string]int{"PutItem": 2, "UpdateItem": 1}, 0},
		{"same device", dynamostore.IssueInput{DeviceID: devA, Device: dev, SourceIP: "203.0.113.7"}, map[string]int{"PutItem": 3, "UpdateItem": 1}, 1},
		{"another device", dynamostore.IssueInput{DeviceID: devB}, map[string]int{"PutItem": 2, "UpdateItem": 1}, 0},
		{"no device id", dynamostore.IssueInput{}, map[string]int{"PutItem": 2, "UpdateItem": 1}, 0},
	}
	var raws []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.count.take()
			raw, s, ended := e.create(t, u, tc.in)
			raws = append(raws, raw)
			if ops := e.count.take(); !mapsEqual(ops, tc.want) {
				t.Errorf("requests = %v, want %v", ops, tc.want)
			}
			if len(ended) != tc.nEnded {
				t.Errorf("ended %v, want %d", ended, tc.nEnded)
			}
			if s.User != session.UserKey(appID, u.OpenID) || s.UnionID != u.UnionID || s.DeviceID != tc.in.DeviceID || s.Device != tc.in.Device || s.SourceIP != tc.in.SourceIP {
				t.Errorf("session = %+v", s)
			}
			got, err := e.store.Get(context.Background(), session.Hash(raw))
			if err != nil || got.Hash != s.Hash || !got.CreatedAt.Equal(s.CreatedAt) {
				t.Fatalf("Get = %+v, %v; want %+v", got, err, s)
			}
		})
	}
	for _, it := range scan(t, e.client, e.sessions) {
		d := dump(it)
		for _, secret := range append(slices.Clone(raws), u.SessionKey) {
			if strings.Contains(d, secret) {
				t.Errorf("session item holds a raw id or session_key: %s", d)
			}
		}
	}
	users := scan(t, e.client, e.users)
	if len(users) != 1 {
		t.Fatalf("%d users", len(users))
	}
	slots := 0
	for k := range users[0] {
		if strings.HasPrefix(k, dynamostore.SlotPrefix) {
			slots++
		}
	}
	if slots != 3 || str(users[0], "user") != appID+"#"+u.OpenID || str(users[0], "session_key") != u.SessionKey {
		t.Errorf("user item %s: want 3 slots (A, B, no-device), the user key and the key", dump(users[0]))
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func str(it map[string]types.AttributeValue, k string) string {
	if v, ok := it[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// lookupReason is the reason GET /session would give for raw.
func (e *env) lookupReason(t *testing.T, raw string) session.Reason {
	t.Helper()
	s, err := e.store.Lookup(context.Background(), session.Hash(raw))
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return s.EndReason(e.clock.Now())
}

// TestReplacement: same device, presented session, exclusive modes and the
// cap, each ending the right sessions with the right reason.
func TestReplacement(t *testing.T) {
	type login struct {
		dev      string
		platform string
		present  int // index of an earlier login whose session is presented, -1 none
	}
	tests := []struct {
		name   string
		policy dynamostore.Policy
		logins []login
		// want is the reason each login's session has at the end ("" = active).
		want []session.Reason
	}{
		{"five re-logins on one device", dynamostore.Policy{},
			[]login{{devA, "", -1}, {devA, "", -1}, {devA, "", -1}, {devA, "", -1}, {devA, "", -1}},
			[]session.Reason{"replaced", "replaced", "replaced", "replaced", ""}},
		{"presented session without device id", dynamostore.Policy{},
			[]login{{"", "", -1}, {"", "", 0}, {"", "", 1}, {"", "", -1}},
			[]session.Reason{"replaced", "replaced", "", ""}},
		{"devices coexist", dynamostore.Policy{},
			[]login{{devA, "ios", -1}, {devB, "android", -1}, {devC, "ios", -1}},
			[]session.Reason{"", "", ""}},
		{"exclusive platform", dynamostore.Policy{Exclusive: dynamostore.ExclusivePlatform},
			[]login{{devA, "ios", -1}, {devB, "android", -1}, {devC, "ios", -1}},
			[]session.Reason{"replaced", "", ""}},
		{"exclusive all", dynamostore.Policy{Exclusive: dynamostore.ExclusiveAll},
			[]login{{devA, "ios", -1}, {devB, "android", -1}, {devC, "ios", -1}},
			[]session.Reason{"replaced", "replaced", ""}},
		{"cap evicts the oldest", dynamostore.Policy{MaxPerUser: 2},
			[]login{{devA, "", -1}, {devB, "", -1}, {devC, "", -1}, {devA, "", -1}},
			[]session.Reason{"evicted", "evicted", "", ""}},
		{"cap counts one session per device", dynamostore.Policy{MaxPerUser: 2},
			[]login{{devA, "", -1}, {devB, "", -1}, {devB, "", -1}, {devB, "", -1}},
			[]session.Reason{"", "replaced", "replaced", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dynamostore.Config{})
			u := ident("oUser-" + strings.ReplaceAll(tc.name, " ", "-"))
			var raws []string
			for i, l := range tc.logins {
				in := dynamostore.IssueInput{DeviceID: l.dev, Device: session.Device{Platform: l.platform}, Policy: tc.policy}
				if l.present >= 0 {
					in.Presented = session.Hash(raws[l.present])
				}
				e.clock.Set(e.clock.Now().Add(time.Millisecond)) // same second: order is still exact
				raw, _, _ := e.create(t, u, in)
				raws = append(raws, raw)
				_ = i
			}
			for i, raw := range raws {
				if got := e.lookupReason(t, raw); got != tc.want[i] {
					t.Errorf("login %d: reason %q, want %q", i, got, tc.want[i])
				}
			}
			live := 0
			for _, w := range tc.want {
				if w == "" {
					live++
				}
			}
			list, _, err := e.store.ListSessions(context.Background(), session.UserKey(appID, u.OpenID), "", 0)
			if err != nil || len(list) != live {
				t.Errorf("ListSessions = %d sessions, %v; want %d", len(list), err, live)
			}
		})
	}
}

// TestRejectNew: at the cap, reject_new refuses the login and leaves the
// registry as it was; sessions ended elsewhere do not count.
func TestRejectNew(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	u := ident("oUser-reject-0001")
	pol := dynamostore.Policy{MaxPerUser: 2, Overflow: dynamostore.RejectNew}
	rawA, _, _ := e.create(t, u, dynamostore.IssueInput{DeviceID: devA, Policy: pol})
	e.create(t, u, dynamostore.IssueInput{DeviceID: devB, Policy: pol})
	_, _, _, err := createSession(ctx, e.store, u, time.Hour, dynamostore.IssueInput{DeviceID: devC, Policy: pol})
	if !errors.Is(err, dynamostore.ErrTooManySessions) {
		t.Fatalf("third device: %v, want ErrTooManySessions", err)
	}
	// The same device is a replacement, not a new session.
	rawA2, _, _ := e.create(t, u, dynamostore.IssueInput{DeviceID: devA, Policy: pol})
	if r := e.lookupReason(t, rawA); r != session.ReasonReplaced {
		t.Fatalf("device A's first session: %q", r)
	}
	// A logout elsewhere frees a place.
	if ok, err := e.store.EndSession(ctx, session.Hash(rawA2), session.ReasonLoggedOut); !ok || err != nil {
		t.Fatalf("EndSession = %v, %v", ok, err)
	}
	rawC, _, _ := e.create(t, u, dynamostore.IssueInput{DeviceID: devC, Policy: pol})
	if r := e.lookupReason(t, rawC); r != "" {
		t.Fatalf("device C after a logout: %q", r)
	}
}

// TestUnionIDCarried: a login without a unionid gets the user's known one.
func TestUnionIDCarried(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	_, first, _ := e.create(t, session.Identity{OpenID: "oUser-union-0001", UnionID: "oUnion-0001", SessionKey: "k1"}, dynamostore.IssueInput{DeviceID: devA})
	_, second, _ := e.create(t, session.Identity{OpenID: "oUser-union-0001", SessionKey: "k2"}, dynamostore.IssueInput{DeviceID: devB})
	if first.UnionID != "oUnion-0001" || second.UnionID != "oUnion-0001" {
		t.Fatalf("unionids %q, %q", first.UnionID, second.UnionID)
	}
	if got, _ := e.store.Get(context.Background(), second.Hash); got.UnionID != "oUnion-0001" {
		t.Fatalf("stored unionid %q", got.UnionID)
	}
}

// TestClaim: duplicates of a code get the session, or the right error.
func TestClaim(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	u := ident("oUser-claim-0001")
	raw, hash := newCodeHash(t)
	c, err := e.store.Claim(ctx, hash, devA)
	if err != nil || c.Token == "" {
		t.Fatalf("first Claim = %+v, %v", c, err)
	}
	// A duplicate while the first is pending waits for it.
	got := make(chan error, 1)
	var dup dynamostore.Claim
	go func() {
		var err error
		dup, err = e.store.Claim(ctx, hash, devA)
		got <- err
	}()
	s, _, err := e.store.Issue(ctx, dynamostore.IssueInput{Claim: c, AppID: appID, Identity: u, DeviceID: devA, Policy: dynamostore.Policy{TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil || dup.Token != "" || dup.Existing.Hash != s.Hash {
		t.Fatalf("waiting duplicate = %+v, %v; want the session", dup, err)
	}
	e.count.take()
	tests := []struct {
		name    string
		advance time.Duration
		device  string
		want    error
	}{
		{"sequential duplicate", 0, devA, nil},
		{"another device", 0, devB, dynamostore.ErrDeviceMismatch},
		{"no device", 0, "", dynamostore.ErrDeviceMismatch},
		{"after the code's window", dynamostore.CodeWindow + time.Second, devA, dynamostore.ErrCodeSpent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Set(e.clock.Now().Add(tc.advance))
			c, err := e.store.Claim(ctx, hash, tc.device)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Claim = %+v, %v; want %v", c, err, tc.want)
			}
			if tc.want == nil && c.Existing.Hash != session.Hash(raw) {
				t.Fatalf("Claim = %+v, want the session", c)
			}
			if ops := e.count.take(); total(ops) != 2 {
				t.Errorf("duplicate requests = %v, want 2 (PutItem, GetItem)", ops)
			}
		})
	}

	// A code whose login failed for good: duplicates get the same error.
	_, h2 := newCodeHash(t)
	c2, _ := e.store.Claim(ctx, h2, "")
	e.store.Release(ctx, c2, "invalid_code")
	var fe *dynamostore.FailedError
	if _, err := e.store.Claim(ctx, h2, devA); !errors.As(err, &fe) || fe.Code != "invalid_code" {
		t.Fatalf("after a failure: %v", err)
	}
	// A retryable failure frees the code.
	_, h3 := newCodeHash(t)
	c3, _ := e.store.Claim(ctx, h3, "")
	e.store.Release(ctx, c3, "")
	if c, err := e.store.Claim(ctx, h3, ""); err != nil || c.Token == "" {
		t.Fatalf("after a retryable failure: %+v, %v; want ownership", c, err)
	}
	// An abandoned claim.
	_, h4 := newCodeHash(t)
	if _, err := e.store.Claim(ctx, h4, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(e.clock.Now().Add(time.Minute))
	if _, err := e.store.Claim(ctx, h4, ""); !errors.Is(err, dynamostore.ErrCodeSpent) {
		t.Fatalf("abandoned claim: %v", err)
	}
	// A pending claim and a caller whose deadline comes.
	_, h5 := newCodeHash(t)
	if _, err := e.store.Claim(ctx, h5, ""); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := e.store.Claim(short, h5, ""); !errors.Is(err, dynamostore.ErrClaimPending) {
		t.Fatalf("pending claim: %v", err)
	}
}

// TestConcurrentLogins: 8 logins of one device at once leave one active
// session; 8 duplicates of one code at once all get one session.
func TestConcurrentLogins(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	u := ident("oUser-concurrent-01")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var raws []string
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, _, _, err := createSession(ctx, e.store, u, time.Hour, dynamostore.IssueInput{DeviceID: devA})
			if err != nil && !errors.Is(err, dynamostore.ErrSuperseded) {
				t.Error(err)
			}
			mu.Lock()
			raws = append(raws, raw)
			mu.Unlock()
		}()
	}
	wg.Wait()
	live := 0
	for _, raw := range raws {
		if _, err := e.store.Get(ctx, session.Hash(raw)); err == nil {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d active sessions after 8 concurrent logins of one device, want 1", live)
	}

	_, hash := newCodeHash(t)
	sids := make(chan string, 8)
	owners := make(chan dynamostore.Claim, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.store.Claim(ctx, hash, devB)
			if err != nil {
				t.Error(err)
				return
			}
			if c.Token != "" {
				owners <- c
				s, _, err := e.store.Issue(ctx, dynamostore.IssueInput{Claim: c, AppID: appID, Identity: u, DeviceID: devB, Policy: dynamostore.Policy{TTL: time.Hour}})
				if err != nil {
					t.Error(err)
				}
				sids <- s.Hash
				return
			}
			sids <- c.Existing.Hash
		}()
	}
	wg.Wait()
	close(sids)
	close(owners)
	if n := len(owners); n != 1 {
		t.Fatalf("%d owners of one code, want 1", n)
	}
	for sid := range sids {
		if sid != hash {
			t.Fatalf("a duplicate got session %q, want %q", sid, hash)
		}
	}
}

// TestEndSessionAndLookup: every stored reason, the clocks' reasons, and
// the first reason winning.
func TestEndSessionAndLookup(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	for _, r := range session.Reasons {
		t.Run(string(r), func(t *testing.T) {
			raw, s, _ := e.create(t, ident("oUser-reason-"+string(r)), dynamostore.IssueInput{Policy: dynamostore.Policy{IdleTimeout: 10 * time.Minute}})
			switch r {
			case session.ReasonExpired:
				e.clock.Set(s.ExpiresAt)
				defer e.clock.Set(s.CreatedAt)
			case session.ReasonIdleTimeout:
				e.clock.Set(s.IdleExpiresAt)
				defer e.clock.Set(s.CreatedAt)
			default:
				e.count.take()
				if ok, err := e.store.EndSession(ctx, s.Hash, r); !ok || err != nil {
					t.Fatalf("EndSession = %v, %v", ok, err)
				}
				if ops := e.count.take(); total(ops) != 1 {
					t.Errorf("EndSession requests %v", ops)
				}
				if ok, err := e.store.EndSession(ctx, s.Hash, session.ReasonKicked); ok || err != nil {
					t.Fatalf("second EndSession = %v, %v; want false (first reason stays)", ok, err)
				}
			}
			if got := e.lookupReason(t, raw); got != r {
				t.Fatalf("reason %q, want %q", got, r)
			}
			if _, err := e.store.Get(ctx, s.Hash); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Get after the end: %v", err)
			}
		})
	}
	if _, err := e.store.EndSession(ctx, strings.Repeat("A", 43), session.ReasonIdleTimeout); err == nil {
		t.Error("EndSession stored a clock's reason")
	}
	unknown, _ := session.NewID()
	if _, err := e.store.Lookup(ctx, session.Hash(unknown)); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup(unknown) = %v", err)
	}
	if ok, err := e.store.EndSession(ctx, session.Hash(unknown), session.ReasonKicked); ok || err != nil {
		t.Errorf("EndSession(unknown) = %v, %v; want false, nil (no tombstone for nothing)", ok, err)
	}
}

// TestEndUserSessionsAndList: many sessions, small pages: the list pages
// through all of them, newest first; ending them all leaves none, the
// caller's last; a deadline too short says so.
func TestEndUserSessionsAndList(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	dynamostore.SetPageSize(e.store, 7)
	ctx := context.Background()
	u := ident("oUser-many-000001")
	user := session.UserKey(appID, u.OpenID)
	const n = 40
	var hashes []string
	for i := range n {
		e.clock.Set(e.clock.Now().Add(time.Millisecond))
		_, s, _ := e.create(t, u, dynamostore.IssueInput{DeviceID: fmt.Sprintf("device-%02d-0123456789", i), Policy: dynamostore.Policy{MaxPerUser: 0}})
		hashes = append([]string{s.Hash}, hashes...) // newest first
	}
	e.create(t, ident("oUser-bystander-01"), dynamostore.IssueInput{})

	var listed []string
	cursor := ""
	for page := 0; ; page++ {
		list, next, err := e.store.ListSessions(ctx, user, cursor, 9)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			listed = append(listed, s.Hash)
		}
		if next == "" {
			break
		}
		if page > n {
			t.Fatal("the list does not end")
		}
		cursor = next
	}
	if !slices.Equal(listed, hashes) {
		t.Fatalf("listed %d sessions, want all %d newest first", len(listed), len(hashes))
	}
	for _, bad := range []string{"x", "AAAA", strings.Repeat("A", 200)} {
		if _, _, err := e.store.ListSessions(ctx, user, bad, 5); !errors.Is(err, dynamostore.ErrInvalidCursor) {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond) // under the 300 ms margin
	defer cancel()
	if _, err := e.store.EndUserSessions(short, user, session.ReasonBanned, ""); !errors.Is(err, dynamostore.ErrIncomplete) {
		t.Fatalf("EndUserSessions with no time left: %v, want ErrIncomplete", err)
	}
	last := hashes[n/2]
	ended, err := e.store.EndUserSessions(ctx, user, session.ReasonLoggedOutAll, last)
	if err != nil || ended != n {
		t.Fatalf("EndUserSessions = %d, %v; want %d", ended, err, n)
	}
	if list, _, err := e.store.ListSessions(ctx, user, "", 0); err != nil || len(list) != 0 {
		t.Fatalf("after EndUserSessions: %d listed, %v", len(list), err)
	}
	for _, h := range hashes {
		s, err := e.store.Lookup(ctx, h)
		if err != nil || s.EndedReason != session.ReasonLoggedOutAll {
			t.Fatalf("%s: %+v, %v", h, s, err)
		}
	}
	if list, _, _ := e.store.ListSessions(ctx, session.UserKey(appID, "oUser-bystander-01"), "", 0); len(list) != 1 {
		t.Fatalf("the bystander lost a session: %d", len(list))
	}
}

// TestTouch: the renewal extends the idle clock, writes only its two
// attributes, and never revives an ended session.
func TestTouch(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	_, s, _ := e.create(t, ident("oUser-touch-00001"), dynamostore.IssueInput{Policy: dynamostore.Policy{IdleTimeout: time.Minute}})
	t1 := s.CreatedAt.Add(50 * time.Second)
	e.clock.Set(t1)
	if err := e.store.Touch(ctx, s.Hash, t1, t1.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(s.CreatedAt.Add(100 * time.Second)) // past the first idle clock
	got, err := e.store.Get(ctx, s.Hash)
	if err != nil || !got.IdleExpiresAt.Equal(t1.Add(time.Minute).Truncate(time.Second)) || !got.LastActiveAt.Equal(t1.Truncate(time.Second)) {
		t.Fatalf("after Touch: %+v, %v", got, err)
	}
	// Idle expired: a late touch must not revive it.
	late := s.CreatedAt.Add(200 * time.Second)
	e.clock.Set(late)
	if err := e.store.Touch(ctx, s.Hash, late, late.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Get(ctx, s.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("an idle-expired session revived: %v", err)
	}
	// Ended: no write at all.
	_, s2, _ := e.create(t, ident("oUser-touch-00002"), dynamostore.IssueInput{Policy: dynamostore.Policy{IdleTimeout: time.Minute}})
	if _, err := e.store.EndSession(ctx, s2.Hash, session.ReasonKicked); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Touch(ctx, s2.Hash, late, late.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	out, _ := e.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.sessions), Key: map[string]types.AttributeValue{"sid": &types.AttributeValueMemberS{Value: s2.Hash}}})
	if _, ok := out.Item["last_active_at"]; ok {
		t.Fatalf("Touch wrote to a tombstone: %s", dump(out.Item))
	}
}

func TestSessionKey(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	open := "oUser-sessionkey-01"
	user := session.UserKey(appID, open)
	for i, st := range []struct{ login, want string }{{"key-one", "key-one"}, {"key-two", "key-two"}, {"", "key-two"}} {
		e.create(t, session.Identity{OpenID: open, SessionKey: st.login}, dynamostore.IssueInput{})
		e.count.take()
		got, err := e.store.SessionKey(ctx, user)
		if err != nil || got != st.want {
			t.Fatalf("step %d: SessionKey = %q, %v; want %q", i, got, err, st.want)
		}
		if ops := e.count.take(); ops["GetItem"] != 1 || total(ops) != 1 {
			t.Errorf("SessionKey requests = %v, want 1 GetItem", ops)
		}
	}
	for _, u := range []string{appID + "#oUnknown-user-01", ""} {
		if _, err := e.store.SessionKey(ctx, u); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("SessionKey(%q) = %v, want ErrNotFound", u, err)
		}
	}
}

func TestGetNotFound(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	raw, s, _ := e.create(t, ident("oUser-expiry-0001"), dynamostore.IssueInput{})
	t0 := s.CreatedAt
	unknown, _ := session.NewID()
	_, claimed := newCodeHash(t)
	if _, err := e.store.Claim(ctx, claimed, ""); err != nil {
		t.Fatal(err)
	}
	e.count.take()
	tests := []struct {
		name     string
		hash     string
		at       time.Time
		wantErr  error
		requests int
	}{
		{"valid just before expiry", session.Hash(raw), t0.Add(time.Hour - time.Second), nil, 1},
		{"expired at expires_at", session.Hash(raw), t0.Add(time.Hour), session.ErrNotFound, 1},
		{"expired long ago, item still present", session.Hash(raw), t0.Add(30 * 24 * time.Hour), session.ErrNotFound, 1},
		{"unknown", session.Hash(unknown), t0, session.ErrNotFound, 1},
		{"a login claim", claimed, t0, session.ErrNotFound, 1},
		{"raw id instead of hash", raw, t0, session.ErrNotFound, 1},
		{"empty", "", t0, session.ErrNotFound, 0},
		{"wrong length", "abc", t0, session.ErrNotFound, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Set(tc.at)
			_, err := e.store.Get(ctx, tc.hash)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Get = %v, want %v", err, tc.wantErr)
			}
			if n := total(e.count.take()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestReadOnlyStoreWithoutUsersTable(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ro, err := dynamostore.New(e.client, dynamostore.Config{SessionsTable: e.sessions, Now: e.clock.Now})
	if err != nil {
		t.Fatalf("a store without a users table must build: %v", err)
	}
	ctx := context.Background()
	raw, _, _ := e.create(t, ident("oReadOnly0001"), dynamostore.IssueInput{})
	if _, err := ro.Get(ctx, session.Hash(raw)); err != nil {
		t.Fatalf("read-only Get: %v", err)
	}
	if _, _, _, err := createSession(ctx, ro, ident("o2"), time.Hour, dynamostore.IssueInput{}); !errors.Is(err, dynamostore.ErrNoUsersTable) {
		t.Fatalf("Issue without users table: err = %v, want ErrNoUsersTable", err)
	}
	if _, err := ro.SessionKey(ctx, appID+"#oReadOnly0001"); !errors.Is(err, dynamostore.ErrNoUsersTable) {
		t.Fatalf("SessionKey without users table: err = %v", err)
	}
	if ok, err := ro.EndSession(ctx, session.Hash(raw), session.ReasonLoggedOut); !ok || err != nil {
		t.Fatalf("read-only EndSession: %v, %v", ok, err)
	}
}

func scan(t *testing.T, c *dynamodb.Client, table string) []map[string]types.AttributeValue {
	t.Helper()
	out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("scan %s: %v", table, err)
	}
	return out.Items
}

func dump(item map[string]types.AttributeValue) string {
	var sb strings.Builder
	for k, v := range item {
		fmt.Fprintf(&sb, "%s=", k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			sb.WriteString(v.Value)
		case *types.AttributeValueMemberN:
			sb.WriteString(v.Value)
		default:
			fmt.Fprintf(&sb, "%T", v)
		}
		sb.WriteString(";")
	}
	return sb.String()
}

func TestGetMalformedItem(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	id, _ := session.NewID()
	h := session.Hash(id)
	tests := []struct {
		name string
		item map[string]types.AttributeValue
	}{
		{"no user", map[string]types.AttributeValue{"openid": &types.AttributeValueMemberS{Value: "oX"}, "created_at": &types.AttributeValueMemberN{Value: "1"}, "expires_at": &types.AttributeValueMemberN{Value: "9999999999"}}},
		{"no expires_at", map[string]types.AttributeValue{"user": &types.AttributeValueMemberS{Value: "wx#oX"}, "openid": &types.AttributeValueMemberS{Value: "oX"}, "created_at": &types.AttributeValueMemberN{Value: "1"}}},
		{"expires_at not a number", map[string]types.AttributeValue{"user": &types.AttributeValueMemberS{Value: "wx#oX"},
			"openid": &types.AttributeValueMemberS{Value: "oX"}, "expires_at": &types.AttributeValueMemberS{Value: "tomorrow"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.item["sid"] = &types.AttributeValueMemberS{Value: h}
			if _, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.sessions), Item: tc.item}); err != nil {
				t.Fatal(err)
			}
			_, err := e.store.Get(ctx, h)
			if err == nil || errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("Get = %v, want a malformed-item error", err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	c, _ := newClient(t, server.Endpoint)
	tests := []struct {
		name string
		c    *dynamodb.Client
		cfg  dynamostore.Config
	}{
		{"nil client", nil, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users"}},
		{"no sessions table", c, dynamostore.Config{UsersTable: "users"}},
		{"bad users table", c, dynamostore.Config{SessionsTable: "sessions", UsersTable: "u s"}},
		{"same table", c, dynamostore.Config{SessionsTable: "wx", UsersTable: "wx"}},
		{"bad characters", c, dynamostore.Config{SessionsTable: "my sessions", UsersTable: "users"}},
		{"too short", c, dynamostore.Config{SessionsTable: "s", UsersTable: "users"}},
		{"bad index", c, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users", UserIndex: "a b"}},
		{"negative timeout", c, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users", OpTimeout: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := dynamostore.New(tc.c, tc.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, err := dynamostore.New(c, dynamostore.Config{SessionsTable: "wx-sessions", UsersTable: "wx-users"}); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

// collidingIDs are session ids whose sids (session.Hash) share the first 24
// bits of md5("Outliers" + sid): dynalite keys an index entry by the index
// key plus only that much of the table key, so with a hash-only GSI the
// second session of a user overwrote the first one's entry and the first
// became invisible to the list and to logout-all ("logout-all left 9 of
// 16,000 sessions"). Found by brute force over patternID(1..).
var collidingIDs = [][2]string{
	{patternID(2603), patternID(2777)},
	{patternID(1638), patternID(5696)},
}

// patternID is a valid session id made of i's four bytes repeated.
func patternID(i uint32) string {
	b := []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}
	return base64.RawURLEncoding.EncodeToString(bytes.Repeat(b, 8))
}

// TestIndexKeyCollision: every session of a user is listed and ended by
// logout-all, even sessions whose sids collide in dynalite's index key and
// that were created in the same microsecond (the sort key holds the sid;
// docs/design.md §6). The items are written as Issue writes them, since
// Issue derives its ids from codes. Runs on dynalite and, with
// WXSESSION_TEST_DYNAMODB_ENDPOINT, on any other server.
func TestIndexKeyCollision(t *testing.T) {
	for i, pair := range collidingIDs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := newEnv(t, dynamostore.Config{})
			ctx := context.Background()
			user := session.UserKey(appID, "oCollidingIndexKeys0001")
			now := e.clock.Now()
			for _, id := range pair {
				h := session.Hash(id)
				_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.sessions), Item: map[string]types.AttributeValue{
					"sid": &types.AttributeValueMemberS{Value: h}, "user": &types.AttributeValueMemberS{Value: user},
					"openid":      &types.AttributeValueMemberS{Value: "oCollidingIndexKeys0001"},
					"created_sid": &types.AttributeValueMemberS{Value: fmt.Sprintf("%016d#%s", now.UnixMicro(), h)},
					"created_us":  &types.AttributeValueMemberN{Value: fmt.Sprint(now.UnixMicro())},
					"created_at":  &types.AttributeValueMemberN{Value: fmt.Sprint(now.Unix())},
					"expires_at":  &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(time.Hour).Unix())},
				}})
				if err != nil {
					t.Fatal(err)
				}
			}
			if l, _, err := e.store.ListSessions(ctx, user, "", 0); err != nil || len(l) != 2 {
				t.Fatalf("ListSessions = %d sessions, %v; want 2", len(l), err)
			}
			if n, err := e.store.EndUserSessions(ctx, user, session.ReasonLoggedOutAll, ""); err != nil || n != 2 {
				t.Fatalf("EndUserSessions = %d, %v; want 2", n, err)
			}
			for _, id := range pair {
				if _, err := e.store.Get(ctx, session.Hash(id)); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("session survived EndUserSessions: %v", err)
				}
			}
		})
	}
}

// TestCrashAfterUserUpdate: a login that crashed after taking the device's
// slot and before ending the device's previous session leaves that session
// unregistered; the device's next login still ends it (docs/design.md §3.3).
func TestCrashAfterUserUpdate(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	u := ident("oUser-crash-000001")
	pol := dynamostore.Policy{TTL: time.Hour}
	rawX, _, _ := e.create(t, u, dynamostore.IssueInput{DeviceID: devA})
	// The crashed login: its claim, then its user update, nothing else.
	_, hash := newCodeHash(t)
	c, err := e.store.Claim(ctx, hash, devA)
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamostore.UpdateUserOnly(e.store, ctx, dynamostore.IssueInput{Claim: c, AppID: appID, Identity: u, DeviceID: devA, Policy: pol}); err != nil {
		t.Fatal(err)
	}
	if r := e.lookupReason(t, rawX); r != "" {
		t.Fatalf("the previous session ended before the next login: %q", r)
	}
	e.clock.Set(e.clock.Now().Add(time.Second))
	rawN, _, ended := e.create(t, u, dynamostore.IssueInput{DeviceID: devA, Policy: pol})
	if r := e.lookupReason(t, rawX); r != session.ReasonReplaced {
		t.Fatalf("the session the crashed login left: %q, want replaced", r)
	}
	if r := e.lookupReason(t, rawN); r != "" {
		t.Fatalf("the new session: %q", r)
	}
	if len(ended) != 2 {
		t.Errorf("ended %v, want the crashed login's claim and the orphaned session", ended)
	}
	list, _, err := e.store.ListSessions(ctx, session.UserKey(appID, u.OpenID), "", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListSessions = %d, %v; want 1 (one session per device)", len(list), err)
	}
}
