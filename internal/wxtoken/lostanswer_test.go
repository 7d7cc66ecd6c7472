package wxtoken_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/wxtoken"
)

// TestWritesSurviveLostAnswer: each write to the tokens table, applied
// with its answer lost so that the SDK retries it, gives the caller what
// the write earned: one row per write, the fault injected on that write's
// request only, exactly once (docs/design.md §3.10). Leases last an hour,
// so a caller that waits for its own lease fails at its deadline instead
// of passing once the lease ends.
func TestWritesSurviveLostAnswer(t *testing.T) {
	tests := []struct {
		name  string
		match string
		run   func(t *testing.T, ctx context.Context, e *env, src func() *wxtoken.Source, arm func())
	}{
		{"lease", `"UpdateExpression":"SET #lu = :until, #lo = :me"`, func(t *testing.T, ctx context.Context, e *env, src func() *wxtoken.Source, arm func()) {
			arm()
			if tok, err := src().Token(ctx); err != nil || tok == "" {
				t.Fatalf("Token = %v; want a token fetched under the lease it took", err)
			}
			if n := e.emu.Stats().StableToken; n != 1 {
				t.Errorf("stable_token calls = %d, want 1", n)
			}
		}},
		{"forced lease", `#lo = :me, #fa = :now"`, func(t *testing.T, ctx context.Context, e *env, src func() *wxtoken.Source, arm func()) {
			old, err := src().Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e.emu.InvalidateTokens()
			arm()
			tok, err := src().Invalidate(ctx, old)
			if err != nil || tok == old {
				t.Fatalf("Invalidate = %v (same token %v); want a new token from the forced refresh it leased", err, tok == old)
			}
			if st := e.emu.Stats(); st.StableTokenForced != 1 {
				t.Errorf("forced refreshes = %d, want 1", st.StableTokenForced)
			}
		}},
		{"token write", `"UpdateExpression":"SET #tok = :tok`, func(t *testing.T, ctx context.Context, e *env, src func() *wxtoken.Source, arm func()) {
			arm()
			tok, err := src().Token(ctx)
			if err != nil || tok == "" {
				t.Fatal(err)
			}
			if again, err := src().Token(ctx); err != nil || again != tok {
				t.Fatalf("another instance: %v (same token %v)", err, again == tok)
			}
			if n := e.emu.Stats().StableToken; n != 1 {
				t.Errorf("stable_token calls = %d, want 1", n)
			}
			if strings.Contains(e.logs.String(), "not stored") {
				t.Errorf("the stored token was logged as not stored:\n%s", e.logs)
			}
		}},
		{"lease release", `"UpdateExpression":"REMOVE #lu, #lo"`, func(t *testing.T, ctx context.Context, e *env, src func() *wxtoken.Source, arm func()) {
			if err := e.emu.SetFaults(wechatemu.Fault{API: wechatemu.APIStableToken, Status: 503, Count: 3}); err != nil {
				t.Fatal(err)
			}
			arm()
			if _, err := src().Token(ctx); err == nil {
				t.Fatal("Token with WeChat failing: no error")
			}
			if tok, err := src().Token(ctx); err != nil || tok == "" {
				t.Fatalf("next caller after the release: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			lose := faultservers.NewLoseAnswer(nil)
			db, err := dynalite.LocalClient(t.Context(), srv.Endpoint, func(o *dynamodb.Options) { o.HTTPClient = lose })
			if err != nil {
				t.Fatal(err)
			}
			e.db = db
			src := func() *wxtoken.Source { return e.source(func(c *wxtoken.Config) { c.LeaseTTL = time.Hour }) }
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			tc.run(t, ctx, e, src, func() { lose.Lose(tc.match, 1) })
			if n := lose.Lost(); n != 1 {
				t.Fatalf("the fault was injected %d times, want once; logs:\n%s", n, e.logs)
			}
		})
	}
}
