package dynamostore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/backoff"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/session"
)

// ErrIncomplete reports that EndUserSessions ran out of time before the
// user index had nothing left; what it ended stays ended, and calling it
// again goes on.
var ErrIncomplete = errors.New("dynamostore: not every session could be ended in time")

// ErrInvalidCursor reports a ListSessions cursor that this store did not
// hand out for this user.
var ErrInvalidCursor = errors.New("dynamostore: invalid cursor")

// indexLagBackoff separates EndUserSessions' looks at the index while
// entries of sessions it ended linger there.
var indexLagBackoff = backoff.Policy{Base: 20 * time.Millisecond, Cap: 500 * time.Millisecond}

// endMargin is the part of the caller's deadline EndUserSessions keeps for
// answering.
const endMargin = 300 * time.Millisecond

// tombstone is the whole item that replaces an ended session: its key, the
// reason, when, and when it may be purged. It has no user key, so the user
// index drops it. These four attributes are all the api function's IAM
// policy lets it write to the sessions table, so it cannot make a session.
//
// purge_at is ended_at + TombstoneRetention + a random part of up to a day
// (tombstoneJitter): with the reason and ended_at it tells this write from
// any other end of the session, so that a conditional tombstone whose
// answer was lost recognises itself in what the SDK's retry finds
// (ownTombstone; docs/design.md §3.10).
func tombstone(hash string, reason session.Reason, now time.Time) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrSID:         strAV(hash),
		AttrEndedReason: strAV(string(reason)),
		AttrEndedAt:     numAV(now.Unix()),
		AttrPurgeAt:     numAV(now.Add(session.TombstoneRetention).Unix() + rand.Int64N(tombstoneJitter)),
	}
}

// tombstoneJitter bounds the random part of a tombstone's purge_at, in
// seconds: a tombstone is kept at least TombstoneRetention, at most a day
// longer.
const tombstoneJitter = 24 * 60 * 60

// ownTombstone reports whether the item at hash is the tombstone ts, read
// after ts's conditional put failed its condition: then the put was
// applied and its answer lost, and the SDK's retry found its own work. A
// different end of the session (another reason, another second, another
// random purge_at) is not ours.
func (s *Store) ownTombstone(ctx context.Context, hash string, ts map[string]types.AttributeValue) (bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.sessions),
		Key:                      sidKey(hash),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#ended, #endedat, #purge, #user, #claim"),
		ExpressionAttributeNames: map[string]string{"#ended": AttrEndedReason, "#endedat": AttrEndedAt, "#purge": AttrPurgeAt, "#user": AttrUser, "#claim": AttrClaim},
	})
	if err != nil {
		return false, err
	}
	same := func(name string) bool {
		a, ok1 := out.Item[name].(*types.AttributeValueMemberN)
		b, ok2 := ts[name].(*types.AttributeValueMemberN)
		return ok1 && ok2 && a.Value == b.Value
	}
	reason, _ := out.Item[AttrEndedReason].(*types.AttributeValueMemberS)
	want, _ := ts[AttrEndedReason].(*types.AttributeValueMemberS)
	_, user := out.Item[AttrUser]
	_, claim := out.Item[AttrClaim]
	return reason != nil && want != nil && reason.Value == want.Value && same(AttrEndedAt) && same(AttrPurgeAt) && !user && !claim, nil
}

