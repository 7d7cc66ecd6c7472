package dynamostore

import (
	"context"
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

	"github.com/wxsession/wxsession/session"
)

// Ban attributes of the users table (docs/design.md §8.5).
const (
	// AttrBannedAt marks a banned user (epoch seconds, N).
	AttrBannedAt = "banned_at"
	// AttrBanReason is the operator's reason (S; may be absent).
	AttrBanReason = "ban_reason"
	// AttrBannedUntil ends the ban (epoch seconds, N); absent: until
	// lifted.
	AttrBannedUntil = "banned_until"
	// AttrUnbanToken is the token of the latest Unban that lifted a ban
	// (S): an Unban whose answer was lost recognises its own write in it
	// (docs/design.md §3.10).
	AttrUnbanToken = "unban_token"
)

// Ban is a user's ban.
type Ban struct {
	// Reason is the operator's reason, for the audit trail and wxadmin.
	Reason string
	// At is when the ban was recorded.
	At time.Time
	// Until ends the ban; zero means until it is lifted.
	Until time.Time
}

// Active reports whether the ban holds at now.
func (b Ban) Active(now time.Time) bool { return b.Until.IsZero() || now.Before(b.Until) }

// BannedError is Issue's error for a banned user: the login is refused
// (403 user_banned) and issues nothing. It matches ErrBanned.
type BannedError struct {
	// Until is the end of the ban; zero when it holds until lifted.
	Until time.Time
}

// ErrBanned matches every *BannedError.
var ErrBanned = errors.New("dynamostore: the user is banned")

func (e *BannedError) Error() string {
	if e.Until.IsZero() {
		return "dynamostore: the user is banned"
	}
	return "dynamostore: the user is banned until " + e.Until.UTC().Format(time.RFC3339)
}

// Is makes errors.Is(err, ErrBanned) true.
func (e *BannedError) Is(target error) bool { return target == ErrBanned }

// notBannedCondition is the condition of the login's user update: the
// user is not banned, or the ban's end has passed (:now, epoch seconds).
// A permanent ban has no banned_until, so the comparison is false.
const notBannedCondition = "attribute_not_exists(#banned) OR #banneduntil <= :now"

// bannedFrom reads the ban out of a user item's attributes (nil when the
// item has none).
func bannedFrom(av map[string]types.AttributeValue) *Ban {
	at, ok := av[AttrBannedAt].(*types.AttributeValueMemberN)
	if !ok {
		return nil
	}
	b := &Ban{At: unixOrZero(parseN(at.Value))}
	if v, ok := av[AttrBanReason].(*types.AttributeValueMemberS); ok {
		b.Reason = v.Value
	}
	if v, ok := av[AttrBannedUntil].(*types.AttributeValueMemberN); ok {
		b.Until = unixOrZero(parseN(v.Value))
	}
	return b
}

func parseN(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// banned turns the login's failed user update into a *BannedError. The
// failure carries the user item on AWS (ReturnValuesOnConditionCheckFailure);
// when it does not (older local servers), one GetItem reads the ban: only a
// banned user's login pays for it.
func (s *Store) banned(ctx context.Context, user string, ccf *types.ConditionalCheckFailedException) error {
	av := ccf.Item
	if len(av) == 0 {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:                aws.String(s.users),
			Key:                      userKey(user),
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("#banned, #reason, #until"),
			ExpressionAttributeNames: map[string]string{"#banned": AttrBannedAt, "#reason": AttrBanReason, "#until": AttrBannedUntil},
		})
		if err != nil {
			return err
		}
		av = out.Item
	}
	b := bannedFrom(av)
	if b == nil { // unbanned in between: report it as banned all the same, the client may retry
		return &BannedError{}
	}
	return &BannedError{Until: b.Until}
}

// User is a user record as operators see it. It never holds the
// session_key.
type User struct {
	Key         string // the user key <appid>#<openid>
	AppID       string
	OpenID      string
	UnionID     string
	CreatedAt   time.Time
	LastLoginAt time.Time
	// Ban is the user's ban, nil when none was recorded (it may have
	// ended: see Ban.Active).
	Ban *Ban
	// Registered are the sids the user's session registry names (an
	// upper bound of the live sessions).
	Registered []string
}

// userFrom decodes a user item, leaving out the session_key.
func userFrom(av map[string]types.AttributeValue) (User, error) {
	var raw struct {
		User        string `dynamodbav:"user"`
		AppID       string `dynamodbav:"appid"`
		OpenID      string `dynamodbav:"openid"`
		UnionID     string `dynamodbav:"unionid"`
		CreatedAt   int64  `dynamodbav:"created_at"`
		LastLoginAt int64  `dynamodbav:"last_login_at"`
	}
	delete(av, AttrSessionKey)
	if err := attributevalue.UnmarshalMap(av, &raw); err != nil {
		return User{}, fmt.Errorf("malformed user item: %w", err)
	}
	u := User{Key: raw.User, AppID: raw.AppID, OpenID: raw.OpenID, UnionID: raw.UnionID,
		CreatedAt: unixOrZero(raw.CreatedAt), LastLoginAt: unixOrZero(raw.LastLoginAt), Ban: bannedFrom(av)}
	if u.AppID == "" || u.OpenID == "" {
		u.AppID, u.OpenID, _ = session.SplitUserKey(raw.User)
	}
	u.Registered = registered(av)
	return u, nil
}

