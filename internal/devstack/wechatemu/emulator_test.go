package wechatemu_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/testutil"
)

var (
	codeRE   = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	openIDRE = regexp.MustCompile(`^o[A-Za-z0-9_-]{27}$`)
	ridRE    = regexp.MustCompile(`, rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type env struct {
	emu   *wechatemu.Emulator
	srv   *httptest.Server
	clock *testutil.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	emu := wechatemu.New(wechatemu.Config{Now: c.Now, Logger: quiet()})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &env{emu: emu, srv: srv, clock: c}
}

// answer is a decoded jscode2session answer.
type answer struct {
	status      int
	contentType string
	raw         string
	Errcode     int    `json:"errcode"`
	Errmsg      string `json:"errmsg"`
	OpenID      string `json:"openid"`
	UnionID     string `json:"unionid"`
	SessionKey  string `json:"session_key"`
}

func (e *env) exchangeWith(t *testing.T, q url.Values) answer {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/sns/jscode2session?" + q.Encode())
	if err != nil {
		t.Errorf("GET jscode2session: %v", err) // not Fatal: also called from goroutines
		return answer{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(body)}
	_ = json.Unmarshal(body, &a)
	return a
}

func goodQuery(code string) url.Values {
	return url.Values{"appid": {wechatemu.DefaultAppID}, "secret": {wechatemu.DefaultSecret},
		"js_code": {code}, "grant_type": {"authorization_code"}}
}

func (e *env) exchange(t *testing.T, code string) answer {
	t.Helper()
	return e.exchangeWith(t, goodQuery(code))
}

func (e *env) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) issue(t *testing.T, openid, unionid string) string {
	t.Helper()
	code, err := e.emu.IssueCode(openid, unionid)
	if err != nil {
		t.Fatalf("IssueCode: %v", err)
	}
	return code
}

func TestExchangeSuccess(t *testing.T) {
	e := newEnv(t)
	code := e.issue(t, "oUser1", "uUnion1")
	if !codeRE.MatchString(code) {
		t.Fatalf("code %q does not look like WeChat's", code)
	}
	a := e.exchange(t, code)
	if a.status != 200 || a.contentType != "text/plain" {
		t.Fatalf("status %d content-type %q, want 200 text/plain", a.status, a.contentType)
	}
	if a.OpenID != "oUser1" || a.UnionID != "uUnion1" || a.Errcode != 0 {
		t.Fatalf("answer %+v", a)
	}
	if strings.Contains(a.raw, "errcode") {
		t.Fatalf("success carries errcode: %s", a.raw)
	}
	key, err := base64.StdEncoding.DecodeString(a.SessionKey)
	if err != nil || len(key) != 16 || len(a.SessionKey) != 24 {
		t.Fatalf("session_key %q is not 16 bytes of base64 (err %v)", a.SessionKey, err)
	}
	if got := e.emu.SessionKey("oUser1"); got != a.SessionKey {
		t.Fatalf("SessionKey = %q, answer had %q", got, a.SessionKey)
	}
}

func TestNoUnionIDFieldWhenUnset(t *testing.T) {
	e := newEnv(t)
	a := e.exchange(t, e.issue(t, "oNoUnion", ""))
	if a.OpenID != "oNoUnion" || strings.Contains(a.raw, "unionid") {
		t.Fatalf("answer %s", a.raw)
	}
}

func TestCodeSingleUse(t *testing.T) {
	e := newEnv(t)
	code := e.issue(t, "", "")
	if a := e.exchange(t, code); a.OpenID == "" {
		t.Fatalf("first exchange: %s", a.raw)
	}
	a := e.exchange(t, code)
	if a.Errcode != 40163 || !strings.HasPrefix(a.Errmsg, "code been used") || !ridRE.MatchString(a.Errmsg) {
		t.Fatalf("second exchange: %s", a.raw)
	}
	if a.status != 200 || a.contentType != "text/plain" {
		t.Fatalf("error answer status %d content-type %q", a.status, a.contentType)
	}
}

func TestCodeExpiry(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration
		errcode int
	}{
		{"just before 5 minutes", 5*time.Minute - time.Second, 0},
		{"at 5 minutes", 5 * time.Minute, 40029},
		{"long after", time.Hour, 40029},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			code := e.issue(t, "oExpiry", "")
			e.clock.Add(tt.after)
			a := e.exchange(t, code)
			if a.Errcode != tt.errcode {
				t.Fatalf("errcode %d, want %d (%s)", a.Errcode, tt.errcode, a.raw)
			}
			if tt.errcode == 0 && a.OpenID != "oExpiry" {
				t.Fatalf("answer %s", a.raw)
			}
		})
	}
}

func TestSessionKeyRotates(t *testing.T) {
	e := newEnv(t)
	if got := e.emu.SessionKey("oRot"); got != "" {
		t.Fatalf("SessionKey before any exchange = %q", got)
	}
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		a := e.exchange(t, e.issue(t, "oRot", ""))
		if a.SessionKey == "" || seen[a.SessionKey] {
			t.Fatalf("exchange %d: session_key %q empty or repeated", i, a.SessionKey)
		}
		seen[a.SessionKey] = true
		if got := e.emu.SessionKey("oRot"); got != a.SessionKey {
			t.Fatalf("SessionKey = %q, latest %q", got, a.SessionKey)
		}
	}
}

func TestParameterValidation(t *testing.T) {
	e := newEnv(t)
	code := e.issue(t, "oVal", "")
	tests := []struct {
		name    string
		edit    func(url.Values)
		errcode int
		msg     string
	}{
		{"missing appid", func(q url.Values) { q.Del("appid") }, 41002, "appid missing"},
		{"wrong appid", func(q url.Values) { q.Set("appid", "wx123") }, 40013, "invalid appid"},
		{"missing secret", func(q url.Values) { q.Del("secret") }, 41004, "appsecret missing"},
		{"wrong secret", func(q url.Values) { q.Set("secret", "nope") }, 40125, "invalid appsecret"},
		{"wrong grant_type", func(q url.Values) { q.Set("grant_type", "client_credential") }, 40002, "invalid grant_type"},
		{"missing js_code", func(q url.Values) { q.Del("js_code") }, 41008, "missing code"},
		{"unknown code", func(q url.Values) { q.Set("js_code", strings.Repeat("A", 32)) }, 40029, "invalid code"},
		{"missing appid wins over wrong secret", func(q url.Values) { q.Del("appid"); q.Set("secret", "x") }, 41002, "appid missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := goodQuery(code)
			tt.edit(q)
			a := e.exchangeWith(t, q)
			if a.status != 200 || a.contentType != "text/plain" {
				t.Fatalf("status %d content-type %q", a.status, a.contentType)
			}
			if a.Errcode != tt.errcode || !strings.HasPrefix(a.Errmsg, tt.msg+", rid: ") || !ridRE.MatchString(a.Errmsg) {
				t.Fatalf("answer %s, want errcode %d %q", a.raw, tt.errcode, tt.msg)
			}
			if a.OpenID != "" || a.SessionKey != "" {
				t.Fatalf("error answer leaks identity: %s", a.raw)
			}
		})
	}
	// None of the refused requests consumed the code; a missing grant_type is
	// accepted, as WeChat does.
	q := goodQuery(code)
	q.Del("grant_type")
	if a := e.exchangeWith(t, q); a.OpenID != "oVal" {
		t.Fatalf("valid exchange after refusals: %s", a.raw)
	}
}

func TestFaults(t *testing.T) {
	body := "<html>oops</html>"
	empty := ""
	tests := []struct {
		name        string
		fault       string
		status      int
		errcode     int
		rawContains string
	}{
		{"errcode 45011", `{"errcode":45011,"count":2}`, 200, 45011, "minute-quota"},
		{"errcode 40226", `{"errcode":40226,"count":2}`, 200, 40226, "rid: "},
		{"errcode -1", `{"errcode":-1,"count":2}`, 200, -1, "system error"},
		{"errcode with status", `{"errcode":-1,"status":503,"count":2}`, 503, -1, "system error"},
		{"status only", `{"status":502,"count":2}`, 502, 0, "502 Bad Gateway"},
		{"raw body", `{"body":"` + body + `","count":2}`, 200, 0, body},
		{"empty body", `{"body":"` + empty + `","count":2}`, 200, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			code := e.issue(t, "oFault", "")
			if st, b := e.post(t, "/test/faults", tt.fault); st != http.StatusOK || !strings.HasPrefix(b, `{"armed":{"api":"jscode2session",`) {
				t.Fatalf("POST /test/faults: %d %s", st, b)
			}
			for i := 0; i < 2; i++ {
				a := e.exchange(t, code)
				if a.status != tt.status || a.Errcode != tt.errcode || a.OpenID != "" || !strings.Contains(a.raw, tt.rawContains) {
					t.Fatalf("faulted exchange %d: status %d body %q", i, a.status, a.raw)
				}
				if a.contentType != "text/plain" {
					t.Fatalf("content-type %q", a.contentType)
				}
				if tt.name == "empty body" && a.raw != "" {
					t.Fatalf("empty body fault answered %q", a.raw)
				}
			}
			// Faults are consumed and did not consume the code.
			if a := e.exchange(t, code); a.OpenID != "oFault" {
				t.Fatalf("exchange after the faults: %d %s", a.status, a.raw)
			}
			st := e.emu.Stats()
			if st.Requests != 3 || st.Faulted != 2 || st.Succeeded != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestFaultValidationAndClear(t *testing.T) {
	e := newEnv(t)
	for _, bad := range []string{
		`{"errcode":45011}`, `{"errcode":45011,"count":0}`, `{"count":1}`, `{"status":99,"count":1}`,
		`{"delay_ms":-1,"count":1}`, `{"errcode":0,"count":1}`, `{"errcod":1,"count":1}`, `not json`, ``,
	} {
		if st, b := e.post(t, "/test/faults", bad); st != http.StatusBadRequest || !strings.Contains(b, `"error"`) {
			t.Errorf("POST /test/faults %q: %d %s, want 400", bad, st, b)
		}
	}
	if err := e.emu.SetFaults(wechatemu.Fault{Count: 0}); err == nil {
		t.Error("SetFaults with count 0: no error")
	}
	if st, b := e.post(t, "/test/faults", `{"errcode":40226,"count":5}`); st != http.StatusOK ||
		strings.TrimSpace(b) != `{"armed":{"api":"jscode2session","errcode":40226,"status":0,"delay_ms":0,"body":null,"count":5}}` {
		t.Fatalf("POST /test/faults answered %d %s, want what was armed", st, b)
	}
	req, _ := http.NewRequest(http.MethodDelete, e.srv.URL+"/test/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /test/faults: %v %v", resp, err)
	}
	resp.Body.Close()
	if a := e.exchange(t, e.issue(t, "oClear", "")); a.OpenID != "oClear" {
		t.Fatalf("exchange after clear: %s", a.raw)
	}
}

func TestDelayFault(t *testing.T) {
	e := newEnv(t)
	code := e.issue(t, "oSlow", "")
	if err := e.emu.SetFaults(wechatemu.DelayFault(10*time.Second, 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/sns/jscode2session?"+goodQuery(code).Encode(), nil)
	start := time.Now()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("delayed request answered before the caller's deadline")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("caller waited %v", d)
	}
	// The abandoned request consumed neither the code nor more than one fault.
	if a := e.exchange(t, code); a.OpenID != "oSlow" {
		t.Fatalf("exchange after abandoned delay: %s", a.raw)
	}
	// A short delay-only fault is a slow but real answer.
	if err := e.emu.SetFaults(wechatemu.DelayFault(30*time.Millisecond, 1)); err != nil {
		t.Fatal(err)
	}
	if a := e.exchange(t, e.issue(t, "oSlow", "")); a.OpenID != "oSlow" {
		t.Fatalf("slow exchange: %s", a.raw)
	}
	waitFor(t, func() bool { return e.emu.Stats().Abandoned == 1 })
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

func TestTestCodesEndpoint(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		body   string
		status int
		openid string // "" = random
	}{
		{"empty body", ``, 200, ""},
		{"empty object", `{}`, 200, ""},
		{"given openid", `{"openid":"oGiven","unionid":"uGiven"}`, 200, "oGiven"},
		{"bad openid", `{"openid":"has space"}`, 400, ""},
		{"unknown field", `{"open_id":"x"}`, 400, ""},
		{"not json", `[1]`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b := e.post(t, "/test/codes", tt.body)
			if st != tt.status {
				t.Fatalf("status %d body %s, want %d", st, b, tt.status)
			}
			if st != 200 {
				return
			}
			var out struct{ Code, OpenID, UnionID string }
			if err := json.Unmarshal([]byte(b), &out); err != nil {
				t.Fatal(err)
			}
			if !codeRE.MatchString(out.Code) {
				t.Fatalf("code %q", out.Code)
			}
			if tt.openid == "" && !openIDRE.MatchString(out.OpenID) || tt.openid != "" && out.OpenID != tt.openid {
				t.Fatalf("openid %q", out.OpenID)
			}
			if a := e.exchange(t, out.Code); a.OpenID != out.OpenID || a.UnionID != out.UnionID {
				t.Fatalf("exchange: %s, issued %+v", a.raw, out)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/nope", 404},
		{"GET", "/", 404},
		{"POST", "/sns/jscode2session", 405},
		{"GET", "/test/codes", 405},
		{"GET", "/test/stats", 200},
		{"GET", "/test/health", 200},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, e.srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !json.Valid(b) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q %s", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

func TestConcurrentExchanges(t *testing.T) {
	e := newEnv(t)
	const users, racers = 32, 6
	codes := make([]string, users)
	for i := range codes {
		codes[i] = e.issue(t, "", "")
	}
	var mu sync.Mutex
	wins := map[string]int{}
	used := 0
	var wg sync.WaitGroup
	for _, code := range codes {
		for r := 0; r < racers; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := e.exchange(t, code)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case a.OpenID != "":
					wins[code]++
				case a.Errcode == 40163:
					used++
				default:
					t.Errorf("unexpected answer %s", a.raw)
				}
			}()
		}
		wg.Add(1)
		go func() { // issue and fault concurrently too
			defer wg.Done()
			_, _ = e.emu.IssueCode("", "")
			_ = e.emu.Stats()
		}()
	}
	wg.Wait()
	for _, code := range codes {
		if wins[code] != 1 {
			t.Errorf("code won %d times, want exactly 1", wins[code])
		}
	}
	if used != users*(racers-1) {
		t.Errorf("%d answers 40163, want %d", used, users*(racers-1))
	}
	if st := e.emu.Stats(); st.Requests != users*racers || st.Succeeded != users || st.Errcodes[40163] != used {
		t.Errorf("stats %+v", st)
	}
}

func TestStatsEndpoint(t *testing.T) {
	e := newEnv(t)
	e.exchange(t, "unknown")
	resp, err := http.Get(e.srv.URL + "/test/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st wechatemu.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Requests != 1 || st.Errcodes[40029] != 1 {
		t.Fatalf("stats %+v", st)
	}
}
