package dynamostore_test

import (
	"context"
	"errors"
	"hash/crc32"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

// faultStore is a store whose client talks to ep (a broken endpoint).
func faultStore(t *testing.T, ep string, timeout time.Duration) (*dynamostore.Store, *testutil.Buffer) {
	t.Helper()
	c, _ := newClient(t, ep)
	logs := &testutil.Buffer{}
	s, err := dynamostore.New(c, dynamostore.Config{
		SessionsTable: "sessions", UsersTable: "users", OpTimeout: timeout,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// allOps runs every store operation and returns their errors by name.
func allOps(s *dynamostore.Store, hash string) map[string]error {
	ctx := context.Background()
	errs := map[string]error{}
	user := session.UserKey(appID, "oFaulty-user-0001")
	_, _, _, errs["Login"] = createSession(ctx, s, session.Identity{OpenID: "oFaulty-user-0001", SessionKey: "FAULTsessionKEY=="}, time.Hour, dynamostore.IssueInput{})
	_, errs["Get"] = s.Get(ctx, hash)
	_, errs["Lookup"] = s.Lookup(ctx, hash)
	errs["Touch"] = s.Touch(ctx, hash, time.Now(), time.Now().Add(time.Minute))
	_, errs["EndSession"] = s.EndSession(ctx, hash, session.ReasonLoggedOut)
	_, errs["EndUserSessions"] = s.EndUserSessions(ctx, user, session.ReasonLoggedOutAll, "")
	_, errs["SessionKey"] = s.SessionKey(ctx, user)
	_, _, errs["ListSessions"] = s.ListSessions(ctx, user, "", 0)
	return errs
}

func TestUnreachableStore(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "http://" + l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	s, _ := faultStore(t, ep, 3*time.Second)
	id, _ := session.NewID()
	for op, err := range allOps(s, session.Hash(id)) {
		t.Run(op, func(t *testing.T) {
			if !errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("%s = %v, want ErrUnavailable", op, err)
			}
		})
	}
	began := time.Now()
	_, err = s.Get(context.Background(), session.Hash(id))
	// Refused connections fail the attempts at once: the error must not be
	// the 3 s OpTimeout running out (a check that does not depend on the
	// machine's speed, unlike a wall-clock bound).
	if d := time.Since(began); !errors.Is(err, session.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v after %s; want ErrUnavailable from the refusals (3 attempts, backoff ≤ %s), not the deadline", err, d, dynamoclient.MaxBackoff)
	}
}

// hungServer accepts connections and never answers.
func hungServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

func TestHungStore(t *testing.T) {
	// Without OpTimeout an operation would wait for the transport's
	// ResponseHeaderTimeout (per attempt); the bound tells the two apart
	// with a 10× margin, so a slow machine cannot fail it.
	const opTimeout = 200 * time.Millisecond
	const limit = dynamoclient.ResponseHeaderTimeout
	s, _ := faultStore(t, hungServer(t), opTimeout)
	id, _ := session.NewID()
	ctx := context.Background()
	ops := []struct {
		name string
		run  func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, session.Hash(id)); return err }},
		{"Login", func() error {
			_, _, _, err := createSession(ctx, s, session.Identity{OpenID: "oHung-user-00001", SessionKey: "k"}, time.Hour, dynamostore.IssueInput{})
			return err
		}},
		{"EndUserSessions", func() error {
			_, err := s.EndUserSessions(ctx, appID+"#oHung-user-00001", session.ReasonBanned, "")
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			began := time.Now()
			err := op.run()
			d := time.Since(began)
			if !errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("%s = %v, want ErrUnavailable", op.name, err)
			}
			if d >= limit || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s = %v after %s, want OpTimeout (%s) to end it, well before %s", op.name, err, d, opTimeout, limit)
			}
			t.Logf("%s failed after %s", op.name, d.Round(time.Millisecond))
		})
	}
	// The caller's own deadline also bounds an operation.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	if _, err := s.Get(short, session.Hash(id)); !errors.Is(err, session.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || time.Since(began) >= limit {
		t.Fatalf("Get with a 100ms context = %v after %s", err, time.Since(began))
	}
}

