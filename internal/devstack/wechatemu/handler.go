package wechatemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wxsession/wxsession/session"
)

// WeChat errcodes the emulator answers by itself.
const (
	codeSystemError      = -1
	codeInvalidGrantType = 40002
	codeInvalidAppID     = 40013
	codeInvalidCode      = 40029
	codeInvalidSecret    = 40125
	codeCodeUsed         = 40163
	codeUserBlocked      = 40226
	codeAppIDMissing     = 41002
	codeSecretMissing    = 41004
	codeCodeMissing      = 41008
	codeRateLimited      = 45011
)

// errmsgs are WeChat's texts (a " rid: ..." suffix is appended).
var errmsgs = map[int]string{
	codeSystemError:      "system error",
	codeInvalidGrantType: "invalid grant_type",
	codeInvalidAppID:     "invalid appid",
	codeInvalidCode:      "invalid code",
	codeInvalidSecret:    "invalid appsecret",
	codeCodeUsed:         "code been used",
	codeUserBlocked:      "high risk user, login blocked",
	codeAppIDMissing:     "appid missing",
	codeSecretMissing:    "appsecret missing",
	codeCodeMissing:      "missing code",
	codeRateLimited:      "api minute-quota reach limit  mustslower  retry next minute",
}

const maxRequestBody = 64 << 10

// ServeHTTP routes the emulator's endpoints; anything else is a 404 JSON.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	type route struct {
		method string
		h      func(http.ResponseWriter, *http.Request)
	}
	var routes []route
	switch r.URL.Path {
	case "/sns/jscode2session":
		routes = []route{{http.MethodGet, e.serveJSCode2Session}}
	case "/test/codes":
		routes = []route{{http.MethodPost, e.serveCodes}}
	case "/test/faults":
		routes = []route{{http.MethodPost, e.serveSetFaults}, {http.MethodDelete, e.serveClearFaults}}
	case "/test/stats":
		routes = []route{{http.MethodGet, e.serveStats}}
	case "/cgi-bin/stable_token":
		routes = []route{{http.MethodPost, e.serveStableToken}}
	case "/wxa/business/getuserphonenumber":
		routes = []route{{http.MethodPost, e.serveGetUserPhoneNumber}}
	case "/wxa/checksession":
		routes = []route{{http.MethodGet, e.serveCheckSession}}
	case "/wxa/resetusersessionkey":
		routes = []route{{http.MethodGet, e.serveResetUserSessionKey}}
	case "/wxa/getwxacodeunlimit":
		routes = []route{{http.MethodPost, e.serveGetWXACodeUnlimit}}
	case "/test/phone-codes":
		routes = []route{{http.MethodPost, e.servePhoneCodes}}
	case "/test/encrypted-data":
		routes = []route{{http.MethodPost, e.serveEncryptedData}}
	case "/test/tokens/invalidate":
		routes = []route{{http.MethodPost, e.serveInvalidateTokens}}
	case "/test/health":
		routes = []route{{http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}}}
	default:
		writeError(w, http.StatusNotFound, "not_found", "no route "+r.URL.Path)
		return
	}
	allow := make([]string, 0, len(routes))
	for _, rt := range routes {
		if r.Method == rt.method || (r.Method == http.MethodHead && rt.method == http.MethodGet) {
			rt.h(w, r)
			return
		}
		allow = append(allow, rt.method)
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" not allowed on "+r.URL.Path)
}

// serveJSCode2Session answers like WeChat's /sns/jscode2session.
func (e *Emulator) serveJSCode2Session(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if e.serveFault(w, r, APIJSCode2Session) {
		return
	}

	q := r.URL.Query()
	errcode := 0
	switch {
	case q.Get("appid") == "":
		errcode = codeAppIDMissing
	case !e.serves(q.Get("appid")):
		errcode = codeInvalidAppID
	case q.Get("secret") == "":
		errcode = codeSecretMissing
	case q.Get("secret") != e.secret:
		errcode = codeInvalidSecret
	case q.Has("grant_type") && q.Get("grant_type") != "authorization_code":
		errcode = codeInvalidGrantType
	case q.Get("js_code") == "":
		errcode = codeCodeMissing
	}
	var out outcome
	if errcode == 0 {
		var err error
		if out, err = e.exchange(q.Get("appid"), q.Get("js_code")); err != nil {
			out.errcode = codeSystemError
		}
		errcode = out.errcode
	}
	e.count(errcode, false)
	if errcode != 0 {
		e.log.LogAttrs(r.Context(), slog.LevelInfo, "wechatemu: jscode2session refused",
			slog.Int("errcode", errcode), slog.Int64("duration_ms", time.Since(start).Milliseconds()))
		writeWeChat(w, http.StatusOK, e.errBody(errcode))
		return
	}
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "wechatemu: jscode2session ok",
		slog.String("openid", session.MaskOpenID(out.openid)), slog.Bool("unionid", out.unionid != ""),
		slog.Int64("duration_ms", time.Since(start).Milliseconds()))
	type success struct {
		SessionKey string `json:"session_key"`
		OpenID     string `json:"openid"`
		UnionID    string `json:"unionid,omitempty"`
	}
	body, _ := json.Marshal(success{SessionKey: out.key, OpenID: out.openid, UnionID: out.unionid})
	writeWeChat(w, http.StatusOK, body)
}

