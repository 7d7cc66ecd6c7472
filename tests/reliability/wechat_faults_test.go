package reliability_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/faultservers"
)

// Bounds on how long a failed login may take. The WeChat client makes at
// most 3 attempts of at most 2 s each with ≤300 ms of backoff, so a slow
// WeChat costs about 6.3 s; everything else fails in well under a second.
const (
	fastBound = 3 * time.Second
	slowBound = 8 * time.Second
)

// matrixRow is one line of a fault matrix and what was measured.
type matrixRow struct {
	fault      string
	status     int
	code       string // wxsession error code, or the gateway's message
	retryAfter string // "" = must be absent
	bound      time.Duration
}

func logMatrix(t *testing.T, title string, rows []matrixRow, measured []time.Duration) {
	t.Helper()
	var b strings.Builder
	b.WriteString("\n" + title + "\n| fault | status | error | Retry-After | bound | measured |\n|---|---|---|---|---|---|\n")
	for i, r := range rows {
		ra := "-"
		if r.retryAfter != "" {
			ra = r.retryAfter
		}
		m := "n/a"
		if i < len(measured) && measured[i] > 0 {
			m = measured[i].Round(time.Millisecond).String()
		}
		b.WriteString("| " + r.fault + " | " + http.StatusText(r.status) + " " + strconv.Itoa(r.status) + " | " + r.code + " | " + ra + " | " + r.bound.String() + " | " + m + " |\n")
	}
	t.Log(b.String())
}

// checkLoginFailure asserts one failed login: status, error code,
// Retry-After, latency, no cookie, and no write to either table.
func checkLoginFailure(t *testing.T, h *harness, row matrixRow, r reply, sessionsBefore, usersBefore int) {
	t.Helper()
	if r.Status != row.status || r.errorCode() != row.code {
		t.Errorf("got %s, want %d %s", r, row.status, row.code)
	}
	if got := r.Header.Get("Retry-After"); got != row.retryAfter {
		t.Errorf("Retry-After = %q, want %q", got, row.retryAfter)
	}
	if r.Dur > row.bound {
		t.Errorf("answered in %v, bound %v", r.Dur, row.bound)
	}
	if r.Dur >= functionTimeout {
		t.Errorf("answered in %v: not inside the function timeout", r.Dur)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("a failed login set a cookie: %d Set-Cookie headers", len(c))
	}
	if n := h.countSessions(); n != sessionsBefore {
		t.Errorf("sessions table: %d items, before %d: a failed login wrote a session", n, sessionsBefore)
	}
	if n := h.count("UsersTable"); n != usersBefore {
		t.Errorf("users table: %d items, before %d: a failed exchange wrote a user", n, usersBefore)
	}
}