// registered returns the sids of a user item's registry slots, sorted.
func registered(av map[string]types.AttributeValue) []string {
	var out []string
	for name, v := range av {
		if !strings.HasPrefix(name, SlotPrefix) {
			continue
		}
		var sl slot
		if err := attributevalue.Unmarshal(v, &sl); err == nil && len(sl.SID) == hashLength {
			out = append(out, sl.SID)
		}
	}
	slices.Sort(out)
	return out
}

// User reads the user record of user (a user key) with one strongly
// consistent GetItem; the session_key is not fetched. session.ErrNotFound
// when there is none.
func (s *Store) User(ctx context.Context, user string) (User, error) {
	if s.users == "" {
		return User{}, fmt.Errorf("dynamostore: user: %w", ErrNoUsersTable)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.users),
		Key:            userKey(user),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return User{}, s.fail(ctx, s.log.With("op", "user"), "get user", err)
	}
	if len(out.Item) == 0 {
		return User{}, session.ErrNotFound
	}
	return userFrom(out.Item)
}

// FindUser scans the users table for the first user key match accepts and
// returns that user (session.ErrNotFound when none does). It reads the
// whole table, a page at a time: an operator's tool (wxadmin users show
// -user maps an audit pseudonym back to a user this way).
func (s *Store) FindUser(ctx context.Context, match func(user string) bool) (User, error) {
	if s.users == "" {
		return User{}, fmt.Errorf("dynamostore: find user: %w", ErrNoUsersTable)
	}
	p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{
		TableName:                aws.String(s.users),
		ProjectionExpression:     aws.String("#user"),
		ExpressionAttributeNames: map[string]string{"#user": AttrUser},
	})
	for p.HasMorePages() {
		pctx, cancel := s.opContext(ctx)
		page, err := p.NextPage(pctx)
		cancel()
		if err != nil {
			return User{}, s.fail(ctx, s.log.With("op", "find_user"), "find user", err)
		}
		for _, it := range page.Items {
			if v, ok := it[AttrUser].(*types.AttributeValueMemberS); ok && match(v.Value) {
				return s.User(ctx, v.Value)
			}
		}
	}
	return User{}, session.ErrNotFound
}

// Ban bans an existing user and ends its sessions (reason banned); it
// returns how many sessions it ended. session.ErrNotFound when the user
// has no record. Banning again replaces the reason and end.
//
// Order, safe against a concurrent login (docs/design.md §8.5): (1) one
// UpdateItem records the ban and returns the user item as it now is; a
// login whose own user update comes later fails its not-banned condition
// and issues nothing. (2) Every session the registry names is ended: that
// includes any login whose user update came before the ban, whether its
// session item is already written (it is ended) or still a claim (the
// tombstone replaces the claim, so the login's conditional put fails). (3)
// EndUserSessions ends whatever else the user index lists. A crash after
// (1) leaves the ban in force; running it again ends the rest.
func (s *Store) Ban(ctx context.Context, user string, b Ban) (int, error) {
	if s.users == "" {
		return 0, fmt.Errorf("dynamostore: ban: %w", ErrNoUsersTable)
	}
	if user == "" {
		return 0, errors.New("dynamostore: ban: empty user")
	}
	names := map[string]string{"#user": AttrUser, "#banned": AttrBannedAt, "#reason": AttrBanReason, "#until": AttrBannedUntil}
	values := map[string]types.AttributeValue{":at": numAV(b.At.Unix())}
	expr := "SET #banned = :at"
	var remove []string
	if b.Reason != "" {
		expr += ", #reason = :reason"
		values[":reason"] = strAV(b.Reason)
	} else {
		remove = append(remove, "#reason")
	}
	if !b.Until.IsZero() {
		expr += ", #until = :until"
		values[":until"] = numAV(b.Until.Unix())
	} else {
		remove = append(remove, "#until")
	}
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	uctx, cancel := s.opContext(ctx)
	out, err := s.db.UpdateItem(uctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.users),
		Key:                       userKey(user),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("attribute_exists(#user)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	cancel()
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return 0, session.ErrNotFound
	}
	if err != nil {
		return 0, s.fail(ctx, s.log.With("op", "ban"), "ban: update user", err)
	}
	n, err := s.endAll(ctx, registered(out.Attributes), session.ReasonBanned)
	if err != nil {
		return n, err
	}
	m, err := s.EndUserSessions(ctx, user, session.ReasonBanned, "")
	return n + m, err
}