// EndSession ends the session stored under hash with reason (one of
// session.Reasons that Stored() allows): one conditional PutItem replaces
// the item with its tombstone, atomically, so the very next request with
// the id is refused. ended is false when there was nothing to end (no
// such item, or already a tombstone: the first reason stays). A login
// claim is ended too, so a login still under way cannot bring it to life.
func (s *Store) EndSession(ctx context.Context, hash string, reason session.Reason) (ended bool, err error) {
	if !reason.Stored() {
		return false, fmt.Errorf("dynamostore: end session: reason %q cannot be stored", reason)
	}
	if len(hash) != hashLength {
		return false, nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	return s.endOne(ctx, hash, reason)
}

func (s *Store) endOne(ctx context.Context, hash string, reason session.Reason) (bool, error) {
	ended, _, err := s.endItem(ctx, hash, reason, false)
	return ended, err
}

// endItem puts hash's tombstone, conditional on an item that has not ended
// (the first reason stays). With returning, the item it replaced comes
// back and wasClaim reports a login claim or failure marker. A failed
// condition is checked against the tombstone itself: when the put was
// applied but its answer lost, the SDK's retry fails the condition on our
// own tombstone, and the session was ended by us (wasClaim is then
// unknown and reported true, so that Issue looks for the device's orphans:
// one Query, only in this case).
func (s *Store) endItem(ctx context.Context, hash string, reason session.Reason, returning bool) (ended, wasClaim bool, err error) {
	ts := tombstone(hash, reason, s.now())
	in := &dynamodb.PutItemInput{
		TableName:                aws.String(s.sessions),
		Item:                     ts,
		ConditionExpression:      aws.String("attribute_exists(#sid) AND attribute_not_exists(#ended)"),
		ExpressionAttributeNames: map[string]string{"#sid": AttrSID, "#ended": AttrEndedReason},
	}
	if returning {
		in.ReturnValues = types.ReturnValueAllOld
	}
	log := s.log.With("op", "end", "reason", string(reason))
	out, err := s.db.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		own, gerr := s.ownTombstone(ctx, hash, ts)
		if gerr != nil {
			return false, false, s.fail(ctx, log, "end session: read back", gerr)
		}
		if own {
			log.InfoContext(ctx, "tombstone applied although its answer was lost")
		}
		return own, own && returning, nil
	}
	if err != nil {
		return false, false, s.fail(ctx, log, "end session", err)
	}
	log.DebugContext(ctx, "session ended")
	if returning {
		_, claim := out.Attributes[AttrClaim]
		_, failed := out.Attributes[AttrFailed]
		wasClaim = claim || failed
	}
	return true, wasClaim, nil
}

// EndUserSessions ends every session of user (a user key) with reason and
// returns how many it ended. It queries the user index page by page and
// writes tombstones with BatchWriteItem (25 a request), again and again
// until the index has nothing left: tombstones leave the index, so the
// loop ends, and a session created meanwhile is ended too. The session
// last (a hash, may be "") is ended only after every other one: POST
// /logout?scope=all keeps the caller's session until the end, so that a
// call that runs out of time can be repeated with it.
//
// It stops when ctx is within 300 ms of its deadline and returns the count
// with ErrIncomplete; what it ended stays ended. Without a deadline it
// runs to the end. The index is eventually consistent on AWS: sids already
// ended may be listed again for a moment; they are not counted twice.
func (s *Store) EndUserSessions(ctx context.Context, user string, reason session.Reason, last string) (int, error) {
	if user == "" {
		return 0, errors.New("dynamostore: end user sessions: empty user")
	}
	if !reason.Stored() {
		return 0, fmt.Errorf("dynamostore: end user sessions: reason %q cannot be stored", reason)
	}
	log := s.log.With("op", "end_all", "reason", string(reason))
	work := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, dl.Add(-endMargin))
		defer cancel()
	}
	seen := map[string]bool{}
	ended := 0
	sawLast := false
	for round := 1; ; round++ {
		fresh := 0
		err := s.eachIndexPage(work, user, 0, func(keys []indexKey) error {
			var batch []string
			for _, k := range keys {
				switch {
				case k.sid == last:
					sawLast = true
				case !seen[k.sid]:
					seen[k.sid] = true
					batch = append(batch, k.sid)
				}
			}
			fresh += len(batch)
			for start := 0; start < len(batch); start += batchWriteSize {
				n, err := s.batchTombstones(work, batch[start:min(start+batchWriteSize, len(batch))], reason)
				ended += n
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			if work.Err() != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "ending a user's sessions ran out of time", "ended", ended)
				return ended, ErrIncomplete
			}
			return ended, s.fail(ctx, log.With("ended", ended), "end user sessions", err)
		}
		if fresh == 0 {
			break
		}
		// Index entries of what was just ended may linger (GSIs are
		// eventually consistent); look again until only those remain.
		if err := indexLagBackoff.Wait(work, round); err != nil {
			return ended, ErrIncomplete
		}
	}
	if last != "" && sawLast {
		lctx, cancel := s.opContext(work)
		ok, err := s.endOne(lctx, last, reason)
		cancel()
		if err != nil {
			if work.Err() != nil && ctx.Err() == nil {
				return ended, ErrIncomplete
			}
			return ended, err
		}
		if ok {
			ended++
		}
	}
	log.DebugContext(ctx, "user's sessions ended", "count", ended)
	return ended, nil
}

