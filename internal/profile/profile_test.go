package profile_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/profile"
	"github.com/wxsession/wxsession/session"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    profile.Profile
		ok   bool
	}{
		{"zero", profile.Profile{}, true},
		{"ascii", profile.Profile{Nickname: "Alice"}, true},
		{"32 CJK runes", profile.Profile{Nickname: strings.Repeat("字", 32)}, true},
		{"33 CJK runes", profile.Profile{Nickname: strings.Repeat("字", 33)}, false},
		{"emoji with ZWJ", profile.Profile{Nickname: "👩‍💻 dev"}, true},
		{"tab", profile.Profile{Nickname: "a\tb"}, false},
		{"NUL", profile.Profile{Nickname: "a\x00b"}, false},
		{"DEL", profile.Profile{Nickname: "a\x7fb"}, false},
		{"C1 control", profile.Profile{Nickname: "a\u0085b"}, false},
		{"invalid UTF-8", profile.Profile{Nickname: "a\xffb"}, false},
		{"replacement char", profile.Profile{Nickname: "a\uFFFDb"}, false},
		{"https avatar", profile.Profile{AvatarURL: "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"}, true},
		{"https avatar with query", profile.Profile{AvatarURL: "https://example.com/a.png?size=64"}, true},
		{"http avatar", profile.Profile{AvatarURL: "http://example.com/a.png"}, false},
		{"no host", profile.Profile{AvatarURL: "https:///a.png"}, false},
		{"opaque", profile.Profile{AvatarURL: "https:example.com"}, false},
		{"relative", profile.Profile{AvatarURL: "a.png"}, false},
		{"data URL", profile.Profile{AvatarURL: "data:image/png;base64,AAAA"}, false},
		{"user info", profile.Profile{AvatarURL: "https://a@example.com/"}, false},
		{"control in URL", profile.Profile{AvatarURL: "https://example.com/\x01"}, false},
		{"1024 bytes", profile.Profile{AvatarURL: "https://e.com/" + strings.Repeat("a", 1024-len("https://e.com/"))}, true},
		{"1025 bytes", profile.Profile{AvatarURL: "https://e.com/" + strings.Repeat("a", 1025-len("https://e.com/"))}, false},
		// Invisible formatting characters (docs/design.md §10).
		{"RLO bidi override", profile.Profile{Nickname: "abc\u202Egpj.exe"}, false},
		{"LRE", profile.Profile{Nickname: "a\u202Ab"}, false},
		{"RLI isolate", profile.Profile{Nickname: "a\u2067b\u2069"}, false},
		{"RLM", profile.Profile{Nickname: "a\u200Fb"}, false},
		{"zero-width space", profile.Profile{Nickname: "ad\u200Bmin"}, false},
		{"zero-width non-joiner", profile.Profile{Nickname: "a\u200Cb"}, false},
		{"ZWJ between letters", profile.Profile{Nickname: "ad\u200Dmin"}, false},
		{"ZWJ at the end", profile.Profile{Nickname: "👩\u200D"}, false},
		{"word joiner", profile.Profile{Nickname: "a\u2060b"}, false},
		{"BOM", profile.Profile{Nickname: "\uFEFFadmin"}, false},
		{"soft hyphen", profile.Profile{Nickname: "ad\u00ADmin"}, false},
		{"tag character", profile.Profile{Nickname: "a\U000E0041"}, false},
		{"line separator", profile.Profile{Nickname: "a\u2028b"}, false},
		{"family emoji", profile.Profile{Nickname: "👨\u200D👩\u200D👧"}, true},
		{"emoji with VS16 and ZWJ", profile.Profile{Nickname: "❤\uFE0F\u200D🔥"}, true},
		{"runner with skin tone", profile.Profile{Nickname: "🏃🏽\u200D♀\uFE0F"}, true},
		{"Arabic name", profile.Profile{Nickname: "محمد"}, true},
		// Avatar hosts and characters.
		{"double quote", profile.Profile{AvatarURL: `https://example.com/a.png"onerror="x`}, false},
		{"single quote", profile.Profile{AvatarURL: "https://example.com/a'b.png"}, false},
		{"angle bracket", profile.Profile{AvatarURL: "https://example.com/<script>"}, false},
		{"backslash", profile.Profile{AvatarURL: `https://example.com\@evil.com/`}, false},
		{"loopback v4", profile.Profile{AvatarURL: "https://127.0.0.1/a.png"}, false},
		{"loopback v4 other", profile.Profile{AvatarURL: "https://127.8.9.10:8443/a.png"}, false},
		{"loopback v6", profile.Profile{AvatarURL: "https://[::1]/a.png"}, false},
		{"v4-mapped loopback", profile.Profile{AvatarURL: "https://[::ffff:127.0.0.1]/a.png"}, false},
		{"link-local metadata", profile.Profile{AvatarURL: "https://169.254.169.254/latest/meta-data/"}, false},
		{"link-local v6 with zone", profile.Profile{AvatarURL: "https://[fe80::1%25eth0]/a.png"}, false},
		{"private 10/8", profile.Profile{AvatarURL: "https://10.0.0.5/a.png"}, false},
		{"private 172.16/12", profile.Profile{AvatarURL: "https://172.31.255.1/a.png"}, false},
		{"private 192.168/16", profile.Profile{AvatarURL: "https://192.168.1.1/a.png"}, false},
		{"unique local v6", profile.Profile{AvatarURL: "https://[fd00::1]/a.png"}, false},
		{"CGNAT", profile.Profile{AvatarURL: "https://100.64.0.1/a.png"}, false},
		{"unspecified", profile.Profile{AvatarURL: "https://0.0.0.0/a.png"}, false},
		{"this network", profile.Profile{AvatarURL: "https://0.1.2.3/a.png"}, false},
		{"multicast", profile.Profile{AvatarURL: "https://224.0.0.1/a.png"}, false},
		{"short numeric", profile.Profile{AvatarURL: "https://127.1/a.png"}, false},
		{"decimal number", profile.Profile{AvatarURL: "https://2130706433/a.png"}, false},
		{"hex", profile.Profile{AvatarURL: "https://0x7f.0x1/a.png"}, false},
		{"localhost", profile.Profile{AvatarURL: "https://localhost/a.png"}, false},
		{"LOCALHOST.", profile.Profile{AvatarURL: "https://LOCALHOST./a.png"}, false},
		{"sub.localhost", profile.Profile{AvatarURL: "https://x.localhost:8443/a.png"}, false},
		{"mDNS", profile.Profile{AvatarURL: "https://printer.local/a.png"}, false},
		{"internal", profile.Profile{AvatarURL: "https://metadata.google.internal/a.png"}, false},
		{"single label", profile.Profile{AvatarURL: "https://intranet/a.png"}, false},
		{"public v4", profile.Profile{AvatarURL: "https://93.184.216.34/a.png"}, true},
		{"public v6", profile.Profile{AvatarURL: "https://[2001:4860:4860::8888]/a.png"}, true},
		{"public name with digits", profile.Profile{AvatarURL: "https://cdn1.example.com:8443/a.png"}, true},
		{"name ending in a hex-looking label", profile.Profile{AvatarURL: "https://example.cafe/a.png"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, profile.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestStore(t *testing.T) {
	srv := dynalitetest.NewTestServer(t)
	db := dynalitetest.Client(t, srv)
	table := dynalitetest.Tables(t, db, "ProfilesTable")["ProfilesTable"]
	now := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.FixedZone("CST", 8*3600))
	s, err := profile.New(db, profile.Config{Table: table, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if p, err := s.Get(ctx, "oNobody"); err != nil || p != (profile.Profile{}) {
		t.Fatalf("missing profile: %+v, %v", p, err)
	}
	put, err := s.Put(ctx, "oAlice", profile.Profile{Nickname: "小明", AvatarURL: "https://example.com/a.png"})
	if err != nil {
		t.Fatal(err)
	}
	wantTime := now.UTC().Truncate(time.Millisecond)
	if put.UpdatedAt == nil || !put.UpdatedAt.Equal(wantTime) {
		t.Fatalf("UpdatedAt = %v, want %v", put.UpdatedAt, wantTime)
	}
	got, err := s.Get(ctx, "oAlice")
	if err != nil || got.Nickname != "小明" || got.AvatarURL != "https://example.com/a.png" || got.UpdatedAt == nil || !got.UpdatedAt.Equal(wantTime) || got.UpdatedAt.Location() != time.UTC {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if p, _ := s.Get(ctx, "oBob"); p != (profile.Profile{}) {
		t.Fatalf("bob sees %+v", p)
	}
	if _, err := s.Put(ctx, "oAlice", profile.Profile{Nickname: strings.Repeat("x", 33)}); !errors.Is(err, profile.ErrInvalid) {
		t.Fatalf("invalid Put: %v", err)
	}
	if _, err := s.Get(ctx, ""); err == nil {
		t.Fatal("empty openid accepted")
	}

	// A missing table is a misconfiguration, not "try again"; a store that
	// does not answer is.
	missing, _ := profile.New(db, profile.Config{Table: "no-such-table"})
	if _, err := missing.Get(ctx, "oAlice"); err == nil || errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("missing table: Get = %v, want an error that is not ErrUnavailable", err)
	}
	if _, err := missing.Put(ctx, "oAlice", profile.Profile{}); err == nil || errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("missing table: Put = %v, want an error that is not ErrUnavailable", err)
	}
	dead, err := dynalite.LocalClient(ctx, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	down, _ := profile.New(dead, profile.Config{Table: table, OpTimeout: 2 * time.Second})
	if _, err := down.Get(ctx, "oAlice"); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("store down: Get = %v, want ErrUnavailable", err)
	}
	if _, err := down.Put(ctx, "oAlice", profile.Profile{}); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("store down: Put = %v, want ErrUnavailable", err)
	}
}

// FuzzValidate: Validate never panics, and what it accepts holds no
// invisible formatting character other than a zero-width joiner between two
// non-ASCII runes, and an avatar URL it accepts is an https URL whose host
// is neither an IP literal of a non-public address nor "localhost".
func FuzzValidate(f *testing.F) {
	for _, s := range [][2]string{
		{"Alice", ""}, {"👨\u200D👩\u200D👧", "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"},
		{"abc\u202Egpj", "https://127.0.0.1/a"}, {"a\u200Bb", "https://[::ffff:10.0.0.1]/"},
		{"❤\uFE0F\u200D🔥", "https://0x7f.1/"}, {"x", "https://LOCALHOST./a"}, {"x", `https://e.com/"`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, nickname, avatar string) {
		if (profile.Profile{Nickname: nickname, AvatarURL: avatar}).Validate() != nil {
			return
		}
		runes := []rune(nickname)
		for i, r := range runes {
			if !unicode.Is(unicode.Cf, r) {
				continue
			}
			if r != '\u200D' || i == 0 || i == len(runes)-1 || runes[i-1] < 0x80 || runes[i+1] < 0x80 {
				t.Fatalf("accepted nickname %+q with format character U+%04X at %d", nickname, r, i)
			}
		}
		if avatar == "" {
			return
		}
		u, err := url.Parse(avatar)
		if err != nil || u.Scheme != "https" {
			t.Fatalf("accepted avatar %q: %v", avatar, err)
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if a, err := netip.ParseAddr(host); err == nil {
			a = a.Unmap()
			if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
				t.Fatalf("accepted avatar %q on %v", avatar, a)
			}
		}
		if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.ContainsAny(avatar, "\"'<>") {
			t.Fatalf("accepted avatar %q", avatar)
		}
	})
}
