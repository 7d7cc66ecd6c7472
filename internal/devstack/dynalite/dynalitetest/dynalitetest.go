// Package dynalitetest gives tests in any package a real DynamoDB-compatible
// server: the npm-pinned dynalite, in memory, on a free port, or, when the
// environment variable WXSESSION_TEST_DYNAMODB_ENDPOINT is set, the external
// server at that URL (DynamoDB Local, LocalStack, moto's server: `make
// test-moto` runs the suites against moto). Tests make their own tables
// (see TableName), so several runs can share an external server.
//
// Node.js must be installed; a test that needs dynalite fails (it does not
// skip) when it cannot start, so a CI without node cannot pass silently.
package dynalitetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/samtemplate"
	"github.com/wxsession/wxsession/internal/repo"
)

// EnvEndpoint names the environment variable that points every suite using
// this package (and the end-to-end suite) at an external DynamoDB-compatible
// server instead of dynalite (docs/design.md §6).
const EnvEndpoint = "WXSESSION_TEST_DYNAMODB_ENDPOINT"

// ExternalEndpoint returns the value of EnvEndpoint ("" = use dynalite).
func ExternalEndpoint() string { return strings.TrimSuffix(os.Getenv(EnvEndpoint), "/") }

// start starts an in-memory dynalite, or returns the external server.
func start(ctx context.Context) (*dynalite.Server, error) {
	if ep := ExternalEndpoint(); ep != "" {
		return dynalite.External(ep), nil
	}
	return dynalite.Start(ctx, dynalite.Options{Logger: slog.New(slog.DiscardHandler)})
}

// NewTestServer starts an in-memory dynalite on a free port of 127.0.0.1
// (or uses the external server, see EnvEndpoint) and stops it in t.Cleanup. It fails the test if the server cannot start.
// Packages with many tests may rather start one server in TestMain with
// dynalite.Start and give each test its own tables (see TableName).
func NewTestServer(t testing.TB) *dynalite.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // includes a possible npm ci
	defer cancel()
	s, err := start(ctx)
	if err != nil {
		t.Fatalf("start dynalite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop dynalite: %v", err)
		}
	})
	return s
}

// Client returns a client for s (see dynalite.LocalClient), failing the test
// on error.
func Client(t testing.TB, s *dynalite.Server, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	c, err := dynalite.LocalClient(context.Background(), s.Endpoint, optFns...)
	if err != nil {
		t.Fatalf("dynalite client: %v", err)
	}
	return c
}

var notTableChar = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// TableName returns a table name unique to this test run: base, the test's
// name and a random suffix, within DynamoDB's 255-character limit.
func TableName(t testing.TB, base string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := notTableChar.ReplaceAllString(base+"-"+t.Name(), "-")
	name = strings.Trim(name, "-")
	if len(name) > 200 {
		name = name[:200]
	}
	return name + "-" + hex.EncodeToString(b[:])
}

// templateTables caches template.yaml's tables, read once per test binary.
var templateTables = sync.OnceValues(func() (map[string]samtemplate.Table, error) {
	root, err := repo.Root("")
	if err != nil {
		return nil, err
	}
	// The appid parameter has no default; any valid value does, only the
	// tables are used.
	tmpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"), map[string]string{"WeChatAppId": "wx0000000000000000"})
	if err != nil {
		return nil, err
	}
	return tmpl.Tables, nil
})

// Tables creates template.yaml's tables with the given logical ids (every
// table of the template when none is given) on c, each under a name unique
// to this test (see TableName), waits until they are ACTIVE and returns the
// names by logical id. template.yaml is the only table schema: tests, the
// local stack and AWS all create their tables from it.
func Tables(t testing.TB, c *dynamodb.Client, logicalIDs ...string) map[string]string {
	t.Helper()
	all, err := templateTables()
	if err != nil {
		t.Fatalf("read template.yaml: %v", err)
	}
	if len(logicalIDs) == 0 {
		logicalIDs = slices.Sorted(maps.Keys(all))
	}
	names := map[string]string{}
	var tables []dynalite.Table
	for _, id := range logicalIDs {
		tt, ok := all[id]
		if !ok {
			t.Fatalf("template.yaml has no table %s (tables: %v)", id, slices.Sorted(maps.Keys(all)))
		}
		in := tt.Input
		names[id] = TableName(t, strings.TrimSuffix(id, "Table"))
		in.TableName = aws.String(names[id])
		tables = append(tables, dynalite.Table{Input: in, TTLAttribute: tt.TTLAttribute})
	}
	if err := dynalite.CreateTables(context.Background(), c, tables, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("create tables: %v", err)
	}
	return names
}

// Main is a TestMain body for packages that share one server across their
// tests: it starts an in-memory dynalite (or uses the external server, see
// EnvEndpoint), stores it in *srv, runs the tests,
// stops the server and exits with the tests' code (1 if the server cannot
// start).
func Main(m *testing.M, srv **dynalite.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // includes a possible npm ci
	s, err := start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start dynalite:", err)
		os.Exit(1)
	}
	*srv = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop dynalite:", err)
	}
	os.Exit(code)
}
