// Package config reads wxsession's configuration from the environment
// (docs/design.md §5) for the three Lambda functions and the local stack.
//
// An [Env] wraps a getenv function and collects every problem it meets, so
// that a cold start fails once, with one log line naming every missing or
// invalid variable, instead of one restart per mistake:
//
//	configuration: missing WECHAT_APPID, SESSIONS_TABLE; invalid SESSION_TTL="abc" (want a Go duration ≥ 1s)
//
// The typed loaders ([LoadLogin], [LoadAuthorizer], [LoadAPI]) are what the
// functions' main packages call. Values are trimmed of surrounding white
// space; a variable that is unset, empty or blank counts as unset.
//
// The WeChat app secret is not part of these structs: package secret loads
// it (from WECHAT_SECRET, SSM Parameter Store or Secrets Manager). [LoadLogin]
// only checks that one of those sources is configured, and no error of this
// package ever quotes the value of a secret-bearing variable.
package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The environment variables wxsession reads: this block and [Vars] are the
// one place their names are written (docs/design.md §5). The AWS SDK's own
// variables (AWS_REGION, AWS_ENDPOINT_URL_*, credentials) are AWS's names
// and not listed.
const (
	VarAppID                  = "WECHAT_APPID"
	VarApps                   = "WECHAT_APPS"
	VarSecret                 = "WECHAT_SECRET"
	VarSecretParameter        = "WECHAT_SECRET_PARAMETER"
	VarSecretARN              = "WECHAT_SECRET_ARN"
	VarAPIBase                = "WECHAT_API_BASE"
	VarSessionsTable          = "SESSIONS_TABLE"
	VarUsersTable             = "USERS_TABLE"
	VarProfilesTable          = "PROFILES_TABLE"
	VarSessionTTL             = "SESSION_TTL"
	VarLogLevel               = "LOG_LEVEL"
	VarDynamoDBEndpoint       = "DYNAMODB_ENDPOINT"
	VarSSMEndpoint            = "SSM_ENDPOINT"
	VarSecretsManagerEndpoint = "SECRETS_MANAGER_ENDPOINT"
	// VarMetricsNamespace is the CloudWatch namespace of the functions'
	// EMF metric lines (docs/design.md §8); unset means "wxsession".
	VarMetricsNamespace = "METRICS_NAMESPACE"

	// The WeChat server side (docs/design.md §7).
	VarTokensTable        = "TOKENS_TABLE"
	VarPhonesTable        = "PHONES_TABLE"
	VarPhoneUnique        = "PHONE_UNIQUE"
	VarPhoneLookupsPerDay = "PHONE_LOOKUPS_PER_USER_PER_DAY"
	VarWatermarkMaxAge    = "WATERMARK_MAX_AGE"
	// The session model (docs/design.md §3).
	VarSessionIdleTimeout   = "SESSION_IDLE_TIMEOUT"
	VarSessionTouchInterval = "SESSION_TOUCH_INTERVAL"
	VarSessionMaxPerUser    = "SESSION_MAX_PER_USER"
	VarSessionOverflow      = "SESSION_OVERFLOW"
	VarSessionExclusive     = "SESSION_EXCLUSIVE"
)

// Var describes one environment variable.
type Var struct {
	// Name is the variable's name.
	Name string
	// Meaning says what it holds, for documentation and error messages.
	Meaning string
	// Setting marks an operator setting: `make dev` passes a value set in
	// the shell through to every function whose template declares the
	// variable (docs/design.md §6). Wiring that the local stack provides
	// itself (tables, endpoints, the emulator's appid and secret) is not a
	// setting.
	Setting bool
	// Secret marks a variable whose value is never quoted in an error.
	Secret bool
	// Kind says how a value is parsed and validated: the functions' loaders
	// and Check both go through the same per-Kind parser, so that Check
	// accepts exactly what a cold start accepts.
	Kind Kind
	// Min is a KindDuration variable's smallest value in AWS; a local run
	// accepts LocalMinDuration (see Env.MinDuration).
	Min time.Duration
	// ZeroOff marks a KindDuration variable whose value 0 means "off" and
	// is accepted below Min (SESSION_IDLE_TIMEOUT).
	ZeroOff bool
	// MaxInt is a KindInt variable's largest value (the smallest is 0).
	MaxInt int
	// Choices are a KindChoice variable's accepted values.
	Choices []string
}

