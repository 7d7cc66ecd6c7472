// Package wxtoken keeps one WeChat access_token per appid, shared by every
// Lambda instance through a DynamoDB item (docs/design.md §7).
//
// The tokens table (template.yaml: TokensTable, partition key "appid") holds
// one item per app:
//
//	appid         S  the mini-program's appid (key)
//	access_token  S  the current token (never logged, never returned to a client)
//	expires_at    N  when it expires, epoch milliseconds
//	refreshed_at  N  when it was last written, epoch milliseconds
//	forced_at     N  when the latest forced refresh was started, epoch milliseconds
//	lease_owner   S  the instance refreshing it now, if any
//	lease_until   N  when that lease ends, epoch milliseconds
//
// A refresh takes the lease with a conditional UpdateItem (only when no
// unexpired lease exists and the token still needs refreshing), calls
// getStableAccessToken, and writes token, expiry and refreshed_at while
// removing the lease in one UpdateItem conditioned on still owning the
// lease. Every item write is atomic, so a reader sees the old token or the
// new one, never a mix; a refresher that dies leaves a lease that simply
// ends, after which the next caller takes it. Instances that lose the race
// keep using the current token while it is still valid, or poll the item
// until the new token appears.
//
// A token WeChat rejects (40001, 42001, 40014) is recovered by Invalidate:
// one forced refresh for all instances (the lease's condition also requires
// the item to still hold the rejected token and no forced refresh to have
// started within ForcedRefreshInterval), the others read its result.
package wxtoken

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/backoff"
	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/secret"
	"github.com/wxsession/wxsession/internal/wechat"
)

// Attribute names of the tokens table; template.yaml declares the key.
const (
	AttrAppID       = "appid"
	AttrToken       = "access_token"
	AttrExpiresAt   = "expires_at"
	AttrRefreshedAt = "refreshed_at"
	AttrForcedAt    = "forced_at"
	AttrLeaseOwner  = "lease_owner"
	AttrLeaseUntil  = "lease_until"
)

// Defaults of Config.
const (
	// DefaultRefreshAhead: a token with less than this left is refreshed.
	// WeChat's normal mode hands out a new token only in the current one's
	// last 5 minutes, so refreshing earlier would get the same token back.
	DefaultRefreshAhead = 4 * time.Minute
	// DefaultLeaseTTL bounds a refresh: longer than a stable_token call
	// with its retries (about 6.3 s) plus the write.
	DefaultLeaseTTL = 10 * time.Second
	// ForcedRefreshInterval: at most one forced refresh per appid in this
	// interval (WeChat ignores forced refreshes closer together).
	ForcedRefreshInterval = 30 * time.Second
	// minRefreshInterval: a normal refresh is not repeated within this
	// interval unless the token has expired (guards against a clock skew
	// that makes WeChat hand back the same, nearly expired token).
	minRefreshInterval = 30 * time.Second
)

// Errors.
var (
	// ErrUnavailable: no usable token now (the store or WeChat failed, or
	// the wait for another instance's refresh ran out). Callers answer 503.
	ErrUnavailable = errors.New("wxtoken: access_token unavailable")
	// ErrForcedRefreshLimited: the token was rejected but a forced refresh
	// started less than ForcedRefreshInterval ago and did not replace it.
	ErrForcedRefreshLimited = errors.New("wxtoken: access_token rejected and a forced refresh ran less than 30 s ago")
)

// Fetcher calls getStableAccessToken (implemented by *wechat.Client).
type Fetcher interface {
	StableToken(ctx context.Context, force bool) (token string, expiresIn time.Duration, err error)
}

// Config configures a Source.
type Config struct {
	// Table is the tokens table. Required.
	Table string
	// AppID is the appid whose token this Source keeps. Required.
	AppID string
	// Fetch gets tokens from WeChat. Required.
	Fetch Fetcher
	// RefreshAhead, LeaseTTL: see the defaults.
	RefreshAhead time.Duration
	LeaseTTL     time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets one line per refresh (never the token); nil means
	// slog.Default().
	Logger *slog.Logger
	// Metrics gets one TokenRefreshes line per refresh; nil writes nothing.
	Metrics *metrics.Emitter
	// Audit gets one token_refreshed line per refresh; nil writes nothing.
	Audit *audit.Logger
}

