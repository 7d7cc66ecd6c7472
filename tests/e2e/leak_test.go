package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/session"
)

// exchange is one recorded request/response of httpc.
type exchange struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
}

// recorder is an http.RoundTripper that reads every response fully, keeps a
// copy, and notes the secrets it hands out: session ids (from POST /login),
// the user's session_key right after each login, and login codes (from the
// emulator's POST /test/codes).
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	ex   []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := readAll(resp)
	if err != nil {
		return nil, err
	}
	e := exchange{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body}
	r.mu.Lock()
	idx := len(r.ex)
	r.ex = append(r.ex, e)
	r.mu.Unlock()
	r.note(idx, req.URL, e)
	return resp, nil
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	resp.Body = readCloser{bytes.NewReader(buf.Bytes())}
	return buf.Bytes(), nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func (r *recorder) note(idx int, u *url.URL, e exchange) {
	if stk == nil || e.Status != http.StatusOK {
		return
	}
	var body struct {
		SessionID string `json:"session_id"`
		OpenID    string `json:"openid"`
		Code      string `json:"code"`
	}
	_ = json.Unmarshal(e.Body, &body)
	base := u.Scheme + "://" + u.Host
	switch {
	case base == stk.APIURL && u.Path == "/login":
		secrets.add(body.SessionID, "session id", idx)
		if body.OpenID != "" {
			secrets.add(stk.Emulator.SessionKey(body.OpenID), "session_key", -1)
		}
	case base == stk.WeChatURL && u.Path == "/test/codes":
		secrets.add(body.Code, "login code", -1)
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ex)
}

func (r *recorder) all() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.ex...)
}

// secret is a value that must not appear in logs or responses.
type secret struct {
	value, kind string
	// own is the index of the exchange allowed to carry it (its login
	// response), -1 for none.
	own int
	// logsOnly: allowed in API responses (a phone number, decrypted data
	// returned to their owner), never in a log.
	logsOnly bool
	// alsoOwn are further exchanges allowed to carry it: logins with a
	// duplicate of the code, which answer the same session (docs/design.md §3).
	alsoOwn []int
}

// ownedBy reports whether exchange idx may carry s.
func (s secret) ownedBy(idx int) bool {
	return idx >= 0 && (s.own == idx || slices.Contains(s.alsoOwn, idx))
}

// secretSet collects secrets; safe for concurrent use.
type secretSet struct {
	mu   sync.Mutex
	list []secret
	seen map[string]bool
}

func (s *secretSet) add(value, kind string, own int) {
	if len(value) < 8 { // "" (no session_key yet) or nonsense: nothing to look for
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if s.seen[value] {
		if own >= 0 {
			for i := range s.list {
				if s.list[i].value == value {
					s.list[i].alsoOwn = append(s.list[i].alsoOwn, own)
				}
			}
		}
		return
	}
	s.seen[value] = true
	s.list = append(s.list, secret{value: value, kind: kind, own: own})
}

// addLogsOnly adds a value that API responses may carry but logs never.
func (s *secretSet) addLogsOnly(value, kind string) {
	s.add(value, kind, -1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.list {
		if s.list[i].value == value {
			s.list[i].logsOnly = true
		}
	}
}

func (s *secretSet) snapshot() []secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]secret(nil), s.list...)
}

