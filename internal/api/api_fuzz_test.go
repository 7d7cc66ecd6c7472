package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/httpapi"
	"github.com/wxsession/wxsession/internal/api"
	"github.com/wxsession/wxsession/internal/profile"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

// memProfiles is an in-memory ProfileStore that stores whatever it is given
// (no validation of its own), so the fuzz target can check that the
// handler only ever stores valid profiles.
type memProfiles struct {
	puts []profile.Profile
}

func (m *memProfiles) Get(context.Context, string) (profile.Profile, error) {
	return profile.Profile{}, nil
}

func (m *memProfiles) Put(_ context.Context, openid string, p profile.Profile) (profile.Profile, error) {
	now := time.Unix(1700000000, 0).UTC()
	p.UpdatedAt = &now
	m.puts = append(m.puts, p)
	return p, nil
}

// noDeleter fails the test if a session is read, listed or ended.
type noDeleter struct{ t *testing.T }

func (d noDeleter) Get(context.Context, string) (session.Session, error) {
	d.t.Error("Get called by PUT /me/profile")
	return session.Session{}, session.ErrNotFound
}

func (d noDeleter) Lookup(context.Context, string) (session.Session, error) {
	d.t.Error("Lookup called by PUT /me/profile")
	return session.Session{}, session.ErrNotFound
}

func (d noDeleter) ListSessions(context.Context, string, string, int) ([]session.Session, string, error) {
	d.t.Error("ListSessions called by PUT /me/profile")
	return nil, "", nil
}

func (d noDeleter) EndSession(context.Context, string, session.Reason) (bool, error) {
	d.t.Error("EndSession called by PUT /me/profile")
	return false, nil
}

func (d noDeleter) EndUserSessions(context.Context, string, session.Reason, string) (int, error) {
	d.t.Error("EndUserSessions called by PUT /me/profile")
	return 0, nil
}

func FuzzProfileBody(f *testing.F) {
	seeds := []string{
		`{"nickname":"微信用户","avatar_url":"https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"}`,
		`{"nickname":"Alice"}`,
		`{"avatar_url":"https://example.com/a.png"}`,
		`{}`,
		`{"nickname":"","avatar_url":""}`,
		`{"nickname":"👍🏽👨‍👩‍👧"}`,
		`{"nickname":"` + strings.Repeat("名", 32) + `"}`,
		`{"nickname":"` + strings.Repeat("名", 33) + `"}`,
		`{"nickname":"` + strings.Repeat("n", 5000) + `"}`,
		`{"avatar_url":"https://example.com/` + strings.Repeat("a", 1100) + `"}`,
		`{"avatar_url":"http://example.com/a.png"}`,
		`{"avatar_url":"javascript:alert(1)"}`,
		`{"avatar_url":"https://user:pw@example.com/"}`,
		`{"avatar_url":"https:///nohost"}`,
		`{"avatar_url":"https://example.com/a b"}`,
		`{"nickname":"a\u0000b"}`,
		`{"nickname":"a\u202eb"}`,
		`{"nickname":"\ud800"}`,
		`{"nickname":"\ufffd"}`,
		"{\"nickname\":\"\xff\"}",
		"{\"nickname\":\"a\x00\"}",
		`{"nickname":"a","nickname":"b"}`,
		`{"Nickname":"a"}`,
		`{"nickname":"a","openid":"oSomeoneElse"}`,
		`{"nickname":"a","updated_at":"2020-01-01T00:00:00Z"}`,
		`{"nickname":1}`,
		`{"nickname":null}`,
		`{"nickname":["a"]}`,
		`{"nickname":` + strings.Repeat(`{"a":`, 20) + `"x"` + strings.Repeat("}", 21),
		strings.Repeat("[", 8192), // deep nesting over the size limit (the gateway suite sends 100k)
		strings.Repeat("{", 3000),
		`{"nickname":"a"} trailing`,
		`[]`, `null`, ``, " ",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	raw, err := testutil.Event("apigw-v2-request-lambda-authorizer.json")
	if err != nil {
		f.Fatal(err)
	}
	var base events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &base); err != nil {
		f.Fatal(err)
	}
	base.RouteKey, base.RawPath = api.RoutePutProfile, "/me/profile"
	base.RequestContext.RouteKey = base.RouteKey
	base.RequestContext.HTTP.Method, base.RequestContext.HTTP.Path = http.MethodPut, "/me/profile"
	base.QueryStringParameters, base.PathParameters = nil, nil
	const openid = "oFuzzUser000000000000000001"
	ctxJSON, _ := json.Marshal(session.PrincipalOf(session.Session{
		Hash: strings.Repeat("h", 43), OpenID: openid, AppID: "wx0123456789abcdef",
		CreatedAt: time.Unix(1700000000, 0), ExpiresAt: time.Unix(1900000000, 0),
	}).Context())
	var lambdaCtx map[string]any
	if err := json.Unmarshal(ctxJSON, &lambdaCtx); err != nil {
		f.Fatal(err)
	}
	base.RequestContext.Authorizer.Lambda = lambdaCtx

	f.Fuzz(func(t *testing.T, body []byte, b64 bool) {
		store := &memProfiles{}
		h := &api.Handler{Sessions: noDeleter{t}, Profiles: store, Logger: slog.New(slog.DiscardHandler)}
		req := base
		if b64 {
			req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		} else {
			req.Body = string(body)
		}
		resp, err := h.Handle(context.Background(), req)
		if err != nil {
			t.Fatalf("Handle returned a Go error: %v", err)
		}
		switch resp.StatusCode {
		case 200:
			if len(store.puts) != 1 {
				t.Fatalf("200 after %d puts", len(store.puts))
			}
			stored := store.puts[0]
			if err := stored.Validate(); err != nil {
				t.Errorf("stored an invalid profile %+v: %v", stored, err)
			}
			var got api.ProfileResponse
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
				t.Fatalf("200 body %q: %v", resp.Body, err)
			}
			if got.OpenID != openid || got.Nickname != stored.Nickname || got.AvatarURL != stored.AvatarURL {
				t.Errorf("answered %+v, stored %+v", got, stored)
			}
		case 400, 413:
			var eb httpapi.ErrorBody
			if err := json.Unmarshal([]byte(resp.Body), &eb); err != nil || eb.Error == "" || eb.Message == "" {
				t.Fatalf("status %d: body %q is not an error object: %v", resp.StatusCode, resp.Body, err)
			}
			want := "invalid_request"
			if resp.StatusCode == 413 {
				want = "payload_too_large"
			}
			if eb.Error != want {
				t.Errorf("status %d with error %q", resp.StatusCode, eb.Error)
			}
			if len(store.puts) != 0 {
				t.Errorf("status %d but the profile was stored", resp.StatusCode)
			}
		default:
			t.Fatalf("undocumented status %d %s", resp.StatusCode, resp.Body)
		}
		if (len(body) > httpapi.MaxBodyBytes) != (resp.StatusCode == 413) {
			t.Errorf("%d-byte body answered %d", len(body), resp.StatusCode)
		}
	})
}
