// Package wechatemu emulates WeChat's mini-program server APIs for tests and
// the local stack (docs/design.md §6 and §7). An *Emulator is an
// http.Handler:
//
//	GET    /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
//	POST   /cgi-bin/stable_token  {"grant_type":"client_credential","appid","secret","force_refresh"?}
//	POST   /wxa/business/getuserphonenumber?access_token=  {"code","openid"?}
//	GET    /wxa/checksession?access_token=&openid=&signature=&sig_method=hmac_sha256
//	GET    /wxa/resetusersessionkey?access_token=&openid=&signature=&sig_method=hmac_sha256
//	POST   /wxa/getwxacodeunlimit?access_token=  {"scene", ...}  -> image/png
//	POST   /test/codes   {"openid"?, "unionid"?, "appid"?}  -> {"code", "openid", "unionid"?, "appid"}
//	POST   /test/phone-codes  {"openid", "phone_number"?, "country_code"?}  -> {"code"}
//	POST   /test/encrypted-data  {"openid", "data", "appid"?, "timestamp"?}  -> {"encryptedData","iv"}
//	POST   /test/tokens/invalidate  -> 204: every access_token issued so far answers 40001
//	POST   /test/faults  {"api"?, "errcode"?, "status"?, "delay_ms"?, "body"?, "count"}  -> 200 {"armed": {...}}
//	DELETE /test/faults  -> 204
//	GET    /test/stats   -> Stats as JSON (calls per API, among others)
//	GET    /test/health  -> {"status":"ok"}
//
// The WeChat APIs answer like WeChat: HTTP 200, a JSON body that is either
// the answer or {"errcode","errmsg"} with WeChat's texts and a trailing
// "rid: ..."; jscode2session and the token APIs say Content-Type
// text/plain. jscode2session checks its parameters in WeChat's order:
// appid missing 41002, wrong appid 40013, secret missing 41004, wrong
// secret 40125, a grant_type other than authorization_code 40002 (a
// missing grant_type is accepted, as WeChat does), js_code missing 41008,
// unknown or expired code 40029, code already exchanged 40163.
//
// stable_token follows WeChat's rules: in normal mode the same token until
// its last 5 minutes (then a new one; the old stays valid until it
// expires); force_refresh revokes every earlier token and issues a new one,
// except within 30 s of the previous forced refresh (the current token is
// answered) and beyond 20 a day in China time (45009). APIs that take an
// access_token answer 41001 without one, 40001 for an unknown or revoked
// one, 42001 for an expired one.
//
// Codes are what wx.login() hands a mini-program: 32 characters of
// [A-Za-z0-9] from crypto/rand, valid for CodeTTL (5 minutes), usable once.
// Each successful exchange rotates the user's session_key (16 random bytes,
// base64: 24 characters, an AES-128 key like WeChat's). New openids look like
// WeChat's: "o" followed by 27 characters of [A-Za-z0-9_-]. getPhoneNumber
// codes are 64 hex characters, valid for CodeTTL, usable once (40029
// afterwards).
//
// Several apps (docs/design.md §7.9): Config.AppIDs adds appids served
// besides AppID, all with the same secret. A code belongs to the app
// POST /test/codes named (default AppID); exchanged with another appid it
// is 40029, as at WeChat. Each app has its own stable_token state (current
// token, forced refreshes), a token works for its app's calls only and
// getuserphonenumber's watermark names the token's app. Users (openid →
// unionid, session_key) are shared: give each app its own openids and one
// unionid to model one person in two apps.
//
// Faults: the next Count requests of the fault's API (default
// jscode2session), whatever their parameters, are answered by the fault
// instead (one fault consumed per request). A faulted request does NOT
// consume the code, so a client retrying with the same code after a fault
// succeeds. A fault with only DelayMS set is a slow but real answer: after
// the delay the request is served normally (and the code consumed); if the
// caller gives up during the delay nothing happens.
package wechatemu

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of the local stack: the emulator and the functions run by
// `make dev` use the same pair, so nothing needs configuring. They are not
// real credentials.
const (
	DefaultAppID   = "wx0000000000local"
	DefaultSecret  = "local-dev-secret-0000000000000000"
	DefaultCodeTTL = 5 * time.Minute
	// DefaultTokenTTL is the lifetime of an access_token (WeChat: 7200 s).
	DefaultTokenTTL = 7200 * time.Second
)

