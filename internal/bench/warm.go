package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/devstack/stack"
	"github.com/wxsession/wxsession/session"
)

// WarmResult is the warm latency and throughput through the local stack.
type WarmResult struct {
	// Me is authorized GET /me, sequential, after MeWarmup requests.
	Me       Dist `json:"get_me"`
	MeErrors int  `json:"get_me_errors"`
	// Login is POST /login with a fresh code each (code issuance excluded).
	Login       Dist `json:"post_login"`
	LoginErrors int  `json:"post_login_errors"`
	// WeChat is the emulator's own jscode2session time: the same exchange
	// login makes (a fresh code each), sent by the benchmark's keep-alive
	// client straight to the emulator, interleaved with the logins. Login
	// minus WeChat is what wxsession adds to WeChat's latency.
	WeChat Dist `json:"wechat_jscode2session"`
	// WeChatCalls counts the WeChat API calls the timed logins made, by
	// API (the emulator's counters; the direct exchanges excluded).
	WeChatCalls map[string]float64 `json:"wechat_calls_per_login"`
	// LoginInvoke is one warm login invocation through the Runtime API
	// (Pool.Invoke, no gateway) with a fresh code: the exchange and the
	// DynamoDB writes included. PutItem is one unconditional PutItem of a
	// session-sized item by the benchmark's SDK client straight to
	// dynalite (a fresh key each): the cost of each of login's writes.
	LoginInvoke Dist `json:"login_invoke"`
	PutItem     Dist `json:"dynamodb_putitem"`
	// LoginCPU is the CPU time each component used during the login run
	// (Linux), over LoginRounds rounds of one gateway login, one direct
	// exchange, one login invocation and one PutItem.
	LoginCPU    []CPUShare `json:"login_cpu"`
	LoginRounds int64      `json:"login_cpu_rounds"`
	Load        LoadResult `json:"load"`
	// Breakdown times the parts of GET /me on their own.
	Breakdown  Breakdown `json:"breakdown"`
	FirstError string    `json:"first_error,omitempty"`
}

// Breakdown times the parts of an authorized GET /me separately, all
// sequential: where the warm latency goes.
type Breakdown struct {
	// GetItem is the authorizer's read, sent by the benchmark's own SDK
	// client straight to dynalite.
	GetItem Dist `json:"dynamodb_getitem"`
	// GetItemRPS is GetItem throughput at the load's connection count.
	GetItemRPS float64 `json:"dynamodb_getitem_rps"`
	// AuthorizerInvoke and APIInvoke are one invocation of the warm
	// function through the Runtime API (lambdaruntime.Pool.Invoke), without
	// the gateway; the authorizer's includes its GetItem.
	AuthorizerInvoke Dist `json:"authorizer_invoke"`
	APIInvoke        Dist `json:"api_invoke"`
	// PeakInstances are the pools' highest instance counts after the load.
	PeakAuthorizers int `json:"peak_authorizer_instances"`
	PeakAPIs        int `json:"peak_api_instances"`
}

