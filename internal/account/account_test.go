package account_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/account"
	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/profile"
	"github.com/wxsession/wxsession/session"
)

var server *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &server) }

const appID = "wxaccounttest0001"

type env struct {
	db       *dynamodb.Client
	store    *dynamostore.Store
	profiles *profile.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := dynalitetest.Client(t, server)
	tables := dynalitetest.Tables(t, db, "SessionsTable", "UsersTable", "ProfilesTable")
	sessions, users, profiles := tables["SessionsTable"], tables["UsersTable"], tables["ProfilesTable"]
	st, err := dynamostore.New(db, dynamostore.Config{SessionsTable: sessions, UsersTable: users, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := profile.New(db, profile.Config{Table: profiles})
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: db, store: st, profiles: pr}
}

// login is a whole login on the store: claim a fresh code's hash, issue.
func (e *env) login(t *testing.T, openid string) session.Session {
	t.Helper()
	ctx := context.Background()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.store.Claim(ctx, session.Hash(id), "")
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := e.store.Issue(ctx, dynamostore.IssueInput{Claim: c, AppID: appID, Identity: session.Identity{OpenID: openid, SessionKey: "k"},
		Policy: dynamostore.Policy{TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s1, s2 := e.login(t, "oGone"), e.login(t, "oGone")
	other := e.login(t, "oStays")
	for _, oid := range []string{"oGone", "oStays"} {
		if _, err := e.profiles.Put(ctx, oid, profile.Profile{Nickname: oid}); err != nil {
			t.Fatal(err)
		}
	}
	d := &account.Deleter{Sessions: e.store, Users: e.store, Data: []account.DataDeleter{e.profiles}}
	tests := []struct {
		name      string
		openid    string
		wantEnded int
	}{
		{"delete", "oGone", 2},
		{"again: nothing left, no error", "oGone", 0},
		{"never existed", "oNever", 0},
	}
	for _, tt := range tests {
		n, err := d.Delete(ctx, appID, tt.openid)
		if err != nil || n != tt.wantEnded {
			t.Fatalf("%s: Delete = %d, %v; want %d", tt.name, n, err, tt.wantEnded)
		}
	}
	for _, s := range []session.Session{s1, s2} {
		got, err := e.store.Lookup(ctx, s.Hash)
		if err != nil || got.EndedReason != session.ReasonAccountDeleted {
			t.Errorf("session after deletion: %+v, %v; want reason account_deleted", got.EndedReason, err)
		}
	}
	if _, err := e.store.User(ctx, session.UserKey(appID, "oGone")); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("user record after deletion: %v", err)
	}
	if p, err := e.profiles.Get(ctx, "oGone"); err != nil || p.Nickname != "" {
		t.Errorf("profile after deletion: %+v, %v", p, err)
	}
	if p, _ := e.profiles.Get(ctx, "oStays"); p.Nickname != "oStays" {
		t.Error("another user's profile was deleted")
	}
	if _, err := e.store.Get(ctx, other.Hash); err != nil {
		t.Errorf("another user's session: %v", err)
	}
}

// TestDeleteStopsOnDataError: when a data deleter fails, the user record
// stays (the deletion is retried and finishes), and the error says so.
func TestDeleteStopsOnDataError(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.login(t, "oRetry")
	broken, err := profile.New(e.db, profile.Config{Table: "no-such-table"})
	if err != nil {
		t.Fatal(err)
	}
	d := &account.Deleter{Sessions: e.store, Users: e.store, Data: []account.DataDeleter{broken}}
	if _, err := d.Delete(ctx, appID, "oRetry"); err == nil {
		t.Fatal("no error with a failing data deleter")
	}
	if _, err := e.store.User(ctx, session.UserKey(appID, "oRetry")); err != nil {
		t.Errorf("the user record went although its data could not be deleted: %v", err)
	}
	d.Data = []account.DataDeleter{e.profiles}
	if _, err := d.Delete(ctx, appID, "oRetry"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := e.store.User(ctx, session.UserKey(appID, "oRetry")); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("after the retry: %v", err)
	}
}
