package wxuser

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

const testKey = "MDEyMzQ1Njc4OWFiY2RlZg==" // "0123456789abcdef"

// seal encrypts plain like WeChat (AES-128-CBC, PKCS#7 unless pad is set).
func seal(t testing.TB, key string, plain []byte, pad []byte) (string, string) {
	t.Helper()
	k, _ := base64.StdEncoding.DecodeString(key)
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	if pad == nil {
		p := aes.BlockSize - len(plain)%aes.BlockSize
		pad = bytes.Repeat([]byte{byte(p)}, p)
	}
	plain = append(append([]byte(nil), plain...), pad...)
	iv := []byte("fedcba9876543210")
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out), base64.StdEncoding.EncodeToString(iv)
}

func TestDecrypt(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	good := []byte(`{"phoneNumber":"13800138000","watermark":{"appid":"wxapp","timestamp":1700000000}}`)
	tests := []struct {
		name    string
		ed, iv  string
		key     string
		wantErr error
	}{
		{name: "ok", key: testKey},
		{name: "wrong key", key: "ZmVkY2JhOTg3NjU0MzIxMA==", wantErr: ErrStaleKey},
		{name: "key not base64", key: "!!", wantErr: ErrStaleKey},
		{name: "key 8 bytes", key: "MDEyMzQ1Njc=", wantErr: ErrStaleKey},
		{name: "not base64", ed: "!!!!", key: testKey, wantErr: ErrMalformed},
		{name: "unpadded base64", ed: "AAAAAAAAAAAAAAAAAAAAAA", key: testKey, wantErr: ErrMalformed},
		{name: "iv short", iv: "AAAAAAAAAAA=", key: testKey, wantErr: ErrMalformed},
		{name: "partial block", ed: base64.StdEncoding.EncodeToString(make([]byte, 20)), key: testKey, wantErr: ErrMalformed},
		{name: "empty", ed: "", key: testKey, wantErr: ErrMalformed},
		{name: "too long", ed: strings.Repeat("A", MaxEncryptedDataLen+4), key: testKey, wantErr: ErrMalformed},
	}
	okED, okIV := seal(t, testKey, good, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ed, iv := okED, okIV
			if tt.ed != "" || tt.name == "empty" {
				ed = tt.ed
			}
			if tt.iv != "" {
				iv = tt.iv
			}
			ct, err := ParseCiphertext(ed, iv)
			if err == nil {
				var obj map[string]json.RawMessage
				obj, err = ct.Open(tt.key)
				if err == nil {
					_, err = CheckWatermark(obj, "wxapp", now, 5*time.Minute)
				}
			}
			if !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestStrictPadding(t *testing.T) {
	plain := []byte(`{"a":1}`) // 7 bytes: 9 bytes of padding
	tests := []struct {
		name string
		pad  []byte
		ok   bool
	}{
		{"pkcs7", bytes.Repeat([]byte{9}, 9), true},
		{"zero byte", append(bytes.Repeat([]byte{9}, 8), 0), false},
		{"17", append(bytes.Repeat([]byte{9}, 8), 17), false},
		{"inconsistent", append([]byte{8}, bytes.Repeat([]byte{9}, 8)...), false},
		{"short claim ok", append(bytes.Repeat([]byte{' '}, 8), 1), true}, // JSON with trailing spaces, pad 1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ed, iv := seal(t, testKey, plain, tt.pad)
			ct, err := ParseCiphertext(ed, iv)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ct.Open(testKey)
			if (err == nil) != tt.ok {
				t.Errorf("Open: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrStaleKey) {
				t.Errorf("err %v is not ErrStaleKey", err)
			}
		})
	}
}

func TestCheckWatermark(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		obj  string
		ok   bool
	}{
		{"ok", `{"x":1,"watermark":{"appid":"wxapp","timestamp":1700000000}}`, true},
		{"4 minutes old", `{"watermark":{"appid":"wxapp","timestamp":1699999760}}`, true},
		{"6 minutes old", `{"watermark":{"appid":"wxapp","timestamp":1699999640}}`, false},
		{"2 minutes ahead", `{"watermark":{"appid":"wxapp","timestamp":1700000120}}`, false},
		{"other appid", `{"watermark":{"appid":"wxother","timestamp":1700000000}}`, false},
		{"no watermark", `{"x":1}`, false},
		{"no timestamp", `{"watermark":{"appid":"wxapp"}}`, false},
		{"no appid", `{"watermark":{"timestamp":1700000000}}`, false},
		{"timestamp string", `{"watermark":{"appid":"wxapp","timestamp":"1700000000"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.obj), &obj); err != nil {
				t.Fatal(err)
			}
			out, err := CheckWatermark(obj, "wxapp", now, 5*time.Minute)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && out["watermark"] != nil {
				t.Errorf("watermark kept")
			}
		})
	}
}

// FuzzDecrypt: any input ends in one of the three typed errors or a JSON
// object, never a panic; malformed shapes never reach the key.
func FuzzDecrypt(f *testing.F) {
	ed, iv := seal(f, testKey, []byte(`{"watermark":{"appid":"wxapp","timestamp":1700000000}}`), nil)
	f.Add(ed, iv, testKey)
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA==", testKey)
	f.Add("", "", "")
	f.Add("====", "AAAAAAAAAAAAAAAAAAAAAA==", "x")
	f.Fuzz(func(t *testing.T, ed, iv, key string) {
		ct, err := ParseCiphertext(ed, iv)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse: %v", err)
			}
			return
		}
		obj, err := ct.Open(key)
		if err != nil {
			if !errors.Is(err, ErrStaleKey) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		if obj == nil {
			t.Fatal("nil object without error")
		}
		if _, err := CheckWatermark(obj, "wxapp", time.Unix(1_700_000_000, 0), 5*time.Minute); err != nil && !errors.Is(err, ErrWatermark) {
			t.Fatalf("watermark: %v", err)
		}
	})
}

// FuzzPhoneBody: POST /me/phone bodies get a 400/413 or a well-formed
// request, never a panic.
func FuzzPhoneBody(f *testing.F) {
	for _, s := range []string{`{"code":"abc"}`, `{"encryptedData":"x","iv":"y"}`, `{}`, `null`, `[]`, `{"code":"a","iv":"b"}`, `{"code":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := events.APIGatewayV2HTTPRequest{Body: body}
		in, fail := parsePhone(req)
		if fail != nil {
			if fail.StatusCode != http.StatusBadRequest && fail.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", fail.StatusCode)
			}
			return
		}
		switch {
		case in.Code != nil:
			if !validCode(*in.Code) || in.EncryptedData != nil || in.IV != nil {
				t.Fatalf("accepted %q", body)
			}
		case in.EncryptedData == nil || in.IV == nil:
			t.Fatalf("accepted %q without code or encrypted data", body)
		}
	})
}
