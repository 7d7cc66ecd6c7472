package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/devstack/stack"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

// Function logical ids and table logical ids of template.yaml.
const (
	loginFn      = "LoginFunction"
	authorizerFn = "AuthorizerFunction"
	apiFn        = "ApiFunction"
)

// functionTimeout is the functions' timeout in template.yaml (Globals): every
// failure must be answered well inside it.
const functionTimeout = 10 * time.Second

// harness is one running local stack and what a test needs around it.
type harness struct {
	t      *testing.T
	s      *stack.Stack
	proxy  *faultservers.Proxy // nil unless asked for
	logs   *testutil.Buffer    // the stack's, the emulator's, the functions' and dynalite's output
	client *http.Client
	sec    *secrets
}

// secrets must never appear in any log: raw ids, codes, session keys, the
// app secret.
type secrets struct {
	mu   sync.Mutex
	list []string
}

// at returns h reporting to t (a subtest): the helpers fail the test they
// are called from, never a parent.
func (h *harness) at(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

type stackOpts struct {
	// proxy puts a faultservers.Proxy between every function and dynalite.
	proxy bool
	// env is merged into the stack's EnvOverrides (sam --env-vars format).
	env map[string]map[string]string
}

// newHarness starts a stack on free ports with an in-memory dynalite and
// stops it (and checks the logs for leaked secrets) when the test ends.
func newHarness(t *testing.T, o stackOpts) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the local stack (builds the functions, runs dynalite)")
	}
	h := &harness{
		t:      t,
		logs:   &testutil.Buffer{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		sec:    &secrets{list: []string{wechatemu.DefaultSecret}},
	}
	env := map[string]map[string]string{}
	for k, vars := range o.env {
		env[k] = map[string]string{}
		for n, v := range vars {
			env[k][n] = v
		}
	}
	if o.proxy {
		p, err := faultservers.NewProxy(nil)
		if err != nil {
			t.Fatal(err)
		}
		h.proxy = p
		if env[stack.GlobalEnvKey] == nil {
			env[stack.GlobalEnvKey] = map[string]string{}
		}
		env[stack.GlobalEnvKey][config.VarDynamoDBEndpoint] = p.URL()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		s   *stack.Stack
		err error
	)
	// Another test process building at the same moment can make the copy
	// of a binary fail with "text file busy" (see /work/notes/bugs.md):
	// retry a few times.
	for attempt := 1; attempt <= 5; attempt++ {
		s, err = stack.Start(ctx, stack.Options{
			APIAddr: "127.0.0.1:0", WeChatAddr: "127.0.0.1:0", DynamoAddr: "127.0.0.1:0",
			Params:       map[string]string{"LogLevel": "debug"},
			EnvOverrides: env,
			Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			LogOut:       h.logs,
			Getenv:       func(string) string { return "" },
		})
		if err == nil || !strings.Contains(err.Error(), "text file busy") {
			break
		}
		t.Logf("stack.Start attempt %d: %v; retrying", attempt, err)
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
	if err != nil {
		if h.proxy != nil {
			_ = h.proxy.Close()
		}
		t.Fatalf("stack.Start: %v\noutput:\n%s", err, tail(h.logs.String(), 4000))
	}
	h.s = s
	if h.proxy != nil {
		if err := h.proxy.SetUpstream(s.DynamoURL); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		if err := s.Close(); err != nil {
			t.Errorf("stack.Close: %v", err)
		}
		if h.proxy != nil {
			_ = h.proxy.Close()
		}
		h.checkLeaks()
		if t.Failed() {
			t.Logf("stack output (tail):\n%s", tail(h.logs.String(), 6000))
		}
	})
	return h
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// secret records values that must never be logged.
func (h *harness) secret(vals ...string) {
	h.sec.mu.Lock()
	defer h.sec.mu.Unlock()
	for _, v := range vals {
		if v != "" {
			h.sec.list = append(h.sec.list, v)
		}
	}
}

// checkLeaks fails the test when a secret appears in any output.
func (h *harness) checkLeaks() {
	logs := h.logs.String()
	h.sec.mu.Lock()
	defer h.sec.mu.Unlock()
	leaked := 0
	for n, s := range h.sec.list {
		if strings.Contains(logs, s) {
			leaked++
			if leaked <= 3 {
				i := strings.Index(logs, s)
				line := logs[strings.LastIndex(logs[:i], "\n")+1:]
				if j := strings.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				h.t.Errorf("secret #%d (%d chars) leaked into the logs: %s", n, len(s), strings.ReplaceAll(line, s, "<SECRET>"))
			}
		}
	}
	if leaked > 3 {
		h.t.Errorf("%d secrets leaked in total", leaked)
	}
}

// table returns the physical name of a template table.
func (h *harness) table(logicalID string) string {
	t, ok := h.s.Template.Tables[logicalID]
	if !ok {
		h.t.Fatalf("template has no table %s", logicalID)
	}
	return aws.ToString(t.Input.TableName)
}

// header is one request header; a slice of them may repeat a name.
type header struct{ name, value string }

func bearer(id string) header { return header{"Authorization", "Bearer " + id} }
func cookie(v string) header  { return header{"Cookie", v} }

// reply is an answer and how long it took.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
	Dur    time.Duration
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s (%v)", r.Status, tail(string(r.Body), 300), r.Dur.Round(time.Millisecond))
}

