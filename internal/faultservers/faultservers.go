// Package faultservers holds the small servers the reliability tests
// (tests/reliability) and the benchmark (internal/bench) point the functions
// at, through the stack's EnvOverrides: a closed port, a listener that resets
// every connection, one that never answers, and Proxy, the one counting
// reverse proxy put in front of dynalite (and of the WeChat emulator), which
// answers chosen requests with DynamoDB's real wire-format errors; and
// LoseAnswer, an HTTP client for store tests that lets a write land and
// loses its answer, so that the SDK retries a write already applied.
package faultservers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
)

// ClosedURL returns http://127.0.0.1:<port> for a port nothing listens on:
// connecting to it is refused. (Another process could take the port later;
// on a test machine that is unlikely within a test's lifetime.)
func ClosedURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("faultservers: closed port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("faultservers: closed port: %w", err)
	}
	return "http://" + addr, nil
}

// faultListener is the accept loop shared by ResetListener and HangListener.
type faultListener struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

func newFaultListener(handle func(*faultListener, net.Conn)) (*faultListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultservers: listen: %w", err)
	}
	l := &faultListener{ln: ln, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			l.mu.Lock()
			l.conns[c] = struct{}{}
			l.mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				handle(l, c)
			}()
		}
	}()
	return l, nil
}

func (l *faultListener) forget(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// URL is the listener's base URL.
func (l *faultListener) URL() string { return "http://" + l.ln.Addr().String() }

// Accepted is the number of connections accepted so far.
func (l *faultListener) Accepted() int64 { return l.accepted.Load() }

// Close stops accepting, closes every held connection and waits for the
// handlers. It is safe to call more than once.
func (l *faultListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		_ = l.ln.Close()
		l.mu.Lock()
		for c := range l.conns {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return nil
}

// ResetListener accepts TCP connections, reads what the client sends first
// (up to 4 KiB, for at most 200 ms) and closes the connection with
// SO_LINGER 0, so the client gets a TCP RST after its request went out: what
// a middlebox cutting a TLS handshake, or a crashing server, looks like.
type ResetListener struct{ *faultListener }

// NewResetListener starts a ResetListener on a free port of 127.0.0.1.
func NewResetListener() (*ResetListener, error) {
	l, err := newFaultListener(func(l *faultListener, c net.Conn) {
		defer l.forget(c)
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	})
	if err != nil {
		return nil, err
	}
	return &ResetListener{l}, nil
}

// HangListener accepts TCP connections and never reads from or writes to
// them until Close: a server that hangs after the handshake.
type HangListener struct{ *faultListener }

// NewHangListener starts a HangListener on a free port of 127.0.0.1.
func NewHangListener() (*HangListener, error) {
	l, err := newFaultListener(func(l *faultListener, c net.Conn) {
		<-l.closed
		_ = c.Close()
		l.forget(c)
	})
	if err != nil {
		return nil, err
	}
	return &HangListener{l}, nil
}

// Action is what a Proxy does with a request that matches a Rule.
type Action int

// Actions.
const (
	// Throttle answers HTTP 400 with DynamoDB's
	// ProvisionedThroughputExceededException (the SDK retries it).
	Throttle Action = iota + 1
	// ServerError answers HTTP 500 with DynamoDB's InternalServerError.
	ServerError
	// Hang holds the request without answering until the client gives up
	// or the proxy closes.
	Hang
	// Reset closes the client's connection with a TCP RST, no answer.
	Reset
)

func (a Action) String() string {
	switch a {
	case Throttle:
		return "throttle"
	case ServerError:
		return "server-error"
	case Hang:
		return "hang"
	case Reset:
		return "reset"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Rule selects requests a Proxy answers with a fault.
type Rule struct {
	// Op is the operation (the X-Amz-Target suffix: "GetItem",
	// "PutItem", ...); "" matches every operation.
	Op string
	// Table is a table the request touches (TableName, or a key of
	// RequestItems for batch operations); "" matches any table.
	Table string
	// Count is how many matching requests the rule takes; 0 means every
	// one.
	Count int
	// Skip lets that many matching requests through before the rule
	// starts taking them (to fail, say, the third PutItem of a login).
	Skip int
	// Action is what to answer.
	Action Action
}

type rule struct {
	Rule
	left int // remaining when Count > 0
	skip int // matching requests still let through
}

// Wire-format errors DynamoDB answers (JSON 1.0 protocol).
const (
	throttleType    = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
	throttleMessage = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
	serverErrorType = "com.amazonaws.dynamodb.v20120810#InternalServerError"
	serverErrorMsg  = "Internal server error"
	maxRequestBytes = 16 << 20
)

// Request is what a Proxy recorded about one request.
type Request struct {
	// At is when the request arrived.
	At time.Time
	// Op is the AWS JSON operation (X-Amz-Target after its first '.', e.g.
	// "GetItem" or "GetParameter"), else "METHOD /path" ("CONNECT
	// host:port" for a tunnel).
	Op string
	// Tables are the DynamoDB tables the request names (TableName, or
	// RequestItems' keys for batch operations), sorted.
	Tables []string
	// Action is what a Rule made the proxy do; 0 when it was forwarded or
	// answered normally.
	Action Action
}

// Proxy is the one counting, fault-injecting HTTP proxy of the benchmark
// and the reliability tests, on a free port of 127.0.0.1. It records every
// request (operation, tables, time) and applies the first matching Rule
// (DynamoDB's wire-format errors, a hang, a reset); a request no rule takes
// is answered by the proxy's answer handler when it has one (a fake SSM, a
// refuse-everything catch-all), else forwarded unchanged to the upstream
// set with SetUpstream (502 until then). Point a function's
// DYNAMODB_ENDPOINT (or WECHAT_API_BASE, SSM_ENDPOINT) at URL. Safe for
// concurrent use.
type Proxy struct {
	srv      *http.Server
	ln       net.Listener
	answer   http.Handler
	upstream atomic.Pointer[httputil.ReverseProxy]
	closing  chan struct{}
	once     sync.Once

	mu    sync.Mutex
	rules []*rule
	log   []Request
}

// NewProxy starts a Proxy. With answer nil it forwards to the upstream;
// otherwise answer serves every request no rule takes.
func NewProxy(answer http.Handler) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultservers: proxy: %w", err)
	}
	p := &Proxy{ln: ln, answer: answer, closing: make(chan struct{})}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's base URL (http://127.0.0.1:port).
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetUpstream sets the endpoint requests are forwarded to (a dynalite, the
// WeChat emulator). The Host header is kept, so SigV4 signatures stay valid.
func (p *Proxy) SetUpstream(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("faultservers: proxy upstream %q: not a URL", endpoint)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.upstream.Store(rp)
	return nil
}

// SetRules replaces the rules (nil: forward everything).
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	for _, r := range rules {
		p.rules = append(p.rules, &rule{Rule: r, left: r.Count, skip: r.Skip})
	}
}

// Reset drops the rules and the request log.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules, p.log = nil, nil
}

// Requests returns a copy of the request log.
func (p *Proxy) Requests() []Request { return p.Since(0) }

// Mark returns a position in the request log, for Since.
func (p *Proxy) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.log)
}

