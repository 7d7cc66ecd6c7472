// Package lambdaruntime runs Lambda functions locally the way AWS Lambda and
// `sam local` do, without Docker and without the AWS runtime interface
// emulator: each instance is a real `bootstrap` executable (built for the
// host, e.g. from aws-lambda-go with -tags lambda.norpc) started as a child
// process in its own process group, with its own Runtime API listener on
// 127.0.0.1 (AWS_LAMBDA_RUNTIME_API) and a Lambda-like environment that does
// not inherit ours.
//
// A Pool manages the instances of one function: one invocation per instance
// at a time, warm idle instances reused last-in first-out, new instances
// started on demand up to MaxInstances, further invocations queued until an
// instance frees up or their context ends. Crashed, timed-out and
// init-failed instances are discarded and replaced on demand. Replace swaps
// the binary (hot reload). START/END/REPORT lines and the function's own
// output go to the pool's log writer in CloudWatch's format.
//
// Differences from Lambda worth knowing: instances are not frozen between
// invocations, memory is reported but not enforced, and queued invocations
// wait instead of being throttled with 429.
package lambdaruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Result is the outcome of an invocation that reached the function.
type Result struct {
	// Payload is the function's response, or its error document
	// ({"errorMessage","errorType",...}) when FunctionError is set.
	Payload []byte
	// FunctionError is "" on success, else the errorType the function
	// reported through /invocation/{id}/error (X-Amz-Function-Error on AWS).
	FunctionError string
	RequestID     string
	Duration      time.Duration // event handed to the runtime → response posted
	InitDuration  time.Duration // exec → first /next; set only when Cold
	Cold          bool          // this invocation waited for a new instance's init
	MaxRSSBytes   int64         // the instance's peak RSS (VmHWM) after the invocation
}

// PoolStats is a snapshot of a pool's counters.
type PoolStats struct {
	Live           int   // instances whose process is running (any state)
	Idle           int   // warm instances waiting for an event
	Queued         int   // invocations waiting for an instance
	Peak           int   // highest Live seen
	ColdStarts     int64 // instances that finished init (reached their first /next)
	InitFailures   int64
	Invocations    int64 // invocations handed to a runtime
	FunctionErrors int64
	Crashes        int64
	Timeouts       int64
}

// Pool runs the instances of one function. It is safe for concurrent use.
type Pool struct {
	cfg    FunctionConfig
	arn    string // cfg.FunctionARN(), read without p.mu
	logger *slog.Logger
	logMu  sync.Mutex
	out    io.Writer

	mu        sync.Mutex
	binary    string
	gen       int
	closed    bool
	live      int
	peak      int
	finishing int         // instances that answered and have not called /next yet
	idle      []*instance // LIFO
	waiters   []chan grant
	all       map[*instance]struct{}
	procs     sync.WaitGroup
	quit      chan struct{}

	coldStarts, initFailures, invocations, fnErrors, crashes, timeouts atomic.Int64
}

// grant wakes a queued invocation: an idle instance, or (in == nil, err ==
// nil) a free slot to start a new one.
type grant struct {
	in  *instance
	err error
}

// NewPool returns a pool for cfg; no process starts until the first Invoke or
// Warm. logger receives operational events (nil: discarded); logOut receives
// START/END/REPORT lines and the function's stdout/stderr lines unchanged (nil:
// discarded). If logOut is shared with other pools it must be safe for
// concurrent writes (os.Stdout is); every line is written with one Write.
func NewPool(cfg FunctionConfig, logger *slog.Logger, logOut io.Writer) *Pool {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if logOut == nil {
		logOut = io.Discard
	}
	p := &Pool{
		cfg:    cfg,
		logger: logger,
		out:    logOut,
		binary: cfg.Binary,
		arn:    cfg.FunctionARN(),
		all:    make(map[*instance]struct{}),
		quit:   make(chan struct{}),
	}
	if cfg.IdleTimeout > 0 {
		go p.reapIdle()
	}
	return p
}

// Config returns the pool's configuration with defaults applied.
func (p *Pool) Config() FunctionConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.cfg
	c.Binary = p.binary
	return c
}

