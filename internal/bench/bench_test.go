package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/faultservers"
)

func durs(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	oneToTen := durs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, tt := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", durs(7), 50, 7 * time.Millisecond},
		{"single p99", durs(7), 99, 7 * time.Millisecond},
		{"p50 of 10", oneToTen, 50, 5 * time.Millisecond},
		{"p90 of 10", oneToTen, 90, 9 * time.Millisecond},
		{"p99 of 10", oneToTen, 99, 10 * time.Millisecond},
		{"p100 of 10", oneToTen, 100, 10 * time.Millisecond},
		{"p1 of 10", oneToTen, 1, 1 * time.Millisecond},
		{"p0 clamps to min", oneToTen, 0, 1 * time.Millisecond},
		{"p50 of 2", durs(1, 2), 50, 1 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := durs(10, 1, 9, 2, 8, 3, 7, 4, 6, 5) // unsorted on purpose
	orig := append([]time.Duration(nil), in...)
	got := Summarize(in)
	want := Dist{N: 10, Min: 1, P50: 5, P90: 9, P99: 10, Max: 10, Mean: 5.5}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	for i := range in {
		if in[i] != orig[i] {
			t.Fatal("Summarize modified its input")
		}
	}
	if got := Summarize(nil); got != (Dist{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
	if got := Summarize([]time.Duration{1500 * time.Microsecond}); got.P50 != 1.5 || got.Mean != 1.5 {
		t.Errorf("sub-millisecond precision lost: %+v", got)
	}
}

func TestTableWrite(t *testing.T) {
	var b strings.Builder
	tb := Table{Title: "T", Header: []string{"name", "value"}, Rows: [][]string{{"a", "1.5 ms"}, {"longer name", "12"}}, Notes: []string{"note"}}
	if err := tb.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "## T\n\n" +
		"| name        | value  |\n" +
		"|-------------|--------|\n" +
		"| a           | 1.5 ms |\n" +
		"| longer name |     12 |\n" +
		"note\n\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := (Table{Title: "E", Header: []string{"x"}}).Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(not measured)") {
		t.Errorf("empty table: %q", b.String())
	}
}

const sampleGoBench = `goos: linux
goarch: amd64
pkg: github.com/wxsession/wxsession/internal/authorizer
cpu: Intel(R) Xeon(R) Processor @ 2.50GHz
BenchmarkHandle/allow-2         	  848812	      1469 ns/op	     568 B/op	      10 allocs/op
BenchmarkHandle/deny-malformed-2         	 8446190	       140.6 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/wxsession/wxsession/internal/authorizer	3.205s
pkg: github.com/wxsession/wxsession/session
BenchmarkValidID	20000000	        54.71 ns/op
--- FAIL: something unrelated
`

func TestParseGoBench(t *testing.T) {
	rows, err := ParseGoBench(strings.NewReader(sampleGoBench))
	if err != nil {
		t.Fatal(err)
	}
	want := []GoBenchRow{
		{Package: "github.com/wxsession/wxsession/internal/authorizer", Name: "Handle/allow", Iterations: 848812, NsPerOp: 1469, BytesPerOp: 568, AllocsPerOp: 10},
		{Package: "github.com/wxsession/wxsession/internal/authorizer", Name: "Handle/deny-malformed", Iterations: 8446190, NsPerOp: 140.6},
		{Package: "github.com/wxsession/wxsession/session", Name: "ValidID", Iterations: 20000000, NsPerOp: 54.71},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows %+v, want %d", len(rows), rows, len(want))
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestEvaluateBudgets(t *testing.T) {
	r := &Report{
		Sizes: []SizeRow{
			{Name: "floor", Bytes: 100, Ratio: 1, RatioGet: 0.83},
			{Name: "floorget", Bytes: 121, Ratio: 1.21, RatioGet: 1},
			// The budget is against floorget, the reference Lambda: login is
			// 1.27× the floor but 1.05× floorget (pass); api 1.06× (fail).
			{Name: "login", Bytes: 127, Ratio: 1.27, RatioGet: 1.05, Budgeted: true},
			{Name: "api", Bytes: 128, Ratio: 1.06, RatioGet: 1.06, Budgeted: true},
		},
		ColdStarts: []ColdRow{
			{Name: "floor", Init: Dist{N: 3, P50: 10}, InitRatio: 1, Runs: 3},
			{Name: "login", Budgeted: true, Init: Dist{N: 3, P50: 11}, InitRatio: 1.1, Runs: 3},
			{Name: "api", Budgeted: true, Init: Dist{N: 2, P50: 11}, InitRatio: 1.1, Runs: 3, Errors: 1, InitRequests: 1},
		},
		// login p50 5.5 ms over WeChat's 3 ms: 2.5 ms, over the budget.
		Warm: &WarmResult{Me: Dist{N: 10, P50: 1.9}, Login: Dist{N: 10, P50: 5.5}, WeChat: Dist{N: 10, P50: 3},
			Load: LoadResult{Conns: 16, Requests: 5000, RPS: 1000}},
		Dynamo: []DynamoRow{
			{Op: "GET /me (Bearer)", Authorized: true, Requests: 1, Reads: 1, SessionReads: 1, SessionReadsExact1: true, Consistent: true},
		},
		GoBench: []GoBenchRow{{Package: "github.com/wxsession/wxsession/internal/authorizer", Name: "Handle/allow", NsPerOp: 2000}},
	}
	r.EvaluateBudgets()
	got := map[string]bool{}
	for _, b := range r.Budgets {
		got[b.Name] = b.Pass
	}
	want := map[string]bool{
		"binary size login (linux/arm64)":                       true,
		"binary size api (linux/arm64)":                         false,
		"cold start init p50 login":                             true,
		"network requests during init login":                    true,
		"cold start init p50 api":                               false, // a run failed
		"network requests during init api":                      false,
		"warm GET /me p50":                                      true,
		"warm POST /login p50 over WeChat's jscode2session p50": false,
		"GET /me throughput at 16 connections":                  true,
		"DynamoDB reads per authorized request":                 true,
		"authorizer Handle (in-memory store, allow)":            true,
	}
	if len(got) != len(want) {
		t.Errorf("budgets %v, want %v", got, want)
	}
	for k, v := range want {
		if p, ok := got[k]; !ok || p != v {
			t.Errorf("budget %q: pass=%v (present %v), want %v", k, p, ok, v)
		}
	}
	if r.Pass() {
		t.Error("Pass() = true with failing budgets")
	}

	// A GET /me that reads twice fails the DynamoDB budget.
	r.Dynamo[0].Requests, r.Dynamo[0].SessionReads, r.Dynamo[0].SessionReadsExact1 = 2, 2, false
	r.EvaluateBudgets()
	for _, b := range r.Budgets {
		if b.Name == "DynamoDB reads per authorized request" && b.Pass {
			t.Errorf("DynamoDB budget passed with 2 reads: %+v", b)
		}
	}
}

func TestOpSummary(t *testing.T) {
	reqs := []faultservers.Request{
		{Op: "GetItem", Tables: []string{"Sessions"}},
		{Op: "BatchWriteItem", Tables: []string{"A", "B"}},
	}
	if got, want := opSummary(reqs), "BatchWriteItem A,B ×1, GetItem Sessions ×1"; got != want {
		t.Errorf("opSummary = %q, want %q", got, want)
	}
	if got := opSummary(nil); got != "none" {
		t.Errorf("opSummary(nil) = %q", got)
	}
}

func TestFakeSSM(t *testing.T) {
	c, err := faultservers.NewProxy(fakeSSM("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req, _ := http.NewRequest(http.MethodPost, c.URL()+"/", strings.NewReader(`{"Name":"/p","WithDecryption":true}`))
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Parameter struct{ Name, Value string } }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Parameter.Value != "s3cret" || out.Parameter.Name != "/p" {
		t.Errorf("answer %+v, err %v", out, err)
	}
}

// TestQuickRun runs the whole benchmark with tiny sample sizes: every
// measurement's code path, the table and the JSON. Timings are not checked
// (quick numbers mean nothing); the deterministic facts are: DynamoDB
// request counts, no network during init, one SSM read for login+ssm.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the functions and starts the local stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	r, err := Run(ctx, Config{Quick: true, SharedStack: true, GoBench: true, GoBenchPkgs: []string{"./session"}, Progress: &progress})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	if len(r.Sizes) != 6 {
		t.Errorf("sizes: %+v", r.Sizes)
	}
	if c := r.Client; c == nil || c.MinBytes <= 0 || c.MinBytes >= c.Bytes || c.MinGzipBytes >= c.MinBytes {
		t.Errorf("client size: %+v (notes %q)", c, r.Notes)
	}
	for _, s := range r.Sizes {
		if s.Bytes < 1<<20 {
			t.Errorf("%s: %d bytes", s.Name, s.Bytes)
		}
	}
	names := []string{}
	for _, c := range r.ColdStarts {
		names = append(names, c.Name)
		if c.Errors != 0 || c.Init.N != 2 || c.Init.P50 <= 0 || c.FirstResponse.P50 < c.Init.P50 || c.PeakRSSBytes <= 0 {
			t.Errorf("cold start %s: %+v", c.Name, c)
		}
		wantInit := 0
		if c.Name == "login+ssm" {
			wantInit = 1
		}
		if c.InitRequests != wantInit {
			t.Errorf("%s: %d requests during init (%s), want %d", c.Name, c.InitRequests, c.InitRequestDetail, wantInit)
		}
	}
	if got := strings.Join(names, ","); got != "floor,login,authorizer,api,wechat,login+ssm" {
		t.Errorf("cold start order %s", got)
	}
	if w := r.Warm; w == nil || w.Me.N != 20 || w.MeErrors != 0 || w.Login.N != 3 || w.WeChat.N != 3 || w.Load.Requests == 0 || w.Load.Errors != 0 ||
		w.Breakdown.GetItem.N != 5 || w.Breakdown.APIInvoke.N != 5 || w.WeChatCalls["jscode2session"] != 1 || len(w.WeChatCalls) != 1 ||
		w.LoginInvoke.N != 3 || w.PutItem.N != 3 {
		t.Errorf("warm: %+v", r.Warm)
	}
	for _, d := range r.Dynamo {
		if d.Error != "" {
			t.Errorf("dynamo %s: %s", d.Op, d.Error)
		}
	}
	if len(r.GoBench) == 0 {
		t.Error("no go benchmarks parsed")
	}
	byName := map[string]Budget{}
	for _, b := range r.Budgets {
		byName[b.Name] = b
	}
	for _, name := range []string{"DynamoDB reads per authorized request", "network requests during init login",
		"network requests during init authorizer", "network requests during init api"} {
		if b, ok := byName[name]; !ok || !b.Pass {
			t.Errorf("budget %q: %+v (present %v)", name, b, ok)
		}
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Budgets", "## Binary size", "## Cold start", "## Warm latency", "## DynamoDB requests", "## Go benchmarks", "QUICK MODE", "RESULT: "} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, text.String())
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Budgets) != len(r.Budgets) || back.Machine.Cores == 0 || back.Machine.CPU == "" {
		t.Errorf("JSON round trip: err %v, %+v", err, back.Machine)
	}
	t.Logf("quick run took %.0f s", r.Seconds)
}
