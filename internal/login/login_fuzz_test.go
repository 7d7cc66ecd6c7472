package login_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/login"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/session"
)

// refusingExchanger fails every exchange, with an error class picked from
// the code, and records the codes it was asked about. Fuzzing exercises the
// body parsing and the error mapping, not WeChat.
type refusingExchanger struct {
	mu    sync.Mutex
	codes []string
}

var exchangeErrors = []error{
	wechat.ErrInvalidCode, wechat.ErrCodeUsed, wechat.ErrRateLimited, wechat.ErrUserBlocked,
	wechat.ErrMisconfigured, wechat.ErrUnavailable, errors.New("unexpected"),
}

// wantFor is the answer each exchange error must map to (docs/design.md §2).
var wantFor = map[error]struct {
	status int
	code   string
}{
	exchangeErrors[0]: {401, "invalid_code"},
	exchangeErrors[1]: {401, "code_used"},
	exchangeErrors[2]: {429, "rate_limited"},
	exchangeErrors[3]: {403, "user_blocked"},
	exchangeErrors[4]: {500, "server_misconfigured"},
	exchangeErrors[5]: {503, "wechat_unavailable"},
	exchangeErrors[6]: {503, "wechat_unavailable"},
}

func errorFor(code string) error {
	h := fnv.New32a()
	h.Write([]byte(code))
	return exchangeErrors[h.Sum32()%uint32(len(exchangeErrors))]
}

func (x *refusingExchanger) Exchange(_ context.Context, code string) (session.Identity, error) {
	x.mu.Lock()
	x.codes = append(x.codes, code)
	x.mu.Unlock()
	return session.Identity{}, errorFor(code)
}

func (x *refusingExchanger) take() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.codes
	x.codes = nil
	return c
}

// noCreator owns every claim and fails the test if a session is ever
// issued.
type noCreator struct{ t *testing.T }

func (c noCreator) Claim(context.Context, string, string) (dynamostore.Claim, error) {
	return dynamostore.Claim{Token: "t"}, nil
}

func (c noCreator) Release(context.Context, dynamostore.Claim, string) {}

func (c noCreator) Lookup(context.Context, string) (session.Session, error) {
	return session.Session{}, session.ErrNotFound
}

func (c noCreator) Issue(context.Context, dynamostore.IssueInput) (session.Session, []dynamostore.Ended, error) {
	c.t.Error("Issue called although every exchange fails")
	return session.Session{}, nil, session.ErrUnavailable
}

// validShape is the contract's code shape: 1-128 of [A-Za-z0-9_-].
func validShape(c string) bool {
	if len(c) == 0 || len(c) > login.MaxCodeLength {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

func FuzzLoginBody(f *testing.F) {
	seeds := []string{
		`{"code":"0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P"}`,
		`{"code":"a"}`,
		`{"code":"` + strings.Repeat("a", 128) + `"}`,
		`{"code":"` + strings.Repeat("a", 129) + `"}`,
		`{"code":"` + strings.Repeat("x", 5000) + `"}`,
		` {"code" : "abc_DEF-123"} `,
		`{"code":""}`,
		`{"code":null}`,
		`{"code":123}`,
		`{"code":["a"]}`,
		`{"code":{"a":"b"}}`,
		`{"code":"abc","code":"def"}`,
		`{"code":"abc","Code":"def"}`,
		`{"Code":"abc"}`,
		`{"code":"abc","extra":true}`,
		`{"code":"a\u0000b"}`,
		"{\"code\":\"a\x00b\"}",
		"{\"code\":\"\xff\xfe\"}",
		"\xef\xbb\xbf{\"code\":\"abc\"}",
		`{"code":"abc"}{"code":"def"}`,
		`{"code":"abc"`,
		`{"code":"\ud800"}`,
		`{"code":"中文"}`,
		strings.Repeat("[", 8192), // deep nesting over the size limit (the gateway suite sends 100k)
		strings.Repeat("[", 1000) + strings.Repeat("]", 1000),
		`{"code":` + strings.Repeat(`{"a":`, 20) + `"x"` + strings.Repeat("}", 21),
		`[]`, `null`, `"abc"`, `1`, ``, " \n\t", `{}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	raw, err := testutil.Event("apigw-v2-request-no-authorizer.json")
	if err != nil {
		f.Fatal(err)
	}
	var base events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &base); err != nil {
		f.Fatal(err)
	}
	base.RouteKey, base.RawPath = "POST /login", "/login"
	base.RequestContext.RouteKey = base.RouteKey
	base.RequestContext.HTTP.Method, base.RequestContext.HTTP.Path = http.MethodPost, "/login"

	f.Fuzz(func(t *testing.T, body []byte, b64 bool) {
		x := &refusingExchanger{}
		h := &login.Handler{WeChat: x, Store: noCreator{t}, AppID: "wx0123456789abcdef", Logger: slog.New(slog.DiscardHandler)}
		req := base
		req.Headers = map[string]string{"content-type": "application/json"}
		if b64 {
			req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		} else {
			req.Body = string(body)
		}
		resp, err := h.Handle(context.Background(), req)
		if err != nil {
			t.Fatalf("Handle returned a Go error: %v", err)
		}
		var eb httpapi.ErrorBody
		if err := json.Unmarshal([]byte(resp.Body), &eb); err != nil || eb.Error == "" || eb.Message == "" {
			t.Fatalf("status %d: body %q is not an error object: %v", resp.StatusCode, resp.Body, err)
		}
		if ct := resp.Headers["Content-Type"]; !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		if len(resp.Cookies) != 0 {
			t.Errorf("a failed login set a cookie")
		}
		codes := x.take()
		switch resp.StatusCode {
		case 400:
			if eb.Error != "invalid_request" || len(codes) != 0 {
				t.Errorf("400 %s after %d exchanges", eb.Error, len(codes))
			}
		case 413:
			if eb.Error != "payload_too_large" || len(body) <= httpapi.MaxBodyBytes || len(codes) != 0 {
				t.Errorf("413 %s for %d bytes after %d exchanges", eb.Error, len(body), len(codes))
			}
		case 401, 403, 429, 500, 503:
			// Only a well-shaped code reaches WeChat, once, and its error
			// is mapped as the contract says.
			if len(codes) != 1 {
				t.Fatalf("status %d after %d exchanges", resp.StatusCode, len(codes))
			}
			if !validShape(codes[0]) {
				t.Errorf("code %q reached WeChat", codes[0])
			}
			want := wantFor[errorFor(codes[0])]
			if resp.StatusCode != want.status || eb.Error != want.code {
				t.Errorf("exchange error mapped to %d %s, want %d %s", resp.StatusCode, eb.Error, want.status, want.code)
			}
			if (resp.StatusCode == 429 || resp.StatusCode == 503) != (resp.Headers["Retry-After"] != "") {
				t.Errorf("status %d with Retry-After %q", resp.StatusCode, resp.Headers["Retry-After"])
			}
		default:
			t.Errorf("undocumented status %d %s", resp.StatusCode, resp.Body)
		}
		if len(body) > httpapi.MaxBodyBytes && resp.StatusCode != 413 {
			t.Errorf("%d-byte body answered %d", len(body), resp.StatusCode)
		}
	})
}
