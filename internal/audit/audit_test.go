package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxsession/wxsession/internal/audit"
)

// schema is every field an audit line always has.
var schema = []string{"time", "level", "msg", "event", "actor", "app", "user", "session", "reason", "error", "source_ip", "request_id"}

func TestRecord(t *testing.T) {
	at := time.Date(2026, 11, 30, 7, 0, 0, 123e6, time.FixedZone("CST", 8*3600))
	lambdaCtx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	tests := []struct {
		name string
		ctx  context.Context
		rec  audit.Record
		want map[string]any
	}{
		{
			name: "login failed in a lambda",
			ctx:  lambdaCtx,
			rec:  audit.Record{Event: audit.LoginFailed, AppID: "wxapp", OpenID: "o-user-1", Error: "invalid_code", SourceIP: "203.0.113.7"},
			want: map[string]any{"event": "login_failed", "actor": "user", "app": "wxapp", "user": audit.UserPseudonym("wxapp", "o-user-1"),
				"error": "invalid_code", "source_ip": "203.0.113.7", "request_id": "req-1", "session": "", "reason": "",
				"time": "2026-11-29T23:00:00.123Z", "level": "INFO", "msg": "audit"},
		},
		{
			name: "operator ban with until and explicit request id",
			ctx:  context.Background(),
			rec: audit.Record{Event: audit.UserBanned, Actor: "operator:alice", AppID: "wxapp", OpenID: "o-user-1", Reason: "fraud",
				RequestID: "wxadmin-1", Until: at.Add(24 * time.Hour), Count: 3},
			want: map[string]any{"event": "user_banned", "actor": "operator:alice", "reason": "fraud", "request_id": "wxadmin-1",
				"until": "2026-11-30T23:00:00Z", "count": float64(3)},
		},
		{
			name: "operator revoke-all with before",
			ctx:  context.Background(),
			rec:  audit.Record{Event: audit.SessionKicked, Actor: "operator:alice", AppID: "wxapp", Reason: "kicked", Before: at, Count: 5},
			want: map[string]any{"event": "session_kicked", "user": "", "before": "2026-11-29T23:00:00Z", "count": float64(5)},
		},
		{
			name: "no user, no request id",
			ctx:  nil,
			rec:  audit.Record{Event: audit.TokenRefreshed, Actor: audit.ActorSystem, AppID: "wxapp"},
			want: map[string]any{"user": "", "request_id": "", "actor": "system"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := audit.New(&buf, audit.ActorUser).WithClock(func() time.Time { return at })
			ret := l.Record(tt.ctx, tt.rec)
			out := buf.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Fatalf("want exactly one line, got %q", out)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range schema {
				if _, ok := m[k]; !ok {
					t.Errorf("field %q missing from %s", k, out)
				}
			}
			for k, v := range tt.want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			if _, ok := tt.want["until"]; !ok {
				if _, has := m["until"]; has {
					t.Errorf("until present without a ban end: %s", out)
				}
			}
			if string(ret.Event) != m["event"] || ret.User != m["user"] {
				t.Errorf("returned line %+v differs from the written one", ret)
			}
			if strings.Contains(out, "o-user-1") {
				t.Errorf("the openid appears in the line: %s", out)
			}
		})
	}
}

func TestUserPseudonym(t *testing.T) {
	tests := []struct {
		name       string
		app, oid   string
		other      [2]string
		wantEmpty  bool
		wantDiffer bool
	}{
		{name: "empty openid", app: "wxa", oid: "", wantEmpty: true},
		{name: "other app, same openid", app: "wxa", oid: "o1", other: [2]string{"wxb", "o1"}, wantDiffer: true},
		{name: "same app, other openid", app: "wxa", oid: "o1", other: [2]string{"wxa", "o2"}, wantDiffer: true},
		{name: "the hash of the shared user key <appid>#<openid> (appids hold no #)", app: "wxa#", oid: "o1", other: [2]string{"wxa", "#o1"}, wantDiffer: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := audit.UserPseudonym(tt.app, tt.oid)
			if tt.wantEmpty {
				if p != "" {
					t.Fatalf("got %q, want empty", p)
				}
				return
			}
			if len(p) != 24 || !strings.HasPrefix(p, "u_") {
				t.Fatalf("pseudonym %q: want u_ and 22 characters", p)
			}
			if p != audit.UserPseudonym(tt.app, tt.oid) {
				t.Fatal("not deterministic")
			}
			q := audit.UserPseudonym(tt.other[0], tt.other[1])
			if (p != q) != tt.wantDiffer {
				t.Fatalf("pseudonyms %q and %q: differ=%v, want %v", p, q, p != q, tt.wantDiffer)
			}
		})
	}
}

func TestNilLoggerAndConcurrentLines(t *testing.T) {
	var nilLogger *audit.Logger
	nilLogger.Record(context.Background(), audit.Record{Event: audit.LoggedOut}) // must not panic

	var buf bytes.Buffer
	l := audit.New(&buf, audit.ActorUser)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Record(context.Background(), audit.Record{Event: audit.LoggedOut, AppID: "wxa", OpenID: "o", Reason: strings.Repeat("x", 200)})
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50", len(lines))
	}
	for _, ln := range lines {
		if !json.Valid([]byte(ln)) {
			t.Fatalf("interleaved line %q", ln)
		}
	}
}

func TestEventsAreUnique(t *testing.T) {
	seen := map[audit.Event]bool{}
	for _, e := range audit.Events {
		if seen[e] || e == "" {
			t.Fatalf("event %q listed twice or empty", e)
		}
		seen[e] = true
	}
	if len(seen) != 15 {
		t.Fatalf("%d events, the design lists 15", len(seen))
	}
}
