package e2e

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/session"
)

// putSession writes a sessions item for a fresh id directly into the table,
// in the login function's format, and returns the id.
func putSession(t testing.TB, openid string, expiresAt time.Time) string {
	t.Helper()
	id := fakeID(t)
	now := time.Now()
	n := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := stk.Dynamo.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(tableName(t, tblSessions)),
		Item: map[string]types.AttributeValue{
			"sid":        s(session.Hash(id)),
			"user":       s(session.UserKey(stk.Emulator.AppID(), openid)),
			"created_us": n(now.Add(-time.Hour).UnixMicro()),
			"openid":     s(openid),
			"appid":      s(stk.Emulator.AppID()),
			"created_at": n(now.Add(-time.Hour).Unix()),
			"expires_at": n(expiresAt.Unix()),
		},
	})
	if err != nil {
		t.Fatalf("put session item: %v", err)
	}
	return id
}

// TestExpiry: the authorizer compares expires_at with now on every read,
// because DynamoDB's TTL deletes items only eventually. The items are
// written directly (the shared stack's SESSION_TTL is the default).
func TestExpiry(t *testing.T) {
	needStack(t)
	openid := "oE2eExpiry" + uniq()

	t.Run("control: a live inserted item is accepted", func(t *testing.T) {
		id := putSession(t, openid, time.Now().Add(time.Hour))
		r := do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(id)...)
		if r.Status != http.StatusOK || r.str("openid") != openid {
			t.Fatalf("GET /me with an inserted live session: %s", r)
		}
	})
	t.Run("expired but not yet deleted", func(t *testing.T) {
		for _, ago := range []time.Duration{time.Second, time.Hour, 30 * 24 * time.Hour} {
			id := putSession(t, openid, time.Now().Add(-ago))
			for _, h := range [][]string{bearer(id), {"Cookie", "sessionid=" + id}} {
				if r := do(t, http.MethodGet, stk.APIURL+"/me", "", h...); r.Status != http.StatusForbidden || string(r.Body) != forbiddenBody {
					t.Errorf("expired %v ago: %s, want 403", ago, r)
				}
			}
		}
	})
	t.Run("expires while in use", func(t *testing.T) {
		// The GET before expiry must finish before the session expires; on a
		// slow machine (-race, other builds) a request can take seconds, so
		// the margin doubles until one does, instead of assuming a speed.
		var id string
		var exp time.Time
		for margin := 2 * time.Second; ; margin *= 2 {
			exp = time.Now().Add(margin).Truncate(time.Second).Add(time.Second) // whole second, ≥ margin away
			id = putSession(t, openid, exp)
			r := do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(id)...)
			if time.Now().Before(exp) {
				if r.Status != http.StatusOK {
					t.Fatalf("GET /me before expiry: %s", r)
				}
				break
			}
			if margin > time.Minute {
				t.Fatalf("GET /me never finished within %v of the session's creation", margin)
			}
		}
		time.Sleep(time.Until(exp) + 200*time.Millisecond)
		if r := do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(id)...); r.Status != http.StatusForbidden {
			t.Errorf("GET /me after expiry: %s, want 403", r)
		}
		if r := do(t, http.MethodGet, stk.APIURL+"/me/profile", "", bearer(id)...); r.Status != http.StatusForbidden {
			t.Errorf("GET /me/profile after expiry: %s, want 403", r)
		}
	})
}