// Since returns a copy of the requests recorded after mark.
func (p *Proxy) Since(mark int) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mark > len(p.log) {
		return nil
	}
	return append([]Request(nil), p.log[mark:]...)
}

// Count is the number of logged requests of op ("" for all).
func (p *Proxy) Count(op string) int {
	n := 0
	for _, r := range p.Requests() {
		if op == "" || r.Op == op {
			n++
		}
	}
	return n
}

// Close stops the proxy, releasing hung requests.
func (p *Proxy) Close() error {
	p.once.Do(func() { close(p.closing) })
	err := p.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// operation names a request for the log (see Request.Op).
func operation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if _, op, ok := strings.Cut(t, "."); ok {
			return op
		}
		return t
	}
	if r.Method == http.MethodConnect {
		return "CONNECT " + r.Host
	}
	return r.Method + " " + r.URL.Path
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{At: time.Now(), Op: operation(r)}
	var body []byte
	if r.Body != nil && r.Method != http.MethodConnect {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, maxRequestBytes)); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rec.Tables = dynalite.RequestTables(body)
	}

	p.mu.Lock()
	for _, ru := range p.rules {
		if ru.Count > 0 && ru.left == 0 {
			continue
		}
		if ru.Op != "" && ru.Op != rec.Op {
			continue
		}
		if ru.Table != "" && !slices.Contains(rec.Tables, ru.Table) {
			continue
		}
		if ru.skip > 0 {
			ru.skip--
			continue
		}
		if ru.Count > 0 {
			ru.left--
		}
		rec.Action = ru.Action
		break
	}
	p.log = append(p.log, rec)
	p.mu.Unlock()

	switch rec.Action {
	case Throttle:
		writeAWSError(w, http.StatusBadRequest, throttleType, throttleMessage)
		return
	case ServerError:
		writeAWSError(w, http.StatusInternalServerError, serverErrorType, serverErrorMsg)
		return
	case Hang:
		select {
		case <-r.Context().Done():
		case <-p.closing:
		}
		return
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	if p.answer != nil {
		p.answer.ServeHTTP(w, r)
		return
	}
	rp := p.upstream.Load()
	if rp == nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	rp.ServeHTTP(w, r)
}

