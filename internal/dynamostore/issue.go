package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/backoff"
	"github.com/wxsession/wxsession/session"
)

// CodeWindow is how long WeChat honours a wx.login() code, and so how long
// a duplicate of a code gets the session its first exchange made.
const CodeWindow = 5 * time.Minute

// claimPurge is how long a claim item is kept (it becomes the session when
// the exchange succeeds).
const claimPurge = 10 * time.Minute

// claimBackoff separates a duplicate's reads of a pending claim.
var claimBackoff = backoff.Policy{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond}

// claimAbandoned is the age after which a claim that never became a
// session is taken as abandoned (its login crashed): well over the login
// function's timeout.
const claimAbandoned = 30 * time.Second

// Claim outcomes other than ownership.
var (
	// ErrDeviceMismatch: a duplicate of a code arrived with another
	// device_id than the first one.
	ErrDeviceMismatch = errors.New("dynamostore: the code was already used from another device")
	// ErrCodeSpent: the code's session has ended, its window has passed,
	// or its first login was abandoned; the client needs a new code.
	ErrCodeSpent = errors.New("dynamostore: the code was already used")
	// ErrClaimPending: the first login with this code was still under way
	// when the caller's deadline came.
	ErrClaimPending = errors.New("dynamostore: a login with this code is still under way")
	// ErrTooManySessions: SESSION_OVERFLOW=reject_new and the user has
	// SESSION_MAX_PER_USER active sessions.
	ErrTooManySessions = errors.New("dynamostore: the user has too many sessions")
	// ErrSuperseded: a concurrent login (same device, or an exclusive
	// mode) ended this login's session before it was written.
	ErrSuperseded = errors.New("dynamostore: a newer login replaced this one")
)

// FailedError is a duplicate's view of a code whose first exchange failed
// for good: Code is the error code the first login answered.
type FailedError struct{ Code string }

func (e *FailedError) Error() string { return "dynamostore: the code's login failed: " + e.Code }

// Claim is the result of Store.Claim.
type Claim struct {
	// Token is set when the caller owns the claim: it must exchange the
	// code, then Issue or Release.
	Token string
	// Existing is the session a previous exchange of the same code made
	// (Token is then "").
	Existing session.Session
	hash     string
}

// Claim makes the exchange of a code idempotent (docs/design.md §3). hash
// is session.Hash(session.IDFromCode(...)): the sid the code's session
// will have. One conditional PutItem creates a claim item there; the
// caller who creates it owns the exchange. Anyone else finds the item and
// gets, after one GetItem:
//
//   - the session, if it was issued with the same deviceID and within
//     CodeWindow of the claim (Existing);
//   - ErrDeviceMismatch for another device id;
//   - *FailedError with the first login's error code;
//   - ErrCodeSpent when the session has ended, the window has passed or
//     the claim was abandoned;
//   - while the claim is pending, it reads again (backing off) until one
//     of the above, the claim disappears (the first exchange failed in a
//     way that may be retried: Claim starts over), or ctx is done
//     (ErrClaimPending).
func (s *Store) Claim(ctx context.Context, hash, deviceID string) (Claim, error) {
	if len(hash) != hashLength {
		return Claim{}, errors.New("dynamostore: claim: malformed hash")
	}
	token, err := s.newToken()
	if err != nil {
		return Claim{}, fmt.Errorf("dynamostore: claim: %w", err)
	}
	for {
		ok, err := s.putClaim(ctx, hash, token, deviceID)
		if err != nil {
			return Claim{}, err
		}
		if ok {
			return Claim{Token: token, hash: hash}, nil
		}
		for try := 1; ; try++ {
			c, done, err := s.readClaim(ctx, hash, token, deviceID)
			if err != nil && ctx.Err() != nil {
				return Claim{}, ErrClaimPending // the caller's time ran out while it waited
			}
			if done || err != nil {
				return c, err
			}
			if c.hash == "" { // gone: the first exchange gave up, try to own it
				break
			}
			if err := claimBackoff.Wait(ctx, try); err != nil {
				return Claim{}, ErrClaimPending
			}
		}
	}
}

