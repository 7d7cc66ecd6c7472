// Package testutil holds the few helpers that many test packages share.
package testutil

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent writers: log handlers of
// concurrent requests and child processes' output write to it while a test
// reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Len returns the number of bytes written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

// CountingClient is an HTTP client (it satisfies the AWS SDK's HTTPClient)
// that counts the requests it sends, for asserting how many DynamoDB calls
// an operation makes.
type CountingClient struct {
	// Inner sends the requests; nil means http.DefaultClient.
	Inner *http.Client
	n     atomic.Int64
}

// Do counts r and sends it.
func (c *CountingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if c.Inner == nil {
		return http.DefaultClient.Do(r)
	}
	return c.Inner.Do(r)
}

// Count returns how many requests were sent so far.
func (c *CountingClient) Count() int64 { return c.n.Load() }

// Event returns the AWS sample event testdata/<name> of this package (the
// aws-lambda-go events fixtures, committed once for every test package).
func Event(name string) ([]byte, error) {
	_, file, _, _ := runtime.Caller(0)
	return os.ReadFile(filepath.Join(filepath.Dir(file), "testdata", name))
}

// With returns a copy of base with the pairs kv (key, value, key, value...)
// set: table-driven tests derive environments and header sets from one base.
func With(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Clock is a settable clock for code that takes a now func: safe for
// concurrent readers (the code under test) and a test that moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
