package dynamostore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

const appID = "wx0123456789abcdef"

func TestCreateGetRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		id   session.Identity
		ttl  time.Duration
	}{
		{"with unionid", session.Identity{OpenID: "oOpenID-with-union-0001", UnionID: "oUnion-0001", SessionKey: "sk-AAAAAAAAAAAAAAAAAAAA=="}, session.DefaultTTL},
		{"without unionid", session.Identity{OpenID: "oOpenID-no-union-0002", SessionKey: "sk-BBBBBBBBBBBBBBBBBBBB=="}, time.Hour},
		{"fractional ttl floors to seconds", session.Identity{OpenID: "oOpenID-frac-0003", SessionKey: "sk-C"}, 90*time.Second + 700*time.Millisecond},
	}
	e := newEnv(t, dynamostore.Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			raw, sess, err := e.store.Create(ctx, appID, tc.id, tc.ttl)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if ops := e.count.take(); total(ops) != 2 || ops["UpdateItem"] != 1 || ops["PutItem"] != 1 {
				t.Errorf("Create requests = %v, want 1 UpdateItem + 1 PutItem", ops)
			}
			if !session.ValidID(raw) {
				t.Fatalf("raw id %q is not a valid id", raw)
			}
			now := e.clock.Now()
			want := session.Session{
				Hash:      session.Hash(raw),
				OpenID:    tc.id.OpenID,
				UnionID:   tc.id.UnionID,
				AppID:     appID,
				CreatedAt: now,
				ExpiresAt: now.Add(tc.ttl.Truncate(time.Second)),
			}
			if sess != want {
				t.Fatalf("Create session = %+v, want %+v", sess, want)
			}
			got, err := e.store.Get(ctx, session.Hash(raw))
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if ops := e.count.take(); total(ops) != 1 || ops["GetItem"] != 1 {
				t.Errorf("Get requests = %v, want 1 GetItem", ops)
			}
			if got != want {
				t.Fatalf("Get = %+v, want %+v", got, want)
			}
		})
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	tests := []struct {
		name  string
		app   string
		id    session.Identity
		ttl   time.Duration
		newID func() (string, error)
	}{
		{"empty openid", appID, session.Identity{SessionKey: "k"}, time.Hour, nil},
		{"empty appid", "", session.Identity{OpenID: "o1234567"}, time.Hour, nil},
		{"zero ttl", appID, session.Identity{OpenID: "o1234567"}, 0, nil},
		{"sub-second ttl", appID, session.Identity{OpenID: "o1234567"}, 999 * time.Millisecond, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := e.store.Create(context.Background(), tc.app, tc.id, tc.ttl); err == nil {
				t.Fatal("no error")
			}
			if ops := e.count.take(); total(ops) != 0 {
				t.Errorf("requests = %v, want none", ops)
			}
		})
	}
}

func TestMalformedIDSourceRejected(t *testing.T) {
	e := newEnv(t, dynamostore.Config{NewID: seqIDs("not-an-id")})
	_, _, err := e.store.Create(context.Background(), appID, session.Identity{OpenID: "o1234567", SessionKey: "k"}, time.Hour)
	if err == nil || strings.Contains(err.Error(), "not-an-id") {
		t.Fatalf("err = %v, want an error that does not echo the id", err)
	}
	if ops := e.count.take(); ops["PutItem"] != 0 {
		t.Errorf("a malformed id was written: %v", ops)
	}
}

func scan(t *testing.T, c *dynamodb.Client, table string) []map[string]types.AttributeValue {
	t.Helper()
	out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("scan %s: %v", table, err)
	}
	return out.Items
}

func dump(item map[string]types.AttributeValue) string {
	var sb strings.Builder
	for k, v := range item {
		fmt.Fprintf(&sb, "%s=", k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			sb.WriteString(v.Value)
		case *types.AttributeValueMemberN:
			sb.WriteString(v.Value)
		default:
			fmt.Fprintf(&sb, "%T", v)
		}
		sb.WriteString(";")
	}
	return sb.String()
}

