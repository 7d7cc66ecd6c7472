package bench

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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
)

// Request is one request seen by a Counter.
type Request struct {
	At time.Time
	// Op is the AWS JSON operation (X-Amz-Target without its prefix, e.g.
	// "GetItem"), else "METHOD /path" ("CONNECT host:port" for a tunnel).
	Op string
	// Tables are the DynamoDB tables the request names (TableName, or
	// RequestItems' keys for batch operations).
	Tables []string
}

// Counter is an HTTP listener on 127.0.0.1 that records every request and
// either forwards it to a target (a counting reverse proxy, see SetTarget)
// or answers it itself.
type Counter struct {
	name   string
	url    string
	srv    *http.Server
	ln     net.Listener
	answer http.Handler
	target atomic.Pointer[url.URL]
	proxy  *httputil.ReverseProxy

	mu   sync.Mutex
	reqs []Request
}

// NewCounter starts a Counter. With answer nil it is a reverse proxy that
// answers 503 until SetTarget is called; otherwise answer serves every
// request after it is recorded.
func NewCounter(name string, answer http.Handler) (*Counter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: %s listener: %w", name, err)
	}
	c := &Counter{name: name, ln: ln, url: "http://" + ln.Addr().String(), answer: answer}
	c.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(c.target.Load())
			r.Out.Host = r.In.Host // keep the SigV4-signed Host
		},
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		ErrorLog: nil,
	}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// URL is the Counter's base URL (http://127.0.0.1:port).
func (c *Counter) URL() string { return c.url }

// SetTarget makes the Counter forward to base (e.g. a dynalite endpoint).
func (c *Counter) SetTarget(base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bench: %s target %q is not a URL", c.name, base)
	}
	c.target.Store(u)
	return nil
}

// ServeHTTP records r, then forwards or answers it.
func (c *Counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Request{At: time.Now(), Op: r.Method + " " + r.URL.Path}
	if r.Method == http.MethodConnect {
		req.Op = "CONNECT " + r.Host
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		_, op, _ := strings.Cut(t, ".")
		req.Op = op
	}
	if r.Body != nil && r.ContentLength != 0 && r.Method != http.MethodConnect {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			http.Error(w, "bench: read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		req.Tables = dynalite.RequestTables(body)
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	switch {
	case c.answer != nil:
		c.answer.ServeHTTP(w, r)
	case c.target.Load() == nil:
		http.Error(w, "bench: "+c.name+" has no target yet", http.StatusServiceUnavailable)
	default:
		c.proxy.ServeHTTP(w, r)
	}
}

// Mark returns a position in the Counter's log, for Since.
func (c *Counter) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reqs)
}

// Since returns the requests recorded after mark.
func (c *Counter) Since(mark int) []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mark > len(c.reqs) {
		return nil
	}
	return append([]Request(nil), c.reqs[mark:]...)
}

// Close stops the listener.
func (c *Counter) Close() error {
	err := c.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// fakeSSM answers SSM GetParameter with value, like Parameter Store does for
// a SecureString read WithDecryption. It stands in for the SSM read the
// deployed login function does at cold start.
func fakeSSM(value string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"UnknownOperationException","message":"bench fake SSM"}`)
			return
		}
		out, _ := json.Marshal(map[string]any{"Parameter": map[string]any{
			"Name": in.Name, "Type": "SecureString", "Value": value, "Version": 1,
			"ARN": "arn:aws:ssm:us-east-1:123456789012:parameter" + in.Name, "DataType": "text",
		}})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write(out)
	})
}

// refuseAll answers 403 to everything: the catch-all HTTP(S) proxy handed
// to cold-started functions, so that any request to a non-loopback host is
// counted and goes nowhere.
func refuseAll() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bench: outbound requests are refused during cold-start measurement", http.StatusForbidden)
	})
}

// Classification of DynamoDB operations.
var (
	readOps  = map[string]bool{"GetItem": true, "BatchGetItem": true, "Query": true, "Scan": true, "TransactGetItems": true}
	writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}
)

// opSummary renders requests as "GetItem SessionsTable ×1, PutItem ProfilesTable ×1".
func opSummary(reqs []Request) string {
	counts := map[string]int{}
	var keys []string
	for _, r := range reqs {
		k := r.Op
		if len(r.Tables) > 0 {
			k += " " + strings.Join(r.Tables, ",")
		}
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, counts[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
