package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/session"
)

// harness is a client wired to a real emulator over HTTP. At cleanup it
// checks that neither the log output nor any error returned holds the secret,
// a code or a session_key.
type harness struct {
	t      *testing.T
	emu    *wechatemu.Emulator
	srv    *httptest.Server
	logs   *testutil.Buffer
	mu     sync.Mutex
	secret string
	leaks  []string // strings that must never appear: codes, session_keys
	errs   []string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, logs: &testutil.Buffer{}, secret: wechatemu.DefaultSecret}
	h.emu = wechatemu.New(wechatemu.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.srv = httptest.NewServer(h.emu)
	t.Cleanup(h.srv.Close)
	t.Cleanup(h.checkLeaks)
	return h
}

func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// client builds a client on the emulator; edit adjusts the config.
func (h *harness) client(edit func(*wechat.Config)) *wechat.Client {
	h.t.Helper()
	cfg := wechat.Config{
		AppID:          wechatemu.DefaultAppID,
		Secret:         wechatemu.DefaultSecret,
		BaseURLs:       []string{h.srv.URL},
		AttemptTimeout: time.Second,
		Logger:         h.logger(),
	}
	if edit != nil {
		edit(&cfg)
	}
	if cfg.Secret != h.secret {
		h.mu.Lock()
		h.leaks = append(h.leaks, cfg.Secret)
		h.mu.Unlock()
	}
	c, err := wechat.New(cfg)
	if err != nil {
		h.t.Fatalf("wechat.New: %v", err)
	}
	return c
}

func (h *harness) issue(openid, unionid string) string {
	h.t.Helper()
	code, err := h.emu.IssueCode(openid, unionid)
	if err != nil {
		h.t.Fatalf("IssueCode: %v", err)
	}
	h.mustNotLeak(code)
	return code
}

func (h *harness) mustNotLeak(s string) {
	h.mu.Lock()
	h.leaks = append(h.leaks, s)
	h.mu.Unlock()
}

func (h *harness) fault(f wechatemu.Fault) {
	h.t.Helper()
	if err := h.emu.SetFaults(f); err != nil {
		h.t.Fatalf("SetFaults: %v", err)
	}
}

// exchange runs Exchange and records what must be checked for leaks.
func (h *harness) exchange(ctx context.Context, c *wechat.Client, code string) (session.Identity, error) {
	h.mustNotLeak(code)
	id, err := c.Exchange(ctx, code)
	if id.SessionKey != "" {
		h.mustNotLeak(id.SessionKey)
	}
	if err != nil {
		h.mu.Lock()
		h.errs = append(h.errs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		h.mu.Unlock()
	}
	return id, err
}

func (h *harness) checkLeaks() {
	h.mu.Lock()
	defer h.mu.Unlock()
	texts := append([]string{h.logs.String()}, h.errs...)
	secrets := append([]string{h.secret, url.QueryEscape(h.secret)}, h.leaks...)
	for _, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				h.t.Errorf("secret, code or session_key %q leaked into %q", s, text)
			}
		}
	}
}

var sentinels = []error{wechat.ErrInvalidCode, wechat.ErrCodeUsed, wechat.ErrRateLimited,
	wechat.ErrUserBlocked, wechat.ErrUnavailable, wechat.ErrMisconfigured}

// checkSentinel asserts err matches want and no other sentinel.
func checkSentinel(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Errorf("errors.Is(%q, %v) = %v", err, s, got)
		}
	}
}

func TestExchangeSuccess(t *testing.T) {
	tests := []struct{ name, openid, unionid string }{
		{"with unionid", "oSuccess1", "uUnion1"},
		{"without unionid", "oSuccess2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			c := h.client(nil)
			id, err := h.exchange(context.Background(), c, h.issue(tt.openid, tt.unionid))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if id.OpenID != tt.openid || id.UnionID != tt.unionid || id.SessionKey == "" {
				t.Fatalf("identity %+v", id)
			}
			if id.SessionKey != h.emu.SessionKey(tt.openid) {
				t.Fatal("session_key differs from the emulator's")
			}
			if n := h.emu.Stats().Requests; n != 1 {
				t.Fatalf("WeChat called %d times, want 1", n)
			}
			if c.AppID() != wechatemu.DefaultAppID {
				t.Fatalf("AppID() = %q", c.AppID())
			}
		})
	}
}

