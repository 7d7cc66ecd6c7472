// Command sharecode is the business-function example of calling a WeChat
// server API (README, "Call a WeChat API from your function"): GET
// /share-code?scene=... answers the PNG of a mini-program code
// (getwxacodeunlimit) for the signed-in user. It gets the app's shared
// access_token through package wxapi and never fetches or caches a token
// itself. It is built by `go vet ./...` and tested in main_test.go against
// the WeChat emulator and dynalite.
//
// Its template entry needs TOKENS_TABLE, WECHAT_APPID, WECHAT_API_BASE and
// the app secret's parameter in its environment, dynamodb:GetItem and
// dynamodb:UpdateItem on the tokens table, and ssm:GetParameter on the
// secret (copy WechatFunction's).
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/lambdamain"
	"github.com/wxsession/wxsession/session"
	"github.com/wxsession/wxsession/wxapi"
)

// WeChat calls WeChat server APIs (*wxapi.Client).
type WeChat interface {
	PostBytes(ctx context.Context, path string, in any) (wxapi.Bytes, error)
}

// handler answers GET /share-code.
type handler struct{ wx WeChat }

func (h handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if _, err := session.FromRequest(req); err != nil {
		return httpapi.Error(http.StatusUnauthorized, "unauthenticated", "this route must sit behind the wxsession authorizer"), nil
	}
	scene := req.QueryStringParameters["scene"]
	if scene == "" || len(scene) > 32 {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", "scene must be 1 to 32 characters"), nil
	}
	png, err := h.wx.PostBytes(ctx, "/wxa/getwxacodeunlimit", map[string]any{
		"scene": scene, "check_path": false, "env_version": "release", "width": 280,
	})
	var wxErr *wxapi.Error
	switch {
	case errors.As(err, &wxErr):
		// WeChat's errcode, e.g. 41030 (page not published).
		return httpapi.Error(http.StatusBadGateway, "wechat_error", wxErr.Error()), nil
	case errors.Is(err, wxapi.ErrRateLimited):
		return httpapi.WithRetryAfter(httpapi.Error(http.StatusTooManyRequests, "rate_limited", "try again later"), time.Minute), nil
	case err != nil:
		return httpapi.WithRetryAfter(httpapi.Error(http.StatusServiceUnavailable, "wechat_unavailable", "WeChat is unavailable, try again"), 2*time.Second), nil
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode:      http.StatusOK,
		Headers:         map[string]string{"Content-Type": png.ContentType, "Cache-Control": "private, max-age=3600"},
		Body:            base64.StdEncoding.EncodeToString(png.Data),
		IsBase64Encoded: true,
	}, nil
}

func main() {
	lambdamain.Run(func(logger *slog.Logger, getenv func(string) string) (lambdamain.Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse], error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		wx, err := wxapi.FromEnv(ctx, getenv, logger) // once per container
		if err != nil {
			return nil, err
		}
		return handler{wx: wx}.handle, nil
	})
}
