package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/devstack/stack"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/repo"
)

// Function logical ids in template.yaml.
const (
	LoginFunction      = "LoginFunction"
	AuthorizerFunction = "AuthorizerFunction"
	APIFunction        = "ApiFunction"
	WechatFunction     = "WechatFunction"
)

// Config configures Run. Zero fields take the full run's defaults (or the
// quick ones with Quick).
type Config struct {
	// Root is the repository root; "" = the nearest go.mod above the
	// working directory.
	Root string
	// Go is the go command ("go").
	Go string
	// Quick uses tiny sample sizes: it exercises every code path in a few
	// seconds, for tests; its numbers mean nothing.
	Quick bool
	// ColdRuns is the number of timed cold starts per function (101; quick 2):
	// on a shared VM the p50 ratio to the floor moves by ±0.15 between runs
	// of 25 and by ±0.05 between runs of 101 (measured 2026-11-30).
	ColdRuns int
	// MeWarmup and MeRequests size the sequential GET /me run (200, 2000).
	MeWarmup, MeRequests int
	// Logins is the number of timed POST /login (200).
	Logins int
	// Breakdown is the sample size of each part of GET /me timed alone (500).
	Breakdown int
	// LoadConns and LoadDuration shape the throughput run (16, 5 s); it
	// stops early after LoadMaxRequests requests (1,000,000).
	LoadConns       int
	LoadDuration    time.Duration
	LoadMaxRequests int64
	// DynamoReps repeats each counted operation (3).
	DynamoReps int
	// GoBench runs the Go benchmarks of GoBenchPkgs (HotPathPackages) with
	// -benchtime GoBenchTime ("" = Go's default; quick "100x").
	GoBench     bool
	GoBenchPkgs []string
	GoBenchTime string
	// SharedStack measures warm latency on the stack used for counting
	// (whose functions reach DynamoDB through the counting proxy) instead
	// of a second stack without it. Saves a few seconds; quick mode does it.
	SharedStack bool
	// WarmOnly skips the builds, the counted stack, the cold starts and the
	// DynamoDB counts: only warm latency and throughput (and the Go
	// benchmarks when GoBench), for profiling runs. Its budget table lacks
	// the skipped rows.
	WarmOnly bool
	// Progress receives progress lines and the raw go test output (nil:
	// discarded).
	Progress io.Writer
}

