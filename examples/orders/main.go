// Command orders is the business-function example of docs/business-guide.md: a Lambda
// behind the wxsession authorizer that reads the caller's openid through
// session.FromRequest and never parses tokens itself. It is built by `go vet ./...` and
// tested in orders_test.go so that the guide cannot drift from the code.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/lambdamain"
	"github.com/wxsession/wxsession/session"
)

// handle answers GET /orders for the signed-in user.
func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	user, err := session.FromRequest(req) // like CloudBase's cloud.getWXContext()
	if errors.Is(err, session.ErrNoPrincipal) {
		return httpapi.Error(http.StatusUnauthorized, "unauthenticated", "this route must sit behind the wxsession authorizer"), nil
	}
	if err != nil {
		return httpapi.Error(http.StatusInternalServerError, "internal_error", "bad authorizer context"), nil
	}
	// Query your own table keyed by user.OpenID here.
	return httpapi.JSON(http.StatusOK, map[string]any{
		"openid": user.OpenID,
		"orders": []string{},
	}), nil
}

func main() {
	lambdamain.Run(func(*slog.Logger, func(string) string) (lambdamain.Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse], error) {
		// Open your own table's client here, as functions/api does.
		return handle, nil
	})
}
