// Package wxapi is the WeChat server-API client for business functions: it
// calls any mini-program server API (https://api.weixin.qq.com/...) with the
// deployment's shared access_token, so a function never fetches, caches or
// refreshes a token itself.
//
//	wx, err := wxapi.FromEnv(ctx, os.Getenv, logger) // once per Lambda container
//	var out struct{ Errcode int `json:"errcode"`; ... }
//	err = wx.PostJSON(ctx, "/wxa/msg_sec_check", map[string]any{...}, &out)
//	png, err := wx.PostBytes(ctx, "/wxa/getwxacodeunlimit", map[string]any{"scene": "a=1"})
//
// The token comes from the tokens table (one item per appid, refreshed ahead
// of expiry by one instance at a time); a call WeChat answers with 40001,
// 42001 or 40014 is retried once with a token from one forced refresh shared
// by all instances. Retries, timeouts and failover to api2.weixin.qq.com are
// those of the login (errcode -1, HTTP 5xx and network errors are retried,
// at most 3 attempts of 2 s). The token is never in an error or a log line.
//
// Errors match (errors.Is) one of ErrUnavailable, ErrRateLimited,
// ErrMisconfigured, ErrTokenRejected or ErrInvalidCode; an errcode answer is
// also an *Error (errors.As) carrying WeChat's errcode and errmsg.
// Reference: https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/
// (docs/design.md §7).
package wxapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/internal/wxtoken"
)

// Error is an errcode answer from WeChat: Code is the errcode, Message the
// errmsg (with any echo of a secret or token removed).
type Error = wechat.APIError

// Error classes (match with errors.Is).
var (
	// ErrUnavailable: WeChat gave no usable answer after the retries
	// (errcode -1, HTTP 5xx, timeouts, network errors, malformed answers,
	// and errcodes this package does not classify), or no token could be
	// had. Answer 503 and let the client retry.
	ErrUnavailable = wechat.ErrUnavailable
	// ErrRateLimited: errcode 45011 (minute quota) or 45009 (daily quota).
	ErrRateLimited = wechat.ErrRateLimited
	// ErrMisconfigured: WeChat refuses the app's credentials, or the
	// caller's IP address is not in the API IP whitelist (40164, 61004).
	ErrMisconfigured = wechat.ErrMisconfigured
	// ErrTokenRejected: the token was still refused after the one forced
	// refresh.
	ErrTokenRejected = wechat.ErrTokenRejected
	// ErrInvalidCode: errcode 40029 (a code that is invalid, expired or
	// used).
	ErrInvalidCode = wechat.ErrInvalidCode
)

// TokenSource hands out the app's access_token (implemented by the
// DynamoDB-shared source FromEnv builds).
type TokenSource interface {
	// Token returns a valid token.
	Token(ctx context.Context) (string, error)
	// Invalidate returns a token other than rejected (which WeChat just
	// refused), forcing at most one refresh for every caller.
	Invalidate(ctx context.Context, rejected string) (string, error)
}

