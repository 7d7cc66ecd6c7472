package dynamostore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

// loseAnswer forwards every request, but for the first requests whose body
// contains match it drops DynamoDB's answer after the write was applied and
// reports a reset connection instead: what a client sees when a network
// path fails between DynamoDB's commit and its reply. The SDK then retries
// a write that already happened.
type loseAnswer struct {
	next  dynamodb.HTTPClient
	match []byte
	left  atomic.Int32
	lost  atomic.Int32
}

func (l *loseAnswer) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := l.next.Do(r)
	if err == nil && bytes.Contains(body, l.match) && l.left.Add(-1) >= 0 {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		l.lost.Add(1)
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return resp, err
}

// TestIssueSurvivesLostAnswer: the session PutItem is applied but its answer
// is lost; the SDK's retry then fails its condition (the claim it replaced
// is gone). The login must still answer the session it wrote, not
// ErrSuperseded with a live session nobody holds.
func TestIssueSurvivesLostAnswer(t *testing.T) {
	tests := []struct {
		name string
		in   dynamostore.IssueInput
	}{
		{"new device", dynamostore.IssueInput{DeviceID: devA}},
		{"no device id", dynamostore.IssueInput{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{config.VarDynamoDBEndpoint: server.Endpoint}
			_, cfg, err := dynamoclient.New(context.Background(), func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			// The session's PutItem is the one conditional on the claim token.
			lose := &loseAnswer{next: cfg.HTTPClient, match: []byte(`"ConditionExpression":"#claim = :token"`)}
			lose.left.Store(1)
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
			raw, sess, _, err := createSession(context.Background(), s, ident("oUser-lostanswer-01"), time.Hour, tc.in)
			if lose.lost.Load() != 1 {
				t.Fatalf("the fault was not injected (lost %d answers); logs:\n%s", lose.lost.Load(), logs)
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
