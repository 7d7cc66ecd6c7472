// Package phonestore keeps the phone numbers bound to users (the phones
// table: bindings, number claims, paid-lookup counters, code records) and
// reads and writes the session_key in the users table, for the wechat
// function (package wxuser, docs/design.md §7). It links no WeChat client,
// so the api function can delete a user's phone data (DELETE /me,
// docs/design.md §8.6) without one.
package phonestore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

// The phones table (template.yaml: PhonesTable): partition key "user",
// sort key "item", TTL attribute "expires_at". Items:
//
//	user=<appid>#<openid>  item=phone              the binding: phone_number, pure_phone_number, country_code, bound_at, claim_token (PHONE_UNIQUE)
//	user=<appid>#<openid>  item=lookups#YYYY-MM-DD n: paid lookups that day (China time); TTL 2 days
//	user=<appid>#<openid>  item=code#<sha256(code)> a getPhoneNumber code being or already exchanged: state, the answer; TTL 5 min
//	user=number#<appid>#<cc>#<pure> item=claim     owner: the user key holding the number, claimed_at, tokens: the claim_tokens of its bindings (PHONE_UNIQUE only)
const (
	AttrUser      = "user"
	AttrItem      = "item"
	AttrExpiresAt = "expires_at"

	itemPhone       = "phone"
	itemClaim       = "claim"
	prefixLookups   = "lookups#"
	prefixCode      = "code#"
	prefixNumberKey = "number#"
)

// Phone is a bound phone number, as WeChat reports it.
type Phone struct {
	PhoneNumber     string `json:"phone_number" dynamodbav:"phone_number"`
	PurePhoneNumber string `json:"pure_phone_number" dynamodbav:"pure_phone_number"`
	CountryCode     string `json:"country_code" dynamodbav:"country_code"`
}

// number is the uniqueness key of a phone: country code and pure number.
func (p Phone) number() string { return p.CountryCode + "#" + p.PurePhoneNumber }

// Masked is the phone number for logs: the last 4 digits only.
func (p Phone) Masked() string {
	n := p.PurePhoneNumber
	if len(n) <= 4 {
		return "****"
	}
	return "+" + p.CountryCode + " ***" + n[len(n)-4:]
}

// ErrPhoneInUse: PHONE_UNIQUE is on and another user holds the number.
var ErrPhoneInUse = errors.New("the phone number is bound to another user")

// ErrNotFound: nothing stored (no binding, no session_key).
var ErrNotFound = errors.New("not found")

// Store keeps phone bindings, paid-lookup counters and code records in the
// phones table, and reads and writes the session_key in the users table.
type Store struct {
	db     *dynamodb.Client
	phones string
	users  string
	now    func() time.Time
}

// NewStore returns a Store; it does no I/O.
func NewStore(db *dynamodb.Client, phonesTable, usersTable string, now func() time.Time) (*Store, error) {
	if db == nil || phonesTable == "" || usersTable == "" {
		return nil, errors.New("phonestore: store needs a client, the phones table and the users table")
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, phones: phonesTable, users: usersTable, now: now}, nil
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(user, item string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrUser: s(user), AttrItem: s(item)}
}

// newToken is a random token that tells one write from every other: a
// write whose answer was lost recognises its own work by it when the SDK's
// retry fails a condition (docs/design.md §3.10).
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// usersKey is the users table's key of a user. The users table is the
// login's (package dynamostore); only the session_key attribute is read and
// written here.
func usersKey(appid, openid string) map[string]types.AttributeValue {
	return dynamostore.UsersTableKey(appid, openid)
}

// SessionKey returns the user's latest session_key; ErrNotFound if none.
func (st *Store) SessionKey(ctx context.Context, appid, openid string) (string, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(st.users),
		Key:                      usersKey(appid, openid),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#sk"),
		ExpressionAttributeNames: map[string]string{"#sk": dynamostore.AttrSessionKey},
	})
	if err != nil {
		return "", dynamoclient.Wrap("phonestore: read session_key", err)
	}
	v, ok := out.Item[dynamostore.AttrSessionKey].(*types.AttributeValueMemberS)
	if !ok || v.Value == "" {
		return "", ErrNotFound
	}
	return v.Value, nil
}

