package wxuser

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// Errors of Decrypt and CheckWatermark.
var (
	// ErrMalformed: encryptedData or iv is not well-formed (not standard
	// base64, iv not 16 bytes, ciphertext empty, not whole blocks or too
	// long). Known before any key is used: HTTP 400 invalid_request.
	ErrMalformed = errors.New("encryptedData or iv is not well-formed")
	// ErrStaleKey: the session_key does not decrypt the data (bad padding,
	// or a plaintext that is not a JSON object): the mini-program got the
	// data with an older key. HTTP 409 session_key_stale. Padding and JSON
	// failures are one error, so the answer is no padding oracle.
	ErrStaleKey = errors.New("the session_key does not decrypt the data")
	// ErrWatermark: the watermark is missing, names another appid, or its
	// timestamp is too old or in the future. HTTP 422 watermark_mismatch.
	ErrWatermark = errors.New("the watermark does not match")
)

// MaxEncryptedDataLen bounds encryptedData (base64 characters): WeChat's
// largest common payload, wx.getWeRunData's 30 days of steps, is a few KiB.
const MaxEncryptedDataLen = 16 << 10

// FutureSkew is how far in the future a watermark timestamp may be (clock
// differences between WeChat and us).
const FutureSkew = time.Minute

// Ciphertext is well-formed encrypted data, checked before any key is read.
type Ciphertext struct {
	data []byte
	iv   []byte
}

// ParseCiphertext checks the shape of encryptedData and iv (standard base64
// as WeChat sends, padded; iv 16 bytes; ciphertext 1 or more whole AES
// blocks, at most MaxEncryptedDataLen characters). Errors match ErrMalformed.
func ParseCiphertext(encryptedData, iv string) (Ciphertext, error) {
	if len(encryptedData) == 0 || len(encryptedData) > MaxEncryptedDataLen || len(iv) != 24 {
		return Ciphertext{}, ErrMalformed
	}
	data, err := base64.StdEncoding.Strict().DecodeString(encryptedData)
	if err != nil || len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return Ciphertext{}, ErrMalformed
	}
	rawIV, err := base64.StdEncoding.Strict().DecodeString(iv)
	if err != nil || len(rawIV) != aes.BlockSize {
		return Ciphertext{}, ErrMalformed
	}
	return Ciphertext{data: data, iv: rawIV}, nil
}

// Open decrypts c with sessionKey (standard base64 of 16 bytes, as WeChat
// issues it): AES-128-CBC, strict PKCS#7 padding, and the plaintext must be
// a JSON object. Every failure is ErrStaleKey, whatever its cause.
func (c Ciphertext) Open(sessionKey string) (map[string]json.RawMessage, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 16 {
		return nil, ErrStaleKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrStaleKey
	}
	plain := make([]byte, len(c.data))
	cipher.NewCBCDecrypter(block, c.iv).CryptBlocks(plain, c.data)
	n, ok := unpad(plain)
	if !ok {
		return nil, ErrStaleKey
	}
	plain = bytes.TrimSpace(plain[:n])
	var obj map[string]json.RawMessage
	if len(plain) == 0 || plain[0] != '{' || json.Unmarshal(plain, &obj) != nil {
		return nil, ErrStaleKey
	}
	return obj, nil
}

// unpad checks PKCS#7 padding over the whole last block without branching
// on the padding bytes, and returns the length without it.
func unpad(b []byte) (int, bool) {
	p := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, p) & subtle.ConstantTimeLessOrEq(p, aes.BlockSize)
	last := b[len(b)-aes.BlockSize:]
	for i := range aes.BlockSize {
		inPad := subtle.ConstantTimeLessOrEq(aes.BlockSize-p, i) // i is within the last p bytes
		eq := subtle.ConstantTimeByteEq(last[i], byte(p))
		good &= subtle.ConstantTimeSelect(inPad, eq, 1)
	}
	if good != 1 {
		return 0, false
	}
	return len(b) - p, true
}

// CheckWatermark checks obj's watermark {"appid","timestamp"} against appid
// and now: same appid, timestamp not older than maxAge and not more than
// FutureSkew ahead. It returns obj without the watermark. Errors match
// ErrWatermark.
func CheckWatermark(obj map[string]json.RawMessage, appid string, now time.Time, maxAge time.Duration) (map[string]json.RawMessage, error) {
	raw, ok := obj["watermark"]
	if !ok {
		return nil, ErrWatermark
	}
	var wm struct {
		AppID     *string `json:"appid"`
		Timestamp *int64  `json:"timestamp"`
	}
	if json.Unmarshal(raw, &wm) != nil || wm.AppID == nil || wm.Timestamp == nil {
		return nil, ErrWatermark
	}
	ts := time.Unix(*wm.Timestamp, 0)
	if subtle.ConstantTimeCompare([]byte(*wm.AppID), []byte(appid)) != 1 ||
		now.Sub(ts) > maxAge || ts.Sub(now) > FutureSkew {
		return nil, ErrWatermark
	}
	out := make(map[string]json.RawMessage, len(obj)-1)
	for k, v := range obj {
		if k != "watermark" {
			out[k] = v
		}
	}
	return out, nil
}