// Kind is how a variable's value is parsed and validated.
type Kind int

// Kinds. The zero Kind is no check at all: every entry of Vars names one
// (config_test enforces it).
const (
	kindUnchecked Kind = iota
	KindString         // any value (names of tables, parameters; LOG_LEVEL, which logging.New reads leniently)
	KindDuration       // a Go duration ≥ Min (≥ LocalMinDuration locally); 0 too when ZeroOff
	KindURLs           // comma-separated absolute http(s) URLs
	KindURL            // one absolute http(s) URL
	KindBool           // true or false (1 or 0)
	KindInt            // a decimal integer from 0 to MaxInt
	KindChoice         // one of Choices
)

// LocalMinDuration is the smallest duration setting a local run accepts
// (docs/design.md §5): make dev and the tests exercise expiry in seconds.
// A run is local when DYNAMODB_ENDPOINT is set, which only local runs do.
const LocalMinDuration = time.Second

// Vars is the table of every variable in the block above, in the order
// docs/design.md §5 lists them.
var Vars = []Var{
	{Name: VarAppID, Meaning: "the mini-program's appid (required by login unless WECHAT_APPS is set; with WECHAT_APPS, the default app)", Kind: KindString},
	{Name: VarApps, Meaning: "several mini-programs: appid=SSM parameter name of its secret, comma-separated (docs/design.md §7.9)", Setting: true, Kind: KindString},
	{Name: VarSecret, Meaning: "the app secret itself (local runs; in AWS use a parameter or secret)", Secret: true, Kind: KindString},
	{Name: VarSecretParameter, Meaning: "SSM Parameter Store name of the app secret (SecureString)", Kind: KindString},
	{Name: VarSecretARN, Meaning: "Secrets Manager ARN or name of the app secret", Kind: KindString},
	{Name: VarAPIBase, Meaning: "WeChat API base URLs, comma-separated, tried in order", Kind: KindURLs},
	{Name: VarSessionsTable, Meaning: "the sessions table", Kind: KindString},
	{Name: VarUsersTable, Meaning: "the users table (login; api for DELETE /me)", Kind: KindString},
	{Name: VarProfilesTable, Meaning: "the profiles table (api)", Kind: KindString},
	{Name: VarSessionTTL, Meaning: "absolute session lifetime, a Go duration (default 336h); the authorizer refuses longer ones", Setting: true, Kind: KindDuration, Min: MinSessionTTL},
	{Name: VarSessionIdleTimeout, Meaning: "end a session unused this long; 0 (default) = off, else ≥ the SESSION_TTL minimum", Setting: true, Kind: KindDuration, Min: MinSessionTTL, ZeroOff: true},
	{Name: VarSessionTouchInterval, Meaning: "least time between two renewal writes of a session (default a tenth of the idle timeout, ≥ 1s)", Setting: true, Kind: KindDuration, Min: MinTouchInterval},
	{Name: VarSessionMaxPerUser, Meaning: "most active sessions per user (default 10; 0 = no cap)", Setting: true, Kind: KindInt, MaxInt: MaxMaxPerUser},
	{Name: VarSessionOverflow, Meaning: "at the cap: evict_oldest (default) or reject_new (409 too_many_sessions)", Setting: true, Kind: KindChoice, Choices: []string{OverflowEvictOldest, OverflowRejectNew}},
	{Name: VarSessionExclusive, Meaning: "none (default), platform (one session per device.platform) or all (one per user)", Setting: true, Kind: KindChoice, Choices: []string{ExclusiveNone, ExclusivePlatform, ExclusiveAll}},
	{Name: VarLogLevel, Meaning: "debug, info, warn or error (an unknown level logs at info with a warning; it does not stop a cold start)", Setting: true, Kind: KindString},
	{Name: VarDynamoDBEndpoint, Meaning: "DynamoDB endpoint URL (local runs only; unset = AWS)", Kind: KindURL},
	{Name: VarSSMEndpoint, Meaning: "SSM endpoint URL override (local runs and tests)", Kind: KindURL},
	{Name: VarSecretsManagerEndpoint, Meaning: "Secrets Manager endpoint URL override (local runs and tests)", Kind: KindURL},
	{Name: VarMetricsNamespace, Meaning: "CloudWatch namespace of the EMF metric lines; unset means wxsession", Kind: KindString},
	{Name: VarTokensTable, Meaning: "the tokens table: the shared access_token per appid (wechat)", Kind: KindString},
	{Name: VarPhonesTable, Meaning: "the phones table: bindings, paid-lookup counters, phone code records (wechat; api for DELETE /me)", Kind: KindString},
	{Name: VarPhoneUnique, Meaning: "true: a phone number is bound to at most one user (409 phone_in_use)", Setting: true, Kind: KindBool},
	{Name: VarPhoneLookupsPerDay, Meaning: "paid phone number lookups per user per day, China time (default 5)", Setting: true, Kind: KindInt, MaxInt: MaxPhoneLookupsPerDay},
	{Name: VarWatermarkMaxAge, Meaning: "how old the watermark of encryptedData may be, a Go duration (default 5m)", Setting: true, Kind: KindDuration, Min: time.Second},
}

