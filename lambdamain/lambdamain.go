// Package lambdamain is the one body of every wxsession function's main:
// JSON logging at LOG_LEVEL, a setup that reads the configuration and builds
// the dependencies, then lambda.Start. A setup error ends the cold start with
// one clear log line and exit status 1, which Lambda reports as an init
// failure.
package lambdamain

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/logging"
)

// Setup builds a function's handler (anything lambda.Start accepts, usually
// a method value such as h.Handle) from the logger and the environment.
type Setup func(logger *slog.Logger, getenv func(string) string) (handler any, err error)

// Run sets up the function and serves invocations; it does not return.
func Run(setup Setup) {
	logger := logging.New(os.Stdout, os.Getenv(config.VarLogLevel))
	slog.SetDefault(logger)
	handler, err := setup(logger, os.Getenv)
	if err != nil {
		logging.ColdStartFailed(logger, err)
		os.Exit(1)
	}
	lambda.Start(handler)
}
