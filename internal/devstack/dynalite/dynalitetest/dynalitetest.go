// Package dynalitetest gives tests in any package a real DynamoDB-compatible
// server: the npm-pinned dynalite, in memory, on a free port.
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
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
)

// NewTestServer starts an in-memory dynalite on a free port of 127.0.0.1
// and stops it in t.Cleanup. It fails the test if the server cannot start.
// Packages with many tests may rather start one server in TestMain with
// dynalite.Start and give each test its own tables (see TableName).
func NewTestServer(t testing.TB) *dynalite.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // includes a possible npm ci
	defer cancel()
	s, err := dynalite.Start(ctx, dynalite.Options{Logger: slog.New(slog.DiscardHandler)})
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

// Main is a TestMain body for packages that share one server across their
// tests: it starts an in-memory dynalite, stores it in *srv, runs the tests,
// stops the server and exits with the tests' code (1 if the server cannot
// start).
func Main(m *testing.M, srv **dynalite.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // includes a possible npm ci
	s, err := dynalite.Start(ctx, dynalite.Options{Logger: slog.New(slog.DiscardHandler)})
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