// Check validates every variable of Vars with the parsers the functions'
// loaders use at cold start (the session model's cross-variable rules
// included), and reports every problem at once (an *Error). Unset variables
// are not reported: which ones a function requires is its loader's
// business. The local stack runs it on each function's environment before
// starting anything, so that a bad value (SESSION_TTL=abc, SESSION_TTL=3s
// in AWS, SESSION_OVERFLOW=bogus) stops `make dev` with the message instead
// of failing the functions' start.
func Check(getenv func(string) string) error {
	e := NewEnv(getenv)
	e.sessions()
	for _, v := range Vars {
		if !e.read[v.Name] {
			e.check(v)
		}
	}
	return e.Err()
}

// check parses v's value by its Kind, recording a problem if it is invalid.
func (e *Env) check(v Var) {
	switch v.Kind {
	case KindDuration:
		e.DurationVar(v.Name, 0)
	case KindURLs:
		e.URLs(v.Name, nil)
	case KindURL:
		e.URL(v.Name, "")
	case KindBool:
		e.Bool(v.Name, false)
	case KindInt:
		e.IntVar(v.Name, 0)
	case KindChoice:
		e.Choice(v.Name, "")
	case KindString:
		e.String(v.Name, "")
	default:
		panic("config: " + v.Name + " has no Kind")
	}
}

// lookupVar returns name's entry of Vars; a name missing from the table is
// a programming error.
func lookupVar(name string) Var {
	for _, v := range Vars {
		if v.Name == name {
			return v
		}
	}
	panic("config: " + name + " is not in config.Vars")
}

// mark records that name was parsed by its entry of Vars (Check then does
// not parse it again).
func (e *Env) mark(name string) {
	if e.read == nil {
		e.read = map[string]bool{}
	}
	e.read[name] = true
}

