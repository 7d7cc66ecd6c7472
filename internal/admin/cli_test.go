package admin

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/stack"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
)

// TestLocalDefaults: the constants wxadmin keeps so as not to link the local
// stack are the local stack's.
func TestLocalDefaults(t *testing.T) {
	if appIDParameter != stack.AppIDParameter || localDynamoAddr != stack.DefaultDynamoAddr || localDefaultApp != wechatemu.DefaultAppID {
		t.Fatalf("wxadmin's local defaults (%s, %s, %s) differ from the local stack's (%s, %s, %s)",
			appIDParameter, localDynamoAddr, localDefaultApp, stack.AppIDParameter, stack.DefaultDynamoAddr, wechatemu.DefaultAppID)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		before  bool
		want    time.Time
		wantErr string
	}{
		{in: "2026-12-01T00:00:00+08:00", want: time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)},
		{in: "2026-12-01", want: time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)},
		{in: "24h", want: now.Add(24 * time.Hour)},
		{in: "7d", want: now.Add(7 * 24 * time.Hour)},
		{in: "now", before: true, want: now},
		{in: "2026-11-29", before: true, want: time.Date(2026, 11, 28, 16, 0, 0, 0, time.UTC)},
		{in: "now", wantErr: "not a time"},
		{in: "24h", before: true, wantErr: "not a time"},
		{in: "-24h", wantErr: "not a time"},
		{in: "0d", wantErr: "not a time"},
		{in: "1.5d", wantErr: "not a time"},
		{in: "yesterday", wantErr: "not a time"},
		{in: "2026-13-01", wantErr: "not a time"},
		{in: "", wantErr: "empty"},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, now, tt.before)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTime(%q, before=%v) = %v, %v; want error %q", tt.in, tt.before, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q, before=%v) = %v, %v; want %v", tt.in, tt.before, got, err, tt.want)
		}
	}
}

// TestUsage: every malformed command line is refused with exit status 2 and
// a message naming the problem, before any target is resolved (nothing
// listens at the endpoint, so reaching it would be exit status 1).
func TestUsage(t *testing.T) {
	sid := strings.Repeat("A", 43)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "missing <noun> <verb>"},
		{[]string{"-local", "sessions"}, "missing <noun> <verb>"},
		{[]string{"-local", "sessions", "purge"}, `unknown command "sessions purge"`},
		{[]string{"sessions", "list", "-openid", "o1"}, "exactly one of -local and -stack"},
		{[]string{"-local", "-stack", "s", "sessions", "list", "-openid", "o1"}, "exactly one of -local and -stack"},
		{[]string{"-local", "-region", "cn-north-1", "sessions", "list", "-openid", "o1"}, "-region applies to -stack only"},
		{[]string{"-stack", "s", "-dynamodb-endpoint", "http://x", "sessions", "list", "-openid", "o1"}, "-dynamodb-endpoint applies to -local only"},
		{[]string{"-local", "-bogus", "sessions", "list"}, "flag provided but not defined"},
		{[]string{"-local", "sessions", "list"}, "-openid is required"},
		{[]string{"-local", "sessions", "list", "-openid", "o#1"}, "is not an openid"},
		{[]string{"-local", "sessions", "list", "-openid", "o1", "extra"}, `unexpected argument "extra"`},
		{[]string{"-local", "sessions", "list", "-sid", sid}, "flag provided but not defined: -sid"},
		{[]string{"-local", "sessions", "revoke"}, "exactly one of -sid and -openid"},
		{[]string{"-local", "sessions", "revoke", "-sid", sid, "-openid", "o1"}, "exactly one of -sid and -openid"},
		{[]string{"-local", "sessions", "revoke", "-sid", "short"}, "is not a session's sid"},
		{[]string{"-local", "sessions", "revoke-all"}, "-before is required"},
		{[]string{"-local", "sessions", "revoke-all", "-before", "last week"}, "-before"},
		{[]string{"-local", "users", "show"}, "exactly one of -openid and -user"},
		{[]string{"-local", "users", "show", "-user", "o1"}, "is not an audit pseudonym"},
		{[]string{"-local", "users", "ban", "-reason", "x"}, "-openid is required"},
		{[]string{"-local", "users", "ban", "-openid", "o1", "-until", "2001-01-01"}, "is not in the future"},
		{[]string{"-local", "users", "ban", "-openid", "o1", "-until", "soon"}, "not a time"},
		{[]string{"-local", "users", "ban", "-openid", "o1", "-reason", strings.Repeat("x", 201)}, "at most 200 characters"},
		{[]string{"-local", "users", "ban", "-openid", "o1", "-reason", "a\nb"}, "without control characters"},
		{[]string{"-local", "users", "unban"}, "-openid is required"},
		{[]string{"-local", "users", "delete"}, "-openid is required"},
		{[]string{"-local", "audit", "list", "-limit", "0"}, "-limit must be 1-1000"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tt.args, &stdout, &stderr, func(string) string { return "" })
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "usage: wxadmin") {
				t.Fatalf("stderr does not say %q and the usage:\n%s", tt.want, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout: %s", stdout.String())
			}
		})
	}
}