// Source hands out the shared token. It is safe for concurrent use; calls
// within one process are serialised, so a process makes at most one
// DynamoDB round trip at a time for its token.
type Source struct {
	db    *dynamodb.Client
	cfg   Config
	owner string

	mu         sync.Mutex
	mem        cached // guarded by mu
	leases     int    // leases tried, guarded by mu
	leaseOwner string // the lease_owner of the latest lease tried, guarded by mu
}

type cached struct {
	token   string
	expires time.Time
}

// New returns a Source; it does no I/O.
func New(db *dynamodb.Client, cfg Config) (*Source, error) {
	switch {
	case db == nil:
		return nil, errors.New("wxtoken: nil DynamoDB client")
	case cfg.Table == "":
		return nil, errors.New("wxtoken: no tokens table")
	case cfg.AppID == "":
		return nil, errors.New("wxtoken: no appid")
	case cfg.Fetch == nil:
		return nil, errors.New("wxtoken: no fetcher")
	}
	if cfg.RefreshAhead <= 0 {
		cfg.RefreshAhead = DefaultRefreshAhead
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var b [12]byte
	_, _ = crand.Read(b[:])
	return &Source{db: db, cfg: cfg, owner: hex.EncodeToString(b[:])}, nil
}

// item is the decoded tokens-table item.
type item struct {
	token       string
	expires     time.Time
	refreshedAt time.Time
	forcedAt    time.Time
	leaseUntil  time.Time
}

// Token returns a valid token: from memory when it has more than
// RefreshAhead left, else from the table, refreshing it (one instance at a
// time) when needed. Errors match ErrUnavailable.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token(ctx)
}

// token is Token with s.mu held.
func (s *Source) token(ctx context.Context) (string, error) {
	if s.fresh(s.mem) {
		return s.mem.token, nil
	}
	for wait := 0; ; wait++ {
		it, err := s.get(ctx)
		if err != nil {
			return "", err
		}
		now := s.cfg.Now()
		if it.token != "" && it.expires.Sub(now) > s.cfg.RefreshAhead {
			s.mem = cached{it.token, it.expires}
			return it.token, nil
		}
		recent := !it.refreshedAt.IsZero() && now.Sub(it.refreshedAt) < minRefreshInterval && now.Before(it.expires)
		won := false
		if !recent {
			if won, err = s.lease(ctx, now, false, ""); err != nil && (it.token == "" || !now.Before(it.expires)) {
				return "", err
			}
		}
		if won {
			// With a valid token in hand, a failed fetch keeps the lease
			// until it ends: during a WeChat outage one call per LeaseTTL
			// tries again, instead of every request paying for a fetch.
			valid := it.token != "" && now.Before(it.expires)
			tok, err := s.refresh(ctx, false, valid)
			if err != nil && valid {
				s.cfg.Logger.WarnContext(ctx, "access_token refresh failed; using the current one until it expires",
					"appid", s.cfg.AppID, "error", err.Error())
				return it.token, nil
			}
			return tok, err
		}
		if it.token != "" && now.Before(it.expires) {
			// Another instance is refreshing (or just did): the current
			// token stays valid until it expires.
			s.mem = cached{it.token, it.expires}
			return it.token, nil
		}
		if err := s.pause(ctx, wait); err != nil {
			return "", err
		}
	}
}