// Limits on faults.
const (
	maxDelayMS  = 60_000
	maxIDLength = 128
)

// Config configures an Emulator.
type Config struct {
	// AppID is the mini-program's appid; default DefaultAppID.
	AppID string
	// Secret is the app secret; default DefaultSecret.
	Secret string
	// AppIDs are further appids served, with the same Secret (several
	// mini-programs in one deployment).
	AppIDs []string
	// CodeTTL is how long a code stays valid; default 5 minutes.
	CodeTTL time.Duration
	// TokenTTL is the access_token lifetime; default 7200 s, as WeChat.
	TokenTTL time.Duration
	// Now is the clock; default time.Now. Tests inject one to expire codes.
	Now func() time.Time
	// Logger gets one line per exchange (openids masked, no codes, no
	// session_keys); default slog.Default().
	Logger *slog.Logger
}

// The APIs the emulator serves, as named by Fault.API and Stats (docs/design.md §6).
const (
	APIJSCode2Session      = "jscode2session"
	APIStableToken         = "stable_token"
	APIGetUserPhoneNumber  = "getuserphonenumber"
	APICheckSession        = "checksession"
	APIResetUserSessionKey = "resetusersessionkey"
	APIGetWXACodeUnlimit   = "getwxacodeunlimit"
)

// apis lists every API a fault may name.
var apis = []string{APIJSCode2Session, APIStableToken, APIGetUserPhoneNumber, APICheckSession,
	APIResetUserSessionKey, APIGetWXACodeUnlimit}

// Fault makes the next Count requests of one API (API, default
// jscode2session) fail. Errcode answers
// {"errcode":N,"errmsg":"..."}; Status sets the HTTP status (default 200; a
// status-only fault answers that status with a short HTML body, as a proxy
// would); DelayMS waits before answering (cut short if the caller goes away);
// Body replaces the body verbatim (an empty string gives an empty body).
type Fault struct {
	API     string  `json:"api"`
	Errcode *int    `json:"errcode"`
	Status  int     `json:"status"`
	DelayMS int     `json:"delay_ms"`
	Body    *string `json:"body"`
	Count   int     `json:"count"`
}

// ErrcodeFault returns a Fault answering errcode for the next count requests.
func ErrcodeFault(errcode, count int) Fault {
	return Fault{Errcode: &errcode, Count: count}
}

// StatusFault returns a Fault answering HTTP status for the next count
// requests.
func StatusFault(status, count int) Fault {
	return Fault{Status: status, Count: count}
}

// BodyFault returns a Fault answering body (HTTP 200) for the next count
// requests.
func BodyFault(body string, count int) Fault {
	return Fault{Body: &body, Count: count}
}

// DelayFault returns a Fault delaying the next count requests, which are then
// served normally.
func DelayFault(delay time.Duration, count int) Fault {
	return Fault{DelayMS: int(delay / time.Millisecond), Count: count}
}

// validate checks a fault as POST /test/faults does.
func (f Fault) validate() error {
	switch {
	case f.API != "" && !slices.Contains(apis, f.API):
		return fmt.Errorf("api must be one of %s", strings.Join(apis, ", "))
	case f.Count < 1:
		return errors.New("count must be at least 1")
	case f.Errcode != nil && *f.Errcode == 0:
		return errors.New("errcode 0 is success, not a fault")
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return errors.New("status must be between 200 and 599")
	case f.DelayMS < 0 || f.DelayMS > maxDelayMS:
		return fmt.Errorf("delay_ms must be between 0 and %d", maxDelayMS)
	case f.Errcode == nil && f.Status == 0 && f.DelayMS == 0 && f.Body == nil:
		return errors.New("a fault needs errcode, status, delay_ms or body")
	}
	return nil
}