// TestLocalWithoutStack: -local with nothing listening is a clear error,
// exit status 1, naming the endpoint tried and the flag that sets it.
func TestLocalWithoutStack(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"-local", "-dynamodb-endpoint", "http://127.0.0.1:1", "users", "show", "-openid", "o1"}, &stdout, &stderr, func(string) string { return "" })
	for _, want := range []string{"make dev", "http://127.0.0.1:1", "-dynamodb-endpoint"} {
		if code != ExitError || !strings.Contains(stderr.String(), want) {
			t.Fatalf("exit %d, stderr does not say %q:\n%s", code, want, stderr.String())
		}
	}
}

// TestLocalIgnoresAWSProfile: -local needs nothing from the operator's AWS
// configuration, so an AWS_PROFILE that no file defines (exported for
// another machine or account) does not stop it: it reaches the endpoint
// (here: nothing listens, and the error says so).
func TestLocalIgnoresAWSProfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_PROFILE", "no-such-profile")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"-local", "-dynamodb-endpoint", "http://127.0.0.1:1", "users", "show", "-openid", "o1"}, &stdout, &stderr, func(string) string { return "" })
	if code != ExitError || strings.Contains(stderr.String(), "profile") || !strings.Contains(stderr.String(), "make dev") {
		t.Fatalf("exit %d, want the unreachable-endpoint error, not a profile error:\n%s", code, stderr.String())
	}
}

// TestLocalEndpoint: -local finds make dev's DynamoDB in the order flag,
// DYNAMODB_ENDPOINT, .wxlocal/sam-env.json of the repository root at or
// above the working directory, the default port.
func TestLocalEndpoint(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "functions", "api")
	other := t.TempDir()
	for _, d := range []string{filepath.Join(root, ".wxlocal"), sub} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module x\n")
	write(filepath.Join(root, ".wxlocal", "sam-env.json"), `{"Parameters": {"DYNAMODB_ENDPOINT": "http://host.docker.internal:45678", "LOG_LEVEL": "debug"}}`)
	write(filepath.Join(other, "go.mod"), "module y\n")
	tests := []struct {
		name, flag, env, dir, want, source string
	}{
		{"flag first", "http://127.0.0.1:1", "http://127.0.0.1:2", sub, "http://127.0.0.1:1", "-dynamodb-endpoint"},
		{"environment", "", "http://127.0.0.1:2", sub, "http://127.0.0.1:2", "DYNAMODB_ENDPOINT"},
		{"sam-env.json from a subdirectory", "", "", sub, "http://127.0.0.1:45678", "sam-env.json"},
		{"sam-env.json at the root", "", "", root, "http://127.0.0.1:45678", "sam-env.json"},
		{"no file: the default", "", "", other, "http://127.0.0.1:8000", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, source := localEndpoint(tt.flag, tt.dir, func(k string) string {
				if k == "DYNAMODB_ENDPOINT" {
					return tt.env
				}
				return ""
			})
			if got != tt.want || !strings.Contains(source, tt.source) {
				t.Fatalf("localEndpoint = %s from %s, want %s from %s", got, source, tt.want, tt.source)
			}
		})
	}
}

// TestLocalWithoutTables: a DynamoDB without the template's tables (not a
// wxsession stack) is refused before anything is done, naming the tables.
func TestLocalWithoutTables(t *testing.T) {
	// A fresh dynalite of its own, even when the suites run on a shared
	// external server (which may hold tables of these names).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := dynalite.Start(ctx, dynalite.Options{Logger: slog.New(slog.DiscardHandler)})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"-local", "-dynamodb-endpoint", srv.Endpoint, "users", "ban", "-openid", "o1"}, &stdout, &stderr, func(string) string { return "" })
	if code != ExitError || !strings.Contains(stderr.String(), "has no table") || !strings.Contains(stderr.String(), TableAudit) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout: %s", stdout.String())
	}
}