// endAll ends the sessions of hashes with reason, one conditional write
// each, and returns how many it ended.
func (s *Store) endAll(ctx context.Context, hashes []string, reason session.Reason) (int, error) {
	n := 0
	for _, h := range hashes {
		ok, err := s.EndSession(ctx, h, reason)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Unban lifts user's ban. It reports whether there was one; a user without
// a record is session.ErrNotFound. One UpdateItem, conditional on a ban,
// removes it and records a token of its own; when the condition fails, one
// consistent GetItem tells a user that was not banned (or has no record)
// from this very write applied with its answer lost, whose SDK retry then
// found the ban gone (docs/design.md §3.10).
func (s *Store) Unban(ctx context.Context, user string) (bool, error) {
	if s.users == "" {
		return false, fmt.Errorf("dynamostore: unban: %w", ErrNoUsersTable)
	}
	token, err := s.newToken()
	if err != nil {
		return false, fmt.Errorf("dynamostore: unban: %w", err)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	log := s.log.With("op", "unban")
	names := map[string]string{"#banned": AttrBannedAt, "#reason": AttrBanReason, "#until": AttrBannedUntil, "#token": AttrUnbanToken}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.users),
		Key:                       userKey(user),
		UpdateExpression:          aws.String("SET #token = :token REMOVE #banned, #reason, #until"),
		ConditionExpression:       aws.String("attribute_exists(#banned)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":token": strAV(token)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		out, gerr := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:                aws.String(s.users),
			Key:                      userKey(user),
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("#user, #token"),
			ExpressionAttributeNames: map[string]string{"#user": AttrUser, "#token": AttrUnbanToken},
		})
		if gerr != nil {
			return false, s.fail(ctx, log, "unban: read back", gerr)
		}
		if len(out.Item) == 0 {
			return false, session.ErrNotFound
		}
		if v, ok := out.Item[AttrUnbanToken].(*types.AttributeValueMemberS); ok && v.Value == token {
			log.InfoContext(ctx, "unban applied although its answer was lost")
			return true, nil
		}
		return false, nil
	}
	if err != nil {
		return false, s.fail(ctx, log, "unban", err)
	}
	return true, nil
}

// DeleteUser deletes user's record (session_key, registry, ban) with one
// DeleteItem and returns the sids its registry named, for the caller to end
// (account.Deleter does). Deleting a missing record is not an error.
func (s *Store) DeleteUser(ctx context.Context, user string) ([]string, error) {
	if s.users == "" {
		return nil, fmt.Errorf("dynamostore: delete user: %w", ErrNoUsersTable)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    aws.String(s.users),
		Key:          userKey(user),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return nil, s.fail(ctx, s.log.With("op", "delete_user"), "delete user", err)
	}
	return registered(out.Attributes), nil
}

// EndSessionsCreatedBefore ends every live session created before t, with
// reason, and returns how many it ended: after a breach, "every session
// issued before the fix". It scans the sessions table (live sessions only:
// a filter on the user key, which tombstones and claims lack, and on
// created_us) and writes tombstones 25 at a time. The authorizer's path is
// untouched: nothing is added to what it reads.
//
// A scan costs reads over the whole table, once. A session created while
// the scan runs with a creation time before t may be missed when its key
// was already passed: give t a moment in the past, or run it twice. An
// interrupted call returns what it ended with the error; what it ended
// stays ended, and running it again goes on.
func (s *Store) EndSessionsCreatedBefore(ctx context.Context, t time.Time, reason session.Reason) (int, error) {
	if !reason.Stored() {
		return 0, fmt.Errorf("dynamostore: end sessions before: reason %q cannot be stored", reason)
	}
	log := s.log.With("op", "end_before", "reason", string(reason))
	p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{
		TableName:                 aws.String(s.sessions),
		ProjectionExpression:      aws.String("#sid"),
		FilterExpression:          aws.String("attribute_exists(#user) AND attribute_not_exists(#ended) AND #cus < :t"),
		ExpressionAttributeNames:  map[string]string{"#sid": AttrSID, "#user": AttrUser, "#ended": AttrEndedReason, "#cus": AttrCreatedUS},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": numAV(t.UnixMicro())},
		ConsistentRead:            aws.Bool(true),
	})
	ended := 0
	for p.HasMorePages() {
		pctx, cancel := s.opContext(ctx)
		page, err := p.NextPage(pctx)
		cancel()
		if err != nil {
			return ended, s.fail(ctx, log.With("ended", ended), "end sessions before: scan", err)
		}
		var hashes []string
		for _, it := range page.Items {
			if v, ok := it[AttrSID].(*types.AttributeValueMemberS); ok && len(v.Value) == hashLength {
				hashes = append(hashes, v.Value)
			}
		}
		for start := 0; start < len(hashes); start += batchWriteSize {
			n, err := s.batchTombstones(ctx, hashes[start:min(start+batchWriteSize, len(hashes))], reason)
			ended += n
			if err != nil {
				return ended, s.fail(ctx, log.With("ended", ended), "end sessions before", err)
			}
		}
	}
	log.InfoContext(ctx, "sessions ended", "count", ended, "before", t.UTC().Format(time.RFC3339))
	return ended, nil
}
