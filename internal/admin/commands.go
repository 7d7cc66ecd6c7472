package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wxsession/wxsession/internal/account"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/session"
)

// Store is what the commands need from the session and user store
// (implemented by *dynamostore.Store).
type Store interface {
	// ListSessions pages through a user's active sessions.
	ListSessions(ctx context.Context, user, cursor string, limit int) ([]session.Session, string, error)
	// Lookup reads a session by hash, ended or not.
	Lookup(ctx context.Context, hash string) (session.Session, error)
	// EndSession ends one session with reason; false when there was none to end.
	EndSession(ctx context.Context, hash string, reason session.Reason) (bool, error)
	// EndUserSessions ends every session of a user.
	EndUserSessions(ctx context.Context, user string, reason session.Reason, last string) (int, error)
	// EndSessionsCreatedBefore ends every live session created before t.
	EndSessionsCreatedBefore(ctx context.Context, t time.Time, reason session.Reason) (int, error)
	// User reads a user record (never its session_key);
	// session.ErrNotFound when there is none.
	User(ctx context.Context, user string) (dynamostore.User, error)
	// FindUser finds the user whose audit pseudonym is p.
	FindUser(ctx context.Context, match func(user string) bool) (dynamostore.User, error)
	// Ban records a ban on an existing user and ends its sessions.
	Ban(ctx context.Context, user string, b dynamostore.Ban) (int, error)
	// Unban lifts a ban; a user without one is not an error.
	Unban(ctx context.Context, user string) (bool, error)
}

// runner runs commands against one target.
type runner struct {
	t       *Target
	store   Store
	deleter *account.Deleter
	audit   *audit.Logger
	trail   *trail
	reqID   string
}

func newRunner(t *Target, stderr io.Writer) (*runner, error) {
	st, err := dynamostore.New(t.DB, dynamostore.Config{
		SessionsTable: t.Tables[TableSessions],
		UsersTable:    t.Tables[TableUsers],
		// Operator commands may walk a whole table (revoke-all): no
		// per-operation bound beyond the command's own context.
		OpTimeout: 10 * time.Minute,
		Logger:    discardLogger,
	})
	if err != nil {
		return nil, err
	}
	data, err := account.UserData(t.DB, account.Tables{Users: t.Tables[TableUsers], Profiles: t.Tables[TableProfiles], Phones: t.Tables[TablePhones]})
	if err != nil {
		return nil, err
	}
	id, err := session.NewID()
	if err != nil {
		return nil, err
	}
	return &runner{
		t:       t,
		store:   st,
		deleter: &account.Deleter{Sessions: st, Users: st, Data: data},
		audit:   audit.New(stderr, audit.ActorOperatorPrefix+t.Operator),
		trail:   &trail{db: t.DB, table: t.Tables[TableAudit], logs: t.Logs, logGroup: t.AdminLogGroup},
		reqID:   "wxadmin-" + id[:16],
	}, nil
}

// record writes an audit event to stderr and to the audit table.
func (r *runner) record(ctx context.Context, rec audit.Record) error {
	rec.AppID = r.t.AppID
	rec.RequestID = r.reqID
	line := r.audit.Record(ctx, rec)
	if err := r.trail.put(ctx, line); err != nil {
		return fmt.Errorf("the action was done, but recording it in the audit table failed: %w", err)
	}
	return nil
}

// existing returns the user record of openid, or a clear error when the
// app has no such user.
func (r *runner) existing(ctx context.Context, openid string) (dynamostore.User, error) {
	u, err := r.store.User(ctx, session.UserKey(r.t.AppID, openid))
	if errors.Is(err, session.ErrNotFound) {
		return u, fmt.Errorf("no user with openid %s in app %s (%s)", session.MaskOpenID(openid), r.t.AppID, r.t.Where)
	}
	return u, err
}

// SessionsResult is the output of sessions list.
type SessionsResult struct {
	AppID    string         `json:"appid"`
	OpenID   string         `json:"openid"`
	Sessions []SessionEntry `json:"sessions"`
}

