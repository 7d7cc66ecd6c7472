package wxtoken_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/internal/wxtoken"
)

var srv *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &srv) }

// env is one app: an emulator, a tokens table, and a factory of Sources
// (each one an "instance" with its own memory).
type env struct {
	t     *testing.T
	emu   *wechatemu.Emulator
	wx    *wechat.Client
	db    *dynamodb.Client
	table string
	logs  *testutil.Buffer
	now   func() time.Time
}

func newEnv(t *testing.T, endpoint string) *env {
	t.Helper()
	e := &env{t: t, logs: &testutil.Buffer{}}
	e.emu = wechatemu.New(wechatemu.Config{Logger: slog.New(slog.DiscardHandler)})
	hs := httptest.NewServer(e.emu)
	t.Cleanup(hs.Close)
	var err error
	e.wx, err = wechat.New(wechat.Config{AppID: wechatemu.DefaultAppID, Secret: wechatemu.DefaultSecret,
		BaseURLs: []string{hs.URL}, Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if endpoint == "" {
		endpoint = srv.Endpoint
	}
	e.db, err = dynalite.LocalClient(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	e.table = dynalitetest.Tables(t, dynalitetest.Client(t, srv), "TokensTable")["TokensTable"]
	t.Cleanup(func() {
		for _, tok := range e.emu.Tokens() {
			if strings.Contains(e.logs.String(), tok) {
				t.Errorf("an access_token is in the logs")
			}
		}
	})
	return e
}

func (e *env) source(edit func(*wxtoken.Config)) *wxtoken.Source {
	e.t.Helper()
	cfg := wxtoken.Config{Table: e.table, AppID: wechatemu.DefaultAppID, Fetch: e.wx,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Now: e.now}
	if edit != nil {
		edit(&cfg)
	}
	s, err := wxtoken.New(e.db, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// concurrently runs fn on n fresh Sources (n cold instances) at once.
func (e *env) concurrently(n int, fn func(*wxtoken.Source) (string, error)) []string {
	e.t.Helper()
	srcs := make([]*wxtoken.Source, n)
	for i := range srcs {
		srcs[i] = e.source(nil)
	}
	out := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = fn(srcs[i])
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestColdCacheOneFetch(t *testing.T) {
	e := newEnv(t, "")
	toks := e.concurrently(16, func(s *wxtoken.Source) (string, error) { return s.Token(context.Background()) })
	for _, tok := range toks {
		if tok != toks[0] || tok == "" {
			t.Fatalf("instances got different tokens")
		}
	}
	if n := e.emu.Stats().StableToken; n != 1 {
		t.Errorf("stable_token calls = %d, want 1", n)
	}
	// A new instance reads the table; no call.
	if tok, err := e.source(nil).Token(context.Background()); err != nil || tok != toks[0] {
		t.Fatalf("warm read: %v", err)
	}
	if n := e.emu.Stats().StableToken; n != 1 {
		t.Errorf("stable_token calls after a warm read = %d, want 1", n)
	}
}

func TestInvalidateOneForcedRefresh(t *testing.T) {
	e := newEnv(t, "")
	old, err := e.source(nil).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.emu.InvalidateTokens()
	toks := e.concurrently(16, func(s *wxtoken.Source) (string, error) { return s.Invalidate(context.Background(), old) })
	for _, tok := range toks {
		if tok == old || tok != toks[0] {
			t.Fatalf("instances got the rejected token or different ones")
		}
	}
	st := e.emu.Stats()
	if st.StableToken != 2 || st.StableTokenForced != 1 {
		t.Errorf("stable_token calls %d (forced %d), want 2 (1)", st.StableToken, st.StableTokenForced)
	}
	// The same rejected token again, after the refresh: no new call.
	if tok, err := e.source(nil).Invalidate(context.Background(), old); err != nil || tok != toks[0] {
		t.Fatalf("late invalidate: %v", err)
	}
	// The new token rejected within 30 s: no second forced refresh.
	_, err = e.source(nil).Invalidate(context.Background(), toks[0])
	if !errors.Is(err, wxtoken.ErrForcedRefreshLimited) {
		t.Errorf("second invalidation within 30 s: %v, want ErrForcedRefreshLimited", err)
	}
	if st := e.emu.Stats(); st.StableTokenForced != 1 {
		t.Errorf("forced refreshes = %d, want 1", st.StableTokenForced)
	}
}

func TestRefreshAheadOfExpiry(t *testing.T) {
	e := newEnv(t, "")
	var mu sync.Mutex
	now := time.Now()
	e.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	emuNow := func() time.Time { return e.now() }
	e.emu = wechatemu.New(wechatemu.Config{Now: emuNow, Logger: slog.New(slog.DiscardHandler)})
	hs := httptest.NewServer(e.emu)
	t.Cleanup(hs.Close)
	e.wx, _ = wechat.New(wechat.Config{AppID: wechatemu.DefaultAppID, Secret: wechatemu.DefaultSecret, BaseURLs: []string{hs.URL}})
	s := e.source(nil)
	first, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(7200*time.Second - 3*time.Minute) // inside the 4-minute window
	mu.Unlock()
	second, err := e.source(nil).Token(context.Background())
	if err != nil || second == first {
		t.Fatalf("refresh ahead: %v, same token %v", err, second == first)
	}
	// The first instance's memory is stale too: it reads the new token.
	if tok, _ := s.Token(context.Background()); tok != second {
		t.Errorf("first instance kept the old token")
	}
	if n := e.emu.Stats().StableToken; n != 2 {
		t.Errorf("stable_token calls = %d, want 2", n)
	}
}

// TestCrashedRefresherLeaseExpires: a lease left by an instance that died
// mid-refresh blocks nobody for longer than the lease.
func TestCrashedRefresherLeaseExpires(t *testing.T) {
	e := newEnv(t, "")
	until := time.Now().Add(1500 * time.Millisecond)
	_, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(e.table),
		Item: map[string]types.AttributeValue{
			wxtoken.AttrAppID:      &types.AttributeValueMemberS{Value: wechatemu.DefaultAppID},
			wxtoken.AttrLeaseOwner: &types.AttributeValueMemberS{Value: "crashed"},
			wxtoken.AttrLeaseUntil: &types.AttributeValueMemberN{Value: strconv.FormatInt(until.UnixMilli(), 10)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := e.source(nil).Token(ctx)
	if err != nil || tok == "" {
		t.Fatalf("after a crashed refresher: %v", err)
	}
	if time.Now().Before(until) {
		t.Errorf("token handed out while the crashed lease was live")
	}
	if n := e.emu.Stats().StableToken; n != 1 {
		t.Errorf("stable_token calls = %d, want 1", n)
	}
}

// TestStoreFaultDuringRefresh: the write of a fresh token fails (DynamoDB
// 500s for every UpdateItem after the lease). The refresher still answers
// with the token it got; the table never holds a partial item; once the
// store recovers and the lease ends, another instance fetches and stores.
func TestStoreFaultDuringRefresh(t *testing.T) {
	proxy, err := faultservers.NewProxy(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	if err := proxy.SetUpstream(srv.Endpoint); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, proxy.URL())
	// The lease write passes; once WeChat has answered, every UpdateItem
	// (the token write with the SDK's retries, and the release) fails.
	ctx := context.Background()
	fetch := &faultingFetcher{next: e.wx, after: func() {
		proxy.SetRules(faultservers.Rule{Op: "UpdateItem", Table: e.table, Action: faultservers.ServerError})
	}}
	s := e.source(func(c *wxtoken.Config) { c.LeaseTTL = time.Second; c.Fetch = fetch })
	tok, err := s.Token(ctx)
	if err != nil || tok == "" {
		t.Fatalf("refresher with a failing store write: %v", err)
	}
	out, err := e.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{wxtoken.AttrAppID: &types.AttributeValueMemberS{Value: wechatemu.DefaultAppID}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, has := out.Item[wxtoken.AttrToken]; has {
		t.Fatalf("the failed write left a token in the table")
	}
	if _, has := out.Item[wxtoken.AttrLeaseOwner]; !has {
		t.Fatalf("the lease should still be there (the release failed too)")
	}
	proxy.SetRules()
	ctx2, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok2, err := e.source(nil).Token(ctx2)
	if err != nil || tok2 != tok {
		t.Fatalf("after recovery: %v (same token: %v)", err, tok2 == tok)
	}
	if n := e.emu.Stats().StableToken; n != 2 {
		t.Errorf("stable_token calls = %d, want 2", n)
	}
}

// TestFetchFailureReleasesLease: a WeChat failure during the refresh frees
// the lease at once, and the error matches ErrUnavailable.
func TestFetchFailureReleasesLease(t *testing.T) {
	e := newEnv(t, "")
	if err := e.emu.SetFaults(wechatemu.Fault{API: wechatemu.APIStableToken, Status: 503, Count: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := e.source(nil).Token(context.Background())
	if !errors.Is(err, wxtoken.ErrUnavailable) || !errors.Is(err, wechat.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if tok, err := e.source(func(c *wxtoken.Config) { c.LeaseTTL = time.Hour }).Token(ctx); err != nil || tok == "" {
		t.Fatalf("next caller: %v", err)
	}
}

// faultingFetcher runs after once WeChat has answered.
type faultingFetcher struct {
	next  wxtoken.Fetcher
	after func()
}

func (f *faultingFetcher) StableToken(ctx context.Context, force bool) (string, time.Duration, error) {
	tok, ttl, err := f.next.StableToken(ctx, force)
	f.after()
	return tok, ttl, err
}

// TestOutageDuringRefreshAhead: WeChat failing while the token is in its
// refresh window: callers keep the current token, and only one fetch is
// tried per lease (not one per request).
func TestOutageDuringRefreshAhead(t *testing.T) {
	e := newEnv(t, "")
	var mu sync.Mutex
	now := time.Now()
	e.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	first, err := e.source(nil).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(7200*time.Second - 3*time.Minute)
	mu.Unlock()
	if err := e.emu.SetFaults(wechatemu.Fault{API: wechatemu.APIStableToken, Status: 503, Count: 100}); err != nil {
		t.Fatal(err)
	}
	before := e.emu.Stats().StableToken
	for i := range 5 {
		tok, err := e.source(nil).Token(context.Background())
		if err != nil || tok != first {
			t.Fatalf("request %d during the outage: %v (same token %v)", i, err, tok == first)
		}
	}
	if d := e.emu.Stats().StableToken - before; d != 3 { // one fetch: 3 attempts
		t.Errorf("stable_token calls during the outage = %d, want 3 (one fetch with its retries)", d)
	}
}