func TestExchangeErrors(t *testing.T) {
	tests := []struct {
		name     string
		config   func(*wechat.Config)
		setup    func(h *harness, c *wechat.Client) string // returns the code to exchange
		want     error
		errcode  int // expected *APIError code, 0 = not an APIError
		requests int // expected calls to WeChat, including setup's
	}{
		{"40029 unknown code", nil, func(h *harness, _ *wechat.Client) string { return "neverIssuedCode0000000000000000" },
			wechat.ErrInvalidCode, 40029, 1},
		{"40163 code used", nil, func(h *harness, c *wechat.Client) string {
			code := h.issue("oUsed", "")
			if _, err := h.exchange(context.Background(), c, code); err != nil {
				h.t.Fatalf("first exchange: %v", err)
			}
			return code
		}, wechat.ErrCodeUsed, 40163, 2},
		{"45011 rate limited", nil, faultThenCode(wechatemu.ErrcodeFault(45011, 5)), wechat.ErrRateLimited, 45011, 1},
		{"40226 user blocked", nil, faultThenCode(wechatemu.ErrcodeFault(40226, 5)), wechat.ErrUserBlocked, 40226, 1},
		{"-1 system error, retried", nil, faultThenCode(wechatemu.ErrcodeFault(-1, 5)), wechat.ErrUnavailable, -1, 3},
		{"40013 wrong appid", func(c *wechat.Config) { c.AppID = "wxWrongAppID" }, faultThenCode(wechatemu.Fault{}),
			wechat.ErrMisconfigured, 40013, 1},
		{"40125 wrong secret", func(c *wechat.Config) { c.Secret = "wrong-secret-value-1234" }, faultThenCode(wechatemu.Fault{}),
			wechat.ErrMisconfigured, 40125, 1},
		{"41002 appid missing", nil, faultThenCode(wechatemu.ErrcodeFault(41002, 5)), wechat.ErrMisconfigured, 41002, 1},
		{"41004 secret missing", nil, faultThenCode(wechatemu.ErrcodeFault(41004, 5)), wechat.ErrMisconfigured, 41004, 1},
		{"unknown errcode, not retried", nil, faultThenCode(wechatemu.ErrcodeFault(48001, 5)), wechat.ErrUnavailable, 48001, 1},
		{"HTTP 502, retried", nil, faultThenCode(wechatemu.StatusFault(502, 5)), wechat.ErrUnavailable, 0, 3},
		{"HTTP 503 with errcode -1", nil, faultThenCode(wechatemu.Fault{Errcode: ptr(-1), Status: 503, Count: 5}), wechat.ErrUnavailable, 0, 3},
		{"HTTP 404, not retried", nil, faultThenCode(wechatemu.StatusFault(404, 5)), wechat.ErrUnavailable, 0, 1},
		{"HTTP 429", nil, faultThenCode(wechatemu.StatusFault(429, 5)), wechat.ErrRateLimited, 0, 1},
		{"garbage body", nil, faultThenCode(wechatemu.BodyFault("<html>oops</html>", 5)), wechat.ErrUnavailable, 0, 3},
		{"empty body", nil, faultThenCode(wechatemu.BodyFault("", 5)), wechat.ErrUnavailable, 0, 3},
		{"JSON without openid", nil, faultThenCode(wechatemu.BodyFault(`{"session_key":"abc"}`, 5)), wechat.ErrUnavailable, 0, 3},
		{"empty code, no call", nil, func(*harness, *wechat.Client) string { return "" }, wechat.ErrInvalidCode, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			c := h.client(tt.config)
			code := tt.setup(h, c)
			id, err := h.exchange(context.Background(), c, code)
			checkSentinel(t, err, tt.want)
			if id != (session.Identity{}) {
				t.Errorf("identity %+v returned with an error", id)
			}
			var apiErr *wechat.APIError
			if got := errors.As(err, &apiErr); got != (tt.errcode != 0) || got && apiErr.Code != tt.errcode {
				t.Errorf("APIError: %v %+v, want errcode %d", got, apiErr, tt.errcode)
			}
			if n := h.emu.Stats().Requests; n != tt.requests {
				t.Errorf("WeChat called %d times, want %d", n, tt.requests)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// faultThenCode sets f (unless zero) and issues a fresh code.
func faultThenCode(f wechatemu.Fault) func(*harness, *wechat.Client) string {
	return func(h *harness, _ *wechat.Client) string {
		if f.Count > 0 {
			h.fault(f)
		}
		return h.issue("", "")
	}
}

func TestRetryThenSuccess(t *testing.T) {
	tests := []struct {
		name  string
		fault wechatemu.Fault
	}{
		{"HTTP 500 once", wechatemu.StatusFault(500, 1)},
		{"HTTP 502 twice", wechatemu.StatusFault(502, 2)},
		{"errcode -1 once", wechatemu.ErrcodeFault(-1, 1)},
		{"garbage body once", wechatemu.BodyFault("not json", 1)},
		{"empty body twice", wechatemu.BodyFault("", 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			c := h.client(nil)
			code := h.issue("oRetry", "")
			h.fault(tt.fault)
			id, err := h.exchange(context.Background(), c, code)
			if err != nil || id.OpenID != "oRetry" {
				t.Fatalf("Exchange: %+v, %v", id, err)
			}
			if n := h.emu.Stats().Requests; n != tt.fault.Count+1 {
				t.Fatalf("WeChat called %d times, want %d", n, tt.fault.Count+1)
			}
			if got := strings.Count(h.logs.String(), "attempt failed"); got != tt.fault.Count {
				t.Fatalf("%d failed-attempt log lines, want %d:\n%s", got, tt.fault.Count, h.logs.String())
			}
		})
	}
}

func TestSlowAnswerIsBounded(t *testing.T) {
	h := newHarness(t)
	c := h.client(func(c *wechat.Config) { c.AttemptTimeout = 150 * time.Millisecond })
	h.fault(wechatemu.DelayFault(10*time.Second, 5))
	start := time.Now()
	_, err := h.exchange(context.Background(), c, h.issue("", ""))
	elapsed := time.Since(start)
	checkSentinel(t, err, wechat.ErrUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not match context.DeadlineExceeded", err)
	}
	// 3 attempts × 150 ms + at most 300 ms of backoff. The bound only
	// tells "bounded by AttemptTimeout" from "waited for the 10 s answer",
	// so a slow machine (-race, other builds) cannot fail it.
	if elapsed > 5*time.Second {
		t.Fatalf("Exchange took %v: the 10 s answer was waited for", elapsed)
	}
	waitFor(t, func() bool { return h.emu.Stats().Abandoned == 3 })
}

func TestContextDeadline(t *testing.T) {
	h := newHarness(t)
	c := h.client(func(c *wechat.Config) { c.AttemptTimeout = 5 * time.Second })
	h.fault(wechatemu.DelayFault(10*time.Second, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.exchange(ctx, c, h.issue("", ""))
	// Tells "stopped by the 200 ms deadline" from "waited for the 10 s
	// answer" (5 s attempt timeout), whatever the machine's speed.
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Fatalf("Exchange took %v past a 200ms deadline", elapsed)
	}
	checkSentinel(t, err, wechat.ErrUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not match context.DeadlineExceeded", err)
	}
	if n := h.emu.Stats().Requests; n != 1 {
		t.Errorf("WeChat called %d times, want 1", n)
	}

	// An already cancelled context calls nobody.
	done, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	_, err = h.exchange(done, c, h.issue("", ""))
	checkSentinel(t, err, wechat.ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %q does not match context.Canceled", err)
	}
	if n := h.emu.Stats().Requests; n != 1 {
		t.Errorf("WeChat called %d times after a cancelled Exchange, want 1", n)
	}
}

// deadURL returns the URL of a port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestFailoverFromRefusedPrimary(t *testing.T) {
	h := newHarness(t)
	dead := deadURL(t)
	c := h.client(func(c *wechat.Config) { c.BaseURLs = []string{dead, h.srv.URL + "/"} })
	id, err := h.exchange(context.Background(), c, h.issue("oFailover", ""))
	if err != nil || id.OpenID != "oFailover" {
		t.Fatalf("Exchange: %+v, %v", id, err)
	}
	if n := h.emu.Stats().Requests; n != 1 {
		t.Fatalf("second base called %d times, want 1", n)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"base":"`+strings.TrimPrefix(dead, "http://")+`"`) || !strings.Contains(logs, `"attempt":1`) {
		t.Fatalf("no WARN line for the refused primary:\n%s", logs)
	}
}

// countingServer answers every request with answer(n), n counting from 1.
func countingServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, int(hits.Add(1)))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFailoverSchedule(t *testing.T) {
	fail := func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusBadGateway) }
	tests := []struct {
		name     string
		bases    int
		attempts int
		want     []int32 // hits per base
	}{
		{"one base", 1, 3, []int32{3}},
		{"two bases: api, api2, api2", 2, 3, []int32{1, 2}},
		{"three bases", 3, 3, []int32{1, 1, 1}},
		{"more bases than attempts", 3, 2, []int32{1, 1, 0}},
		{"five attempts on two bases", 2, 5, []int32{1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var urls []string
			var hits []*atomic.Int32
			for i := 0; i < tt.bases; i++ {
				srv, n := countingServer(t, fail)
				urls, hits = append(urls, srv.URL), append(hits, n)
			}
			c := h.client(func(c *wechat.Config) { c.BaseURLs = urls; c.MaxAttempts = tt.attempts })
			_, err := h.exchange(context.Background(), c, "someCode")
			checkSentinel(t, err, wechat.ErrUnavailable)
			for i, n := range hits {
				if n.Load() != tt.want[i] {
					t.Errorf("base %d hit %d times, want %d", i, n.Load(), tt.want[i])
				}
			}
		})
	}
}

// TestCodeUsedAfterLostAnswer: when an attempt reached WeChat but its answer
// was lost, a 40163 on the retry is our own doing and reported as
// unavailable; when the earlier attempt never reached WeChat, it is a real
// 40163.
func TestCodeUsedAfterLostAnswer(t *testing.T) {
	used := `{"errcode":40163,"errmsg":"code been used, rid: 1"}`
	tests := []struct {
		name  string
		first func(w http.ResponseWriter)
		dead  bool // the first base refuses connections instead
		want  error
	}{
		{"connection dropped after the request", func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, false, wechat.ErrUnavailable},
		{"HTTP 502", func(w http.ResponseWriter) { w.WriteHeader(502) }, false, wechat.ErrUnavailable},
		{"errcode -1", func(w http.ResponseWriter) { io.WriteString(w, `{"errcode":-1,"errmsg":"system error"}`) }, false, wechat.ErrUnavailable},
		{"connection refused", nil, true, wechat.ErrCodeUsed},
		{"first attempt", func(w http.ResponseWriter) { io.WriteString(w, used) }, false, wechat.ErrCodeUsed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			srv, _ := countingServer(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				w.Header().Set("Content-Type", "text/plain")
				if n == 1 && tt.first != nil {
					tt.first(w)
					return
				}
				io.WriteString(w, used)
			})
			bases := []string{srv.URL}
			if tt.dead {
				bases = []string{deadURL(t), srv.URL}
			}
			c := h.client(func(c *wechat.Config) { c.BaseURLs = bases })
			_, err := h.exchange(context.Background(), c, "codeXYZ")
			checkSentinel(t, err, tt.want)
		})
	}
}