func (c *Config) defaults() {
	def := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	def(&c.ColdRuns, 101, 2)
	def(&c.MeWarmup, 200, 5)
	def(&c.MeRequests, 2000, 20)
	def(&c.Logins, 200, 3)
	def(&c.Breakdown, 500, 5)
	def(&c.LoadConns, 16, 4)
	def(&c.DynamoReps, 3, 1)
	if c.LoadDuration == 0 {
		c.LoadDuration = 5 * time.Second
		if c.Quick {
			c.LoadDuration = 300 * time.Millisecond
		}
	}
	if c.LoadMaxRequests == 0 {
		c.LoadMaxRequests = 1_000_000
	}
	if c.Go == "" {
		c.Go = "go"
	}
	if len(c.GoBenchPkgs) == 0 {
		c.GoBenchPkgs = HotPathPackages
	}
	if c.GoBenchTime == "" && c.Quick {
		c.GoBenchTime = "100x"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Run measures everything and returns the report with its budgets
// evaluated. It fails only when a measurement cannot be made at all; a
// budget that does not hold is a FAIL in the report, not an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	start := time.Now()
	var logMu sync.Mutex
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(cfg.Progress, "wxbench: "+format+"\n", args...)
	}
	root, err := repo.Root(cfg.Root)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Notes:   []string{},
		Machine: DescribeMachine(ctx, cfg.Go),
		Settings: Settings{
			Quick: cfg.Quick, ColdRuns: cfg.ColdRuns, MeWarmup: cfg.MeWarmup, MeRequests: cfg.MeRequests,
			Logins: cfg.Logins, LoadConns: cfg.LoadConns, LoadSeconds: cfg.LoadDuration.Seconds(),
			DynamoReps: cfg.DynamoReps, BuildCommand: BuildCommand(ctx, root, "arm64"), ColdGOARCH: runtime.GOARCH,
		},
	}
	if cfg.GoBench {
		r.Settings.GoBenchPkgs, r.Settings.GoBenchTime = cfg.GoBenchPkgs, cfg.GoBenchTime
	}
	tmp, err := os.MkdirTemp("", "wxbench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(tmp)

	if cfg.WarmOnly {
		r.Notes = append(r.Notes, "warm-only run: sizes, cold starts and DynamoDB counts skipped")
		if err := runWarm(ctx, cfg, root, nil, r, logf); err != nil {
			return nil, err
		}
		return finish(ctx, cfg, root, r, start, logf)
	}

	// 1. Binaries: linux/arm64 for the sizes, the host's for cold starts.
	logf("building the functions and the floors for linux/arm64 and linux/%s", runtime.GOARCH)
	hostBins, err := buildAll(ctx, cfg.Go, root, tmp, r)
	if err != nil {
		return nil, err
	}
	if r.Client, err = measureClient(ctx, root); err != nil {
		r.Notes = append(r.Notes, err.Error())
	}

	// 2. The counted stack: DynamoDB and WeChat through counting proxies.
	dyn, err := faultservers.NewProxy(nil)
	if err != nil {
		return nil, err
	}
	defer dyn.Close()
	wx, err := faultservers.NewProxy(nil)
	if err != nil {
		return nil, err
	}
	defer wx.Close()
	ssm, err := faultservers.NewProxy(fakeSSM(wechatemu.DefaultSecret))
	if err != nil {
		return nil, err
	}
	defer ssm.Close()
	other, err := faultservers.NewProxy(refuseAll())
	if err != nil {
		return nil, err
	}
	defer other.Close()

	logf("starting the local stack (functions reach DynamoDB and WeChat through counting proxies)")
	counted, err := startStack(ctx, root, map[string]map[string]string{
		stack.GlobalEnvKey: {config.VarDynamoDBEndpoint: dyn.URL(), config.VarAPIBase: wx.URL()},
	}, cfg.Progress)
	if err != nil {
		return nil, err
	}
	defer counted.Close()
	if err := dyn.SetUpstream(counted.DynamoURL); err != nil {
		return nil, err
	}
	if err := wx.SetUpstream(counted.WeChatURL); err != nil {
		return nil, err
	}
	sessionsTable := counted.Pool(AuthorizerFunction).Config().Env[config.VarSessionsTable]

	logf("counting DynamoDB requests per operation")
	if r.Dynamo, err = measureDynamo(ctx, counted, dyn, sessionsTable, cfg.DynamoReps); err != nil {
		return nil, err
	}

	targets, err := coldTargets(ctx, counted, hostBins, ssm.URL(), other.URL())
	if err != nil {
		return nil, err
	}
	if r.ColdStarts, err = measureColdStarts(ctx, targets, cfg.ColdRuns, coldCounters{{"dynamodb", dyn}, {"wechat", wx}, {"ssm", ssm}, {"other", other}}, logf); err != nil {
		return nil, err
	}

	// 3. Warm latency and throughput, on a stack without the proxies.
	if err := runWarm(ctx, cfg, root, counted, r, logf); err != nil {
		return nil, err
	}
	return finish(ctx, cfg, root, r, start, logf)
}

// runWarm measures warm latency and throughput into r.Warm: on counted
// with SharedStack, else on a fresh stack without the proxies (counted, if
// any, is closed first so that it does not compete for the cores).
func runWarm(ctx context.Context, cfg Config, root string, counted *stack.Stack, r *Report, logf func(string, ...any)) error {
	warmStack := counted
	if !cfg.SharedStack || counted == nil {
		if counted != nil {
			if err := counted.Close(); err != nil {
				logf("closing the counted stack: %v", err)
			}
		}
		logf("starting the local stack for the warm measurements")
		var err error
		if warmStack, err = startStack(ctx, root, nil, cfg.Progress); err != nil {
			return err
		}
		defer warmStack.Close()
	} else {
		r.Notes = append(r.Notes, "warm latency measured through the counting proxy (SharedStack): one extra local hop per DynamoDB call")
	}
	w, err := measureWarm(ctx, warmStack, warmSettings{
		meWarmup: cfg.MeWarmup, meRequests: cfg.MeRequests, logins: cfg.Logins, breakdown: cfg.Breakdown,
		conns: cfg.LoadConns, duration: cfg.LoadDuration, maxRequests: cfg.LoadMaxRequests,
	}, logf)
	if err != nil {
		return err
	}
	r.Warm = &w
	if err := warmStack.Close(); err != nil {
		logf("closing the stack: %v", err)
	}
	return nil
}

