// Package dynamostore keeps wxsession's sessions and users in DynamoDB
// (docs/design.md §3).
//
// Two tables (see Schema):
//
//   - sessions: keyed by sid = session.Hash(id), never the id itself. An
//     item is a live session (it has a user key and is in the user index,
//     HASH user / RANGE created_sid, KEYS_ONLY), a tombstone (ended_reason,
//     ended_at; nothing else), or a login claim (claim or failed). purge_at
//     is the TTL attribute.
//   - users: one item per user key "<appid>#<openid>" with the latest
//     session_key (which never leaves the server), the best-known unionid
//     and the registry of the user's sessions ("slot:" attributes) that
//     the login reads to replace, evict and keep sessions exclusive.
//
// No transactions: every multi-item change is ordered so that a crash
// between its writes is harmless (each method says how). DynamoDB's TTL
// deletes items up to days late, so every read compares the clocks.
// Errors map to the domain's sentinels: session.ErrNotFound, and
// session.ErrUnavailable for everything that means "the store did not
// answer" (network, timeouts, throttling, server errors), so callers can
// deny or answer 503 with errors.Is.
//
// Operations for other parts (the api function, wxadmin): Get, Lookup,
// Touch, EndSession, EndUserSessions, ListSessions, SessionKey; the login
// uses Claim, Release and Issue.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/backoff"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/session"
)

// DefaultOpTimeout bounds every store operation when Config.OpTimeout is 0.
const DefaultOpTimeout = 3 * time.Second

// Batch retry policy for unprocessed items.
const (
	batchWriteSize     = 25
	batchGetSize       = 100
	unprocessedRetries = 5
)

// unprocessedBackoff separates the retries of unprocessed batch items.
var unprocessedBackoff = backoff.Policy{Base: 20 * time.Millisecond, Cap: 320 * time.Millisecond}

// hashLength is the length of session.Hash's output: SHA-256 in base64url
// without padding.
const hashLength = 43

// Config configures a Store.
type Config struct {
	// SessionsTable is the sessions table (required).
	SessionsTable string
	// UsersTable is the users table. Only Issue and SessionKey use it; a
	// store that only reads or ends sessions (the authorizer, the api
	// function) may leave it empty, and those methods then fail with
	// ErrNoUsersTable.
	UsersTable string
	// UserIndex is the sessions table's GSI on the user key; "" means
	// DefaultUserIndex.
	UserIndex string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OpTimeout bounds each operation as a whole (all its requests and
	// retries); 0 means DefaultOpTimeout.
	OpTimeout time.Duration
	// Logger receives DEBUG and WARN events (openids masked, never ids or
	// session keys); nil means slog.Default().
	Logger *slog.Logger
	// NewToken draws claim tokens; nil means session.NewID.
	NewToken func() (string, error)
}

// Store is the DynamoDB session and user store. It is safe for concurrent
// use.
type Store struct {
	db       *dynamodb.Client
	sessions string
	users    string
	index    string
	now      func() time.Time
	timeout  time.Duration
	log      *slog.Logger
	newToken func() (string, error)
	// pageSize limits GSI query pages (0 = DynamoDB's 1 MB pages); tests
	// set it to exercise pagination.
	pageSize int32
}

// ErrNoUsersTable reports an Issue or SessionKey call on a store built
// without a users table.
var ErrNoUsersTable = errors.New("dynamostore: no users table configured")

// validName reports whether s is a valid DynamoDB table or index name: 3-255
// characters of [A-Za-z0-9_.-]. A byte loop, not a regexp: a {3,255}
// repetition compiled at package init cost every cold start about 1 ms.
func validName(s string) bool {
	if len(s) < 3 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// New returns a Store using client. It validates the table and index names
// but does no I/O.
func New(client *dynamodb.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("dynamostore: nil DynamoDB client")
	}
	if !validName(cfg.SessionsTable) {
		return nil, fmt.Errorf("dynamostore: invalid sessions table name %q (3-255 characters of [A-Za-z0-9_.-])", cfg.SessionsTable)
	}
	if cfg.UsersTable != "" && !validName(cfg.UsersTable) {
		return nil, fmt.Errorf("dynamostore: invalid users table name %q (3-255 characters of [A-Za-z0-9_.-])", cfg.UsersTable)
	}
	if cfg.SessionsTable == cfg.UsersTable {
		return nil, fmt.Errorf("dynamostore: sessions and users tables must differ (both %q)", cfg.SessionsTable)
	}
	s := &Store{
		db:       client,
		sessions: cfg.SessionsTable,
		users:    cfg.UsersTable,
		index:    cfg.UserIndex,
		now:      cfg.Now,
		timeout:  cfg.OpTimeout,
		log:      cfg.Logger,
		newToken: cfg.NewToken,
	}
	if s.index == "" {
		s.index = DefaultUserIndex
	} else if !validName(s.index) {
		return nil, fmt.Errorf("dynamostore: invalid index name %q", s.index)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout < 0 {
		return nil, errors.New("dynamostore: negative OpTimeout")
	}
	if s.timeout == 0 {
		s.timeout = DefaultOpTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.newToken == nil {
		s.newToken = session.NewID
	}
	return s, nil
}

func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func sidKey(hash string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrSID: &types.AttributeValueMemberS{Value: hash}}
}

// fail maps a store error: session.ErrUnavailable (wrapped) when the store
// did not answer, a plain wrapped error otherwise (misconfiguration such as
// a missing table or denied access, or a bug), and logs it with ctx (so the
// line carries the Lambda request id).
func (s *Store) fail(ctx context.Context, log *slog.Logger, what string, err error) error {
	if dynamoclient.Unavailable(err) {
		log.WarnContext(ctx, "session store unavailable", "err", err)
	} else {
		log.ErrorContext(ctx, "session store request failed", "err", err, "alert", true)
	}
	return dynamoclient.Wrap("dynamostore: "+what, err)
}
