package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Budgets (DESIGN: "make bench" issue).
const (
	// SizeBudget: function binary ≤ 1.05 × floorget, the reference Lambda
	// (a DynamoDB client that can reach one GetItem), linux/arm64.
	SizeBudget = 1.05
	// InitBudget: function init p50 ≤ 1.10 × floor init p50 (floor, not
	// floorget: the stricter of the two references, as floor's init does
	// no less than floorget's).
	InitBudget    = 1.10
	MeP50BudgetMs = 2.0 // warm authorized GET /me p50
	// LoginOverWeChatBudgetMs: warm POST /login p50 minus the WeChat
	// emulator's own jscode2session p50 (what wxsession adds to WeChat).
	LoginOverWeChatBudgetMs = 2.0
	LoadBudgetRPS           = 1000 // GET /me at 16 connections, 0 errors
	AuthorizerBudgetN       = 50e3 // authorizer Handle (in-memory store), ns/op
)

// Report is everything one run measured. It is what -out writes as JSON.
type Report struct {
	Machine    Machine      `json:"machine"`
	Settings   Settings     `json:"settings"`
	Sizes      []SizeRow    `json:"binary_sizes"`
	Client     *ClientSize  `json:"client_size,omitempty"`
	ColdStarts []ColdRow    `json:"cold_starts"`
	Warm       *WarmResult  `json:"warm,omitempty"`
	Dynamo     []DynamoRow  `json:"dynamodb_requests"`
	GoBench    []GoBenchRow `json:"go_benchmarks"`
	Budgets    []Budget     `json:"budgets"`
	Notes      []string     `json:"notes"`
	Seconds    float64      `json:"duration_seconds"`
}

// Settings records the run's parameters.
type Settings struct {
	Quick        bool     `json:"quick"`
	ColdRuns     int      `json:"cold_runs"`
	MeWarmup     int      `json:"get_me_warmup"`
	MeRequests   int      `json:"get_me_requests"`
	Logins       int      `json:"logins"`
	LoadConns    int      `json:"load_connections"`
	LoadSeconds  float64  `json:"load_seconds"`
	DynamoReps   int      `json:"dynamodb_reps"`
	GoBenchPkgs  []string `json:"go_bench_packages"`
	GoBenchTime  string   `json:"go_bench_time,omitempty"`
	BuildCommand string   `json:"build_command"`
	ColdGOARCH   string   `json:"cold_start_goarch"`
}

// SizeRow is one binary's size.
type SizeRow struct {
	Name    string `json:"name"`
	Package string `json:"package"`
	GOARCH  string `json:"goarch"`
	Bytes   int64  `json:"bytes"`
	// Ratio is Bytes / the floor's; RatioGet is Bytes / floorget's (the
	// floor plus one reachable DynamoDB operation).
	Ratio    float64 `json:"ratio_vs_floor"`
	RatioGet float64 `json:"ratio_vs_floorget"`
	Budgeted bool    `json:"budgeted"`
}

// Budget is one performance budget and whether this run met it.
type Budget struct {
	Name     string `json:"name"`
	Limit    string `json:"limit"`
	Measured string `json:"measured"`
	Pass     bool   `json:"pass"`
}

// Pass reports whether every budget passed.
func (r *Report) Pass() bool {
	for _, b := range r.Budgets {
		if !b.Pass {
			return false
		}
	}
	return len(r.Budgets) > 0
}