// errorCode is the "error" of a wxsession error body, "" when absent.
func (r reply) errorCode() string {
	var b httpapi.ErrorBody
	_ = json.Unmarshal(r.Body, &b)
	return b.Error
}

// gatewayMessage is the "message" of an API Gateway answer, "" when absent.
func (r reply) gatewayMessage() string {
	var b struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(r.Body, &b) != nil || b.Error != "" {
		return ""
	}
	return b.Message
}

func (h *harness) request(method, path string, body io.Reader, hdrs ...header) *http.Request {
	h.t.Helper()
	req, err := http.NewRequest(method, h.s.APIURL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, hd := range hdrs {
		req.Header.Add(hd.name, hd.value)
	}
	return req
}

// send sends req and returns the reply, or the transport error.
func (h *harness) send(req *http.Request) (reply, error) {
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		return reply{Dur: time.Since(start)}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := reply{Status: resp.StatusCode, Header: resp.Header, Body: b, Dur: time.Since(start)}
	return r, err
}

// do sends req and fails the test on a transport error.
func (h *harness) do(req *http.Request) reply {
	h.t.Helper()
	r, err := h.send(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return r
}

func (h *harness) get(path string, hdrs ...header) reply {
	h.t.Helper()
	return h.do(h.request(http.MethodGet, path, nil, hdrs...))
}

func (h *harness) post(path, body string, hdrs ...header) reply {
	h.t.Helper()
	hdrs = append([]header{{"Content-Type", "application/json"}}, hdrs...)
	return h.do(h.request(http.MethodPost, path, strings.NewReader(body), hdrs...))
}

// code issues a wx.login() code for openid at the emulator.
func (h *harness) code(openid string) string {
	h.t.Helper()
	c, err := h.s.Emulator.IssueCode(openid, "")
	if err != nil {
		h.t.Fatal(err)
	}
	h.secret(c)
	return c
}

// loginBody is the body of a successful POST /login.
type loginBody struct {
	SessionID string `json:"session_id"`
	TokenType string `json:"token_type"`
	ExpiresAt string `json:"expires_at"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
}

// tryLogin posts a login with code and decodes a 200 answer.
func (h *harness) tryLogin(code string) (loginBody, reply, error) {
	req := h.request(http.MethodPost, "/login", strings.NewReader(`{"code":"`+code+`"}`), header{"Content-Type", "application/json"})
	r, err := h.send(req)
	if err != nil {
		return loginBody{}, r, err
	}
	var lb loginBody
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &lb); err != nil || !session.ValidID(lb.SessionID) {
			return lb, r, fmt.Errorf("login answer %s: %v", r, err)
		}
		h.secret(lb.SessionID, h.s.Emulator.SessionKey(lb.OpenID))
	}
	return lb, r, nil
}

// login logs openid in and fails the test unless it gets a session.
func (h *harness) login(openid string) loginBody {
	h.t.Helper()
	lb, r, err := h.tryLogin(h.code(openid))
	if err != nil {
		h.t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		h.t.Fatalf("login %s: %s", openid, r)
	}
	return lb
}

// count returns the number of items in a table (consistent scan).
func (h *harness) count(logicalID string) int {
	h.t.Helper()
	n := 0
	var start map[string]types.AttributeValue
	for i := 0; i < 1000; i++ {
		out, err := h.s.Dynamo.Scan(context.Background(), &dynamodb.ScanInput{
			TableName: aws.String(h.table(logicalID)), Select: types.SelectCount,
			ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
		})
		if err != nil {
			h.t.Fatalf("scan %s: %v", logicalID, err)
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n
		}
		start = out.LastEvaluatedKey
	}
	h.t.Fatal("scan did not end")
	return 0
}

// countSessions returns the number of session items (tombstones and
// login claims have no user key).
func (h *harness) countSessions() int {
	h.t.Helper()
	n := 0
	for _, it := range h.items("SessionsTable") {
		if _, ok := it["user"]; ok {
			n++
		}
	}
	return n
}

// items returns every item of a table.
func (h *harness) items(logicalID string) []map[string]types.AttributeValue {
	h.t.Helper()
	out, err := h.s.Dynamo.Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(h.table(logicalID)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		h.t.Fatalf("scan %s: %v", logicalID, err)
	}
	if len(out.LastEvaluatedKey) != 0 {
		h.t.Fatalf("scan %s: more than one page", logicalID)
	}
	return out.Items
}

// rawItem reads the stored item of raw session id, whatever it is (nil
// when absent).
func (h *harness) rawItem(id string) map[string]types.AttributeValue {
	h.t.Helper()
	out, err := h.s.Dynamo.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(h.table("SessionsTable")),
		Key:            map[string]types.AttributeValue{"sid": &types.AttributeValueMemberS{Value: session.Hash(id)}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		h.t.Fatalf("get session item: %v", err)
	}
	return out.Item
}

// sessionItem reads the stored session item of raw session id: nil when
// absent, or when the item is not a session (a tombstone or a login claim
// has no user key).
func (h *harness) sessionItem(id string) map[string]types.AttributeValue {
	h.t.Helper()
	it := h.rawItem(id)
	if _, ok := it["user"]; !ok {
		return nil
	}
	return it
}

// endReason is the tombstone reason stored for raw session id ("" when
// there is none).
func (h *harness) endReason(id string) string {
	h.t.Helper()
	if r, ok := h.rawItem(id)["ended_reason"].(*types.AttributeValueMemberS); ok {
		return r.Value
	}
	return ""
}

// userExists reports whether the users table has openid.
func (h *harness) userExists(openid string) bool {
	h.t.Helper()
	out, err := h.s.Dynamo.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(h.table("UsersTable")),
		Key:            map[string]types.AttributeValue{"user": &types.AttributeValueMemberS{Value: session.UserKey(h.s.Emulator.AppID(), openid)}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		h.t.Fatalf("get user item: %v", err)
	}
	return len(out.Item) > 0
}

// putSession writes a session straight into the table (as the login
// function would) and returns its raw id.
func (h *harness) putSession(openid string, expiresAt time.Time) string {
	h.t.Helper()
	id, err := session.NewID()
	if err != nil {
		h.t.Fatal(err)
	}
	h.secret(id)
	now := time.Now().Unix()
	_, err = h.s.Dynamo.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(h.table("SessionsTable")),
		Item: map[string]types.AttributeValue{
			"sid":        &types.AttributeValueMemberS{Value: session.Hash(id)},
			"user":       &types.AttributeValueMemberS{Value: session.UserKey(h.s.Emulator.AppID(), openid)},
			"created_us": &types.AttributeValueMemberN{Value: fmt.Sprint(time.Now().UnixMicro())},
			"openid":     &types.AttributeValueMemberS{Value: openid},
			"appid":      &types.AttributeValueMemberS{Value: h.s.Emulator.AppID()},
			"created_at": &types.AttributeValueMemberN{Value: fmt.Sprint(now)},
			"expires_at": &types.AttributeValueMemberN{Value: fmt.Sprint(expiresAt.Unix())},
		},
	})
	if err != nil {
		h.t.Fatalf("put session: %v", err)
	}
	return id
}

// stats returns every pool's counters.
func (h *harness) stats() map[string]lambdaruntime.PoolStats {
	out := map[string]lambdaruntime.PoolStats{}
	for _, id := range []string{loginFn, authorizerFn, apiFn} {
		if p := h.s.Pool(id); p != nil {
			out[id] = p.Stats()
		}
	}
	return out
}

// checkNoCrashes fails the test if any function instance crashed, timed
// out or failed to start since before.
func (h *harness) checkNoCrashes(before map[string]lambdaruntime.PoolStats) {
	h.t.Helper()
	for id, now := range h.stats() {
		b := before[id]
		if now.Crashes != b.Crashes || now.Timeouts != b.Timeouts || now.InitFailures != b.InitFailures {
			h.t.Errorf("%s: crashes %d→%d, timeouts %d→%d, init failures %d→%d", id,
				b.Crashes, now.Crashes, b.Timeouts, now.Timeouts, b.InitFailures, now.InitFailures)
		}
	}
}

// randomOpenID returns a fresh WeChat-looking openid.
func randomOpenID(t *testing.T, prefix string) string {
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	o := "o" + prefix + strings.NewReplacer("-", "", "_", "").Replace(id)
	return o[:28]
}
