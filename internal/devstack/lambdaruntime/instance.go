package lambdaruntime

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Runtime API header names (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
const (
	hdrRequestID      = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline       = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN    = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID        = "Lambda-Runtime-Trace-Id"
	hdrErrorType      = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody  = "Lambda-Runtime-Function-Error-Body"
	apiPrefix         = "/2018-06-01/runtime"
	initErrorExitType = "Runtime.ExitError"
)

// invocation is one event handed to one instance.
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	traceID  string

	started   atomic.Pointer[time.Time] // set when the runtime takes the event (/next returns it)
	completed atomic.Bool
	once      sync.Once
	done      chan outcome // buffered 1; receives the single outcome
}

// outcome is how an invocation ended.
type outcome struct {
	payload []byte
	fnErr   string // errorType when the function reported an error
	err     error  // ErrTimeout, ErrCrashed, ErrClosed, errNotDelivered
	at      time.Time
	status  string // REPORT "Status:" (timeout, error)
	errType string // REPORT "Error Type:"
}

func newInvocation(payload []byte, deadline time.Time) *invocation {
	now := time.Now()
	return &invocation{
		id:       newRequestID(),
		payload:  payload,
		deadline: deadline,
		traceID:  newTraceID(now),
		done:     make(chan outcome, 1),
	}
}

// complete records the outcome; only the first call wins.
func (inv *invocation) complete(o outcome) bool {
	won := false
	inv.once.Do(func() {
		won = true
		if o.at.IsZero() {
			o.at = time.Now()
		}
		inv.completed.Store(true)
		inv.done <- o
	})
	return won
}

func (inv *invocation) startTime() (time.Time, bool) {
	if t := inv.started.Load(); t != nil {
		return *t, true
	}
	return time.Time{}, false
}

// instance is one runtime process plus its own Runtime API listener.
type instance struct {
	p      *Pool
	gen    int
	binary string
	addr   string
	srv    *http.Server
	cmd    *exec.Cmd
	execAt time.Time

	pid      atomic.Int64
	status   *procStatus // VmHWM reader; set before the instance is handed out
	stopping atomic.Bool
	stopOnce sync.Once
	stopCh   chan struct{}

	nextCh   chan *invocation // buffered 1: the event for the parked /next
	initDone chan struct{}    // closed under p.mu on the first /next
	dead     chan struct{}    // closed once the process has exited

	// guarded by p.mu
	reserved  bool // its spawner waits for initDone and takes it
	finishing bool // answered, /next not called yet
	idleSince time.Time

	mu        sync.Mutex
	current   *invocation
	nextCalls int
	initDur   time.Duration
	initErr   *errorBody
	exited    bool
	exitDesc  string
	exitRSS   int64
}

type errorBody struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// startInstance starts binary as a new instance. The caller holds a slot
// (p.live was incremented); on error the caller gives it back, on success the
// instance gives it back when it exits.
func (p *Pool) startInstance(binary string, gen int, reserved bool) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdaruntime: %s: runtime API listener: %w", p.cfg.Name, err)
	}
	in := &instance{
		p:        p,
		gen:      gen,
		binary:   binary,
		addr:     ln.Addr().String(),
		stopCh:   make(chan struct{}),
		nextCh:   make(chan *invocation, 1),
		initDone: make(chan struct{}),
		dead:     make(chan struct{}),
		reserved: reserved,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", in.handleNext)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", in.handleResponse)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", in.handleError)
	mux.HandleFunc("POST "+apiPrefix+"/init/error", in.handleInitError)
	in.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = in.srv.Serve(ln) }()

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = in.srv.Close()
		return nil, ErrClosed
	}
	p.all[in] = struct{}{}
	p.procs.Add(1)
	p.mu.Unlock()

	fail := func(err error) (*instance, error) {
		_ = in.srv.Close()
		p.mu.Lock()
		delete(p.all, in)
		p.mu.Unlock()
		p.procs.Done()
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("lambdaruntime: %s: stdout pipe: %w", p.cfg.Name, err))
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fail(fmt.Errorf("lambdaruntime: %s: stderr pipe: %w", p.cfg.Name, err))
	}
	cmd := exec.Command(binary)
	cmd.Dir = filepath.Dir(binary)
	cmd.Env = p.environ(in.addr, binary)
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.SysProcAttr = sysProcAttr()
	in.cmd = cmd
	in.mu.Lock() // handleNext reads execAt; the network gives no happens-before edge
	in.execAt = time.Now()
	in.mu.Unlock()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fail(fmt.Errorf("lambdaruntime: %s: start %s: %w", p.cfg.Name, binary, err))
	}
	in.pid.Store(int64(cmd.Process.Pid))
	in.status = openProcStatus(cmd.Process.Pid)
	if in.stopping.Load() { // stop() ran before the pid was known
		killGroup(cmd.Process.Pid)
	}
	p.logger.Debug("lambda instance started", "function", p.cfg.Name, "pid", cmd.Process.Pid, "runtime_api", in.addr)

	var drained sync.WaitGroup
	drained.Add(2)
	go p.forward(outR, drained.Done)
	go p.forward(errR, drained.Done)
	go in.watch(&drained, outR, errR)
	return in, nil
}

