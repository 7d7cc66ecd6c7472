package httpapi_test

import (
	"testing"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/session"
)

// BenchmarkSessionID measures finding the session id in a payload-2.0
// request, the first thing the authorizer does on every request. The
// headers are shaped like API Gateway's (lower-case names, a dozen of them).
func BenchmarkSessionID(b *testing.B) {
	id, err := session.NewID()
	if err != nil {
		b.Fatal(err)
	}
	base := map[string]string{
		"accept": "*/*", "accept-encoding": "gzip, deflate, br", "content-length": "0",
		"host": "abc123.execute-api.ap-east-1.amazonaws.com", "user-agent": "Mozilla/5.0 MicroMessenger/8.0",
		"referer":         "https://servicewechat.com/wx0123456789abcdef/1/page-frame.html",
		"x-amzn-trace-id": "Root=1-65f0c0de-0123456789abcdef01234567", "x-forwarded-for": "203.0.113.7",
		"x-forwarded-port": "443", "x-forwarded-proto": "https",
	}
	with := func(k, v string) map[string]string {
		h := make(map[string]string, len(base)+1)
		for bk, bv := range base {
			h[bk] = bv
		}
		if k != "" {
			h[k] = v
		}
		return h
	}
	for _, bc := range []struct {
		name    string
		headers map[string]string
		cookies []string
		wantErr bool
	}{
		{"bearer", with("authorization", "Bearer "+id), nil, false},
		{"cookie", with("", ""), []string{"theme=dark", "lang=zh_CN; sessionid=" + id}, false},
		{"missing", with("", ""), []string{"theme=dark"}, true},
		{"malformed", with("authorization", "Bearer not-a-session-id"), nil, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := httpapi.SessionID(bc.headers, bc.cookies)
				if (err != nil) != bc.wantErr {
					b.Fatalf("err = %v, want error %v", err, bc.wantErr)
				}
			}
		})
	}
}
