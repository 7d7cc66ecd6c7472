package dynamostore

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute and index names. template.yaml must declare the same keys,
// index and TTL attribute (Schema is the reference).
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
	// openid (HASH openid, projection KEYS_ONLY).
	DefaultOpenIDIndex = "openid-index"
)

// Schema returns the CreateTable inputs of the sessions and users tables
// (on-demand billing), in that order. Tests and the local stack create
// tables from it; template.yaml declares the same schema for AWS. The TTL
// attribute of the sessions table is TTLAttribute; the users table has none.
func Schema(sessionsTable, usersTable string) []dynamodb.CreateTableInput {
	return []dynamodb.CreateTableInput{
		{
			TableName:   aws.String(sessionsTable),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(AttrSID), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(AttrOpenID), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(AttrSID), KeyType: types.KeyTypeHash},
			},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName: aws.String(DefaultOpenIDIndex),
				KeySchema: []types.KeySchemaElement{
					{AttributeName: aws.String(AttrOpenID), KeyType: types.KeyTypeHash},
				},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			}},
		},
		{
			TableName:   aws.String(usersTable),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(AttrOpenID), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(AttrOpenID), KeyType: types.KeyTypeHash},
			},
		},
	}
}
