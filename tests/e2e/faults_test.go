package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// setFault POSTs f to the emulator's /test/faults.
func setFault(t testing.TB, f map[string]any) {
	t.Helper()
	b, _ := json.Marshal(f)
	if r := do(t, http.MethodPost, stk.WeChatURL+"/test/faults", string(b)); r.Status != http.StatusOK {
		t.Fatalf("POST /test/faults %s: %s", b, r)
	}
}

// clearFaults DELETEs the emulator's pending faults.
func clearFaults(t testing.TB) {
	t.Helper()
	if r := do(t, http.MethodDelete, stk.WeChatURL+"/test/faults", ""); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE /test/faults: %s", r)
	}
}

// neverIssuedCode looks like a WeChat code but was never handed out.
func neverIssuedCode() string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// TestLoginWeChatFaults maps every WeChat failure to docs/design.md §2's
// answer and checks that a failed login writes no session and no user (a
// code WeChat refused for good leaves its failure marker, so duplicates of
// it get the same answer without a second call).
func TestLoginWeChatFaults(t *testing.T) {
	needStack(t)
	// Enough for every attempt of the login function's WeChat client
	// (3 attempts); leftovers are cleared after each case.
	const n = 10
	tests := []struct {
		name       string
		fault      map[string]any // nil: none
		fakeCode   bool           // a code the emulator never issued (40029)
		status     int
		code       string
		retryAfter bool
		maxTime    time.Duration
	}{
		{name: "40029 unknown code", fakeCode: true, status: 401, code: "invalid_code"},
		{name: "40029 fault", fault: map[string]any{"errcode": 40029, "count": n}, status: 401, code: "invalid_code"},
		{name: "40163 code used", fault: map[string]any{"errcode": 40163, "count": n}, status: 401, code: "code_used"},
		{name: "45011 rate limited", fault: map[string]any{"errcode": 45011, "count": n}, status: 429, code: "rate_limited", retryAfter: true},
		{name: "40226 user blocked", fault: map[string]any{"errcode": 40226, "count": n}, status: 403, code: "user_blocked"},
		{name: "-1 system busy", fault: map[string]any{"errcode": -1, "count": n}, status: 503, code: "wechat_unavailable", retryAfter: true},
		{name: "HTTP 500", fault: map[string]any{"status": 500, "count": n}, status: 503, code: "wechat_unavailable", retryAfter: true},
		{name: "HTTP 502", fault: map[string]any{"status": 502, "count": n}, status: 503, code: "wechat_unavailable", retryAfter: true},
		{name: "garbage body", fault: map[string]any{"body": "<html>upstream error</html>", "count": n}, status: 503, code: "wechat_unavailable", retryAfter: true},
		{name: "empty body", fault: map[string]any{"body": "", "count": n}, status: 503, code: "wechat_unavailable", retryAfter: true},
		{name: "40125 bad secret", fault: map[string]any{"errcode": 40125, "count": n}, status: 500, code: "server_misconfigured"},
		{name: "40013 bad appid", fault: map[string]any{"errcode": 40013, "count": n}, status: 500, code: "server_misconfigured"},
		{name: "41002 appid missing", fault: map[string]any{"errcode": 41002, "count": n}, status: 500, code: "server_misconfigured"},
		{name: "timeout", fault: map[string]any{"delay_ms": 15000, "count": n}, status: 503, code: "wechat_unavailable", retryAfter: true, maxTime: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearFaults(t)
			t.Cleanup(func() { clearFaults(t) })
			is, err := newCode(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			code := is.Code
			switch {
			case tt.fakeCode:
				code = neverIssuedCode()
				secrets.add(code, "login code", -1)
			}
			sessions, users := countSessions(t), countItems(t, tblUsers)
			if tt.fault != nil {
				setFault(t, tt.fault)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			t0 := time.Now()
			r, err := send(ctx, http.MethodPost, stk.APIURL+"/login", `{"code":"`+code+`"}`, nil)
			took := time.Since(t0)
			if err != nil {
				t.Fatalf("POST /login after %v: %v", took, err)
			}
			if r.Status != tt.status || r.str("error") != tt.code || r.str("message") == "" {
				t.Errorf("got %s, want %d %s with a message", r, tt.status, tt.code)
			}
			if tt.maxTime > 0 {
				t.Logf("answered in %v", took.Round(time.Millisecond))
				if took > tt.maxTime {
					t.Errorf("answered after %v, want within %v", took, tt.maxTime)
				}
			}
			ra := r.Header.Get("Retry-After")
			if tt.retryAfter {
				if secs, err := strconv.Atoi(ra); err != nil || secs < 1 {
					t.Errorf("Retry-After = %q, want whole seconds >= 1", ra)
				}
			} else if ra != "" {
				t.Errorf("Retry-After = %q on a %d", ra, r.Status)
			}
			if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("failed login sets cookies %q", c)
			}
			if r.str("session_id") != "" || r.str("openid") != "" {
				t.Errorf("failed login body has session fields: %s", r)
			}
			if s, u := countSessions(t), countItems(t, tblUsers); s != sessions || u != users {
				t.Errorf("a failed login wrote: sessions %d→%d, users %d→%d", sessions, s, users, u)
			}
		})
	}
	// The login path is healthy again once the faults are gone.
	clearFaults(t)
	login(t, "")
}