// writeAWSError answers like DynamoDB does.
func writeAWSError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", fmt.Sprintf("RELIABILITY%016X", time.Now().UnixNano()))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Doer is an HTTP client: *http.Client, or the AWS SDK's HTTPClient
// (dynamodb.HTTPClient, smithyhttp.ClientDo).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// LoseAnswer is an HTTP client that forwards every request, but for the
// next count requests whose body contains the string given to Lose it lets
// the server apply the request, drops its answer and reports a connection
// reset instead: what a client sees when the network path fails between
// DynamoDB's commit and its reply. The SDK's retryer then sends again a
// write that already happened. Put it in a client's options
// (dynamodb.Options.HTTPClient), set the test's tables up, then arm it
// with Lose right before the write under test; Lost tells the test that
// the fault was really injected. Safe for concurrent use.
type LoseAnswer struct {
	next  Doer
	mu    sync.Mutex
	match []byte
	left  int
	lost  int
}

// NewLoseAnswer returns a LoseAnswer in front of next (nil: a plain
// http.Client), not armed.
func NewLoseAnswer(next Doer) *LoseAnswer {
	if next == nil {
		next = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}
	}
	return &LoseAnswer{next: next}
}

// Lose arms l: the answers of the next count requests whose body contains
// match are lost. It resets Lost.
func (l *LoseAnswer) Lose(match string, count int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.match, l.left, l.lost = []byte(match), count, 0
}

// Lost is how many answers were lost since Lose.
func (l *LoseAnswer) Lost() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// bufferBody reads r's body for matching and puts an unread copy back, so
// the wrapped client (and the SDK's retries) send it unchanged.
func bufferBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// Do implements Doer.
func (l *LoseAnswer) Do(r *http.Request) (*http.Response, error) {
	body, err := bufferBody(r)
	if err != nil {
		return nil, err
	}
	resp, err := l.next.Do(r)
	if err != nil || !l.take(body) {
		return resp, err
	}
	// The server has answered, so the request was applied: read the answer
	// to its end (the connection stays usable) and lose it.
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

// take reports whether the answer to a request with body is to be lost,
// and counts it.
func (l *LoseAnswer) take(body []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.left == 0 || len(l.match) == 0 || !bytes.Contains(body, l.match) {
		return false
	}
	l.left--
	l.lost++
	return true
}

// Gate is an HTTP client for store tests that holds chosen requests before
// sending them, until the test lets them go: it drives an interleaving of
// concurrent store calls request by request, without timing luck. Arm it
// with Hold, wait for the request with Held.Arrived, let it go with
// Held.Release. Every other request is forwarded at once. Safe for
// concurrent use.
type Gate struct {
	next  Doer
	mu    sync.Mutex
	holds []*Held
}

// Held is one request a Gate holds (or will hold, once it comes).
type Held struct {
	op, match string
	arrived   chan struct{}
	release   chan struct{}
	once      sync.Once
}

// NewGate returns a Gate in front of next (nil: a plain http.Client),
// holding nothing.
func NewGate(next Doer) *Gate {
	if next == nil {
		next = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}
	}
	return &Gate{next: next}
}

// Hold arms g: the next request for op (the X-Amz-Target operation, such
// as "PutItem"; "" any) whose body contains match is held before it is
// sent. Holds armed together take requests in the order they were armed.
func (g *Gate) Hold(op, match string) *Held {
	h := &Held{op: op, match: match, arrived: make(chan struct{}), release: make(chan struct{})}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holds = append(g.holds, h)
	return h
}

// Arrived is closed once the request is held.
func (h *Held) Arrived() <-chan struct{} { return h.arrived }

// Release sends the held request on (now, or as soon as it comes). It is
// safe to call more than once.
func (h *Held) Release() { h.once.Do(func() { close(h.release) }) }

// Do implements Doer.
func (g *Gate) Do(r *http.Request) (*http.Response, error) {
	body, err := bufferBody(r)
	if err != nil {
		return nil, err
	}
	if h := g.take(operation(r), body); h != nil {
		close(h.arrived)
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return g.next.Do(r)
}

// take returns and disarms the first hold matching a request.
func (g *Gate) take(op string, body []byte) *Held {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, h := range g.holds {
		if (h.op == "" || h.op == op) && bytes.Contains(body, []byte(h.match)) {
			g.holds = slices.Delete(g.holds, i, i+1)
			return h
		}
	}
	return nil
}
