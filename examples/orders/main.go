// Command orders is the business-function example of docs/business-guide.md: a Lambda
// behind the wxsession authorizer that reads the caller's openid through
// session.FromRequest and never parses tokens itself. It is built by `go vet ./...` and
// tested in orders_test.go so that the guide cannot drift from the code.
package main

import (
	"context"
	"errors"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/logging"
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
	logger := logging.New(os.Stdout, os.Getenv("LOG_LEVEL"))
	logger.Debug("orders: cold start")
	lambda.Start(handle)
}
