// Package reliability holds wxsession's "fail closed, lose nothing, leak
// nothing" tests, run against the real local stack (internal/devstack/stack: the real
// function binaries behind the local gateway, dynalite and the WeChat
// emulator): a fault matrix for WeChat and DynamoDB, a SIGSTOP of the local
// DynamoDB, hostile input at the gateway, concurrency and session hygiene.
//
// This file has the small fault servers the tests point the functions at
// (through the stack's EnvOverrides): a closed port, a listener that resets
// every connection, one that never answers, and DynamoProxy, a reverse proxy
// in front of the stack's dynalite that counts requests and answers chosen
// ones with DynamoDB's real wire-format errors.
package faultservers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
)

// ClosedURL returns http://127.0.0.1:<port> for a port nothing listens on:
// connecting to it is refused. (Another process could take the port later;
// on a test machine that is unlikely within a test's lifetime.)
func ClosedURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("reliability: closed port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("reliability: closed port: %w", err)
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
		return nil, fmt.Errorf("reliability: listen: %w", err)
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

// Action is what DynamoProxy does with a request that matches a Rule.
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

// Rule selects requests DynamoProxy does not forward.
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
	// Action is what to answer.
	Action Action
}

type rule struct {
	Rule
	left int // remaining when Count > 0
}

// Wire-format errors DynamoDB answers (JSON 1.0 protocol).
const (
	throttleType    = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
	throttleMessage = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
	serverErrorType = "com.amazonaws.dynamodb.v20120810#InternalServerError"
	serverErrorMsg  = "Internal server error"
	targetPrefix    = "DynamoDB_20120810."
	maxRequestBytes = 16 << 20
)

// Request is what DynamoProxy recorded about one request.
type Request struct {
	Op     string
	Tables []string
	Action Action // 0 when forwarded
}

// DynamoProxy is an HTTP reverse proxy for DynamoDB's JSON protocol. Point a
// function's DYNAMODB_ENDPOINT at URL, then SetUpstream to the real server
// (dynalite). Until then every request is answered 502. It records every
// request (operation and tables) and applies the first matching Rule;
// requests no rule takes are forwarded unchanged. Safe for concurrent use.
type DynamoProxy struct {
	srv      *http.Server
	ln       net.Listener
	upstream atomic.Pointer[httputil.ReverseProxy]
	closing  chan struct{}
	once     sync.Once

	mu    sync.Mutex
	rules []*rule
	log   []Request
}

// NewDynamoProxy starts a proxy on a free port of 127.0.0.1.
func NewDynamoProxy() (*DynamoProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("reliability: dynamo proxy: %w", err)
	}
	p := &DynamoProxy{ln: ln, closing: make(chan struct{})}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's base URL.
func (p *DynamoProxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetUpstream sets the endpoint requests are forwarded to.
func (p *DynamoProxy) SetUpstream(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("reliability: dynamo proxy upstream %q: not a URL", endpoint)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:  func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
		ErrorLog: nil,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.upstream.Store(rp)
	return nil
}

// SetRules replaces the rules (nil: forward everything).
func (p *DynamoProxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	for _, r := range rules {
		p.rules = append(p.rules, &rule{Rule: r, left: r.Count})
	}
}

// Reset drops the rules and the request log.
func (p *DynamoProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules, p.log = nil, nil
}

// Requests returns a copy of the request log.
func (p *DynamoProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// Count is the number of logged requests of op ("" for all).
func (p *DynamoProxy) Count(op string) int {
	n := 0
	for _, r := range p.Requests() {
		if op == "" || r.Op == op {
			n++
		}
	}
	return n
}

// Close stops the proxy, releasing hung requests.
func (p *DynamoProxy) Close() error {
	p.once.Do(func() { close(p.closing) })
	return p.srv.Close()
}

// ServeHTTP implements http.Handler.
func (p *DynamoProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	rec := Request{Op: op, Tables: dynalite.RequestTables(body)}

	p.mu.Lock()
	for _, ru := range p.rules {
		if ru.Count > 0 && ru.left == 0 {
			continue
		}
		if ru.Op != "" && ru.Op != op {
			continue
		}
		if ru.Table != "" && !contains(rec.Tables, ru.Table) {
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
	rp := p.upstream.Load()
	if rp == nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