// TestNothingLeaks drives answers that echo the secret and the code back and
// a transport error (whose *url.Error quotes the full request URL).
func TestNothingLeaks(t *testing.T) {
	const secret = "s3cr3t+/value=with&chars"
	const code = "leakyCode_123"
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		want   error
	}{
		{"errmsg echoes secret and code", func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			fmt.Fprintf(w, `{"errcode":40125,"errmsg":"invalid appsecret %s for %s, rid: 1"}`, q.Get("secret"), q.Get("js_code"))
		}, wechat.ErrMisconfigured},
		{"errmsg echoes the raw query", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"errcode":99999,"errmsg":%q}`, r.URL.RawQuery)
		}, wechat.ErrUnavailable},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, wechat.ErrUnavailable},
		{"body with session_key but no openid", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"session_key":"SESSIONKEYSHOULDNOTLEAK=="}`)
		}, wechat.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustNotLeak("SESSIONKEYSHOULDNOTLEAK")
			srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) { tt.answer(w, r) })
			c := h.client(func(c *wechat.Config) { c.Secret = secret; c.BaseURLs = []string{srv.URL, deadURL(t)} })
			h.mustNotLeak(url.QueryEscape(secret))
			h.mustNotLeak(secret)
			_, err := h.exchange(context.Background(), c, code)
			checkSentinel(t, err, tt.want)
			if !strings.Contains(h.logs.String(), "attempt failed") {
				t.Fatalf("no failed-attempt log:\n%s", h.logs.String())
			}
		})
	}
}

