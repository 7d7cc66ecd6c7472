package wechat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var decodeSeeds = []string{
	`{"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE"}`,
	`{"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`,
	`{"errcode":0,"errmsg":"ok","session_key":"a2V5a2V5a2V5a2V5a2V5aw==","openid":"o"}`,
	`{"errcode":40029,"errmsg":"invalid code, rid: 6540a1f2-1b2c3d4e-5f6a7b8c"}`,
	`{"errcode":-1,"errmsg":"system error"}`,
	`{"errcode":"45011","errmsg":"api minute-quota reach limit"}`,
	`{"errcode":1.5}`,
	`{"errcode":null,"openid":"o","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
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
	// Strict decoding (docs/design.md §10), from index 18 on.
	`{"OPENID":"oX","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"openid":"oA","openid":"oB","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5aw==","rid":"1","rid":"2"}`,
	`{"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5aw==","rid":"r","extra":{"a":[1,2]}}`,
	`{"openid":"oA","session_key":"k"}`,
	`{"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5a2V5"}`,
	`{"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5aw"}`,
	`{"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5a-=="}`,
	`{"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5ax=="}`,
	`{"openid":"app#o","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"openid":"o\u00e9","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"openid":"oA","unionid":"u/1","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"openid":"` + strings.Repeat("o", 129) + `","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"Errcode":40029,"errmsg":"invalid code"}`,
	`{"errcode":40029,"errcode":0,"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"open\u0069d":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}`,
	`{"openid":"oA","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="}{}`,
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
		{decodeSeeds[18], "", "", 0, ErrUnavailable}, // key in another case
		{decodeSeeds[19], "", "", 0, ErrUnavailable}, // duplicate openid
		{decodeSeeds[20], "", "", 0, ErrUnavailable}, // duplicate unknown key
		{decodeSeeds[21], "oA", "", 0, nil},          // unknown keys are skipped
		{decodeSeeds[22], "", "", 0, ErrUnavailable}, // session_key not base64 of 16 bytes
		{decodeSeeds[23], "", "", 0, ErrUnavailable}, // 18 bytes
		{decodeSeeds[24], "", "", 0, ErrUnavailable}, // unpadded
		{decodeSeeds[25], "", "", 0, ErrUnavailable}, // URL alphabet
		{decodeSeeds[26], "", "", 0, ErrUnavailable}, // non-canonical last character
		{decodeSeeds[27], "", "", 0, ErrUnavailable}, // '#' in openid
		{decodeSeeds[28], "", "", 0, ErrUnavailable}, // non-ASCII openid
		{decodeSeeds[29], "", "", 0, ErrUnavailable}, // '/' in unionid
		{decodeSeeds[30], "", "", 0, ErrUnavailable}, // openid too long
		{decodeSeeds[31], "", "", 0, ErrUnavailable}, // errcode in another case
		{decodeSeeds[32], "", "", 0, ErrUnavailable}, // duplicate errcode
		{decodeSeeds[33], "oA", "", 0, nil},          // an escaped key is the same name
		{decodeSeeds[34], "", "", 0, ErrUnavailable}, // a second value
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
			if !validID(id.OpenID) || !validSessionKey(id.SessionKey) || id.UnionID != "" && !validID(id.UnionID) {
				t.Fatalf("no error but identity %+v", id)
			}
			// Strictness: what encoding/json reads from an accepted body
			// is the same identity (no key it would fold or override).
			var loose struct {
				OpenID     string `json:"openid"`
				SessionKey string `json:"session_key"`
				UnionID    string `json:"unionid"`
			}
			if err := json.Unmarshal(body, &loose); err != nil || loose.OpenID != id.OpenID ||
				loose.SessionKey != id.SessionKey || loose.UnionID != id.UnionID {
				t.Fatalf("accepted %q as %+v; encoding/json reads %+v (%v)", body, id, loose, err)
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