// batchTombstones writes tombstones for up to 25 sessions, retrying
// unprocessed items a bounded number of times; it returns how many were
// written.
func (s *Store) batchTombstones(ctx context.Context, hashes []string, reason session.Reason) (int, error) {
	now := s.now()
	reqs := make([]types.WriteRequest, len(hashes))
	for i, h := range hashes {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: tombstone(h, reason, now)}}
	}
	for try := 0; ; try++ {
		bctx, cancel := s.opContext(ctx)
		out, err := s.db.BatchWriteItem(bctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.sessions: reqs},
		})
		cancel()
		if err != nil {
			return len(hashes) - len(reqs), err
		}
		left := out.UnprocessedItems[s.sessions]
		if len(left) == 0 {
			return len(hashes), nil
		}
		if try == unprocessedRetries {
			return len(hashes) - len(left), fmt.Errorf("%d tombstones still unprocessed after %d retries: %w", len(left), unprocessedRetries, dynamoclient.ErrThrottled)
		}
		reqs = left
		if err := unprocessedBackoff.Wait(ctx, try+1); err != nil {
			return len(hashes) - len(reqs), err
		}
	}
}

// indexKey is one entry of the user index.
type indexKey struct {
	sid        string
	createdSID string // the sort key
}

// createdSID is the user index's sort key of a session created at us
// (microseconds): 16 digits, "#", the sid.
func createdSID(us int64, sid string) string { return fmt.Sprintf("%016d#%s", us, sid) }

// eachIndexPage calls fn with each page of user's index entries, newest
// first, starting after start (zero: from the top). limit caps the page
// size (0: DynamoDB's 1 MB pages, or the test page size).
func (s *Store) eachIndexPage(ctx context.Context, user string, limit int32, fn func([]indexKey) error) error {
	_, err := s.indexPages(ctx, user, indexKey{}, limit, 0, fn)
	return err
}

// indexPages queries the user index from start, at most maxPages pages
// (0: all), and returns where it stopped (zero when the index is
// exhausted).
func (s *Store) indexPages(ctx context.Context, user string, start indexKey, limit int32, maxPages int, fn func([]indexKey) error) (indexKey, error) {
	if limit == 0 && s.pageSize > 0 {
		limit = s.pageSize
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.sessions),
		IndexName:                 aws.String(s.index),
		KeyConditionExpression:    aws.String("#user = :user"),
		ExpressionAttributeNames:  map[string]string{"#user": AttrUser},
		ExpressionAttributeValues: map[string]types.AttributeValue{":user": strAV(user)},
		ScanIndexForward:          aws.Bool(false),
	}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	if start.sid != "" {
		in.ExclusiveStartKey = map[string]types.AttributeValue{
			AttrSID: strAV(start.sid), AttrUser: strAV(user), AttrCreatedSID: strAV(start.createdSID),
		}
	}
	for pages := 0; maxPages == 0 || pages < maxPages; pages++ {
		qctx, cancel := s.opContext(ctx)
		out, err := s.db.Query(qctx, in)
		cancel()
		if err != nil {
			return indexKey{}, err
		}
		keys := make([]indexKey, 0, len(out.Items))
		for _, av := range out.Items {
			k, err := decodeIndexKey(av)
			if err != nil {
				return indexKey{}, err
			}
			keys = append(keys, k)
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return indexKey{}, err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return indexKey{}, nil
		}
		next, err := decodeIndexKey(out.LastEvaluatedKey)
		if err != nil {
			return indexKey{}, err
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		start = next
	}
	return start, nil
}

