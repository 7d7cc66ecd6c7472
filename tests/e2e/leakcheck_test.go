package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/session"
)

// TestLeakFinder checks the leak check itself (no stack needed): it must
// find each kind of secret, allow a session id only in its own login
// response, and never print the secret it found.
func TestLeakFinder(t *testing.T) {
	const (
		sid  = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		sid2 = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
		key  = "abc+def/ghiJKLmnoPQRst=="
		code = "0123456789abcdefghijABCDEFGHIJxy"
	)
	f := newLeakFinder([]secret{
		{value: sid, kind: "session id", own: 3},
		{value: sid2, kind: "session id", own: 4},
		{value: key, kind: "session_key", own: -1},
		{value: code, kind: "login code", own: -1},
		{value: "local-dev-secret-0000000000000000", kind: "app secret", own: -1},
		{value: "13912345678", kind: "phone number", own: -1, logsOnly: true},
	})
	tests := []struct {
		name, line string
		allowed    int
		want       string // "" = no leak
	}{
		{"clean", `{"msg":"login","openid":"oab***"}`, -1, ""},
		{"session id in a log", `{"msg":"x","sid":"` + sid + `"}`, -1, "session id"},
		{"own login response", `{"session_id":"` + sid + `"}`, 3, ""},
		{"someone else's login response", `{"session_id":"` + sid + `"}`, 4, "session id"},
		{"session_key", `key=` + key, -1, "session_key"},
		{"URL-encoded session_key", `GET /x?k=abc%2Bdef%2FghiJKLmnoPQRst%3D%3D`, -1, "session_key (URL-encoded)"},
		{"login code", `code ` + code + ` used`, -1, "login code"},
		{"app secret", `secret=local-dev-secret-0000000000000000&x`, -1, "app secret"},
		{"phone number in a log", `{"msg":"phone bound","phone":"13912345678"}`, -1, "phone number"},
		{"phone number in a response", `{"phone_number":"13912345678"}`, 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := f.check("here", tt.line, tt.allowed)
			if ok != (tt.want != "") {
				t.Fatalf("check = %q, %v; want leak %q", p, ok, tt.want)
			}
			if !ok {
				return
			}
			if !strings.Contains(p, "leaks "+tt.want) {
				t.Errorf("report %q does not name %q", p, tt.want)
			}
			for _, s := range []string{sid, sid2, key, code, "local-dev-secret"} {
				if strings.Contains(p, s) {
					t.Errorf("report %q is not redacted", p)
				}
			}
		})
	}
	// A header of another exchange is caught too.
	e := exchange{Method: "GET", URL: "http://x/me", Status: 200,
		Header: http.Header{"Set-Cookie": {"sessionid=" + sid2}}, Body: []byte(`{}`)}
	if got := f.exchange(3, e); len(got) != 1 {
		t.Errorf("exchange with another session's cookie: %q, want one problem", got)
	}
	if got := f.exchange(4, e); len(got) != 0 {
		t.Errorf("login exchange with its own cookie: %q, want none", got)
	}
}

// TestIDShapedTokens: any session-id-shaped token in a log is reported,
// except known hashes; request ids and codes are not that shape.
func TestIDShapedTokens(t *testing.T) {
	const tok = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"
	tests := []struct {
		line string
		want bool
	}{
		{`{"msg":"x","id":"` + tok + `"}`, true},
		{"Bearer " + tok, true},
		{tok, true},
		{`{"sid":"` + session.Hash(tok) + `"}`, false}, // a known hash
		{`{"request_id":"9d1df597-76e4-4135-9c45-7d178eaba5f0"}`, false},
		{`{"x":"` + tok + `A"}`, false}, // 44 characters
		{`{"code":"0123456789abcdefghijABCDEFGHIJxy"}`, false},
		{`{"msg":"audit","event":"logged_out","session":"` + tok + `"}`, false},             // an audit line's session is a hash by schema
		{`{"msg":"audit","event":"logged_out","session":"x","reason":"` + tok + `"}`, true}, // elsewhere in an audit line it is reported
		{`{"msg":"login","session":"` + tok + `"}`, true},                                   // not an audit line
	}
	hashes := map[string]bool{session.Hash(tok): true}
	for _, tt := range tests {
		p := idShapedTokens("log", tt.line, hashes)
		if (len(p) > 0) != tt.want {
			t.Errorf("%q: got %q, want a report: %v", tt.line, p, tt.want)
		}
		for _, s := range p {
			if strings.Contains(s, tok) {
				t.Errorf("report not redacted: %q", s)
			}
		}
	}
}

// TestCheckFunctionLogLines checks the log-line rules on synthetic output.
func TestCheckFunctionLogLines(t *testing.T) {
	const id = "c8eaac5f-8bb7-4f07-af97-d89842428e92"
	good := strings.Join([]string{
		"Dynalite listening at: http://127.0.0.1:1",
		"INIT_REPORT Init Duration: 4.23 ms\tPhase: init\tStatus: success",
		`{"level":"WARN","msg":"invalid LOG_LEVEL, using info"}`,
		"START RequestId: " + id + " Version: $LATEST",
		`{"level":"INFO","msg":"login","request_id":"` + id + `"}`,
		"RequestId: " + id + " Error: Runtime exited with error: signal: killed",
		"Runtime.ExitError",
		"END RequestId: " + id,
		"REPORT RequestId: " + id + "\tDuration: 1.00 ms",
		"",
	}, "\n")
	if p := checkFunctionLogLines(good); len(p) != 0 {
		t.Errorf("good output: %q", p)
	}
	tests := []struct{ name, extra, want string }{
		{"plain text", "panic: boom", "neither a Lambda line nor a JSON object"},
		{"per-request line without request_id", `{"msg":"session created"}`, "have no request_id"},
		{"unknown request_id", `{"msg":"x","request_id":"nope"}`, "of no START line"},
		{"empty request_id", `{"msg":"x","request_id":""}`, "empty request_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := checkFunctionLogLines(good + tt.extra + "\n")
			if len(p) != 1 || !strings.Contains(p[0], tt.want) {
				t.Errorf("got %q, want one problem containing %q", p, tt.want)
			}
		})
	}
	if p := checkFunctionLogLines(`{"msg":"cold start failed"}`); len(p) != 1 || !strings.Contains(p[0], "no START lines") {
		t.Errorf("output without START lines: %q", p)
	}
}
