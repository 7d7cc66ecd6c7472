package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/api"
	"github.com/wxsession/wxsession/session"
)

// BenchmarkMe measures GET /me: the principal read from the authorizer
// context and the response built. "handler" is Handle alone; "lambda-json"
// adds what the Lambda runtime library does around it on every invocation
// (decode the event JSON, encode the response JSON). GET /me does no I/O,
// so the stores are nil: touching them would panic.
func BenchmarkMe(b *testing.B) {
	p := session.Principal{
		OpenID: "oBench0123456789abcdefghijk", UnionID: "uBench", AppID: "wx0123456789abcdef",
		SID: session.Hash("bench"), ExpiresAt: time.Now().Add(time.Hour),
	}
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: api.RouteMe, RawPath: "/me",
		Headers: map[string]string{"authorization": "Bearer x", "host": "api.example.com", "user-agent": "bench"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:   api.RouteMe,
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/me"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: p.Context()},
		},
	}
	h := &api.Handler{Logger: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, _ := h.Handle(ctx, req)
			if resp.StatusCode != 200 {
				b.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
		}
	})
	event, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("lambda-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(event, &in); err != nil {
				b.Fatal(err)
			}
			resp, _ := h.Handle(ctx, in)
			out, err := json.Marshal(resp)
			if err != nil || resp.StatusCode != 200 || len(out) == 0 {
				b.Fatalf("status %d, err %v", resp.StatusCode, err)
			}
		}
	})
}