// replaces reports whether the fault replaces the answer (rather than only
// delaying it).
func (f Fault) replaces() bool {
	return f.Errcode != nil || f.Status != 0 || f.Body != nil
}

// Stats counts what the emulator served since it was created.
type Stats struct {
	// JSCode2Session, StableToken, GetUserPhoneNumber, CheckSession,
	// ResetUserSessionKey and GetWXACodeUnlimit count the calls of each API
	// served (faulted ones included): how many times "WeChat" was called.
	JSCode2Session      int `json:"jscode2session"`
	StableToken         int `json:"stable_token"`
	GetUserPhoneNumber  int `json:"getuserphonenumber"`
	CheckSession        int `json:"checksession"`
	ResetUserSessionKey int `json:"resetusersessionkey"`
	GetWXACodeUnlimit   int `json:"getwxacodeunlimit"`
	// StableTokenByApp counts the stable_token calls with a valid appid
	// and secret, by appid.
	StableTokenByApp map[string]int `json:"stable_token_by_app"`
	// StableTokenForced counts stable_token calls with force_refresh true
	// that replaced the token.
	StableTokenForced int `json:"stable_token_forced"`
	// PhoneCodesIssued is the number of getPhoneNumber codes handed out.
	PhoneCodesIssued int `json:"phone_codes_issued"`

	// Requests is the number of jscode2session requests received (the
	// same as JSCode2Session).
	Requests int `json:"requests"`
	// Succeeded is the number of exchanges that returned an identity.
	Succeeded int `json:"succeeded"`
	// Faulted is the number of requests answered by an injected fault.
	Faulted int `json:"faulted"`
	// Errcodes counts errcode answers by errcode, faults included.
	Errcodes map[int]int `json:"errcodes"`
	// Abandoned is the number of requests whose caller went away during a
	// fault's delay.
	Abandoned int `json:"abandoned"`
	// CodesIssued is the number of codes handed out.
	CodesIssued int `json:"codes_issued"`
}

