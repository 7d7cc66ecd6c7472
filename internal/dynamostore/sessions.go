package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/session"
)

// item is a sessions table item of any kind: a live session, a tombstone
// or a login claim (see the package comment).
type item struct {
	SID           string          `dynamodbav:"sid"`
	User          string          `dynamodbav:"user,omitempty"`
	CreatedUS     int64           `dynamodbav:"created_us,omitempty"`
	CreatedSID    string          `dynamodbav:"created_sid,omitempty"`
	OpenID        string          `dynamodbav:"openid,omitempty"`
	UnionID       string          `dynamodbav:"unionid,omitempty"`
	AppID         string          `dynamodbav:"appid,omitempty"`
	CreatedAt     int64           `dynamodbav:"created_at,omitempty"`
	ExpiresAt     int64           `dynamodbav:"expires_at,omitempty"`
	IdleExpiresAt int64           `dynamodbav:"idle_expires_at,omitempty"`
	LastActiveAt  int64           `dynamodbav:"last_active_at,omitempty"`
	DeviceID      string          `dynamodbav:"device_id,omitempty"`
	Device        *session.Device `dynamodbav:"device,omitempty"`
	SourceIP      string          `dynamodbav:"source_ip,omitempty"`
	EndedReason   string          `dynamodbav:"ended_reason,omitempty"`
	EndedAt       int64           `dynamodbav:"ended_at,omitempty"`
	Claim         string          `dynamodbav:"claim,omitempty"`
	ClaimedAt     int64           `dynamodbav:"claimed_at,omitempty"`
	Failed        string          `dynamodbav:"failed,omitempty"`
	PurgeAt       int64           `dynamodbav:"purge_at,omitempty"`
}

// itemProjection names what reads of one session fetch: everything but
// the device description (which only the device list shows).
const itemProjection = "#sid, #user, #cus, #openid, #unionid, #appid, #created, #expires, #idle, #last, #ended, #endedat, #claim, #claimedat, #failed, #devid"

var itemProjectionNames = map[string]string{
	"#sid": AttrSID, "#user": AttrUser, "#cus": AttrCreatedUS, "#openid": AttrOpenID,
	"#unionid": AttrUnionID, "#appid": AttrAppID, "#created": AttrCreatedAt,
	"#expires": AttrExpiresAt, "#idle": AttrIdleExpiresAt, "#last": AttrLastActiveAt,
	"#ended": AttrEndedReason, "#endedat": AttrEndedAt, "#claim": AttrClaim,
	"#claimedat": AttrClaimedAt, "#failed": AttrFailed, "#devid": AttrDeviceID,
}

// kind classifies an item.
type kind int

const (
	kindSession   kind = iota // a session, active or past its clocks
	kindTombstone             // ended, with a reason
	kindClaim                 // a code being exchanged
	kindFailed                // a code whose exchange failed for good
)

func (it item) kind() kind {
	switch {
	case it.EndedReason != "":
		return kindTombstone
	case it.Failed != "":
		return kindFailed
	case it.Claim != "":
		return kindClaim
	}
	return kindSession
}

func unixOrZero(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// session converts a session or tombstone item.
func (it item) session() session.Session {
	created := time.UnixMicro(it.CreatedUS).UTC()
	if it.CreatedUS == 0 {
		created = unixOrZero(it.CreatedAt)
	}
	return session.Session{
		Hash:          it.SID,
		OpenID:        it.OpenID,
		UnionID:       it.UnionID,
		AppID:         it.AppID,
		User:          it.User,
		CreatedAt:     created,
		ExpiresAt:     unixOrZero(it.ExpiresAt),
		IdleExpiresAt: unixOrZero(it.IdleExpiresAt),
		LastActiveAt:  unixOrZero(it.LastActiveAt),
		DeviceID:      it.DeviceID,
		Device:        derefDevice(it.Device),
		SourceIP:      it.SourceIP,
		EndedReason:   session.Reason(it.EndedReason),
		EndedAt:       unixOrZero(it.EndedAt),
	}
}

// decodeItem unmarshals a sessions item and checks that a session item has
// what every reader relies on.
func decodeItem(av map[string]types.AttributeValue) (item, error) {
	var it item
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return item{}, fmt.Errorf("malformed session item: %w", err)
	}
	if it.SID == "" {
		return item{}, errors.New("malformed session item: no sid")
	}
	if it.kind() == kindSession {
		switch {
		case it.User == "" || it.OpenID == "":
			return item{}, errors.New("malformed session item: no user or openid")
		case it.ExpiresAt <= 0 || it.CreatedAt <= 0:
			return item{}, errors.New("malformed session item: no created_at or expires_at")
		}
	}
	return it, nil
}

// getItem reads one sessions item (strongly consistent). ok is false when
// there is none; hashes that cannot be ours (wrong length) are not read.
func (s *Store) getItem(ctx context.Context, op, hash string) (it item, ok bool, err error) {
	if len(hash) != hashLength {
		return item{}, false, nil
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.sessions),
		Key:                      sidKey(hash),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String(itemProjection),
		ExpressionAttributeNames: itemProjectionNames,
	})
	if err != nil {
		return item{}, false, s.fail(ctx, s.log.With("op", op), op+" session", err)
	}
	if len(out.Item) == 0 {
		return item{}, false, nil
	}
	it, err = decodeItem(out.Item)
	if err != nil {
		s.log.ErrorContext(ctx, "malformed session item", "op", op, "err", err)
		return item{}, false, fmt.Errorf("dynamostore: %s session: %w", op, err)
	}
	if it.SID != hash {
		return item{}, false, fmt.Errorf("dynamostore: %s session: item key does not match the requested hash", op)
	}
	return it, true, nil
}