// SetSessionKey replaces the user's session_key old with next (after
// resetusersessionkey). If a login replaced old meanwhile, the login's key
// stays (it is at least as recent) and false is returned.
func (st *Store) SetSessionKey(ctx context.Context, appid, openid, old, next string) (bool, error) {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(st.users),
		Key:                       usersKey(appid, openid),
		UpdateExpression:          aws.String("SET #sk = :next"),
		ConditionExpression:       aws.String("#sk = :old"),
		ExpressionAttributeNames:  map[string]string{"#sk": dynamostore.AttrSessionKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":next": s(next), ":old": s(old)},
	})
	if isConditionFailed(err) {
		// Our own write applied with its answer lost fails the condition
		// on its retry too: the key is then ours (a fresh key from WeChat,
		// which no login carries).
		cur, rerr := st.SessionKey(ctx, appid, openid)
		if rerr != nil && !errors.Is(rerr, ErrNotFound) {
			return false, rerr
		}
		return cur == next, nil
	}
	if err != nil {
		return false, dynamoclient.Wrap("phonestore: write session_key", err)
	}
	return true, nil
}

// bindingItem is the stored binding.
type bindingItem struct {
	Phone
	BoundAt int64 `dynamodbav:"bound_at"`
	// Token is the token its bind added to its number's claim (PHONE_UNIQUE
	// only; empty on bindings written without it or before tokens existed):
	// the binding's share of the claim, and its version.
	Token string `dynamodbav:"claim_token,omitempty"`
	// Replaces is the token of the binding its bind replaced (the binding
	// read, when it had one): an Unbind whose delete fails its condition
	// tells by it whether a bind replaced the binding it read (its delete
	// never landed) or wrote after a delete (docs/design.md §3.10).
	Replaces string `dynamodbav:"replaces,omitempty"`
}

// Phone returns the user's bound phone; ErrNotFound if none.
func (st *Store) Phone(ctx context.Context, user string) (Phone, error) {
	b, err := st.binding(ctx, user)
	if err != nil {
		return Phone{}, err
	}
	if b.PurePhoneNumber == "" {
		return Phone{}, ErrNotFound
	}
	return b.Phone, nil
}

// binding reads user's binding (one consistent GetItem); the zero value
// if there is none.
func (st *Store) binding(ctx context.Context, user string) (bindingItem, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.phones), Key: key(user, itemPhone), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return bindingItem{}, dynamoclient.Wrap("phonestore: read binding", err)
	}
	var b bindingItem
	if out.Item != nil && attributevalue.UnmarshalMap(out.Item, &b) != nil {
		return bindingItem{}, nil
	}
	return b, nil
}

// claimKey is the partition key of the claim of p's number in appid.
func claimKey(appid string, p Phone) string { return prefixNumberKey + appid + "#" + p.number() }