func TestStoredItems(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	first := session.Identity{OpenID: "oUser-stored-0001", UnionID: "oUnion-stored-01", SessionKey: "FIRSTsessionKEY/+=="}
	raw1, _, err := e.store.Create(ctx, appID, first, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t0 := e.clock.Now()
	e.clock.Set(t0.Add(time.Minute))
	second := session.Identity{OpenID: first.OpenID, SessionKey: "SECONDsessionKEY/+=="} // no unionid this time
	raw2, _, err := e.store.Create(ctx, appID, second, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := session.Identity{OpenID: "oUser-stored-0002", SessionKey: "OTHERsessionKEY=="}
	raw3, _, err := e.store.Create(ctx, appID, other, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	items := scan(t, e.client, e.sessions)
	if len(items) != 3 {
		t.Fatalf("%d session items, want 3", len(items))
	}
	hashes := map[string]bool{session.Hash(raw1): true, session.Hash(raw2): true, session.Hash(raw3): true}
	secrets := []string{raw1, raw2, raw3, first.SessionKey, second.SessionKey, other.SessionKey}
	for _, it := range items {
		d := dump(it)
		for _, s := range secrets {
			if strings.Contains(d, s) {
				t.Errorf("session item holds a raw id or session_key: %s", d)
			}
		}
		sid := it[dynamostore.AttrSID].(*types.AttributeValueMemberS).Value
		if !hashes[sid] {
			t.Errorf("sid %q is not the hash of an issued id", sid)
		}
		if _, ok := it[dynamostore.AttrExpiresAt].(*types.AttributeValueMemberN); !ok {
			t.Errorf("expires_at is %T, want N", it[dynamostore.AttrExpiresAt])
		}
		if _, ok := it[dynamostore.AttrCreatedAt].(*types.AttributeValueMemberN); !ok {
			t.Errorf("created_at is %T, want N", it[dynamostore.AttrCreatedAt])
		}
		allowed := map[string]bool{"sid": true, "openid": true, "unionid": true, "appid": true, "created_at": true, "expires_at": true}
		for k := range it {
			if !allowed[k] {
				t.Errorf("unexpected session attribute %q", k)
			}
		}
		if u, ok := it[dynamostore.AttrUnionID]; ok {
			if u.(*types.AttributeValueMemberS).Value == "" {
				t.Errorf("empty unionid stored instead of omitted")
			}
			if sid != session.Hash(raw1) {
				t.Errorf("unionid stored on a session whose login had none: %s", dump(it))
			}
		}
	}

	users := scan(t, e.client, e.users)
	if len(users) != 2 {
		t.Fatalf("%d user items, want 2", len(users))
	}
	for _, u := range users {
		if u[dynamostore.AttrOpenID].(*types.AttributeValueMemberS).Value != first.OpenID {
			continue
		}
		want := map[string]string{
			"openid":        first.OpenID,
			"unionid":       first.UnionID, // kept although the second login had none
			"appid":         appID,
			"session_key":   second.SessionKey,
			"created_at":    fmt.Sprint(t0.Unix()),
			"last_login_at": fmt.Sprint(t0.Add(time.Minute).Unix()),
		}
		if len(u) != len(want) {
			t.Errorf("user item %s, want attributes %v", dump(u), want)
		}
		for k, v := range want {
			var got string
			switch a := u[k].(type) {
			case *types.AttributeValueMemberS:
				got = a.Value
			case *types.AttributeValueMemberN:
				got = a.Value
			}
			if got != v {
				t.Errorf("user %s = %q, want %q", k, got, v)
			}
		}
	}
}

func TestGetNotFound(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	raw, _, err := e.store.Create(ctx, appID, session.Identity{OpenID: "oUser-expiry-0001", SessionKey: "k"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t0 := e.clock.Now()
	unknown, _ := session.NewID()
	e.count.take()
	tests := []struct {
		name     string
		hash     string
		at       time.Time
		wantErr  error
		requests int
	}{
		{"valid just before expiry", session.Hash(raw), t0.Add(time.Hour - time.Second), nil, 1},
		{"expired at expires_at", session.Hash(raw), t0.Add(time.Hour), session.ErrNotFound, 1},
		{"expired long ago, item still present", session.Hash(raw), t0.Add(30 * 24 * time.Hour), session.ErrNotFound, 1},
		{"unknown", session.Hash(unknown), t0, session.ErrNotFound, 1},
		{"raw id instead of hash", raw, t0, session.ErrNotFound, 1},
		{"empty", "", t0, session.ErrNotFound, 0},
		{"wrong length", "abc", t0, session.ErrNotFound, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Set(tc.at)
			_, err := e.store.Get(ctx, tc.hash)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Get = %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("not-found reported as unavailable: %v", err)
			}
			if n := total(e.count.take()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
	// The expired item is still in the table: the store, not TTL, denied it.
	out, err := e.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.sessions), Key: map[string]types.AttributeValue{
		"sid": &types.AttributeValueMemberS{Value: session.Hash(raw)},
	}})
	if err != nil || len(out.Item) == 0 {
		t.Fatalf("expired item gone (%v); the expiry test proved nothing", err)
	}
}

func TestGetMalformedItem(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	id, _ := session.NewID()
	h := session.Hash(id)
	tests := []struct {
		name string
		item map[string]types.AttributeValue
	}{
		{"no openid", map[string]types.AttributeValue{"expires_at": &types.AttributeValueMemberN{Value: "9999999999"}}},
		{"no expires_at", map[string]types.AttributeValue{"openid": &types.AttributeValueMemberS{Value: "oX"}}},
		{"expires_at not a number", map[string]types.AttributeValue{
			"openid": &types.AttributeValueMemberS{Value: "oX"}, "expires_at": &types.AttributeValueMemberS{Value: "tomorrow"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.item["sid"] = &types.AttributeValueMemberS{Value: h}
			if _, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.sessions), Item: tc.item}); err != nil {
				t.Fatal(err)
			}
			_, err := e.store.Get(ctx, h)
			if err == nil || errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("Get = %v, want a malformed-item error", err)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	raw, _, err := e.store.Create(ctx, appID, session.Identity{OpenID: "oUser-delete-0001", SessionKey: "k"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keep, _, err := e.store.Create(ctx, appID, session.Identity{OpenID: "oUser-delete-0001", SessionKey: "k"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.count.take()
	for i := 0; i < 2; i++ { // idempotent
		if err := e.store.Delete(ctx, session.Hash(raw)); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if ops := e.count.take(); ops["DeleteItem"] != 2 || total(ops) != 2 {
		t.Errorf("Delete requests = %v, want 1 DeleteItem each", ops)
	}
	if _, err := e.store.Get(ctx, session.Hash(raw)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if _, err := e.store.Get(ctx, session.Hash(keep)); err != nil {
		t.Fatalf("Delete removed another session of the user: %v", err)
	}
	if err := e.store.Delete(ctx, ""); err != nil {
		t.Fatalf("Delete(\"\") = %v", err)
	}
}

func TestDeleteAll(t *testing.T) {
	tests := []struct {
		name     string
		pageSize int32 // 0 = DynamoDB's default pages
		n        int
	}{
		{"60 sessions, one query page", 0, 60},
		{"60 sessions, pages of 7", 7, 60},
		{"25 sessions, exactly one batch", 0, 25},
		{"26 sessions, pages of 25", 25, 26},
		{"none", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dynamostore.Config{})
			dynamostore.SetPageSize(e.store, tc.pageSize)
			ctx := context.Background()
			victim := session.Identity{OpenID: "oUser-victim-0001", SessionKey: "k"}
			bystander := session.Identity{OpenID: "oUser-bystander-01", SessionKey: "k"}
			var victims, others []string
			for i := 0; i < tc.n; i++ {
				raw, _, err := e.store.Create(ctx, appID, victim, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				victims = append(victims, raw)
			}
			for i := 0; i < 3; i++ {
				raw, _, err := e.store.Create(ctx, appID, bystander, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				others = append(others, raw)
			}
			e.count.take()
			n, err := e.store.DeleteAll(ctx, victim.OpenID)
			if err != nil {
				t.Fatalf("DeleteAll: %v", err)
			}
			ops := e.count.take()
			t.Logf("DeleteAll of %d sessions (page size %d): %v", tc.n, tc.pageSize, ops)
			if n != tc.n {
				t.Fatalf("DeleteAll = %d, want %d", n, tc.n)
			}
			if tc.pageSize == 0 {
				if want := (tc.n + 24) / 25; ops["BatchWriteItem"] != want || ops["Query"] != 1 {
					t.Errorf("requests %v, want 1 Query and %d BatchWriteItem", ops, want)
				}
			} else if ops["Query"] < (tc.n+int(tc.pageSize)-1)/int(tc.pageSize) {
				t.Errorf("requests %v: pagination not exercised", ops)
			}
			for _, raw := range victims {
				if _, err := e.store.Get(ctx, session.Hash(raw)); !errors.Is(err, session.ErrNotFound) {
					t.Fatalf("victim session survived DeleteAll: %v", err)
				}
			}
			for _, raw := range others {
				if _, err := e.store.Get(ctx, session.Hash(raw)); err != nil {
					t.Fatalf("DeleteAll removed another user's session: %v", err)
				}
			}
			if items := scan(t, e.client, e.sessions); len(items) != len(others) {
				t.Fatalf("%d items left, want %d", len(items), len(others))
			}
			// The user record stays: logout is not account deletion.
			if tc.n == 0 {
				return
			}
			if _, err := e.store.SessionKey(ctx, victim.OpenID); err != nil {
				t.Fatalf("user record gone after DeleteAll: %v", err)
			}
		})
	}
}

// collidingIDs are session ids whose sids (session.Hash) share the first 24
// bits of md5("Outliers" + sid): dynalite keys an index entry by the index
// key plus only that much of the table key, so with a hash-only GSI on
// openid the second session of a user overwrote the first one's entry and
// the first became invisible to List and DeleteAll ("logout-all left 9 of
// 16,000 sessions": 16,000 sids hold about 7.6 such pairs). Found by brute
// force over patternID(1..); each pair is one user's two sessions.
var collidingIDs = [][2]string{
	{patternID(2603), patternID(2777)},
	{patternID(1638), patternID(5696)},
}

// patternID is a valid session id made of i's four bytes repeated.
func patternID(i uint32) string {
	b := []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}
	return base64.RawURLEncoding.EncodeToString(bytes.Repeat(b, 8))
}

// TestDeleteAllIndexKeyCollision: every session of a user is listed and
// ended by logout-all, even sessions whose sids collide in dynalite's
// index key (docs/design.md §6). Runs on dynalite and, with
// WXSESSION_TEST_DYNAMODB_ENDPOINT, on any other server.
func TestDeleteAllIndexKeyCollision(t *testing.T) {
	for i, pair := range collidingIDs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := newEnv(t, dynamostore.Config{NewID: seqIDs(pair[0], pair[1])})
			ctx := context.Background()
			user := session.Identity{OpenID: "oCollidingIndexKeys0001", SessionKey: "k"}
			for range pair {
				if _, _, err := e.store.Create(ctx, appID, user, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			if l, err := e.store.List(ctx, user.OpenID); err != nil || len(l) != 2 {
				t.Fatalf("List = %d sessions, %v; want 2", len(l), err)
			}
			if n, err := e.store.DeleteAll(ctx, user.OpenID); err != nil || n != 2 {
				t.Fatalf("DeleteAll = %d, %v; want 2", n, err)
			}
			for _, id := range pair {
				if _, err := e.store.Get(ctx, session.Hash(id)); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("session survived DeleteAll: %v", err)
				}
			}
		})
	}
}

func TestCollision(t *testing.T) {
	a, b := fixedID(0xAA), fixedID(0xBB)
	ident := session.Identity{OpenID: "oUser-collide-0001", SessionKey: "k"}
	ctx := context.Background()

	t.Run("retries with a new id", func(t *testing.T) {
		e := newEnv(t, dynamostore.Config{NewID: seqIDs(a, b)})
		// Someone already holds a's hash.
		if _, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.sessions), Item: map[string]types.AttributeValue{
			"sid":        &types.AttributeValueMemberS{Value: session.Hash(a)},
			"openid":     &types.AttributeValueMemberS{Value: "oSomeoneElse-0001"},
			"appid":      &types.AttributeValueMemberS{Value: appID},
			"created_at": &types.AttributeValueMemberN{Value: "1"},
			"expires_at": &types.AttributeValueMemberN{Value: "9999999999"},
		}}); err != nil {
			t.Fatal(err)
		}
		e.count.take()
		raw, sess, err := e.store.Create(ctx, appID, ident, time.Hour)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if raw != b || sess.Hash != session.Hash(b) {
			t.Fatalf("Create used %q, want the second id", raw)
		}
		if ops := e.count.take(); ops["PutItem"] != 2 || ops["UpdateItem"] != 1 {
			t.Errorf("requests = %v, want 1 UpdateItem + 2 PutItem", ops)
		}
		got, err := e.store.Get(ctx, session.Hash(a))
		if err != nil || got.OpenID != "oSomeoneElse-0001" {
			t.Fatalf("the existing session was overwritten: %+v, %v", got, err)
		}
	})

	t.Run("gives up after 3 draws", func(t *testing.T) {
		e := newEnv(t, dynamostore.Config{NewID: seqIDs(a, a, a, a, b)})
		if _, _, err := e.store.Create(ctx, appID, ident, time.Hour); err != nil {
			t.Fatal(err)
		}
		e.count.take()
		_, _, err := e.store.Create(ctx, appID, ident, time.Hour)
		if !errors.Is(err, session.ErrCollision) {
			t.Fatalf("Create = %v, want ErrCollision", err)
		}
		if strings.Contains(err.Error(), a) {
			t.Errorf("error leaks the raw id: %v", err)
		}
		if ops := e.count.take(); ops["PutItem"] != 3 {
			t.Errorf("requests = %v, want 3 PutItem", ops)
		}
		if strings.Contains(e.logs.String(), a) {
			t.Errorf("logs leak the raw id")
		}
		// The id source is not exhausted: the next Create draws b.
		raw, _, err := e.store.Create(ctx, appID, ident, time.Hour)
		if err != nil || raw != b {
			t.Fatalf("Create after collision = %q, %v", raw, err)
		}
	})
}

func TestConcurrentCreate(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	ident := session.Identity{OpenID: "oUser-concurrent-01", UnionID: "oUnion-concurrent", SessionKey: "k0"}
	const n = 20
	raws := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ident
			id.SessionKey = fmt.Sprintf("key-%02d", i)
			raws[i], _, errs[i] = e.store.Create(ctx, appID, id, time.Hour)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("Create #%d: %v", i, errs[i])
		}
		if seen[raws[i]] {
			t.Fatalf("duplicate id")
		}
		seen[raws[i]] = true
		if _, err := e.store.Get(ctx, session.Hash(raws[i])); err != nil {
			t.Fatalf("Get #%d: %v", i, err)
		}
	}
	if items := scan(t, e.client, e.sessions); len(items) != n {
		t.Fatalf("%d session items, want %d", len(items), n)
	}
	if users := scan(t, e.client, e.users); len(users) != 1 {
		t.Fatalf("%d user items, want 1", len(users))
	}
	key, err := e.store.SessionKey(ctx, ident.OpenID)
	if err != nil || !strings.HasPrefix(key, "key-") {
		t.Fatalf("SessionKey = %q, %v; want one of the written keys", key, err)
	}
	list, err := e.store.List(ctx, ident.OpenID)
	if err != nil || len(list) != n {
		t.Fatalf("List = %d sessions, %v; want %d", len(list), err, n)
	}
	if got, err := e.store.DeleteAll(ctx, ident.OpenID); err != nil || got != n {
		t.Fatalf("DeleteAll = %d, %v", got, err)
	}
}

func TestSessionKey(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	open := "oUser-sessionkey-01"
	steps := []struct {
		login string // session_key of a login; "" = a login without one
		want  string
	}{
		{"key-one", "key-one"},
		{"key-two", "key-two"},
		{"", "key-two"}, // a login without a key keeps the known one
	}
	for i, st := range steps {
		if _, _, err := e.store.Create(ctx, appID, session.Identity{OpenID: open, SessionKey: st.login}, time.Hour); err != nil {
			t.Fatal(err)
		}
		e.count.take()
		got, err := e.store.SessionKey(ctx, open)
		if err != nil || got != st.want {
			t.Fatalf("step %d: SessionKey = %q, %v; want %q", i, got, err, st.want)
		}
		if ops := e.count.take(); ops["GetItem"] != 1 || total(ops) != 1 {
			t.Errorf("SessionKey requests = %v, want 1 GetItem", ops)
		}
	}
	for _, o := range []string{"oUnknown-user-01", ""} {
		if _, err := e.store.SessionKey(ctx, o); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("SessionKey(%q) = %v, want ErrNotFound", o, err)
		}
	}
}

func TestList(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	open := "oUser-list-000001"
	t0 := e.clock.Now()
	var want []string
	for i, ttl := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour} {
		e.clock.Set(t0.Add(time.Duration(i) * time.Second))
		raw, _, err := e.store.Create(ctx, appID, session.Identity{OpenID: open, SessionKey: "k"}, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if ttl > time.Minute {
			want = append([]string{session.Hash(raw)}, want...) // newest first
		}
	}
	if _, _, err := e.store.Create(ctx, appID, session.Identity{OpenID: "oUser-list-000002", SessionKey: "k"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(t0.Add(10 * time.Minute)) // the first session has expired
	got, err := e.store.List(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, s := range got {
		hashes = append(hashes, s.Hash)
		if s.OpenID != open || s.AppID != appID {
			t.Errorf("List returned %+v", s)
		}
	}
	if strings.Join(hashes, ",") != strings.Join(want, ",") {
		t.Fatalf("List = %v, want %v", hashes, want)
	}
	if got, err := e.store.List(ctx, "oNobody-000001"); err != nil || len(got) != 0 {
		t.Fatalf("List(unknown) = %v, %v", got, err)
	}
}

func TestNewValidates(t *testing.T) {
	c, _ := newClient(t, server.Endpoint)
	tests := []struct {
		name string
		c    *dynamodb.Client
		cfg  dynamostore.Config
	}{
		{"nil client", nil, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users"}},
		{"no sessions table", c, dynamostore.Config{UsersTable: "users"}},
		{"bad users table", c, dynamostore.Config{SessionsTable: "sessions", UsersTable: "u s"}},
		{"same table", c, dynamostore.Config{SessionsTable: "wx", UsersTable: "wx"}},
		{"bad characters", c, dynamostore.Config{SessionsTable: "my sessions", UsersTable: "users"}},
		{"too short", c, dynamostore.Config{SessionsTable: "s", UsersTable: "users"}},
		{"bad index", c, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users", OpenIDIndex: "a b"}},
		{"negative timeout", c, dynamostore.Config{SessionsTable: "sessions", UsersTable: "users", OpTimeout: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := dynamostore.New(tc.c, tc.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, err := dynamostore.New(c, dynamostore.Config{SessionsTable: "wx-sessions", UsersTable: "wx-users"}); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestReadOnlyStoreWithoutUsersTable(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ro, err := dynamostore.New(e.client, dynamostore.Config{SessionsTable: e.sessions, Now: e.clock.Now})
	if err != nil {
		t.Fatalf("a store without a users table must build: %v", err)
	}
	ctx := context.Background()
	id, _, err := e.store.Create(ctx, "wxapp", session.Identity{OpenID: "oReadOnly0001", SessionKey: "k"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Get(ctx, session.Hash(id)); err != nil {
		t.Fatalf("read-only Get: %v", err)
	}
	if _, _, err := ro.Create(ctx, "wxapp", session.Identity{OpenID: "o2", SessionKey: "k"}, time.Hour); !errors.Is(err, dynamostore.ErrNoUsersTable) {
		t.Fatalf("Create without users table: err = %v, want ErrNoUsersTable", err)
	}
	if _, err := ro.SessionKey(ctx, "oReadOnly0001"); !errors.Is(err, dynamostore.ErrNoUsersTable) {
		t.Fatalf("SessionKey without users table: err = %v", err)
	}
	if err := ro.Delete(ctx, session.Hash(id)); err != nil {
		t.Fatalf("read-only Delete: %v", err)
	}
	if _, err := e.store.Get(ctx, session.Hash(id)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("after read-only Delete: err = %v, want ErrNotFound", err)
	}
}
