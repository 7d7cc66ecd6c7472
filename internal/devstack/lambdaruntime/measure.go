package lambdaruntime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// ColdStart is one measured cold start of a function.
type ColdStart struct {
	Init          time.Duration // exec → the runtime's first /next (Lambda's Init Duration)
	FirstResponse time.Duration // exec → the first invocation's response posted
	MaxRSSBytes   int64         // peak RSS (VmHWM) after the first invocation
	Result        Result        // the first invocation's result
}

// MeasureColdStart starts a fresh instance of cfg's function, invokes it
// once with payload, measures exec → first /next and exec → first response
// and the peak RSS, then stops the instance. A function error is reported in
// Result.FunctionError, not as an error.
func MeasureColdStart(ctx context.Context, cfg FunctionConfig, payload []byte) (ColdStart, error) {
	cfg.MaxInstances = 1
	cfg.IdleTimeout = -1
	p := NewPool(cfg, slog.New(slog.DiscardHandler), io.Discard)
	defer p.Close()
	in, cold, err := p.acquire(ctx)
	if err != nil {
		return ColdStart{}, fmt.Errorf("lambdaruntime: measure cold start of %s: %w", p.cfg.Name, err)
	}
	if !cold {
		return ColdStart{}, fmt.Errorf("lambdaruntime: measure cold start of %s: instance was not cold", p.cfg.Name)
	}
	inv := newInvocation(payload, time.Now().Add(p.cfg.Timeout))
	in.assign(inv)
	res, at, err := p.run(in, inv, cold)
	if err != nil {
		return ColdStart{}, fmt.Errorf("lambdaruntime: measure cold start of %s: %w", p.cfg.Name, err)
	}
	return ColdStart{
		Init:          res.InitDuration,
		FirstResponse: at.Sub(in.execAt),
		MaxRSSBytes:   res.MaxRSSBytes,
		Result:        res,
	}, nil
}