// Issued is a code handed out by Issue.
type Issued struct {
	Code    string `json:"code"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	AppID   string `json:"appid"`
}

// Emulator is an in-memory WeChat jscode2session service. It is safe for
// concurrent use.
type Emulator struct {
	appID  string
	appIDs []string // every appid served, appID first
	secret string
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger

	tokenTTL time.Duration

	mu         sync.Mutex
	codes      map[string]*codeEntry
	users      map[string]*user
	faults     map[string]Fault // by API; Count is what is left
	stats      Stats
	nextSweep  int
	phoneCodes map[string]*phoneCode
	tokens     map[string]*accessToken
	apps       map[string]*tokenState // by appid
}

// tokenState is one app's stable_token state.
type tokenState struct {
	current    string    // the access_token normal stable_token calls return
	lastForced time.Time // the latest forced refresh that replaced the token
	forcedDay  string    // the day (UTC+8) forcedN counts
	forcedN    int
}

type codeEntry struct {
	appid   string
	openid  string
	expires time.Time
	used    bool
}

type user struct {
	unionid    string
	sessionKey string
}

// New builds an Emulator; zero Config fields take their defaults.
func New(cfg Config) *Emulator {
	e := &Emulator{
		appID:      cfg.AppID,
		secret:     cfg.Secret,
		ttl:        cfg.CodeTTL,
		now:        cfg.Now,
		log:        cfg.Logger,
		tokenTTL:   cfg.TokenTTL,
		codes:      make(map[string]*codeEntry),
		users:      make(map[string]*user),
		faults:     make(map[string]Fault),
		stats:      Stats{Errcodes: make(map[int]int), StableTokenByApp: make(map[string]int)},
		nextSweep:  1024,
		phoneCodes: make(map[string]*phoneCode),
		tokens:     make(map[string]*accessToken),
	}
	if e.tokenTTL <= 0 {
		e.tokenTTL = DefaultTokenTTL
	}
	if e.appID == "" {
		e.appID = DefaultAppID
	}
	e.apps = map[string]*tokenState{e.appID: {}}
	e.appIDs = []string{e.appID}
	e.AddApps(cfg.AppIDs...)
	if e.secret == "" {
		e.secret = DefaultSecret
	}
	if e.ttl <= 0 {
		e.ttl = DefaultCodeTTL
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e
}

// AppID returns the appid the emulator accepts (the first, if several).
func (e *Emulator) AppID() string { return e.appID }

// AppIDs returns every appid the emulator serves, AppID first.
func (e *Emulator) AppIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.appIDs)
}

// AddApps makes the emulator serve appids too (with its secret); appids
// already served are skipped. The local stack calls it when the functions
// are told to serve several apps (WECHAT_APPS).
func (e *Emulator) AddApps(appids ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range appids {
		if _, dup := e.apps[a]; a != "" && !dup {
			e.apps[a] = &tokenState{}
			e.appIDs = append(e.appIDs, a)
		}
	}
}

// serves reports whether appid is one of the emulator's apps.
func (e *Emulator) serves(appid string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.apps[appid] != nil
}

// IssueCode hands out a code for openid (a new random openid when empty),
// like POST /test/codes. A non-empty unionid is recorded for the user and
// returned by later exchanges.
func (e *Emulator) IssueCode(openid, unionid string) (string, error) {
	is, err := e.Issue(openid, unionid)
	return is.Code, err
}

// Issue is IssueCode returning the openid too (useful when it was drawn at
// random).
func (e *Emulator) Issue(openid, unionid string) (Issued, error) {
	return e.IssueFor("", openid, unionid)
}

// IssueFor is Issue for the app appid ("" means AppID); an appid the
// emulator does not serve is an error.
func (e *Emulator) IssueFor(appid, openid, unionid string) (Issued, error) {
	if appid == "" {
		appid = e.appID
	}
	if !e.serves(appid) {
		return Issued{}, fmt.Errorf("appid %q is not served by the emulator (serving %s)", appid, strings.Join(e.AppIDs(), ", "))
	}
	if err := checkID("openid", openid); err != nil {
		return Issued{}, err
	}
	if err := checkID("unionid", unionid); err != nil {
		return Issued{}, err
	}
	if openid == "" {
		var err error
		if openid, err = randomOpenID(); err != nil {
			return Issued{}, err
		}
	}
	code, err := randomCode()
	if err != nil {
		return Issued{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if len(e.codes) >= e.nextSweep {
		for c, ce := range e.codes {
			if !now.Before(ce.expires) {
				delete(e.codes, c)
			}
		}
		e.nextSweep = max(1024, 2*len(e.codes))
	}
	e.codes[code] = &codeEntry{appid: appid, openid: openid, expires: now.Add(e.ttl)}
	u := e.users[openid]
	if u == nil {
		u = &user{}
		e.users[openid] = u
	}
	if unionid != "" {
		u.unionid = unionid
	}
	e.stats.CodesIssued++
	return Issued{Code: code, OpenID: openid, UnionID: u.unionid, AppID: appid}, nil
}

// SetFaults makes the next f.Count requests of f.API (default
// jscode2session) fail as f says, replacing any pending fault of that API. It rejects the faults POST /test/faults
// rejects (Count < 1, nothing to do, out-of-range status or delay).
func (e *Emulator) SetFaults(f Fault) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("wechatemu: fault: %w", err)
	}
	if f.Errcode != nil {
		c := *f.Errcode
		f.Errcode = &c
	}
	if f.Body != nil {
		b := *f.Body
		f.Body = &b
	}
	if f.API == "" {
		f.API = APIJSCode2Session
	}
	e.mu.Lock()
	e.faults[f.API] = f
	e.mu.Unlock()
	return nil
}

// ClearFaults drops every pending fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	clear(e.faults)
	e.mu.Unlock()
}

// Stats returns a copy of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Errcodes = make(map[int]int, len(e.stats.Errcodes))
	for k, v := range e.stats.Errcodes {
		s.Errcodes[k] = v
	}
	s.StableTokenByApp = maps.Clone(e.stats.StableTokenByApp)
	return s
}

// SessionKey returns the user's current session_key, "" before the first
// exchange. Tests use it to assert the key never leaks.
func (e *Emulator) SessionKey(openid string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.users[openid]; u != nil {
		return u.sessionKey
	}
	return ""
}

// takeFault counts a request of api and consumes one of its pending
// faults, if any.
func (e *Emulator) takeFault(api string) (Fault, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch api {
	case APIJSCode2Session:
		e.stats.Requests++
		e.stats.JSCode2Session++
	case APIStableToken:
		e.stats.StableToken++
	case APIGetUserPhoneNumber:
		e.stats.GetUserPhoneNumber++
	case APICheckSession:
		e.stats.CheckSession++
	case APIResetUserSessionKey:
		e.stats.ResetUserSessionKey++
	case APIGetWXACodeUnlimit:
		e.stats.GetWXACodeUnlimit++
	}
	f := e.faults[api]
	if f.Count <= 0 {
		return Fault{}, false
	}
	f.Count--
	e.faults[api] = f
	return f, true
}

// outcome of an exchange.
type outcome struct {
	errcode int
	openid  string
	unionid string
	key     string
}

// exchange consumes code and rotates the user's session_key.
func (e *Emulator) exchange(appid, code string) (outcome, error) {
	key, err := randomSessionKey()
	if err != nil {
		return outcome{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ce := e.codes[code]
	switch {
	case ce == nil || !e.now().Before(ce.expires) || ce.appid != appid:
		return outcome{errcode: codeInvalidCode}, nil
	case ce.used:
		return outcome{errcode: codeCodeUsed}, nil
	}
	ce.used = true
	u := e.users[ce.openid]
	if u == nil { // cannot happen: Issue creates the user
		u = &user{}
		e.users[ce.openid] = u
	}
	u.sessionKey = key
	return outcome{openid: ce.openid, unionid: u.unionid, key: key}, nil
}

// count records the outcome of a request.
func (e *Emulator) count(errcode int, faulted bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if faulted {
		e.stats.Faulted++
	}
	if errcode != 0 {
		e.stats.Errcodes[errcode]++
	} else if !faulted {
		e.stats.Succeeded++
	}
}

func (e *Emulator) countAbandoned() {
	e.mu.Lock()
	e.stats.Abandoned++
	e.mu.Unlock()
}

const (
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	openIDTail = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// randomCode draws 32 characters of [A-Za-z0-9], uniformly (rejection
// sampling over crypto/rand bytes).
func randomCode() (string, error) {
	out := make([]byte, 0, 32)
	var buf [48]byte
	for len(out) < 32 {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("wechatemu: draw code: %w", err)
		}
		for _, b := range buf {
			if b < 248 && len(out) < 32 { // 248 = 4*62
				out = append(out, alnum[b%62])
			}
		}
	}
	return string(out), nil
}

// randomOpenID draws an openid shaped like WeChat's: "o" + 27 of
// [A-Za-z0-9_-].
func randomOpenID() (string, error) {
	var buf [27]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("wechatemu: draw openid: %w", err)
	}
	out := make([]byte, 28)
	out[0] = 'o'
	for i, b := range buf {
		out[i+1] = openIDTail[b&63]
	}
	return string(out), nil
}

// randomSessionKey draws a session_key shaped like WeChat's: 16 random bytes
// in standard base64 (24 characters).
func randomSessionKey() (string, error) {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("wechatemu: draw session_key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(buf[:]), nil
}

// randomRID draws a request id like the one WeChat appends to errmsg.
func randomRID(now time.Time) string {
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	return fmt.Sprintf("%08x-%x-%x", uint32(now.Unix()), buf[:4], buf[4:])
}

// checkID accepts "" or 1..128 characters of [A-Za-z0-9_-].
func checkID(name, s string) error {
	if len(s) > maxIDLength {
		return fmt.Errorf("wechatemu: %s longer than %d characters", name, maxIDLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("wechatemu: %s must be characters of [A-Za-z0-9_-]", name)
		}
	}
	return nil
}