// checkLogsAndLeaks runs after all tests. It returns one message per
// problem, with secrets redacted.
func checkLogsAndLeaks() []string {
	list := secrets.snapshot()
	list = append(list, secret{value: wechatemu.DefaultSecret, kind: "app secret", own: -1})
	for _, tok := range stk.Emulator.Tokens() {
		list = append(list, secret{value: tok, kind: "access_token", own: -1})
	}
	counts := map[string]int{}
	for _, s := range list {
		counts[s.kind]++
	}
	fmt.Printf("e2e: leak check looks for %v\n", counts)

	f := newLeakFinder(list)
	var problems []string
	// Session ids this process never saw (the node client's) are caught by
	// their shape; hashes of known ids are not secret.
	hashes := map[string]bool{}
	for _, s := range list {
		if strings.Contains(s.kind, "session id") {
			hashes[session.Hash(s.value)] = true
		}
	}
	for _, l := range []struct {
		name string
		text string
	}{{"function log", fnLog.String()}, {"access log", accessLog.String()}, {"stack log", stackLog.String()}, {"wxadmin output", adminLog.String()}} {
		problems = append(problems, f.lines(l.name, l.text)...)
		problems = append(problems, idShapedTokens(l.name, l.text, hashes)...)
	}
	for i, e := range rec.all() {
		if !strings.HasPrefix(e.URL, stk.APIURL) {
			continue // the emulator's test endpoints hand out codes by design
		}
		problems = append(problems, f.exchange(i, e)...)
	}
	problems = append(problems, checkFunctionLogLines(fnLog.String())...)
	return problems
}

// leakFinder finds secrets in text and redacts them in its reports.
type leakFinder struct {
	list     []secret
	redactor *strings.Replacer
}

func newLeakFinder(list []secret) *leakFinder {
	// Also look for the URL-encoded form (a session_key has + / =).
	for _, s := range list {
		if esc := url.QueryEscape(s.value); esc != s.value {
			list = append(list, secret{value: esc, kind: s.kind + " (URL-encoded)", own: s.own, alsoOwn: s.alsoOwn, logsOnly: s.logsOnly})
		}
	}
	pairs := make([]string, 0, 2*len(list))
	for _, s := range list {
		pairs = append(pairs, s.value, "<"+s.kind+" REDACTED>")
	}
	return &leakFinder{list: list, redactor: strings.NewReplacer(pairs...)}
}

// check reports the secrets in line, except those owned by exchange
// allowed (-1: none), as "where leaks kinds: redacted line".
func (f *leakFinder) check(where, line string, allowed int) (string, bool) {
	red := f.redactor.Replace(line)
	if red == line {
		return "", false
	}
	var kinds []string
	for _, s := range f.list {
		if s.logsOnly && allowed >= 0 {
			continue
		}
		if !s.ownedBy(allowed) && strings.Contains(line, s.value) {
			kinds = append(kinds, s.kind)
		}
	}
	if len(kinds) == 0 { // only the exchange's own session id
		return "", false
	}
	sort.Strings(kinds)
	if len(red) > 400 {
		red = red[:400] + "..."
	}
	return fmt.Sprintf("%s leaks %s: %s", where, strings.Join(kinds, ", "), red), true
}

// lines checks every line of text.
func (f *leakFinder) lines(where, text string) []string {
	var problems []string
	for i, line := range strings.Split(text, "\n") {
		if p, ok := f.check(fmt.Sprintf("%s line %d", where, i+1), line, -1); ok {
			problems = append(problems, p)
		}
	}
	return problems
}

// exchange checks the response headers and body of recorded exchange i.
func (f *leakFinder) exchange(i int, e exchange) []string {
	var problems []string
	where := fmt.Sprintf("response to %s %s (%d)", e.Method, pathOf(e.URL), e.Status)
	for name, vs := range e.Header {
		for _, v := range vs {
			if p, ok := f.check(where+" header", name+": "+v, i); ok {
				problems = append(problems, p)
			}
		}
	}
	if p, ok := f.check(where+" body", string(e.Body), i); ok {
		problems = append(problems, p)
	}
	return problems
}

