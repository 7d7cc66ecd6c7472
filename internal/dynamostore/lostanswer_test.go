package dynamostore_test

import (
	"context"
	"errors"
	"log/slog"
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
			lose := faultservers.NewLoseAnswer(cfg.HTTPClient, tc.match, 1)
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
