// Command initfail is a function that fails its cold start the way ours do
// when a required variable is missing: one log line, exit status 1, no
// /next call.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if os.Getenv("WECHAT_APPID") == "" {
		log.Error("config: WECHAT_APPID is required")
		os.Exit(1)
	}
	lambda.Start(func() error { return nil })
}
