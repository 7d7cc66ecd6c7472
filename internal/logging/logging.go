// Package logging builds the JSON slog.Logger every wxsession function uses.
//
// Lines are JSON objects on one line each (CloudWatch Logs and Logs Insights
// parse them as fields). Every record logged through a ...Context method
// with a Lambda invocation context carries request_id, the invocation's AWS
// request id, so the lines of one request can be found together.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxsession/wxsession/internal/config"
)

// RequestIDKey is the attribute that carries the Lambda request id.
const RequestIDKey = "request_id"

// ParseLevel parses a LOG_LEVEL value: debug, info, warn (or warning) or
// error, case-insensitively and ignoring surrounding spaces; Lambda's
// AWS_LAMBDA_LOG_LEVEL values TRACE and FATAL read as debug and error. The
// empty string is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal":
		return slog.LevelError, nil
	default:
		return slog.LevelInfo, fmt.Errorf("logging: unknown level %q (want debug, info, warn or error)", s)
	}
}

// envLambdaLogLevel is the level Lambda's advanced logging controls set
// (DEBUG, INFO, ...), which lambdacontext's own slog handler honours.
const envLambdaLogLevel = "AWS_LAMBDA_LOG_LEVEL"

// LevelFromEnv returns the log level to use: LOG_LEVEL when set, else
// Lambda's AWS_LAMBDA_LOG_LEVEL (set when the function's logging config has
// an application log level), else "" (info).
//
// lambdacontext.NewLogHandler is not used as the handler itself: it writes
// text unless the function's log format is JSON, renames msg to message and
// request_id to requestId (the audit lines' "msg":"audit" is a contract,
// docs/design.md §9), and writes only to os.Stdout (docs/design.md §11).
func LevelFromEnv(getenv func(string) string) string {
	if v := strings.TrimSpace(getenv(config.VarLogLevel)); v != "" {
		return v
	}
	return getenv(envLambdaLogLevel)
}

// New returns a JSON logger writing to w at the given level (a LOG_LEVEL
// value, see ParseLevel). An unknown level falls back to info and is
// reported once, at WARN, on the returned logger: a typo in LOG_LEVEL must
// not stop a cold start.
func New(w io.Writer, level string) *slog.Logger {
	lvl, err := ParseLevel(level)
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})
	l := slog.New(RequestIDHandler{Handler: h})
	if err != nil {
		l.Warn("invalid LOG_LEVEL, using info", "error", err.Error())
	}
	return l
}

// RequestIDHandler wraps a slog.Handler and adds request_id, from the Lambda
// context of the call (lambdacontext.FromContext), to every record. Records
// logged without a Lambda context (cold start, tests) go through unchanged.
// Like any attribute added at Handle time, request_id lands in the current
// group if WithGroup was used.
type RequestIDHandler struct {
	slog.Handler
}

// Handle adds request_id when ctx carries a Lambda context.
func (h RequestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			r.AddAttrs(slog.String(RequestIDKey, lc.AwsRequestID))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h RequestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return RequestIDHandler{Handler: h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h RequestIDHandler) WithGroup(name string) slog.Handler {
	return RequestIDHandler{Handler: h.Handler.WithGroup(name)}
}

// ColdStartFailed logs, as one ERROR line, why a function could not start
// (msg "cold start failed" and the error, e.g. config's "configuration:
// missing WECHAT_APPID, SESSIONS_TABLE"). The caller then exits non-zero,
// which Lambda reports as an init error.
func ColdStartFailed(l *slog.Logger, err error) {
	l.LogAttrs(context.Background(), slog.LevelError, "cold start failed", slog.String("error", err.Error()))
}