// DurationVar returns name (a KindDuration entry of Vars) as a Go duration
// of at least its Min (MinDuration: LocalMinDuration in a local run), or 0
// when the entry is ZeroOff and the value is 0, or def when it is unset or
// blank. Anything else is recorded as invalid and def is returned.
func (e *Env) DurationVar(name string, def time.Duration) time.Duration {
	v := lookupVar(name)
	e.mark(name)
	min := e.MinDuration(v.Min)
	if !v.ZeroOff {
		return e.Duration(name, def, min)
	}
	s := e.lookup(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d != 0 && d < min {
		e.Invalid(name, s, "want 0 (off) or a Go duration ≥ "+shortDuration(min))
		return def
	}
	return d
}

// IntVar returns name (a KindInt entry of Vars) as an integer from 0 to
// its MaxInt, or def when it is unset or blank (see [Env.Int]).
func (e *Env) IntVar(name string, def int) int {
	v := lookupVar(name)
	e.mark(name)
	return e.Int(name, def, 0, v.MaxInt)
}

// Choice returns name (a KindChoice entry of Vars) if its value is one of
// the entry's Choices, or def when it is unset or blank; anything else is
// recorded as invalid and def is returned.
func (e *Env) Choice(name, def string) string {
	v := lookupVar(name)
	e.mark(name)
	return e.Enum(name, def, v.Choices...)
}

// Settings returns the names of the variables marked Setting.
func Settings() []string {
	var out []string
	for _, v := range Vars {
		if v.Setting {
			out = append(out, v.Name)
		}
	}
	return out
}

// DefaultAPIBase is WeChat's API hosts, the list WECHAT_API_BASE stands for
// when unset: the main host, then the disaster-recovery host WeChat
// documents for failover. The WeChat client uses it too (config links no
// WeChat code, so the authorizer can import it).
var DefaultAPIBase = []string{"https://api.weixin.qq.com", "https://api2.weixin.qq.com"}

// Defaults of the WeChat server side (docs/design.md §7).
const (
	DefaultPhoneLookupsPerDay = 5
	MaxPhoneLookupsPerDay     = 1000
	DefaultWatermarkMaxAge    = 5 * time.Minute
)

// Defaults and limits (docs/design.md §5).
const (
	// DefaultSessionTTL is 14 days, Django's SESSION_COOKIE_AGE.
	DefaultSessionTTL = 336 * time.Hour
	// MinSessionTTL is the shortest SESSION_TTL accepted in AWS (a local run
	// accepts LocalMinDuration).
	MinSessionTTL = time.Minute
	// DefaultMaxPerUser is SESSION_MAX_PER_USER's default.
	DefaultMaxPerUser = 10
	// MaxMaxPerUser bounds SESSION_MAX_PER_USER (0 = no cap).
	MaxMaxPerUser = 1000
	// MinTouchInterval is the shortest SESSION_TOUCH_INTERVAL, and of its
	// default.
	MinTouchInterval = time.Second
)

// SESSION_OVERFLOW and SESSION_EXCLUSIVE values.
const (
	OverflowEvictOldest = "evict_oldest"
	OverflowRejectNew   = "reject_new"
	ExclusiveNone       = "none"
	ExclusivePlatform   = "platform"
	ExclusiveAll        = "all"
)

// Sessions is the session model's configuration (docs/design.md §3, §5).
type Sessions struct {
	TTL           time.Duration // SESSION_TTL, default 336h, ≥ 1s
	IdleTimeout   time.Duration // SESSION_IDLE_TIMEOUT, default 0 = off, else ≥ 1s
	TouchInterval time.Duration // SESSION_TOUCH_INTERVAL, default max(idle/10, 1s); 0 when idle is off and it is unset
	MaxPerUser    int           // SESSION_MAX_PER_USER, default 10, 0 = no cap
	Overflow      string        // SESSION_OVERFLOW: evict_oldest (default) or reject_new
	Exclusive     string        // SESSION_EXCLUSIVE: none (default), platform or all
}

// sessions reads the session model's variables.
func (e *Env) sessions() Sessions {
	c := Sessions{
		TTL:        e.DurationVar(VarSessionTTL, DefaultSessionTTL),
		MaxPerUser: e.IntVar(VarSessionMaxPerUser, DefaultMaxPerUser),
		Overflow:   e.Choice(VarSessionOverflow, OverflowEvictOldest),
		Exclusive:  e.Choice(VarSessionExclusive, ExclusiveNone),
	}
	c.IdleTimeout = e.DurationVar(VarSessionIdleTimeout, 0)
	def := time.Duration(0)
	if c.IdleTimeout > 0 {
		def = max(c.IdleTimeout/10, MinTouchInterval)
	}
	c.TouchInterval = e.DurationVar(VarSessionTouchInterval, def)
	if c.IdleTimeout > 0 && c.TouchInterval >= c.IdleTimeout {
		e.Invalid(VarSessionTouchInterval, e.lookup(VarSessionTouchInterval), "want less than SESSION_IDLE_TIMEOUT")
	}
	return c
}

// Enum returns name's value if it is one of allowed, or def when it is
// unset or blank; anything else is recorded as invalid.
func (e *Env) Enum(name, def string, allowed ...string) string {
	v := e.lookup(name)
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.Invalid(name, v, "want one of "+strings.Join(allowed, ", "))
	return def
}

// maxQuotedValueLength caps how much of an invalid value an error quotes.
const maxQuotedValueLength = 64

// Env reads variables through a getenv function and records every missing
// or invalid one; [Env.Err] reports them all at once. The zero value is not
// usable; call [NewEnv].
type Env struct {
	getenv  func(string) string
	missing []string
	invalid []string
	read    map[string]bool // names parsed by their entry of Vars (see mark)
}

// NewEnv returns an Env reading variables through getenv (os.Getenv in
// production, a map lookup in tests).
func NewEnv(getenv func(string) string) *Env {
	return &Env{getenv: getenv}
}

func (e *Env) lookup(name string) string {
	return strings.TrimSpace(e.getenv(name))
}

// Required returns the value of name; if it is unset or blank, it records
// name as missing and returns "".
func (e *Env) Required(name string) string {
	v := e.lookup(name)
	if v == "" {
		e.missing = append(e.missing, name)
	}
	return v
}

// String returns the value of name, or def when it is unset or blank.
func (e *Env) String(name, def string) string {
	if v := e.lookup(name); v != "" {
		return v
	}
	return def
}

// Duration returns name parsed as a Go duration (time.ParseDuration), or def
// when it is unset or blank. A value that does not parse or is below min is
// recorded as invalid (the message names the variable and quotes the value)
// and def is returned.
func (e *Env) Duration(name string, def, min time.Duration) time.Duration {
	v := e.lookup(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		e.Invalid(name, v, "want a Go duration ≥ "+shortDuration(min))
		return def
	}
	return d
}

// Local reports whether this is a local run: DYNAMODB_ENDPOINT is set
// (make dev, the tests), which a deployed function never has.
func (e *Env) Local() bool { return e.lookup(VarDynamoDBEndpoint) != "" }

// MinDuration returns deployed, or LocalMinDuration in a local run (see
// Local), the smallest value a duration setting accepts.
func (e *Env) MinDuration(deployed time.Duration) time.Duration {
	if e.Local() {
		return min(deployed, LocalMinDuration)
	}
	return deployed
}

// URL returns name as an absolute http or https URL without a trailing
// slash, or def when it is unset or blank. Anything else is recorded as
// invalid and def is returned.
func (e *Env) URL(name, def string) string {
	v := e.lookup(name)
	if v == "" {
		return def
	}
	u, ok := e.checkURL(name, v)
	if !ok {
		return def
	}
	return u
}

// URLs is [Env.URL] for a comma-separated list of URLs (WECHAT_API_BASE:
// tried in order, for failover), parsed here once into a list: spaces,
// trailing slashes and empty elements dropped. It returns a copy of def
// when the variable is unset or lists nothing; each invalid element is
// recorded and then a copy of def is returned.
func (e *Env) URLs(name string, def []string) []string {
	var out []string
	ok := true
	for _, part := range strings.Split(e.lookup(name), ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		u, good := e.checkURL(name, part)
		ok = ok && good
		out = append(out, u)
	}
	if !ok || len(out) == 0 {
		return append([]string(nil), def...)
	}
	return out
}

// checkURL validates one URL value, recording a problem if it is invalid.
func (e *Env) checkURL(name, v string) (string, bool) {
	u, err := url.Parse(v)
	switch {
	case err == nil && u.User != nil:
		// Credentials have no place in this variable; the value is not
		// quoted so that they do not reach the logs either.
		e.invalid = append(e.invalid, name+" (want an http(s) URL without user info)")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.Port() == "" && strings.HasSuffix(u.Host, ":"):
		e.Invalid(name, v, "want an absolute http(s) URL without query")
	default:
		return strings.TrimRight(v, "/"), true
	}
	return "", false
}

// OneOf records a problem unless at least one of names is set, and returns
// the first name that is set (never its value, so that a secret-bearing
// variable can be checked without reading it into the caller).
func (e *Env) OneOf(names ...string) string {
	for _, n := range names {
		if e.lookup(n) != "" {
			return n
		}
	}
	e.missing = append(e.missing, "one of "+strings.Join(names, "/"))
	return ""
}

// Invalid records that name holds value, which is not acceptable; want says
// what is expected. Do not pass the value of a secret-bearing variable.
func (e *Env) Invalid(name, value, want string) {
	if len(value) > maxQuotedValueLength {
		value = value[:maxQuotedValueLength] + "…"
	}
	e.invalid = append(e.invalid, fmt.Sprintf("%s=%q (%s)", name, value, want))
}

// Err returns nil if nothing was missing or invalid, else one *Error listing
// every problem met so far.
func (e *Env) Err() error {
	if len(e.missing) == 0 && len(e.invalid) == 0 {
		return nil
	}
	return &Error{
		Missing: append([]string(nil), e.missing...),
		Invalid: append([]string(nil), e.invalid...),
	}
}

// Error lists every missing and invalid variable found by an [Env].
type Error struct {
	Missing []string // variable names, in the order they were read
	Invalid []string // `NAME="value" (what is wanted)` descriptions
}

// Error formats the problems as one line, e.g.
// `configuration: missing A, B; invalid C="x" (want ...)`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("configuration: ")
	if len(e.Missing) > 0 {
		b.WriteString("missing ")
		b.WriteString(strings.Join(e.Missing, ", "))
	}
	if len(e.Invalid) > 0 {
		if len(e.Missing) > 0 {
			b.WriteString("; ")
		}
		b.WriteString("invalid ")
		b.WriteString(strings.Join(e.Invalid, "; invalid "))
	}
	return b.String()
}

