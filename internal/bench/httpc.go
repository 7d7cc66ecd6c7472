package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/stack"
)

// newClient returns a keep-alive HTTP client for the local stack; conns is
// the number of connections it may keep open to one host.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     60 * time.Second,
		},
	}
}

// do sends one request and returns the status and the body (read fully, so
// the connection is reused).
func do(ctx context.Context, c *http.Client, method, url string, hdr map[string]string, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, b, err
	}
	return resp.StatusCode, b, nil
}

// bearer returns the Authorization header for sid.
func bearer(sid string) map[string]string { return map[string]string{"Authorization": "Bearer " + sid} }

// loginResult is the part of a POST /login answer the benchmark uses.
type loginResult struct {
	SessionID string `json:"session_id"`
	OpenID    string `json:"openid"`
}

// issueCode is what wx.login() does: a fresh code for openid ("" = a new
// user) from the stack's WeChat emulator, in process.
func issueCode(st *stack.Stack, openid string) (string, error) {
	code, err := st.Emulator.IssueCode(openid, "")
	if err != nil {
		return "", fmt.Errorf("bench: issue a WeChat code: %w", err)
	}
	return code, nil
}

// postLogin sends POST /login with code and checks for 200.
func postLogin(ctx context.Context, c *http.Client, st *stack.Stack, code string) (loginResult, error) {
	status, body, err := do(ctx, c, http.MethodPost, st.APIURL+"/login", nil, `{"code":"`+code+`"}`)
	if err != nil {
		return loginResult{}, fmt.Errorf("bench: POST /login: %w", err)
	}
	if status != http.StatusOK {
		return loginResult{}, fmt.Errorf("bench: POST /login: status %d: %s", status, truncate(string(body), 300))
	}
	var r loginResult
	if err := json.Unmarshal(body, &r); err != nil || r.SessionID == "" {
		return loginResult{}, fmt.Errorf("bench: POST /login: unexpected body %s", truncate(string(body), 300))
	}
	return r, nil
}

// login issues a code for openid and logs in with it.
func login(ctx context.Context, c *http.Client, st *stack.Stack, openid string) (loginResult, error) {
	code, err := issueCode(st, openid)
	if err != nil {
		return loginResult{}, err
	}
	return postLogin(ctx, c, st, code)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