// watch waits for the process to exit, cleans up and tells the pool.
func (in *instance) watch(drained *sync.WaitGroup, pipes ...*os.File) {
	p := in.p
	defer p.procs.Done()
	waitErr := in.cmd.Wait()
	pid := int(in.pid.Load())
	killGroup(pid) // anything the function left behind in its group
	done := make(chan struct{})
	go func() { drained.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second): // a descendant escaped the group and holds the pipe
		for _, f := range pipes {
			f.Close()
		}
	}
	_ = in.srv.Close()

	desc := "exit status 0"
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		desc = ee.ProcessState.String() // "exit status 2", "signal: killed"
	} else if waitErr != nil {
		desc = waitErr.Error()
	}

	in.mu.Lock()
	in.exited = true
	in.exitDesc = desc
	in.exitRSS = exitedRSS(in.cmd)
	in.status.close()
	cur := in.current
	initialized := in.nextCalls > 0
	in.mu.Unlock()

	p.mu.Lock()
	closed := p.closed
	p.removeLocked(in)
	p.mu.Unlock()
	defer close(in.dead) // after the log lines below

	stopped := in.stopping.Load()
	switch {
	case cur != nil && !cur.completed.Load():
		if _, ok := cur.startTime(); !ok {
			cur.complete(outcome{err: errNotDelivered})
			break
		}
		if closed {
			cur.complete(outcome{err: ErrClosed, status: "error", errType: initErrorExitType})
			break
		}
		p.logf("RequestId: %s Error: Runtime exited with error: %s\n%s", cur.id, desc, initErrorExitType)
		cur.complete(outcome{
			err:     fmt.Errorf("%w: %s: %s", ErrCrashed, p.cfg.Name, desc),
			status:  "error",
			errType: initErrorExitType,
		})
	case !initialized && !stopped && !closed:
		in.mu.Lock()
		ie := in.initErr
		in.mu.Unlock()
		errType := initErrorExitType
		if ie != nil && ie.ErrorType != "" {
			errType = ie.ErrorType
		}
		p.logf("INIT_REPORT Init Duration: %s ms\tPhase: init\tStatus: error\tError Type: %s",
			msString(time.Since(in.execAt)), errType)
	case !stopped && !closed:
		p.logger.Warn("lambda runtime exited", "function", p.cfg.Name, "pid", pid, "status", desc)
	}
	p.logger.Debug("lambda instance exited", "function", p.cfg.Name, "pid", pid, "status", desc, "stopped", stopped)
}

// stop kills the instance's process group. It does not wait.
func (in *instance) stop() {
	in.stopping.Store(true)
	// Kill first, then release a parked /next: the other order let the
	// runtime read the 500 and log "failed to GET .../next" before it died,
	// a line Lambda never produces (a replaced instance is frozen, then
	// gone).
	killGroup(int(in.pid.Load()))
	in.stopOnce.Do(func() { close(in.stopCh) })
}

// assign hands inv to the instance, which must be parked in /next.
func (in *instance) assign(inv *invocation) {
	in.mu.Lock()
	if in.exited {
		in.mu.Unlock()
		inv.complete(outcome{err: errNotDelivered})
		return
	}
	in.current = inv
	in.mu.Unlock()
	select {
	case in.nextCh <- inv:
	default: // cannot happen: an instance is handed out once per /next
		inv.complete(outcome{err: errNotDelivered})
	}
}

func (in *instance) initFailure() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	e := &InitError{Function: in.p.cfg.Name, ErrorType: initErrorExitType,
		ErrorMessage: "Runtime exited with error: " + in.exitDesc}
	if in.initErr != nil {
		if in.initErr.ErrorType != "" {
			e.ErrorType = in.initErr.ErrorType
		}
		if in.initErr.ErrorMessage != "" {
			e.ErrorMessage = in.initErr.ErrorMessage
		}
	}
	return e
}