// Invalidate is called after WeChat rejected token (40001, 42001, 40014). It
// returns a different, valid token: the one another instance already put in
// the table, or a new one from a forced refresh that this call makes when
// it wins the lease. However many callers present the same rejected token,
// at most one forced refresh per ForcedRefreshInterval is made per appid.
// Errors match ErrUnavailable or ErrForcedRefreshLimited.
func (s *Source) Invalidate(ctx context.Context, rejected string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem.token != rejected && s.fresh(s.mem) {
		return s.mem.token, nil
	}
	s.mem = cached{}
	for wait := 0; ; wait++ {
		it, err := s.get(ctx)
		if err != nil {
			return "", err
		}
		now := s.cfg.Now()
		if it.token != rejected {
			// Another instance replaced it already (or the item lost it):
			// the normal path reads or refreshes it.
			return s.token(ctx)
		}
		won, err := s.lease(ctx, now, true, rejected)
		if err != nil {
			return "", err
		}
		if won {
			return s.refresh(ctx, true, false)
		}
		if !now.Before(it.leaseUntil) && !it.forcedAt.IsZero() && now.Sub(it.forcedAt) < ForcedRefreshInterval {
			// No refresh is running and the limit forbids another.
			return "", fmt.Errorf("wxtoken: appid %s: %w", s.cfg.AppID, ErrForcedRefreshLimited)
		}
		if err := s.pause(ctx, wait); err != nil {
			return "", err
		}
	}
}

// fresh reports whether c has more than RefreshAhead left.
func (s *Source) fresh(c cached) bool {
	return c.token != "" && c.expires.Sub(s.cfg.Now()) > s.cfg.RefreshAhead
}

// Poll is the delay between reads of the item while another instance
// refreshes: full jitter, 20 ms doubling to 320 ms.
var Poll = backoff.Policy{Base: 20 * time.Millisecond, Cap: 320 * time.Millisecond}

// pause waits before polling the item again, or until ctx ends.
func (s *Source) pause(ctx context.Context, n int) error {
	if err := Poll.Wait(ctx, n+1); err != nil {
		return fmt.Errorf("wxtoken: waiting for another instance's refresh: %w: %w", ErrUnavailable, context.Cause(ctx))
	}
	return nil
}

func (s *Source) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrAppID: &types.AttributeValueMemberS{Value: s.cfg.AppID}}
}

func ms(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

// get reads the item (strongly consistent). A missing item, or one whose
// token or expiry is missing or malformed, reads as "no token".
func (s *Source) get(ctx context.Context) (item, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.cfg.Table),
		Key:            s.key(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return item{}, fmt.Errorf("wxtoken: %w: %w", ErrUnavailable, dynamoclient.Wrap("read token item", err))
	}
	var it item
	num := func(name string) time.Time {
		if v, ok := out.Item[name].(*types.AttributeValueMemberN); ok {
			if n, err := strconv.ParseInt(v.Value, 10, 64); err == nil && n > 0 {
				return time.UnixMilli(n)
			}
		}
		return time.Time{}
	}
	it.expires = num(AttrExpiresAt)
	it.refreshedAt = num(AttrRefreshedAt)
	it.forcedAt = num(AttrForcedAt)
	it.leaseUntil = num(AttrLeaseUntil)
	if v, ok := out.Item[AttrToken].(*types.AttributeValueMemberS); ok && v.Value != "" && !it.expires.IsZero() {
		it.token = v.Value
	} else {
		it.expires = time.Time{}
	}
	return it, nil
}