// finish runs the Go benchmarks of the hot paths and evaluates the budgets.
func finish(ctx context.Context, cfg Config, root string, r *Report, start time.Time, logf func(string, ...any)) (*Report, error) {
	if cfg.GoBench {
		logf("go test -bench on %v", cfg.GoBenchPkgs)
		var err error
		if r.GoBench, err = runGoBench(ctx, cfg.Go, root, cfg.GoBenchPkgs, cfg.GoBenchTime, cfg.Progress); err != nil {
			return nil, err
		}
	}
	r.Machine.LoadEnd = LoadAverage()
	r.Seconds = time.Since(start).Round(time.Second).Seconds()
	r.EvaluateBudgets()
	return r, nil
}

// startStack starts the local stack on free ports with an in-memory
// dynalite, host SESSION_TTL/LOG_LEVEL ignored.
func startStack(ctx context.Context, root string, env map[string]map[string]string, logTo io.Writer) (*stack.Stack, error) {
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	st, err := stack.Start(sctx, stack.Options{
		Root: root, APIAddr: "127.0.0.1:0", WeChatAddr: "127.0.0.1:0", DynamoAddr: "127.0.0.1:0",
		EnvOverrides: env,
		Logger:       slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn})),
		LogOut:       io.Discard,
		Getenv:       func(string) string { return "" },
	})
	if err != nil {
		return nil, fmt.Errorf("bench: start the local stack: %w", err)
	}
	return st, nil
}

// binSpec is one binary to build.
type binSpec struct{ name, pkg string }

var (
	floorSpec     = binSpec{"floor", "./internal/bench/floor"}
	floorGetSpec  = binSpec{"floorget", "./internal/bench/floorget"}
	functionSpecs = []binSpec{
		{"login", "./functions/login"},
		{"authorizer", "./functions/authorizer"},
		{"api", "./functions/api"},
		{"wechat", "./functions/wechat"},
	}
)