// Bool returns name as a boolean ("true"/"false", "1"/"0", any case), or
// def when it is unset or blank; anything else is recorded as invalid.
func (e *Env) Bool(name string, def bool) bool {
	switch v := strings.ToLower(e.lookup(name)); v {
	case "":
		return def
	case "true", "1":
		return true
	case "false", "0":
		return false
	default:
		e.Invalid(name, v, "want true or false")
		return def
	}
}

// Int returns name as a decimal integer in [min, max], or def when it is
// unset or blank; anything else is recorded as invalid.
func (e *Env) Int(name string, def, min, max int) int {
	v := e.lookup(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.Invalid(name, v, fmt.Sprintf("want an integer from %d to %d", min, max))
		return def
	}
	return n
}

// shortDuration formats d like time.Duration.String without the trailing
// zero units ("1m" rather than "1m0s", "336h" rather than "336h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// App is one mini-program a deployment serves (docs/design.md §7.9).
type App struct {
	// AppID is the mini-program's appid.
	AppID string
	// SecretParameter is the SSM Parameter Store name of its app secret
	// (from WECHAT_APPS); "" for the one app of a deployment without
	// WECHAT_APPS, whose secret comes from WECHAT_SECRET,
	// WECHAT_SECRET_PARAMETER or WECHAT_SECRET_ARN as before.
	SecretParameter string
}

