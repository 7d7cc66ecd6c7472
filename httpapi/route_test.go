package httpapi

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestRouteKey(t *testing.T) {
	req := func(key, method, path string) events.APIGatewayV2HTTPRequest {
		r := events.APIGatewayV2HTTPRequest{RouteKey: key, RawPath: path}
		r.RequestContext.HTTP.Method = method
		return r
	}
	tests := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
		want string
	}{
		{"matched route", req("DELETE /me/sessions/{sid}", "DELETE", "/me/sessions/abc"), "DELETE /me/sessions/{sid}"},
		{"catch-all", req("$default", "GET", "/me"), "GET /me"},
		{"direct invocation", req("", "POST", "/me/phone"), "POST /me/phone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RouteKey(tc.req); got != tc.want {
				t.Errorf("RouteKey = %q, want %q", got, tc.want)
			}
		})
	}
}
