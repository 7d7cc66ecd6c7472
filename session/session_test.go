package session_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/session"
)

func TestNewIDShapeAndUniqueness(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 1000; i++ {
		id, err := session.NewID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != session.IDLength {
			t.Fatalf("len(%q) = %d, want %d", id, len(id), session.IDLength)
		}
		if !session.ValidID(id) {
			t.Fatalf("ValidID(NewID()) = false for %q", id)
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(id)
		if err != nil || len(b) != session.IDBytes {
			t.Fatalf("decode %q: %d bytes, %v", id, len(b), err)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestValidID(t *testing.T) {
	good, _ := session.NewID()
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"fresh id", good, true},
		{"all A", strings.Repeat("A", 43), true},
		{"empty", "", false},
		{"one short", good[:42], false},
		{"one long", good + "A", false},
		{"padding", good[:42] + "=", false},
		{"std alphabet plus", strings.Repeat("A", 42) + "+", false},
		{"std alphabet slash", "/" + strings.Repeat("A", 42), false},
		{"space", " " + strings.Repeat("A", 42), false},
		{"non canonical last char", strings.Repeat("A", 42) + "B", false},
		{"canonical last char E", strings.Repeat("A", 42) + "E", true},
		{"non ascii", strings.Repeat("A", 41) + "é", false},
		{"nul byte", strings.Repeat("A", 42) + "\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := session.ValidID(tc.id); got != tc.want {
				t.Fatalf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
			}
			if tc.want {
				if _, err := base64.RawURLEncoding.Strict().DecodeString(tc.id); err != nil {
					t.Fatalf("valid id does not decode strictly: %v", err)
				}
			}
		})
	}
}

func TestHash(t *testing.T) {
	id := strings.Repeat("A", 43)
	sum := sha256.Sum256([]byte(id))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if got := session.Hash(id); got != want {
		t.Fatalf("Hash = %q, want %q", got, want)
	}
	if session.Hash(id) == id || strings.Contains(session.Hash(id), id) {
		t.Fatal("hash must not contain the id")
	}
	other, _ := session.NewID()
	if session.Hash(other) == session.Hash(id) {
		t.Fatal("different ids must hash differently")
	}
}

func TestExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		exp  time.Time
		want bool
	}{
		{now.Add(time.Second), false},
		{now, true},
		{now.Add(-time.Second), true},
	}
	for _, tc := range tests {
		if got := (session.Session{ExpiresAt: tc.exp}).Expired(now); got != tc.want {
			t.Errorf("Expired(exp=%v) = %v, want %v", tc.exp, got, tc.want)
		}
	}
}

func TestIdentityStringRedactsSessionKey(t *testing.T) {
	id := session.Identity{OpenID: "oABCDEFGHIJKLMNOPQRSTUVWXYZa", UnionID: "", SessionKey: "c2Vzc2lvbi1rZXktc2VjcmV0"}
	for _, s := range []string{id.String(), fmt.Sprint(id), fmt.Sprintf("%v", id), fmt.Sprintf("%+v", id)} {
		if strings.Contains(s, id.SessionKey) {
			t.Fatalf("session_key leaked in %q", s)
		}
		if strings.Contains(s, id.OpenID) {
			t.Fatalf("full openid in %q", s)
		}
	}
}

func TestMaskOpenID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "***"},
		{"abcdef", "***"},
		{"oABCDEFGH", "oABCDE***"},
	}
	for _, tc := range tests {
		if got := session.MaskOpenID(tc.in); got != tc.want {
			t.Errorf("MaskOpenID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPrincipalContextRoundTrip(t *testing.T) {
	exp := time.Date(2026, 12, 10, 8, 0, 0, 0, time.UTC)
	s := session.Session{Hash: "h", OpenID: "o1", UnionID: "u1", AppID: "wx1", ExpiresAt: exp}
	p := session.PrincipalOf(s)
	ctx := p.Context()
	for k, v := range ctx {
		if _, ok := v.(string); !ok {
			t.Fatalf("context %q is %T, want string", k, v)
		}
	}
	if ctx["expires_at"] != "2026-12-10T08:00:00Z" || ctx["sid"] != "h" {
		t.Fatalf("context = %v", ctx)
	}
	req := events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
		Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: ctx},
	}}
	got, err := session.FromRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Fatalf("FromRequest = %+v, want %+v", got, p)
	}
}

