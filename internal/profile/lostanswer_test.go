package profile_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/profile"
)

// TestWritesSurviveLostAnswer: the profile store's writes are plain
// PutItem and DeleteItem, without condition or returned values, so the
// SDK's retry of one applied with its answer lost writes the same again:
// one row per write, the answer lost exactly once (docs/design.md §3.10).
func TestWritesSurviveLostAnswer(t *testing.T) {
	srv := dynalitetest.NewTestServer(t)
	alice := profile.Profile{Nickname: "小明", AvatarURL: "https://example.com/a.png"}
	tests := []struct {
		name  string
		match string
		run   func(t *testing.T, ctx context.Context, s *profile.Store, arm func())
	}{
		{"Put", `"nickname"`, func(t *testing.T, ctx context.Context, s *profile.Store, arm func()) {
			arm()
			if _, err := s.Put(ctx, "oAlice", alice); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, "oAlice"); err != nil || got.Nickname != alice.Nickname {
				t.Fatalf("Get = %+v, %v", got, err)
			}
		}},
		{"DeleteUserData", `"Key"`, func(t *testing.T, ctx context.Context, s *profile.Store, arm func()) {
			if _, err := s.Put(ctx, "oAlice", alice); err != nil {
				t.Fatal(err)
			}
			arm()
			if err := s.DeleteUserData(ctx, "wxa", "oAlice"); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, "oAlice"); err != nil || got != (profile.Profile{}) {
				t.Fatalf("Get after delete = %+v, %v", got, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lose := faultservers.NewLoseAnswer(nil)
			db := dynalitetest.Client(t, srv, func(o *dynamodb.Options) { o.HTTPClient = lose })
			table := dynalitetest.Tables(t, db, "ProfilesTable")["ProfilesTable"]
			s, err := profile.New(db, profile.Config{Table: table, OpTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			tc.run(t, ctx, s, func() { lose.Lose(tc.match, 1) })
			if n := lose.Lost(); n != 1 {
				t.Fatalf("the fault was injected %d times, want once", n)
			}
		})
	}
}