// Get returns the active session stored under hash (session.Hash of the
// client's id) with one strongly consistent GetItem: an eventually
// consistent read could miss a session written a moment ago, and the first
// authorized request follows the login at once. It returns
// session.ErrNotFound when there is no active session: missing, a
// tombstone, a login claim, or past either clock (TTL deletes items days
// late). Hashes that cannot be ours (wrong length) cost no read.
func (s *Store) Get(ctx context.Context, hash string) (session.Session, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	it, ok, err := s.getItem(ctx, "get", hash)
	if err != nil {
		return session.Session{}, err
	}
	if !ok || it.kind() != kindSession {
		return session.Session{}, session.ErrNotFound
	}
	sess := it.session()
	if !sess.Active(s.now()) {
		return session.Session{}, session.ErrNotFound
	}
	return sess, nil
}

// Lookup returns whatever is known of the session stored under hash, for
// GET /session: an active session, or one with EndReason(now) != "" (a
// tombstone's reason, or a clock that ran out). It costs at most one read
// and returns session.ErrNotFound when nothing is known (never issued, a
// login claim, a malformed hash, or a tombstone already purged).
func (s *Store) Lookup(ctx context.Context, hash string) (session.Session, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	it, ok, err := s.getItem(ctx, "lookup", hash)
	if err != nil {
		return session.Session{}, err
	}
	if !ok || it.kind() == kindClaim || it.kind() == kindFailed {
		return session.Session{}, session.ErrNotFound
	}
	return it.session(), nil
}

// Touch renews a session's idle clock: it sets last_active_at to now and,
// when idleExpiresAt is not zero, idle_expires_at to it. It writes only
// those two attributes, on a live session whose idle clock has not run out
// (a condition on those attributes alone, which the authorizer's IAM policy
// allows); a session that ended meanwhile is left alone and Touch returns
// nil. Callers write at most once per touch interval (docs/design.md §4).
func (s *Store) Touch(ctx context.Context, hash string, now, idleExpiresAt time.Time) error {
	if len(hash) != hashLength {
		return session.ErrNotFound
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	expr := "SET #last = :now"
	cond := "attribute_exists(#last)"
	names := map[string]string{"#last": AttrLastActiveAt}
	values := map[string]types.AttributeValue{":now": numAV(now.Unix())}
	if !idleExpiresAt.IsZero() {
		expr += ", #idle = :idle"
		cond += " AND #idle > :now"
		names["#idle"] = AttrIdleExpiresAt
		values[":idle"] = numAV(idleExpiresAt.Unix())
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.sessions),
		Key:                       sidKey(hash),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil
	}
	if err != nil {
		return s.fail(ctx, s.log.With("op", "touch"), "touch session", err)
	}
	return nil
}

// SessionKey returns the user's latest WeChat session_key, for server-side
// decryption of encryptedData. It returns session.ErrNotFound when the user
// is unknown or has none. Never log or return the result to a client.
func (s *Store) SessionKey(ctx context.Context, user string) (string, error) {
	if s.users == "" {
		return "", fmt.Errorf("dynamostore: session key: %w", ErrNoUsersTable)
	}
	if user == "" {
		return "", session.ErrNotFound
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.users),
		Key:                      userKey(user),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#sk"),
		ExpressionAttributeNames: map[string]string{"#sk": AttrSessionKey},
	})
	if err != nil {
		return "", s.fail(ctx, s.log.With("op", "session_key"), "get session key", err)
	}
	var u struct {
		SessionKey string `dynamodbav:"session_key"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &u); err != nil {
		return "", fmt.Errorf("dynamostore: get session key: malformed user item: %w", err)
	}
	if u.SessionKey == "" {
		return "", session.ErrNotFound
	}
	return u.SessionKey, nil
}

// batchGet reads up to 100 sessions items (strongly consistent), retrying
// unprocessed keys a bounded number of times.
func (s *Store) batchGet(ctx context.Context, hashes []string) ([]map[string]types.AttributeValue, error) {
	keys := make([]map[string]types.AttributeValue, len(hashes))
	for i, h := range hashes {
		keys[i] = sidKey(h)
	}
	var items []map[string]types.AttributeValue
	for try := 0; ; try++ {
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.sessions: {
				Keys:                     keys,
				ConsistentRead:           aws.Bool(true),
				ProjectionExpression:     aws.String(itemProjection + ", #device, #ip"),
				ExpressionAttributeNames: withNames(itemProjectionNames, "#device", AttrDevice, "#ip", AttrSourceIP),
			}},
		})
		if err != nil {
			return nil, err
		}
		items = append(items, out.Responses[s.sessions]...)
		left := out.UnprocessedKeys[s.sessions].Keys
		if len(left) == 0 {
			return items, nil
		}
		if try == unprocessedRetries {
			return nil, fmt.Errorf("%d reads still unprocessed after %d retries: %w", len(left), unprocessedRetries, dynamoclient.ErrThrottled)
		}
		keys = left
		if err := unprocessedBackoff.Wait(ctx, try+1); err != nil {
			return nil, err
		}
	}
}

func withNames(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func numAV(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func strAV(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func userKey(user string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrUser: strAV(user)}
}

func derefDevice(d *session.Device) session.Device {
	if d == nil {
		return session.Device{}
	}
	return *d
}
