// Package dynamostore keeps wxsession's sessions and users in DynamoDB.
//
// Two tables (declared in template.yaml):
//
//   - sessions: one item per login, keyed by sid = session.Hash(id), never
//     the id itself; expires_at is the TTL attribute; the GSI openid-index
//     (KEYS_ONLY) finds a user's sessions for logout-all and listing.
//   - users: one item per openid with the latest session_key, which never
//     leaves the server.
//
// DynamoDB's TTL deletes expired items up to days late, so every read
// compares expires_at with the clock. Errors are mapped to the domain's
// sentinels: session.ErrNotFound (missing, deleted or expired),
// session.ErrCollision, and session.ErrUnavailable for everything that
// means "the store did not answer" (network, timeouts, throttling, server
// errors), so callers can deny or answer 503 with errors.Is.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/backoff"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/session"
)

// DefaultOpTimeout bounds every store operation when Config.OpTimeout is 0.
const DefaultOpTimeout = 3 * time.Second

// createAttempts is how many ids Create draws before it reports
// session.ErrCollision.
const createAttempts = 3

// Batch write retry policy for unprocessed items (DeleteAll).
const (
	batchWriteSize     = 25
	batchGetSize       = 100
	unprocessedRetries = 5
)

// unprocessedBackoff separates the retries of unprocessed batch items.
var unprocessedBackoff = backoff.Policy{Base: 20 * time.Millisecond, Cap: 320 * time.Millisecond}

// hashLength is the length of session.Hash's output: SHA-256 in base64url
// without padding.
const hashLength = 43

