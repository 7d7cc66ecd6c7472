package wechat

import (
	"errors"
	"testing"
	"time"
)

var decodeSeeds = []string{
	`{"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE"}`,
	`{"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`,
	`{"errcode":0,"errmsg":"ok","session_key":"k","openid":"o"}`,
	`{"errcode":40029,"errmsg":"invalid code, rid: 6540a1f2-1b2c3d4e-5f6a7b8c"}`,
	`{"errcode":-1,"errmsg":"system error"}`,
	`{"errcode":"45011","errmsg":"api minute-quota reach limit"}`,
	`{"errcode":1.5}`,
	`{"errcode":null,"openid":"o","session_key":"k"}`,
	`{"openid":"o"}`,
	`{"openid":5,"session_key":"k"}`,
	`{"openid":"o o","session_key":"k"}`,
	`{}`,
	`null`,
	`[]`,
	``,
	`<html>502 Bad Gateway</html>`,
	`{"openid":"o","session_key":"k"} trailing`,
	"\xff\xfe{",
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		body    string
		openid  string
		unionid string
		errcode int   // *APIError code
		class   error // sentinel the error matches; nil = success
	}{
		{decodeSeeds[0], "oGZUI0egBJY1zhBYw2KhdUfwVJJE", "", 0, nil},
		{decodeSeeds[1], "oGZUI0egBJY1zhBYw2KhdUfwVJJE", "o6_bmasdasdsad6_2sgVt7hMZOPfL", 0, nil},
		{decodeSeeds[2], "o", "", 0, nil},
		{decodeSeeds[3], "", "", 40029, ErrInvalidCode},
		{decodeSeeds[4], "", "", -1, ErrUnavailable},
		{decodeSeeds[5], "", "", 45011, ErrRateLimited},
		{decodeSeeds[6], "", "", 0, ErrUnavailable},
		{decodeSeeds[7], "o", "", 0, nil},
		{decodeSeeds[8], "", "", 0, ErrUnavailable},
		{decodeSeeds[9], "", "", 0, ErrUnavailable},
		{decodeSeeds[10], "", "", 0, ErrUnavailable},
		{decodeSeeds[11], "", "", 0, ErrUnavailable},
		{decodeSeeds[12], "", "", 0, ErrUnavailable},
		{decodeSeeds[13], "", "", 0, ErrUnavailable},
		{decodeSeeds[14], "", "", 0, ErrUnavailable},
		{decodeSeeds[15], "", "", 0, ErrUnavailable},
		{decodeSeeds[16], "", "", 0, ErrUnavailable},
		{decodeSeeds[17], "", "", 0, ErrUnavailable},
	}
	for _, tt := range tests {
		id, err := decodeResponse([]byte(tt.body))
		if tt.class == nil {
			if err != nil || id.OpenID != tt.openid || id.UnionID != tt.unionid || id.SessionKey == "" {
				t.Errorf("decode(%q) = %+v, %v", tt.body, id, err)
			}
			continue
		}
		if !errors.Is(err, tt.class) {
			t.Errorf("decode(%q) error %v, want %v", tt.body, err, tt.class)
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) != (tt.errcode != 0) || tt.errcode != 0 && apiErr.Code != tt.errcode {
			t.Errorf("decode(%q) error %#v, want errcode %d", tt.body, err, tt.errcode)
		}
		if tt.errcode == 0 && !errors.Is(err, errMalformed) {
			t.Errorf("decode(%q) error %v is not classified malformed (retryable)", tt.body, err)
		}
	}
}

// FuzzDecodeResponse: decoding never panics and yields either an identity
// with openid and session_key, or an error (never both, never neither), and
// an error never quotes the session_key it may have seen.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := decodeResponse(body)
		if err == nil {
			if id.OpenID == "" || id.SessionKey == "" {
				t.Fatalf("no error but identity %+v", id)
			}
			return
		}
		if id.OpenID != "" || id.SessionKey != "" || id.UnionID != "" {
			t.Fatalf("error %v together with identity %+v", err, id)
		}
		if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrInvalidCode) && !errors.Is(err, ErrCodeUsed) &&
			!errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrUserBlocked) && !errors.Is(err, ErrMisconfigured) {
			t.Fatalf("error %v matches no sentinel", err)
		}
	})
}

func TestBackoffBounds(t *testing.T) {
	for n := 1; n < 100; n++ {
		for i := 0; i < 50; i++ {
			if d := retryBackoff.Delay(n); d < 0 || d > 200*time.Millisecond || n == 1 && d > 100*time.Millisecond {
				t.Fatalf("retryBackoff.Delay(%d) = %v", n, d)
			}
		}
	}
	if DefaultMaxAttempts*DefaultAttemptTimeout+2*retryBackoff.Cap > 7*time.Second {
		t.Fatal("default worst case exceeds 7s")
	}
}
