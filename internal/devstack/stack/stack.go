// Package stack runs wxsession's whole local stack in one process, the way
// `sam local start-api` does with Docker, but without Docker or an AWS
// account: it builds the real function binaries with the same Makefile
// targets SAM uses (build-<LogicalId>), starts dynalite with the template's
// tables, the WeChat emulator, one lambdaruntime.Pool per function and the
// local API gateway, all configured from template.yaml.
//
// cmd/wxlocal (`make dev`) is a thin wrapper around Start; end-to-end tests
// call Start too, on free ports and with an in-memory dynalite.
//
// Function environment, in increasing precedence:
//
//  1. the template's Environment (Globals merged), with !Ref of a table =
//     its logical id (the table created in dynalite has that name);
//  2. local wiring: DYNAMODB_ENDPOINT = dynalite, WECHAT_API_BASE = the
//     emulator, WECHAT_APPID and WECHAT_SECRET = the emulator's pair (the
//     appid follows -parameter-overrides WeChatAppId=... when given, and the
//     emulator accepts that appid); WECHAT_SECRET takes precedence over
//     WECHAT_SECRET_PARAMETER, so SSM is never called;
//  3. the settings of internal/config's table (SESSION_TTL, LOG_LEVEL, ...)
//     from the host environment, when set, for the functions whose template
//     declares them;
//  4. Options.EnvOverrides in SAM's --env-vars format: "Parameters" for every
//     function, then the function's own logical id. Unlike SAM, which only
//     overrides variables the template declares, any variable may be set.
//
// For `sam local start-api` (Docker), SAMEnv renders an --env-vars file that
// points the containers at this stack's DynamoDB and emulator, on the ports
// they actually listen on (cmd/wxlocal writes it to .wxlocal/sam-env.json);
// SAM applies only the variables the template declares.
package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/gateway"
	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/devstack/samenv"
	"github.com/wxsession/wxsession/internal/devstack/samtemplate"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/repo"
)

// Default listen addresses (docs/design.md §6).
const (
	DefaultAPIAddr    = "127.0.0.1:3000"
	DefaultWeChatAddr = "127.0.0.1:3001"
	DefaultDynamoAddr = "127.0.0.1:8000"
	// AppIDParameter is the template parameter holding the appid.
	AppIDParameter = "WeChatAppId"
	// GlobalEnvKey is the --env-vars key that applies to every function.
	GlobalEnvKey = samenv.GlobalKey
)

// Options configures Start.
type Options struct {
	// Root is the repository root (the directory with go.mod,
	// template.yaml and the Makefile); "" means the nearest directory with
	// go.mod at or above the working directory.
	Root string
	// APIAddr, WeChatAddr and DynamoAddr default to 127.0.0.1:3000, :3001
	// and :8000; a port of 0 picks a free one.
	APIAddr, WeChatAddr, DynamoAddr string
	// DataDir keeps dynalite's data (cmd/wxlocal uses .wxlocal/dynamodb);
	// "" keeps it in memory.
	DataDir string
	// DynamoEndpoint, when set, is an external DynamoDB-compatible server
	// (DynamoDB Local, LocalStack, moto's server) used instead of starting
	// dynalite; DynamoAddr and DataDir are then ignored. The template's
	// tables are created there when missing (docs/design.md §6).
	DynamoEndpoint string
	// Params overrides template parameters (sam --parameter-overrides).
	Params map[string]string
	// EnvOverrides sets function variables, in sam --env-vars format.
	EnvOverrides map[string]map[string]string
	// Watch rebuilds functions when Go sources change.
	Watch bool
	// WatchInterval is the polling period; default 500 ms.
	WatchInterval time.Duration
	// Logger receives the stack's own messages; nil means slog.Default().
	Logger *slog.Logger
	// LogOut receives the functions' output (START/END/REPORT and their
	// logs) and dynalite's; nil discards it.
	LogOut io.Writer
	// AccessLog receives the gateway's access log; nil means LogOut.
	AccessLog io.Writer
	// Getenv reads SESSION_TTL and LOG_LEVEL from the host; nil means
	// os.Getenv.
	Getenv func(string) string
}