// lease tries to take the refresh lease. A normal refresh takes it only
// while no unexpired lease exists and the token is missing or within
// RefreshAhead of expiry (and not refreshed within minRefreshInterval); a
// forced one only while the item still holds the rejected token (or none)
// and no forced refresh started within ForcedRefreshInterval, and it
// records forced_at. false means someone else holds it or the condition no
// longer holds (the caller re-reads); an error means the store failed.
func (s *Source) lease(ctx context.Context, now time.Time, force bool, rejected string) (bool, error) {
	// Each lease has an owner value of its own (the instance and a
	// count), so that a lease taken with its answer lost is told from one
	// this instance took before and still holds.
	s.leases++
	s.leaseOwner = s.owner + "-" + strconv.Itoa(s.leases)
	names := map[string]string{"#lu": AttrLeaseUntil, "#lo": AttrLeaseOwner}
	values := map[string]types.AttributeValue{
		":now":   ms(now),
		":until": ms(now.Add(s.cfg.LeaseTTL)),
		":me":    &types.AttributeValueMemberS{Value: s.leaseOwner},
	}
	update := "SET #lu = :until, #lo = :me"
	cond := "(attribute_not_exists(#lu) OR #lu <= :now)"
	if force {
		names["#tok"], names["#fa"] = AttrToken, AttrForcedAt
		values[":rej"] = &types.AttributeValueMemberS{Value: rejected}
		values[":forcedBefore"] = ms(now.Add(-ForcedRefreshInterval))
		update += ", #fa = :now"
		cond += " AND (attribute_not_exists(#tok) OR #tok = :rej) AND (attribute_not_exists(#fa) OR #fa <= :forcedBefore)"
	} else {
		names["#exp"], names["#ra"] = AttrExpiresAt, AttrRefreshedAt
		values[":ahead"] = ms(now.Add(s.cfg.RefreshAhead))
		values[":recent"] = ms(now.Add(-minRefreshInterval))
		cond += " AND (attribute_not_exists(#exp) OR #exp <= :ahead) AND (attribute_not_exists(#ra) OR #ra <= :recent OR #exp <= :now)"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.cfg.Table),
		Key:                       s.key(),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			// The condition also fails when this very write was applied
			// and its answer lost: the SDK's retry then finds our lease
			// (docs/design.md §3.10). Without this read the instance would
			// wait for its own lease to end, and a forced refresh would be
			// refused for ForcedRefreshInterval without having been made.
			cur, gerr := s.read(ctx, AttrLeaseOwner)
			if gerr != nil {
				return false, gerr
			}
			if cur == s.leaseOwner {
				s.cfg.Logger.InfoContext(ctx, "access_token lease taken although its answer was lost", "appid", s.cfg.AppID)
				return true, nil
			}
			return false, nil
		}
		s.cfg.Logger.WarnContext(ctx, "access_token lease write failed", "appid", s.cfg.AppID, "error", err.Error())
		return false, fmt.Errorf("wxtoken: %w: %w", ErrUnavailable, dynamoclient.Wrap("take the refresh lease", err))
	}
	return true, nil
}

// read reads one string attribute of the item (strongly consistent); ""
// when absent.
func (s *Source) read(ctx context.Context, attr string) (string, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.cfg.Table),
		Key:                      s.key(),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#a"),
		ExpressionAttributeNames: map[string]string{"#a": attr},
	})
	if err != nil {
		return "", fmt.Errorf("wxtoken: %w: %w", ErrUnavailable, dynamoclient.Wrap("read token item", err))
	}
	v, _ := out.Item[attr].(*types.AttributeValueMemberS)
	if v == nil {
		return "", nil
	}
	return v.Value, nil
}