// Bind binds p to user, replacing an earlier binding.
//
// With unique, the number is held by a claim item (owner: one user) that
// keeps the set of tokens of the bindings that may show it; the invariant
// is that a binding showing a number has its token in that number's claim,
// owned by its user (docs/design.md §7.4). In order:
//
//  1. read the binding (its number and token);
//  2. claim the number, adding a fresh token (ErrPhoneInUse if another
//     user holds it; a claim whose owner no longer has that number bound
//     and older than ClaimGrace is stale and taken over) — skipped when
//     the binding read already shows the number with a token: that token
//     is reused;
//  3. write the binding with that token, conditional on the token read in
//     1 (nobody replaced the binding meanwhile);
//  4. take the replaced binding's token out of its number's claim,
//     deleting the claim with its last token.
//
// A crash between the steps leaves at most a token nobody's binding
// carries, so a claim that may be stale, which the next claimant takes
// over once it is older than ClaimGrace (and its owner's binding does not
// show the number): never two owners, never a bound number without its
// claim. When the condition of 3 fails, another bind or unbind of the same
// user replaced the binding read in 1 between 1 and 3: this bind counts as
// done and replaced by that one (its token and the read binding's are
// taken out, as that one's replacement would have done).
//
// Without unique, the binding is put unconditionally and the claim of the
// number it replaced, if any (made while PHONE_UNIQUE was on), released.
func (st *Store) Bind(ctx context.Context, user, appid string, p Phone, unique bool) error {
	if !unique {
		return st.bindShared(ctx, user, appid, p)
	}
	seen, err := st.binding(ctx, user)
	if err != nil {
		return err
	}
	ck := claimKey(appid, p)
	same := seen.Token != "" && seen.PurePhoneNumber != "" && seen.number() == p.number()
	tok := seen.Token
	if !same {
		tok = newToken()
		if err := st.claim(ctx, ck, user, tok); err != nil {
			return err
		}
	}
	item, err := attributevalue.MarshalMap(bindingItem{Phone: p, BoundAt: st.now().Unix(), Token: tok, Replaces: seen.Token})
	if err != nil {
		return fmt.Errorf("phonestore: encode binding: %w", err)
	}
	item[AttrUser], item[AttrItem] = s(user), s(itemPhone)
	in := &dynamodb.PutItemInput{TableName: aws.String(st.phones), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(#tk)"), ExpressionAttributeNames: map[string]string{"#tk": attrToken}}
	if seen.Token != "" {
		in.ConditionExpression = aws.String("#tk = :seen")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":seen": s(seen.Token)}
	}
	_, err = st.db.PutItem(ctx, in)
	if isConditionFailed(err) {
		// Our own put applied with its answer lost fails the condition on
		// the SDK's retry (docs/design.md §3.10): the binding then carries
		// our token. Any other token: a concurrent bind or unbind replaced
		// the binding read, and ours was never written (or was replaced
		// too, by a bind that takes our token out as well).
		cur, rerr := st.binding(ctx, user)
		if rerr != nil {
			return rerr
		}
		if cur.Token != tok && !same {
			st.release(ctx, ck, user, tok, true)
		}
		err = nil
	}
	if err != nil {
		return dynamoclient.Wrap("phonestore: write binding", err)
	}
	if seen.PurePhoneNumber != "" && !same {
		st.release(ctx, claimKey(appid, seen.Phone), user, seen.Token, true)
	}
	return nil
}

// bindShared binds p without claiming its number (PHONE_UNIQUE off).
func (st *Store) bindShared(ctx context.Context, user, appid string, p Phone) error {
	b := bindingItem{Phone: p, BoundAt: st.now().Unix()}
	item, err := attributevalue.MarshalMap(b)
	if err != nil {
		return fmt.Errorf("phonestore: encode binding: %w", err)
	}
	item[AttrUser], item[AttrItem] = s(user), s(itemPhone)
	out, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(st.phones), Item: item, ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return dynamoclient.Wrap("phonestore: write binding", err)
	}
	// The old binding's claim, if one was made while PHONE_UNIQUE was on.
	// Our own binding among the old values (the retry of a put whose
	// answer was lost, docs/design.md §3.10) tells nothing: a claim left
	// is stale and taken over.
	var old bindingItem
	if out.Attributes != nil && attributevalue.UnmarshalMap(out.Attributes, &old) == nil && old != b &&
		old.PurePhoneNumber != "" && (old.number() != p.number() || old.Token != "") {
		st.release(ctx, claimKey(appid, old.Phone), user, old.Token, true)
	}
	return nil
}

// Unbind removes user's binding (and its claim); unbinding nothing is not
// an error. It returns the removed phone, if any. The binding is read
// first (one consistent GetItem) and deleted only while it is the one read
// (its token, or for a binding without one its number): a bind of the
// same user replacing it in between is not undone unseen (docs/design.md
// §3.10).
func (st *Store) Unbind(ctx context.Context, user, appid string) (Phone, bool, error) {
	reread := func() (map[string]types.AttributeValue, error) {
		out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(st.phones), Key: key(user, itemPhone), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, dynamoclient.Wrap("phonestore: read binding", err)
		}
		return out.Item, nil
	}
	seen, err := reread()
	if err != nil {
		return Phone{}, false, err
	}
	return st.unbind(ctx, user, appid, seen, true, reread)
}

