package lambdaruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/testutil"
)

// Test binaries, built once in TestMain.
var (
	binFn, binFnV2, binInitFail, binRaw string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lambdaruntime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := func(args ...string) error {
		cmd := exec.Command("go", append([]string{"build", "-tags", "lambda.norpc"}, args...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build %v: %v\n%s", args, err, out)
		}
		return nil
	}
	// One build for the three v1 functions, one for the v2 variant; the go
	// build cache makes reruns fast.
	if err := build("-o", dir+string(filepath.Separator), "./testdata/fn", "./testdata/initfail", "./testdata/raw"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := build("-ldflags", "-X main.variant=v2", "-o", filepath.Join(dir, "fnv2", "bootstrap"), "./testdata/fn"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	place := func(name string) string { // dir/name → dir/name.d/bootstrap, as deployed
		d := filepath.Join(dir, name+".d")
		if err := os.Mkdir(d, 0o755); err != nil {
			panic(err)
		}
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(d, "bootstrap")); err != nil {
			panic(err)
		}
		return filepath.Join(d, "bootstrap")
	}
	binFn, binInitFail, binRaw = place("fn"), place("initfail"), place("raw")
	binFnV2 = filepath.Join(dir, "fnv2", "bootstrap")
	return m.Run()
}

func newTestPool(t *testing.T, cfg FunctionConfig) (*Pool, *testutil.Buffer) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "TestFunction"
	}
	if cfg.Binary == "" {
		cfg.Binary = binFn
	}
	logs := &testutil.Buffer{}
	p := NewPool(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), logs)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("function logs:\n%s", logs.String())
		}
	})
	return p, logs
}

type fnResponse struct {
	Variant    string            `json:"variant"`
	Nonce      string            `json:"nonce"`
	RequestID  string            `json:"request_id"`
	ARN        string            `json:"arn"`
	DeadlineMS int64             `json:"deadline_ms"`
	TraceID    string            `json:"trace_id"`
	Env        map[string]string `json:"env"`
	PID        int               `json:"pid"`
	ChildPID   int               `json:"child_pid"`
}

func invoke(t *testing.T, p *Pool, payload string) (Result, fnResponse) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := p.Invoke(ctx, []byte(payload))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", payload, err)
	}
	var out fnResponse
	if res.FunctionError == "" {
		if err := json.Unmarshal(res.Payload, &out); err != nil {
			t.Fatalf("Invoke(%s): payload %q: %v", payload, res.Payload, err)
		}
	}
	return res, out
}

