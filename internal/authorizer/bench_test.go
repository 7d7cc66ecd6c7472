package authorizer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/authorizer"
	"github.com/wxsession/wxsession/session"
)

// fixedGetter isolates the handler's own cost from the store's.
type fixedGetter struct{ s session.Session }

func (g fixedGetter) Get(context.Context, string) (session.Session, error) { return g.s, nil }

func (g fixedGetter) Touch(context.Context, string, time.Time, time.Time) error { return nil }

func BenchmarkHandle(b *testing.B) {
	id, _ := session.NewID()
	s := session.Session{Hash: session.Hash(id), OpenID: "oBench", AppID: "wx", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	h := &authorizer.Handler{Store: fixedGetter{s}, Logger: slog.New(slog.DiscardHandler)}
	for _, bc := range []struct {
		name    string
		headers map[string]string
	}{
		{"allow", map[string]string{"authorization": "Bearer " + id, "host": "x", "user-agent": "y"}},
		{"deny-malformed", map[string]string{"authorization": "Bearer junk", "host": "x", "user-agent": "y"}},
		{"deny-missing", map[string]string{"host": "x", "user-agent": "y"}},
	} {
		req := events.APIGatewayV2CustomAuthorizerV2Request{Headers: bc.headers, Cookies: []string{"theme=dark"}}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Handle(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
