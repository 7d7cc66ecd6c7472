package wxuser

import "github.com/wxsession/wxsession/internal/phonestore"

// The phone store lives in package phonestore, which links no WeChat
// client: the api function deletes a user's phone data with it (DELETE /me)
// without linking one. These names keep this package's API.
type (
	// Store is phonestore.Store.
	Store = phonestore.Store
	// Phone is phonestore.Phone.
	Phone = phonestore.Phone
	// CodeRecord is phonestore.CodeRecord.
	CodeRecord = phonestore.CodeRecord
)

// NewStore is phonestore.NewStore.
var NewStore = phonestore.NewStore

// Errors of the store (the same values as phonestore's).
var (
	ErrPhoneInUse    = phonestore.ErrPhoneInUse
	ErrNotFound      = phonestore.ErrNotFound
	ErrLookupLimited = phonestore.ErrLookupLimited
)

// Durations of the store.
const (
	ClaimGrace = phonestore.ClaimGrace
	CodeTTL    = phonestore.CodeTTL
)

// chinaTime is UTC+8, the zone of WeChat's daily quotas.
var chinaTime = phonestore.ChinaTime