func (in *instance) initDuration() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.initDur
}

func (in *instance) maxRSS() int64 {
	if rss := in.status.hwm(); rss > 0 {
		return rss
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.exitRSS
}

// handleNext parks the runtime until an event is assigned.
func (in *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	in.mu.Lock()
	if prev := in.current; prev != nil {
		if _, delivered := prev.startTime(); delivered {
			in.current = nil
			if !prev.completed.Load() {
				// The runtime moved on without answering; Lambda reports this
				// as a runtime failure.
				defer prev.complete(outcome{
					err:     fmt.Errorf("%w: runtime asked for the next event without answering %s", ErrCrashed, prev.id),
					status:  "error",
					errType: "Runtime.NoResponse",
				})
			}
		}
	}
	in.nextCalls++
	first := in.nextCalls == 1
	if first {
		in.initDur = now.Sub(in.execAt)
	}
	in.mu.Unlock()

	in.p.ready(in, first)

	select {
	case inv := <-in.nextCh:
		start := time.Now()
		inv.started.Store(&start)
		in.p.logf("START RequestId: %s Version: $LATEST", inv.id)
		h := w.Header()
		h.Set(hdrRequestID, inv.id)
		h.Set(hdrDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set(hdrFunctionARN, in.p.arn)
		h.Set(hdrTraceID, inv.traceID)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-in.stopCh:
		writeAPIError(w, http.StatusInternalServerError, "Sandbox.Shutdown", "the execution environment is shutting down")
	case <-r.Context().Done():
	}
}

// lookup returns the running invocation named id, or writes the Runtime
// API's error (400 unknown id, 403 already answered) and returns nil.
func (in *instance) lookup(w http.ResponseWriter, id string) *invocation {
	in.mu.Lock()
	cur := in.current
	in.mu.Unlock()
	if cur == nil || cur.id != id {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return nil
	}
	if cur.completed.Load() {
		writeAPIError(w, http.StatusForbidden, "InvalidStateTransition",
			"State transition is not allowed: the invocation already has a result")
		return nil
	}
	return cur
}

func (in *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	inv := in.lookup(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		return // the runtime went away mid-request; watch() reports the crash
	}
	now := time.Now()
	if len(body) > MaxPayloadBytes {
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes)
		payload, _ := json.Marshal(errorBody{ErrorMessage: msg, ErrorType: "Function.ResponseSizeTooLarge"})
		inv.complete(outcome{payload: payload, fnErr: "Function.ResponseSizeTooLarge", at: now,
			status: "error", errType: "Function.ResponseSizeTooLarge"})
		writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes))
		return
	}
	in.p.finished(in)
	// A streamed response that failed midway reports its error in trailers
	// (aws-lambda-go does this when the handler's io.Reader fails).
	if et := r.Trailer.Get(hdrErrorType); et != "" {
		payload, err := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody))
		if err != nil || len(payload) == 0 {
			payload, _ = json.Marshal(errorBody{ErrorMessage: "response stream failed", ErrorType: et})
		}
		inv.complete(outcome{payload: payload, fnErr: et, at: now})
	} else {
		inv.complete(outcome{payload: body, at: now})
	}
	writeAccepted(w)
}

func (in *instance) handleError(w http.ResponseWriter, r *http.Request) {
	inv := in.lookup(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		return
	}
	now := time.Now()
	in.p.finished(in)
	inv.complete(outcome{payload: body, fnErr: errorType(r, body), at: now})
	writeAccepted(w)
}

func (in *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		return
	}
	in.mu.Lock()
	if in.nextCalls > 0 {
		in.mu.Unlock()
		writeAPIError(w, http.StatusForbidden, "InvalidStateTransition",
			"State transition is not allowed: init already finished")
		return
	}
	eb := &errorBody{}
	_ = json.Unmarshal(body, eb)
	eb.ErrorType = errorType(r, body)
	in.initErr = eb
	in.mu.Unlock()
	writeAccepted(w)
}

// errorType is the body's errorType (aws-lambda-go sends only that), else
// the Lambda-Runtime-Function-Error-Type header, else "Unhandled".
func errorType(r *http.Request, body []byte) string {
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.ErrorType != "" {
		return eb.ErrorType
	}
	if h := r.Header.Get(hdrErrorType); h != "" {
		return h
	}
	return "Unhandled"
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func writeAPIError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(errorBody{ErrorMessage: msg, ErrorType: typ})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