// TestRedactBeforeCut: WeChat's errmsg is cut to 256 bytes for the logs
// and errors; a secret or code straddling the cut must not leave its first
// part behind (it is removed before the cut).
func TestRedactBeforeCut(t *testing.T) {
	const secret = "Straddl3dSecretValue0123"
	const code = "straddledLoginCode_42"
	tests := []struct {
		name  string
		echo  func(q url.Values) string // what straddles byte 256
		wants []string                  // prefixes that must not appear
	}{
		{"secret", func(q url.Values) string { return q.Get("secret") }, []string{secret[:8]}},
		{"code", func(q url.Values) string { return q.Get("js_code") }, []string{code[:8]}},
	}
	for _, tt := range tests {
		for _, pad := range []int{240, 248, 252, 255} {
			t.Run(fmt.Sprintf("%s/pad%d", tt.name, pad), func(t *testing.T) {
				h := newHarness(t)
				srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
					fmt.Fprintf(w, `{"errcode":40125,"errmsg":"%s%s tail"}`, strings.Repeat("x", pad), tt.echo(r.URL.Query()))
				})
				c := h.client(func(c *wechat.Config) { c.Secret = secret; c.BaseURLs = []string{srv.URL} })
				h.secret = secret
				for _, w := range tt.wants {
					h.mustNotLeak(w)
				}
				_, err := h.exchange(context.Background(), c, code)
				checkSentinel(t, err, wechat.ErrMisconfigured)
				if !strings.Contains(err.Error(), "xxxx") {
					t.Fatalf("error %q does not carry the errmsg", err)
				}
			})
		}
	}
}

