package login_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

// TestLoginCollisionKeepsExistingSession: when every id the store draws is
// the id of an existing session (a broken random source), login answers 503
// store_unavailable, writes no session, and leaves the existing session
// exactly as it was (no overwrite, no takeover by the new user).
func TestLoginCollisionKeepsExistingSession(t *testing.T) {
	existing, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	draws := 0
	e := newEnv(t, func(c *envConfig) {
		c.newID = func() (string, error) { draws++; return existing, nil }
	})
	e.secrets = append(e.secrets, existing)

	const owner, intruder = "oCollisionOwner000000000001", "oCollisionIntruder000000001"
	if resp := e.login(request(t, http.MethodPost, codeBody(e.code(owner, "uOwner")))); resp.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d %s", resp.StatusCode, resp.Body)
	}
	key := map[string]types.AttributeValue{dynamostore.AttrSID: &types.AttributeValueMemberS{Value: session.Hash(existing)}}
	get := func() map[string]types.AttributeValue {
		out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.sessions), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	before := get()
	if before == nil {
		t.Fatal("the first session was not stored under the hash of the fixed id")
	}

	draws = 0
	resp := e.login(request(t, http.MethodPost, codeBody(e.code(intruder, ""))))
	e.secrets = append(e.secrets, e.emu.SessionKey(owner), e.emu.SessionKey(intruder))
	if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, resp).Error != "store_unavailable" {
		t.Fatalf("colliding login: %d %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["Retry-After"] == "" {
		t.Error("503 without Retry-After")
	}
	if len(resp.Cookies) != 0 {
		t.Errorf("colliding login set a cookie")
	}
	if draws < 2 {
		t.Errorf("the store drew %d ids; it should retry a collision with a new id", draws)
	}
	if n := len(e.scan(e.sessions)); n != 1 {
		t.Errorf("sessions table has %d items, want only the existing one", n)
	}
	if after := get(); !reflect.DeepEqual(before, after) {
		t.Errorf("the existing session changed:\nbefore %v\nafter  %v", before, after)
	}
	// The id still resolves to its owner, as the authorizer would read it.
	s, err := e.store.Get(context.Background(), session.Hash(existing))
	if err != nil || s.OpenID != owner || s.UnionID != "uOwner" {
		t.Errorf("existing session now reads %+v, %v", s, err)
	}
	for _, l := range e.loginLines() {
		if l["outcome"] == "store_unavailable" && l["openid"] == nil {
			t.Errorf("the failed login's log line has no masked openid: %v", l)
		}
	}
}