// serveFault counts a request of api and, when a fault of that API is
// pending, applies it: true means the request was answered (or abandoned)
// and the caller must not serve it.
func (e *Emulator) serveFault(w http.ResponseWriter, r *http.Request, api string) bool {
	start := time.Now()
	f, ok := e.takeFault(api)
	if !ok {
		return false
	}
	if f.DelayMS > 0 && !sleep(r.Context(), time.Duration(f.DelayMS)*time.Millisecond) {
		e.countAbandoned()
		e.log.LogAttrs(r.Context(), slog.LevelInfo, "wechatemu: caller left during fault delay",
			slog.String("api", api), slog.Int("delay_ms", f.DelayMS))
		return true
	}
	if !f.replaces() {
		return false
	}
	errcode := e.writeFault(w, f)
	e.count(errcode, true)
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "wechatemu: fault",
		slog.String("api", api), slog.Int("errcode", errcode), slog.Int("status", max(f.Status, http.StatusOK)),
		slog.Bool("raw_body", f.Body != nil), slog.Int64("duration_ms", time.Since(start).Milliseconds()))
	return true
}

// writeFault answers a fault and returns the errcode it carried (0 if none).
func (e *Emulator) writeFault(w http.ResponseWriter, f Fault) int {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	errcode := 0
	if f.Errcode != nil && f.Body == nil {
		errcode = *f.Errcode
	}
	var body []byte
	switch {
	case f.Body != nil:
		body = []byte(*f.Body)
	case f.Errcode != nil:
		body = e.errBody(*f.Errcode)
	case status >= 400:
		text := fmt.Sprintf("%d %s", status, http.StatusText(status))
		body = []byte("<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text +
			"</h1></center>\r\n</body>\r\n</html>\r\n")
	}
	writeWeChat(w, status, body)
	return errcode
}

// errBody renders {"errcode":N,"errmsg":"<text>, rid: <id>"}.
func (e *Emulator) errBody(errcode int) []byte {
	msg, ok := errmsgs[errcode]
	if !ok {
		msg = fmt.Sprintf("emulated errcode %d", errcode)
	}
	body, _ := json.Marshal(struct {
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
	}{errcode, msg + ", rid: " + randomRID(e.now())})
	return body
}

// writeWeChat writes a jscode2session answer: text/plain, as WeChat does.
func writeWeChat(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serveCodes is POST /test/codes: what wx.login() would give the
// mini-program.
func (e *Emulator) serveCodes(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid"`
		AppID   string `json:"appid"`
	}
	if err := decodeBody(r, &in, true); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	is, err := e.IssueFor(in.AppID, in.OpenID, in.UnionID)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, is)
}

// serveSetFaults is POST /test/faults: 200 {"armed": the fault, with its
// api filled in}.
func (e *Emulator) serveSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeBody(r, &f, false); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err := e.SetFaults(f); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if f.API == "" {
		f.API = APIJSCode2Session
	}
	// Answer what was armed, so `curl -s` shows it (docs/design.md §6).
	writeJSON(w, http.StatusOK, struct {
		Armed Fault `json:"armed"`
	}{f})
}

// serveClearFaults is DELETE /test/faults.
func (e *Emulator) serveClearFaults(w http.ResponseWriter, _ *http.Request) {
	e.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

// serveStats is GET /test/stats.
func (e *Emulator) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}

// decodeBody reads one JSON object (unknown fields refused); an empty body is
// allowed when emptyOK.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(data) > maxRequestBody {
		return errors.New("body too large")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if emptyOK {
			return nil
		}
		return errors.New("body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body must be a JSON object: %w", err)
	}
	if dec.More() {
		return errors.New("body must hold one JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal","message":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
