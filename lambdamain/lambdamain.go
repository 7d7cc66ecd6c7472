// Package lambdamain is the one body of every wxsession function's main:
// JSON logging at LOG_LEVEL, a setup that reads the configuration and builds
// the dependencies, then lambda.StartHandlerFunc, which checks the handler's
// type at compile time (lambda.Start would only find a wrong signature at
// the first invocation). A setup error ends the cold start with one clear
// log line and exit status 1, which Lambda reports as an init failure.
package lambdamain

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxsession/wxsession/internal/logging"
)

// Handler is a Lambda handler: an event of type TIn in, a response of type
// TOut out, e.g. func(context.Context, events.APIGatewayV2HTTPRequest)
// (events.APIGatewayV2HTTPResponse, error).
type Handler[TIn, TOut any] = func(ctx context.Context, event TIn) (TOut, error)

// Setup builds a function's handler (usually a method value such as
// h.Handle) from the logger and the environment.
type Setup[TIn, TOut any] = func(logger *slog.Logger, getenv func(string) string) (Handler[TIn, TOut], error)

// Run sets up the function and serves invocations; it does not return.
func Run[TIn, TOut any](setup Setup[TIn, TOut]) {
	logger := logging.New(os.Stdout, logging.LevelFromEnv(os.Getenv))
	slog.SetDefault(logger)
	handler, err := setup(logger, os.Getenv)
	if err != nil {
		logging.ColdStartFailed(logger, err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(handler)
}