// idShaped matches a standalone 43-character base64url token: the shape of
// a session id (and of its SHA-256 hash).
var idShaped = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])([A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)`)

// idShapedTokens reports lines of text holding a session-id-shaped token
// other than the given hashes, redacted.
//
// The "session" field of an audit line is a stored hash by its schema
// (docs/design.md §8.1; internal/audit and the handlers' tests check that it
// is the hash), so it is not reported even when this process never saw the
// session's id (the node client's sessions).
func idShapedTokens(where, text string, hashes map[string]bool) []string {
	var problems []string
	for i, line := range strings.Split(text, "\n") {
		auditSession := auditSessionHash(line)
		for _, m := range idShaped.FindAllStringSubmatch(line, -1) {
			if hashes[m[1]] || m[1] == auditSession {
				continue
			}
			red := strings.ReplaceAll(line, m[1], "<43-char token REDACTED>")
			if len(red) > 400 {
				red = red[:400] + "..."
			}
			problems = append(problems, fmt.Sprintf("%s line %d has a session-id-shaped token: %s", where, i+1, red))
			break
		}
	}
	return problems
}

// auditSessionHash returns the "session" of an audit line, "" for any other
// line.
func auditSessionHash(line string) string {
	if !strings.Contains(line, `"msg":"audit"`) {
		return ""
	}
	var l struct {
		Msg     string `json:"msg"`
		Session string `json:"session"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "audit" {
		return ""
	}
	return l.Session
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Path
}

// checkFunctionLogLines checks the functions' output: Lambda's own
// START/END/REPORT lines are plain text; every other line must be a JSON
// object, and a line logged during a request must carry the request_id of
// an invocation that really happened.
func checkFunctionLogLines(text string) []string {
	var problems []string
	started := map[string]bool{}
	type jsonLine struct {
		n   int
		obj map[string]any
	}
	var withID []jsonLine
	noID, noIDExample := map[string]int{}, map[string]string{}
	var noIDOrder []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "START RequestId: "):
			f := strings.Fields(line)
			if len(f) >= 3 {
				started[f[2]] = true
			}
			continue
		case strings.HasPrefix(line, "END RequestId: "), strings.HasPrefix(line, "REPORT RequestId: "),
			strings.HasPrefix(line, "INIT_START "), strings.HasPrefix(line, "INIT_REPORT "), strings.Contains(line, " Task timed out after "),
			strings.HasPrefix(line, "Dynalite listening at"), // dynalite shares LogOut
			lambdaCrashLine.MatchString(line), line == "Runtime.ExitError":

			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			problems = append(problems, fmt.Sprintf("function log line %d is neither a Lambda line nor a JSON object: %.300s", n, line))
			continue
		}
		if id, ok := obj["request_id"]; ok {
			withID = append(withID, jsonLine{n, obj})
			if s, _ := id.(string); s == "" {
				problems = append(problems, fmt.Sprintf("function log line %d has an empty request_id: %.300s", n, line))
			}
			continue
		}
		if perRequest(obj) {
			msg, _ := obj["msg"].(string)
			if noID[msg] == 0 {
				noIDOrder = append(noIDOrder, msg)
				noIDExample[msg] = fmt.Sprintf("line %d: %.300s", n, line)
			}
			noID[msg]++
		}
	}
	for _, msg := range noIDOrder {
		problems = append(problems, fmt.Sprintf("%d per-request function log line(s) %q have no request_id, e.g. %s", noID[msg], msg, noIDExample[msg]))
	}
	for _, l := range withID {
		if id, _ := l.obj["request_id"].(string); id != "" && !started[id] {
			problems = append(problems, fmt.Sprintf("function log line %d has request_id %q of no START line", l.n, id))
		}
	}
	if len(started) == 0 {
		problems = append(problems, "no START lines in the function log: was the functions' output captured?")
	}
	return problems
}

// lambdaCrashLine is what Lambda logs when the runtime process dies during
// an invocation (followed by a "Runtime.ExitError" line).
var lambdaCrashLine = regexp.MustCompile(`^RequestId: [0-9a-f-]+ Error: Runtime exited`)

// coldStartMessages are the messages a function may log outside a request
// (its init phase), without a request_id.
var coldStartMessages = map[string]bool{
	"invalid LOG_LEVEL, using info": true, // logging.New
	"cold start failed":             true, // logging.ColdStartFailed
}

// perRequest reports whether a JSON log line without request_id was logged
// during a request rather than during init.
func perRequest(obj map[string]any) bool {
	msg, _ := obj["msg"].(string)
	return !coldStartMessages[msg]
}
