// Command api is the business Lambda function behind the authorizer
// (bootstrap for the provided.al2023 runtime): GET /me, GET and PUT
// /me/profile, POST /logout, /me/sessions, and GET /session (no
// authorizer). It only wires: configuration, the session and
// profile stores, then lambda.Start. The logic is in package api.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/account"
	"github.com/wxsession/wxsession/internal/api"
	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/metrics"
	"github.com/wxsession/wxsession/internal/profile"
	"github.com/wxsession/wxsession/lambdamain"
)

func main() { lambdamain.Run(setup) }

// setup reads the configuration and builds the handler (see lambdamain.Setup).
func setup(logger *slog.Logger, getenv func(string) string) (lambdamain.Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse], error) {
	cfg, err := config.LoadAPI(getenv)
	if err != nil {
		return nil, err
	}
	db, _, err := dynamoclient.New(context.Background(), getenv)
	if err != nil {
		return nil, err
	}
	sessions, err := dynamostore.New(db, dynamostore.Config{
		SessionsTable: cfg.SessionsTable,
		UsersTable:    cfg.UsersTable,
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	profiles, err := profile.New(db, profile.Config{Table: cfg.ProfilesTable})
	if err != nil {
		return nil, err
	}
	data, err := account.UserData(db, account.Tables{Users: cfg.UsersTable, Profiles: cfg.ProfilesTable, Phones: cfg.PhonesTable})
	if err != nil {
		return nil, err
	}
	h := &api.Handler{
		Sessions: sessions, Profiles: profiles, Logger: logger,
		MaxLifetime: cfg.Sessions.TTL,
		Audit:       audit.New(os.Stdout, audit.ActorUser),
		Metrics:     metrics.New(os.Stdout, cfg.MetricsNamespace),
		// DELETE /me: the same per-user data deleters as `wxadmin users
		// delete` (account.UserData, docs/business-guide.md §5).
		Accounts: &account.Deleter{Sessions: sessions, Users: sessions, Data: data},
	}
	return h.Handle, nil
}
