// Package backoff is wxsession's one retry delay policy: exponential
// backoff with full jitter (AWS's recommendation), and a sleep that ends
// with its context. The WeChat client, the secret loader and the DynamoDB
// store's batch retries all use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the delay before retry n (1-based) is
// uniform in [0, min(Cap, Base·2^(n-1))].
type Policy struct {
	// Base is the upper bound of the first delay; must be > 0.
	Base time.Duration
	// Cap bounds every delay; 0 means no cap.
	Cap time.Duration
}

// Max returns the largest delay before retry n (1-based): Base·2^(n-1),
// at most Cap. n < 1 counts as 1.
func (p Policy) Max(n int) time.Duration {
	n = max(n, 1)
	d := p.Base
	for i := 1; i < n; i++ {
		if p.Cap > 0 && d >= p.Cap || d > time.Duration(1<<62)/2 {
			break
		}
		d *= 2
	}
	if p.Cap > 0 && d > p.Cap {
		d = p.Cap
	}
	return d
}

// Delay returns a random delay before retry n (1-based), uniform in
// [0, Max(n)].
func (p Policy) Delay(n int) time.Duration {
	m := p.Max(n)
	if m <= 0 {
		return 0
	}
	return rand.N(m + 1)
}

// Wait sleeps Delay(n), or until ctx ends (then it returns ctx.Err()).
func (p Policy) Wait(ctx context.Context, n int) error {
	return Sleep(ctx, p.Delay(n))
}

// Sleep waits d, or until ctx ends (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
