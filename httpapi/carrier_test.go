package httpapi_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/session"
)

func newID(t testing.TB) string {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSessionID(t *testing.T) {
	a, b := newID(t), newID(t)
	// An id of the right length whose last character carries non-zero
	// padding bits: not canonical, so not ValidID.
	nonCanonical := a[:42] + "B"
	tests := []struct {
		name    string
		headers map[string]string
		cookies []string
		want    string
		wantErr error
	}{
		{name: "nothing", wantErr: httpapi.ErrNoCredentials},
		{name: "bearer lower-case header", headers: map[string]string{"authorization": "Bearer " + a}, want: a},
		{name: "bearer canonical header", headers: map[string]string{"Authorization": "Bearer " + a}, want: a},
		{name: "bearer upper-case header", headers: map[string]string{"AUTHORIZATION": "Bearer " + a}, want: a},
		{name: "scheme lower-case", headers: map[string]string{"authorization": "bearer " + a}, want: a},
		{name: "scheme upper-case", headers: map[string]string{"authorization": "BEARER " + a}, want: a},
		{name: "extra spaces and tab", headers: map[string]string{"authorization": "  Bearer \t " + a + "  "}, want: a},
		{name: "bearer alone", headers: map[string]string{"authorization": "Bearer"}, wantErr: httpapi.ErrMalformed},
		{name: "bearer space only", headers: map[string]string{"authorization": "Bearer   "}, wantErr: httpapi.ErrMalformed},
		{name: "empty bearer does not fall through to cookie", headers: map[string]string{"authorization": "Bearer "}, cookies: []string{"sessionid=" + b}, wantErr: httpapi.ErrMalformed},
		{name: "bearer short token", headers: map[string]string{"authorization": "Bearer abc"}, wantErr: httpapi.ErrMalformed},
		{name: "bearer non-canonical token", headers: map[string]string{"authorization": "Bearer " + nonCanonical}, wantErr: httpapi.ErrMalformed},
		{name: "bearer two tokens (joined duplicate headers)", headers: map[string]string{"authorization": "Bearer " + a + ",Bearer " + b}, wantErr: httpapi.ErrMalformed},
		{name: "bearer token with space inside", headers: map[string]string{"authorization": "Bearer " + a[:20] + " " + a[20:]}, wantErr: httpapi.ErrMalformed},
		{name: "bearer wins over cookie", headers: map[string]string{"authorization": "Bearer " + a}, cookies: []string{"sessionid=" + b}, want: a},
		{name: "bearer wins over malformed cookie", headers: map[string]string{"authorization": "Bearer " + a}, cookies: []string{"sessionid=junk"}, want: a},
		{name: "malformed bearer does not fall back to cookie", headers: map[string]string{"authorization": "Bearer junk"}, cookies: []string{"sessionid=" + b}, wantErr: httpapi.ErrMalformed},
		{name: "basic scheme ignored, cookie used", headers: map[string]string{"authorization": "Basic dXNlcjpwYXNz"}, cookies: []string{"sessionid=" + b}, want: b},
		{name: "basic scheme alone", headers: map[string]string{"authorization": "Basic dXNlcjpwYXNz"}, wantErr: httpapi.ErrNoCredentials},
		{name: "bearerish scheme is another scheme", headers: map[string]string{"authorization": "Bearerx " + a}, wantErr: httpapi.ErrNoCredentials},
		{name: "token without scheme ignored", headers: map[string]string{"authorization": a}, wantErr: httpapi.ErrNoCredentials},
		{name: "empty authorization header", headers: map[string]string{"authorization": ""}, cookies: []string{"sessionid=" + b}, want: b},
		{name: "two header spellings same value", headers: map[string]string{"authorization": "Bearer " + a, "Authorization": "Bearer " + a}, want: a},
		{name: "two header spellings different values", headers: map[string]string{"authorization": "Bearer " + a, "Authorization": "Bearer " + b}, wantErr: httpapi.ErrMalformed},
		{name: "cookie header is not read (payload 2.0)", headers: map[string]string{"cookie": "sessionid=" + a}, wantErr: httpapi.ErrNoCredentials},
		{name: "cookie alone", cookies: []string{"sessionid=" + b}, want: b},
		{name: "cookie among others", cookies: []string{"theme=dark", "sessionid=" + b, "lang=zh_CN"}, want: b},
		{name: "cookie pairs in one element", cookies: []string{"theme=dark; sessionid=" + b + "; lang=zh_CN"}, want: b},
		{name: "cookie pairs without spaces", cookies: []string{"theme=dark;sessionid=" + b + ";lang=zh_CN"}, want: b},
		{name: "quoted cookie value", cookies: []string{`sessionid="` + b + `"`}, want: b},
		{name: "cookie with spaces around", cookies: []string{"  sessionid = " + b + "  "}, want: b},
		{name: "duplicate cookie same value", cookies: []string{"sessionid=" + b, "sessionid=" + b}, want: b},
		{name: "duplicate cookie same value quoted and not", cookies: []string{"sessionid=" + b, `sessionid="` + b + `"`}, want: b},
		{name: "duplicate cookie different values", cookies: []string{"sessionid=" + a, "sessionid=" + b}, wantErr: httpapi.ErrMalformed},
		{name: "duplicate cookie in one element", cookies: []string{"sessionid=" + a + "; sessionid=" + b}, wantErr: httpapi.ErrMalformed},
		{name: "duplicate cookie one empty", cookies: []string{"sessionid=", "sessionid=" + b}, wantErr: httpapi.ErrMalformed},
		{name: "empty cookie value", cookies: []string{"sessionid="}, wantErr: httpapi.ErrMalformed},
		{name: "quotes only", cookies: []string{`sessionid=""`}, wantErr: httpapi.ErrMalformed},
		{name: "half-quoted cookie", cookies: []string{`sessionid="` + b}, wantErr: httpapi.ErrMalformed},
		{name: "junk cookie value", cookies: []string{"sessionid=not-a-session"}, wantErr: httpapi.ErrMalformed},
		{name: "cookie name case matters", cookies: []string{"SessionID=" + b}, wantErr: httpapi.ErrNoCredentials},
		{name: "prefixed cookie name", cookies: []string{"xsessionid=" + b, "sessionidx=" + b}, wantErr: httpapi.ErrNoCredentials},
		{name: "cookie without value part", cookies: []string{"sessionid", "flag"}, wantErr: httpapi.ErrNoCredentials},
		{name: "empty cookie elements", cookies: []string{"", ";", " ; ; "}, wantErr: httpapi.ErrNoCredentials},
		{name: "huge cookie value", cookies: []string{"sessionid=" + strings.Repeat("A", 1<<20)}, wantErr: httpapi.ErrMalformed},
		{name: "non-UTF-8 cookie value", cookies: []string{"sessionid=\xff\xfe" + b[2:]}, wantErr: httpapi.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httpapi.SessionID(tt.headers, tt.cookies)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if got != "" {
					t.Fatalf("returned an id %q with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzSessionID(f *testing.F) {
	id := newID(f)
	seeds := []struct{ auth, cookie1, cookie2 string }{
		{"Bearer " + id, "", ""},
		{"bearer " + id, "sessionid=" + id, ""},
		{"Bearer", "", ""},
		{"Bearer ", "sessionid=" + id, ""},
		{"Basic Zm9vOmJhcg==", "sessionid=" + id, ""},
		{"", "sessionid=" + id, "sessionid=" + id},
		{"", "sessionid=" + id, "sessionid=" + id[:42] + "A"},
		{"", `sessionid="` + id + `"`, ""},
		{"", `sessionid="`, `"`},
		{"", "a=b; sessionid=" + id + "; c=d", ""},
		{"", "sessionid=\xff\xfe\xfd", ""},
		{"Bearer \xff" + id[1:], "", ""},
		{"Bearer " + strings.Repeat("x", 1<<16), "sessionid=" + strings.Repeat("y", 1<<16), ""},
		{"", ";;;==;=;sessionid==" + id, ""},
	}
	for _, s := range seeds {
		f.Add(s.auth, s.cookie1, s.cookie2)
	}
	f.Fuzz(func(t *testing.T, auth, cookie1, cookie2 string) {
		headers := map[string]string{"authorization": auth}
		got, err := httpapi.SessionID(headers, []string{cookie1, cookie2})
		if err != nil {
			if got != "" {
				t.Fatalf("id %q returned with error %v", got, err)
			}
			if !errors.Is(err, httpapi.ErrNoCredentials) && !errors.Is(err, httpapi.ErrMalformed) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if !session.ValidID(got) {
			t.Fatalf("returned id %q does not pass ValidID", got)
		}
		if !strings.Contains(auth, got) && !strings.Contains(cookie1, got) && !strings.Contains(cookie2, got) {
			t.Fatalf("returned id %q comes from no carrier", got)
		}
	})
}

// TestFreshIDsAreAccepted guards the contract between session.NewID and the
// carrier parser: every id login hands out must be accepted back.
func TestFreshIDsAreAccepted(t *testing.T) {
	for i := 0; i < 500; i++ {
		id := newID(t)
		if got, err := httpapi.SessionID(map[string]string{"authorization": "Bearer " + id}, nil); err != nil || got != id {
			t.Fatalf("fresh id %q rejected: %v", id, err)
		}
		if got, err := httpapi.SessionID(nil, []string{"sessionid=" + id}); err != nil || got != id {
			t.Fatalf("fresh id %q rejected from cookie: %v", id, err)
		}
	}
}