// Config configures a Client built with New.
type Config struct {
	// Tokens hands out the access_token. Required.
	Tokens TokenSource
	// BaseURLs are WeChat's hosts, tried in order; default
	// https://api.weixin.qq.com then https://api2.weixin.qq.com.
	BaseURLs []string
	// HTTPClient, Logger: see the login's client; defaults are fine.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Client calls WeChat server APIs. It is safe for concurrent use; build one
// per process.
type Client struct {
	t      *wechat.Transport
	tokens TokenSource
}

// New builds a Client from cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("wxapi: Config.Tokens is nil")
	}
	t, err := wechat.NewTransport(wechat.TransportConfig{BaseURLs: cfg.BaseURLs, HTTPClient: cfg.HTTPClient, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Client{t: t, tokens: cfg.Tokens}, nil
}

// FromEnv builds the Client of a Lambda function from its environment:
// WECHAT_APPID, WECHAT_API_BASE, TOKENS_TABLE, the app secret
// (WECHAT_SECRET, WECHAT_SECRET_PARAMETER or WECHAT_SECRET_ARN: whoever
// may refresh the token needs it) and DYNAMODB_ENDPOINT for local runs.
// The function needs dynamodb:GetItem and dynamodb:UpdateItem on the tokens
// table and read access to the secret (see template.yaml's WechatFunction).
// Call it once, at cold start. In a deployment serving several
// mini-programs (WECHAT_APPS) it is the default app's client; see
// [AppsFromEnv].
func FromEnv(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*Client, error) {
	clients, def, err := AppsFromEnv(ctx, getenv, logger)
	if err != nil {
		return nil, err
	}
	return clients[def], nil
}

// AppsFromEnv is [FromEnv] for a deployment serving several mini-programs
// (WECHAT_APPS, docs/design.md §7.9): one Client per appid, each with its
// app's token, and the default appid. A business function picks the
// client by the caller's app, session.Principal.AppID. The function needs
// read access to every app's secret parameter.
func AppsFromEnv(ctx context.Context, getenv func(string) string, logger *slog.Logger) (map[string]*Client, string, error) {
	db, awsCfg, err := dynamoclient.New(ctx, getenv)
	if err != nil {
		return nil, "", err
	}
	srcs, cfg, err := wxtoken.FromEnv(ctx, getenv, db, awsCfg, logger)
	if err != nil {
		return nil, "", err
	}
	out := make(map[string]*Client, len(srcs))
	for appid, src := range srcs {
		c, err := New(Config{Tokens: src, BaseURLs: cfg.APIBase, Logger: logger})
		if err != nil {
			return nil, "", err
		}
		out[appid] = c
	}
	return out, cfg.AppID, nil
}

// Call is one API call for Do.
type Call struct {
	// Method is GET or POST (default POST when Body is set, else GET).
	Method string
	// Path is the API's path, e.g. "/wxa/business/getuserphonenumber".
	Path string
	// Query holds query parameters besides access_token.
	Query url.Values
	// Body is marshalled to JSON and posted; nil for none.
	Body any
	// Bytes accepts a non-JSON answer (an image) of up to 8 MiB.
	Bytes bool
	// Redact lists values (codes, keys) to keep out of errors and logs.
	Redact []string
	// ConsumedErrcodes: errcodes that mean "this code was already used";
	// after an attempt that may have used it they read as ErrUnavailable.
	ConsumedErrcodes []int
}

// Bytes is a non-JSON answer.
type Bytes struct {
	// ContentType is WeChat's Content-Type, e.g. "image/png".
	ContentType string
	// Data is the body.
	Data []byte
}

// Do sends c with the shared token and returns the answer's body (JSON with
// errcode 0 or absent, or bytes when c.Bytes).
func (cl *Client) Do(ctx context.Context, c Call) (Bytes, error) {
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "?#") {
		return Bytes{}, fmt.Errorf("wxapi: path %q must start with / and hold no query", c.Path)
	}
	var body []byte
	if c.Body != nil {
		var err error
		if body, err = json.Marshal(c.Body); err != nil {
			return Bytes{}, fmt.Errorf("wxapi: %s: marshal body: %w", c.Path, err)
		}
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	api := strings.TrimPrefix(c.Path[strings.LastIndex(c.Path, "/"):], "/")
	tok, err := cl.tokens.Token(ctx)
	if err != nil {
		return Bytes{}, fmt.Errorf("wxapi: %s: no access_token: %w: %w", api, ErrUnavailable, err)
	}
	for retried := false; ; retried = true {
		q := url.Values{}
		for k, v := range c.Query {
			q[k] = v
		}
		q.Set("access_token", tok)
		req := wechat.Request{API: api, Method: method, Path: c.Path, Query: q, Body: body,
			Redact: c.Redact, ConsumedErrcodes: c.ConsumedErrcodes}
		if c.Bytes {
			req.MaxBody = wechat.MaxImageBytes
		}
		resp, err := cl.t.Do(ctx, req)
		if err == nil {
			return Bytes{ContentType: resp.ContentType, Data: resp.Body}, nil
		}
		if retried || !errors.Is(err, wechat.ErrTokenRejected) {
			return Bytes{}, err
		}
		if tok, err = cl.tokens.Invalidate(ctx, tok); err != nil {
			return Bytes{}, fmt.Errorf("wxapi: %s: access_token rejected and not renewed: %w: %w", api, ErrUnavailable, err)
		}
	}
}

// PostJSON posts in as JSON to path and decodes the answer into out (which
// may be nil). An answer with a non-zero errcode is an error (*Error).
func (cl *Client) PostJSON(ctx context.Context, path string, in, out any) error {
	b, err := cl.Do(ctx, Call{Method: http.MethodPost, Path: path, Body: in})
	if err != nil {
		return err
	}
	return decode(path, b, out)
}

// GetJSON calls path with query (besides access_token) and decodes the
// answer into out (which may be nil).
func (cl *Client) GetJSON(ctx context.Context, path string, query url.Values, out any) error {
	b, err := cl.Do(ctx, Call{Method: http.MethodGet, Path: path, Query: query})
	if err != nil {
		return err
	}
	return decode(path, b, out)
}

// PostBytes posts in as JSON to path and returns a non-JSON answer, such as
// the PNG of getwxacodeunlimit. An errcode answer is an error (*Error).
func (cl *Client) PostBytes(ctx context.Context, path string, in any) (Bytes, error) {
	return cl.Do(ctx, Call{Method: http.MethodPost, Path: path, Body: in, Bytes: true})
}

func decode(path string, b Bytes, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b.Data, out); err != nil {
		return fmt.Errorf("wxapi: %s: answer does not fit %T: %w", path, out, err)
	}
	return nil
}