func TestFromRequestErrors(t *testing.T) {
	withCtx := func(m map[string]any) events.APIGatewayV2HTTPRequest {
		return events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: m},
		}}
	}
	tests := []struct {
		name      string
		req       events.APIGatewayV2HTTPRequest
		noPrinc   bool
		wantOpen  string
		wantError bool
	}{
		{name: "no authorizer", req: events.APIGatewayV2HTTPRequest{}, noPrinc: true, wantError: true},
		{name: "empty lambda map", req: withCtx(map[string]any{}), noPrinc: true, wantError: true},
		{name: "no openid", req: withCtx(map[string]any{"appid": "wx"}), noPrinc: true, wantError: true},
		{name: "openid not a string", req: withCtx(map[string]any{"openid": true}), wantError: true},
		{name: "bad expires_at", req: withCtx(map[string]any{"openid": "o", "expires_at": "tomorrow"}), wantError: true},
		{name: "minimal", req: withCtx(map[string]any{"openid": "o"}), wantOpen: "o"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := session.FromRequest(tc.req)
			if (err != nil) != tc.wantError {
				t.Fatalf("err = %v, wantError %v", err, tc.wantError)
			}
			if tc.noPrinc && !errors.Is(err, session.ErrNoPrincipal) {
				t.Fatalf("err = %v, want ErrNoPrincipal", err)
			}
			if err == nil && p.OpenID != tc.wantOpen {
				t.Fatalf("openid = %q", p.OpenID)
			}
		})
	}
}

func BenchmarkValidID(b *testing.B) {
	id, _ := session.NewID()
	b.ReportAllocs()
	for b.Loop() {
		if !session.ValidID(id) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkHash(b *testing.B) {
	id, _ := session.NewID()
	b.ReportAllocs()
	for b.Loop() {
		_ = session.Hash(id)
	}
}

func BenchmarkPrincipalContext(b *testing.B) {
	p := session.PrincipalOf(session.Session{Hash: "h", OpenID: "o", AppID: "wx", ExpiresAt: time.Now()})
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Context()
	}
}

func TestCheckLifetime(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name string
		s    session.Session
		max  time.Duration
		want session.Lifetime
	}{
		{"default TTL", session.Session{CreatedAt: created, ExpiresAt: created.Add(session.DefaultTTL)}, 0, session.LifetimeOK},
		{"one second of rounding", session.Session{CreatedAt: created, ExpiresAt: created.Add(time.Hour + time.Second)}, time.Hour, session.LifetimeOK},
		{"idle clock within the expiry", session.Session{CreatedAt: created, ExpiresAt: created.Add(time.Hour), IdleExpiresAt: created.Add(time.Minute)}, time.Hour, session.LifetimeOK},
		{"TTL lowered since", session.Session{CreatedAt: created, ExpiresAt: created.Add(14 * day)}, time.Hour, session.LifetimeShortened},
		{"a year under a lowered TTL", session.Session{CreatedAt: created, ExpiresAt: created.Add(session.MaxTTL)}, time.Hour, session.LifetimeShortened},
		{"ten years", session.Session{CreatedAt: created, ExpiresAt: created.Add(3650 * day)}, time.Hour, session.LifetimeForged},
		{"no creation time", session.Session{ExpiresAt: created.Add(time.Hour)}, time.Hour, session.LifetimeForged},
		{"idle clock beyond the expiry", session.Session{CreatedAt: created, ExpiresAt: created.Add(time.Hour), IdleExpiresAt: created.Add(2 * time.Hour)}, time.Hour, session.LifetimeForged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.CheckLifetime(tc.max); got != tc.want {
				t.Errorf("CheckLifetime(%s) = %d, want %d", tc.max, got, tc.want)
			}
		})
	}
}