// SessionEntry is one active session.
type SessionEntry struct {
	SID          string          `json:"sid"`
	CreatedAt    time.Time       `json:"created_at"`
	LastActiveAt time.Time       `json:"last_active_at,omitzero"`
	ExpiresAt    time.Time       `json:"expires_at"`
	DeviceID     string          `json:"device_id,omitempty"`
	Device       *session.Device `json:"device,omitempty"`
	SourceIP     string          `json:"source_ip,omitempty"`
}

func (s SessionsResult) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d active session(s) of %s in %s\n", len(s.Sessions), s.OpenID, s.AppID)
	for _, e := range s.Sessions {
		dev := ""
		if e.Device != nil {
			dev = strings.TrimSpace(e.Device.Platform + " " + e.Device.Brand + " " + e.Device.Model)
		}
		fmt.Fprintf(&b, "  %s  created %s  expires %s  %s %s\n", e.SID, e.CreatedAt.Format(time.RFC3339),
			e.ExpiresAt.Format(time.RFC3339), e.SourceIP, dev)
	}
	return b.String()
}

func (r *runner) listSessions(ctx context.Context, openid string) (result, error) {
	if _, err := r.existing(ctx, openid); err != nil {
		return nil, err
	}
	out := SessionsResult{AppID: r.t.AppID, OpenID: openid, Sessions: []SessionEntry{}}
	cursor := ""
	for {
		page, next, err := r.store.ListSessions(ctx, session.UserKey(r.t.AppID, openid), cursor, 100)
		if err != nil {
			return nil, err
		}
		for _, s := range page {
			out.Sessions = append(out.Sessions, entryOf(s))
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// CountResult reports how many sessions an action ended.
type CountResult struct {
	Action string `json:"action"`
	AppID  string `json:"appid,omitempty"`
	OpenID string `json:"openid,omitempty"`
	SID    string `json:"sid,omitempty"`
	Ended  int    `json:"sessions_ended"`
	Note   string `json:"note,omitempty"`
}

func (c CountResult) text() string {
	s := fmt.Sprintf("%s: %d session(s) ended", c.Action, c.Ended)
	if c.Note != "" {
		s += "; " + c.Note
	}
	return s + "\n"
}

func (r *runner) revoke(ctx context.Context, sid, openid string) (result, error) {
	if sid != "" {
		s, err := r.store.Lookup(ctx, sid)
		if errors.Is(err, session.ErrNotFound) {
			return nil, fmt.Errorf("no session with sid %s (%s)", sid, r.t.Where)
		}
		if err != nil {
			return nil, err
		}
		if s.AppID != "" && s.AppID != r.t.AppID {
			return nil, fmt.Errorf("session %s belongs to app %s, not %s (pass -appid)", sid, s.AppID, r.t.AppID)
		}
		ended, err := r.store.EndSession(ctx, sid, session.ReasonKicked)
		if err != nil {
			return nil, err
		}
		res := CountResult{Action: "sessions revoke", SID: sid, OpenID: s.OpenID}
		if !ended {
			res.Note = "it had already ended"
			return res, nil
		}
		res.Ended = 1
		return res, r.record(ctx, audit.Record{Event: audit.SessionKicked, OpenID: s.OpenID, SID: sid, Reason: string(session.ReasonKicked), Count: 1})
	}
	if _, err := r.existing(ctx, openid); err != nil {
		return nil, err
	}
	n, err := r.store.EndUserSessions(ctx, session.UserKey(r.t.AppID, openid), session.ReasonKicked, "")
	res := CountResult{Action: "sessions revoke", AppID: r.t.AppID, OpenID: openid, Ended: n}
	if rerr := r.record(ctx, audit.Record{Event: audit.SessionKicked, OpenID: openid, Reason: string(session.ReasonKicked), Count: n}); err == nil {
		err = rerr
	}
	return res, err
}

func (r *runner) revokeAllBefore(ctx context.Context, before time.Time) (result, error) {
	n, err := r.store.EndSessionsCreatedBefore(ctx, before, session.ReasonKicked)
	res := CountResult{Action: "sessions revoke-all -before " + before.UTC().Format(time.RFC3339), Ended: n}
	if rerr := r.record(ctx, audit.Record{Event: audit.SessionKicked, Reason: string(session.ReasonKicked), Count: n, Before: before}); err == nil {
		err = rerr
	}
	if err != nil {
		res.Note = "interrupted: run it again to finish (sessions already ended stay ended)"
	}
	return res, err
}

// UserResult is the output of users show: never the session_key.
type UserResult struct {
	AppID       string     `json:"appid"`
	OpenID      string     `json:"openid"`
	UnionID     string     `json:"unionid,omitempty"`
	AuditUser   string     `json:"audit_user"`
	CreatedAt   time.Time  `json:"created_at,omitzero"`
	LastLoginAt time.Time  `json:"last_login_at,omitzero"`
	Sessions    int        `json:"sessions"`
	Banned      bool       `json:"banned"`
	BanReason   string     `json:"ban_reason,omitempty"`
	BannedAt    *time.Time `json:"banned_at,omitempty"`
	BannedUntil *time.Time `json:"banned_until,omitempty"`
}

func (u UserResult) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "openid       %s\nappid        %s\n", u.OpenID, u.AppID)
	if u.UnionID != "" {
		fmt.Fprintf(&b, "unionid      %s\n", u.UnionID)
	}
	fmt.Fprintf(&b, "audit user   %s   (search the logs for this)\n", u.AuditUser)
	if !u.CreatedAt.IsZero() {
		fmt.Fprintf(&b, "created      %s\n", u.CreatedAt.Format(time.RFC3339))
	}
	if !u.LastLoginAt.IsZero() {
		fmt.Fprintf(&b, "last login   %s\n", u.LastLoginAt.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "sessions     %d active\n", u.Sessions)
	switch {
	case !u.Banned:
		b.WriteString("banned       no\n")
	case u.BannedUntil != nil:
		fmt.Fprintf(&b, "banned       until %s: %s\n", u.BannedUntil.Format(time.RFC3339), u.BanReason)
	default:
		fmt.Fprintf(&b, "banned       until unbanned: %s\n", u.BanReason)
	}
	return b.String()
}

func (r *runner) showUser(ctx context.Context, openid, pseudonym string) (result, error) {
	var u dynamostore.User
	var err error
	if pseudonym != "" {
		u, err = r.store.FindUser(ctx, func(user string) bool {
			app, oid, ok := session.SplitUserKey(user)
			return ok && app == r.t.AppID && audit.UserPseudonym(app, oid) == pseudonym
		})
		if errors.Is(err, session.ErrNotFound) {
			return nil, fmt.Errorf("no user of app %s has the audit pseudonym %s (%s)", r.t.AppID, pseudonym, r.t.Where)
		}
	} else {
		u, err = r.existing(ctx, openid)
	}
	if err != nil {
		return nil, err
	}
	n := 0
	cursor := ""
	for {
		page, next, err := r.store.ListSessions(ctx, session.UserKey(u.AppID, u.OpenID), cursor, 100)
		if err != nil {
			return nil, err
		}
		n += len(page)
		if next == "" {
			break
		}
		cursor = next
	}
	res := UserResult{
		AppID: u.AppID, OpenID: u.OpenID, UnionID: u.UnionID, AuditUser: audit.UserPseudonym(u.AppID, u.OpenID),
		CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt, Sessions: n,
	}
	if b := u.Ban; b != nil && b.Active(time.Now()) {
		res.Banned, res.BanReason = true, b.Reason
		at := b.At
		res.BannedAt = &at
		if !b.Until.IsZero() {
			until := b.Until
			res.BannedUntil = &until
		}
	}
	return res, nil
}

// ban bans openid until until (zero: until unbanned). With keep (no
// -until given) a user already banned keeps the current ban's end, so that
// repeating a ban to change its reason does not make it permanent
// (docs/design.md §8.5).
func (r *runner) ban(ctx context.Context, openid, reason string, until time.Time, keep bool) (result, error) {
	u, err := r.existing(ctx, openid)
	if err != nil {
		return nil, err
	}
	if b := u.Ban; keep && b != nil && b.Active(time.Now()) {
		until = b.Until
	}
	n, err := r.store.Ban(ctx, session.UserKey(r.t.AppID, openid), dynamostore.Ban{Reason: reason, At: time.Now(), Until: until})
	if errors.Is(err, session.ErrNotFound) { // deleted since the check
		return nil, fmt.Errorf("no user with openid %s in app %s", session.MaskOpenID(openid), r.t.AppID)
	}
	res := CountResult{Action: "users ban", AppID: r.t.AppID, OpenID: openid, Ended: n}
	if err != nil {
		res.Note = "the ban is recorded but ending its sessions was interrupted: run it again"
	}
	if rerr := r.record(ctx, audit.Record{Event: audit.UserBanned, OpenID: openid, Reason: reason, Until: until, Count: n}); err == nil {
		err = rerr
	}
	return res, err
}

// DoneResult reports an action without a count.
type DoneResult struct {
	Action string `json:"action"`
	AppID  string `json:"appid"`
	OpenID string `json:"openid"`
	Done   bool   `json:"done"`
	Note   string `json:"note,omitempty"`
}

func (d DoneResult) text() string {
	s := d.Action + ": done"
	if d.Note != "" {
		s += "; " + d.Note
	}
	return s + "\n"
}

func (r *runner) unban(ctx context.Context, openid string) (result, error) {
	if _, err := r.existing(ctx, openid); err != nil {
		return nil, err
	}
	was, err := r.store.Unban(ctx, session.UserKey(r.t.AppID, openid))
	if err != nil {
		return nil, err
	}
	res := DoneResult{Action: "users unban", AppID: r.t.AppID, OpenID: openid, Done: true}
	if !was {
		res.Note = "the user was not banned"
		return res, nil
	}
	return res, r.record(ctx, audit.Record{Event: audit.UserUnbanned, OpenID: openid})
}

func (r *runner) deleteUser(ctx context.Context, openid string) (result, error) {
	_, err := r.store.User(ctx, session.UserKey(r.t.AppID, openid))
	gone := errors.Is(err, session.ErrNotFound)
	if err != nil && !gone {
		return nil, err
	}
	// Idempotent like DELETE /me: without a user record the deleter still
	// runs (it sweeps data a crashed deletion left), and nothing is audited.
	n, err := r.deleter.Delete(ctx, r.t.AppID, openid)
	if err == nil && gone && n == 0 {
		return CountResult{Action: "users delete", AppID: r.t.AppID, OpenID: openid,
			Note: "no user with this openid in app " + r.t.AppID + ": nothing to delete"}, nil
	}
	if err != nil {
		return CountResult{Action: "users delete", AppID: r.t.AppID, OpenID: openid, Ended: n,
			Note: "interrupted: run it again to finish"}, err
	}
	res := CountResult{Action: "users delete", AppID: r.t.AppID, OpenID: openid, Ended: n, Note: "sessions, profile, phone and user record deleted"}
	return res, r.record(ctx, audit.Record{Event: audit.AccountDeleted, OpenID: openid, Reason: string(session.ReasonAccountDeleted), Count: n})
}

func entryOf(s session.Session) SessionEntry {
	e := SessionEntry{SID: s.Hash, CreatedAt: s.CreatedAt, LastActiveAt: s.LastActiveAt, ExpiresAt: s.ExpiresAt,
		DeviceID: s.DeviceID, SourceIP: s.SourceIP}
	if s.Device != (session.Device{}) {
		d := s.Device
		e.Device = &d
	}
	return e
}