// unbindRounds bounds how often unbind follows a binding replaced under it.
const unbindRounds = 3

// unbind deletes user's binding seen (as read before; nil: none) while it
// is still the one stored, and takes its token out of its number's claim
// (update: as release). reread reads the binding again (the api function
// may not GetItem: it queries).
//
// A failed condition means the binding read is gone or replaced: by a bind
// of the same user that read it (that binding's replaces is seen's token):
// then the delete never landed and is tried again on the new binding;
// otherwise (gone, or written by a bind that found no binding) the binding
// read was deleted — by this very delete when its answer was lost and the
// SDK's retry failed the condition, or by a concurrent unbind — and is the
// one reported removed. A binding written after it is left alone.
func (st *Store) unbind(ctx context.Context, user, appid string, seen map[string]types.AttributeValue, update bool,
	reread func() (map[string]types.AttributeValue, error)) (Phone, bool, error) {
	var old bindingItem
	for round := 0; ; round++ {
		old = bindingItem{}
		if len(seen) == 0 || attributevalue.UnmarshalMap(seen, &old) != nil || old.PurePhoneNumber == "" {
			return Phone{}, false, nil
		}
		in := &dynamodb.DeleteItemInput{
			TableName: aws.String(st.phones), Key: key(user, itemPhone),
			ConditionExpression:       aws.String("#tk = :tk"),
			ExpressionAttributeNames:  map[string]string{"#tk": attrToken},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tk": s(old.Token)},
		}
		if old.Token == "" {
			// A binding from before tokens (or written without
			// PHONE_UNIQUE): the same number, still without a token.
			in.ConditionExpression = aws.String("attribute_not_exists(#tk) AND #cc = :cc AND #pn = :pn")
			in.ExpressionAttributeNames = map[string]string{"#tk": attrToken, "#cc": "country_code", "#pn": "pure_phone_number"}
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":cc": s(old.CountryCode), ":pn": s(old.PurePhoneNumber)}
		}
		_, err := st.db.DeleteItem(ctx, in)
		if err == nil {
			break
		}
		if !isConditionFailed(err) {
			return Phone{}, false, dynamoclient.Wrap("phonestore: delete binding", err)
		}
		cur, err := reread()
		if err != nil {
			return Phone{}, false, err
		}
		var now bindingItem
		if len(cur) == 0 || attributevalue.UnmarshalMap(cur, &now) != nil || old.Token == "" ||
			now.Replaces != old.Token || round == unbindRounds-1 {
			// Deleted (by us or a concurrent unbind), or replaced after
			// a delete: the binding read is the one removed. After the
			// last round (replaced again and again): as if this unbind
			// had come before those binds.
			break
		}
		seen = cur // replaced by a bind that read it: delete that one
	}
	st.release(ctx, claimKey(appid, old.Phone), user, old.Token, update)
	return old.Phone, true, nil
}

// DeleteUserData removes everything the phones table holds about the user:
// its part of an account deletion (account.DataDeleter; docs/design.md
// §8.6). Every item of the user's partition (the binding, paid-lookup
// counters, code records) is found with a strongly consistent Query and
// deleted; the binding's number claim is released (the binding as the
// query read it stands for a delete whose answer was lost). Deleting
// nothing is not an error; an interrupted deletion is finished by the next
// one.
func (st *Store) DeleteUserData(ctx context.Context, appID, openID string) error {
	user := session.UserKey(appID, openID)
	p := dynamodb.NewQueryPaginator(st.db, &dynamodb.QueryInput{
		TableName:                 aws.String(st.phones),
		KeyConditionExpression:    aws.String("#u = :u"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": s(user)},
		ConsistentRead:            aws.Bool(true),
		ExpressionAttributeNames:  map[string]string{"#u": AttrUser},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return dynamoclient.Wrap("phonestore: list the user's items", err)
		}
		for _, it := range page.Items {
			item, ok := it[AttrItem].(*types.AttributeValueMemberS)
			if !ok {
				continue
			}
			if item.Value == itemPhone {
				// The api function may only delete (template.yaml): a
				// claim shared with another token stays, stale.
				if _, _, err := st.unbind(ctx, user, appID, it, false, func() (map[string]types.AttributeValue, error) {
					return st.queryBinding(ctx, user)
				}); err != nil {
					return err
				}
				continue
			}
			if _, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.phones), Key: key(user, item.Value)}); err != nil {
				return dynamoclient.Wrap("phonestore: delete the user's items", err)
			}
		}
	}
	return nil
}