// TestWeChatFaultMatrix sends one login per WeChat failure mode through the
// whole stack and checks the exact answer, the latency and that nothing was
// written.
func TestWeChatFaultMatrix(t *testing.T) {
	h := newHarness(t, stackOpts{})
	emu := h.s.Emulator
	t.Cleanup(emu.ClearFaults)
	// A user logged in before the faults: the tables are not empty.
	h.login(randomOpenID(t, "Pre"))

	type row struct {
		matrixRow
		fault wechatemu.Fault
	}
	const attempts = 3 // the WeChat client's attempts: retried faults must last that long
	rows := []row{
		{matrixRow{"errcode 40029 (invalid code)", 401, "invalid_code", "", fastBound}, wechatemu.ErrcodeFault(40029, 1)},
		{matrixRow{"errcode 40163 (code used)", 401, "code_used", "", fastBound}, wechatemu.ErrcodeFault(40163, 1)},
		{matrixRow{"errcode 45011 (minute quota)", 429, "rate_limited", "60", fastBound}, wechatemu.ErrcodeFault(45011, 1)},
		{matrixRow{"errcode 40226 (user blocked)", 403, "user_blocked", "", fastBound}, wechatemu.ErrcodeFault(40226, 1)},
		{matrixRow{"errcode 40013 (bad appid)", 500, "server_misconfigured", "", fastBound}, wechatemu.ErrcodeFault(40013, 1)},
		{matrixRow{"errcode 40125 (bad secret)", 500, "server_misconfigured", "", fastBound}, wechatemu.ErrcodeFault(40125, 1)},
		{matrixRow{"errcode 41002 (appid missing)", 500, "server_misconfigured", "", fastBound}, wechatemu.ErrcodeFault(41002, 1)},
		{matrixRow{"errcode -1 (system busy) x3", 503, "wechat_unavailable", "2", fastBound}, wechatemu.ErrcodeFault(-1, attempts)},
		{matrixRow{"errcode 99999 (unknown)", 503, "wechat_unavailable", "2", fastBound}, wechatemu.ErrcodeFault(99999, 1)},
		{matrixRow{"HTTP 500 x3", 503, "wechat_unavailable", "2", fastBound}, wechatemu.StatusFault(500, attempts)},
		{matrixRow{"HTTP 502 x3", 503, "wechat_unavailable", "2", fastBound}, wechatemu.StatusFault(502, attempts)},
		{matrixRow{"HTTP 429", 429, "rate_limited", "60", fastBound}, wechatemu.StatusFault(429, 1)},
		{matrixRow{"empty body x3", 503, "wechat_unavailable", "2", fastBound}, wechatemu.BodyFault("", attempts)},
		{matrixRow{"garbage body x3", 503, "wechat_unavailable", "2", fastBound}, wechatemu.BodyFault("<html>\x00\xff garbage", attempts)},
		{matrixRow{"truncated JSON x3", 503, "wechat_unavailable", "2", fastBound}, wechatemu.BodyFault(`{"openid":"oAbc","session_key":"`, attempts)},
		{matrixRow{"JSON without openid x3", 503, "wechat_unavailable", "2", fastBound}, wechatemu.BodyFault(`{"session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`, attempts)},
		{matrixRow{"slow: 2.5 s > 2 s attempt timeout, x3", 503, "wechat_unavailable", "2", slowBound}, wechatemu.DelayFault(2500*time.Millisecond, attempts)},
	}
	measured := make([]time.Duration, len(rows))
	for i, tc := range rows {
		t.Run(tc.matrixRow.fault, func(t *testing.T) {
			h := h.at(t)
			emu.ClearFaults()
			defer emu.ClearFaults()
			code := h.code(randomOpenID(t, "Wx"))
			sessions, users := h.countSessions(), h.count("UsersTable")
			if err := emu.SetFaults(tc.fault); err != nil {
				t.Fatal(err)
			}
			_, r, err := h.tryLogin(code)
			if err != nil {
				t.Fatal(err)
			}
			measured[i] = r.Dur
			checkLoginFailure(t, h, tc.matrixRow, r, sessions, users)
		})
	}

	// Transient faults cost a retry, not the login: one -1 and one slow
	// answer under the attempt timeout both end in a session.
	for _, f := range []wechatemu.Fault{wechatemu.ErrcodeFault(-1, 1), wechatemu.DelayFault(time.Second, 1)} {
		emu.ClearFaults()
		if err := emu.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		lb := h.login(randomOpenID(t, "Tr"))
		if r := h.get("/me", bearer(lb.SessionID)); r.Status != http.StatusOK {
			t.Errorf("session after a transient WeChat fault: GET /me %s", r)
		}
	}
	emu.ClearFaults()

	var mr []matrixRow
	for _, r := range rows {
		mr = append(mr, r.matrixRow)
	}
	logMatrix(t, "WeChat fault matrix (emulator faults)", mr, measured)
}

// TestWeChatNetworkFaults points the login function's WECHAT_API_BASE at a
// closed port and at a listener that resets every connection.
func TestWeChatNetworkFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack")
	}
	closed, err := faultservers.ClosedURL()
	if err != nil {
		t.Fatal(err)
	}
	rst, err := faultservers.NewResetListener()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rst.Close() })

	rows := []matrixRow{
		{"connection refused (closed port)", 503, "wechat_unavailable", "2", fastBound},
		{"TCP reset after the request (SO_LINGER 0)", 503, "wechat_unavailable", "2", fastBound},
	}
	bases := []string{closed, rst.URL()}
	measured := make([]time.Duration, len(rows))
	for i, row := range rows {
		t.Run(row.fault, func(t *testing.T) {
			h := newHarness(t, stackOpts{env: map[string]map[string]string{
				loginFn: {config.VarAPIBase: bases[i]},
			}})
			// The function cannot reach the emulator: seed a session by hand.
			h.putSession(randomOpenID(t, "Seed"), time.Now().Add(time.Hour))
			sessions, users := h.countSessions(), h.count("UsersTable")
			before := rst.Accepted()
			_, r, err := h.tryLogin(h.code(randomOpenID(t, "Net")))
			if err != nil {
				t.Fatal(err)
			}
			measured[i] = r.Dur
			checkLoginFailure(t, h, row, r, sessions, users)
			if i == 1 {
				if n := rst.Accepted() - before; n != 3 {
					t.Errorf("reset listener saw %d connections, want 3 (the client's attempts)", n)
				}
			}
		})
	}
	logMatrix(t, "WeChat network faults (WECHAT_API_BASE override)", rows, measured)
}
