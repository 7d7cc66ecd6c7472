package dynamostore_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

// server is the package's shared dynalite (or the external server of
// dynalitetest.EnvEndpoint); each test makes its own tables.
var server *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &server) }

// counter is an HTTP client that counts DynamoDB requests by operation.
type counter struct {
	next dynamodb.HTTPClient
	mu   sync.Mutex
	ops  map[string]int
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	if c.ops == nil {
		c.ops = map[string]int{}
	}
	c.ops[op]++
	c.mu.Unlock()
	return c.next.Do(r)
}

// take returns the counts since the last call and resets them.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	if ops == nil {
		ops = map[string]int{}
	}
	return ops
}

func total(ops map[string]int) int {
	n := 0
	for _, v := range ops {
		n += v
	}
	return n
}

// newClient builds the production client (dynamoclient.New) pointed at ep,
// with requests counted.
func newClient(t testing.TB, ep string) (*dynamodb.Client, *counter) {
	c, cnt, _ := newLosingClient(t, ep)
	return c, cnt
}

// newLosingClient is newClient with a faultservers.LoseAnswer under the
// counter, not armed.
func newLosingClient(t testing.TB, ep string) (*dynamodb.Client, *counter, *faultservers.LoseAnswer) {
	t.Helper()
	env := map[string]string{config.VarDynamoDBEndpoint: ep}
	_, cfg, err := dynamoclient.New(context.Background(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("dynamoclient.New: %v", err)
	}
	lose := faultservers.NewLoseAnswer(cfg.HTTPClient)
	cnt := &counter{next: lose}
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ep)
		o.HTTPClient = cnt
	})
	return c, cnt, lose
}

// env is one test's store on fresh tables of the shared dynalite.
type env struct {
	store    *dynamostore.Store
	client   *dynamodb.Client
	count    *counter
	lose     *faultservers.LoseAnswer // arm it with Lose
	clock    *testutil.Clock
	logs     *testutil.Buffer
	sessions string
	users    string
}

// newEnv creates fresh tables and a store on them; cfg's table names,
// clock and logger are filled in.
func newEnv(t *testing.T, cfg dynamostore.Config) *env {
	t.Helper()
	c, cnt, lose := newLosingClient(t, server.Endpoint)
	e := &env{
		client: c,
		count:  cnt,
		lose:   lose,
		clock:  testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		logs:   &testutil.Buffer{},
	}
	tables := dynalitetest.Tables(t, c, "SessionsTable", "UsersTable")
	e.sessions, e.users = tables["SessionsTable"], tables["UsersTable"]
	cfg.SessionsTable, cfg.UsersTable = e.sessions, e.users
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := dynamostore.New(c, cfg)
	if err != nil {
		t.Fatalf("dynamostore.New: %v", err)
	}
	e.store = s
	cnt.take()
	return e
}

// newCodeHash returns the hash of a fresh code-derived session id, and the id.
func newCodeHash(t testing.TB) (raw, hash string) {
	t.Helper()
	code, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	raw = session.IDFromCode([]byte("test-code-key"), appID, code)
	return raw, session.Hash(raw)
}

// createSession is a whole login on s: Claim a fresh code, then Issue for
// ident with in's other fields (in.Policy.TTL defaults to ttl).
func createSession(ctx context.Context, s *dynamostore.Store, ident session.Identity, ttl time.Duration, in dynamostore.IssueInput) (string, session.Session, []dynamostore.Ended, error) {
	code, err := session.NewID()
	if err != nil {
		return "", session.Session{}, nil, err
	}
	raw := session.IDFromCode([]byte("test-code-key"), appID, code)
	c, err := s.Claim(ctx, session.Hash(raw), in.DeviceID)
	if err != nil {
		return "", session.Session{}, nil, err
	}
	in.Claim, in.Identity = c, ident
	if in.AppID == "" {
		in.AppID = appID
	}
	if in.Policy.TTL == 0 {
		in.Policy.TTL = ttl
	}
	sess, ended, err := s.Issue(ctx, in)
	return raw, sess, ended, err
}

// create is createSession on e's store, failing t.
func (e *env) create(t testing.TB, ident session.Identity, in dynamostore.IssueInput) (string, session.Session, []dynamostore.Ended) {
	t.Helper()
	// A deadline, so that a login that waits for ever (a claim pending on
	// a clock that does not move) fails the test instead of the package.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	raw, s, ended, err := createSession(ctx, e.store, ident, time.Hour, in)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return raw, s, ended
}
