// Package lambdamain is the one body of every wxsession function's main:
// JSON logging at LOG_LEVEL, a setup that reads the configuration and builds
// the dependencies, then lambda.StartHandlerFunc, which checks the handler's
// type at compile time (lambda.Start would only find a wrong signature at
// the first invocation). A setup error ends the cold start with one clear
// log line and exit status 1, which Lambda reports as an init failure.
//
// Run also sizes the Go scheduler to the CPU share Lambda gives the
// function (see procs).
package lambdamain

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"

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
	if n, ok := procs(os.Getenv, runtime.GOMAXPROCS(0)); ok {
		runtime.GOMAXPROCS(n)
	}
	logger := logging.New(os.Stdout, logging.LevelFromEnv(os.Getenv))
	slog.SetDefault(logger)
	handler, err := setup(logger, os.Getenv)
	if err != nil {
		logging.ColdStartFailed(logger, err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(handler)
}

// mbPerVCPU is the memory size at which Lambda gives a function the
// equivalent of one full vCPU; CPU share is proportional to memory.
const mbPerVCPU = 1769

// procs returns the GOMAXPROCS for a function with the Lambda environment
// getenv, whose current setting is current, and whether to change it: the
// vCPUs its memory size buys (AWS_LAMBDA_FUNCTION_MEMORY_SIZE / mbPerVCPU,
// rounded up), when that is fewer than current. Lambda shows the function
// two or more CPUs whatever its memory size, but a 128 MB function gets
// about a fourteenth of one: with two Ps, every wake-up of net/http's
// connection goroutines and the runtime's idle-P spinning hand work between
// threads that share that fraction, which costs CPU (billed time) for no
// parallelism. An explicit GOMAXPROCS in the environment is left alone.
func procs(getenv func(string) string, current int) (int, bool) {
	if getenv("GOMAXPROCS") != "" {
		return current, false
	}
	mb, err := strconv.Atoi(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
	if err != nil || mb <= 0 {
		return current, false
	}
	n := (mb + mbPerVCPU - 1) / mbPerVCPU
	if n >= current {
		return current, false
	}
	return n, true
}