// alive reports whether pid is a running (non-zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// settle waits until every live instance is parked in /next.
func settle(t *testing.T, p *Pool) {
	t.Helper()
	eventually(t, func() bool { s := p.Stats(); return s.Live == s.Idle })
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	reStart  = regexp.MustCompile(`(?m)^START RequestId: ([0-9a-f-]{36}) Version: \$LATEST$`)
	reEnd    = regexp.MustCompile(`(?m)^END RequestId: ([0-9a-f-]{36})$`)
	reReport = regexp.MustCompile(`(?m)^REPORT RequestId: ([0-9a-f-]{36})\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\tMax Memory Used: [1-9]\d* MB(\tInit Duration: \d+\.\d{2} ms)?$`)
	reUUID   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	reTrace  = regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`)
)

func TestEchoColdWarmAndLogLines(t *testing.T) {
	p, logs := newTestPool(t, FunctionConfig{MemoryMB: 256})
	payload := `{"op":"echo","nonce":"n-1","extra":{"a":[1,2,3]}}`

	cold, _ := invoke(t, p, payload)
	warm, _ := invoke(t, p, payload)

	for _, r := range []Result{cold, warm} {
		if string(r.Payload) != payload {
			t.Errorf("payload = %s, want %s", r.Payload, payload)
		}
		if !reUUID.MatchString(r.RequestID) {
			t.Errorf("request id %q is not a UUID v4", r.RequestID)
		}
		if r.MaxRSSBytes <= 0 {
			t.Errorf("MaxRSSBytes = %d, want > 0", r.MaxRSSBytes)
		}
	}
	if !cold.Cold || cold.InitDuration <= 0 {
		t.Errorf("first invocation: Cold=%v InitDuration=%v, want cold with init", cold.Cold, cold.InitDuration)
	}
	if warm.Cold || warm.InitDuration != 0 {
		t.Errorf("second invocation: Cold=%v InitDuration=%v, want warm", warm.Cold, warm.InitDuration)
	}
	// The instance parks in /next again shortly after answering.
	eventually(t, func() bool { return p.Stats().Idle == 1 })
	if s := p.Stats(); s.Live != 1 || s.Idle != 1 || s.ColdStarts != 1 || s.Invocations != 2 {
		t.Errorf("stats = %+v, want 1 live idle instance, 1 cold start, 2 invocations", s)
	}

	out := logs.String()
	starts, ends, reports := reStart.FindAllStringSubmatch(out, -1), reEnd.FindAllStringSubmatch(out, -1), reReport.FindAllStringSubmatch(out, -1)
	if len(starts) != 2 || len(ends) != 2 || len(reports) != 2 {
		t.Fatalf("want 2 START, END and REPORT lines, got %d/%d/%d in:\n%s", len(starts), len(ends), len(reports), out)
	}
	for i, r := range []Result{cold, warm} {
		if starts[i][1] != r.RequestID || ends[i][1] != r.RequestID || reports[i][1] != r.RequestID {
			t.Errorf("log lines %d name %s/%s/%s, want %s", i, starts[i][1], ends[i][1], reports[i][1], r.RequestID)
		}
	}
	if reports[0][2] == "" || reports[1][2] != "" {
		t.Errorf("Init Duration must be on the cold REPORT only:\n%s", out)
	}
	if !strings.Contains(out, `"msg":"init","variant":"v1"`) {
		t.Errorf("function's init log line not forwarded:\n%s", out)
	}
}

func TestLogForwarding(t *testing.T) {
	p, logs := newTestPool(t, FunctionConfig{})
	invoke(t, p, `{"op":"log","nonce":"fwd-42"}`)
	// Output is forwarded asynchronously, as on Lambda.
	eventually(t, func() bool { return strings.Contains(logs.String(), "stderr line fwd-42\n") })
	out := logs.String()
	var found bool
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "hello from the function") {
			found = true
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || m["nonce"] != "fwd-42" {
				t.Errorf("forwarded line is not the function's JSON line unchanged: %q (%v)", line, err)
			}
		}
	}
	if !found || !strings.Contains(out, "stderr line fwd-42\n") {
		t.Errorf("stdout/stderr lines not forwarded:\n%s", out)
	}
}

func TestLambdaContext(t *testing.T) {
	const timeout = 7 * time.Second
	p, _ := newTestPool(t, FunctionConfig{Name: "LoginFunction", Timeout: timeout, Region: "ap-east-1"})
	before := time.Now()
	res, out := invoke(t, p, `{"op":"ctx"}`)
	if out.RequestID != res.RequestID {
		t.Errorf("function saw request id %q, Result has %q", out.RequestID, res.RequestID)
	}
	if want := "arn:aws:lambda:ap-east-1:000000000000:function:LoginFunction"; out.ARN != want {
		t.Errorf("ARN = %q, want %q", out.ARN, want)
	}
	deadline := time.UnixMilli(out.DeadlineMS)
	if lo, hi := before.Add(timeout-time.Second), time.Now().Add(timeout+time.Second); deadline.Before(lo) || deadline.After(hi) {
		t.Errorf("deadline %v not within [%v, %v]", deadline, lo, hi)
	}
	if !reTrace.MatchString(out.TraceID) {
		t.Errorf("_X_AMZN_TRACE_ID = %q, want X-Ray format", out.TraceID)
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("WXSESSION_PARENT_CANARY", "must-not-leak")
	t.Setenv("HOME", "/home/canary")
	p, _ := newTestPool(t, FunctionConfig{
		Name:     "ApiFunction",
		MemoryMB: 512,
		Region:   "eu-west-1",
		Env: map[string]string{
			"SESSIONS_TABLE":    "wxsession-sessions",
			"AWS_ACCESS_KEY_ID": "AKIAOVERRIDDEN",     // credentials may be overridden
			"AWS_REGION":        "us-west-2",          // reserved: ignored
			"_HANDLER":          "something-else",     // reserved: ignored
			"TZ":                "Asia/Shanghai",      // reserved: ignored
			"DYNAMODB_ENDPOINT": "http://127.0.0.1:1", // passed through
		},
	})
	_, out := invoke(t, p, `{"op":"env"}`)
	env := out.Env
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "ApiFunction",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/ApiFunction",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT":                filepath.Dir(binFn),
		"__cwd":                           filepath.Dir(binFn),
		"_HANDLER":                        "bootstrap",
		"TZ":                              ":UTC",
		"SESSIONS_TABLE":                  "wxsession-sessions",
		"DYNAMODB_ENDPOINT":               "http://127.0.0.1:1",
		"AWS_ACCESS_KEY_ID":               "AKIAOVERRIDDEN",
		"AWS_SECRET_ACCESS_KEY":           localSecretAccessKey,
		"AWS_SESSION_TOKEN":               localSessionToken,
		"PATH":                            os.Getenv("PATH"),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if api := env["AWS_LAMBDA_RUNTIME_API"]; !regexp.MustCompile(`^127\.0\.0\.1:\d+$`).MatchString(api) {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", api)
	}
	if s := env["AWS_LAMBDA_LOG_STREAM_NAME"]; !regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$`).MatchString(s) {
		t.Errorf("AWS_LAMBDA_LOG_STREAM_NAME = %q", s)
	}
	for _, k := range []string{"WXSESSION_PARENT_CANARY", "HOME"} {
		if v, ok := env[k]; ok {
			t.Errorf("parent variable %s leaked into the function (%q)", k, v)
		}
	}
}

