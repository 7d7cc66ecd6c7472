package dynamostore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

func TestBanAndLogin(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dynamostore.Config{})
	user := session.UserKey(appID, "oBanned")
	rawA, _, _ := e.create(t, ident("oBanned"), dynamostore.IssueInput{})
	rawB, _, _ := e.create(t, ident("oBanned"), dynamostore.IssueInput{DeviceID: "device-0000000000001"})
	rawC, _, _ := e.create(t, ident("oBystander"), dynamostore.IssueInput{})

	tests := []struct {
		name      string
		ban       dynamostore.Ban
		advance   time.Duration // clock moves this much after the ban
		wantEnded int
		wantLogin error // nil: the login after the ban succeeds
		wantUntil time.Time
	}{
		{name: "until lifted", ban: dynamostore.Ban{Reason: "fraud", At: e.clock.Now()}, wantEnded: 2, wantLogin: dynamostore.ErrBanned},
		{name: "until a time", ban: dynamostore.Ban{Reason: "spam", At: e.clock.Now(), Until: e.clock.Now().Add(time.Hour)}, wantLogin: dynamostore.ErrBanned, wantUntil: e.clock.Now().Add(time.Hour)},
		{name: "ban over", ban: dynamostore.Ban{At: e.clock.Now(), Until: e.clock.Now().Add(time.Minute)}, advance: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.count.take()
			n, err := e.store.Ban(ctx, user, tt.ban)
			if err != nil || n != tt.wantEnded {
				t.Fatalf("Ban = %d, %v; want %d ended", n, err, tt.wantEnded)
			}
			u, err := e.store.User(ctx, user)
			if err != nil || u.Ban == nil || u.Ban.Reason != tt.ban.Reason || !u.Ban.Until.Equal(tt.ban.Until.Truncate(time.Second)) {
				t.Fatalf("User after Ban = %+v, %v", u.Ban, err)
			}
			e.clock.Set(e.clock.Now().Add(tt.advance))
			_, _, _, err = createSession(ctx, e.store, ident("oBanned"), time.Hour, dynamostore.IssueInput{})
			if tt.wantLogin == nil {
				if err != nil {
					t.Fatalf("login after the ban ended: %v", err)
				}
				return
			}
			var be *dynamostore.BannedError
			if !errors.Is(err, tt.wantLogin) || !errors.As(err, &be) || !be.Until.Equal(tt.wantUntil.Truncate(time.Second)) {
				t.Fatalf("login of a banned user: %v (until %v), want ErrBanned until %v", err, be, tt.wantUntil)
			}
		})
	}
	for _, raw := range []string{rawA, rawB} {
		if got := e.lookupReason(t, raw); got != session.ReasonBanned {
			t.Errorf("a session of the banned user: reason %q, want banned", got)
		}
	}
	if got := e.lookupReason(t, rawC); got != "" {
		t.Errorf("another user's session: reason %q", got)
	}
	if _, err := e.store.Ban(ctx, session.UserKey(appID, "oNobody"), dynamostore.Ban{At: e.clock.Now()}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Ban of an unknown user: %v, want ErrNotFound", err)
	}
}

// TestBannedLoginWritesNothing: a refused login leaves the user record as
// it was (no slot, no new session_key) and no session.
func TestBannedLoginWritesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dynamostore.Config{})
	user := session.UserKey(appID, "oQuiet")
	e.create(t, ident("oQuiet"), dynamostore.IssueInput{})
	if _, err := e.store.Ban(ctx, user, dynamostore.Ban{At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	before, _ := e.store.User(ctx, user)
	users := scan(t, e.client, e.users)
	e.count.take()
	raw, _, _, err := createSession(ctx, e.store, session.Identity{OpenID: "oQuiet", SessionKey: "new-key"}, time.Hour, dynamostore.IssueInput{})
	if !errors.Is(err, dynamostore.ErrBanned) {
		t.Fatalf("login: %v", err)
	}
	after, _ := e.store.User(ctx, user)
	if !slices.Equal(before.Registered, after.Registered) || !after.LastLoginAt.Equal(before.LastLoginAt) {
		t.Errorf("the refused login changed the user: %+v -> %+v", before, after)
	}
	if k, _ := e.store.SessionKey(ctx, user); k == "new-key" {
		t.Error("the refused login stored its session_key")
	}
	if got := scan(t, e.client, e.users); len(got) != len(users) {
		t.Errorf("users table: %d items, was %d", len(got), len(users))
	}
	if _, err := e.store.Get(ctx, session.Hash(raw)); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the refused login's session: %v", err)
	}
}