// Invoke runs payload through the function, like a synchronous
// (RequestResponse) Lambda invoke. A function error is a Result with
// FunctionError set and a nil error. Errors: ErrTimeout, ErrCrashed,
// *InitError (ErrInitFailed), ErrClosed, ErrRequestTooLarge, or ctx's error
// while queued or running (a running invocation then finishes in the
// background, as on Lambda). The payload must not be modified until Invoke
// returns.
func (p *Pool) Invoke(ctx context.Context, payload []byte) (Result, error) {
	if len(payload) > MaxPayloadBytes {
		return Result{}, ErrRequestTooLarge
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		in, cold, err := p.acquire(ctx)
		if err != nil {
			if errors.Is(err, errNotDelivered) && attempt < attempts {
				continue
			}
			return Result{}, err
		}
		inv := newInvocation(payload, time.Now().Add(p.cfg.Timeout))
		in.assign(inv)
		// Wait here rather than in a goroutine per invocation (one goroutine
		// hand-off less on every invoke); only when ctx ends first does the
		// rest move to the background, where it finishes as on Lambda.
		timer := time.NewTimer(p.cfg.Timeout)
		var o outcome
		select {
		case o = <-inv.done:
			timer.Stop()
		case <-timer.C:
			o = p.expire(inv)
		case <-ctx.Done():
			go func() {
				p.finish(in, inv, cold, p.await(inv, timer))
			}()
			return Result{RequestID: inv.id}, fmt.Errorf("lambdaruntime: %s invocation %s: %w", p.cfg.Name, inv.id, ctx.Err())
		}
		res, _, err := p.finish(in, inv, cold, o)
		if errors.Is(err, errNotDelivered) && attempt < attempts {
			continue
		}
		return res, err
	}
}

// run waits for inv's outcome (bounded by the function timeout), writes the
// END/REPORT lines and returns the result and the time the outcome arrived.
func (p *Pool) run(in *instance, inv *invocation, cold bool) (Result, time.Time, error) {
	return p.finish(in, inv, cold, p.await(inv, time.NewTimer(p.cfg.Timeout)))
}

// await returns inv's outcome, or times it out when timer fires first.
func (p *Pool) await(inv *invocation, timer *time.Timer) outcome {
	select {
	case o := <-inv.done:
		timer.Stop()
		return o
	case <-timer.C:
		return p.expire(inv)
	}
}

// expire ends inv with ErrTimeout (unless its outcome won the race) and
// returns the outcome.
func (p *Pool) expire(inv *invocation) outcome {
	inv.complete(outcome{err: fmt.Errorf("%w: %s after %s", ErrTimeout, p.cfg.Name, p.cfg.Timeout),
		status: "timeout"})
	return <-inv.done
}

// finish accounts for inv's outcome o, writes the END/REPORT lines and
// returns the result and the time the outcome arrived.
func (p *Pool) finish(in *instance, inv *invocation, cold bool, o outcome) (Result, time.Time, error) {
	if errors.Is(o.err, errNotDelivered) {
		return Result{}, o.at, o.err
	}
	rss := in.maxRSS()
	if errors.Is(o.err, ErrTimeout) {
		in.stop()
		p.timeouts.Add(1)
		p.logf("%s %s Task timed out after %.2f seconds",
			o.at.UTC().Format("2006-01-02T15:04:05.000Z"), inv.id, p.cfg.Timeout.Seconds())
	}
	if errors.Is(o.err, ErrCrashed) {
		p.crashes.Add(1)
	}
	if o.fnErr != "" {
		p.fnErrors.Add(1)
	}
	p.invocations.Add(1)
	res := Result{
		Payload:       o.payload,
		FunctionError: o.fnErr,
		RequestID:     inv.id,
		Cold:          cold,
		MaxRSSBytes:   rss,
	}
	if start, ok := inv.startTime(); ok {
		res.Duration = o.at.Sub(start)
	}
	if cold {
		res.InitDuration = in.initDuration()
	}
	if p.out != io.Discard {
		p.logf("END RequestId: %s", inv.id)
		p.writeLog([]byte(p.reportLine(inv.id, res.Duration, res.InitDuration, cold, rss, o.status, o.errType) + "\n"))
	}
	return res, o.at, o.err
}

