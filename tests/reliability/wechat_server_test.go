package reliability_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/faultservers"
)

const (
	wechatFn = "WechatFunction"
	tokensTb = "TokensTable"
)

// coldToken empties the token cache: fresh wechat instances and no token
// item.
func (h *harness) coldToken() {
	h.t.Helper()
	p := h.s.Pool(wechatFn)
	p.Replace(p.Config().Binary)
	_, err := h.s.Dynamo.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(h.table(tokensTb)),
		Key:       map[string]types.AttributeValue{"appid": &types.AttributeValueMemberS{Value: h.s.Emulator.AppID()}},
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// tokenItem is the token item as stored (nil when absent).
func (h *harness) tokenItem() map[string]types.AttributeValue {
	h.t.Helper()
	out, err := h.s.Dynamo.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(h.table(tokensTb)), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"appid": &types.AttributeValueMemberS{Value: h.s.Emulator.AppID()}},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out.Item
}

// phoneCode is the getPhoneNumber button's code for openid.
func (h *harness) phoneCode(openid string) string {
	h.t.Helper()
	c, err := h.s.Emulator.IssuePhoneCode(openid, "13700000001", "")
	if err != nil {
		h.t.Fatal(err)
	}
	h.secret(c, "13700000001")
	return c
}

func (h *harness) noteTokens() {
	h.secret(h.s.Emulator.Tokens()...)
}

// TestWeChatServerAPIFaults: every new WeChat API (selected with the
// fault's "api") failing every way ends in the mapped answer within the
// function's timeout, changes nothing, and the same request succeeds once
// WeChat is back.
func TestWeChatServerAPIFaults(t *testing.T) {
	h := newHarness(t, stackOpts{})
	openid := randomOpenID(t, "Srv")
	live := h.login(openid)
	t.Cleanup(func() { h.noteTokens(); h.secret(h.s.Emulator.SessionKey(openid)) })
	type call struct {
		name  string
		run   func(h *harness) reply
		ok    int
		check func(t *testing.T, h *harness) // after the failure: nothing changed
	}
	keyBefore := ""
	calls := map[string]call{
		"getuserphonenumber": {name: "POST /me/phone", ok: 200, run: func(h *harness) reply {
			return h.post("/me/phone", `{"code":"`+h.phoneCode(openid)+`"}`, bearer(live.SessionID))
		}, check: func(t *testing.T, h *harness) {
			if r := h.get("/me/phone", bearer(live.SessionID)); r.Status != 404 && r.Status != 200 {
				t.Errorf("GET /me/phone after the fault: %s", r)
			}
		}},
		"checksession": {name: "GET /me/session-key", ok: 200, run: func(h *harness) reply {
			return h.get("/me/session-key", bearer(live.SessionID))
		}},
		"resetusersessionkey": {name: "POST /me/session-key/reset", ok: 204, run: func(h *harness) reply {
			keyBefore = h.s.Emulator.SessionKey(openid)
			return h.post("/me/session-key/reset", "", bearer(live.SessionID))
		}, check: func(t *testing.T, h *harness) {
			if h.s.Emulator.SessionKey(openid) != keyBefore {
				t.Errorf("WeChat's session_key changed although the reset failed")
			}
		}},
		"stable_token": {name: "GET /me/session-key (cold token)", ok: 200, run: func(h *harness) reply {
			h.coldToken()
			return h.get("/me/session-key", bearer(live.SessionID))
		}, check: func(t *testing.T, h *harness) {
			if it := h.tokenItem(); it != nil && it["access_token"] != nil {
				t.Errorf("a token was stored although stable_token failed")
			}
		}},
	}
	faults := []struct {
		name   string
		fault  wechatemu.Fault
		status int
		code   string
	}{
		{"errcode -1", wechatemu.Fault{Errcode: ptr(-1), Count: 5}, 503, "wechat_unavailable"},
		{"HTTP 502", wechatemu.Fault{Status: 502, Count: 5}, 503, "wechat_unavailable"},
		{"garbage body", wechatemu.Fault{Body: ptrS("<html>oops</html>"), Count: 5}, 503, "wechat_unavailable"},
		{"errcode 45011", wechatemu.Fault{Errcode: ptr(45011), Count: 1}, 429, "rate_limited"},
		{"slow past the attempt timeout", wechatemu.Fault{DelayMS: 2500, Status: 500, Count: 5}, 503, "wechat_unavailable"},
	}
	for _, api := range []string{"stable_token", "getuserphonenumber", "checksession", "resetusersessionkey"} {
		c := calls[api]
		for _, f := range faults {
			t.Run(api+"/"+f.name, func(t *testing.T) {
				h := h.at(t)
				h.s.Emulator.ClearFaults()
				if api != "stable_token" {
					h.get("/me/session-key", bearer(live.SessionID)) // a warm token, so only api fails
				}
				f.fault.API = api
				if err := h.s.Emulator.SetFaults(f.fault); err != nil {
					t.Fatal(err)
				}
				r := c.run(h)
				h.s.Emulator.ClearFaults()
				if r.Status != f.status || r.errorCode() != f.code || r.Header.Get("Retry-After") == "" {
					t.Fatalf("%s with %s: %s, want %d %s with Retry-After", c.name, f.name, r, f.status, f.code)
				}
				if r.Dur > functionTimeout {
					t.Errorf("answered after %v, beyond the function timeout", r.Dur)
				}
				if c.check != nil {
					c.check(t, h)
				}
				if r := c.run(h); r.Status != c.ok {
					t.Errorf("%s once WeChat is back: %s", c.name, r)
				}
			})
		}
	}
}

