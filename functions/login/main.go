// Command login is the POST /login Lambda function (bootstrap for the
// provided.al2023 runtime). It only wires: configuration, the DynamoDB
// store, the app secret and the WeChat client, then lambda.Start. The logic
// is in package login.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/login"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/secret"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/lambdamain"
	"github.com/wxsession/wxsession/session"
)

// coldStartTimeout bounds the cold start's I/O (the secret's fetch).
const coldStartTimeout = 5 * time.Second

func main() { lambdamain.Run(setup) }

// setup reads the configuration and builds the handler (see lambdamain.Setup).
func setup(logger *slog.Logger, getenv func(string) string) (lambdamain.Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse], error) {
	cfg, err := config.LoadLogin(getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), coldStartTimeout)
	defer cancel()
	db, awsCfg, err := dynamoclient.New(ctx, getenv)
	if err != nil {
		return nil, err
	}
	store, err := dynamostore.New(db, dynamostore.Config{
		SessionsTable: cfg.SessionsTable,
		UsersTable:    cfg.UsersTable,
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	emf := metrics.New(os.Stdout, cfg.MetricsNamespace)
	// One exchanger and code key per app (docs/design.md §7.9), the
	// default (cfg.Apps[0]) first.
	apps := make(map[string]login.App, len(cfg.Apps))
	for _, a := range cfg.Apps {
		appSecret, err := secret.Source{Getenv: getenv, AWS: awsCfg}.LoadApp(ctx, a)
		if err != nil {
			return nil, err
		}
		wx, err := wechat.New(wechat.Config{AppID: a.AppID, Secret: appSecret, BaseURLs: cfg.APIBase, Logger: logger, Metrics: emf})
		if err != nil {
			return nil, err
		}
		apps[a.AppID] = login.App{WeChat: wx, CodeKey: session.CodeKey(appSecret)}
	}
	def := apps[cfg.AppID]
	ss := cfg.Sessions
	h := &login.Handler{
		WeChat:  def.WeChat,
		Store:   store,
		AppID:   cfg.AppID,
		CodeKey: def.CodeKey,
		Apps:    apps,
		Policy: dynamostore.Policy{
			TTL: ss.TTL, IdleTimeout: ss.IdleTimeout, MaxPerUser: ss.MaxPerUser,
			Overflow: dynamostore.Overflow(ss.Overflow), Exclusive: dynamostore.Exclusive(ss.Exclusive),
		},
		Logger:  logger,
		Audit:   audit.New(os.Stdout, audit.ActorUser),
		Metrics: emf,
	}
	return h.Handle, nil
}
