// Command fn is the test function for package lambdaruntime: a real
// aws-lambda-go function whose behaviour is chosen by the event's "op".
// Build it with -tags lambda.norpc; -ldflags "-X main.variant=v2" builds the
// second variant used by the hot-swap test.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

var variant = "v1"

type request struct {
	Op    string `json:"op"`
	Nonce string `json:"nonce"`
	MS    int    `json:"ms"`
}

type response struct {
	Variant    string            `json:"variant"`
	Nonce      string            `json:"nonce,omitempty"`
	RequestID  string            `json:"request_id,omitempty"`
	ARN        string            `json:"arn,omitempty"`
	DeadlineMS int64             `json:"deadline_ms,omitempty"`
	TraceID    string            `json:"trace_id,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	PID        int               `json:"pid"`
	ChildPID   int               `json:"child_pid,omitempty"`
}

// NotFoundError is returned by op "error"; its type name is the errorType.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + " not found" }

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, err
	}
	out := response{Variant: variant, Nonce: req.Nonce, PID: os.Getpid()}
	switch req.Op {
	case "echo":
		return raw, nil
	case "ctx":
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		out.RequestID, out.ARN, out.DeadlineMS = lc.AwsRequestID, lc.InvokedFunctionArn, dl.UnixMilli()
		out.TraceID = os.Getenv("_X_AMZN_TRACE_ID")
	case "env":
		out.Env = map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			out.Env[k] = v
		}
		wd, _ := os.Getwd()
		out.Env["__cwd"] = wd
	case "error":
		return nil, &NotFoundError{What: "thing " + req.Nonce}
	case "panic":
		panic("boom " + req.Nonce)
	case "exit":
		fmt.Fprintln(os.Stderr, "exiting mid-invocation")
		os.Exit(3)
	case "sleep":
		time.Sleep(time.Duration(req.MS) * time.Millisecond)
	case "spawn":
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		out.ChildPID = cmd.Process.Pid
	case "log":
		slog.InfoContext(ctx, "hello from the function", "nonce", req.Nonce)
		fmt.Fprintln(os.Stderr, "stderr line "+req.Nonce)
	default:
		return nil, fmt.Errorf("unknown op %q", req.Op)
	}
	return out, nil
}

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stdout, nil)))
	slog.Info("init", "variant", variant)
	lambda.Start(handle)
}
