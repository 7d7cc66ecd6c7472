package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/testutil"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestEnvErrFormat(t *testing.T) {
	e := NewEnv(env(map[string]string{"SESSION_TTL": "abc"}))
	e.Required("WECHAT_APPID")
	e.Required("SESSIONS_TABLE")
	e.Duration("SESSION_TTL", DefaultSessionTTL, MinSessionTTL)
	err := e.Err()
	want := `configuration: missing WECHAT_APPID, SESSIONS_TABLE; invalid SESSION_TTL="abc" (want a Go duration ≥ 1m)`
	if err == nil || err.Error() != want {
		t.Fatalf("Err() = %v\nwant     %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Missing) != 2 || len(ce.Invalid) != 1 {
		t.Fatalf("errors.As(*Error) = %#v", ce)
	}
}

func TestEnvErrOnlyInvalid(t *testing.T) {
	e := NewEnv(env(map[string]string{"A": "1s", "B": "x"}))
	e.Duration("A", time.Hour, time.Minute)
	e.Duration("B", time.Hour, time.Minute)
	want := `configuration: invalid A="1s" (want a Go duration ≥ 1m); invalid B="x" (want a Go duration ≥ 1m)`
	if err := e.Err(); err == nil || err.Error() != want {
		t.Fatalf("Err() = %v, want %s", err, want)
	}
}