// buildAll builds the arm64 binaries (sizes go into r) and the host's
// (returned by name) for the floor and the functions, two at a time.
func buildAll(ctx context.Context, goCmd, root, tmp string, r *Report) (map[string]string, error) {
	type job struct {
		spec   binSpec
		goarch string
		out    string
		size   int64
		err    error
	}
	var jobs []*job
	for _, s := range append([]binSpec{floorSpec, floorGetSpec}, functionSpecs...) {
		jobs = append(jobs, &job{spec: s, goarch: "arm64", out: filepath.Join(tmp, "arm64", s.name, "bootstrap")})
	}
	host := map[string]string{}
	for _, s := range append([]binSpec{floorSpec}, functionSpecs...) {
		out := filepath.Join(tmp, runtime.GOARCH, s.name, "bootstrap")
		host[s.name] = out
		if runtime.GOARCH != "arm64" {
			jobs = append(jobs, &job{spec: s, goarch: runtime.GOARCH, out: out})
		}
	}
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			j.size, j.err = Build(ctx, goCmd, root, j.spec.pkg, j.goarch, j.out)
		}()
	}
	wg.Wait()
	var errs []error
	sizes := map[string]int64{}
	for _, j := range jobs {
		if j.err != nil {
			errs = append(errs, j.err)
		}
		if j.goarch == "arm64" {
			sizes[j.spec.name] = j.size
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, s := range append([]binSpec{floorSpec, floorGetSpec}, functionSpecs...) {
		row := SizeRow{Name: s.name, Package: s.pkg, GOARCH: "arm64", Bytes: sizes[s.name],
			Budgeted: s != floorSpec && s != floorGetSpec}
		row.Ratio = float64(row.Bytes) / float64(sizes["floor"])
		row.RatioGet = float64(row.Bytes) / float64(sizes["floorget"])
		r.Sizes = append(r.Sizes, row)
	}
	return host, nil
}

// coldTargets describes the cold starts: the floor, the four functions
// (with the local stack's environment, DynamoDB and WeChat behind the
// counting proxies) and login reading its secret from a fake SSM.
func coldTargets(ctx context.Context, st *stack.Stack, bins map[string]string, ssmURL, proxyURL string) ([]coldTarget, error) {
	c := newClient(2)
	user, err := login(ctx, c, st, "")
	if err != nil {
		return nil, err
	}
	c.CloseIdleConnections()
	fcfg := func(id, bin string, edit func(map[string]string)) lambdaruntime.FunctionConfig {
		pc := st.Pool(id).Config()
		env := maps.Clone(pc.Env)
		// Any request to a non-loopback host goes to the catch-all and is
		// counted (clients that honour the proxy variables, as the SDK's do).
		env["HTTP_PROXY"], env["HTTPS_PROXY"] = proxyURL, proxyURL
		if edit != nil {
			edit(env)
		}
		return lambdaruntime.FunctionConfig{Name: id, Binary: bin, Env: env, Timeout: pc.Timeout, MemoryMB: pc.MemoryMB, Region: pc.Region}
	}
	appID := st.Emulator.AppID()
	exp := time.Now().Add(time.Hour)
	loginEvent := func() ([]byte, error) {
		code, err := issueCode(st, "")
		if err != nil {
			return nil, err
		}
		return httpEvent("POST", "/login", `{"code":"`+code+`"}`, map[string]string{"content-type": "application/json"}, nil)
	}
	badLogin, err := httpEvent("POST", "/login", `{}`, map[string]string{"content-type": "application/json"}, nil)
	if err != nil {
		return nil, err
	}
	authEvent, err := authorizerEvent(map[string]string{"authorization": "Bearer " + user.SessionID})
	if err != nil {
		return nil, err
	}
	anonEvent, err := authorizerEvent(nil)
	if err != nil {
		return nil, err
	}
	meEvent, err := httpEvent("GET", "/me", "", map[string]string{"authorization": "Bearer " + user.SessionID},
		principalContext(user.OpenID, appID, "bench-sid", exp))
	if err != nil {
		return nil, err
	}
	phoneEvent, err := httpEvent("GET", "/me/phone", "", map[string]string{"authorization": "Bearer " + user.SessionID},
		principalContext(user.OpenID, appID, "bench-sid", exp))
	if err != nil {
		return nil, err
	}
	badPhone, err := httpEvent("POST", "/me/phone", `{}`, map[string]string{"authorization": "Bearer " + user.SessionID,
		"content-type": "application/json"}, principalContext(user.OpenID, appID, "bench-sid", exp))
	if err != nil {
		return nil, err
	}
	fixed := func(b []byte) func() ([]byte, error) { return func() ([]byte, error) { return b, nil } }
	floorCfg := fcfg(APIFunction, bins["floor"], nil)
	floorCfg.Name = "floor"
	return []coldTarget{
		{name: "floor", cfg: floorCfg, event: "{}", payload: fixed([]byte(`{}`)), probe: []byte(`{}`), check: noCheck},
		{name: "login", budgeted: true, cfg: fcfg(LoginFunction, bins["login"], nil),
			event: "POST /login with a fresh code (WeChat exchange + PutItem + UpdateItem)", payload: loginEvent,
			probe: badLogin, check: wantStatus(200), probeChk: wantStatus(400)},
		{name: "authorizer", budgeted: true, cfg: fcfg(AuthorizerFunction, bins["authorizer"], nil),
			event: "GET /me with a valid Bearer session (1 GetItem)", payload: fixed(authEvent),
			probe: anonEvent, check: wantAuthorized(true), probeChk: wantAuthorized(false)},
		{name: "api", budgeted: true, cfg: fcfg(APIFunction, bins["api"], nil),
			event: "GET /me with an authorizer context (no I/O)", payload: fixed(meEvent),
			probe: meEvent, check: wantStatus(200), probeChk: wantStatus(200)},
		{name: "wechat", budgeted: true, cfg: fcfg(WechatFunction, bins["wechat"], nil),
			event: "GET /me/phone with an authorizer context, no phone bound (1 GetItem)", payload: fixed(phoneEvent),
			probe: badPhone, check: wantStatus(404), probeChk: wantStatus(400)},
		{name: "login+ssm", cfg: fcfg(LoginFunction, bins["login"], func(env map[string]string) {
			delete(env, config.VarSecret)
			env[config.VarSecretParameter] = "/wxsession/wechat-secret"
			env[config.VarSSMEndpoint] = ssmURL
		}),
			event: "as login; the secret comes from SSM GetParameter at init", payload: loginEvent,
			probe: badLogin, check: wantStatus(200), probeChk: wantStatus(400)},
	}, nil
}
