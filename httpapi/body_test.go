package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
)

type loginBody struct {
	Code *string `json:"code"`
	N    int     `json:"n,omitempty"`
}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string // code, when it decodes
		wantMsg string // substring of the error, when it fails
	}{
		{name: "ok", body: `{"code":"abc"}`, want: "abc"},
		{name: "ok with whitespace", body: " \r\n\t{ \"code\" : \"abc\" }\n ", want: "abc"},
		{name: "ok unicode escape", body: `{"code":"\u0061bc"}`, want: "abc"},
		{name: "empty", body: ``, wantMsg: "body is empty"},
		{name: "spaces", body: `   `, wantMsg: "body is empty"},
		{name: "array", body: `["code"]`, wantMsg: "must be a JSON object"},
		{name: "string", body: `"code"`, wantMsg: "must be a JSON object"},
		{name: "null", body: `null`, wantMsg: "must be a JSON object"},
		{name: "number", body: `1`, wantMsg: "must be a JSON object"},
		{name: "unknown field", body: `{"code":"a","extra":1}`, wantMsg: `unknown field "extra"`},
		{name: "case-folded field", body: `{"Code":"a"}`, wantMsg: `unknown field "Code"`},
		{name: "duplicate field", body: `{"code":"a","code":"b"}`, wantMsg: `duplicate field "code"`},
		{name: "trailing object", body: `{"code":"a"}{"code":"b"}`, wantMsg: "unexpected data after"},
		{name: "trailing garbage", body: `{"code":"a"} x`, wantMsg: "unexpected data after"},
		{name: "truncated", body: `{"code":"a"`, wantMsg: "truncated"},
		{name: "syntax error", body: `{"code":'a'}`, wantMsg: "not valid JSON"},
		{name: "wrong type", body: `{"code":1}`, wantMsg: `field "code" must be a string`},
		{name: "wrong type int", body: `{"code":"a","n":"1"}`, wantMsg: `field "n" must be an integer`},
		{name: "invalid utf-8", body: "{\"code\":\"\xff\"}", wantMsg: "not valid UTF-8"},
		{name: "too deep", body: `{"code":"a","n":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, wantMsg: "nested more than"},
		{name: "very deep", body: strings.Repeat("{", 1<<20), wantMsg: "nested more than"},
		{name: "brackets inside strings do not count", body: `{"code":"` + strings.Repeat("[{", 100) + `"}`, want: strings.Repeat("[{", 100)},
		{name: "escaped quote inside string", body: `{"code":"a\"[[[[[[[[[[[[[[[[[[[[[[["}`, want: `a"[[[[[[[[[[[[[[[[[[[[[[[`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v loginBody
			err := httpapi.DecodeObject([]byte(tt.body), &v)
			if tt.wantMsg != "" {
				if !errors.Is(err, httpapi.ErrInvalidBody) {
					t.Fatalf("err = %v, want ErrInvalidBody", err)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err = %q, want it to contain %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if v.Code == nil || *v.Code != tt.want {
				t.Fatalf("code = %v, want %q", v.Code, tt.want)
			}
		})
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"code":"abc"}`, `{}`, `[]`, `null`, `{"code":1}`, `{"code":"a","code":"b"}`,
		`{"code":"a"}{}`, "{\"code\":\"\xff\xfe\"}", strings.Repeat("[", 5000), strings.Repeat(`{"n":`, 100),
		`{"code":"` + strings.Repeat("x", 1<<16) + `"}`, `{"Code":"a"}`, `{"code":"\ud800"}`, `{"n":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v loginBody
		err := httpapi.DecodeObject(body, &v)
		if err != nil {
			if !errors.Is(err, httpapi.ErrInvalidBody) {
				t.Fatalf("error %v does not wrap ErrInvalidBody", err)
			}
			return
		}
		// Whatever DecodeObject accepts, encoding/json accepts too.
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body encoding/json rejects: %v", err)
		}
	})
}

func TestBody(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name    string
		req     events.APIGatewayV2HTTPRequest
		max     int
		want    string
		wantErr error
	}{
		{name: "plain", req: events.APIGatewayV2HTTPRequest{Body: `{"a":1}`}, max: 10, want: `{"a":1}`},
		{name: "plain at limit", req: events.APIGatewayV2HTTPRequest{Body: "12345"}, max: 5, want: "12345"},
		{name: "plain over limit", req: events.APIGatewayV2HTTPRequest{Body: "123456"}, max: 5, wantErr: httpapi.ErrBodyTooLarge},
		{name: "base64", req: events.APIGatewayV2HTTPRequest{Body: enc(`{"a":1}`), IsBase64Encoded: true}, max: 10, want: `{"a":1}`},
		{name: "base64 at limit", req: events.APIGatewayV2HTTPRequest{Body: enc("12345"), IsBase64Encoded: true}, max: 5, want: "12345"},
		{name: "base64 over limit", req: events.APIGatewayV2HTTPRequest{Body: enc("123456"), IsBase64Encoded: true}, max: 5, wantErr: httpapi.ErrBodyTooLarge},
		{name: "base64 huge", req: events.APIGatewayV2HTTPRequest{Body: enc(strings.Repeat("x", 1<<20)), IsBase64Encoded: true}, max: 4096, wantErr: httpapi.ErrBodyTooLarge},
		{name: "bad base64", req: events.APIGatewayV2HTTPRequest{Body: "!!!!", IsBase64Encoded: true}, max: 10, wantErr: httpapi.ErrInvalidBody},
		{name: "empty", req: events.APIGatewayV2HTTPRequest{}, max: 10, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httpapi.Body(tt.req, tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("body = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResponses(t *testing.T) {
	checkBase := func(t *testing.T, h map[string]string) {
		t.Helper()
		if h["Cache-Control"] != "no-store" || h["X-Content-Type-Options"] != "nosniff" {
			t.Fatalf("missing security headers: %v", h)
		}
	}
	t.Run("JSON", func(t *testing.T) {
		r := httpapi.JSON(http.StatusOK, map[string]string{"a": "b"})
		checkBase(t, r.Headers)
		if r.StatusCode != 200 || r.Body != `{"a":"b"}` || r.Headers["Content-Type"] != "application/json; charset=utf-8" {
			t.Fatalf("bad response %+v", r)
		}
	})
	t.Run("JSON unencodable", func(t *testing.T) {
		r := httpapi.JSON(http.StatusOK, func() {})
		if r.StatusCode != 500 || !strings.Contains(r.Body, "internal_error") {
			t.Fatalf("bad response %+v", r)
		}
	})
	t.Run("Error", func(t *testing.T) {
		r := httpapi.Error(http.StatusBadRequest, "invalid_request", "no <code>")
		checkBase(t, r.Headers)
		var e httpapi.ErrorBody
		if err := json.Unmarshal([]byte(r.Body), &e); err != nil || e.Error != "invalid_request" || e.Message != "no <code>" || r.StatusCode != 400 {
			t.Fatalf("bad error response %+v (%v)", r, err)
		}
	})
	t.Run("WithRetryAfter", func(t *testing.T) {
		for d, want := range map[time.Duration]string{0: "1", time.Second: "1", 1500 * time.Millisecond: "2", time.Minute: "60"} {
			r := httpapi.WithRetryAfter(httpapi.Error(503, "x", "y"), d)
			if r.Headers["Retry-After"] != want {
				t.Fatalf("Retry-After for %v = %q, want %q", d, r.Headers["Retry-After"], want)
			}
		}
	})
	t.Run("NoContent", func(t *testing.T) {
		r := httpapi.NoContent()
		checkBase(t, r.Headers)
		if r.StatusCode != 204 || r.Body != "" || r.Headers["Content-Type"] != "" {
			t.Fatalf("bad response %+v", r)
		}
	})
	t.Run("cookies", func(t *testing.T) {
		if got, want := httpapi.SessionCookie("abc", 336*time.Hour), "sessionid=abc; Path=/; Max-Age=1209600; HttpOnly; Secure; SameSite=Lax"; got != want {
			t.Fatalf("SessionCookie = %q, want %q", got, want)
		}
		if got, want := httpapi.ClearSessionCookie(), "sessionid=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"; got != want {
			t.Fatalf("ClearSessionCookie = %q, want %q", got, want)
		}
		c, err := http.ParseSetCookie(httpapi.SessionCookie("abc", time.Hour))
		if err != nil || c.Name != "sessionid" || c.Value != "abc" || c.MaxAge != 3600 || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Fatalf("net/http parses %+v (%v)", c, err)
		}
	})
}