// writeBody writes a DynamoDB response body with its x-amz-crc32 header,
// which DynamoDB always sends and the SDK checks.
func writeBody(w http.ResponseWriter, status int, body string) {
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// apiErrorServer answers every request with DynamoDB's JSON error format.
func apiErrorServer(t *testing.T, status int, typ string) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("x-amzn-RequestId", "TESTREQUESTID")
		writeBody(w, status, `{"__type":"com.amazonaws.dynamodb.v20120810#`+typ+`","message":"simulated `+typ+`"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		status      int
		typ         string
		unavailable bool
	}{
		{400, "ProvisionedThroughputExceededException", true},
		{400, "ThrottlingException", true},
		{400, "RequestLimitExceeded", true},
		{500, "InternalServerError", true},
		{503, "ServiceUnavailable", true},
		// Refusals, not outages: the caller must see a configuration
		// error (500), not "retry later".
		{400, "ResourceNotFoundException", false},
		{400, "AccessDeniedException", false},
		{400, "ValidationException", false},
	}
	id, _ := session.NewID()
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			ep, hits := apiErrorServer(t, tc.status, tc.typ)
			s, logs := faultStore(t, ep, 3*time.Second)
			began := time.Now()
			_, err := s.Get(context.Background(), session.Hash(id))
			d := time.Since(began)
			if err == nil || errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Get = %v", err)
			}
			if errors.Is(err, session.ErrUnavailable) != tc.unavailable {
				t.Fatalf("Get = %v; ErrUnavailable %v, want %v", err, !tc.unavailable, tc.unavailable)
			}
			if !strings.Contains(err.Error(), tc.typ) {
				t.Errorf("error lost the cause: %v", err)
			}
			if tc.unavailable && hits.Load() != dynamoclient.MaxAttempts {
				t.Errorf("%d requests for one Get, want %d (retried)", hits.Load(), dynamoclient.MaxAttempts)
			}
			if d > 2*time.Second {
				t.Errorf("Get took %s", d)
			}
			for op, err := range allOps(s, session.Hash(id)) {
				if errors.Is(err, session.ErrUnavailable) != tc.unavailable {
					t.Errorf("%s = %v; want ErrUnavailable %v", op, err, tc.unavailable)
				}
			}
			if strings.Contains(logs.String(), "FAULTsessionKEY") {
				t.Errorf("logs leak a session_key")
			}
		})
	}
}

// TestUnprocessedItemsExhausted: a BatchWriteItem that keeps leaving items
// unprocessed (DynamoDB does this under throttling) ends in ErrUnavailable,
// after a bounded number of retries.
func TestUnprocessedItemsExhausted(t *testing.T) {
	var batches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		switch r.Header.Get("X-Amz-Target") {
		case "DynamoDB_20120810.Query":
			writeBody(w, 200, `{"Count":2,"ScannedCount":2,"Items":[{"sid":{"S":"h1"},"user":{"S":"u"},"created_sid":{"S":"0000000000000002#h1"}},{"sid":{"S":"h2"},"user":{"S":"u"},"created_sid":{"S":"0000000000000001#h2"}}]}`)
		case "DynamoDB_20120810.BatchWriteItem":
			batches.Add(1)
			writeBody(w, 200, `{"UnprocessedItems":{"sessions":[{"PutRequest":{"Item":{"sid":{"S":"h2"},"ended_reason":{"S":"banned"}}}}]}}`)
		default:
			writeBody(w, 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"unexpected"}`)
		}
	}))
	defer srv.Close()
	s, _ := faultStore(t, srv.URL, 3*time.Second)
	n, err := s.EndUserSessions(context.Background(), "wx#oUser-unprocessed", session.ReasonBanned, "")
	if !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("EndUserSessions = %d, %v; want ErrUnavailable", n, err)
	}
	if n != 1 {
		t.Errorf("EndUserSessions reported %d ended, want 1 (h1 went through)", n)
	}
	if b := batches.Load(); b < 2 || b > 10 {
		t.Errorf("%d BatchWriteItem calls, want a few bounded retries", b)
	}
}

// TestNoSecretsInLogsOrErrors runs a full session life cycle plus failures
// with DEBUG logs and checks that neither raw ids, session keys nor full
// openids appear.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	e := newEnv(t, dynamostore.Config{})
	ctx := context.Background()
	ident := session.Identity{OpenID: "oSECRETopenid-000001", UnionID: "oSECRETunion-0001", SessionKey: "SECRETsessionKEY=="}
	var errs []error
	user := session.UserKey(appID, ident.OpenID)
	raw, _, _, err := createSession(ctx, e.store, ident, time.Hour, dynamostore.IssueInput{DeviceID: "device-secret-000001"})
	if err != nil {
		t.Fatal(err)
	}
	raw2, _, _, err := createSession(ctx, e.store, ident, time.Hour, dynamostore.IssueInput{DeviceID: "device-secret-000001", Presented: session.Hash(raw)})
	errs = append(errs, err)
	_, err = e.store.Get(ctx, session.Hash(raw))
	errs = append(errs, err)
	e.clock.Set(e.clock.Now().Add(2 * time.Hour))
	_, err = e.store.Get(ctx, session.Hash(raw2))
	errs = append(errs, err)
	_, err = e.store.EndSession(ctx, session.Hash(raw2), session.ReasonLoggedOut)
	errs = append(errs, err)
	_, err = e.store.EndUserSessions(ctx, user, session.ReasonLoggedOutAll, "")
	errs = append(errs, err)
	ep, _ := apiErrorServer(t, 400, "ThrottlingException")
	bad, badLogs := faultStore(t, ep, time.Second)
	_, _, _, err = createSession(ctx, bad, ident, time.Hour, dynamostore.IssueInput{})
	errs = append(errs, err)
	_, err = bad.SessionKey(ctx, user)
	errs = append(errs, err)
	_, err = bad.EndUserSessions(ctx, user, session.ReasonBanned, "")
	errs = append(errs, err)

	logs := e.logs.String() + badLogs.String()
	if !strings.Contains(logs, "oSECRE***") {
		t.Fatalf("expected masked openids in the logs; logs:\n%s", logs)
	}
	for _, secret := range []string{raw, raw2, ident.SessionKey, ident.OpenID, ident.UnionID} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error contains %q: %v", secret, err)
			}
		}
	}
}