func TestEnvNoProblems(t *testing.T) {
	e := NewEnv(env(map[string]string{"A": "a"}))
	if got := e.Required("A"); got != "a" {
		t.Fatalf("Required = %q", got)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name, val, def, want string
	}{
		{"unset", "", "d", "d"},
		{"blank", "  \t", "d", "d"},
		{"set", "v", "d", "v"},
		{"trimmed", " v \n", "d", "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(env(map[string]string{"X": tt.val}))
			if got := e.String("X", tt.def); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
			if err := e.Err(); err != nil {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		name, val, want string
		missing         bool
	}{
		{"unset", "", "", true},
		{"blank", "   ", "", true},
		{"set", "tbl", "tbl", false},
		{"trimmed", " tbl\n", "tbl", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(env(map[string]string{"X": tt.val}))
			if got := e.Required("X"); got != tt.want {
				t.Errorf("Required = %q, want %q", got, tt.want)
			}
			if err := e.Err(); (err != nil) != tt.missing {
				t.Errorf("Err() = %v, want missing=%v", err, tt.missing)
			} else if err != nil && err.Error() != "configuration: missing X" {
				t.Errorf("Err() = %q", err)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name    string
		val     string
		def     time.Duration
		min     time.Duration
		want    time.Duration
		wantErr string // substring; "" = no error
	}{
		{"unset uses default", "", 336 * time.Hour, time.Minute, 336 * time.Hour, ""},
		{"hours", "24h", 336 * time.Hour, time.Minute, 24 * time.Hour, ""},
		{"exactly min", "1m", time.Hour, time.Minute, time.Minute, ""},
		{"compound", "1h30m", time.Hour, time.Minute, 90 * time.Minute, ""},
		{"not a duration", "abc", time.Hour, time.Minute, time.Hour, `invalid X="abc" (want a Go duration ≥ 1m)`},
		{"bare number", "3600", time.Hour, time.Minute, time.Hour, `X="3600"`},
		{"days unsupported", "14d", time.Hour, time.Minute, time.Hour, `X="14d"`},
		{"below min", "30s", time.Hour, time.Minute, time.Hour, `X="30s" (want a Go duration ≥ 1m)`},
		{"zero", "0", time.Hour, time.Minute, time.Hour, `X="0"`},
		{"negative", "-1h", time.Hour, time.Minute, time.Hour, `X="-1h"`},
		{"hour min formatting", "1m", time.Hour, 2 * time.Hour, time.Hour, `≥ 2h)`},
		{"long value truncated", strings.Repeat("z", 200), time.Hour, time.Minute, time.Hour, strings.Repeat("z", 64) + `…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(env(map[string]string{"X": tt.val}))
			if got := e.Duration("X", tt.def, tt.min); got != tt.want {
				t.Errorf("Duration = %v, want %v", got, tt.want)
			}
			err := e.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Err() = nil, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Err() = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		name, val, want string
		wantErr         string
	}{
		{"default", "", "https://default", ""},
		{"http local", "http://127.0.0.1:3001", "http://127.0.0.1:3001", ""},
		{"trailing slash", "https://api2.weixin.qq.com/", "https://api2.weixin.qq.com", ""},
		{"path prefix", "https://proxy.example/wx/", "https://proxy.example/wx", ""},
		{"no scheme", "api.weixin.qq.com", "https://default", `X="api.weixin.qq.com"`},
		{"ftp", "ftp://x", "https://default", `X="ftp://x"`},
		{"query", "https://x/?a=1", "https://default", `X="https://x/?a=1"`},
		{"comma list is not one URL", "https://a,https://b", "https://default", `X="https://a,https://b"`},
		{"user info not quoted", "https://u:hunter2@x", "https://default", "X (want an http(s) URL without user info)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(env(map[string]string{"X": tt.val}))
			if got := e.URL("X", "https://default"); got != tt.want {
				t.Errorf("URL = %q, want %q", got, tt.want)
			}
			err := e.Err()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Err() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Err() = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Err() leaks URL password: %q", err)
			}
		})
	}
}

func TestURLs(t *testing.T) {
	def := strings.Join(DefaultAPIBase, ",")
	tests := []struct {
		name, val, want string
		wantErr         string
	}{
		{"unset", "", def, ""},
		{"only commas", " , ,", def, ""},
		{"one", "http://127.0.0.1:3001/", "http://127.0.0.1:3001", ""},
		{"failover list", " https://api.weixin.qq.com/ , https://api2.weixin.qq.com,", "https://api.weixin.qq.com,https://api2.weixin.qq.com", ""},
		{"one bad element", "https://api.weixin.qq.com,api2.weixin.qq.com", def, `X="api2.weixin.qq.com"`},
		{"two bad elements", "a,b", def, `X="a" (want an absolute http(s) URL without query); invalid X="b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEnv(env(map[string]string{"X": tt.val}))
			got := e.URLs("X", DefaultAPIBase)
			if strings.Join(got, ",") != tt.want {
				t.Errorf("URLs = %q, want %q", got, tt.want)
			}
			if len(got) > 0 && &got[0] == &DefaultAPIBase[0] {
				t.Error("URLs returned DefaultAPIBase itself, not a copy")
			}
			err := e.Err()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Err() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Err() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadLogin(t *testing.T) {
	full := map[string]string{
		"WECHAT_APPID":   "wx123",
		"WECHAT_SECRET":  "s3cr3t-value",
		"SESSIONS_TABLE": "sessions",
		"USERS_TABLE":    "users",
	}
	with := func(kv ...string) map[string]string { return testutil.With(full, kv...) }
	one := []App{{AppID: "wx123"}}
	tests := []struct {
		name    string
		env     map[string]string
		want    Login
		wantErr string
	}{
		{
			name: "defaults",
			env:  full,
			want: Login{AppID: "wx123", Apps: one, APIBase: DefaultAPIBase, SessionsTable: "sessions", UsersTable: "users", Sessions: defSessions},
		},
		{
			name: "overrides, secret from SSM",
			env:  with("WECHAT_SECRET", "", "WECHAT_SECRET_PARAMETER", "/wxsession/secret", "WECHAT_API_BASE", "http://127.0.0.1:3001/", "SESSION_TTL", "2h"),
			want: Login{AppID: "wx123", Apps: one, APIBase: []string{"http://127.0.0.1:3001"}, SessionsTable: "sessions", UsersTable: "users", Sessions: func() Sessions { d := defSessions; d.TTL = 2 * time.Hour; return d }()},
		},
		{
			name: "secret from Secrets Manager",
			env:  with("WECHAT_SECRET", "", "WECHAT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:wx"),
			want: Login{AppID: "wx123", Apps: one, APIBase: DefaultAPIBase, SessionsTable: "sessions", UsersTable: "users", Sessions: defSessions},
		},
		{
			name:    "everything wrong at once",
			env:     map[string]string{"SESSION_TTL": "abc", "WECHAT_API_BASE": "nope"},
			wantErr: `configuration: missing WECHAT_APPID, SESSIONS_TABLE, USERS_TABLE, one of WECHAT_SECRET/WECHAT_SECRET_PARAMETER/WECHAT_SECRET_ARN; invalid WECHAT_API_BASE="nope" (want an absolute http(s) URL without query); invalid SESSION_TTL="abc" (want a Go duration ≥ 1m)`,
		},
		{
			name: "two apps, the default named by WECHAT_APPID",
			env:  with("WECHAT_SECRET", "", "WECHAT_APPS", " wxA=/wxsession/apps/wxA, wx123=/wxsession/apps/wx123 "),
			want: Login{AppID: "wx123", Apps: []App{{"wx123", "/wxsession/apps/wx123"}, {"wxA", "/wxsession/apps/wxA"}}, APIBase: DefaultAPIBase, SessionsTable: "sessions", UsersTable: "users", Sessions: defSessions},
		},
		{
			name: "two apps, the first is the default",
			env:  with("WECHAT_APPID", "", "WECHAT_APPS", "wxA=/p/a,wxB=/p/b"),
			want: Login{AppID: "wxA", Apps: []App{{"wxA", "/p/a"}, {"wxB", "/p/b"}}, APIBase: DefaultAPIBase, SessionsTable: "sessions", UsersTable: "users", Sessions: defSessions},
		},
		{
			name:    "WECHAT_APPID not among WECHAT_APPS",
			env:     with("WECHAT_APPS", "wxA=/p/a"),
			wantErr: `configuration: invalid WECHAT_APPID="wx123" (want one of the appids of WECHAT_APPS)`,
		},
		{
			name:    "WECHAT_APPS entry without a parameter",
			env:     with("WECHAT_APPS", "wx123=/p/a,wxB"),
			wantErr: `configuration: invalid WECHAT_APPS="wx123=/p/a,wxB" (want appid=SSM parameter name, comma-separated, each appid once)`,
		},
		{
			name:    "WECHAT_APPS appid twice",
			env:     with("WECHAT_APPS", "wx123=/p/a,wx123=/p/b"),
			wantErr: `configuration: invalid WECHAT_APPS="wx123=/p/a,wx123=/p/b" (want appid=SSM parameter name, comma-separated, each appid once)`,
		},
		{
			name:    "ttl too small",
			env:     with("SESSION_TTL", "59s"),
			wantErr: `configuration: invalid SESSION_TTL="59s" (want a Go duration ≥ 1m)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadLogin(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadLogin = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSecretNeverInError feeds a secret-bearing variable together with every
// kind of problem and checks the value never reaches the error text.
func TestSecretNeverInError(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	envs := []map[string]string{
		{"WECHAT_SECRET": secret},
		{"WECHAT_SECRET": secret, "SESSION_TTL": secret, "WECHAT_API_BASE": secret},
		{"WECHAT_SECRET": secret, "WECHAT_APPID": "wx", "SESSIONS_TABLE": "s", "SESSION_TTL": "x"},
	}
	for i, m := range envs {
		_, err := LoadLogin(env(m))
		if err == nil {
			t.Fatalf("case %d: no error", i)
		}
		// SESSION_TTL/WECHAT_API_BASE holding the secret are quoted by
		// design (they are not secret variables); WECHAT_SECRET never is.
		if m["SESSION_TTL"] != secret && strings.Contains(err.Error(), secret) {
			t.Errorf("case %d: error leaks WECHAT_SECRET: %q", i, err)
		}
		if strings.Contains(err.Error(), "WECHAT_SECRET=") {
			t.Errorf("case %d: error quotes WECHAT_SECRET: %q", i, err)
		}
	}
}

func TestLoadAuthorizer(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Authorizer
		wantErr string
	}{
		{"ok", map[string]string{"SESSIONS_TABLE": "s"}, Authorizer{SessionsTable: "s", Sessions: defSessions}, ""},
		{"missing", map[string]string{}, Authorizer{Sessions: defSessions}, "configuration: missing SESSIONS_TABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadAuthorizer(env(tt.env))
			if (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadAPI(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    API
		wantErr string
	}{
		{"ok", map[string]string{"SESSIONS_TABLE": "s", "USERS_TABLE": "u", "PROFILES_TABLE": "p", "PHONES_TABLE": "ph"}, API{SessionsTable: "s", UsersTable: "u", ProfilesTable: "p", PhonesTable: "ph", Sessions: defSessions}, ""},
		{"missing all", map[string]string{}, API{Sessions: defSessions}, "configuration: missing SESSIONS_TABLE, USERS_TABLE, PROFILES_TABLE, PHONES_TABLE"},
		{"missing profiles", map[string]string{"SESSIONS_TABLE": "s", "USERS_TABLE": "u", "PHONES_TABLE": "ph"}, API{SessionsTable: "s", UsersTable: "u", PhonesTable: "ph", Sessions: defSessions}, "configuration: missing PROFILES_TABLE"},
		{"missing users", map[string]string{"SESSIONS_TABLE": "s", "PROFILES_TABLE": "p", "PHONES_TABLE": "ph"}, API{SessionsTable: "s", ProfilesTable: "p", PhonesTable: "ph", Sessions: defSessions}, "configuration: missing USERS_TABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadAPI(env(tt.env))
			if (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	tests := map[time.Duration]string{
		time.Minute:                  "1m",
		336 * time.Hour:              "336h",
		90 * time.Second:             "1m30s",
		time.Hour + time.Minute:      "1h1m",
		time.Second:                  "1s",
		2*time.Hour + 30*time.Second: "2h0m30s",
	}
	for d, want := range tests {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestCheck: the local stack's start-up check of a function's environment.
func TestCheck(t *testing.T) {
	local := map[string]string{VarDynamoDBEndpoint: "http://127.0.0.1:8000"}
	with := testutil.With
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"nothing set", nil, ""},
		{"deployed defaults", map[string]string{VarSessionTTL: "336h"}, ""},
		{"3s refused in AWS", map[string]string{VarSessionTTL: "3s"}, `invalid SESSION_TTL="3s" (want a Go duration ≥ 1m)`},
		{"3s accepted locally", with(local, VarSessionTTL, "3s"), ""},
		{"1s accepted locally", with(local, VarSessionTTL, "1s"), ""},
		{"below 1s refused locally", with(local, VarSessionTTL, "500ms"), `invalid SESSION_TTL="500ms" (want a Go duration ≥ 1s)`},
		{"not a duration", with(local, VarSessionTTL, "abc"), `invalid SESSION_TTL="abc"`},
		{"bad base URL", with(local, VarAPIBase, "http://ok,nope"), `invalid WECHAT_API_BASE="nope"`},
		{"bad endpoint", map[string]string{VarDynamoDBEndpoint: "localhost:8000"}, `invalid DYNAMODB_ENDPOINT="localhost:8000"`},
		{"every problem at once", with(local, VarSessionTTL, "x", VarSSMEndpoint, "y"), `invalid SESSION_TTL="x" (want a Go duration ≥ 1s); invalid SSM_ENDPOINT="y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(env(tt.env))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Check = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Check = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadLoginLocalMinimum(t *testing.T) {
	base := map[string]string{VarAppID: "wx1", VarSecret: "s", VarSessionsTable: "s", VarUsersTable: "u", VarSessionTTL: "2s"}
	if _, err := LoadLogin(env(base)); err == nil {
		t.Fatal("SESSION_TTL=2s accepted in AWS")
	}
	base[VarDynamoDBEndpoint] = "http://127.0.0.1:8000"
	c, err := LoadLogin(env(base))
	if err != nil || c.Sessions.TTL != 2*time.Second {
		t.Fatalf("local SESSION_TTL=2s: %+v, %v", c, err)
	}
}

func TestLoadWechat(t *testing.T) {
	base := map[string]string{VarAppID: "wxapp", VarTokensTable: "tokens", VarUsersTable: "users",
		VarPhonesTable: "phones", VarSecret: "s"}
	tests := []struct {
		name    string
		set     map[string]string
		wantErr string
		check   func(Wechat) bool
	}{
		{"defaults", nil, "", func(c Wechat) bool {
			return !c.PhoneUnique && c.PhoneLookupsPerDay == 5 && c.WatermarkMaxAge == 5*time.Minute && len(c.APIBase) == 2
		}},
		{"set", map[string]string{VarPhoneUnique: "TRUE", VarPhoneLookupsPerDay: "0", VarWatermarkMaxAge: "90s"}, "", func(c Wechat) bool {
			return c.PhoneUnique && c.PhoneLookupsPerDay == 0 && c.WatermarkMaxAge == 90*time.Second
		}},
		{"bad bool", map[string]string{VarPhoneUnique: "yes"}, "PHONE_UNIQUE", nil},
		{"bad count", map[string]string{VarPhoneLookupsPerDay: "1001"}, "PHONE_LOOKUPS_PER_USER_PER_DAY", nil},
		{"bad duration", map[string]string{VarWatermarkMaxAge: "soon"}, "WATERMARK_MAX_AGE", nil},
		{"missing tables", map[string]string{VarTokensTable: "", VarPhonesTable: ""}, "TOKENS_TABLE", nil},
		{"no secret source", map[string]string{VarSecret: ""}, "WECHAT_SECRET", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.set {
				env[k] = v
			}
			c, err := LoadWechat(func(k string) string { return env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				if cerr := Check(func(k string) string { return env[k] }); tt.name != "missing tables" && tt.name != "no secret source" && cerr == nil {
					t.Errorf("Check accepted %v", tt.set)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("%+v, %v", c, err)
			}
		})
	}
}

var defSessions = Sessions{TTL: 336 * time.Hour, MaxPerUser: 10, Overflow: "evict_oldest", Exclusive: "none"}

func TestLoadSessions(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Sessions
		wantErr string
	}{
		{"defaults", nil, defSessions, ""},
		{"idle on: touch a tenth", map[string]string{"SESSION_IDLE_TIMEOUT": "30m"},
			Sessions{TTL: 336 * time.Hour, IdleTimeout: 30 * time.Minute, TouchInterval: 3 * time.Minute, MaxPerUser: 10, Overflow: "evict_oldest", Exclusive: "none"}, ""},
		{"short idle: touch at least 1s", map[string]string{"SESSION_IDLE_TIMEOUT": "3s"},
			Sessions{TTL: 336 * time.Hour, IdleTimeout: 3 * time.Second, TouchInterval: time.Second, MaxPerUser: 10, Overflow: "evict_oldest", Exclusive: "none"}, ""},
		{"everything set", map[string]string{"SESSION_TTL": "2s", "SESSION_IDLE_TIMEOUT": "0", "SESSION_TOUCH_INTERVAL": "5m", "SESSION_MAX_PER_USER": "0", "SESSION_OVERFLOW": "reject_new", "SESSION_EXCLUSIVE": "platform"},
			Sessions{TTL: 2 * time.Second, TouchInterval: 5 * time.Minute, Overflow: "reject_new", Exclusive: "platform"}, ""},
		{"bad values", map[string]string{"SESSION_IDLE_TIMEOUT": "10ms", "SESSION_MAX_PER_USER": "-1", "SESSION_OVERFLOW": "lru", "SESSION_EXCLUSIVE": "device"}, Sessions{},
			`configuration: invalid SESSION_MAX_PER_USER="-1" (want an integer from 0 to 1000); invalid SESSION_OVERFLOW="lru" (want one of evict_oldest, reject_new); invalid SESSION_EXCLUSIVE="device" (want one of none, platform, all); invalid SESSION_IDLE_TIMEOUT="10ms" (want 0 (off) or a Go duration ≥ 1s)`},
		{"touch not under idle", map[string]string{"SESSION_IDLE_TIMEOUT": "1m", "SESSION_TOUCH_INTERVAL": "1m"}, Sessions{},
			`configuration: invalid SESSION_TOUCH_INTERVAL="1m" (want less than SESSION_IDLE_TIMEOUT)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{"SESSIONS_TABLE": "s", VarDynamoDBEndpoint: "http://127.0.0.1:8000"} // a local run: durations down to 1 s
			for k, v := range tt.env {
				m[k] = v
			}
			got, err := LoadAuthorizer(env(m))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Sessions != tt.want {
				t.Fatalf("Sessions = %+v, %v; want %+v", got.Sessions, err, tt.want)
			}
		})
	}
}

// TestEveryVarChecked: every entry of Vars has a Kind (a variable added
// without one fails here), and Check refuses a bad value of every checked
// variable with the message a cold start gives, and accepts a good one.
func TestEveryVarChecked(t *testing.T) {
	local := map[string]string{VarDynamoDBEndpoint: "http://127.0.0.1:8000"}
	// bad and good values per Kind; "" = every value is accepted.
	samples := map[Kind][2]string{
		KindString:   {"", "anything"},
		KindDuration: {"500ms", "1h"},
		KindURLs:     {"http://ok,nope", "http://a,https://b"},
		KindURL:      {"localhost:8000", "http://127.0.0.1:8000"},
		KindBool:     {"x", "true"},
		KindInt:      {"-1", "0"},
		KindChoice:   {"bogus", ""},
	}
	for _, v := range Vars {
		t.Run(v.Name, func(t *testing.T) {
			s, ok := samples[v.Kind]
			if !ok {
				t.Fatalf("%s has no Kind (or one this test does not know): Check would not validate it", v.Name)
			}
			bad, good := s[0], s[1]
			if v.Kind == KindChoice {
				if len(v.Choices) == 0 {
					t.Fatalf("%s: KindChoice without Choices", v.Name)
				}
				good = v.Choices[len(v.Choices)-1]
			}
			if v.Kind == KindDuration && v.Name == VarSessionTouchInterval {
				good = "1s" // below the (unset) idle timeout's rule: any value ≥ 1s
			}
			if v.Kind == KindInt && v.MaxInt <= 0 {
				t.Fatalf("%s: KindInt without MaxInt", v.Name)
			}
			if bad != "" {
				err := Check(env(testutil.With(local, v.Name, bad)))
				if v.Name == VarDynamoDBEndpoint {
					err = Check(env(map[string]string{v.Name: bad}))
				}
				if err == nil || !strings.Contains(err.Error(), "invalid "+v.Name+"=") {
					t.Errorf("Check(%s=%q) = %v, want it refused", v.Name, bad, err)
				}
			}
			if err := Check(env(testutil.With(local, v.Name, good))); err != nil {
				t.Errorf("Check(%s=%q) = %v, want nil", v.Name, good, err)
			}
		})
	}
}

// TestCheckSessionSettings: the settings a newcomer found Check let
// through, and the cross-variable rule, refused as the loaders refuse them.
func TestCheckSessionSettings(t *testing.T) {
	local := map[string]string{VarDynamoDBEndpoint: "http://127.0.0.1:8000", VarSessionsTable: "s"}
	with := testutil.With
	tests := []struct {
		name, key, value, wantErr string
	}{
		{"negative cap", VarSessionMaxPerUser, "-1", `invalid SESSION_MAX_PER_USER="-1" (want an integer from 0 to 1000)`},
		{"idle below 1s", VarSessionIdleTimeout, "500ms", `invalid SESSION_IDLE_TIMEOUT="500ms" (want 0 (off) or a Go duration ≥ 1s)`},
		{"idle not a duration", VarSessionIdleTimeout, "abc", `invalid SESSION_IDLE_TIMEOUT="abc" (want 0 (off) or a Go duration ≥ 1s)`},
		{"idle off", VarSessionIdleTimeout, "0", ""},
		{"overflow", VarSessionOverflow, "bogus", `invalid SESSION_OVERFLOW="bogus" (want one of evict_oldest, reject_new)`},
		{"exclusive", VarSessionExclusive, "x", `invalid SESSION_EXCLUSIVE="x" (want one of none, platform, all)`},
		{"touch not under idle", VarSessionTouchInterval, "1m", `invalid SESSION_TOUCH_INTERVAL="1m" (want less than SESSION_IDLE_TIMEOUT)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := with(local, tt.key, tt.value)
			if tt.key == VarSessionTouchInterval {
				m = with(m, VarSessionIdleTimeout, "1m")
			}
			cerr := Check(env(m))
			_, lerr := LoadAuthorizer(env(m))
			for what, err := range map[string]error{"Check": cerr, "LoadAuthorizer": lerr} {
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("%s = %v, want nil", what, err)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Errorf("%s = %v, want it to contain %s", what, err, tt.wantErr)
				}
			}
		})
	}
}