// queryBinding reads user's binding with a strongly consistent Query (the
// api function may Query and DeleteItem the phones table only); nil if
// none.
func (st *Store) queryBinding(ctx context.Context, user string) (map[string]types.AttributeValue, error) {
	out, err := st.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(st.phones),
		KeyConditionExpression:    aws.String("#u = :u AND #i = :i"),
		ExpressionAttributeNames:  map[string]string{"#u": AttrUser, "#i": AttrItem},
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": s(user), ":i": s(itemPhone)},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return nil, dynamoclient.Wrap("phonestore: read binding", err)
	}
	if len(out.Items) == 0 {
		return nil, nil
	}
	return out.Items[0], nil
}

// ClaimGrace is how long a new claim counts as live even though its
// owner's binding does not show the number yet (the binding is written
// right after the claim): longer than the function's timeout, so a claim
// is only taken over once its owner's bind has certainly ended.
const ClaimGrace = 30 * time.Second

// Attributes of the claim and binding items.
const (
	attrOwner     = "owner"
	attrClaimedAt = "claimed_at"
	attrTokens    = "tokens"      // on a claim: the tokens of the bindings that may show its number
	attrToken     = "claim_token" // on a binding: its token
)

// claim makes user the owner of claimKey and adds tok to its tokens.
func (st *Store) claim(ctx context.Context, claimKey, user, tok string) error {
	toks := &types.AttributeValueMemberSS{Value: []string{tok}}
	// Free or ours. Our own update applied with its answer lost meets
	// itself: ours, the token already there (docs/design.md §3.10).
	freeOrOurs := func(now time.Time) (bool, error) {
		_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(st.phones),
			Key:                       key(claimKey, itemClaim),
			UpdateExpression:          aws.String("SET #o = :me, #at = :now ADD #tk :toks"),
			ConditionExpression:       aws.String("attribute_not_exists(#u) OR #o = :me"),
			ExpressionAttributeNames:  map[string]string{"#u": AttrUser, "#o": attrOwner, "#at": attrClaimedAt, "#tk": attrTokens},
			ExpressionAttributeValues: map[string]types.AttributeValue{":me": s(user), ":now": n(now.UnixMilli()), ":toks": toks},
		})
		if isConditionFailed(err) {
			return false, nil
		}
		if err != nil {
			return false, dynamoclient.Wrap("phonestore: claim number", err)
		}
		return true, nil
	}
	for range 3 {
		now := st.now()
		if ok, err := freeOrOurs(now); ok || err != nil {
			return err
		}
		// Held by someone: is the claim stale (its owner no longer has
		// this number bound)?
		out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(st.phones), Key: key(claimKey, itemClaim), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return dynamoclient.Wrap("phonestore: read claim", err)
		}
		owner, _ := out.Item[attrOwner].(*types.AttributeValueMemberS)
		if owner == nil {
			continue // released meanwhile
		}
		at, _ := out.Item[attrClaimedAt].(*types.AttributeValueMemberN)
		if at != nil {
			if ms, err := strconv.ParseInt(at.Value, 10, 64); err == nil && now.Sub(time.UnixMilli(ms)) < ClaimGrace {
				return ErrPhoneInUse // its owner may be binding it right now
			}
		}
		held, err := st.Phone(ctx, owner.Value)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil && strings.HasSuffix(claimKey, "#"+held.number()) {
			return ErrPhoneInUse
		}
		// Stale: take it over, if it is still the claim read. Its owner
		// claiming it again meanwhile (to bind it: a binding we did not
		// see) changes claimed_at, and the takeover fails. This very put
		// applied with its answer lost fails the condition on the SDK's
		// retry too (the owner is us now): the claim is then ours, and the
		// "free or ours" update that follows adds our token again to
		// whatever tokens it holds by then (docs/design.md §3.10). The
		// condition must not accept our token instead: the retry would
		// put the claim again and drop the tokens another bind of ours
		// added in between, a bound number's token among them.
		cond := "#o = :old AND #at = :at"
		vals := map[string]types.AttributeValue{":old": s(owner.Value)}
		if at != nil {
			vals[":at"] = at
		} else {
			cond = "#o = :old AND attribute_not_exists(#at)"
		}
		_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(st.phones),
			Item: map[string]types.AttributeValue{AttrUser: s(claimKey), AttrItem: s(itemClaim), attrOwner: s(user),
				attrClaimedAt: n(now.UnixMilli()), attrTokens: toks},
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#o": attrOwner, "#at": attrClaimedAt},
			ExpressionAttributeValues: vals,
		})
		if err == nil {
			return nil
		}
		if !isConditionFailed(err) {
			return dynamoclient.Wrap("phonestore: take over claim", err)
		}
	}
	// The last round's takeover may have failed on our own claim (its
	// answer lost): ours if still ours.
	if ok, err := freeOrOurs(st.now()); ok || err != nil {
		return err
	}
	return ErrPhoneInUse
}