func TestLargeBody(t *testing.T) {
	h := newHarness(t)
	srv, hits := countingServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		fmt.Fprintf(w, `{"openid":"oBig","session_key":"k","pad":"%s"}`, strings.Repeat("x", 100<<10))
	})
	c := h.client(func(c *wechat.Config) { c.BaseURLs = []string{srv.URL} })
	_, err := h.exchange(context.Background(), c, "bigBodyCode42")
	checkSentinel(t, err, wechat.ErrUnavailable)
	if hits.Load() != 3 {
		t.Fatalf("%d attempts, want 3", hits.Load())
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	h := newHarness(t)
	target, targetHits := countingServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		io.WriteString(w, `{"openid":"oRedirected","session_key":"k"}`)
	})
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, target.URL+"/sns/jscode2session?"+r.URL.RawQuery, http.StatusFound)
	})
	c := h.client(func(c *wechat.Config) { c.BaseURLs = []string{srv.URL} })
	_, err := h.exchange(context.Background(), c, "redirectCode42")
	checkSentinel(t, err, wechat.ErrUnavailable)
	if targetHits.Load() != 0 {
		t.Fatal("redirect followed: the secret went to another host")
	}
}

func TestNewValidation(t *testing.T) {
	ok := wechat.Config{AppID: "wx1", Secret: "s"}
	tests := []struct {
		name    string
		edit    func(*wechat.Config)
		wantErr bool
	}{
		{"defaults", func(*wechat.Config) {}, false},
		{"no appid", func(c *wechat.Config) { c.AppID = "" }, true},
		{"no secret", func(c *wechat.Config) { c.Secret = "" }, true},
		{"relative base", func(c *wechat.Config) { c.BaseURLs = []string{"api.weixin.qq.com"} }, true},
		{"ftp base", func(c *wechat.Config) { c.BaseURLs = []string{"ftp://api.weixin.qq.com"} }, true},
		{"base with query", func(c *wechat.Config) { c.BaseURLs = []string{"https://a.example/?x=1"} }, true},
		{"one bad base of two", func(c *wechat.Config) { c.BaseURLs = []string{"https://a.example", "::"} }, true},
		{"http base with path", func(c *wechat.Config) { c.BaseURLs = []string{"http://127.0.0.1:3001/prefix/"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			c, err := wechat.New(cfg)
			if (err != nil) != tt.wantErr || (err == nil) == (c == nil) {
				t.Fatalf("New: %v, %v (wantErr %v)", c, err, tt.wantErr)
			}
			if err != nil && cfg.Secret != "" && strings.Contains(err.Error(), "secret=") {
				t.Fatalf("error mentions the secret: %v", err)
			}
		})
	}
}

func TestConcurrentExchanges(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil)
	const n = 16
	codes := make([]string, n)
	for i := range codes {
		codes[i] = h.issue(fmt.Sprintf("oConc%02d", i), "")
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, code := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := h.exchange(context.Background(), c, code)
			if err == nil && id.OpenID != fmt.Sprintf("oConc%02d", i) {
				err = fmt.Errorf("code %d gave %s", i, id)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
