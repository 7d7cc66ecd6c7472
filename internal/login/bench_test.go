package login_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/logging"
	"github.com/wxsession/wxsession/internal/login"
	"github.com/wxsession/wxsession/session"
)

// memExchanger and memStore stand in for WeChat and DynamoDB so that the
// benchmark measures the handler's own work: body decoding and code
// validation, deriving the session id, the response and cookie, and the one
// INFO log line (a real JSON handler writing to io.Discard).
type memExchanger struct{ id session.Identity }

func (m memExchanger) Exchange(context.Context, string) (session.Identity, error) { return m.id, nil }

type memStore struct{}

func (memStore) Claim(context.Context, string, string) (dynamostore.Claim, error) {
	return dynamostore.Claim{Token: "t"}, nil
}

func (memStore) Release(context.Context, dynamostore.Claim, string) {}

func (memStore) Lookup(context.Context, string) (session.Session, error) {
	return session.Session{}, session.ErrNotFound
}

func (memStore) Issue(_ context.Context, in dynamostore.IssueInput) (session.Session, []dynamostore.Ended, error) {
	now := time.Now()
	return session.Session{OpenID: in.Identity.OpenID, UnionID: in.Identity.UnionID, AppID: in.AppID,
		CreatedAt: now, ExpiresAt: now.Add(in.Policy.TTL)}, nil, nil
}

// BenchmarkHandle measures POST /login without its I/O.
func BenchmarkHandle(b *testing.B) {
	h := &login.Handler{
		WeChat:  memExchanger{session.Identity{OpenID: "oBench0123456789abcdefghijk", SessionKey: "a2V5a2V5a2V5a2V5a2V5a2V5"}},
		Store:   memStore{},
		AppID:   "wx0123456789abcdef",
		CodeKey: session.CodeKey("bench-secret"),
		Logger:  logging.New(io.Discard, "info"),
	}
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /login", RawPath: "/login",
		Headers: map[string]string{"content-type": "application/json", "host": "api.example.com"},
		Body:    `{"code":"0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P"}`,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "POST /login",
			HTTP:     events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/login"},
		},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, _ := h.Handle(ctx, req)
		if resp.StatusCode != 200 || len(resp.Cookies) != 1 {
			b.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
		}
	}
}