func (s *Store) putClaim(ctx context.Context, hash, token, deviceID string) (bool, error) {
	octx, cancel := s.opContext(ctx)
	defer cancel()
	now := s.now()
	it := map[string]types.AttributeValue{
		AttrSID:       strAV(hash),
		AttrClaim:     strAV(token),
		AttrClaimedAt: numAV(now.UnixMilli()),
		AttrPurgeAt:   numAV(now.Add(claimPurge).Unix()),
	}
	if deviceID != "" {
		it[AttrDeviceID] = strAV(deviceID)
	}
	_, err := s.db.PutItem(octx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.sessions),
		Item:                     it,
		ConditionExpression:      aws.String("attribute_not_exists(#sid)"),
		ExpressionAttributeNames: map[string]string{"#sid": AttrSID},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, s.fail(octx, s.log.With("op", "claim"), "claim code", err)
	}
	return true, nil
}

// readClaim reads the item at hash for a duplicate. done reports a final
// answer (Claim or error); otherwise c.hash is "" when the item is gone
// and hash while the claim is pending. A claim that carries token is the
// caller's own: its PutItem landed but the answer was lost, and the SDK's
// retry of it failed the condition on the item the first attempt wrote.
func (s *Store) readClaim(ctx context.Context, hash, token, deviceID string) (c Claim, done bool, err error) {
	octx, cancel := s.opContext(ctx)
	defer cancel()
	it, ok, err := s.getItem(octx, "claim", hash)
	if err != nil {
		return Claim{}, true, err
	}
	if !ok {
		return Claim{}, false, nil
	}
	if it.kind() == kindClaim && it.Claim == token {
		return Claim{Token: token, hash: hash}, true, nil
	}
	now := s.now()
	if (it.kind() == kindSession || it.kind() == kindClaim) && it.DeviceID != deviceID {
		return Claim{}, true, ErrDeviceMismatch
	}
	switch it.kind() {
	case kindTombstone:
		return Claim{}, true, ErrCodeSpent
	case kindFailed:
		return Claim{}, true, &FailedError{Code: it.Failed}
	case kindClaim:
		if now.Sub(time.UnixMilli(it.ClaimedAt)) > claimAbandoned {
			return Claim{}, true, ErrCodeSpent
		}
		return Claim{hash: hash}, false, nil
	}
	sess := it.session()
	if now.Sub(sess.CreatedAt) > CodeWindow || !sess.Active(now) {
		return Claim{}, true, ErrCodeSpent
	}
	return Claim{Existing: sess}, true, nil
}

// Release gives up an owned claim after a failed exchange. failure "" means
// the failure may be retried with the same code (WeChat or the store was
// unavailable): the claim is deleted, and a duplicate may own it next.
// Otherwise the claim keeps failure (an error code) for CodeWindow, and
// duplicates answer the same. Release is best effort: an error is only
// logged (the claim then stays pending until it is abandoned).
func (s *Store) Release(ctx context.Context, c Claim, failure string) {
	if c.Token == "" {
		return
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	cond := aws.String("#claim = :token")
	names := map[string]string{"#claim": AttrClaim}
	values := map[string]types.AttributeValue{":token": strAV(c.Token)}
	var err error
	if failure == "" {
		_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(s.sessions), Key: sidKey(c.hash),
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
	} else {
		now := s.now()
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.sessions),
			Item: map[string]types.AttributeValue{
				AttrSID: strAV(c.hash), AttrFailed: strAV(failure),
				AttrClaimedAt: numAV(now.UnixMilli()), AttrPurgeAt: numAV(now.Add(claimPurge).Unix()),
			},
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
	}
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		_ = s.fail(ctx, s.log.With("op", "release"), "release claim", err)
	}
}

// Overflow is what a login does when the user already has
// Policy.MaxPerUser active sessions.
type Overflow string

// Overflow policies (SESSION_OVERFLOW).
const (
	EvictOldest Overflow = "evict_oldest"
	RejectNew   Overflow = "reject_new"
)

// Exclusive is SESSION_EXCLUSIVE: which other sessions a login ends.
type Exclusive string