// Config configures a Store.
type Config struct {
	// SessionsTable is the sessions table (required).
	SessionsTable string
	// UsersTable is the users table. Only Create and SessionKey use it; a
	// store that only reads or deletes sessions (the authorizer, logout)
	// may leave it empty, and those two methods then fail with
	// ErrNoUsersTable.
	UsersTable string
	// OpenIDIndex is the sessions table's GSI on openid; "" means
	// DefaultOpenIDIndex.
	OpenIDIndex string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OpTimeout bounds each operation as a whole (all its requests and
	// retries); 0 means DefaultOpTimeout.
	OpTimeout time.Duration
	// Logger receives DEBUG and WARN events (openids masked, never ids or
	// session keys); nil means slog.Default().
	Logger *slog.Logger
	// NewID draws session ids; nil means session.NewID. Tests inject a
	// deterministic source to exercise the collision path. Ids it returns
	// must pass session.ValidID.
	NewID func() (string, error)
}

// Store is the DynamoDB session and user store. It is safe for concurrent
// use.
type Store struct {
	db       *dynamodb.Client
	sessions string
	users    string
	index    string
	now      func() time.Time
	timeout  time.Duration
	log      *slog.Logger
	newID    func() (string, error)
	// pageSize limits GSI query pages (0 = DynamoDB's 1 MB pages); tests
	// set it to exercise pagination.
	pageSize int32
}

// ErrNoUsersTable reports a Create or SessionKey call on a store built
// without a users table.
var ErrNoUsersTable = errors.New("dynamostore: no users table configured")

// validName reports whether s is a valid DynamoDB table or index name: 3-255
// characters of [A-Za-z0-9_.-]. A byte loop, not a regexp: a {3,255}
// repetition compiled at package init cost every cold start about 1 ms.
func validName(s string) bool {
	if len(s) < 3 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// New returns a Store using client. It validates the table and index names
// but does no I/O.
func New(client *dynamodb.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("dynamostore: nil DynamoDB client")
	}
	if !validName(cfg.SessionsTable) {
		return nil, fmt.Errorf("dynamostore: invalid sessions table name %q (3-255 characters of [A-Za-z0-9_.-])", cfg.SessionsTable)
	}
	if cfg.UsersTable != "" && !validName(cfg.UsersTable) {
		return nil, fmt.Errorf("dynamostore: invalid users table name %q (3-255 characters of [A-Za-z0-9_.-])", cfg.UsersTable)
	}
	if cfg.SessionsTable == cfg.UsersTable {
		return nil, fmt.Errorf("dynamostore: sessions and users tables must differ (both %q)", cfg.SessionsTable)
	}
	s := &Store{
		db:       client,
		sessions: cfg.SessionsTable,
		users:    cfg.UsersTable,
		index:    cfg.OpenIDIndex,
		now:      cfg.Now,
		timeout:  cfg.OpTimeout,
		log:      cfg.Logger,
		newID:    cfg.NewID,
	}
	if s.index == "" {
		s.index = DefaultOpenIDIndex
	} else if !validName(s.index) {
		return nil, fmt.Errorf("dynamostore: invalid index name %q", s.index)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout < 0 {
		return nil, errors.New("dynamostore: negative OpTimeout")
	}
	if s.timeout == 0 {
		s.timeout = DefaultOpTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.newID == nil {
		s.newID = session.NewID
	}
	return s, nil
}

// sessionItem is a sessions table item.
type sessionItem struct {
	SID       string `dynamodbav:"sid"`
	OpenID    string `dynamodbav:"openid"`
	UnionID   string `dynamodbav:"unionid,omitempty"`
	AppID     string `dynamodbav:"appid"`
	CreatedAt int64  `dynamodbav:"created_at"`
	ExpiresAt int64  `dynamodbav:"expires_at"`
}

// sessionProjection names exactly the attributes sessionItem decodes.
const sessionProjection = "#sid, #openid, #unionid, #appid, #created, #expires"

var sessionProjectionNames = map[string]string{
	"#sid":     AttrSID,
	"#openid":  AttrOpenID,
	"#unionid": AttrUnionID,
	"#appid":   AttrAppID,
	"#created": AttrCreatedAt,
	"#expires": AttrExpiresAt,
}

func (it sessionItem) session() session.Session {
	return session.Session{
		Hash:      it.SID,
		OpenID:    it.OpenID,
		UnionID:   it.UnionID,
		AppID:     it.AppID,
		CreatedAt: time.Unix(it.CreatedAt, 0).UTC(),
		ExpiresAt: time.Unix(it.ExpiresAt, 0).UTC(),
	}
}

// decodeSession unmarshals and checks a sessions item.
func decodeSession(av map[string]types.AttributeValue) (sessionItem, error) {
	var it sessionItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return sessionItem{}, fmt.Errorf("malformed session item: %w", err)
	}
	switch {
	case it.SID == "":
		return sessionItem{}, errors.New("malformed session item: no sid")
	case it.OpenID == "":
		return sessionItem{}, errors.New("malformed session item: no openid")
	case it.ExpiresAt <= 0:
		return sessionItem{}, errors.New("malformed session item: no expires_at")
	}
	return it, nil
}

func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Create records a login: it upserts the user (latest session_key, unionid,
// appid, last_login_at; created_at on first login) and then writes a new
// session item under the hash of a freshly drawn id, valid for ttl. It
// returns the raw id (to hand to the client, once) and the stored session.
//
// DynamoDB transactions are not used (dynalite lacks them, and they double
// the cost), so the order is the invariant: the user is written first, so
// there is never a session without its user record. A failure after the
// user write leaves an updated user and no session; the login fails and the
// client retries. The session is written with attribute_not_exists(sid); on
// a conflict a new id is drawn, at most 3 times, then session.ErrCollision.
// (A conflict can also be the SDK's retry of a PutItem that did succeed;
// the retry with a new id then leaves one orphaned item that nobody holds
// the id of, and TTL removes it.)
func (s *Store) Create(ctx context.Context, appID string, id session.Identity, ttl time.Duration) (string, session.Session, error) {
	switch {
	case s.users == "":
		return "", session.Session{}, fmt.Errorf("dynamostore: create session: %w", ErrNoUsersTable)
	case id.OpenID == "":
		return "", session.Session{}, errors.New("dynamostore: create session: empty openid")
	case appID == "":
		return "", session.Session{}, errors.New("dynamostore: create session: empty appid")
	case ttl < time.Second:
		return "", session.Session{}, fmt.Errorf("dynamostore: create session: ttl %s is under 1s", ttl)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	log := s.log.With("op", "create", "openid", session.MaskOpenID(id.OpenID))

	now := s.now().Unix()
	if err := s.upsertUser(ctx, appID, id, now); err != nil {
		return "", session.Session{}, s.fail(ctx, log, "create session: upsert user", err)
	}

	it := sessionItem{
		OpenID:    id.OpenID,
		UnionID:   id.UnionID,
		AppID:     appID,
		CreatedAt: now,
		ExpiresAt: now + int64(ttl/time.Second),
	}
	for attempt := 1; attempt <= createAttempts; attempt++ {
		raw, err := s.newID()
		if err != nil {
			return "", session.Session{}, fmt.Errorf("dynamostore: create session: %w", err)
		}
		if !session.ValidID(raw) {
			return "", session.Session{}, errors.New("dynamostore: create session: id source returned a malformed id")
		}
		it.SID = session.Hash(raw)
		av, err := attributevalue.MarshalMap(it)
		if err != nil {
			return "", session.Session{}, fmt.Errorf("dynamostore: create session: marshal: %w", err)
		}
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                aws.String(s.sessions),
			Item:                     av,
			ConditionExpression:      aws.String("attribute_not_exists(#sid)"),
			ExpressionAttributeNames: map[string]string{"#sid": AttrSID},
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			log.WarnContext(ctx, "session id collision, drawing a new id", "attempt", attempt)
			continue
		}
		if err != nil {
			return "", session.Session{}, s.fail(ctx, log, "create session: put session", err)
		}
		sess := it.session()
		log.DebugContext(ctx, "session created", "expires_at", sess.ExpiresAt)
		return raw, sess, nil
	}
	log.WarnContext(ctx, "session id collision on every attempt; is the random source broken?", "attempts", createAttempts)
	return "", session.Session{}, fmt.Errorf("dynamostore: create session after %d attempts: %w", createAttempts, session.ErrCollision)
}

// upsertUser writes the user's login data. unionid is only set when WeChat
// returned one (a later login without it keeps the known value), and
// session_key only when non-empty.
func (s *Store) upsertUser(ctx context.Context, appID string, id session.Identity, now int64) error {
	nowAV := &types.AttributeValueMemberN{Value: fmt.Sprint(now)}
	expr := "SET #appid = :appid, #last = :now, #created = if_not_exists(#created, :now)"
	names := map[string]string{"#appid": AttrAppID, "#last": AttrLastLoginAt, "#created": AttrCreatedAt}
	values := map[string]types.AttributeValue{
		":appid": &types.AttributeValueMemberS{Value: appID},
		":now":   nowAV,
	}
	if id.SessionKey != "" {
		expr += ", #sk = :sk"
		names["#sk"] = AttrSessionKey
		values[":sk"] = &types.AttributeValueMemberS{Value: id.SessionKey}
	}
	if id.UnionID != "" {
		expr += ", #unionid = :unionid"
		names["#unionid"] = AttrUnionID
		values[":unionid"] = &types.AttributeValueMemberS{Value: id.UnionID}
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.users),
		Key:                       map[string]types.AttributeValue{AttrOpenID: &types.AttributeValueMemberS{Value: id.OpenID}},
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	return err
}

// Get returns the session stored under hash (session.Hash of the client's
// id) with one GetItem. It returns session.ErrNotFound when the item is
// missing or expired (expires_at <= now, even if TTL has not removed it
// yet); hashes that cannot be ours (wrong length) are rejected without I/O.
//
// The read is strongly consistent: an eventually consistent read can miss
// an item written a moment ago, and the first authorized request follows
// the login immediately; a false denial there would log the user out. It
// costs one read unit instead of half of one.
func (s *Store) Get(ctx context.Context, hash string) (session.Session, error) {
	if len(hash) != hashLength {
		return session.Session{}, session.ErrNotFound
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.sessions),
		Key:                      sidKey(hash),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String(sessionProjection),
		ExpressionAttributeNames: sessionProjectionNames,
	})
	if err != nil {
		return session.Session{}, s.fail(ctx, s.log.With("op", "get"), "get session", err)
	}
	if len(out.Item) == 0 {
		s.log.DebugContext(ctx, "session not found", "op", "get")
		return session.Session{}, session.ErrNotFound
	}
	it, err := decodeSession(out.Item)
	if err != nil {
		s.log.ErrorContext(ctx, "malformed session item", "op", "get", "err", err)
		return session.Session{}, fmt.Errorf("dynamostore: get session: %w", err)
	}
	if it.SID != hash {
		return session.Session{}, errors.New("dynamostore: get session: item key does not match the requested hash")
	}
	sess := it.session()
	if sess.Expired(s.now()) {
		s.log.DebugContext(ctx, "session expired", "op", "get", "openid", session.MaskOpenID(sess.OpenID))
		return session.Session{}, session.ErrNotFound
	}
	return sess, nil
}

// Delete removes the session stored under hash. Deleting a missing session
// is not an error.
func (s *Store) Delete(ctx context.Context, hash string) error {
	if hash == "" {
		return nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.sessions),
		Key:       sidKey(hash),
	}); err != nil {
		return s.fail(ctx, s.log.With("op", "delete"), "delete session", err)
	}
	s.log.DebugContext(ctx, "session deleted", "op", "delete")
	return nil
}