// release takes tok, the token of a binding of user that is replaced or
// deleted, out of claimKey's tokens, and deletes the claim with its last
// token; the claim is left alone unless user owns it (best effort: a claim
// left behind is stale and taken over by the next claimant). The common
// case, tok the only token, is one conditional DeleteItem; with other
// tokens present and update, an UpdateItem takes tok out (and a
// DeleteItem follows should it have been the last after all). Without
// update (the api function may only delete, template.yaml) the claim
// then stays. An empty tok (a binding from before tokens) deletes a claim
// without tokens only.
func (st *Store) release(ctx context.Context, claimKey, user, tok string, update bool) {
	names := map[string]string{"#o": attrOwner, "#tk": attrTokens}
	deleteEmpty := func() {
		_, _ = st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(st.phones),
			Key:                       key(claimKey, itemClaim),
			ConditionExpression:       aws.String("#o = :me AND attribute_not_exists(#tk)"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: map[string]types.AttributeValue{":me": s(user)},
		})
	}
	if tok == "" {
		deleteEmpty()
		return
	}
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(st.phones),
		Key:                       key(claimKey, itemClaim),
		ConditionExpression:       aws.String("#o = :me AND size(#tk) = :one AND contains(#tk, :tok)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": s(user), ":one": n(1), ":tok": s(tok)},
	})
	if !isConditionFailed(err) || !update {
		return
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(st.phones),
		Key:                       key(claimKey, itemClaim),
		UpdateExpression:          aws.String("DELETE #tk :toks"),
		ConditionExpression:       aws.String("#o = :me AND contains(#tk, :tok)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": s(user), ":tok": s(tok), ":toks": &types.AttributeValueMemberSS{Value: []string{tok}}},
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return
	}
	if _, left := out.Attributes[attrTokens]; !left {
		deleteEmpty()
	}
}

// ChinaTime is UTC+8: WeChat counts its quotas per calendar day there.
var ChinaTime = time.FixedZone("UTC+8", 8*3600)

// ErrLookupLimited: the user used up the day's paid lookups.
var ErrLookupLimited = errors.New("daily phone lookups used up")

// Lookup is one paid lookup reserved by ReserveLookup, to give back with
// RefundLookup.
type Lookup struct {
	// Day is the day it counts for (China time, YYYY-MM-DD).
	Day   string
	token string
}