// Exclusivity modes.
const (
	ExclusiveNone     Exclusive = "none"
	ExclusivePlatform Exclusive = "platform"
	ExclusiveAll      Exclusive = "all"
)

// Policy is the session model's configuration (docs/design.md §3).
type Policy struct {
	// TTL is the absolute lifetime (required, ≥ 1 s).
	TTL time.Duration
	// IdleTimeout ends a session unused for that long; 0 is off.
	IdleTimeout time.Duration
	// MaxPerUser caps the user's active sessions; 0 is no cap.
	MaxPerUser int
	// Overflow applies when the cap is reached; "" means EvictOldest.
	Overflow Overflow
	// Exclusive ends the user's other sessions (all of them, or those of
	// the same device.platform); "" means ExclusiveNone.
	Exclusive Exclusive
}

// IssueInput is what Issue needs.
type IssueInput struct {
	// Claim is the caller's owned claim (Claim returned a Token).
	Claim Claim
	// AppID and Identity say who logged in.
	AppID    string
	Identity session.Identity
	// DeviceID (may be ""), Device and SourceIP describe the client.
	DeviceID string
	Device   session.Device
	SourceIP string
	// Presented is the hash of the session the login request carried
	// (Bearer or cookie), "" when none: it is ended (cycle key).
	Presented string
	// Policy is the session model's configuration.
	Policy Policy
}

// Ended names a session that Issue ended.
type Ended struct {
	Hash   string
	Reason session.Reason
}

// slot is one entry of the user's session registry (users table).
type slot struct {
	SID      string `dynamodbav:"sid"`
	At       int64  `dynamodbav:"at"`  // created, microseconds
	Exp      int64  `dynamodbav:"exp"` // expires_at, seconds
	Platform string `dynamodbav:"platform,omitempty"`
	name     string // the attribute name
}