// DeleteAll removes every session of openid (logout on all devices) and
// returns how many it deleted. It queries the openid GSI page by page and
// deletes each page with BatchWriteItem in chunks of 25, retrying
// unprocessed items with a short bounded backoff.
//
// GSIs are eventually consistent: a session created a fraction of a second
// earlier may not be seen. The whole call is bounded by OpTimeout; on
// failure the sessions deleted so far stay deleted and their count is
// returned with the error.
func (s *Store) DeleteAll(ctx context.Context, openid string) (int, error) {
	if openid == "" {
		return 0, errors.New("dynamostore: delete all sessions: empty openid")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	log := s.log.With("op", "delete_all", "openid", session.MaskOpenID(openid))
	deleted := 0
	err := s.eachHashPage(ctx, openid, func(hashes []string) error {
		for start := 0; start < len(hashes); start += batchWriteSize {
			chunk := hashes[start:min(start+batchWriteSize, len(hashes))]
			n, err := s.batchDelete(ctx, chunk)
			deleted += n
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return deleted, s.fail(ctx, log.With("deleted", deleted), "delete all sessions", err)
	}
	log.DebugContext(ctx, "sessions deleted", "count", deleted)
	return deleted, nil
}

// eachHashPage calls fn with the sids of each page of openid's sessions.
func (s *Store) eachHashPage(ctx context.Context, openid string, fn func([]string) error) error {
	var limit *int32
	if s.pageSize > 0 {
		limit = aws.Int32(s.pageSize)
	}
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		Limit:                     limit,
		TableName:                 aws.String(s.sessions),
		IndexName:                 aws.String(s.index),
		KeyConditionExpression:    aws.String("#openid = :openid"),
		ProjectionExpression:      aws.String("#sid"),
		ExpressionAttributeNames:  map[string]string{"#openid": AttrOpenID, "#sid": AttrSID},
		ExpressionAttributeValues: map[string]types.AttributeValue{":openid": &types.AttributeValueMemberS{Value: openid}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		hashes := make([]string, 0, len(page.Items))
		for _, item := range page.Items {
			sid, ok := item[AttrSID].(*types.AttributeValueMemberS)
			if !ok || sid.Value == "" {
				return errors.New("malformed index item: no sid")
			}
			hashes = append(hashes, sid.Value)
		}
		if len(hashes) > 0 {
			if err := fn(hashes); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchDelete deletes up to 25 sessions, retrying unprocessed items a
// bounded number of times. It returns how many deletes were processed.
func (s *Store) batchDelete(ctx context.Context, hashes []string) (int, error) {
	reqs := make([]types.WriteRequest, len(hashes))
	for i, h := range hashes {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: sidKey(h)}}
	}
	for try := 0; ; try++ {
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.sessions: reqs},
		})
		if err != nil {
			return len(hashes) - len(reqs), err
		}
		left := out.UnprocessedItems[s.sessions]
		if len(left) == 0 {
			return len(hashes), nil
		}
		if try == unprocessedRetries {
			return len(hashes) - len(left), fmt.Errorf("%d deletes still unprocessed after %d retries: %w", len(left), unprocessedRetries, dynamoclient.ErrThrottled)
		}
		reqs = left
		if err := unprocessedBackoff.Wait(ctx, try+1); err != nil {
			return len(hashes) - len(reqs), err
		}
	}
}

// SessionKey returns the user's latest WeChat session_key, for server-side
// decryption of encryptedData. It returns session.ErrNotFound when the user
// is unknown or has none. Never log or return the result to a client.
func (s *Store) SessionKey(ctx context.Context, openid string) (string, error) {
	if s.users == "" {
		return "", fmt.Errorf("dynamostore: session key: %w", ErrNoUsersTable)
	}
	if openid == "" {
		return "", session.ErrNotFound
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.users),
		Key:                      map[string]types.AttributeValue{AttrOpenID: &types.AttributeValueMemberS{Value: openid}},
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#sk"),
		ExpressionAttributeNames: map[string]string{"#sk": AttrSessionKey},
	})
	if err != nil {
		return "", s.fail(ctx, s.log.With("op", "session_key", "openid", session.MaskOpenID(openid)), "get session key", err)
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

// List returns the user's active (unexpired) sessions, newest first: a
// query on the openid GSI, then BatchGetItem (strongly consistent) for the
// attributes, since the index projects keys only.
func (s *Store) List(ctx context.Context, openid string) ([]session.Session, error) {
	if openid == "" {
		return nil, errors.New("dynamostore: list sessions: empty openid")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	log := s.log.With("op", "list", "openid", session.MaskOpenID(openid))
	var hashes []string
	if err := s.eachHashPage(ctx, openid, func(h []string) error {
		hashes = append(hashes, h...)
		return nil
	}); err != nil {
		return nil, s.fail(ctx, log, "list sessions", err)
	}
	now := s.now()
	var out []session.Session
	for start := 0; start < len(hashes); start += batchGetSize {
		items, err := s.batchGet(ctx, hashes[start:min(start+batchGetSize, len(hashes))])
		if err != nil {
			return nil, s.fail(ctx, log, "list sessions", err)
		}
		for _, av := range items {
			it, err := decodeSession(av)
			if err != nil {
				return nil, fmt.Errorf("dynamostore: list sessions: %w", err)
			}
			if sess := it.session(); !sess.Expired(now) && sess.OpenID == openid {
				out = append(out, sess)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].Hash < out[j].Hash
	})
	return out, nil
}

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
				ProjectionExpression:     aws.String(sessionProjection),
				ExpressionAttributeNames: sessionProjectionNames,
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

func sidKey(hash string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrSID: &types.AttributeValueMemberS{Value: hash}}
}

// fail maps a store error: session.ErrUnavailable (wrapped) when the store
// did not answer, a plain wrapped error otherwise (misconfiguration such as
// a missing table or denied access, or a bug), and logs it with ctx (so the
// line carries the Lambda request id).
func (s *Store) fail(ctx context.Context, log *slog.Logger, what string, err error) error {
	if dynamoclient.Unavailable(err) {
		log.WarnContext(ctx, "session store unavailable", "err", err)
	} else {
		log.ErrorContext(ctx, "session store request failed", "err", err, "alert", true)
	}
	return dynamoclient.Wrap("dynamostore: "+what, err)
}
