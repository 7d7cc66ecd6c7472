package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/session"
	"github.com/wxsession/wxsession/wxapi"
)

// TestShareCode runs the example against the WeChat emulator and dynalite:
// a real getwxacodeunlimit call with the shared token, a PNG back, and a
// second call that reuses the token.
func TestShareCode(t *testing.T) {
	emu := wechatemu.New(wechatemu.Config{Logger: slog.New(slog.DiscardHandler)})
	wxSrv := httptest.NewServer(emu)
	t.Cleanup(wxSrv.Close)
	db := dynalitetest.NewTestServer(t)
	tables := dynalitetest.Tables(t, dynalitetest.Client(t, db), "TokensTable")
	env := map[string]string{
		"WECHAT_APPID": wechatemu.DefaultAppID, "WECHAT_SECRET": wechatemu.DefaultSecret,
		"WECHAT_API_BASE": wxSrv.URL, "TOKENS_TABLE": tables["TokensTable"], "DYNAMODB_ENDPOINT": db.Endpoint,
	}
	wx, err := wxapi.FromEnv(context.Background(), func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := handler{wx: wx}
	req := events.APIGatewayV2HTTPRequest{QueryStringParameters: map[string]string{"scene": "order=42"}}
	req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		Lambda: session.Principal{OpenID: "oUser", AppID: wechatemu.DefaultAppID}.Context(),
	}
	for i := range 2 {
		resp, err := h.handle(context.Background(), req)
		if err != nil || resp.StatusCode != 200 || resp.Headers["Content-Type"] != "image/png" || !resp.IsBase64Encoded {
			t.Fatalf("call %d: %v %d %v", i, err, resp.StatusCode, resp.Headers)
		}
		raw, _ := base64.StdEncoding.DecodeString(resp.Body)
		if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
	}
	if st := emu.Stats(); st.GetWXACodeUnlimit != 2 || st.StableToken != 1 {
		t.Errorf("getwxacodeunlimit %d, stable_token %d; want 2, 1", st.GetWXACodeUnlimit, st.StableToken)
	}
	// A token revoked at WeChat is recovered on the way: one forced refresh.
	emu.InvalidateTokens()
	if resp, _ := h.handle(context.Background(), req); resp.StatusCode != 200 {
		t.Errorf("after invalidation: %d %s", resp.StatusCode, resp.Body)
	}
	if st := emu.Stats(); st.StableTokenForced != 1 {
		t.Errorf("forced refreshes %d, want 1", st.StableTokenForced)
	}
	// WeChat's errcode reaches the function typed (*wxapi.Error).
	if err := emu.SetFaults(wechatemu.Fault{API: wechatemu.APIGetWXACodeUnlimit, Errcode: ptr(41030), Count: 1}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.handle(context.Background(), req); resp.StatusCode != 502 || !bytes.Contains([]byte(resp.Body), []byte("41030")) {
		t.Errorf("errcode 41030: %d %s", resp.StatusCode, resp.Body)
	}
}

func ptr(n int) *int { return &n }
