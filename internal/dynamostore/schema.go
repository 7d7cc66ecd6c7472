package dynamostore

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

// Attribute and index names the store reads and writes. The tables' schema
// (keys, the openid index, TTL) is declared once, in template.yaml; the store
// tests create their tables from it (dynalitetest.Tables).
const (
	// AttrSID is the sessions table's partition key: session.Hash(id).
	AttrSID = "sid"
	// AttrOpenID is the users table's partition key and the sessions
	// table's GSI key.
	AttrOpenID = "openid"
	// AttrUnionID holds the unionid; omitted when WeChat gave none.
	AttrUnionID = "unionid"
	// AttrAppID holds the mini-program appid.
	AttrAppID = "appid"
	// AttrCreatedAt is the creation time (epoch seconds, N): of the
	// session, or of the user's first login.
	AttrCreatedAt = "created_at"
	// AttrExpiresAt is the session's expiry (epoch seconds, N).
	AttrExpiresAt = "expires_at"
	// AttrSessionKey holds WeChat's latest session_key (users table only).
	AttrSessionKey = "session_key"
	// AttrLastLoginAt is the user's latest login (epoch seconds, N).
	AttrLastLoginAt = "last_login_at"

	// TTLAttribute is the sessions table's TimeToLive attribute.
	TTLAttribute = AttrExpiresAt
	// DefaultOpenIDIndex is the name of the sessions table's GSI on
	// openid (HASH openid, RANGE sid, projection KEYS_ONLY). The sort key
	// gives every entry a key of its own; see docs/design.md §6.
	DefaultOpenIDIndex = "openid-index"
)

// UsersTableKey is the users table's key of a user: the one place other
// packages (the wechat function reads and replaces the session_key) learn
// how the users table is keyed.
func UsersTableKey(appID, openID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrOpenID: &types.AttributeValueMemberS{Value: openID}}
}