// ReserveLookup counts one paid lookup for user today (China time) unless
// limit are already counted (ErrLookupLimited). A conditional ADD: exact
// under concurrency. Each reservation adds a token of its own to the
// day's item (a string set, at most limit tokens), and the condition
// refuses a token already there: an ADD applied with its answer lost is
// not counted twice by the SDK's retry, which fails the condition and
// then finds its token (one consistent GetItem; docs/design.md §3.10).
func (st *Store) ReserveLookup(ctx context.Context, user string, limit int) (Lookup, error) {
	now := st.now()
	l := Lookup{Day: now.In(ChinaTime).Format(time.DateOnly), token: newToken()}
	if limit <= 0 {
		return l, ErrLookupLimited
	}
	k := key(user, prefixLookups+l.Day)
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(st.phones),
		Key:                      k,
		UpdateExpression:         aws.String("ADD #n :one, #t :tokens SET #exp = :exp"),
		ConditionExpression:      aws.String("(attribute_not_exists(#n) OR #n < :limit) AND NOT contains(#t, :token)"),
		ExpressionAttributeNames: map[string]string{"#n": "n", "#t": "tokens", "#exp": AttrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1), ":limit": n(int64(limit)), ":exp": n(now.Add(48 * time.Hour).Unix()),
			":tokens": &types.AttributeValueMemberSS{Value: []string{l.token}}, ":token": s(l.token)},
	})
	if isConditionFailed(err) {
		out, gerr := st.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(st.phones), Key: k, ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String("#t"), ExpressionAttributeNames: map[string]string{"#t": "tokens"},
		})
		if gerr != nil {
			return l, dynamoclient.Wrap("phonestore: read lookups", gerr)
		}
		if ts, ok := out.Item["tokens"].(*types.AttributeValueMemberSS); ok && slices.Contains(ts.Value, l.token) {
			return l, nil // ours, counted once
		}
		return l, ErrLookupLimited
	}
	if err != nil {
		return l, dynamoclient.Wrap("phonestore: count lookup", err)
	}
	return l, nil
}

// RefundLookup gives back a lookup reserved with l that WeChat did not
// charge (best effort). It takes back l's token with the count, only while
// the token is there, so a retried refund gives back one lookup, not two.
func (st *Store) RefundLookup(ctx context.Context, user string, l Lookup) {
	if l.token == "" {
		return
	}
	_, _ = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(st.phones),
		Key:                      key(user, prefixLookups+l.Day),
		UpdateExpression:         aws.String("ADD #n :minus DELETE #t :tokens"),
		ConditionExpression:      aws.String("contains(#t, :token)"),
		ExpressionAttributeNames: map[string]string{"#n": "n", "#t": "tokens"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":minus": n(-1),
			":tokens": &types.AttributeValueMemberSS{Value: []string{l.token}}, ":token": s(l.token)},
	})
}

// CodeRecord is what is kept of a getPhoneNumber code for 5 minutes, so the
// same code again gets the same answer without a second (paid) call.
type CodeRecord struct {
	State string `dynamodbav:"state"` // "pending" or "done"
	// Phone is WeChat's answer; empty when WeChat refused the code (40029).
	Phone
	LeaseUntil int64 `dynamodbav:"lease_until,omitempty"` // ms
	ExpiresAt  int64 `dynamodbav:"expires_at"`
}

// CodeTTL is how long a code record is kept (WeChat's codes live 5 minutes).
const CodeTTL = 5 * time.Minute

// codeItem is the sort key of code's record: the code's SHA-256, so the
// code itself rests nowhere.
func codeItem(code string) string {
	h := sha256.Sum256([]byte(code))
	return prefixCode + base64.RawURLEncoding.EncodeToString(h[:])
}

