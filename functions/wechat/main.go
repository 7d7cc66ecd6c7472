// Command wechat is the Lambda function behind the authorizer for the routes
// that call WeChat's server APIs or use the user's session_key: /me/phone,
// /me/decrypt, /me/session-key (docs/design.md §7). It only wires:
// configuration, the shared access_token (package wxapi), the phones and
// users tables, then lambda.Start. The logic is in package wxuser.
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
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/wxtoken"
	"github.com/wxsession/wxsession/internal/wxuser"
	"github.com/wxsession/wxsession/lambdamain"
	"github.com/wxsession/wxsession/wxapi"
)

// coldStartTimeout bounds the cold start's I/O (the secret's fetch).
const coldStartTimeout = 5 * time.Second

func main() { lambdamain.Run(setup) }

// setup reads the configuration and builds the handler (see lambdamain.Setup).
func setup(logger *slog.Logger, getenv func(string) string) (lambdamain.Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse], error) {
	cfg, err := config.LoadWechat(getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), coldStartTimeout)
	defer cancel()
	db, awsCfg, err := dynamoclient.New(ctx, getenv)
	if err != nil {
		return nil, err
	}
	// One token and one client per app served (docs/design.md §7.9); the
	// handler picks the caller's by the principal's appid.
	tokens, wcfg, err := wxtoken.FromEnv(ctx, getenv, db, awsCfg, logger)
	if err != nil {
		return nil, err
	}
	apps := make(map[string]wxuser.WeChat, len(tokens))
	for appid, src := range tokens {
		wx, err := wxapi.New(wxapi.Config{Tokens: src, BaseURLs: wcfg.APIBase, Logger: logger})
		if err != nil {
			return nil, err
		}
		apps[appid] = wx
	}
	store, err := wxuser.NewStore(db, cfg.PhonesTable, cfg.UsersTable, nil)
	if err != nil {
		return nil, err
	}
	h := &wxuser.Handler{
		WeChat:          apps[cfg.AppID],
		Apps:            apps,
		Store:           store,
		AppID:           cfg.AppID,
		PhoneUnique:     cfg.PhoneUnique,
		LookupsPerDay:   cfg.PhoneLookupsPerDay,
		WatermarkMaxAge: cfg.WatermarkMaxAge,
		Logger:          logger,
		Audit:           audit.New(os.Stdout, audit.ActorUser),
		Metrics:         metrics.New(os.Stdout, cfg.MetricsNamespace),
	}
	return h.Handle, nil
}
