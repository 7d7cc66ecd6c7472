package dynamostore_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

// TestIssueSurvivesLostAnswer: a login's conditional PutItem is applied but
// its answer is lost; the SDK's retry then fails its condition. The login
// must still go on with what it wrote:
//   - the session PutItem (conditional on the claim token, which it
//     replaced): answer the session it wrote, not ErrSuperseded with a live
//     session nobody holds;
//   - the claim PutItem (attribute_not_exists): own the claim it wrote, not
//     wait on it as a duplicate's until the claim counts as abandoned (with
//     a clock that does not move, for ever: the CI failure of stop 14).
func TestIssueSurvivesLostAnswer(t *testing.T) {
	const (
		sessionPut = `"ConditionExpression":"#claim = :token"`
		claimPut   = `"ConditionExpression":"attribute_not_exists(#sid)"`
	)
	tests := []struct {
		name  string
		match string
		in    dynamostore.IssueInput
	}{
		{"session put, new device", sessionPut, dynamostore.IssueInput{DeviceID: devA}},
		{"session put, no device id", sessionPut, dynamostore.IssueInput{}},
		{"claim put, new device", claimPut, dynamostore.IssueInput{DeviceID: devA}},
		{"claim put, no device id", claimPut, dynamostore.IssueInput{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{config.VarDynamoDBEndpoint: server.Endpoint}
			_, cfg, err := dynamoclient.New(context.Background(), func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			lose := faultservers.NewLoseAnswer(cfg.HTTPClient)
			lose.Lose(tc.match, 1)
			c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
				o.BaseEndpoint = aws.String(server.Endpoint)
				o.HTTPClient = lose
			})
			tables := dynalitetest.Tables(t, c, "SessionsTable", "UsersTable")
			logs := &testutil.Buffer{}
			s, err := dynamostore.New(c, dynamostore.Config{
				SessionsTable: tables["SessionsTable"], UsersTable: tables["UsersTable"], OpTimeout: 10 * time.Second,
				Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			// Well under claimAbandoned (30 s): a login that waits on its own
			// claim runs out of time here instead of answering ErrCodeSpent.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			raw, sess, _, err := createSession(ctx, s, ident("oUser-lostanswer-01"), time.Hour, tc.in)
			if lose.Lost() != 1 {
				t.Fatalf("the fault was not injected (lost %d answers); logs:\n%s", lose.Lost(), logs)
			}
			if errors.Is(err, dynamostore.ErrSuperseded) || err != nil {
				t.Fatalf("Issue after a lost answer = %v; want the session it wrote; logs:\n%s", err, logs)
			}
			got, err := s.Get(context.Background(), session.Hash(raw))
			if err != nil || got.Hash != sess.Hash {
				t.Fatalf("Get = %+v, %v; want the issued session %+v", got, err, sess)
			}
		})
	}
}

// TestWritesSurviveLostAnswer: each write of the store, applied with its
// answer lost so that the SDK retries it, gives the caller what the write
// earned: one row per write, the fault injected on that write's request
// only (a string of its body), exactly once (docs/design.md §3.10).
func TestWritesSurviveLostAnswer(t *testing.T) {
	const (
		userUpdate = `"UpdateExpression":"SET #appid = :appid`
		replaced   = `{"S":"replaced"}`
	)
	evict := dynamostore.Policy{TTL: time.Hour, MaxPerUser: 1, Overflow: dynamostore.EvictOldest}
	tests := []struct {
		name  string
		match string
		// run sets up, arms the fault (arm), makes the write and checks
		// its outcome.
		run func(t *testing.T, ctx context.Context, e *env, arm func())
	}{
		{"user update, same device", userUpdate, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			raw1, s1, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA})
			e.clock.Set(e.clock.Now().Add(time.Second))
			arm()
			_, s2, ended := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA})
			wantEnded(t, ended, s1.Hash, session.ReasonReplaced)
			if got := e.lookupReason(t, raw1); got != session.ReasonReplaced {
				t.Errorf("previous session of the device: %q, want replaced", got)
			}
			wantRegistered(t, ctx, e, "oLost", s2.Hash)
		}},
		{"user update, new device", userUpdate, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			_, s1, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA})
			arm()
			_, s2, ended := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devB})
			if len(ended) != 0 {
				t.Errorf("ended %v, want nothing", ended)
			}
			wantRegistered(t, ctx, e, "oLost", s1.Hash, s2.Hash)
		}},
		{"tombstone of the device's previous session", replaced, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			raw1, s1, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA})
			arm()
			_, _, ended := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA})
			wantEnded(t, ended, s1.Hash, session.ReasonReplaced)
			if got := e.lookupReason(t, raw1); got != session.ReasonReplaced {
				t.Errorf("previous session of the device: %q, want replaced", got)
			}
		}},
		{"tombstone of the presented session", replaced, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			_, s1, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{})
			arm()
			_, _, ended := e.create(t, ident("oLost"), dynamostore.IssueInput{Presented: s1.Hash})
			wantEnded(t, ended, s1.Hash, session.ReasonReplaced)
		}},
		{"tombstone of the oldest over the cap", `{"S":"evicted"}`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			_, s1, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA, Policy: evict})
			arm()
			_, s2, ended := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devB, Policy: evict})
			wantEnded(t, ended, s1.Hash, session.ReasonEvicted)
			wantRegistered(t, ctx, e, "oLost", s2.Hash)
		}},
		{"registry clean-up", `"UpdateExpression":"REMOVE #s`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA, Policy: evict})
			arm()
			_, s2, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devB, Policy: evict})
			wantRegistered(t, ctx, e, "oLost", s2.Hash)
		}},
		{"claim released for a retry", `"ConditionExpression":"#claim = :token"`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			_, hash := newCodeHash(t)
			c, err := e.store.Claim(ctx, hash, devA)
			if err != nil || c.Token == "" {
				t.Fatalf("Claim = %+v, %v", c, err)
			}
			arm()
			e.store.Release(ctx, c, "")
			if again, err := e.store.Claim(ctx, hash, devA); err != nil || again.Token == "" {
				t.Fatalf("Claim after the release = %+v, %v; want to own it", again, err)
			}
		}},
		{"claim released with a failure", `{"S":"invalid_code"}`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			_, hash := newCodeHash(t)
			c, err := e.store.Claim(ctx, hash, devA)
			if err != nil || c.Token == "" {
				t.Fatalf("Claim = %+v, %v", c, err)
			}
			arm()
			e.store.Release(ctx, c, "invalid_code")
			var fe *dynamostore.FailedError
			if _, err := e.store.Claim(ctx, hash, devA); !errors.As(err, &fe) || fe.Code != "invalid_code" {
				t.Fatalf("Claim after the failure = %v; want invalid_code", err)
			}
		}},
		{"EndSession", `{"S":"kicked"}`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			raw, s1, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{})
			arm()
			if ok, err := e.store.EndSession(ctx, s1.Hash, session.ReasonKicked); err != nil || !ok {
				t.Fatalf("EndSession = %v, %v; want true", ok, err)
			}
			if got := e.lookupReason(t, raw); got != session.ReasonKicked {
				t.Errorf("reason %q, want kicked", got)
			}
			if ok, err := e.store.EndSession(ctx, s1.Hash, session.ReasonKicked); err != nil || ok {
				t.Fatalf("EndSession again = %v, %v; want false (already ended)", ok, err)
			}
		}},
		{"EndUserSessions", `"PutRequest"`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devA})
			e.create(t, ident("oLost"), dynamostore.IssueInput{DeviceID: devB})
			arm()
			if n, err := e.store.EndUserSessions(ctx, session.UserKey(appID, "oLost"), session.ReasonLoggedOutAll, ""); err != nil || n != 2 {
				t.Fatalf("EndUserSessions = %d, %v; want 2", n, err)
			}
		}},
		{"Touch", `"UpdateExpression":"SET #last = :now`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			_, s1, _ := e.create(t, ident("oLost"), dynamostore.IssueInput{Policy: dynamostore.Policy{TTL: time.Hour, IdleTimeout: 10 * time.Minute}})
			later := e.clock.Now().Add(time.Minute)
			arm()
			if err := e.store.Touch(ctx, s1.Hash, later, later.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			got, err := e.store.Get(ctx, s1.Hash)
			if err != nil || !got.LastActiveAt.Equal(later) || !got.IdleExpiresAt.Equal(later.Add(10*time.Minute)) {
				t.Fatalf("Get after Touch = %+v, %v", got, err)
			}
		}},
		{"Ban", `"UpdateExpression":"SET #banned = :at`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			e.create(t, ident("oLost"), dynamostore.IssueInput{})
			arm()
			if n, err := e.store.Ban(ctx, session.UserKey(appID, "oLost"), dynamostore.Ban{Reason: "spam", At: e.clock.Now()}); err != nil || n != 1 {
				t.Fatalf("Ban = %d, %v; want 1 ended", n, err)
			}
		}},
		{"Unban", `REMOVE #banned, #reason, #until`, func(t *testing.T, ctx context.Context, e *env, arm func()) {
			e.create(t, ident("oLost"), dynamostore.IssueInput{})
			user := session.UserKey(appID, "oLost")
			if _, err := e.store.Ban(ctx, user, dynamostore.Ban{At: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			arm()
			if was, err := e.store.Unban(ctx, user); err != nil || !was {
				t.Fatalf("Unban = %v, %v; want true (it was banned)", was, err)
			}
			if was, err := e.store.Unban(ctx, user); err != nil || was {
				t.Fatalf("Unban again = %v, %v; want false", was, err)
			}
			if _, err := e.store.Unban(ctx, session.UserKey(appID, "oNobody")); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Unban of no user = %v; want ErrNotFound", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dynamostore.Config{OpTimeout: 10 * time.Second})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			tc.run(t, ctx, e, func() { e.lose.Lose(tc.match, 1) })
			if n := e.lose.Lost(); n != 1 {
				t.Fatalf("the fault was injected %d times, want once; logs:\n%s", n, e.logs)
			}
		})
	}
}

func wantEnded(t *testing.T, ended []dynamostore.Ended, hash string, reason session.Reason) {
	t.Helper()
	if !slices.Contains(ended, dynamostore.Ended{Hash: hash, Reason: reason}) || len(ended) != 1 {
		t.Errorf("ended %v, want only %s %s", ended, hash, reason)
	}
}

func wantRegistered(t *testing.T, ctx context.Context, e *env, openid string, hashes ...string) {
	t.Helper()
	u, err := e.store.User(ctx, session.UserKey(appID, openid))
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(u.Registered))
	if want := slices.Sorted(slices.Values(hashes)); !slices.Equal(got, want) {
		t.Errorf("registry names %v, want %v", got, want)
	}
}
