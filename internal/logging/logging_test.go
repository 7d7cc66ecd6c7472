package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxsession/wxsession/internal/logging"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{"DEBUG", slog.LevelDebug, false},
		{" info ", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"Warning", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"verbose", slog.LevelInfo, true},
		{"0", slog.LevelInfo, true},
	}
	for _, tt := range tests {
		got, err := logging.ParseLevel(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		level     string
		log       func(*slog.Logger, context.Context)
		wantLines int
		check     func(t *testing.T, ls []map[string]any)
	}{
		{
			name:  "request id added from lambda context",
			level: "info",
			log: func(l *slog.Logger, ctx context.Context) {
				l.InfoContext(ctx, "hello", "k", "v")
			},
			wantLines: 1,
			check: func(t *testing.T, ls []map[string]any) {
				if ls[0]["request_id"] != "req-123" || ls[0]["msg"] != "hello" || ls[0]["k"] != "v" || ls[0]["level"] != "INFO" {
					t.Fatalf("line = %v", ls[0])
				}
			},
		},
		{
			name:  "request id kept through With",
			level: "info",
			log: func(l *slog.Logger, ctx context.Context) {
				l.With("fn", "login").WarnContext(ctx, "w")
			},
			wantLines: 1,
			check: func(t *testing.T, ls []map[string]any) {
				if ls[0]["request_id"] != "req-123" || ls[0]["fn"] != "login" {
					t.Fatalf("line = %v", ls[0])
				}
			},
		},
		{
			name:  "no lambda context, no request id",
			level: "info",
			log: func(l *slog.Logger, _ context.Context) {
				l.Info("cold start")
			},
			wantLines: 1,
			check: func(t *testing.T, ls []map[string]any) {
				if _, ok := ls[0]["request_id"]; ok {
					t.Fatalf("line = %v", ls[0])
				}
			},
		},
		{
			name:  "level filters",
			level: "warn",
			log: func(l *slog.Logger, ctx context.Context) {
				l.DebugContext(ctx, "d")
				l.InfoContext(ctx, "i")
				l.WarnContext(ctx, "w")
				l.ErrorContext(ctx, "e")
			},
			wantLines: 2,
		},
		{
			name:  "debug level",
			level: "debug",
			log: func(l *slog.Logger, ctx context.Context) {
				l.DebugContext(ctx, "d")
			},
			wantLines: 1,
		},
		{
			name:      "bad level warns once and logs at info",
			level:     "loud",
			log:       func(l *slog.Logger, ctx context.Context) { l.DebugContext(ctx, "d"); l.InfoContext(ctx, "i") },
			wantLines: 2,
			check: func(t *testing.T, ls []map[string]any) {
				if ls[0]["level"] != "WARN" || !strings.Contains(ls[0]["error"].(string), "loud") || ls[1]["msg"] != "i" {
					t.Fatalf("lines = %v", ls)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := logging.New(&buf, tt.level)
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-123"})
			tt.log(l, ctx)
			ls := lines(t, &buf)
			if len(ls) != tt.wantLines {
				t.Fatalf("got %d lines, want %d: %s", len(ls), tt.wantLines, buf.String())
			}
			if tt.check != nil {
				tt.check(t, ls)
			}
		})
	}
}

func TestLevelFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantLvl slog.Level
		wantErr bool
	}{
		{"LOG_LEVEL wins", map[string]string{"LOG_LEVEL": "warn", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}, "warn", slog.LevelWarn, false},
		{"Lambda's level when LOG_LEVEL is unset", map[string]string{"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}, "DEBUG", slog.LevelDebug, false},
		{"Lambda's TRACE is debug", map[string]string{"AWS_LAMBDA_LOG_LEVEL": "TRACE"}, "TRACE", slog.LevelDebug, false},
		{"Lambda's FATAL is error", map[string]string{"LOG_LEVEL": " ", "AWS_LAMBDA_LOG_LEVEL": "FATAL"}, "FATAL", slog.LevelError, false},
		{"neither is info", nil, "", slog.LevelInfo, false},
		{"unknown", map[string]string{"LOG_LEVEL": "loud"}, "loud", slog.LevelInfo, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logging.LevelFromEnv(func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Fatalf("LevelFromEnv = %q, want %q", got, tt.want)
			}
			lvl, err := logging.ParseLevel(got)
			if lvl != tt.wantLvl || (err != nil) != tt.wantErr {
				t.Fatalf("ParseLevel(%q) = %v, %v; want %v, error %v", got, lvl, err, tt.wantLvl, tt.wantErr)
			}
		})
	}
}
