package account

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/phonestore"
	"github.com/wxsession/wxsession/internal/profile"
)

// Tables names the physical tables holding per-user data (the template's
// UsersTable, ProfilesTable and PhonesTable).
type Tables struct {
	Users    string
	Profiles string
	Phones   string
}

// UserData returns the DataDeleters of every kind of per-user data the
// stack keeps: the profile and the phone binding (with its uniqueness
// claim). It is the one list both DELETE /me (functions/api) and `wxadmin
// users delete` run, so the two cannot drift: a new kind of per-user data
// is added here (docs/design.md §8.6, docs/business-guide.md §5).
func UserData(db *dynamodb.Client, t Tables) ([]DataDeleter, error) {
	profiles, err := profile.New(db, profile.Config{Table: t.Profiles})
	if err != nil {
		return nil, err
	}
	phones, err := phonestore.NewStore(db, t.Phones, t.Users, nil)
	if err != nil {
		return nil, err
	}
	return []DataDeleter{profiles, phones}, nil
}