// StartCode records that user is exchanging code, unless a live record
// exists: then it returns that record (started=false). A pending record
// whose lease has ended (its exchanger died) is taken over. A record that
// is gone by the time the failed put reads it (its exchanger gave the code
// up: AbandonCode) is tried again; should it vanish every time, the zero
// record is returned with started=false (the caller polls again).
func (st *Store) StartCode(ctx context.Context, user, code string, lease time.Duration) (rec CodeRecord, started bool, err error) {
	for range 3 {
		rec, started, err = st.startCode(ctx, user, code, lease)
		if !errors.Is(err, ErrNotFound) {
			return rec, started, err
		}
	}
	return CodeRecord{}, false, nil
}

// startCode is one round of StartCode: ErrNotFound when the record that
// failed the put's condition is gone when read.
func (st *Store) startCode(ctx context.Context, user, code string, lease time.Duration) (rec CodeRecord, started bool, err error) {
	now := st.now()
	token := newToken()
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(st.phones),
		Item: map[string]types.AttributeValue{AttrUser: s(user), AttrItem: s(codeItem(code)), "state": s("pending"),
			"lease_until": n(now.Add(lease).UnixMilli()), AttrExpiresAt: n(now.Add(CodeTTL).Unix()), attrLeaseToken: s(token)},
		ConditionExpression:      aws.String("attribute_not_exists(#u) OR #exp <= :nowS OR (#st = :pending AND #lu <= :nowMS)"),
		ExpressionAttributeNames: map[string]string{"#u": AttrUser, "#exp": AttrExpiresAt, "#st": "state", "#lu": "lease_until"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":nowS": n(now.Unix()), ":nowMS": n(now.UnixMilli()),
			":pending": s("pending")},
	})
	if err == nil {
		return CodeRecord{State: "pending"}, true, nil
	}
	if !isConditionFailed(err) {
		return CodeRecord{}, false, dynamoclient.Wrap("phonestore: start code", err)
	}
	rec, tok, err := st.code(ctx, user, code)
	if err == nil && rec.State == "pending" && tok == token {
		// This very put, applied with its answer lost: the SDK's retry
		// failed the condition on our own record (docs/design.md §3.10).
		return CodeRecord{State: "pending"}, true, nil
	}
	return rec, false, err
}

// attrLeaseToken is the token of the StartCode that wrote a pending
// record.
const attrLeaseToken = "lease_token"

// Code reads code's record.
func (st *Store) Code(ctx context.Context, user, code string) (CodeRecord, error) {
	rec, _, err := st.code(ctx, user, code)
	return rec, err
}

// code reads code's record and the token of the StartCode that wrote it.
func (st *Store) code(ctx context.Context, user, code string) (CodeRecord, string, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.phones), Key: key(user, codeItem(code)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return CodeRecord{}, "", dynamoclient.Wrap("phonestore: read code", err)
	}
	if out.Item == nil {
		return CodeRecord{}, "", ErrNotFound
	}
	var rec CodeRecord
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return CodeRecord{}, "", fmt.Errorf("phonestore: decode code record: %w", err)
	}
	tok, _ := out.Item[attrLeaseToken].(*types.AttributeValueMemberS)
	if tok == nil {
		return rec, "", nil
	}
	return rec, tok.Value, nil
}

// FinishCode stores the answer given for code (kept until the record's
// 5 minutes end).
func (st *Store) FinishCode(ctx context.Context, user, code string, rec CodeRecord) error {
	rec.State = "done"
	rec.LeaseUntil = 0
	rec.ExpiresAt = st.now().Add(CodeTTL).Unix()
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return fmt.Errorf("phonestore: encode code record: %w", err)
	}
	item[AttrUser], item[AttrItem] = s(user), s(codeItem(code))
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.phones), Item: item}); err != nil {
		return dynamoclient.Wrap("phonestore: finish code", err)
	}
	return nil
}

// AbandonCode deletes code's pending record so that the code can be tried
// again (after an answer that is not worth remembering, such as a 503).
func (st *Store) AbandonCode(ctx context.Context, user, code string) {
	_, _ = st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(st.phones),
		Key:                       key(user, codeItem(code)),
		ConditionExpression:       aws.String("#st = :pending"),
		ExpressionAttributeNames:  map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pending": s("pending")},
	})
}