// refresh holds the lease: it fetches a token and writes it, releasing the
// lease in the same write. The token is returned even when the write fails
// (it is valid at WeChat; other instances will take the lease once it
// ends and fetch it again). A failed fetch releases the lease at once
// unless keepOnFailure.
func (s *Source) refresh(ctx context.Context, force, keepOnFailure bool) (string, error) {
	start := s.cfg.Now()
	tok, ttl, err := s.cfg.Fetch.StableToken(ctx, force)
	if err != nil {
		s.cfg.Metrics.TokenRefresh(ctx, metrics.OutcomeFailed)
		if !keepOnFailure {
			s.release(ctx)
		}
		return "", fmt.Errorf("wxtoken: stable_token: %w: %w", ErrUnavailable, err)
	}
	now := s.cfg.Now()
	expires := now.Add(ttl)
	_, werr := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.cfg.Table),
		Key:                 s.key(),
		UpdateExpression:    aws.String("SET #tok = :tok, #exp = :exp, #ra = :now REMOVE #lu, #lo"),
		ConditionExpression: aws.String("#lo = :me"),
		ExpressionAttributeNames: map[string]string{"#tok": AttrToken, "#exp": AttrExpiresAt, "#ra": AttrRefreshedAt,
			"#lu": AttrLeaseUntil, "#lo": AttrLeaseOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":tok": &types.AttributeValueMemberS{Value: tok},
			":exp": ms(expires),
			":now": ms(now),
			":me":  &types.AttributeValueMemberS{Value: s.leaseOwner},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(werr, &ccf) {
		// Applied with its answer lost, the SDK's retry finds the lease
		// gone: the item holding our token says it was stored.
		if cur, rerr := s.read(ctx, AttrToken); rerr == nil && cur == tok {
			werr = nil
		}
	}
	attrs := []any{"appid", s.cfg.AppID, "forced", force, "expires_in_s", int64(ttl / time.Second),
		"duration_ms", now.Sub(start).Milliseconds()}
	if werr != nil {
		s.cfg.Logger.WarnContext(ctx, "access_token refreshed but not stored", append(attrs, "error", werr.Error())...)
	} else {
		s.cfg.Logger.InfoContext(ctx, "access_token refreshed", attrs...)
	}
	s.cfg.Metrics.TokenRefresh(ctx, metrics.OutcomeOK)
	reason := "expiring"
	if force {
		reason = "rejected"
	}
	s.cfg.Audit.Record(ctx, audit.Record{Event: audit.TokenRefreshed, Actor: audit.ActorSystem, AppID: s.cfg.AppID, Reason: reason})
	s.mem = cached{tok, expires}
	return tok, nil
}

// release gives the lease up after a failed fetch, so that the next caller
// need not wait for it to end (best effort: it ends anyway).
func (s *Source) release(ctx context.Context) {
	_, _ = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.cfg.Table),
		Key:                       s.key(),
		UpdateExpression:          aws.String("REMOVE #lu, #lo"),
		ConditionExpression:       aws.String("#lo = :me"),
		ExpressionAttributeNames:  map[string]string{"#lu": AttrLeaseUntil, "#lo": AttrLeaseOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: s.leaseOwner}},
	})
}

// FromEnv builds the Sources of a Lambda function from its environment
// (config.LoadWeChatAPI: WECHAT_APPID or WECHAT_APPS, WECHAT_API_BASE,
// TOKENS_TABLE, METRICS_NAMESPACE and each app's secret), with db and awsCfg
// for the tables and the secrets; metric and audit lines go to standard
// output. It returns one Source per app served, by appid (docs/design.md
// §7.9: each app has its own token item and secret), and the
// configuration (its AppID is the default app, its APIBase WeChat's hosts).
func FromEnv(ctx context.Context, getenv func(string) string, db *dynamodb.Client, awsCfg aws.Config, logger *slog.Logger) (map[string]*Source, config.WeChatAPI, error) {
	cfg, err := config.LoadWeChatAPI(getenv)
	if err != nil {
		return nil, cfg, err
	}
	m := metrics.New(os.Stdout, cfg.MetricsNamespace)
	al := audit.New(os.Stdout, audit.ActorSystem)
	out := make(map[string]*Source, len(cfg.Apps))
	for _, a := range cfg.Apps {
		appSecret, err := secret.Source{Getenv: getenv, AWS: awsCfg}.LoadApp(ctx, a)
		if err != nil {
			return nil, cfg, err
		}
		wx, err := wechat.New(wechat.Config{AppID: a.AppID, Secret: appSecret, BaseURLs: cfg.APIBase, Logger: logger, Metrics: m})
		if err != nil {
			return nil, cfg, err
		}
		src, err := New(db, Config{Table: cfg.TokensTable, AppID: a.AppID, Fetch: wx, Logger: logger, Metrics: m, Audit: al})
		if err != nil {
			return nil, cfg, err
		}
		out[a.AppID] = src
	}
	return out, cfg, nil
}