// EvaluateBudgets fills r.Budgets from the measurements present.
func (r *Report) EvaluateBudgets() {
	r.Budgets = nil
	add := func(name, limit, measured string, pass bool) {
		r.Budgets = append(r.Budgets, Budget{Name: name, Limit: limit, Measured: measured, Pass: pass})
	}
	for _, s := range r.Sizes {
		if s.Budgeted {
			add("binary size "+s.Name+" (linux/arm64)", fmt.Sprintf("≤ %.2f× floorget", SizeBudget),
				fmt.Sprintf("%s (%s)", fmtRatio(s.RatioGet), fmtMiB(s.Bytes)), s.RatioGet > 0 && s.RatioGet <= SizeBudget)
		}
	}
	for _, c := range r.ColdStarts {
		if !c.Budgeted {
			continue
		}
		add("cold start init p50 "+c.Name, fmt.Sprintf("≤ %.2f× floor", InitBudget),
			fmt.Sprintf("%s (%s, %d/%d runs ok)", fmtRatio(c.InitRatio), fmtMs(c.Init.P50), c.Runs-c.Errors, c.Runs),
			c.Errors == 0 && c.Init.N > 0 && c.InitRatio <= InitBudget)
		add("network requests during init "+c.Name, "0",
			fmt.Sprintf("%d", c.InitRequests), c.InitRequests == 0)
	}
	if w := r.Warm; w != nil {
		add("warm GET /me p50", fmt.Sprintf("≤ %.0f ms", MeP50BudgetMs),
			fmt.Sprintf("%s (%d errors)", fmtMs(w.Me.P50), w.MeErrors), w.Me.N > 0 && w.MeErrors == 0 && w.Me.P50 <= MeP50BudgetMs)
		add("warm POST /login p50 over WeChat's jscode2session p50", fmt.Sprintf("< %.0f ms", LoginOverWeChatBudgetMs),
			fmt.Sprintf("%s (%s − %s; %d errors)", fmtMs(w.Login.P50-w.WeChat.P50), fmtMs(w.Login.P50), fmtMs(w.WeChat.P50), w.LoginErrors),
			w.Login.N > 0 && w.WeChat.N > 0 && w.LoginErrors == 0 && w.Login.P50-w.WeChat.P50 < LoginOverWeChatBudgetMs)
		add(fmt.Sprintf("GET /me throughput at %d connections", w.Load.Conns), fmt.Sprintf("≥ %d req/s, 0 errors", LoadBudgetRPS),
			fmt.Sprintf("%.0f req/s, %d errors", w.Load.RPS, w.Load.Errors), w.Load.RPS >= LoadBudgetRPS && w.Load.Errors == 0 && w.Load.Requests > 0)
	}
	if len(r.Dynamo) > 0 {
		ok, bad := true, []string{}
		for _, d := range r.Dynamo {
			if d.Error != "" {
				ok = false
				bad = append(bad, d.Op+": "+d.Error)
			}
			if d.Authorized && !d.SessionReadsExact1 {
				ok = false
				bad = append(bad, fmt.Sprintf("%s: %.2f session reads", d.Op, d.SessionReads))
			}
			if strings.HasPrefix(d.Op, "GET /me (") && d.Authorized && (d.Requests != 1 || !d.Consistent) {
				ok = false
				bad = append(bad, fmt.Sprintf("%s: %.2f requests", d.Op, d.Requests))
			}
		}
		measured := "1 session GetItem per authorized request; GET /me: 1 request in total"
		if !ok {
			measured = strings.Join(bad, "; ")
		}
		add("DynamoDB reads per authorized request", "exactly 1 (GET /me: nothing else)", measured, ok)
	}
	found := false
	for _, g := range r.GoBench {
		if strings.HasSuffix(g.Package, "/authorizer") && g.Name == "Handle/allow" {
			found = true
			add("authorizer Handle (in-memory store, allow)", fmt.Sprintf("≤ %s", fmtNs(AuthorizerBudgetN)), fmtNs(g.NsPerOp), g.NsPerOp <= AuthorizerBudgetN)
		}
	}
	if !found && len(r.GoBench) > 0 {
		add("authorizer Handle (in-memory store, allow)", fmt.Sprintf("≤ %s", fmtNs(AuthorizerBudgetN)), "not run", false)
	}
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// WriteText writes the human-readable report: machine facts, budgets, then
// one table per measurement.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# wxsession bench — %s\n\n", m.Date.Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "machine: %s, %d cores (GOMAXPROCS %d), %s/%s, kernel %s\n", m.CPU, m.Cores, m.GOMAXPROCS, m.GOOS, m.GOARCH, m.Kernel)
	fmt.Fprintf(&b, "load average (1 min): %.2f at start, %.2f at end", m.LoadStart, m.LoadEnd)
	if m.LoadStart > float64(m.Cores)/2 {
		b.WriteString(" — WARNING: the machine was busy, timings may be inflated")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "go: %s (wxbench built with %s); run took %.0f s", m.GoVersion, m.BenchGo, r.Seconds)
	if r.Settings.Quick {
		b.WriteString("; QUICK MODE: tiny sample sizes, numbers are not meaningful")
	}
	b.WriteString("\n\n")
	var tables []Table

	bt := Table{Title: "Budgets", Header: []string{"budget", "limit", "measured", "result"}}
	pass := 0
	for _, x := range r.Budgets {
		bt.Rows = append(bt.Rows, []string{x.Name, x.Limit, x.Measured, passFail(x.Pass)})
		if x.Pass {
			pass++
		}
	}
	bt.Notes = append(bt.Notes, fmt.Sprintf("%d of %d budgets pass.", pass, len(r.Budgets)))
	tables = append(tables, bt)

	st := Table{Title: "Binary size (linux/arm64)", Header: []string{"binary", "package", "bytes", "size", "× floor", "× floorget"}}
	for _, s := range r.Sizes {
		st.Rows = append(st.Rows, []string{s.Name, s.Package, fmt.Sprintf("%d", s.Bytes), fmtMiB(s.Bytes), fmtRatio(s.Ratio), fmtRatio(s.RatioGet)})
	}
	st.Notes = []string{
		"built with: " + r.Settings.BuildCommand,
		"floor = config.LoadDefaultConfig + dynamodb.NewFromConfig, no operation called (internal/bench/floor);",
		"floorget = floor + one reachable GetItem (internal/bench/floorget): the SDK's per-operation machinery every function links.",
	}
	tables = append(tables, st)

	if c := r.Client; c != nil {
		tables = append(tables, Table{
			Title:  "Mini-program client size",
			Header: []string{"file", "bytes", "minified", "minified + gzip"},
			Rows:   [][]string{{c.File, fmt.Sprintf("%d", c.Bytes), fmt.Sprintf("%d", c.MinBytes), fmt.Sprintf("%d", c.MinGzipBytes)}},
			Notes:  []string{"minified with terser (pinned in client/package.json), gzip -9; client/scripts/size.js"},
		})
	}

	ct := Table{Title: fmt.Sprintf("Cold start (linux/%s binaries, %d interleaved runs each)", r.Settings.ColdGOARCH, r.Settings.ColdRuns),
		Header: []string{"function", "init p50", "init p90", "init × floor (p50/p90)", "first resp p50", "first resp p90", "peak RSS", "runs ok", "init net", "net per cold start"}}
	for _, c := range r.ColdStarts {
		ct.Rows = append(ct.Rows, []string{c.Name, fmtMs(c.Init.P50), fmtMs(c.Init.P90),
			fmt.Sprintf("%s / %s", fmtRatio(c.InitRatio), fmtRatio(c.InitP90Ratio)),
			fmtMs(c.FirstResponse.P50), fmtMs(c.FirstResponse.P90), fmtMiB(c.PeakRSSBytes),
			fmt.Sprintf("%d/%d", c.Runs-c.Errors, c.Runs), fmt.Sprintf("%d", c.InitRequests), fmt.Sprintf("%.1f", c.RequestsPerColdStart)})
	}
	ct.Notes = append(ct.Notes,
		"init = exec → first /next (Lambda's Init Duration); first resp = exec → first response posted; peak RSS = median VmHWM.",
		"init net = requests during init, from a probe cold start whose first event needs no I/O (counted at DynamoDB, WeChat, SSM",
		"and an HTTP(S)_PROXY catch-all); net per cold start = requests of a timed run, init + first invocation.",
		"Deployed, login reads its app secret from SSM once at init (one HTTPS request, typically 10-30 ms in-region);",
		"here WECHAT_SECRET is set, so it does not. \"login+ssm\" does that read against a local fake SSM (no TLS, no network).")
	for _, c := range r.ColdStarts {
		ct.Notes = append(ct.Notes, fmt.Sprintf("  %s: first event %s; init requests: %s; first timed run: %s", c.Name, c.FirstEvent, c.InitRequestDetail, c.RequestDetail))
		if c.FirstError != "" {
			ct.Notes = append(ct.Notes, "    first error: "+c.FirstError)
		}
	}
	tables = append(tables, ct)

	if w := r.Warm; w != nil {
		wt := Table{Title: "Warm latency through the local stack (in-memory dynalite, no proxy)",
			Header: []string{"request", "n", "errors", "p50", "p90", "p99", "max"}}
		wt.Rows = append(wt.Rows,
			[]string{"GET /me (Bearer), sequential", fmt.Sprintf("%d", w.Me.N), fmt.Sprintf("%d", w.MeErrors), fmtMs(w.Me.P50), fmtMs(w.Me.P90), fmtMs(w.Me.P99), fmtMs(w.Me.Max)},
			[]string{"POST /login, sequential", fmt.Sprintf("%d", w.Login.N), fmt.Sprintf("%d", w.LoginErrors), fmtMs(w.Login.P50), fmtMs(w.Login.P90), fmtMs(w.Login.P99), fmtMs(w.Login.Max)},
			[]string{"  part: jscode2session, client → emulator", fmt.Sprintf("%d", w.WeChat.N), "0", fmtMs(w.WeChat.P50), fmtMs(w.WeChat.P90), fmtMs(w.WeChat.P99), fmtMs(w.WeChat.Max)},
			[]string{"  POST /login − jscode2session (p50s)", "", "", fmtMs(w.Login.P50 - w.WeChat.P50), "", "", ""},
			[]string{"  part: login invoke (Runtime API, incl. WeChat + writes)", fmt.Sprintf("%d", w.LoginInvoke.N), "0", fmtMs(w.LoginInvoke.P50), fmtMs(w.LoginInvoke.P90), fmtMs(w.LoginInvoke.P99), fmtMs(w.LoginInvoke.Max)},
			[]string{"  part: PutItem, SDK client → dynalite", fmt.Sprintf("%d", w.PutItem.N), "0", fmtMs(w.PutItem.P50), fmtMs(w.PutItem.P90), fmtMs(w.PutItem.P99), fmtMs(w.PutItem.Max)},
		)
		if n := r.loginRequests(); n > 0 {
			wt.Rows = append(wt.Rows, []string{fmt.Sprintf("  POST /login − jscode2session − %g × PutItem (p50s)", n), "", "",
				fmtMs(w.Login.P50 - w.WeChat.P50 - n*w.PutItem.P50), "", "", ""})
		}
		wt.Rows = append(wt.Rows,
			[]string{fmt.Sprintf("GET /me, %d connections", w.Load.Conns), fmt.Sprintf("%d", w.Load.Requests), fmt.Sprintf("%d", w.Load.Errors), fmtMs(w.Load.Latency.P50), fmtMs(w.Load.Latency.P90), fmtMs(w.Load.Latency.P99), fmtMs(w.Load.Latency.Max)},
		)
		bd := w.Breakdown
		for _, x := range []struct {
			name string
			d    Dist
		}{
			{"  part: GetItem, SDK client → dynalite", bd.GetItem},
			{"  part: authorizer invoke (Runtime API, incl. GetItem)", bd.AuthorizerInvoke},
			{"  part: api invoke (Runtime API, GET /me)", bd.APIInvoke},
		} {
			wt.Rows = append(wt.Rows, []string{x.name, fmt.Sprintf("%d", x.d.N), "0", fmtMs(x.d.P50), fmtMs(x.d.P90), fmtMs(x.d.P99), fmtMs(x.d.Max)})
		}
		wt.Notes = append(wt.Notes,
			fmt.Sprintf("throughput: %.0f req/s over %.1f s at %d keep-alive connections, %d errors; peak instances: %d authorizer, %d api.",
				w.Load.RPS, w.Load.Seconds, w.Load.Conns, w.Load.Errors, bd.PeakAuthorizers, bd.PeakAPIs),
			fmt.Sprintf("dynalite alone: %.0f GetItem/s at %d connections (the ceiling for authorized requests here).", bd.GetItemRPS, w.Load.Conns),
			"Parts are timed alone and sequentially; gateway overhead ≈ GET /me − authorizer − api invoke.",
			cpuNote(w.Load),
			loginCPUNote(w),
			"GET /me = gateway → authorizer (1 GetItem on dynalite) → api function; POST /login = login → WeChat emulator + its DynamoDB writes (2 PutItem + 1 UpdateItem for a new device).",
			"Code issuance (wx.login()) is not timed. The load generator runs on the same cores as the stack.",
			"jscode2session: the exchange login makes, with a fresh code, sent by the benchmark's keep-alive client straight to the",
			"emulator after each login (WeChat's own time, as login sees it); POST /login − jscode2session is wxsession's share:",
			"the gateway (POST /login − login invoke), the Runtime API, login's own work and its DynamoDB writes (PutItem each, see",
			"the DynamoDB requests table for how many; the row after subtracts that many PutItems: the gateway, the Runtime API and",
			"login's own work).",
			"WeChat calls per login: "+callsNote(w.WeChatCalls)+".")
		if w.FirstError != "" {
			wt.Notes = append(wt.Notes, "first error: "+w.FirstError)
		}
		if w.Load.FirstError != "" {
			wt.Notes = append(wt.Notes, "first load error: "+w.Load.FirstError)
		}
		tables = append(tables, wt)
	}

	dt := Table{Title: "DynamoDB requests per operation (counting proxy in front of dynalite)",
		Header: []string{"operation", "status", "requests", "reads", "writes", "authorizer reads", "detail"}}
	for _, d := range r.Dynamo {
		sr := "-"
		if d.Authorized || d.SessionReads > 0 {
			sr = fmt.Sprintf("%g", d.SessionReads)
		}
		detail := d.Detail
		if !d.Consistent {
			detail += " (varied between reps)"
		}
		if d.Error != "" {
			detail += " ERROR: " + d.Error
		}
		dt.Rows = append(dt.Rows, []string{d.Op, fmt.Sprintf("%d", d.Status), fmt.Sprintf("%g", d.Requests), fmt.Sprintf("%g", d.Reads), fmt.Sprintf("%g", d.Writes), sr, detail})
	}
	if len(r.Dynamo) > 0 {
		dt.Notes = append(dt.Notes, fmt.Sprintf("per operation, %d reps each; authorizer reads = GetItem on the sessions table.", r.Dynamo[0].Reps))
	}
	tables = append(tables, dt)

	gt := Table{Title: "Go benchmarks (go test -bench . -benchmem)", Header: []string{"package", "benchmark", "time/op", "B/op", "allocs/op"}}
	for _, g := range r.GoBench {
		gt.Rows = append(gt.Rows, []string{strings.TrimPrefix(g.Package, "github.com/wxsession/wxsession/"), g.Name, fmtNs(g.NsPerOp), fmt.Sprintf("%.0f", g.BytesPerOp), fmt.Sprintf("%.0f", g.AllocsPerOp)})
	}
	tables = append(tables, gt)

	for _, t := range tables {
		if err := t.Write(&b); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if r.Pass() {
		b.WriteString("RESULT: PASS (every budget holds)\n")
	} else {
		b.WriteString("RESULT: FAIL (see the budgets above)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cpuNote summarizes where the CPU went during the load run.
func cpuNote(l LoadResult) string {
	if len(l.CPU) == 0 {
		return "CPU during the load: not measured (no /proc)."
	}
	var total float64
	parts := make([]string, 0, len(l.CPU))
	for _, c := range l.CPU {
		total += c.Seconds
		parts = append(parts, fmt.Sprintf("%s ×%d %.2f s", c.Component, c.Processes, c.Seconds))
	}
	perReq := 0.0
	if l.Requests > 0 {
		perReq = total / float64(l.Requests) * 1000
	}
	return fmt.Sprintf("CPU during the load: %.2f s in %.1f s wall (%.2f ms CPU per request): %s.", total, l.Seconds, perReq, strings.Join(parts, ", "))
}

// callsNote lists WeChat calls per login by API.
func callsNote(calls map[string]float64) string {
	if len(calls) == 0 {
		return "none counted"
	}
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", name, calls[name]))
	}
	return strings.Join(parts, ", ")
}

// loginRequests is the number of DynamoDB requests of a first login on a
// device (the DynamoDB table's "POST /login" row), 0 when not measured.
func (r *Report) loginRequests() float64 {
	for _, d := range r.Dynamo {
		if d.Op == "POST /login" && d.Error == "" {
			return d.Requests
		}
	}
	return 0
}

// loginCPUNote says where the CPU went during the login run, per round
// (one gateway login, one direct exchange, one login invocation, one
// PutItem).
func loginCPUNote(w *WarmResult) string {
	if len(w.LoginCPU) == 0 || w.LoginRounds == 0 {
		return "CPU during the logins: not measured (no /proc)."
	}
	parts := make([]string, 0, len(w.LoginCPU))
	for _, c := range w.LoginCPU {
		if c.Seconds > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f ms", c.Component, c.Seconds/float64(w.LoginRounds)*1000))
		}
	}
	return fmt.Sprintf("CPU per login round (2 logins — gateway and direct invoke —, 1 exchange, 1 PutItem; %d rounds): %s.",
		w.LoginRounds, strings.Join(parts, ", "))
}
