// Package account deletes a user's account (docs/design.md §8.6): DELETE /me
// and `wxadmin users delete` run the same Deleter.
//
// No DynamoDB transactions, so the order is what makes it safe under
// concurrency and crashes, and every step is idempotent (a repeated or
// resumed deletion finishes the work):
//
//  1. every session of the user ends (tombstones with reason
//     account_deleted: the ids are refused on the next request and
//     GET /session tells the reason);
//  2. each DataDeleter removes its data (profile, phone, a business
//     function's own tables);
//  3. the user record is deleted; the sessions its registry still named
//     (a login that raced steps 1-2) are ended too, so no login that began
//     before the record was deleted leaves a live session. A login after
//     step 3 is a new sign-up.
//
// A crash after step 1 leaves a user without sessions and with data: the
// user can log in again, and the next deletion removes everything.
package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/wxsession/wxsession/session"
)

// DataDeleter removes one kind of per-user data (a profile, a bound phone
// number, a business function's rows). Deleting data that does not exist
// is not an error.
type DataDeleter interface {
	DeleteUserData(ctx context.Context, appID, openID string) error
}

// SessionEnder ends every session of a user (implemented by
// *dynamostore.Store).
type SessionEnder interface {
	EndUserSessions(ctx context.Context, user string, reason session.Reason, last string) (int, error)
	EndSession(ctx context.Context, hash string, reason session.Reason) (bool, error)
}

// UserDeleter deletes the user record and returns the sessions its
// registry named (implemented by *dynamostore.Store).
type UserDeleter interface {
	DeleteUser(ctx context.Context, user string) (registered []string, err error)
}

// Deleter deletes accounts.
type Deleter struct {
	Sessions SessionEnder
	Users    UserDeleter
	Data     []DataDeleter
}

// Delete deletes the account of openid in appID and returns how many
// sessions it ended. Deleting an account that does not exist is not an
// error (DELETE /me is idempotent).
func (d *Deleter) Delete(ctx context.Context, appID, openID string) (int, error) {
	if appID == "" || openID == "" {
		return 0, errors.New("account: delete: empty appid or openid")
	}
	user := session.UserKey(appID, openID)
	n, err := d.Sessions.EndUserSessions(ctx, user, session.ReasonAccountDeleted, "")
	if err != nil {
		return n, fmt.Errorf("account: delete: end sessions: %w", err)
	}
	for _, dd := range d.Data {
		if err := dd.DeleteUserData(ctx, appID, openID); err != nil {
			return n, fmt.Errorf("account: delete: %w", err)
		}
	}
	registered, err := d.Users.DeleteUser(ctx, user)
	if err != nil {
		return n, fmt.Errorf("account: delete: user record: %w", err)
	}
	for _, sid := range registered {
		ended, err := d.Sessions.EndSession(ctx, sid, session.ReasonAccountDeleted)
		if err != nil {
			return n, fmt.Errorf("account: delete: end a racing session: %w", err)
		}
		if ended {
			n++
		}
	}
	return n, nil
}