// Issue turns an owned claim into the session (docs/design.md §3). In
// order, each step safe to crash after:
//
//  1. UpdateItem on the user (ReturnValues ALL_OLD): session_key, the
//     unionid when WeChat gave one, last_login_at, and the new session's
//     registry slot, "slot:<device_id>" (or "slot:~<sid>"), replacing the
//     slot of this device's previous session; the slot of a presented
//     session without a device id is removed. The old values give the
//     best-known unionid and the registry as it was, in the order
//     DynamoDB applied the updates, so concurrent logins of a user see
//     each other. A crash here leaves a slot naming a session that never
//     came: slots are an upper bound, checked before they count.
//  2. For reject_new at the cap only: one BatchGetItem checks which
//     registered sessions are really active; over the cap, the slot is
//     put back, the claim fails with "too_many_sessions" and Issue
//     returns ErrTooManySessions.
//  3. Tombstones (conditional PutItem each) for the sessions this login
//     ends: the device's previous one and the presented one (replaced),
//     the exclusive mode's (replaced), and the oldest over the cap
//     (evicted). A crash here leaves them ended and no new session. A
//     failed write (from here on) puts the replaced slots back, so the
//     sessions they name stay registered. A crash between steps 1 and 3
//     leaves the device's previous session unregistered and the slot
//     naming the crashed login's claim: the device's next login, finding a
//     claim where the slot pointed, looks the device's sessions up in the
//     user index (one Query and one BatchGetItem) and ends them.
//  4. PutItem of the session over the claim, conditional on the claim
//     still being ours (a concurrent login of the same device may have
//     ended it: ErrSuperseded).
//  5. Only when slots of ended or dead sessions other than this device's
//     remain: one UpdateItem removes them (each conditional on still
//     naming that session). A crash before leaves stale slots, which the
//     next login skips.
//
// Requests: 2 for a new device under the cap (3 with Claim), 3 for the
// same device (one tombstone; 4 with Claim); each further ended session
// adds a tombstone and the clean-up.
func (s *Store) Issue(ctx context.Context, in IssueInput) (session.Session, []Ended, error) {
	switch {
	case s.users == "":
		return session.Session{}, nil, fmt.Errorf("dynamostore: issue: %w", ErrNoUsersTable)
	case in.Claim.Token == "" || in.Claim.hash == "":
		return session.Session{}, nil, errors.New("dynamostore: issue: no owned claim")
	case in.Identity.OpenID == "" || in.AppID == "":
		return session.Session{}, nil, errors.New("dynamostore: issue: empty openid or appid")
	case in.Policy.TTL < time.Second:
		return session.Session{}, nil, fmt.Errorf("dynamostore: issue: ttl %s is under 1s", in.Policy.TTL)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	log := s.log.With("op", "issue", "openid", session.MaskOpenID(in.Identity.OpenID))
	hash := in.Claim.hash
	user := session.UserKey(in.AppID, in.Identity.OpenID)
	now := s.now()
	nowUS := now.UnixMicro()
	exp := now.Unix() + int64((in.Policy.TTL+time.Second-1)/time.Second)

	own := slot{SID: hash, At: nowUS, Exp: exp, Platform: in.Device.Platform}
	own.name = SlotPrefix + in.DeviceID
	if in.DeviceID == "" {
		own.name = SlotPrefix + "~" + hash
	}
	var presentedSlot string
	if in.Presented != "" && in.Presented != hash {
		presentedSlot = SlotPrefix + "~" + in.Presented
	}

	// 1. The user and the registry.
	old, err := s.updateUser(ctx, in, user, now, own, presentedSlot)
	if banned := (*types.ConditionalCheckFailedException)(nil); errors.As(err, &banned) {
		// Banned (docs/design.md §8.5): nothing was written.
		berr := s.banned(ctx, user, banned)
		if !errors.Is(berr, ErrBanned) {
			return session.Session{}, nil, s.fail(ctx, log, "issue: read ban", berr)
		}
		log.InfoContext(ctx, "login refused: user banned")
		return session.Session{}, nil, berr
	}
	if err != nil {
		return session.Session{}, nil, s.fail(ctx, log, "issue: update user", err)
	}
	// Should a later step fail, the registry gets back the slots this
	// update replaced, so that the sessions they name are not forgotten
	// (a crash instead is recovered by the device's next login, step 3).
	restore := func() {
		s.restoreSlots(ctx, user, own, old.slots[own.name], presentedSlot, old.slots[presentedSlot])
	}
	unionID := in.Identity.UnionID
	if unionID == "" {
		unionID = old.unionID
	}
	// Our own slot among the old values: the update was applied, its
	// answer lost, and the SDK's retry returned what the first attempt
	// left (docs/design.md §3.10). The slot it replaced, the device's
	// previous session, is no longer known from the registry: it is found
	// in the user index below, as after a crash (endDeviceOrphans).
	retried := false
	if sl, ok := old.slots[own.name]; ok && sl.SID == hash && sl.At == nowUS {
		retried = true
		log.InfoContext(ctx, "user update applied although its answer was lost")
	}

	// Decide what ends.
	ends := map[string]session.Reason{}
	var dead []slot // slots to remove besides those of ended sessions
	devicePrev := ""
	if prev, ok := old.slots[own.name]; ok && prev.SID != hash {
		ends[prev.SID] = session.ReasonReplaced
		if in.DeviceID != "" {
			devicePrev = prev.SID
		}
	}
	if in.Presented != "" && in.Presented != hash {
		ends[in.Presented] = session.ReasonReplaced
	}
	var others []slot
	for name, sl := range old.slots {
		switch {
		case name == own.name:
		case sl.Exp <= now.Unix():
			dead = append(dead, sl)
		case ends[sl.SID] != "":
			if name != presentedSlot {
				dead = append(dead, sl) // ended below; its slot goes too
			}
		case in.Policy.Exclusive == ExclusiveAll,
			in.Policy.Exclusive == ExclusivePlatform && sl.Platform == in.Device.Platform:
			ends[sl.SID] = session.ReasonReplaced
			dead = append(dead, sl)
		default:
			others = append(others, sl)
		}
	}
	if max := in.Policy.MaxPerUser; max > 0 && len(others)+1 > max {
		sort.Slice(others, func(i, j int) bool { // oldest first
			if others[i].At != others[j].At {
				return others[i].At < others[j].At
			}
			return others[i].SID < others[j].SID
		})
		if in.Policy.Overflow == RejectNew {
			// 2. The registry is an upper bound: count what is active.
			live, gone, err := s.activeOf(ctx, user, others, now)
			if err != nil {
				restore()
				return session.Session{}, nil, s.fail(ctx, log, "issue: check sessions", err)
			}
			dead = append(dead, gone...)
			if len(live)+1 > max {
				restore()
				return session.Session{}, nil, ErrTooManySessions
			}
		} else {
			for _, sl := range others[:len(others)+1-max] {
				ends[sl.SID] = session.ReasonEvicted
				dead = append(dead, sl)
			}
		}
	}

	// 3. Tombstones first: a crash after them leaves no extra session.
	var ended []Ended
	if retried && in.DeviceID != "" {
		more, err := s.endDeviceOrphans(ctx, user, in.DeviceID, hash, nowUS)
		if err != nil {
			restore()
			return session.Session{}, ended, err
		}
		ended = append(ended, more...)
	}
	for _, sid := range sortedKeys(ends) {
		var ok, wasClaim bool
		var err error
		if sid == devicePrev {
			ok, wasClaim, err = s.endReturning(ctx, sid, ends[sid])
		} else {
			ok, err = s.endOne(ctx, sid, ends[sid])
		}
		if err != nil {
			restore()
			return session.Session{}, ended, err
		}
		if ok {
			ended = append(ended, Ended{Hash: sid, Reason: ends[sid]})
		}
		if wasClaim {
			// The device's slot named a login that never finished: it may
			// have crashed after taking the slot and before ending the
			// device's session before it, which the registry then no
			// longer names. Find it in the user index (only in this case).
			more, err := s.endDeviceOrphans(ctx, user, in.DeviceID, hash, nowUS)
			if err != nil {
				restore()
				return session.Session{}, ended, err
			}
			ended = append(ended, more...)
		}
	}

	// 4. The session, over our claim.
	it := item{
		SID: hash, User: user, CreatedUS: nowUS, CreatedSID: createdSID(nowUS, hash), OpenID: in.Identity.OpenID, UnionID: unionID,
		AppID: in.AppID, CreatedAt: now.Unix(), ExpiresAt: exp, LastActiveAt: now.Unix(),
		DeviceID: in.DeviceID, SourceIP: in.SourceIP,
		PurgeAt: exp + int64(session.TombstoneRetention/time.Second),
	}
	if in.Device != (session.Device{}) {
		d := in.Device
		it.Device = &d
	}
	if in.Policy.IdleTimeout > 0 {
		it.IdleExpiresAt = min(exp, now.Add(in.Policy.IdleTimeout).Unix())
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return session.Session{}, nil, fmt.Errorf("dynamostore: issue: marshal: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.sessions),
		Item:                      av,
		ConditionExpression:       aws.String("#claim = :token"),
		ExpressionAttributeNames:  map[string]string{"#claim": AttrClaim},
		ExpressionAttributeValues: map[string]types.AttributeValue{":token": strAV(in.Claim.Token)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// The condition also fails when this very write was applied and
		// its answer lost: the SDK's retry then finds our session where
		// the claim was. Only a session item with our creation time,
		// not ended since, is ours (docs/design.md §3); anything else is
		// a concurrent login that took the claim.
		cur, ok, gerr := s.getItem(ctx, "issue-verify", hash)
		if gerr != nil {
			restore()
			return session.Session{}, ended, gerr
		}
		if !ok || cur.Claim != "" || cur.EndedReason != "" || cur.CreatedUS != nowUS || cur.User != user {
			log.InfoContext(ctx, "login superseded by a concurrent login")
			return session.Session{}, ended, ErrSuperseded
		}
		log.InfoContext(ctx, "session write applied although its answer was lost")
		err = nil
	}
	if err != nil {
		restore()
		return session.Session{}, ended, s.fail(ctx, log, "issue: put session", err)
	}

	// 5. Clean the registry.
	if len(dead) > 0 {
		s.removeSlots(ctx, user, dead)
	}
	sess := it.session()
	log.DebugContext(ctx, "session issued", "ended", len(ended))
	return sess, ended, nil
}

// endReturning is endOne that also reports whether the item it ended was a
// login claim (a login that took the device's slot and never finished).
func (s *Store) endReturning(ctx context.Context, hash string, reason session.Reason) (ended, wasClaim bool, err error) {
	return s.endItem(ctx, hash, reason, true)
}

// endDeviceOrphans ends the user's active sessions of deviceID created
// before us (microseconds; so never a concurrent newer login's) other than
// keep that the user index lists: the recovery after a login that crashed
// between its user update and its tombstones (docs/design.md §3.3). It
// costs a Query and a BatchGetItem per page, and only runs when the
// device's slot named an unfinished login.
func (s *Store) endDeviceOrphans(ctx context.Context, user, deviceID, keep string, before int64) ([]Ended, error) {
	var ended []Ended
	now := s.now()
	err := s.eachIndexPage(ctx, user, 0, func(keys []indexKey) error {
		for start := 0; start < len(keys); start += batchGetSize {
			var hashes []string
			for _, k := range keys[start:min(start+batchGetSize, len(keys))] {
				if k.sid != keep {
					hashes = append(hashes, k.sid)
				}
			}
			if len(hashes) == 0 {
				continue
			}
			items, err := s.batchGet(ctx, hashes)
			if err != nil {
				return err
			}
			for _, av := range items {
				it, err := decodeItem(av)
				if err != nil || it.kind() != kindSession || it.User != user || it.DeviceID != deviceID || it.CreatedUS >= before || !it.session().Active(now) {
					continue
				}
				ok, err := s.endOne(ctx, it.SID, session.ReasonReplaced)
				if err != nil {
					return err
				}
				if ok {
					ended = append(ended, Ended{Hash: it.SID, Reason: session.ReasonReplaced})
				}
			}
		}
		return nil
	})
	if err != nil {
		return ended, s.fail(ctx, s.log.With("op", "issue"), "issue: find the device's sessions", err)
	}
	if len(ended) > 0 {
		s.log.WarnContext(ctx, "ended sessions of the device the registry no longer named (a crashed login, or a lost answer)", "op", "issue", "count", len(ended))
	}
	return ended, nil
}

// oldUser is what Issue needs from the user item as it was.
type oldUser struct {
	unionID string
	slots   map[string]slot
}

func (s *Store) updateUser(ctx context.Context, in IssueInput, user string, now time.Time, own slot, presentedSlot string) (oldUser, error) {
	entry, err := attributevalue.Marshal(own)
	if err != nil {
		return oldUser{}, err
	}
	expr := "SET #appid = :appid, #openid = :openid, #last = :now, #created = if_not_exists(#created, :now), #slot = :slot"
	names := map[string]string{"#appid": AttrAppID, "#openid": AttrOpenID, "#last": AttrLastLoginAt, "#created": AttrCreatedAt, "#slot": own.name,
		"#banned": AttrBannedAt, "#banneduntil": AttrBannedUntil}
	values := map[string]types.AttributeValue{
		":appid": strAV(in.AppID), ":openid": strAV(in.Identity.OpenID), ":now": numAV(now.Unix()), ":slot": entry,
	}
	if in.Identity.SessionKey != "" {
		expr += ", #sk = :sk"
		names["#sk"] = AttrSessionKey
		values[":sk"] = strAV(in.Identity.SessionKey)
	}
	if in.Identity.UnionID != "" {
		expr += ", #unionid = :unionid"
		names["#unionid"] = AttrUnionID
		values[":unionid"] = strAV(in.Identity.UnionID)
	}
	if presentedSlot != "" && presentedSlot != own.name {
		expr += " REMOVE #pslot"
		names["#pslot"] = presentedSlot
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.users),
		Key:                       userKey(user),
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllOld,
		// Not banned (docs/design.md §8.5): the check costs the login no
		// request of its own.
		ConditionExpression:                 aws.String(notBannedCondition),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return oldUser{}, err
	}
	o := oldUser{slots: map[string]slot{}}
	if v, ok := out.Attributes[AttrUnionID].(*types.AttributeValueMemberS); ok {
		o.unionID = v.Value
	}
	for name, av := range out.Attributes {
		if !strings.HasPrefix(name, SlotPrefix) {
			continue
		}
		var sl slot
		if err := attributevalue.Unmarshal(av, &sl); err != nil || len(sl.SID) != hashLength {
			continue // not ours to judge; a later clean-up cannot match it either
		}
		sl.name = name
		o.slots[name] = sl
	}
	return o, nil
}

// activeOf reads the registered sessions and splits them into those active
// and owned by user, and the rest.
func (s *Store) activeOf(ctx context.Context, user string, slots []slot, now time.Time) (live, gone []slot, err error) {
	byHash := map[string]bool{}
	for start := 0; start < len(slots); start += batchGetSize {
		var hashes []string
		for _, sl := range slots[start:min(start+batchGetSize, len(slots))] {
			hashes = append(hashes, sl.SID)
		}
		items, err := s.batchGet(ctx, hashes)
		if err != nil {
			return nil, nil, err
		}
		for _, av := range items {
			it, err := decodeItem(av)
			if err == nil && it.kind() == kindSession && it.User == user && it.session().Active(now) {
				byHash[it.SID] = true
			}
		}
	}
	for _, sl := range slots {
		if byHash[sl.SID] {
			live = append(live, sl)
		} else {
			gone = append(gone, sl)
		}
	}
	return live, gone, nil
}

// restoreSlots puts back the slot values that Issue's user update replaced
// (or removes the new slot), if the slot still names this login. It runs
// after a failure, so it gets a fresh second of its own.
func (s *Store) restoreSlots(ctx context.Context, user string, own, prev slot, presentedSlot string, presented slot) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	var set, remove []string
	names := map[string]string{"#slot": own.name, "#sid": "sid"}
	values := map[string]types.AttributeValue{":sid": strAV(own.SID)}
	if prev.SID != "" {
		av, err := attributevalue.Marshal(prev)
		if err != nil {
			return
		}
		set = append(set, "#slot = :prev")
		values[":prev"] = av
	} else {
		remove = append(remove, "#slot")
	}
	if presentedSlot != "" && presented.SID != "" {
		av, err := attributevalue.Marshal(presented)
		if err != nil {
			return
		}
		set = append(set, "#pslot = :pprev")
		names["#pslot"] = presentedSlot
		values[":pprev"] = av
	}
	expr := ""
	if len(set) > 0 {
		expr = "SET " + strings.Join(set, ", ")
	}
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.users),
		Key:                       userKey(user),
		UpdateExpression:          aws.String(strings.TrimSpace(expr)),
		ConditionExpression:       aws.String("#slot.#sid = :sid"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	s.bestEffort(ctx, "restore slots", func() error { _, err := s.db.UpdateItem(ctx, in); return err })
}

// removeSlots removes registry slots, each only if it still names the same
// session (a concurrent login of that device may have replaced it).
func (s *Store) removeSlots(ctx context.Context, user string, slots []slot) {
	var conds, removes []string
	names := map[string]string{"#sid": "sid"}
	values := map[string]types.AttributeValue{}
	seen := map[string]bool{}
	for i, sl := range slots {
		if seen[sl.name] {
			continue
		}
		seen[sl.name] = true
		n, v := fmt.Sprintf("#s%d", i), fmt.Sprintf(":s%d", i)
		names[n] = sl.name
		values[v] = strAV(sl.SID)
		removes = append(removes, n)
		conds = append(conds, n+".#sid = "+v)
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.users),
		Key:                       userKey(user),
		UpdateExpression:          aws.String("REMOVE " + strings.Join(removes, ", ")),
		ConditionExpression:       aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	s.bestEffort(ctx, "remove slots", func() error { _, err := s.db.UpdateItem(ctx, in); return err })
}

// bestEffort runs a clean-up write whose failure only leaves stale registry
// slots behind: a failed condition is expected, anything else is logged.
func (s *Store) bestEffort(ctx context.Context, what string, fn func() error) {
	err := fn()
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		s.log.WarnContext(ctx, "registry clean-up failed; stale slots stay until a later login", "op", what, "err", err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
