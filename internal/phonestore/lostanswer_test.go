package phonestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/phonestore"
	"github.com/wxsession/wxsession/internal/testutil"
)

// TestWritesSurviveLostAnswer: each write of the phones store (and its
// session_key write), applied with its answer lost so that the SDK retries
// it, gives the caller what the write earned: one row per write, the fault
// injected on that write's request only, exactly once (docs/design.md
// §3.10).
func TestWritesSurviveLostAnswer(t *testing.T) {
	p := phonestore.Phone{PhoneNumber: "13800138011", PurePhoneNumber: "13800138011", CountryCode: "86"}
	q := phonestore.Phone{PhoneNumber: "13800138012", PurePhoneNumber: "13800138012", CountryCode: "86"}
	const (
		bindingPut   = `"bound_at"`  // the binding's PutItem
		bindingWrite = `"#tk = :tk"` // Unbind's DeleteItem (of a binding with a token)
		me, other    = "wxa#oLost", "wxa#oOther"
	)
	// bindable reports whether other may bind ph at once (its claim is free).
	bindable := func(t *testing.T, ctx context.Context, st *phonestore.Store, ph phonestore.Phone) {
		t.Helper()
		if err := st.Bind(ctx, other, "wxa", ph, true); err != nil {
			t.Errorf("another user binding %s: %v; want the number free", ph.Masked(), err)
		}
	}
	tests := []struct {
		name  string
		match string
		run   func(t *testing.T, ctx context.Context, e *lostEnv, arm func())
	}{
		{"SetSessionKey", `"UpdateExpression":"SET #sk = :next"`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if _, err := e.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.users), Item: map[string]types.AttributeValue{
				dynamostore.AttrUser: &types.AttributeValueMemberS{Value: "wxa#oLost"}, dynamostore.AttrSessionKey: &types.AttributeValueMemberS{Value: "old-key"}}}); err != nil {
				t.Fatal(err)
			}
			arm()
			if ok, err := e.st.SetSessionKey(ctx, "wxa", "oLost", "old-key", "new-key"); err != nil || !ok {
				t.Fatalf("SetSessionKey = %v, %v; want true", ok, err)
			}
			if k, err := e.st.SessionKey(ctx, "wxa", "oLost"); err != nil || k != "new-key" {
				t.Fatalf("session_key %q, %v", k, err)
			}
		}},
		{"number claim", `"ConditionExpression":"attribute_not_exists(#u) OR #o = :me"`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			arm()
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			if got, err := e.st.Phone(ctx, me); err != nil || got != p {
				t.Fatalf("Phone = %v, %v", got, err)
			}
		}},
		{"stale number claim taken over", `#o = :old AND`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			// A claim whose owner has no binding, older than the grace.
			if err := e.st.Bind(ctx, other, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.phones), Key: map[string]types.AttributeValue{
				"user": &types.AttributeValueMemberS{Value: other}, "item": &types.AttributeValueMemberS{Value: "phone"}}}); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(phonestore.ClaimGrace)
			arm()
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatalf("Bind over a stale claim: %v", err)
			}
		}},
		{"binding, another number", bindingPut, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			arm()
			if err := e.st.Bind(ctx, me, "wxa", q, true); err != nil {
				t.Fatal(err)
			}
			if got, err := e.st.Phone(ctx, me); err != nil || got != q {
				t.Fatalf("Phone = %v, %v", got, err)
			}
			bindable(t, ctx, e.st, p) // the previous number's claim was released
		}},
		{"Unbind", bindingWrite, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			arm()
			if got, had, err := e.st.Unbind(ctx, me, "wxa"); err != nil || !had || got != p {
				t.Fatalf("Unbind = %v, %v, %v; want the bound phone", got, had, err)
			}
			bindable(t, ctx, e.st, p)
		}},
		{"binding, the same number", bindingPut, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			arm()
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			if got, err := e.st.Phone(ctx, me); err != nil || got != p {
				t.Fatalf("Phone = %v, %v", got, err)
			}
			if err := e.st.Bind(ctx, other, "wxa", p, true); !errors.Is(err, phonestore.ErrPhoneInUse) {
				t.Fatalf("another user binding it: %v, want ErrPhoneInUse", err)
			}
		}},
		{"claim token taken out, another left", `"UpdateExpression":"DELETE #tk :toks"`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if err := e.st.Bind(ctx, me, "wxa", q, true); err != nil {
				t.Fatal(err)
			}
			// A second token in q's claim: a bind of q that crashed
			// between its claim and its binding's write.
			claimKey := map[string]types.AttributeValue{"user": &types.AttributeValueMemberS{Value: "number#wxa#86#" + q.PurePhoneNumber},
				"item": &types.AttributeValueMemberS{Value: "claim"}}
			if _, err := e.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.phones), Key: claimKey,
				UpdateExpression:          aws.String("ADD tokens :t"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberSS{Value: []string{"crashed"}}}}); err != nil {
				t.Fatal(err)
			}
			arm()
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			out, err := e.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.phones), Key: claimKey, ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if ts, _ := out.Item["tokens"].(*types.AttributeValueMemberSS); ts == nil || len(ts.Value) != 1 || ts.Value[0] != "crashed" {
				t.Fatalf("q's claim: %v; want the crashed bind's token only", out.Item)
			}
			e.clock.Add(phonestore.ClaimGrace) // stale now: taken over
			bindable(t, ctx, e.st, q)
		}},
		{"claim release", `"ConditionExpression":"#o = :me AND size`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			arm()
			if _, had, err := e.st.Unbind(ctx, me, "wxa"); err != nil || !had {
				t.Fatalf("Unbind = %v, %v", had, err)
			}
			bindable(t, ctx, e.st, p)
		}},
		{"DeleteUserData", bindingWrite, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if err := e.st.Bind(ctx, me, "wxa", p, true); err != nil {
				t.Fatal(err)
			}
			arm()
			if err := e.st.DeleteUserData(ctx, "wxa", "oLost"); err != nil {
				t.Fatal(err)
			}
			bindable(t, ctx, e.st, p)
		}},
		{"ReserveLookup", `"ADD #n :one`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			arm()
			if _, err := e.st.ReserveLookup(ctx, me, 2); err != nil {
				t.Fatalf("first lookup of the day: %v", err)
			}
			if _, err := e.st.ReserveLookup(ctx, me, 2); err != nil {
				t.Fatalf("second lookup of 2: %v (the first counted twice?)", err)
			}
			if _, err := e.st.ReserveLookup(ctx, me, 2); !errors.Is(err, phonestore.ErrLookupLimited) {
				t.Fatalf("third lookup of 2: %v, want ErrLookupLimited", err)
			}
		}},
		{"RefundLookup", `"ADD #n :minus`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if _, err := e.st.ReserveLookup(ctx, me, 2); err != nil {
				t.Fatal(err)
			}
			l, err := e.st.ReserveLookup(ctx, me, 2)
			if err != nil {
				t.Fatal(err)
			}
			arm()
			e.st.RefundLookup(ctx, me, l)
			if _, err := e.st.ReserveLookup(ctx, me, 2); err != nil {
				t.Fatalf("after the refund: %v", err)
			}
			if _, err := e.st.ReserveLookup(ctx, me, 2); !errors.Is(err, phonestore.ErrLookupLimited) {
				t.Fatalf("a refund given twice: %v, want ErrLookupLimited", err)
			}
		}},
		{"StartCode", `{"S":"pending"}`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			arm()
			if _, started, err := e.st.StartCode(ctx, me, "code-lost", time.Minute); err != nil || !started {
				t.Fatalf("StartCode = %v, %v; want started (its own record)", started, err)
			}
			if rec, started, err := e.st.StartCode(ctx, me, "code-lost", time.Minute); err != nil || started || rec.State != "pending" {
				t.Fatalf("StartCode again = %+v, %v, %v; want the pending record", rec, started, err)
			}
		}},
		{"FinishCode", `{"S":"done"}`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if _, _, err := e.st.StartCode(ctx, me, "code-lost", time.Minute); err != nil {
				t.Fatal(err)
			}
			arm()
			if err := e.st.FinishCode(ctx, me, "code-lost", phonestore.CodeRecord{Phone: p}); err != nil {
				t.Fatal(err)
			}
			if rec, err := e.st.Code(ctx, me, "code-lost"); err != nil || rec.State != "done" || rec.Phone != p {
				t.Fatalf("Code = %+v, %v", rec, err)
			}
		}},
		{"AbandonCode", `"ConditionExpression":"#st = :pending"`, func(t *testing.T, ctx context.Context, e *lostEnv, arm func()) {
			if _, _, err := e.st.StartCode(ctx, me, "code-lost", time.Minute); err != nil {
				t.Fatal(err)
			}
			arm()
			e.st.AbandonCode(ctx, me, "code-lost")
			if _, started, err := e.st.StartCode(ctx, me, "code-lost", time.Minute); err != nil || !started {
				t.Fatalf("StartCode after abandoning = %v, %v; want started", started, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lose := faultservers.NewLoseAnswer(nil)
			db := dynalitetest.Client(t, srv, func(o *dynamodb.Options) { o.HTTPClient = lose })
			names := dynalitetest.Tables(t, db, "PhonesTable", "UsersTable")
			e := &lostEnv{db: db, phones: names["PhonesTable"], users: names["UsersTable"], clock: testutil.NewClock(time.Now())}
			var err error
			if e.st, err = phonestore.NewStore(db, e.phones, e.users, e.clock.Now); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			tc.run(t, ctx, e, func() { lose.Lose(tc.match, 1) })
			if n := lose.Lost(); n != 1 {
				t.Fatalf("the fault was injected %d times, want once", n)
			}
		})
	}
}

// lostEnv is one row's store on fresh tables, its client and clock.
type lostEnv struct {
	st            *phonestore.Store
	db            *dynamodb.Client
	phones, users string
	clock         *testutil.Clock
}