// acquire returns an instance parked in /next: the most recently idled one,
// a new one (cold), or — at MaxInstances — the next one to free up.
func (p *Pool) acquire(ctx context.Context) (*instance, bool, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, ErrClosed
	}
	if n := len(p.idle); n > 0 {
		in := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return in, false, nil
	}
	if p.live < p.cfg.MaxInstances && len(p.waiters) >= p.finishing {
		p.takeSlotLocked()
		p.mu.Unlock()
		return p.spawnAndWait(ctx)
	}
	// Queue: at MaxInstances, or an instance has just answered and is about
	// to call /next, which beats a cold start (sequential traffic stays on
	// one warm instance); after finishGrace, start one after all.
	var grace <-chan time.Time
	if p.live < p.cfg.MaxInstances {
		t := time.NewTimer(finishGrace)
		defer t.Stop()
		grace = t.C
	}
	w := make(chan grant, 1)
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()

	for {
		select {
		case g := <-w:
			switch {
			case g.err != nil:
				return nil, false, g.err
			case g.in != nil:
				return g.in, false, nil
			default: // a free slot
				return p.spawnAndWait(ctx)
			}
		case <-grace:
			grace = nil
			p.mu.Lock()
			if p.live < p.cfg.MaxInstances && p.removeWaiterLocked(w) {
				p.takeSlotLocked()
				p.mu.Unlock()
				return p.spawnAndWait(ctx)
			}
			p.mu.Unlock()
		case <-ctx.Done():
			p.mu.Lock()
			if !p.removeWaiterLocked(w) {
				// Granted meanwhile: pass it on.
				g := <-w
				if g.in != nil {
					p.releaseLocked(g.in)
				} else if g.err == nil {
					p.live--
					p.grantSlotsLocked()
				}
			}
			p.mu.Unlock()
			return nil, false, fmt.Errorf("lambdaruntime: %s: waiting for an instance: %w", p.cfg.Name, ctx.Err())
		}
	}
}

// finishGrace is how long an invocation waits for an instance that has
// answered but not yet asked for its next event before starting a new one.
const finishGrace = 20 * time.Millisecond

// finished marks an instance that has just answered: it is expected to call
// /next momentarily.
func (p *Pool) finished(in *instance) {
	p.mu.Lock()
	if !in.finishing {
		in.finishing = true
		p.finishing++
	}
	p.mu.Unlock()
}

func (p *Pool) clearFinishingLocked(in *instance) {
	if in.finishing {
		in.finishing = false
		p.finishing--
	}
}

func (p *Pool) takeSlotLocked() {
	p.live++
	if p.live > p.peak {
		p.peak = p.live
	}
}

// spawnAndWait starts an instance in a slot the caller already holds and
// waits for its first /next.
func (p *Pool) spawnAndWait(ctx context.Context) (*instance, bool, error) {
	p.mu.Lock()
	binary, gen := p.binary, p.gen
	p.mu.Unlock()
	in, err := p.startInstance(binary, gen, true)
	if err != nil {
		p.mu.Lock()
		p.live--
		p.grantSlotsLocked()
		p.mu.Unlock()
		return nil, false, err
	}
	timer := time.NewTimer(p.cfg.InitTimeout)
	defer timer.Stop()
	select {
	case <-in.initDone:
		return in, true, nil
	case <-in.dead:
		select {
		case <-in.initDone: // initialized, then died before the event
			return nil, false, errNotDelivered
		default:
		}
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return nil, false, ErrClosed
		}
		p.initFailures.Add(1)
		return nil, false, in.initFailure()
	case <-timer.C:
		in.stop()
		p.initFailures.Add(1)
		p.logf("INIT_REPORT Init Duration: %s ms\tPhase: init\tStatus: timeout", msString(time.Since(in.execAt)))
		return nil, false, &InitError{Function: p.cfg.Name, ErrorType: "Sandbox.Timedout", Timeout: true,
			ErrorMessage: fmt.Sprintf("init did not reach /next within %s", p.cfg.InitTimeout)}
	case <-ctx.Done():
		p.mu.Lock()
		in.reserved = false
		select {
		case <-in.initDone:
			p.releaseLocked(in)
		default: // its first /next will release it
		}
		p.mu.Unlock()
		return nil, false, fmt.Errorf("lambdaruntime: %s: waiting for init: %w", p.cfg.Name, ctx.Err())
	}
}

// ready is called by an instance's /next handler: the instance now waits
// for an event.
func (p *Pool) ready(in *instance, first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearFinishingLocked(in)
	if first {
		close(in.initDone)
		p.coldStarts.Add(1)
		if in.reserved {
			return // its spawner takes it
		}
	}
	p.releaseLocked(in)
}

