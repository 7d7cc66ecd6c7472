package wechatemu_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/testutil"
)

const appB = "wx00000000000000bb"

// TestSeveralApps: codes belong to the app that minted them, each app has
// its own stable_token state, and a phone lookup's watermark names the
// token's app (docs/design.md §7.9).
func TestSeveralApps(t *testing.T) {
	c := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	emu := wechatemu.New(wechatemu.Config{Now: c.Now, Logger: quiet(), AppIDs: []string{appB, wechatemu.DefaultAppID, ""}})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	e := &env{emu: emu, srv: srv, clock: c}
	if got := emu.AppIDs(); len(got) != 2 || got[0] != wechatemu.DefaultAppID || got[1] != appB {
		t.Fatalf("AppIDs = %v", got)
	}

	mint := func(body string) wechatemu.Issued {
		t.Helper()
		status, raw := e.post(t, "/test/codes", body)
		var is wechatemu.Issued
		if status != 200 || json.Unmarshal([]byte(raw), &is) != nil {
			t.Fatalf("/test/codes %s: %d %s", body, status, raw)
		}
		return is
	}
	a := mint(`{"openid":"oAppA","unionid":"uPerson"}`)
	b := mint(`{"openid":"oAppB","unionid":"uPerson","appid":"` + appB + `"}`)
	b2 := mint(`{"appid":"` + appB + `"}`)
	if a.AppID != wechatemu.DefaultAppID || b.AppID != appB {
		t.Fatalf("issued appids %q, %q", a.AppID, b.AppID)
	}
	if status, raw := e.post(t, "/test/codes", `{"appid":"wxNotServed"}`); status != 400 {
		t.Fatalf("code for an unknown app: %d %s", status, raw)
	}
	withApp := func(code, appid string) answer {
		q := goodQuery(code)
		q.Set("appid", appid)
		return e.exchangeWith(t, q)
	}
	tests := []struct {
		name, code, appid string
		errcode           int
		openid, unionid   string
	}{
		{"app B's code at app A", b.Code, wechatemu.DefaultAppID, 40029, "", ""},
		{"app B's code at app B", b.Code, appB, 0, "oAppB", "uPerson"},
		{"app A's code at app A", a.Code, wechatemu.DefaultAppID, 0, "oAppA", "uPerson"},
		{"random openid at app B", b2.Code, appB, 0, b2.OpenID, ""},
		{"unknown appid", a.Code, "wxNotServed", 40013, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withApp(tt.code, tt.appid)
			if got.Errcode != tt.errcode || got.OpenID != tt.openid || got.UnionID != tt.unionid {
				t.Fatalf("got %+v", got)
			}
		})
	}

	tokenFor := func(appid string, force bool) string {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": appid,
			"secret": wechatemu.DefaultSecret, "force_refresh": force})
		ans := e.stableToken(t, string(body))
		if ans.Errcode != 0 || ans.AccessToken == "" {
			t.Fatalf("stable_token %s: %+v", appid, ans)
		}
		return ans.AccessToken
	}
	ta, tb := tokenFor(wechatemu.DefaultAppID, false), tokenFor(appB, false)
	if ta == tb || tokenFor(appB, false) != tb {
		t.Fatal("the apps share a token, or app B's changed in normal mode")
	}
	tb2 := tokenFor(appB, true)
	if tb2 == tb || tokenFor(wechatemu.DefaultAppID, false) != ta {
		t.Fatal("app B's forced refresh did not replace its token, or replaced app A's")
	}
	if st := emu.Stats(); st.StableTokenByApp[wechatemu.DefaultAppID] != 2 || st.StableTokenByApp[appB] != 3 {
		t.Fatalf("stable_token by app = %v", st.StableTokenByApp)
	}
	if e.phoneCall(t, tb, `{"code":"x"}`) != 40001 || e.phoneCall(t, ta, `{"code":"x"}`) != 40029 {
		t.Fatal("app B's forced refresh must revoke its old token only")
	}

	code, _ := emu.IssuePhoneCode("oAppB", "13800138000", "86")
	_, raw := e.post(t, "/wxa/business/getuserphonenumber?access_token="+tb2, `{"code":"`+code+`"}`)
	var out struct {
		PhoneInfo struct{ Watermark struct{ AppID string } } `json:"phone_info"`
	}
	if json.Unmarshal([]byte(raw), &out) != nil || out.PhoneInfo.Watermark.AppID != appB {
		t.Fatalf("getuserphonenumber with app B's token: %s", raw)
	}
}