// MaxApps bounds WECHAT_APPS: each app costs one secret read at cold start.
const MaxApps = 20

// Apps reads WECHAT_APPID and WECHAT_APPS: the apps served, the default
// (the client names none) first. Without WECHAT_APPS it is the one app
// WECHAT_APPID names, and a secret source must be set. With WECHAT_APPS
// ("wxA=/wxsession/apps/wxA,wxB=/wxsession/apps/wxB"), each entry is an
// appid and the SSM parameter of its secret; WECHAT_APPID, if set, must be
// one of them and is the default, else the first entry is. Call
// [Env.secretSource] after it.
func (e *Env) Apps() []App {
	list := e.lookup(VarApps)
	if list == "" {
		return []App{{AppID: e.Required(VarAppID)}}
	}
	var out []App
	seen := map[string]bool{}
	for _, part := range strings.Split(list, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, param, ok := strings.Cut(part, "=")
		id, param = strings.TrimSpace(id), strings.TrimSpace(param)
		switch {
		case !ok || !ValidAppID(id) || param == "" || strings.ContainsAny(param, " =") || seen[id]:
			e.Invalid(VarApps, list, "want appid=SSM parameter name, comma-separated, each appid once")
			return nil
		}
		seen[id] = true
		out = append(out, App{AppID: id, SecretParameter: param})
	}
	if len(out) == 0 || len(out) > MaxApps {
		e.Invalid(VarApps, list, fmt.Sprintf("want 1 to %d apps", MaxApps))
		return nil
	}
	if def := e.lookup(VarAppID); def != "" {
		i := slices.IndexFunc(out, func(a App) bool { return a.AppID == def })
		if i < 0 {
			e.Invalid(VarAppID, def, "want one of the appids of "+VarApps)
			return nil
		}
		out[0], out[i] = out[i], out[0]
	}
	return out
}