// releaseLocked makes a parked instance available: to the first queued
// invocation, else to the idle stack. Stale (replaced) instances are stopped.
func (p *Pool) releaseLocked(in *instance) {
	if p.closed || in.gen != p.gen || in.stopping.Load() {
		in.stop()
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w <- grant{in: in}
		return
	}
	in.idleSince = time.Now()
	p.idle = append(p.idle, in)
}

// grantSlotsLocked hands free slots to queued invocations.
func (p *Pool) grantSlotsLocked() {
	for len(p.waiters) > 0 && p.live < p.cfg.MaxInstances && !p.closed {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.takeSlotLocked()
		w <- grant{}
	}
}

func (p *Pool) removeWaiterLocked(w chan grant) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// removeLocked forgets an exited instance and frees its slot.
func (p *Pool) removeLocked(in *instance) {
	delete(p.all, in)
	p.clearFinishingLocked(in)
	for i, x := range p.idle {
		if x == in {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	p.live--
	p.grantSlotsLocked()
}

// Warm starts one instance and waits until it asks for its first event, so
// the next invocation is warm. It does nothing at MaxInstances.
func (p *Pool) Warm(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.live >= p.cfg.MaxInstances {
		p.mu.Unlock()
		return nil
	}
	p.takeSlotLocked()
	p.mu.Unlock()
	in, _, err := p.spawnAndWait(ctx)
	if err != nil {
		return err
	}
	// No invocation will report this init (the instance serves warm, as with
	// provisioned concurrency), so report it now, in the format Lambda uses
	// for a failed init.
	p.logf("INIT_REPORT Init Duration: %s ms\tPhase: init\tStatus: success", msString(in.initDuration()))
	p.mu.Lock()
	p.releaseLocked(in)
	p.mu.Unlock()
	return nil
}

// Replace hot-swaps the function's binary: new invocations get new instances
// of binary; idle instances of the old one are stopped now, busy ones after
// their current invocation.
func (p *Pool) Replace(binary string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.binary = absPath(binary)
	p.gen++
	for _, in := range p.idle {
		in.stop()
	}
	p.idle = nil
	p.logger.Info("lambda function replaced", "function", p.cfg.Name, "binary", p.binary)
}

// SetEnv replaces the function's environment (FunctionConfig.Env) the way
// Replace swaps its binary: new invocations get new instances with env;
// idle instances are stopped now, busy ones after their current invocation.
// It is how a running local stack changes a setting without restarting.
func (p *Pool) SetEnv(env map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Env = maps.Clone(env)
	p.gen++
	for _, in := range p.idle {
		in.stop()
	}
	p.idle = nil
	p.logger.Info("lambda function environment replaced", "function", p.cfg.Name)
}

// Close stops every instance (SIGKILL to each process group, as Lambda
// shuts down runtimes without extensions), fails queued and running
// invocations with ErrClosed, and waits for the processes to exit.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.procs.Wait()
		return nil
	}
	p.closed = true
	close(p.quit)
	for _, w := range p.waiters {
		w <- grant{err: ErrClosed}
	}
	p.waiters = nil
	p.idle = nil
	all := make([]*instance, 0, len(p.all))
	for in := range p.all {
		all = append(all, in)
	}
	p.mu.Unlock()
	for _, in := range all {
		in.stop()
	}
	p.procs.Wait()
	return nil
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	s := PoolStats{Live: p.live, Idle: len(p.idle), Queued: len(p.waiters), Peak: p.peak}
	p.mu.Unlock()
	s.ColdStarts = p.coldStarts.Load()
	s.InitFailures = p.initFailures.Load()
	s.Invocations = p.invocations.Load()
	s.FunctionErrors = p.fnErrors.Load()
	s.Crashes = p.crashes.Load()
	s.Timeouts = p.timeouts.Load()
	return s
}

// reapIdle stops instances idle for longer than IdleTimeout.
func (p *Pool) reapIdle() {
	every := min(max(p.cfg.IdleTimeout/4, 100*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case now := <-t.C:
			p.mu.Lock()
			keep := p.idle[:0]
			for _, in := range p.idle {
				if now.Sub(in.idleSince) > p.cfg.IdleTimeout {
					in.stop()
				} else {
					keep = append(keep, in)
				}
			}
			clear(p.idle[len(keep):])
			p.idle = keep
			p.mu.Unlock()
		}
	}
}