// LoadResult is GET /me at a fixed concurrency for a fixed time.
type LoadResult struct {
	Conns    int     `json:"connections"`
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"requests_per_second"`
	Latency  Dist    `json:"latency"`
	// CPU is the CPU time each component used during the run (Linux).
	CPU        []CPUShare `json:"cpu"`
	FirstError string     `json:"first_error,omitempty"`
}

// warmSettings sizes the warm measurements.
type warmSettings struct {
	meWarmup, meRequests, logins int
	breakdown                    int
	conns                        int
	duration                     time.Duration
	maxRequests                  int64
}

// measureWarm measures GET /me and POST /login latency, then GET /me
// throughput, against a running stack.
func measureWarm(ctx context.Context, st *stack.Stack, s warmSettings, logf func(string, ...any)) (WarmResult, error) {
	var res WarmResult
	c := newClient(s.conns)
	defer c.CloseIdleConnections()
	noteErr := func(err error) {
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
	}

	me, err := login(ctx, c, st, "")
	if err != nil {
		return res, err
	}
	getMe := func(cl *http.Client, sid string) error {
		status, body, err := do(ctx, cl, http.MethodGet, st.APIURL+"/me", bearer(sid), "")
		if err != nil {
			return fmt.Errorf("GET /me: %w", err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /me: status %d: %s", status, truncate(string(body), 200))
		}
		return nil
	}
	logf("warm: GET /me ×%d after %d warm-up requests", s.meRequests, s.meWarmup)
	for range s.meWarmup {
		if err := getMe(c, me.SessionID); err != nil {
			return res, fmt.Errorf("bench: warm-up: %w", err)
		}
	}
	lat := make([]time.Duration, 0, s.meRequests)
	for range s.meRequests {
		t0 := time.Now()
		err := getMe(c, me.SessionID)
		d := time.Since(t0)
		if err != nil {
			res.MeErrors++
			noteErr(err)
			continue
		}
		lat = append(lat, d)
	}
	res.Me = Summarize(lat)

	logf("warm: breakdown of GET /me (GetItem, authorizer and api invocations) ×%d each", s.breakdown)
	if res.Breakdown, err = breakdown(ctx, st, me, s); err != nil {
		return res, err
	}

	logf("warm: POST /login ×%d, each followed by a jscode2session straight to the emulator, a login invocation and a PutItem", s.logins)
	if err := measureLogin(ctx, c, st, s.logins, &res, noteErr); err != nil {
		return res, err
	}

	logf("warm: GET /me at %d connections for %s", s.conns, s.duration)
	res.Load, err = loadMe(ctx, st, s, getMe)
	res.Breakdown.PeakAuthorizers = st.Pool(AuthorizerFunction).Stats().Peak
	res.Breakdown.PeakAPIs = st.Pool(APIFunction).Stats().Peak
	return res, err
}

// breakdown times GetItem against dynalite and the two functions' warm
// invocations on their own.
func breakdown(ctx context.Context, st *stack.Stack, me loginResult, s warmSettings) (Breakdown, error) {
	var b Breakdown
	table := st.Pool(AuthorizerFunction).Config().Env[config.VarSessionsTable]
	in := &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"sid": &types.AttributeValueMemberS{Value: session.Hash(me.SessionID)}},
		ConsistentRead: aws.Bool(true),
	}
	getItem := func() error {
		out, err := st.Dynamo.GetItem(ctx, in)
		if err == nil && out.Item == nil {
			err = errors.New("session not found")
		}
		if err != nil {
			return fmt.Errorf("bench: GetItem %s: %w", table, err)
		}
		return nil
	}
	lat := make([]time.Duration, 0, s.breakdown)
	timeIt := func(f func() error) (Dist, error) {
		lat = lat[:0]
		for range s.breakdown {
			t0 := time.Now()
			if err := f(); err != nil {
				return Dist{}, err
			}
			lat = append(lat, time.Since(t0))
		}
		return Summarize(lat), nil
	}
	var err error
	if b.GetItem, err = timeIt(getItem); err != nil {
		return b, err
	}
	invoke := func(id string, payload []byte, check func(lambdaruntime.Result) error) func() error {
		return func() error {
			res, err := st.Pool(id).Invoke(ctx, payload)
			if err == nil && res.FunctionError != "" {
				err = fmt.Errorf("function error %s", res.FunctionError)
			}
			if err == nil {
				err = check(res)
			}
			if err != nil {
				return fmt.Errorf("bench: invoke %s: %w", id, err)
			}
			return nil
		}
	}
	authEv, err := authorizerEvent(map[string]string{"authorization": "Bearer " + me.SessionID})
	if err != nil {
		return b, err
	}
	if b.AuthorizerInvoke, err = timeIt(invoke(AuthorizerFunction, authEv, wantAuthorized(true))); err != nil {
		return b, err
	}
	meEv, err := httpEvent("GET", "/me", "", nil, principalContext(me.OpenID, st.Emulator.AppID(), "bench-sid", time.Now().Add(time.Hour)))
	if err != nil {
		return b, err
	}
	if b.APIInvoke, err = timeIt(invoke(APIFunction, meEv, wantStatus(200))); err != nil {
		return b, err
	}

	// GetItem throughput at the load's concurrency, for a fifth of its time.
	var (
		n, errs atomic.Int64
		wg      sync.WaitGroup
	)
	t0 := time.Now()
	deadline := t0.Add(max(s.duration/5, 100*time.Millisecond))
	for range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if getItem() != nil {
					errs.Add(1)
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if errs.Load() > 0 {
		return b, fmt.Errorf("bench: %d GetItem errors at %d connections", errs.Load(), s.conns)
	}
	b.GetItemRPS = float64(n.Load()) / time.Since(t0).Seconds()
	return b, nil
}

// loadMe runs s.conns workers, each with its own session, sending GET /me
// back to back over keep-alive connections: first an unmeasured warm-up
// (a fifth of the duration, at least 200 ms) so that the pools have started
// their instances for this concurrency, then the measured run, until
// s.duration has passed or s.maxRequests were sent.
func loadMe(ctx context.Context, st *stack.Stack, s warmSettings, getMe func(*http.Client, string) error) (LoadResult, error) {
	c := newClient(s.conns)
	defer c.CloseIdleConnections()
	sids := make([]string, s.conns)
	for i := range sids {
		r, err := login(ctx, c, st, "")
		if err != nil {
			return LoadResult{Conns: s.conns}, err
		}
		sids[i] = r.SessionID
	}
	warm := runLoad(ctx, c, sids, max(s.duration/5, 200*time.Millisecond), s.maxRequests, getMe, false)
	if warm.Errors > 0 {
		return warm, fmt.Errorf("bench: load warm-up: %d errors, first: %s", warm.Errors, warm.FirstError)
	}
	res := runLoad(ctx, c, sids, s.duration, s.maxRequests, getMe, true)
	return res, ctx.Err()
}

// runLoad sends GET /me from len(sids) workers for d (at most maxRequests).
func runLoad(ctx context.Context, c *http.Client, sids []string, d time.Duration, maxRequests int64, getMe func(*http.Client, string) error, measureCPU bool) LoadResult {
	res := LoadResult{Conns: len(sids)}
	var (
		sent, errs atomic.Int64
		mu         sync.Mutex
		all        []time.Duration
		firstErr   error
		wg         sync.WaitGroup
		cpuBefore  map[int]cpuSample
	)
	if measureCPU {
		cpuBefore = cpuSnapshot()
	}
	start := time.Now()
	deadline := start.Add(d)
	for _, sid := range sids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && sent.Add(1) <= maxRequests && ctx.Err() == nil {
				t0 := time.Now()
				err := getMe(c, sid)
				local = append(local, time.Since(t0))
				if err != nil {
					errs.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cpuBefore != nil {
		res.CPU = cpuDelta(cpuBefore, cpuSnapshot())
	}
	res.Seconds = elapsed.Seconds()
	res.Requests = int64(len(all))
	res.Errors = errs.Load()
	res.RPS = float64(res.Requests-res.Errors) / elapsed.Seconds()
	res.Latency = Summarize(all)
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	return res
}

// measureLogin times n sequential POST /login, each with a fresh code
// (issued outside the timing: wx.login() happens on the phone), and after
// each one, interleaved so that drift hits all alike: a jscode2session with
// another fresh code sent straight to the emulator (the call login makes,
// without wxsession around it), a login invocation through the Runtime
// API (no gateway) and a PutItem straight to dynalite. It counts the
// WeChat calls the logins made from the emulator's counters.
func measureLogin(ctx context.Context, c *http.Client, st *stack.Stack, n int, res *WarmResult, noteErr func(error)) error {
	env := st.Pool(LoginFunction).Config().Env
	q := url.Values{"appid": {st.Emulator.AppID()}, "secret": {env[config.VarSecret]}, "grant_type": {"authorization_code"}}
	exchange := func(code string) error {
		q.Set("js_code", code)
		status, body, err := do(ctx, c, http.MethodGet, st.WeChatURL+"/sns/jscode2session?"+q.Encode(), nil, "")
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // without the URL: its query carries the app secret
		}
		if err == nil && (status != http.StatusOK || !bytes.Contains(body, []byte(`"openid"`))) {
			err = fmt.Errorf("status %d", status) // the body carries a session_key: not quoted
		}
		if err != nil {
			return fmt.Errorf("bench: jscode2session straight to the emulator: %w", err)
		}
		return nil
	}
	invokeLogin := func(code string) error {
		ev, err := httpEvent("POST", "/login", `{"code":"`+code+`"}`, map[string]string{"content-type": "application/json"}, nil)
		if err != nil {
			return err
		}
		r, err := st.Pool(LoginFunction).Invoke(ctx, ev)
		if err == nil && r.FunctionError != "" {
			err = fmt.Errorf("function error %s", r.FunctionError)
		}
		if err == nil {
			err = wantStatus(200)(r)
		}
		if err != nil {
			return fmt.Errorf("bench: invoke %s: %w", LoginFunction, err)
		}
		return nil
	}
	table := env[config.VarSessionsTable]
	putItem := func(i int) error {
		s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
		num := func(v int64) types.AttributeValue {
			return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
		}
		now := time.Now()
		_, err := st.Dynamo.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"sid": s(session.Hash(fmt.Sprintf("wxbench-put-%d-%d", now.UnixNano(), i))), "openid": s("oBenchPutItem0123456789abc"),
			"appid": s(st.Emulator.AppID()), "created_at": num(now.Unix()), "expires_at": num(now.Add(time.Hour).Unix()),
		}})
		if err != nil {
			return fmt.Errorf("bench: PutItem %s: %w", table, err)
		}
		return nil
	}
	logins := make([]time.Duration, 0, n)
	direct := make([]time.Duration, 0, n)
	invokes := make([]time.Duration, 0, n)
	puts := make([]time.Duration, 0, n)
	var calls [6]int // the emulator's API counters, gateway logins only
	count := func(sign int) {
		x := st.Emulator.Stats()
		for i, v := range []int{x.JSCode2Session, x.StableToken, x.GetUserPhoneNumber, x.CheckSession, x.ResetUserSessionKey, x.GetWXACodeUnlimit} {
			calls[i] += sign * v
		}
	}
	timed := func(into *[]time.Duration, f func() error) error {
		t0 := time.Now()
		if err := f(); err != nil {
			return err
		}
		*into = append(*into, time.Since(t0))
		return nil
	}
	cpuBefore := cpuSnapshot()
	for i := range n {
		code, err := issueCode(st, "")
		if err != nil {
			return err
		}
		count(-1)
		t0 := time.Now()
		_, err = postLogin(ctx, c, st, code)
		d := time.Since(t0)
		count(+1)
		if err != nil {
			res.LoginErrors++
			noteErr(err)
		} else {
			logins = append(logins, d)
		}
		if code, err = issueCode(st, ""); err != nil {
			return err
		}
		if err := timed(&direct, func() error { return exchange(code) }); err != nil {
			return err
		}
		if code, err = issueCode(st, ""); err != nil {
			return err
		}
		if err := timed(&invokes, func() error { return invokeLogin(code) }); err != nil {
			return err
		}
		if err := timed(&puts, func() error { return putItem(i) }); err != nil {
			return err
		}
	}
	if cpuBefore != nil {
		res.LoginCPU, res.LoginRounds = cpuDelta(cpuBefore, cpuSnapshot()), int64(n)
	}
	res.LoginInvoke, res.PutItem = Summarize(invokes), Summarize(puts)
	res.Login, res.WeChat = Summarize(logins), Summarize(direct)
	res.WeChatCalls = map[string]float64{}
	for i, name := range []string{"jscode2session", "stable_token", "getuserphonenumber", "checksession", "resetusersessionkey", "getwxacodeunlimit"} {
		if calls[i] > 0 && n > 0 {
			res.WeChatCalls[name] = float64(calls[i]) / float64(n)
		}
	}
	return nil
}
