package dynamostore

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/session"
)

// Attribute and index names the store reads and writes (docs/design.md §3).
// The tables' schema (keys, the user index, TTL) is declared once, in
// template.yaml; the store tests create their tables from it
// (dynalitetest.Tables).
const (
	// AttrSID is the sessions table's partition key: session.Hash(id).
	AttrSID = "sid"
	// AttrUser is the user key "<appid>#<openid>": the users table's
	// partition key, and on live session items the user index's
	// partition key. Tombstones and login claims have none, so they are
	// not in the index.
	AttrUser = "user"
	// AttrCreatedUS is the session's creation time in microseconds (N).
	AttrCreatedUS = "created_us"
	// AttrCreatedSID is the user index's sort key (S): the creation time
	// in microseconds, 16 digits, "#" and the sid. It orders a user's
	// sessions exactly and gives every index entry a key of its own.
	AttrCreatedSID = "created_sid"
	// AttrOpenID holds the openid.
	AttrOpenID = "openid"
	// AttrUnionID holds the unionid; omitted when none is known.
	AttrUnionID = "unionid"
	// AttrAppID holds the mini-program appid.
	AttrAppID = "appid"
	// AttrCreatedAt is the creation time (epoch seconds, N): of the
	// session, or of the user's first login.
	AttrCreatedAt = "created_at"
	// AttrExpiresAt is the end of the session's absolute lifetime (epoch
	// seconds, N).
	AttrExpiresAt = "expires_at"
	// AttrIdleExpiresAt is the end of the idle clock (epoch seconds, N);
	// absent when the idle timeout is off.
	AttrIdleExpiresAt = "idle_expires_at"
	// AttrLastActiveAt is the last renewal or the login (epoch seconds, N).
	AttrLastActiveAt = "last_active_at"
	// AttrDeviceID, AttrDevice and AttrSourceIP describe where the session
	// was made.
	AttrDeviceID = "device_id"
	AttrDevice   = "device"
	AttrSourceIP = "source_ip"
	// AttrEndedReason and AttrEndedAt make a tombstone (session.Reason,
	// epoch seconds).
	AttrEndedReason = "ended_reason"
	AttrEndedAt     = "ended_at"
	// AttrClaim (a random token) and AttrClaimedAt (epoch milliseconds)
	// mark a login claim: a code being exchanged (docs/design.md §3).
	AttrClaim     = "claim"
	AttrClaimedAt = "claimed_at"
	// AttrFailed holds the error code of a claim whose exchange failed for
	// good, so duplicates of the code get the same answer.
	AttrFailed = "failed"
	// AttrPurgeAt is the TTL attribute (epoch seconds): when DynamoDB may
	// delete the item. Live sessions: expires_at + 7 days; tombstones:
	// ended_at + 7 days; claims: 10 minutes.
	AttrPurgeAt = "purge_at"
	// AttrSessionKey holds WeChat's latest session_key (users table only).
	AttrSessionKey = "session_key"
	// AttrLastLoginAt is the user's latest login (epoch seconds, N).
	AttrLastLoginAt = "last_login_at"
	// SlotPrefix starts the users-table attributes that register the
	// user's sessions for the login's device, cap and exclusivity checks:
	// "slot:<device_id>", or "slot:~<sid>" for a session without a
	// device id (docs/design.md §3).
	SlotPrefix = "slot:"

	// TTLAttribute is the sessions table's TimeToLive attribute.
	TTLAttribute = AttrPurgeAt
	// DefaultUserIndex is the name of the sessions table's GSI (HASH
	// user, RANGE created_sid, projection KEYS_ONLY).
	DefaultUserIndex = "user-index"
)

// UsersTableKey is the users table's key of a user (the user key
// "<appid>#<openid>"): the one place other packages (the wechat function
// reads and replaces the session_key) learn how the users table is keyed.
func UsersTableKey(appID, openID string) map[string]types.AttributeValue {
	return userKey(session.UserKey(appID, openID))
}