// Stack is a running local stack.
type Stack struct {
	// APIURL, WeChatURL and DynamoURL are the listeners' base URLs.
	APIURL, WeChatURL, DynamoURL string
	// Emulator is the WeChat emulator behind WeChatURL.
	Emulator *wechatemu.Emulator
	// Template is the template as resolved for this stack.
	Template *samtemplate.Template
	// Dynamo is a client for the local DynamoDB.
	Dynamo *dynamodb.Client
	// Exposed lists the listeners bound beyond loopback ("API on
	// 0.0.0.0:3000"); empty by default.
	Exposed []string

	opts    Options
	root    string
	log     *slog.Logger
	dyn     *dynalite.Server
	pools   map[string]*lambdaruntime.Pool
	servers []*http.Server
	lns     []net.Listener
	builder *builder

	envMu    sync.Mutex
	extraEnv map[string]string // SetEnv's variables

	watchCancel context.CancelFunc
	watchDone   chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

// Start builds and starts everything; on error whatever was started is
// stopped again. ctx bounds the start only.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	s := &Stack{opts: o, log: o.Logger, pools: map[string]*lambdaruntime.Pool{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if o.LogOut == nil {
		o.LogOut = io.Discard
	}
	if o.AccessLog == nil {
		o.AccessLog = o.LogOut
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	s.opts = o
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	if s.root, err = findRoot(o.Root); err != nil {
		return nil, err
	}
	addrs := map[string]string{
		"API":             cmp.Or(o.APIAddr, DefaultAPIAddr),
		"WeChat emulator": cmp.Or(o.WeChatAddr, DefaultWeChatAddr),
		"DynamoDB":        cmp.Or(o.DynamoAddr, DefaultDynamoAddr),
	}
	if o.DynamoEndpoint != "" {
		delete(addrs, "DynamoDB") // nothing of ours listens for it
	}
	for _, what := range slices.Sorted(maps.Keys(addrs)) {
		a, exposed, err := Loopback(addrs[what])
		if err != nil {
			return nil, fmt.Errorf("stack: %s address %q: %w", what, addrs[what], err)
		}
		addrs[what] = a
		if exposed {
			s.Exposed = append(s.Exposed, what+" on "+a)
		}
	}
	if len(s.Exposed) > 0 {
		s.log.Warn(exposedWarning(s.Exposed))
	}
	apiLn, err := listen(addrs["API"], "API")
	if err != nil {
		return nil, err
	}
	s.lns = append(s.lns, apiLn)
	wxLn, err := listen(addrs["WeChat emulator"], "WeChat emulator")
	if err != nil {
		return nil, err
	}
	s.lns = append(s.lns, wxLn)
	s.APIURL, s.WeChatURL = "http://"+apiLn.Addr().String(), "http://"+wxLn.Addr().String()

	params := map[string]string{}
	for k, v := range o.Params {
		params[k] = v
	}
	if params[AppIDParameter] == "" {
		params[AppIDParameter] = wechatemu.DefaultAppID
	}
	s.Emulator = wechatemu.New(wechatemu.Config{AppID: params[AppIDParameter], Logger: s.log.With("component", "wechat-emulator")})
	wxSrv := &http.Server{Handler: s.Emulator, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, wxSrv)
	go serve(wxSrv, wxLn, s.log)

	tmplPath := filepath.Join(s.root, "template.yaml")
	if s.Template, err = samtemplate.Load(tmplPath, params); err != nil {
		return nil, err
	}
	for _, w := range s.Template.Warnings {
		s.log.Warn("template: " + w)
	}
	if len(s.Template.Functions) == 0 {
		return nil, fmt.Errorf("stack: %s defines no AWS::Serverless::Function", tmplPath)
	}
	if err := s.checkConfig(cmp.Or(o.DynamoAddr, DefaultDynamoAddr)); err != nil {
		return nil, err
	}

	// The DynamoDB-compatible server (dynalite, or the external endpoint)
	// and the template's tables on it.
	if o.DynamoEndpoint != "" {
		if s.DynamoURL, err = ExternalEndpoint(o.DynamoEndpoint); err != nil {
			return nil, err
		}
		s.log.Info("using an external DynamoDB-compatible endpoint instead of dynalite", "endpoint", s.DynamoURL)
	} else {
		host, port, err := splitAddr(addrs["DynamoDB"])
		if err != nil {
			return nil, err
		}
		s.dyn, err = dynalite.Start(ctx, dynalite.Options{
			Host: host, Port: port, DataDir: o.DataDir,
			ToolsDir: filepath.Join(s.root, "tools", "dynalite"),
			Stdout:   o.LogOut, Stderr: o.LogOut,
			Logger: s.log.With("component", "dynalite"),
		})
		if err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		s.DynamoURL = s.dyn.Endpoint
	}
	if s.Dynamo, err = dynalite.LocalClient(ctx, s.DynamoURL); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	var tables []dynalite.Table
	for _, id := range slices.Sorted(maps.Keys(s.Template.Tables)) {
		t := s.Template.Tables[id]
		tables = append(tables, dynalite.Table{Input: t.Input, TTLAttribute: t.TTLAttribute})
	}
	if err := dynalite.CreateTables(ctx, s.Dynamo, tables, s.log.With("component", "dynamodb")); err != nil {
		return nil, fmt.Errorf("stack: tables on %s: %w", s.DynamoURL, err)
	}

	// Build the functions, then one pool each.
	s.builder = newBuilder(s.root, s.log)
	t0 := time.Now()
	ids := slices.Sorted(maps.Keys(s.Template.Functions))
	s.log.Info("building the functions (make build-<LogicalId>; the first build compiles the AWS SDK and takes a few minutes)", "functions", ids)
	reports, err := s.builder.buildAll(ctx, ids)
	if err != nil {
		return nil, err
	}
	s.log.Info("functions built", "count", len(reports), "ms", time.Since(t0).Milliseconds())
	invokers := map[string]gateway.Invoker{}
	for _, id := range slices.Sorted(maps.Keys(s.Template.Functions)) {
		f := s.Template.Functions[id]
		pool := lambdaruntime.NewPool(lambdaruntime.FunctionConfig{
			Name: id, Binary: s.builder.current(id), Env: s.functionEnv(f),
			Timeout: f.Timeout, MemoryMB: f.MemoryMB, Region: samtemplate.DefaultRegion,
		}, s.log.With("component", "lambda"), o.LogOut)
		s.pools[id] = pool
		invokers[id] = pool
	}

	gw, err := gateway.New(gateway.Config{
		API: s.Template.API, Functions: invokers, Logger: s.log.With("component", "gateway"),
		AccessLog: o.AccessLog,
	})
	if err != nil {
		return nil, err
	}
	apiSrv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	s.servers = append(s.servers, apiSrv)
	go serve(apiSrv, apiLn, s.log)

	// Warm one instance of each function so the first request is not cold
	// and a broken configuration shows up now, not on first use.
	// A function that cannot start (an invalid setting, say) stops the
	// stack now with its reason, rather than serving 500s.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var warmErrs []error
	for id, p := range s.pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Warm(ctx); err != nil {
				s.log.Error("function failed to start; see its output above", "function", id, "err", err)
				mu.Lock()
				warmErrs = append(warmErrs, fmt.Errorf("%s failed to start (its output says why): %w", id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(warmErrs) > 0 {
		return nil, fmt.Errorf("stack: %w", errors.Join(warmErrs...))
	}

	if o.Watch {
		wctx, cancel := context.WithCancel(context.Background())
		s.watchCancel, s.watchDone = cancel, make(chan struct{})
		go func() {
			defer close(s.watchDone)
			s.watch(wctx)
		}()
	}
	return s, nil
}

// checkConfig validates every function's environment (config.Check) before
// anything is built or started: a bad setting (SESSION_TTL=abc) stops the
// stack with the message instead of failing every request later. The
// DynamoDB endpoint is not known yet; dynamoAddr stands for it, so the
// local minimums apply (docs/design.md §5).
func (s *Stack) checkConfig(dynamoAddr string) error {
	for _, id := range slices.Sorted(maps.Keys(s.Template.Functions)) {
		env := s.functionEnv(s.Template.Functions[id])
		if env[config.VarDynamoDBEndpoint] == "" {
			env[config.VarDynamoDBEndpoint] = "http://" + dynamoAddr
		}
		if err := config.Check(func(k string) string { return env[k] }); err != nil {
			return fmt.Errorf("stack: %s: %w", id, err)
		}
	}
	return nil
}

// functionEnv computes a function's environment (see the package comment).
func (s *Stack) functionEnv(f samtemplate.Function) map[string]string {
	env := map[string]string{}
	for k, v := range f.Env {
		env[k] = v
	}
	env[config.VarDynamoDBEndpoint] = s.DynamoURL
	env[config.VarAPIBase] = s.WeChatURL
	env[config.VarAppID] = s.Emulator.AppID()
	env[config.VarSecret] = wechatemu.DefaultSecret
	for _, k := range config.Settings() {
		if _, declared := f.Env[k]; !declared {
			continue // the function does not read it
		}
		if v := s.opts.Getenv(k); v != "" {
			env[k] = v
		}
	}
	for k, v := range s.opts.EnvOverrides[GlobalEnvKey] {
		env[k] = v
	}
	for k, v := range s.opts.EnvOverrides[f.LogicalID] {
		env[k] = v
	}
	s.serveApps(env)
	return env
}

// serveApps wires several mini-programs (docs/design.md §7.9): when env
// sets WECHAT_APPS, the emulator serves its appids too (every app's secret
// is the emulator's: WECHAT_SECRET wins over the parameters in a local
// run), and WECHAT_APPID, unless it is one of them, becomes the first.
func (s *Stack) serveApps(env map[string]string) {
	if strings.TrimSpace(env[config.VarApps]) == "" {
		return
	}
	apps := config.NewEnv(func(k string) string {
		if k == config.VarAppID {
			return ""
		}
		return env[k]
	}).Apps()
	if len(apps) == 0 {
		return // invalid: config.Check reports it
	}
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.AppID
	}
	s.Emulator.AddApps(ids...)
	if !slices.Contains(ids, env[config.VarAppID]) {
		env[config.VarAppID] = ids[0]
	}
}

// SetEnv sets variables on every function of the running stack (as
// Options.EnvOverrides' "Parameters" would at start; an empty value goes
// back to the stack's own value) and replaces their instances, so the next
// request runs with them. Tests use it to try the session settings without
// a second stack.
func (s *Stack) SetEnv(vars map[string]string) {
	s.envMu.Lock()
	defer s.envMu.Unlock()
	if s.extraEnv == nil {
		s.extraEnv = map[string]string{}
	}
	for k, v := range vars {
		if v == "" {
			delete(s.extraEnv, k)
		} else {
			s.extraEnv[k] = v
		}
	}
	for id, p := range s.pools {
		env := s.functionEnv(s.Template.Functions[id])
		for k, v := range s.extraEnv {
			env[k] = v
		}
		s.serveApps(env)
		p.SetEnv(env)
	}
}

// Pool returns the pool running a function, or nil.
func (s *Stack) Pool(logicalID string) *lambdaruntime.Pool { return s.pools[logicalID] }

// Rebuild rebuilds every function and replaces the instances of those
// whose binary changed. It is what the watcher runs after a change.
func (s *Stack) Rebuild(ctx context.Context) ([]BuildReport, error) {
	reports, err := s.builder.buildAll(ctx, slices.Sorted(maps.Keys(s.Template.Functions)))
	if err != nil {
		return reports, err
	}
	for _, r := range reports {
		if r.Changed {
			s.pools[r.Function].Replace(r.Binary)
		}
	}
	return reports, nil
}

// Close stops the listeners, the watcher, every function instance and
// dynalite. It is safe to call more than once.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.watchCancel != nil {
			s.watchCancel()
			<-s.watchDone
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}
		for _, ln := range s.lns {
			_ = ln.Close() // not yet served (start failed), else already closed
		}
		for _, p := range s.pools {
			if err := p.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if s.dyn != nil {
			if err := s.dyn.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop dynalite: %w", err))
			}
		}
		if s.builder != nil {
			if err := s.builder.cleanup(); err != nil {
				errs = append(errs, fmt.Errorf("remove build directory: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Banner is what `make dev` prints on start: the URLs and a curl session.
// SAMEnv returns an --env-vars file for `sam local start-api` that points
// the functions (in Docker containers) at this stack's DynamoDB and WeChat
// emulator through host.docker.internal, on the ports they listen on now,
// with the emulator's appid and secret.
func (s *Stack) SAMEnv() ([]byte, error) {
	docker := func(base string) (string, error) {
		u, err := url.Parse(base)
		if err != nil || u.Port() == "" {
			return "", fmt.Errorf("stack: sam env: %q has no port", base)
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
			return base, nil // an external endpoint: containers reach it as is
		}
		u.Host = net.JoinHostPort(samenv.DockerHost, u.Port())
		return u.String(), nil
	}
	dyn, err := docker(s.DynamoURL)
	if err != nil {
		return nil, err
	}
	wx, err := docker(s.WeChatURL)
	if err != nil {
		return nil, err
	}
	out, err := samenv.Marshal(map[string]string{
		config.VarDynamoDBEndpoint: dyn,
		config.VarAPIBase:          wx,
		config.VarAppID:            s.Emulator.AppID(),
		config.VarSecret:           wechatemu.DefaultSecret,
		config.VarLogLevel:         "debug",
	})
	if err != nil {
		return nil, fmt.Errorf("stack: sam env: %w", err)
	}
	return out, nil
}

func (s *Stack) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nwxsession local stack is up\n\n")
	if len(s.Exposed) > 0 {
		fmt.Fprintf(&b, "  !!! %s\n\n", exposedWarning(s.Exposed))
	}
	fmt.Fprintf(&b, "  API (HTTP API, payload 2.0)  %s\n", s.APIURL)
	fmt.Fprintf(&b, "  WeChat emulator              %s   (appid %s)\n", s.WeChatURL, s.Emulator.AppID())
	server := "dynalite"
	if s.dyn == nil {
		server = "external"
	}
	fmt.Fprintf(&b, "  DynamoDB (%s)%s %s\n\n", server, strings.Repeat(" ", max(1, 17-len(server))), s.DynamoURL)
	fmt.Fprintf(&b, "  Routes:\n")
	for _, r := range s.Template.API.Routes {
		auth := "no auth"
		if r.Authorizer != "" {
			auth = "authorizer " + r.Authorizer
		}
		fmt.Fprintf(&b, "    %-22s -> %-20s (%s)\n", r.Key(), r.FunctionLogicalID, auth)
	}
	fmt.Fprintf(&b, "\n  Try it:\n")
	fmt.Fprintf(&b, "    code=$(curl -s -X POST %s/test/codes -d '{}' | sed 's/.*\"code\":\"\\([^\"]*\\)\".*/\\1/')\n", s.WeChatURL)
	fmt.Fprintf(&b, "    id=$(curl -s -X POST %s/login -H 'Content-Type: application/json' -d \"{\\\"code\\\":\\\"$code\\\"}\" | sed 's/.*\"session_id\":\"\\([^\"]*\\)\".*/\\1/')\n", s.APIURL)
	fmt.Fprintf(&b, "    curl -i %s/me -H \"Authorization: Bearer $id\"\n", s.APIURL)
	fmt.Fprintf(&b, "    curl -i %s/me -H \"Cookie: sessionid=$id\"\n\n", s.APIURL)
	fmt.Fprintf(&b, "  Operate it (docs/design.md §8): the functions' audit lines (\"msg\":\"audit\") and metric\n")
	fmt.Fprintf(&b, "  lines (\"_aws\", CloudWatch EMF) appear below as CloudWatch would store them;\n")
	admin := "go run ./cmd/wxadmin -local"
	if s.DynamoURL != "http://"+DefaultDynamoAddr {
		admin += " -dynamodb-endpoint " + s.DynamoURL
	}
	fmt.Fprintf(&b, "    %s sessions list -openid <openid>\n\n", admin)
	return b.String()
}

func serve(srv *http.Server, ln net.Listener, log *slog.Logger) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
	}
}

func listen(addr, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stack: %s listener on %s: %w", what, addr, err)
	}
	return ln, nil
}

// Loopback resolves a listen address for the local stack: an empty host
// (":3000") means 127.0.0.1, never every interface, and exposed reports
// whether the address reaches beyond this machine (any host other than a
// loopback IP or "localhost"), which only an explicit host can ask for
// (docs/design.md §10).
func Loopback(addr string) (resolved string, exposed bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, err
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), false, nil
	}
	if strings.EqualFold(host, "localhost") {
		return addr, false, nil
	}
	ip := net.ParseIP(host)
	return addr, ip == nil || !ip.IsLoopback(), nil
}

// exposedWarning is logged and printed atop the banner when a listener is
// bound beyond loopback.
func exposedWarning(exposed []string) string {
	return fmt.Sprintf("WARNING: the local stack listens beyond this machine (%s). It is for development: "+
		"its WeChat emulator issues a login code for any openid and dynalite has no authentication, so whoever "+
		"reaches them can log in as any user and read every session. Bind to 127.0.0.1 unless you mean it.",
		strings.Join(exposed, ", "))
}

// ExternalEndpoint checks an external DynamoDB endpoint: an http(s) URL
// with a host and nothing after it but an optional "/". It returns the URL
// without the trailing slash.
func ExternalEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("stack: DynamoDB endpoint %q: want http(s)://host:port", raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("stack: DynamoDB address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("stack: DynamoDB address %q: bad port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// findRoot returns dir (made absolute) or the repository root
// (repo.Root), and checks it has template.yaml.
func findRoot(dir string) (string, error) {
	abs, err := repo.Root(dir)
	if err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	if _, err := os.Stat(filepath.Join(abs, "template.yaml")); err != nil {
		return "", fmt.Errorf("stack: %s has no template.yaml: %w", abs, err)
	}
	return abs, nil
}
