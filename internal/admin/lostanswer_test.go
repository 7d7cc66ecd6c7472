package admin

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/faultservers"
)

// TestTrailSurvivesLostAnswer: the audit trail's one write is a PutItem
// keyed by the line's time, request id and event, without condition, so
// the SDK's retry of a put applied with its answer lost writes the same
// item again: the operator finds the event once (docs/design.md §3.10).
func TestTrailSurvivesLostAnswer(t *testing.T) {
	srv := dynalitetest.NewTestServer(t)
	tests := []struct {
		name  string
		match string
		line  audit.Line
	}{
		{"a user's event", `"user_banned`, audit.Line{Time: "2026-03-01T12:00:00.000Z", Event: audit.UserBanned, User: "u-pseudonym", RequestID: "req-1"}},
		{"no user's event", `"session_kicked`, audit.Line{Time: "2026-03-01T12:00:01.000Z", Event: audit.SessionKicked, RequestID: "req-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lose := faultservers.NewLoseAnswer(nil)
			db := dynalitetest.Client(t, srv, func(o *dynamodb.Options) { o.HTTPClient = lose })
			table := dynalitetest.Tables(t, db, TableAudit)[TableAudit]
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			lose.Lose(tc.match, 1)
			if err := (&trail{db: db, table: table}).put(ctx, tc.line); err != nil {
				t.Fatal(err)
			}
			if n := lose.Lost(); n != 1 {
				t.Fatalf("the fault was injected %d times, want once", n)
			}
			out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
			if err != nil || len(out.Items) != 1 {
				t.Fatalf("audit table holds %d items (%v), want the event once", len(out.Items), err)
			}
		})
	}
}