func decodeIndexKey(av map[string]types.AttributeValue) (indexKey, error) {
	sid, ok := av[AttrSID].(*types.AttributeValueMemberS)
	if !ok || sid.Value == "" {
		return indexKey{}, errors.New("malformed index item: no sid")
	}
	k := indexKey{sid: sid.Value}
	if c, ok := av[AttrCreatedSID].(*types.AttributeValueMemberS); ok {
		k.createdSID = c.Value
	}
	return k, nil
}

// Page sizes of ListSessions.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// ListSessions returns one page of user's active sessions, newest first,
// and the cursor of the next page ("" after the last). limit is clamped to
// 1..MaxListLimit (0 means DefaultListLimit); cursor is "" for the first
// page or a value ListSessions returned for this user (ErrInvalidCursor
// otherwise). Each page costs one Query of the user index and one
// strongly consistent BatchGetItem; entries that are no longer active
// (ended a moment ago, past a clock) are left out, so a page may hold
// fewer than limit sessions and still have a next one.
func (s *Store) ListSessions(ctx context.Context, user, cursor string, limit int) ([]session.Session, string, error) {
	if user == "" {
		return nil, "", errors.New("dynamostore: list sessions: empty user")
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	start, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	log := s.log.With("op", "list")
	var hashes []string
	next, err := s.indexPages(ctx, user, start, int32(limit), 1, func(keys []indexKey) error {
		for _, k := range keys {
			hashes = append(hashes, k.sid)
		}
		return nil
	})
	if err != nil {
		var apiErr interface{ ErrorCode() string }
		if start.sid != "" && errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationException" {
			return nil, "", ErrInvalidCursor
		}
		return nil, "", s.fail(ctx, log, "list sessions", err)
	}
	now := s.now()
	out := make([]session.Session, 0, len(hashes))
	if len(hashes) > 0 {
		items, err := s.batchGet(ctx, hashes)
		if err != nil {
			return nil, "", s.fail(ctx, log, "list sessions", err)
		}
		byHash := make(map[string]session.Session, len(items))
		for _, av := range items {
			it, err := decodeItem(av)
			if err != nil {
				return nil, "", fmt.Errorf("dynamostore: list sessions: %w", err)
			}
			if it.kind() == kindSession && it.User == user {
				if sess := it.session(); sess.Active(now) {
					byHash[it.SID] = sess
				}
			}
		}
		for _, h := range hashes { // keep the index's order
			if sess, ok := byHash[h]; ok {
				out = append(out, sess)
			}
		}
	}
	return out, encodeCursor(next), nil
}

// A cursor is the index sort key of the last entry read
// ("<16-digit µs>#<sid>"), in base64url: where the next page starts in the
// caller's own part of the index. The user is never taken from it, so a
// cursor cannot reach another user's sessions.
func encodeCursor(k indexKey) string {
	if k.sid == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(k.createdSID))
}

func decodeCursor(c string) (indexKey, error) {
	if c == "" {
		return indexKey{}, nil
	}
	if len(c) > 128 {
		return indexKey{}, ErrInvalidCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil {
		return indexKey{}, ErrInvalidCursor
	}
	us, sid, ok := strings.Cut(string(b), "#")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || n <= 0 || len(us) != 16 || !session.ValidID(sid) {
		return indexKey{}, ErrInvalidCursor
	}
	return indexKey{sid: sid, createdSID: string(b)}, nil
}
