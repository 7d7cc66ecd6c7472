package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/config"
)

// appB is the second mini-program of TestSeveralApps.
const appB = "wx00000000e2e000bb"

// TestSeveralApps serves two mini-programs side by side (docs/design.md
// §7.9): the same person (one unionid) logs into both and gets two
// sessions with the app's own openid and appid; the app is named by the
// body's appid or the mini-program's Referer, an unknown one is 400
// unknown_app; each app has its own access_token.
func TestSeveralApps(t *testing.T) {
	needStack(t)
	appA := stk.Emulator.AppID()
	withSettings(t, map[string]string{config.VarApps: appA + "=/wxsession/apps/" + appA + "," + appB + "=/wxsession/apps/" + appB})
	unionid := "uE2eApps" + uniq()
	mint := func(appid, openid string) issued {
		t.Helper()
		var is issued
		emu(t, "/test/codes", map[string]string{"appid": appid, "openid": openid, "unionid": unionid}, &is)
		return is
	}
	openidA, openidB := "oE2eAppA"+uniq(), "oE2eAppB"+uniq()
	referer := func(appid string) []string {
		return []string{"Referer", "https://servicewechat.com/" + appid + "/7/page-frame.html"}
	}
	tests := []struct {
		name       string
		codeApp    string // the app the code is minted for
		openid     string
		bodyApp    string // "appid" in the body, "" for none
		header     []string
		wantStatus int
		wantError  string
		wantApp    string
	}{
		{name: "default app, named by nothing", codeApp: appA, openid: openidA, wantStatus: 200, wantApp: appA},
		{name: "default app, named in the body", codeApp: appA, openid: openidA, bodyApp: appA, wantStatus: 200, wantApp: appA},
		{name: "second app, named in the body", codeApp: appB, openid: openidB, bodyApp: appB, wantStatus: 200, wantApp: appB},
		{name: "second app, named by the Referer", codeApp: appB, openid: openidB, header: referer(appB), wantStatus: 200, wantApp: appB},
		{name: "the body wins over the Referer", codeApp: appB, openid: openidB, bodyApp: appB, header: referer(appA), wantStatus: 200, wantApp: appB},
		{name: "second app's code at the default app", codeApp: appB, openid: openidB, wantStatus: 401, wantError: "invalid_code"},
		{name: "unknown appid in the body", codeApp: appA, openid: openidA, bodyApp: "wxNotServedHere", wantStatus: 400, wantError: "unknown_app"},
		{name: "unknown appid in the Referer", codeApp: appA, openid: openidA, header: referer("wxNotServedHere"), wantStatus: 400, wantError: "unknown_app"},
	}
	sessions := map[string]string{} // appid → a session id
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := mint(tt.codeApp, tt.openid)
			body := map[string]string{"code": is.Code}
			if tt.bodyApp != "" {
				body["appid"] = tt.bodyApp
			}
			before := emuStats(t)["jscode2session"]
			r := do(t, http.MethodPost, stk.APIURL+"/login", jsonBody(body), tt.header...)
			if r.Status != tt.wantStatus || tt.wantError != "" && r.str("error") != tt.wantError {
				t.Fatalf("POST /login: %s, want %d %s", r, tt.wantStatus, tt.wantError)
			}
			if tt.wantError == "unknown_app" && emuStats(t)["jscode2session"] != before {
				t.Error("WeChat was called for an unknown app")
			}
			if tt.wantStatus != 200 {
				return
			}
			id := r.str("session_id")
			me := do(t, http.MethodGet, stk.APIURL+"/me", "", bearer(id)...)
			if me.str("appid") != tt.wantApp || me.str("openid") != tt.openid || me.str("unionid") != unionid {
				t.Fatalf("GET /me %s, want appid %s, openid %s, unionid %s", me, tt.wantApp, tt.openid, unionid)
			}
			sessions[tt.wantApp] = id
		})
	}
	if len(sessions) != 2 {
		t.Fatalf("sessions of %d apps, want 2", len(sessions))
	}
	noteKeysAndTokens(openidA)
	noteKeysAndTokens(openidB)

	// Each app's calls use its own access_token: one token item per appid,
	// at least one stable_token call per app.
	for _, appid := range []string{appA, appB} {
		r := do(t, http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(sessions[appid])...)
		if r.Status != 200 || !jsonBool(r, "valid") {
			t.Fatalf("%s: GET /me/session-key %s", appid, r)
		}
		out, err := stk.Dynamo.GetItem(context.Background(), &dynamodb.GetItemInput{
			TableName: aws.String(tableName(t, tblTokens)),
			Key:       map[string]types.AttributeValue{"appid": &types.AttributeValueMemberS{Value: appid}},
		})
		if err != nil || out.Item == nil {
			t.Fatalf("%s: no token item (%v)", appid, err)
		}
	}
	for _, tok := range stk.Emulator.Tokens() {
		secrets.add(tok, "access_token", -1)
	}
	var st struct {
		ByApp map[string]int `json:"stable_token_by_app"`
	}
	if err := json.Unmarshal(do(t, http.MethodGet, stk.WeChatURL+"/test/stats", "").Body, &st); err != nil {
		t.Fatal(err)
	}
	if st.ByApp[appA] < 1 || st.ByApp[appB] < 1 {
		t.Fatalf("stable_token calls by app %v, want both apps", st.ByApp)
	}

	// Back to one app: the second app's login is refused, and its session
	// (still valid at the authorizer) gets no WeChat call for it.
	stk.SetEnv(map[string]string{config.VarApps: ""})
	is := mint(appB, openidB)
	if r := do(t, http.MethodPost, stk.APIURL+"/login", jsonBody(map[string]string{"code": is.Code, "appid": appB})); r.Status != 400 || r.str("error") != "unknown_app" {
		t.Errorf("one app served: login naming the other: %s, want 400 unknown_app", r)
	}
	if r := do(t, http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(sessions[appB])...); r.Status != 403 || r.str("error") != "unknown_app" {
		t.Errorf("one app served: the other app's session at /me/session-key: %s, want 403 unknown_app", r)
	}
	if r := do(t, http.MethodGet, stk.APIURL+"/me/session-key", "", bearer(sessions[appA])...); r.Status != 200 {
		t.Errorf("one app served: the default app's session at /me/session-key: %s", r)
	}
}

// jsonBool is a boolean field of a JSON body.
func jsonBool(r response, field string) bool {
	m, err := r.JSON()
	if err != nil {
		return false
	}
	b, _ := m[field].(bool)
	return b
}
