package dynamostore

import (
	"context"

	"github.com/wxsession/wxsession/session"
)

// SetPageSize limits GSI query pages so tests can force pagination.
func SetPageSize(s *Store, n int32) { s.pageSize = n }

// UpdateUserOnly is Issue stopped after its user update, as a login that
// crashed there leaves the tables.
func UpdateUserOnly(s *Store, ctx context.Context, in IssueInput) error {
	now := s.now()
	own := slot{SID: in.Claim.hash, At: now.UnixMicro(), Exp: now.Add(in.Policy.TTL).Unix(), Platform: in.Device.Platform}
	own.name = SlotPrefix + in.DeviceID
	_, err := s.updateUser(ctx, in, session.UserKey(in.AppID, in.Identity.OpenID), now, own, "")
	return err
}
