package authorizer_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/authorizer"
	"github.com/wxsession/wxsession/session"
)

// BenchmarkHandleLambdaJSON is BenchmarkHandle/allow plus what the Lambda
// runtime library does around the handler on every invocation: decode the
// API Gateway event (shaped like a real one) and encode the response. The
// store is in memory (fixedGetter), so the one GetItem is not included.
func BenchmarkHandleLambdaJSON(b *testing.B) {
	id, err := session.NewID()
	if err != nil {
		b.Fatal(err)
	}
	s := session.Session{Hash: session.Hash(id), OpenID: "oBench0123456789abcdefghijk", AppID: "wx0123456789abcdef", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	h := &authorizer.Handler{Store: fixedGetter{s}, Logger: slog.New(slog.DiscardHandler)}
	event, err := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: "arn:aws:execute-api:ap-east-1:123456789012:abc123/$default/GET/me",
		RouteKey: "GET /me", RawPath: "/me",
		Headers: map[string]string{
			"authorization": "Bearer " + id, "host": "abc123.execute-api.ap-east-1.amazonaws.com",
			"user-agent": "Mozilla/5.0 MicroMessenger/8.0", "accept": "*/*", "x-forwarded-for": "203.0.113.7",
			"x-forwarded-proto": "https", "x-forwarded-port": "443", "x-amzn-trace-id": "Root=1-65f0c0de-0123456789abcdef01234567",
		},
		Cookies: []string{"theme=dark"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "GET /me", AccountID: "123456789012", Stage: "$default", APIID: "abc123", RequestID: "bench",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/me", Protocol: "HTTP/1.1", SourceIP: "203.0.113.7"},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var req events.APIGatewayV2CustomAuthorizerV2Request
		if err := json.Unmarshal(event, &req); err != nil {
			b.Fatal(err)
		}
		resp, err := h.Handle(ctx, req)
		if err != nil || !resp.IsAuthorized {
			b.Fatalf("denied: %v", err)
		}
		if out, err := json.Marshal(resp); err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
}
