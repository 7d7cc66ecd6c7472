package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/audit"
)

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// Audit table attributes (template.yaml's AuditTable: key user + at).
const (
	attrTrailUser = "user" // the audit pseudonym, or "-" for an action on no one user
	attrTrailAt   = "at"   // time (RFC 3339, nanoseconds) and "#" and the request id: unique, sorts by time
	attrTrailLine = "line" // the audit line, as printed
)

// noUser is the partition of actions on no one user (revoke-all).
const noUser = "-"

// trail records operator actions where an operator finds them later: in
// the audit table (wxadmin audit list), and for a deployed stack also in
// its admin log group, beside the functions' own audit lines, so that the
// same Logs Insights queries show both.
type trail struct {
	db    *dynamodb.Client
	table string
	// logs and logGroup are set for a deployed stack.
	logs     *cloudwatchlogs.Client
	logGroup string
	stream   string // created on first use
}

func (t *trail) put(ctx context.Context, l audit.Line) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if t.logs != nil {
		if err := t.putLog(ctx, l, b); err != nil {
			return fmt.Errorf("log group %s: %w", t.logGroup, err)
		}
	}
	user := l.User
	if user == "" {
		user = noUser
	}
	_, err = t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.table),
		Item: map[string]types.AttributeValue{
			attrTrailUser: &types.AttributeValueMemberS{Value: user},
			attrTrailAt:   &types.AttributeValueMemberS{Value: l.Time + "#" + l.RequestID + "#" + string(l.Event)},
			attrTrailLine: &types.AttributeValueMemberS{Value: string(b)},
		},
	})
	return err
}

// putLog writes the line to the admin log group, in a log stream of its
// own per wxadmin run (named after the run's request id).
func (t *trail) putLog(ctx context.Context, l audit.Line, b []byte) error {
	if t.stream == "" {
		name := strings.ReplaceAll(l.Time[:10], "-", "/") + "/" + l.RequestID
		_, err := t.logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(t.logGroup), LogStreamName: aws.String(name)})
		var exists *cwltypes.ResourceAlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return err
		}
		t.stream = name
	}
	ts, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return err
	}
	_, err = t.logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{
		LogGroupName:  aws.String(t.logGroup),
		LogStreamName: aws.String(t.stream),
		LogEvents:     []cwltypes.InputLogEvent{{Message: aws.String(string(b)), Timestamp: aws.Int64(ts.UnixMilli())}},
	})
	return err
}

// AuditResult is the output of audit list: audit lines, newest first.
type AuditResult struct {
	Events []audit.Line `json:"events"`
}

func (a AuditResult) text() string {
	var b strings.Builder
	for _, l := range a.Events {
		fmt.Fprintf(&b, "%s  %-16s %-28s %s", l.Time, l.Event, l.Actor, l.User)
		if l.Reason != "" {
			fmt.Fprintf(&b, "  reason=%q", l.Reason)
		}
		if l.Until != "" {
			fmt.Fprintf(&b, "  until=%s", l.Until)
		}
		if l.Count > 0 {
			fmt.Fprintf(&b, "  sessions=%d", l.Count)
		}
		b.WriteByte('\n')
	}
	if len(a.Events) == 0 {
		b.WriteString("no operator actions recorded\n")
	}
	return b.String()
}

// auditList reads the recorded operator actions: one user's (a query on
// its pseudonym) or everyone's (a scan; the table holds operator actions
// only, so it stays small), newest first.
func (r *runner) auditList(ctx context.Context, openid string, limit int) (result, error) {
	var items []map[string]types.AttributeValue
	if openid != "" {
		p := dynamodb.NewQueryPaginator(r.t.DB, &dynamodb.QueryInput{
			TableName:                 aws.String(r.trail.table),
			KeyConditionExpression:    aws.String("#u = :u"),
			ExpressionAttributeNames:  map[string]string{"#u": attrTrailUser},
			ExpressionAttributeValues: map[string]types.AttributeValue{":u": &types.AttributeValueMemberS{Value: audit.UserPseudonym(r.t.AppID, openid)}},
			ScanIndexForward:          aws.Bool(false),
			ConsistentRead:            aws.Bool(true),
		})
		for p.HasMorePages() && len(items) < limit {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			items = append(items, page.Items...)
		}
	} else {
		p := dynamodb.NewScanPaginator(r.t.DB, &dynamodb.ScanInput{TableName: aws.String(r.trail.table), ConsistentRead: aws.Bool(true)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			items = append(items, page.Items...)
		}
	}
	out := AuditResult{Events: []audit.Line{}}
	for _, it := range items {
		s, ok := it[attrTrailLine].(*types.AttributeValueMemberS)
		if !ok {
			continue
		}
		var l audit.Line
		if json.Unmarshal([]byte(s.Value), &l) == nil && (l.App == r.t.AppID || l.App == "") {
			out.Events = append(out.Events, l)
		}
	}
	slices.SortFunc(out.Events, func(a, b audit.Line) int { return strings.Compare(b.Time, a.Time) })
	if len(out.Events) > limit {
		out.Events = out.Events[:limit]
	}
	return out, nil
}