func ptr(n int) *int        { return &n }
func ptrS(s string) *string { return &s }

// TestTokenRefreshStoreFaults: DynamoDB failing during a token refresh. The
// lease write failing is a 503 and leaves no token; the token write failing
// after WeChat answered still serves that request, leaves no token in the
// table (never half a one) and a lease that ends, after which another
// instance fetches and stores the token: exactly two stable_token calls.
func TestTokenRefreshStoreFaults(t *testing.T) {
	h := newHarness(t, stackOpts{proxy: true})
	p := h.proxy
	t.Cleanup(p.Reset)
	openid := randomOpenID(t, "Tok")
	live := h.login(openid)
	t.Cleanup(h.noteTokens)
	tokens := h.table(tokensTb)

	// 1. The lease cannot be written: 503, nothing stored, no WeChat call.
	h.coldToken()
	before := h.s.Emulator.Stats()
	p.SetRules(faultservers.Rule{Op: "UpdateItem", Table: tokens, Action: faultservers.ServerError})
	r := h.get("/me/session-key", bearer(live.SessionID))
	p.Reset()
	if r.Status != 503 || r.Dur > functionTimeout {
		t.Fatalf("lease write failing: %s", r)
	}
	if st := h.s.Emulator.Stats(); st.StableToken != before.StableToken {
		t.Errorf("stable_token called %d times without a lease", st.StableToken-before.StableToken)
	}
	if it := h.tokenItem(); it != nil && (it["access_token"] != nil || it["lease_owner"] != nil) {
		t.Errorf("token item after a failed lease write: %v", keys(it))
	}

	// 2. The lease passes, the token write (and the release) fail.
	h.coldToken()
	before = h.s.Emulator.Stats()
	p.SetRules(faultservers.Rule{Op: "UpdateItem", Table: tokens, Count: 1},
		faultservers.Rule{Op: "UpdateItem", Table: tokens, Action: faultservers.ServerError})
	r = h.get("/me/session-key", bearer(live.SessionID))
	p.Reset()
	if r.Status != 200 || string(r.Body) != `{"valid":true}` {
		t.Fatalf("token write failing: %s (the refresher has a valid token and must use it)", r)
	}
	it := h.tokenItem()
	if it == nil || it["access_token"] != nil || it["lease_owner"] == nil {
		t.Fatalf("after the failed write the item should hold the lease and no token: %v", keys(it))
	}
	// 3. Other instances wait (or answer 503) until the lease ends, then one
	// of them fetches and stores the token.
	h.s.Pool(wechatFn).Replace(h.s.Pool(wechatFn).Config().Binary)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := h.get("/me/session-key", bearer(live.SessionID))
		if r.Status == 200 {
			break
		}
		if r.Status != 503 || r.Dur > functionTimeout {
			t.Fatalf("while the lease of the crashed write is live: %s", r)
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease never ended")
		}
	}
	if it := h.tokenItem(); it == nil || it["access_token"] == nil || it["lease_owner"] != nil {
		t.Errorf("after recovery: %v", keys(it))
	}
	if d := h.s.Emulator.Stats().StableToken - before.StableToken; d != 2 {
		t.Errorf("stable_token calls = %d, want 2 (the crashed write's and the recovery's)", d)
	}
}