func TestFunctionErrorKeepsInstance(t *testing.T) {
	p, _ := newTestPool(t, FunctionConfig{})
	invoke(t, p, `{"op":"echo"}`)
	res, _ := invoke(t, p, `{"op":"error","nonce":"7"}`)
	if res.FunctionError != "NotFoundError" {
		t.Errorf("FunctionError = %q, want NotFoundError", res.FunctionError)
	}
	var body struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(res.Payload, &body); err != nil || body.ErrorMessage != "thing 7 not found" || body.ErrorType != "NotFoundError" {
		t.Errorf("error payload = %s (%v)", res.Payload, err)
	}
	after, _ := invoke(t, p, `{"op":"echo"}`)
	if after.Cold {
		t.Error("a handled function error must not discard the instance")
	}
	if s := p.Stats(); s.FunctionErrors != 1 || s.Crashes != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCrashes(t *testing.T) {
	tests := []struct {
		name, payload string
		wantErr       error  // from Invoke
		wantFnErr     string // when Invoke succeeds
	}{
		// os.Exit mid-invocation: no answer, the runtime is gone.
		{name: "exit", payload: `{"op":"exit"}`, wantErr: ErrCrashed},
		// aws-lambda-go posts the panic to /error, then exits: the caller
		// gets the function error (as on AWS), the instance is discarded.
		{name: "panic", payload: `{"op":"panic","nonce":"x"}`, wantFnErr: "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, logs := newTestPool(t, FunctionConfig{MaxInstances: 1})
			_, first := invoke(t, p, `{"op":"ctx"}`)

			res, err := p.Invoke(context.Background(), []byte(tt.payload))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Invoke error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(logs.String(), "Error: Runtime exited with error: exit status 3\nRuntime.ExitError\n") {
					t.Errorf("missing Runtime.ExitError log line:\n%s", logs)
				}
			} else if err != nil || res.FunctionError != tt.wantFnErr {
				t.Fatalf("Invoke = %q, %v; want FunctionError %q", res.FunctionError, err, tt.wantFnErr)
			}
			waitDead(t, first.PID)

			res, next := invoke(t, p, `{"op":"ctx"}`)
			if !res.Cold || next.PID == first.PID {
				t.Errorf("invocation after the crash: Cold=%v pid %d (crashed pid %d), want a new instance", res.Cold, next.PID, first.PID)
			}
			if s := p.Stats(); s.Live != 1 {
				t.Errorf("stats after recovery = %+v, want 1 live", s)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p, logs := newTestPool(t, FunctionConfig{Timeout: timeout})
	_, first := invoke(t, p, `{"op":"ctx"}`)

	start := time.Now()
	res, err := p.Invoke(context.Background(), []byte(`{"op":"sleep","ms":30000}`))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Invoke = %+v, %v; want ErrTimeout", res, err)
	}
	// Tells "ended by the 300 ms timeout" from "ran the 30 s sleep",
	// whatever the machine's speed.
	if elapsed > 15*time.Second {
		t.Errorf("timeout took %v, want about %v", elapsed, timeout)
	}
	waitDead(t, first.PID)
	if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT[\d:.]+Z [0-9a-f-]{36} Task timed out after 0\.30 seconds$`).MatchString(logs.String()) ||
		!strings.Contains(logs.String(), "\tStatus: timeout\n") {
		t.Errorf("missing timeout log lines:\n%s", logs)
	}

	res, next := invoke(t, p, `{"op":"ctx"}`)
	if !res.Cold || next.PID == first.PID {
		t.Errorf("after the timeout: Cold=%v pid=%d, want a new instance", res.Cold, next.PID)
	}
	if s := p.Stats(); s.Timeouts != 1 || s.Live != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestConcurrentInvocations(t *testing.T) {
	const maxInstances, n = 4, 16
	p, _ := newTestPool(t, FunctionConfig{MaxInstances: maxInstances})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nonce := fmt.Sprintf("nonce-%d-%s", i, randHex(8))
			op := "sleep"
			if i%2 == 0 {
				op = "echo"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := p.Invoke(ctx, []byte(fmt.Sprintf(`{"op":%q,"ms":50,"nonce":%q}`, op, nonce)))
			if err != nil {
				errs <- err
				return
			}
			var out fnResponse
			if err := json.Unmarshal(res.Payload, &out); err != nil || out.Nonce != nonce {
				errs <- fmt.Errorf("invocation %d got %s, want nonce %s", i, res.Payload, nonce)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := p.Stats()
	if s.Peak > maxInstances || s.Live > maxInstances || s.Peak < 2 {
		t.Errorf("stats = %+v, want 2..%d instances", s, maxInstances)
	}
	if s.Invocations != n || s.Queued != 0 {
		t.Errorf("stats = %+v, want %d invocations and an empty queue", s, n)
	}
}

func TestQueueRespectsContext(t *testing.T) {
	p, _ := newTestPool(t, FunctionConfig{MaxInstances: 1, Timeout: 10 * time.Second})
	invoke(t, p, `{"op":"echo"}`)
	settle(t, p)
	busy := make(chan error, 1)
	go func() {
		_, err := p.Invoke(context.Background(), []byte(`{"op":"sleep","ms":3000}`))
		busy <- err
	}()
	for p.Stats().Idle != 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Invoke(ctx, []byte(`{"op":"echo"}`))
	// The queued call must give up while the busy one still runs (not
	// after it, which would mean it waited in the queue past its deadline):
	// a check on order, not on the machine's speed.
	if !errors.Is(err, context.DeadlineExceeded) || len(busy) != 0 {
		t.Fatalf("queued Invoke = %v after %v (busy call done: %v), want DeadlineExceeded while the busy call runs", err, time.Since(start), len(busy) != 0)
	}
	if err := <-busy; err != nil {
		t.Fatalf("busy invocation: %v", err)
	}
	if s := p.Stats(); s.Queued != 0 || s.Live != 1 {
		t.Errorf("stats = %+v", s)
	}
	if res, _ := invoke(t, p, `{"op":"echo"}`); res.Cold {
		t.Error("the instance should be reused after the queue timeout")
	}
}

func TestReplace(t *testing.T) {
	p, _ := newTestPool(t, FunctionConfig{})
	_, v1 := invoke(t, p, `{"op":"ctx"}`)
	if v1.Variant != "v1" {
		t.Fatalf("variant = %q, want v1", v1.Variant)
	}
	type ran struct {
		out fnResponse
		err error
	}
	settle(t, p)
	slow := make(chan ran, 1)
	go func() {
		res, err := p.Invoke(context.Background(), []byte(`{"op":"sleep","ms":400}`))
		var out fnResponse
		if err == nil {
			err = json.Unmarshal(res.Payload, &out)
		}
		slow <- ran{out, err}
	}()
	for p.Stats().Idle != 0 { // the slow invocation holds the v1 instance
		time.Sleep(time.Millisecond)
	}
	_, idleV1 := invoke(t, p, `{"op":"ctx"}`) // second v1 instance, now idle
	p.Replace(binFnV2)

	res, v2 := invoke(t, p, `{"op":"ctx"}`)
	if v2.Variant != "v2" || !res.Cold {
		t.Errorf("after Replace: variant %q cold %v, want a new v2 instance", v2.Variant, res.Cold)
	}
	waitDead(t, idleV1.PID) // idle old instance stopped at once
	r := <-slow
	if r.err != nil || r.out.Variant != "v1" {
		t.Errorf("busy v1 invocation = %+v, %v; want it to finish on v1", r.out, r.err)
	}
	waitDead(t, v1.PID) // busy old instance stopped after its invocation
	for range 3 {
		if _, out := invoke(t, p, `{"op":"ctx"}`); out.Variant != "v2" {
			t.Errorf("variant = %q after Replace, want v2", out.Variant)
		}
	}
}

func TestCloseKillsEverything(t *testing.T) {
	p, _ := newTestPool(t, FunctionConfig{Timeout: time.Minute})
	_, out := invoke(t, p, `{"op":"spawn"}`)
	if !alive(out.PID) || !alive(out.ChildPID) {
		t.Fatalf("function %d or its child %d not running", out.PID, out.ChildPID)
	}
	settle(t, p)
	busy := make(chan error, 1)
	go func() {
		_, err := p.Invoke(context.Background(), []byte(`{"op":"sleep","ms":30000}`))
		busy <- err
	}()
	for p.Stats().Idle != 0 { // the sleep holds the instance
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	if s := p.Stats(); s.Live != 0 {
		t.Errorf("stats after Close = %+v", s)
	}
	if alive(out.PID) {
		t.Errorf("function process %d survived Close", out.PID)
	}
	waitDead(t, out.ChildPID) // reaped by init once killed
	if err := <-busy; !errors.Is(err, ErrClosed) {
		t.Errorf("running invocation got %v, want ErrClosed", err)
	}
	if _, err := p.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Invoke after Close = %v, want ErrClosed", err)
	}
}

func TestInitFailure(t *testing.T) {
	tests := []struct {
		name     string
		binary   string
		env      map[string]string
		wantType string
		wantLog  string
	}{
		{name: "exit at init", binary: binInitFail, wantType: "Runtime.ExitError", wantLog: "WECHAT_APPID is required"},
		{name: "init/error", binary: binRaw, env: map[string]string{"RAW_MODE": "initerror"}, wantType: "Runtime.ConfigError"},
		{name: "missing binary", binary: filepath.Join(t.TempDir(), "bootstrap")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, logs := newTestPool(t, FunctionConfig{Binary: tt.binary, Env: tt.env})
			for range 2 { // and again: no stuck slot
				start := time.Now()
				_, err := p.Invoke(context.Background(), []byte(`{}`))
				if err == nil {
					t.Fatal("Invoke succeeded")
				}
				if time.Since(start) > 5*time.Second {
					t.Errorf("init failure took %v", time.Since(start))
				}
				if tt.wantType == "" {
					continue
				}
				var ie *InitError
				if !errors.As(err, &ie) || !errors.Is(err, ErrInitFailed) || ie.ErrorType != tt.wantType {
					t.Errorf("err = %v, want *InitError of type %s", err, tt.wantType)
				}
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("the function's init log line was not forwarded:\n%s", logs)
			}
			if tt.wantType != "" && !strings.Contains(logs.String(), "INIT_REPORT Init Duration: ") {
				t.Errorf("missing INIT_REPORT line:\n%s", logs)
			}
			if s := p.Stats(); s.Live != 0 {
				t.Errorf("stats = %+v, want no live instance", s)
			}
		})
	}
}

func TestInitTimeout(t *testing.T) {
	hang := filepath.Join(t.TempDir(), "bootstrap") // never calls /next
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, logs := newTestPool(t, FunctionConfig{Binary: hang, InitTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := p.Invoke(context.Background(), nil)
	// The bound tells the 200 ms init timeout from the 60 s hang.
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrInitFailed) || time.Since(start) > 30*time.Second {
		t.Errorf("err = %v after %v, want an init timeout after ~200ms", err, time.Since(start))
	}
	if !strings.Contains(logs.String(), "\tPhase: init\tStatus: timeout\n") {
		t.Errorf("missing INIT_REPORT timeout line:\n%s", logs)
	}
	eventually(t, func() bool { return p.Stats().Live == 0 })
}

func TestRuntimeAPIEdges(t *testing.T) {
	p, logs := newTestPool(t, FunctionConfig{Binary: binRaw})

	res, err := p.Invoke(context.Background(), []byte(`{"op":"badid"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Payload) != `{"bogus":400,"late_init_error":403}` {
		t.Errorf("unknown request id / late init error: %s, want 400 and 403", res.Payload)
	}

	res, err = p.Invoke(context.Background(), []byte(`{"op":"headers"}`))
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(res.Payload, &h); err != nil {
		t.Fatal(err)
	}
	if h["Lambda-Runtime-Aws-Request-Id"] != res.RequestID || !reTrace.MatchString(h["Lambda-Runtime-Trace-Id"]) ||
		h["Lambda-Runtime-Invoked-Function-Arn"] != "arn:aws:lambda:us-east-1:000000000000:function:TestFunction" ||
		!regexp.MustCompile(`^\d{13}$`).MatchString(h["Lambda-Runtime-Deadline-Ms"]) {
		t.Errorf("/next headers = %v", h)
	}

	res, err = p.Invoke(context.Background(), []byte(`{"op":"errheader"}`))
	if err != nil || res.FunctionError != "Custom.Header" || string(res.Payload) != "not json" {
		t.Errorf("error with header only = %q %q %v", res.FunctionError, res.Payload, err)
	}

	res, err = p.Invoke(context.Background(), []byte(`{"op":"big"}`))
	if err != nil || res.FunctionError != "Function.ResponseSizeTooLarge" {
		t.Errorf("7 MB response = %q %v, want Function.ResponseSizeTooLarge", res.FunctionError, err)
	}

	if !strings.Contains(logs.String(), "double_response_status=403\n") {
		t.Errorf("second response for one request must be refused with 403:\n%s", logs)
	}
	if _, err := p.Invoke(context.Background(), make([]byte, MaxPayloadBytes+1)); !errors.Is(err, ErrRequestTooLarge) {
		t.Errorf("7 MB request = %v, want ErrRequestTooLarge", err)
	}
}

func TestWarm(t *testing.T) {
	p, logs := newTestPool(t, FunctionConfig{})
	if err := p.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^INIT_REPORT Init Duration: [0-9.]+ ms\tPhase: init\tStatus: success$`).MatchString(logs.String()) {
		t.Errorf("Warm did not report the init:\n%s", logs)
	}
	if s := p.Stats(); s.Idle != 1 || s.ColdStarts != 1 {
		t.Errorf("stats after Warm = %+v", s)
	}
	if res, _ := invoke(t, p, `{"op":"echo"}`); res.Cold {
		t.Error("invocation after Warm was cold")
	}
}

func TestIdleTimeout(t *testing.T) {
	p, _ := newTestPool(t, FunctionConfig{IdleTimeout: 200 * time.Millisecond})
	_, out := invoke(t, p, `{"op":"ctx"}`)
	waitDead(t, out.PID)
	if res, _ := invoke(t, p, `{"op":"echo"}`); !res.Cold {
		t.Error("invocation after the idle timeout was warm")
	}
}

func TestMeasureColdStart(t *testing.T) {
	cs, err := MeasureColdStart(context.Background(), FunctionConfig{Name: "Bench", Binary: binFn}, []byte(`{"op":"echo"}`))
	if err != nil {
		t.Fatal(err)
	}
	if cs.Init <= 0 || cs.FirstResponse < cs.Init || cs.MaxRSSBytes <= 0 || string(cs.Result.Payload) != `{"op":"echo"}` {
		t.Errorf("cold start = %+v", cs)
	}
	t.Logf("cold start: init %v, first response %v, peak RSS %d KiB", cs.Init, cs.FirstResponse, cs.MaxRSSBytes>>10)
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := PrefixWriter(&b, "[Fn] ")
	for _, s := range []string{"one\n", "two\nthr", "ee\n"} {
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
	}
	if want := "[Fn] one\n[Fn] two\n[Fn] three\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func BenchmarkInvokeWarm(b *testing.B) {
	p := NewPool(FunctionConfig{Name: "Bench", Binary: binFn}, nil, nil)
	defer p.Close()
	payload := []byte(`{"op":"echo","nonce":"bench"}`)
	ctx := context.Background()
	if err := p.Warm(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Invoke(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
	if s := p.Stats(); s.ColdStarts != 1 {
		b.Errorf("sequential invocations started %d instances, want 1", s.ColdStarts)
	}
}

func BenchmarkInvokeParallel(b *testing.B) {
	p := NewPool(FunctionConfig{Name: "Bench", Binary: binFn, MaxInstances: 4}, nil, nil)
	defer p.Close()
	payload := []byte(`{"op":"echo","nonce":"bench"}`)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Invoke(context.Background(), payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
