package wxapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/internal/wechat"
	"github.com/wxsession/wxsession/wxapi"
)

// emuTokens is a TokenSource straight from the emulator's stable_token,
// counting Invalidate calls (the DynamoDB-shared source is tested in
// internal/wxtoken).
type emuTokens struct {
	wx          *wechat.Client
	mu          sync.Mutex
	invalidated int
	fail        error
}

func (s *emuTokens) Token(ctx context.Context) (string, error) {
	if s.fail != nil {
		return "", s.fail
	}
	tok, _, err := s.wx.StableToken(ctx, false)
	return tok, err
}

func (s *emuTokens) Invalidate(ctx context.Context, rejected string) (string, error) {
	s.mu.Lock()
	s.invalidated++
	s.mu.Unlock()
	tok, _, err := s.wx.StableToken(ctx, true)
	return tok, err
}

func setup(t *testing.T) (*wechatemu.Emulator, *wxapi.Client, *emuTokens, *testutil.Buffer) {
	t.Helper()
	emu := wechatemu.New(wechatemu.Config{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	logs := &testutil.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	wx, err := wechat.New(wechat.Config{AppID: wechatemu.DefaultAppID, Secret: wechatemu.DefaultSecret, BaseURLs: []string{srv.URL}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	tokens := &emuTokens{wx: wx}
	c, err := wxapi.New(wxapi.Config{Tokens: tokens, BaseURLs: []string{srv.URL}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, tok := range emu.Tokens() {
			if strings.Contains(logs.String(), tok) {
				t.Error("an access_token is in the logs")
			}
		}
	})
	return emu, c, tokens, logs
}

func TestCalls(t *testing.T) {
	emu, c, tokens, _ := setup(t)
	ctx := context.Background()
	// Bytes: a PNG.
	b, err := c.PostBytes(ctx, "/wxa/getwxacodeunlimit", map[string]any{"scene": "a=1"})
	if err != nil || b.ContentType != "image/png" || len(b.Data) < 8 || string(b.Data[1:4]) != "PNG" {
		t.Fatalf("PostBytes: %v %q", err, b.ContentType)
	}
	// An errcode is a typed error with WeChat's code.
	err = c.PostJSON(ctx, "/wxa/getwxacodeunlimit", map[string]any{"scene": strings.Repeat("x", 40)}, nil)
	var wxErr *wxapi.Error
	if !errors.As(err, &wxErr) || wxErr.Code != 40097 {
		t.Fatalf("errcode answer: %v", err)
	}
	// A revoked token: one Invalidate, one retry, success.
	emu.InvalidateTokens()
	if _, err := c.PostBytes(ctx, "/wxa/getwxacodeunlimit", map[string]any{"scene": "a=1"}); err != nil {
		t.Fatalf("after invalidation: %v", err)
	}
	if tokens.invalidated != 1 {
		t.Errorf("Invalidate calls = %d, want 1", tokens.invalidated)
	}
	// Rejected again after the retry: no second Invalidate, ErrTokenRejected.
	if err := emu.SetFaults(wechatemu.Fault{API: wechatemu.APIGetWXACodeUnlimit, Errcode: ptr(40001), Count: 2}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PostBytes(ctx, "/wxa/getwxacodeunlimit", map[string]any{"scene": "a=1"})
	if !errors.Is(err, wxapi.ErrTokenRejected) || tokens.invalidated != 2 {
		t.Errorf("rejected twice: %v (Invalidate calls %d, want 2)", err, tokens.invalidated)
	}
	// Retried faults end as ErrUnavailable.
	if err := emu.SetFaults(wechatemu.Fault{API: wechatemu.APIGetWXACodeUnlimit, Status: 502, Count: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostBytes(ctx, "/wxa/getwxacodeunlimit", map[string]any{"scene": "a=1"}); !errors.Is(err, wxapi.ErrUnavailable) {
		t.Errorf("502s: %v", err)
	}
	emu.ClearFaults()
	// No token: ErrUnavailable, no call.
	tokens.fail = errors.New("store down")
	before := emu.Stats().GetWXACodeUnlimit
	if _, err := c.PostBytes(ctx, "/wxa/getwxacodeunlimit", map[string]any{"scene": "a=1"}); !errors.Is(err, wxapi.ErrUnavailable) {
		t.Errorf("no token: %v", err)
	}
	if emu.Stats().GetWXACodeUnlimit != before {
		t.Error("called WeChat without a token")
	}
}

func TestBadPath(t *testing.T) {
	_, c, _, _ := setup(t)
	for _, p := range []string{"wxa/x", "/wxa/x?access_token=1", ""} {
		if _, err := c.Do(context.Background(), wxapi.Call{Path: p}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	if _, err := wxapi.New(wxapi.Config{}); err == nil {
		t.Error("New without Tokens accepted")
	}
}

func ptr(n int) *int { return &n }