// secretSource requires one of WECHAT_SECRET, WECHAT_SECRET_PARAMETER and
// WECHAT_SECRET_ARN unless WECHAT_APPS names each app's parameter.
func (e *Env) secretSource() {
	if e.lookup(VarApps) == "" {
		e.OneOf(VarSecret, VarSecretParameter, VarSecretARN)
	}
}

// ValidAppID reports whether s looks like an appid: 1 to 32 characters of
// A-Z, a-z, 0-9 (WeChat's are "wx" and 16 hex digits).
func ValidAppID(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Login is the login function's configuration. The app secrets are loaded
// separately by package secret.
type Login struct {
	AppID         string   // the default app: WECHAT_APPID, or the first of WECHAT_APPS
	Apps          []App    // the apps served, the default first (docs/design.md §7.9)
	APIBase       []string // WECHAT_API_BASE: base URLs in failover order; default DefaultAPIBase
	SessionsTable string   // SESSIONS_TABLE, required
	UsersTable    string   // USERS_TABLE, required
	Sessions      Sessions // SESSION_* (docs/design.md §3)
	// MetricsNamespace is METRICS_NAMESPACE ("" = the metrics package's default).
	MetricsNamespace string
}

// LoadLogin reads the login function's configuration. It also requires one
// of WECHAT_SECRET, WECHAT_SECRET_PARAMETER or WECHAT_SECRET_ARN to be set
// (without reading the secret), so that every configuration mistake shows
// up in the same error.
func LoadLogin(getenv func(string) string) (Login, error) {
	e := NewEnv(getenv)
	c := Login{
		Apps:          e.Apps(),
		SessionsTable: e.Required(VarSessionsTable),
		UsersTable:    e.Required(VarUsersTable),
	}
	if len(c.Apps) > 0 {
		c.AppID = c.Apps[0].AppID
	}
	e.secretSource()
	c.APIBase = e.URLs(VarAPIBase, DefaultAPIBase)
	c.Sessions = e.sessions()
	c.MetricsNamespace = e.String(VarMetricsNamespace, "")
	return c, e.Err()
}

// Authorizer is the authorizer function's configuration.
type Authorizer struct {
	SessionsTable    string   // SESSIONS_TABLE, required
	MetricsNamespace string   // METRICS_NAMESPACE ("" = the metrics package's default)
	Sessions         Sessions // SESSION_TTL (the longest plausible lifetime), the idle timeout and the touch interval
}

// LoadAuthorizer reads the authorizer function's configuration.
func LoadAuthorizer(getenv func(string) string) (Authorizer, error) {
	e := NewEnv(getenv)
	c := Authorizer{SessionsTable: e.Required(VarSessionsTable), MetricsNamespace: e.String(VarMetricsNamespace, ""), Sessions: e.sessions()}
	return c, e.Err()
}

// API is the business (api) function's configuration.
type API struct {
	SessionsTable string   // SESSIONS_TABLE, required (logout ends sessions)
	UsersTable    string   // USERS_TABLE, required (DELETE /me deletes the user record)
	ProfilesTable string   // PROFILES_TABLE, required
	PhonesTable   string   // PHONES_TABLE, required (DELETE /me deletes the phone binding)
	Sessions      Sessions // SESSION_TTL: GET /session refuses implausible sessions as the authorizer does
	// MetricsNamespace is METRICS_NAMESPACE ("" = the metrics package's default).
	MetricsNamespace string
}

// LoadAPI reads the api function's configuration.
func LoadAPI(getenv func(string) string) (API, error) {
	e := NewEnv(getenv)
	c := API{
		SessionsTable: e.Required(VarSessionsTable),
		UsersTable:    e.Required(VarUsersTable),
		ProfilesTable: e.Required(VarProfilesTable),
		PhonesTable:   e.Required(VarPhonesTable),
		Sessions:      e.sessions(),
	}
	c.MetricsNamespace = e.String(VarMetricsNamespace, "")
	return c, e.Err()
}

// WeChatAPI is what a function calling WeChat server APIs with the shared
// access_token needs (package wxapi). The app secret is loaded separately.
type WeChatAPI struct {
	AppID            string   // the default app: WECHAT_APPID, or the first of WECHAT_APPS
	Apps             []App    // the apps served, the default first (docs/design.md §7.9)
	APIBase          []string // WECHAT_API_BASE, default DefaultAPIBase
	TokensTable      string   // TOKENS_TABLE, required
	MetricsNamespace string   // METRICS_NAMESPACE ("" = the metrics package's default)
}

// LoadWeChatAPI reads a WeChat-calling function's configuration; it also
// requires a source of the app secret (the token's refresh needs it).
func LoadWeChatAPI(getenv func(string) string) (WeChatAPI, error) {
	e := NewEnv(getenv)
	c := loadWeChatAPI(e)
	return c, e.Err()
}

func loadWeChatAPI(e *Env) WeChatAPI {
	c := WeChatAPI{Apps: e.Apps(), TokensTable: e.Required(VarTokensTable),
		MetricsNamespace: e.String(VarMetricsNamespace, "")}
	if len(c.Apps) > 0 {
		c.AppID = c.Apps[0].AppID
	}
	e.secretSource()
	c.APIBase = e.URLs(VarAPIBase, DefaultAPIBase)
	return c
}

// Wechat is the wechat function's configuration (/me/phone, /me/decrypt,
// /me/session-key).
type Wechat struct {
	WeChatAPI
	UsersTable         string        // USERS_TABLE, required (the session_key)
	PhonesTable        string        // PHONES_TABLE, required
	PhoneUnique        bool          // PHONE_UNIQUE, default false
	PhoneLookupsPerDay int           // PHONE_LOOKUPS_PER_USER_PER_DAY, default 5, 0..1000
	WatermarkMaxAge    time.Duration // WATERMARK_MAX_AGE, default 5m, at least 1s
}

// LoadWechat reads the wechat function's configuration.
func LoadWechat(getenv func(string) string) (Wechat, error) {
	e := NewEnv(getenv)
	c := Wechat{
		WeChatAPI:   loadWeChatAPI(e),
		UsersTable:  e.Required(VarUsersTable),
		PhonesTable: e.Required(VarPhonesTable),
	}
	c.PhoneUnique = e.Bool(VarPhoneUnique, false)
	c.PhoneLookupsPerDay = e.IntVar(VarPhoneLookupsPerDay, DefaultPhoneLookupsPerDay)
	c.WatermarkMaxAge = e.DurationVar(VarWatermarkMaxAge, DefaultWatermarkMaxAge)
	return c, e.Err()
}
