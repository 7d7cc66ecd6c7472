package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestHandle(t *testing.T) {
	tests := []struct {
		name       string
		lambdaCtx  map[string]any
		wantStatus int
		wantOpenID string
	}{
		{"signed in", map[string]any{"openid": "oUser1", "appid": "wx1", "sid": "h", "expires_at": "2030-01-01T00:00:00Z"}, 200, "oUser1"},
		{"not behind the authorizer", nil, 401, ""},
		{"bad context", map[string]any{"openid": 42.5, "expires_at": "soon"}, 500, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := events.APIGatewayV2HTTPRequest{RouteKey: "GET /orders"}
			if tc.lambdaCtx != nil {
				req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: tc.lambdaCtx}
			}
			res, err := handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.wantStatus, res.Body)
			}
			if tc.wantOpenID != "" {
				var body struct{ OpenID string }
				if err := json.Unmarshal([]byte(res.Body), &body); err != nil || body.OpenID != tc.wantOpenID {
					t.Fatalf("body = %s (%v)", res.Body, err)
				}
			}
		})
	}
}
