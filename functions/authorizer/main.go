// Command authorizer is the HTTP API Lambda authorizer function (bootstrap
// for the provided.al2023 runtime). It only wires: configuration, the
// DynamoDB session store, then lambda.Start. The logic is in package
// authorizer. It must not link the WeChat client or anything under internal/devstack/.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/authorizer"
	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/lambdamain"
)

// opTimeout bounds the one GetItem per request, retries included: the
// authorizer must answer well inside API Gateway's 10 s authorizer limit
// (and the function's own timeout), so a slow database fails fast.
const opTimeout = 2 * time.Second

func main() { lambdamain.Run(setup) }

// setup reads the configuration and builds the handler (see lambdamain.Setup).
func setup(logger *slog.Logger, getenv func(string) string) (lambdamain.Handler[events.APIGatewayV2CustomAuthorizerV2Request, events.APIGatewayV2CustomAuthorizerSimpleResponse], error) {
	cfg, err := config.LoadAuthorizer(getenv)
	if err != nil {
		return nil, err
	}
	db, _, err := dynamoclient.New(context.Background(), getenv)
	if err != nil {
		return nil, err
	}
	store, err := dynamostore.New(db, dynamostore.Config{
		SessionsTable: cfg.SessionsTable,
		OpTimeout:     opTimeout,
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	h := &authorizer.Handler{
		Store:         store,
		MaxLifetime:   cfg.Sessions.TTL,
		IdleTimeout:   cfg.Sessions.IdleTimeout,
		TouchInterval: cfg.Sessions.TouchInterval,
		Logger:        logger,
		Metrics:       metrics.New(os.Stdout, cfg.MetricsNamespace),
	}
	return h.Handle, nil
}