func TestUnban(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dynamostore.Config{})
	user := session.UserKey(appID, "oUnban")
	e.create(t, ident("oUnban"), dynamostore.IssueInput{})
	tests := []struct {
		name    string
		user    string
		ban     bool
		wantWas bool
		wantErr error
	}{
		{name: "banned", user: user, ban: true, wantWas: true},
		{name: "not banned", user: user},
		{name: "unknown", user: session.UserKey(appID, "oNobody"), wantErr: session.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ban {
				if _, err := e.store.Ban(ctx, tt.user, dynamostore.Ban{At: e.clock.Now(), Reason: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			was, err := e.store.Unban(ctx, tt.user)
			if was != tt.wantWas || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Unban = %v, %v; want %v, %v", was, err, tt.wantWas, tt.wantErr)
			}
			if tt.wantErr == nil {
				if u, _ := e.store.User(ctx, tt.user); u.Ban != nil {
					t.Errorf("ban still recorded: %+v", u.Ban)
				}
				if _, _, _, err := createSession(ctx, e.store, ident("oUnban"), time.Hour, dynamostore.IssueInput{}); err != nil {
					t.Errorf("login after unban: %v", err)
				}
			}
		})
	}
}

func TestUserAndDeleteUser(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dynamostore.Config{})
	user := session.UserKey(appID, "oDel")
	_, s1, _ := e.create(t, session.Identity{OpenID: "oDel", UnionID: "uDel", SessionKey: "secret-key"}, dynamostore.IssueInput{})
	_, s2, _ := e.create(t, ident("oDel"), dynamostore.IssueInput{})
	u, err := e.store.User(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if u.OpenID != "oDel" || u.AppID != appID || u.UnionID != "uDel" || u.Key != user || u.CreatedAt.IsZero() || u.Ban != nil {
		t.Errorf("User = %+v", u)
	}
	want := []string{s1.Hash, s2.Hash}
	slices.Sort(want)
	if !slices.Equal(u.Registered, want) {
		t.Errorf("Registered = %v, want %v", u.Registered, want)
	}
	found, err := e.store.FindUser(ctx, func(k string) bool { return k == user })
	if err != nil || found.Key != user {
		t.Errorf("FindUser = %+v, %v", found, err)
	}
	if _, err := e.store.FindUser(ctx, func(string) bool { return false }); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("FindUser of nobody: %v", err)
	}
	reg, err := e.store.DeleteUser(ctx, user)
	if err != nil || !slices.Equal(reg, want) {
		t.Fatalf("DeleteUser = %v, %v; want %v", reg, err, want)
	}
	if _, err := e.store.User(ctx, user); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("User after DeleteUser: %v", err)
	}
	if reg, err := e.store.DeleteUser(ctx, user); err != nil || len(reg) != 0 {
		t.Errorf("DeleteUser again = %v, %v; want nothing, no error", reg, err)
	}
}

func TestEndSessionsCreatedBefore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dynamostore.Config{})
	old1, _, _ := e.create(t, ident("oOld1"), dynamostore.IssueInput{})
	old2, _, _ := e.create(t, ident("oOld2"), dynamostore.IssueInput{})
	gone, s, _ := e.create(t, ident("oOld3"), dynamostore.IssueInput{})
	if _, err := e.store.EndSession(ctx, s.Hash, session.ReasonLoggedOut); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(e.clock.Now().Add(time.Minute))
	cut := e.clock.Now()
	e.clock.Set(cut.Add(time.Second))
	newer, _, _ := e.create(t, ident("oNew"), dynamostore.IssueInput{})
	// A claim of a login under way is not a session.
	pending, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Claim(ctx, session.Hash(pending), ""); err != nil {
		t.Fatal(err)
	}

	n, err := e.store.EndSessionsCreatedBefore(ctx, cut, session.ReasonKicked)
	if err != nil || n != 2 {
		t.Fatalf("EndSessionsCreatedBefore = %d, %v; want 2", n, err)
	}
	for raw, want := range map[string]session.Reason{old1: session.ReasonKicked, old2: session.ReasonKicked, gone: session.ReasonLoggedOut, newer: ""} {
		if got := e.lookupReason(t, raw); got != want {
			t.Errorf("reason %q, want %q", got, want)
		}
	}
	if n, err := e.store.EndSessionsCreatedBefore(ctx, cut, session.ReasonKicked); err != nil || n != 0 {
		t.Errorf("again = %d, %v; want 0", n, err)
	}
	if _, err := e.store.EndSessionsCreatedBefore(ctx, cut, session.ReasonExpired); err == nil {
		t.Error("a reason that cannot be stored was accepted")
	}
}