func keys(m map[string]types.AttributeValue) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWechatRouteRequests counts the DynamoDB requests of each WeChat
// route (docs/design.md §7): the shared token costs nothing on a warm
// instance, and a paid phone lookup is four writes.
func TestWechatRouteRequests(t *testing.T) {
	h := newHarness(t, stackOpts{proxy: true})
	p := h.proxy
	openid := randomOpenID(t, "Cnt")
	live := h.login(openid)
	t.Cleanup(h.noteTokens)
	tbl := map[string]string{h.table("SessionsTable"): "sessions", h.table("UsersTable"): "users",
		h.table("PhonesTable"): "phones", h.table(tokensTb): "tokens"}
	count := func(mark int) map[string]int {
		out := map[string]int{}
		for _, r := range p.Since(mark) {
			for _, name := range r.Tables {
				out[tbl[name]+" "+r.Op]++
			}
		}
		return out
	}
	// Cold: a fresh instance and no token item.
	h.coldToken()
	mark := p.Mark()
	if r := h.get("/me/session-key", bearer(live.SessionID)); r.Status != 200 {
		t.Fatal(r)
	}
	cold := count(mark)
	rows := []struct {
		name string
		run  func() reply
		want map[string]int
	}{
		{"GET /me/session-key (warm)", func() reply { return h.get("/me/session-key", bearer(live.SessionID)) },
			map[string]int{"sessions GetItem": 1, "users GetItem": 1}},
		{"POST /me/phone {code} (warm)", func() reply {
			return h.post("/me/phone", `{"code":"`+h.phoneCode(openid)+`"}`, bearer(live.SessionID))
		}, map[string]int{"sessions GetItem": 1, "phones PutItem": 3, "phones UpdateItem": 1}},
		{"GET /me/phone", func() reply { return h.get("/me/phone", bearer(live.SessionID)) },
			map[string]int{"sessions GetItem": 1, "phones GetItem": 1}},
		{"DELETE /me/phone", func() reply { return h.do(h.request("DELETE", "/me/phone", nil, bearer(live.SessionID))) },
			map[string]int{"sessions GetItem": 1, "phones GetItem": 1, "phones DeleteItem": 2}}, // read the binding, delete it, then its claim (if any)
	}
	wantCold := map[string]int{"sessions GetItem": 1, "users GetItem": 1, "tokens GetItem": 1, "tokens UpdateItem": 2}
	if fmt.Sprint(cold) != fmt.Sprint(wantCold) {
		t.Errorf("GET /me/session-key (cold token): %v, want %v", cold, wantCold)
	}
	t.Logf("%-32s %v", "GET /me/session-key (cold token)", cold)
	for _, row := range rows {
		mark := p.Mark()
		if r := row.run(); r.Status/100 != 2 {
			t.Fatalf("%s: %s", row.name, r)
		}
		got := count(mark)
		t.Logf("%-32s %v", row.name, got)
		if fmt.Sprint(got) != fmt.Sprint(row.want) {
			t.Errorf("%s: %v, want %v", row.name, got, row.want)
		}
	}
}
