package phonestore_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/phonestore"
)

// TestOldFormatItems: items written by the version before the claim tokens
// (a binding without claim_token, a claim without tokens, a day's lookup
// counter without tokens, a pending code record without lease_token) meet
// this version's condition expressions: every call works on them, and the
// invariants of docs/design.md §7.4 hold after (checkPhones).
func TestOldFormatItems(t *testing.T) {
	S := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	N := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	// oldBinding writes user's binding of p and p's claim as the previous
	// version did, the claim made claimedAgo ago.
	oldBinding := func(t *testing.T, e *raceEnv, user string, p phonestore.Phone, claimedAgo time.Duration) {
		t.Helper()
		for _, it := range []map[string]types.AttributeValue{
			{"user": S(user), "item": S("phone"), "phone_number": S(p.PhoneNumber), "pure_phone_number": S(p.PurePhoneNumber),
				"country_code": S(p.CountryCode), "bound_at": N(e.clock.Now().Unix())},
			{"user": S("number#wxa#" + p.CountryCode + "#" + p.PurePhoneNumber), "item": S("claim"), "owner": S(user),
				"claimed_at": N(e.clock.Now().Add(-claimedAgo).UnixMilli())},
		} {
			if _, err := e.db.PutItem(e.ctx, &dynamodb.PutItemInput{TableName: aws.String(e.phones), Item: it}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e *raceEnv)
	}{
		{"another user cannot bind an old binding's number", func(t *testing.T, e *raceEnv) {
			oldBinding(t, e, raceUser, numB, time.Hour)
			if err := e.st.Bind(e.ctx, raceOther, "wxa", numB, true); !errors.Is(err, phonestore.ErrPhoneInUse) {
				t.Errorf("another user binding B: %v, want ErrPhoneInUse", err)
			}
		}},
		{"rebinding the old binding's number", func(t *testing.T, e *raceEnv) {
			oldBinding(t, e, raceUser, numB, time.Hour)
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"binding another number releases the old claim", func(t *testing.T, e *raceEnv) {
			oldBinding(t, e, raceUser, numB, time.Hour)
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numC, true); err != nil {
				t.Fatal(err)
			}
			if err := e.st.Bind(e.ctx, raceOther, "wxa", numB, true); err != nil {
				t.Errorf("another user binding the released B: %v", err)
			}
		}},
		{"unbinding releases the old claim", func(t *testing.T, e *raceEnv) {
			oldBinding(t, e, raceUser, numB, time.Hour)
			if got, had, err := e.st.Unbind(e.ctx, raceUser, "wxa"); err != nil || !had || got != numB {
				t.Fatalf("Unbind = %v, %v, %v", got, had, err)
			}
			if err := e.st.Bind(e.ctx, raceOther, "wxa", numB, true); err != nil {
				t.Errorf("another user binding the released B: %v", err)
			}
		}},
		{"account deletion releases the old claim", func(t *testing.T, e *raceEnv) {
			oldBinding(t, e, raceUser, numB, time.Hour)
			if err := e.st.DeleteUserData(e.ctx, "wxa", "oRace"); err != nil {
				t.Fatal(err)
			}
			if err := e.st.Bind(e.ctx, raceOther, "wxa", numB, true); err != nil {
				t.Errorf("another user binding the released B: %v", err)
			}
		}},
		{"a stale old claim is taken over", func(t *testing.T, e *raceEnv) {
			oldBinding(t, e, raceOther, numB, time.Hour)
			if _, err := e.db.DeleteItem(e.ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.phones),
				Key: map[string]types.AttributeValue{"user": S(raceOther), "item": S("phone")}}); err != nil {
				t.Fatal(err)
			}
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Errorf("binding over a stale old claim: %v", err)
			}
		}},
		{"a lookup counter without tokens", func(t *testing.T, e *raceEnv) {
			day := e.clock.Now().In(phonestore.ChinaTime).Format(time.DateOnly)
			if _, err := e.db.PutItem(e.ctx, &dynamodb.PutItemInput{TableName: aws.String(e.phones), Item: map[string]types.AttributeValue{
				"user": S(raceUser), "item": S("lookups#" + day), "n": N(1), "expires_at": N(e.clock.Now().Add(48 * time.Hour).Unix())}}); err != nil {
				t.Fatal(err)
			}
			l, err := e.st.ReserveLookup(e.ctx, raceUser, 2)
			if err != nil {
				t.Fatalf("the second lookup of the day: %v", err)
			}
			if _, err := e.st.ReserveLookup(e.ctx, raceUser, 2); !errors.Is(err, phonestore.ErrLookupLimited) {
				t.Fatalf("the third lookup with a limit of 2: %v, want ErrLookupLimited", err)
			}
			e.st.RefundLookup(e.ctx, raceUser, l)
			if _, err := e.st.ReserveLookup(e.ctx, raceUser, 2); err != nil {
				t.Fatalf("after a refund: %v", err)
			}
		}},
		{"a pending code record without lease_token", func(t *testing.T, e *raceEnv) {
			if _, started, err := e.st.StartCode(e.ctx, raceUser, "code-old", 15*time.Second); err != nil || !started {
				t.Fatalf("StartCode: %v, %v", started, err)
			}
			out, err := e.db.Scan(e.ctx, &dynamodb.ScanInput{TableName: aws.String(e.phones), ConsistentRead: aws.Bool(true)})
			if err != nil || len(out.Items) != 1 {
				t.Fatalf("scan: %v, %d items", err, len(out.Items))
			}
			if _, err := e.db.UpdateItem(e.ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.phones),
				Key:              map[string]types.AttributeValue{"user": out.Items[0]["user"], "item": out.Items[0]["item"]},
				UpdateExpression: aws.String("REMOVE lease_token")}); err != nil {
				t.Fatal(err)
			}
			rec, started, err := e.st.StartCode(e.ctx, raceUser, "code-old", 15*time.Second)
			if err != nil || started || rec.State != "pending" {
				t.Errorf("StartCode on an old pending record = %q, started %v, %v; want pending, not started", rec.State, started, err)
			}
			e.st.AbandonCode(e.ctx, raceUser, "code-old")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newRaceEnv(t)
			tc.run(t, e)
			checkPhones(t, e, false)
		})
	}
}
