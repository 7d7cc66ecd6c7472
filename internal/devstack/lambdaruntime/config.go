package lambdaruntime

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// Defaults applied by NewPool to zero FunctionConfig fields. They are the
// values AWS SAM uses when a template leaves them out.
const (
	DefaultTimeout      = 3 * time.Second
	DefaultMemoryMB     = 128
	DefaultMaxInstances = 8
	DefaultRegion       = "us-east-1"
	// DefaultInitTimeout is Lambda's limit on the init phase (exec until the
	// runtime's first /next call).
	DefaultInitTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a warm instance may stay idle before it is
	// stopped.
	DefaultIdleTimeout = 10 * time.Minute
)

// MaxPayloadBytes is Lambda's limit on a synchronous invocation's request and
// response payloads (6 MB).
const MaxPayloadBytes = 6 * 1024 * 1024

// AccountID is the account id used in the ARNs handed to functions.
const AccountID = "000000000000"

// Dummy credentials handed to functions unless FunctionConfig.Env sets them:
// the local stack needs none (dynalite accepts any signature), and the SDK
// must never fall back to the developer's own credentials.
const (
	localAccessKeyID     = "ASIALOCALLAMBDAKEY00"
	localSecretAccessKey = "local-lambda-secret-access-key-not-a-real-secret"
	localSessionToken    = "local-lambda-session-token"
)

// FunctionConfig describes one function, as read from template.yaml plus any
// local overrides.
type FunctionConfig struct {
	Name         string            // logical id, e.g. "LoginFunction"; also AWS_LAMBDA_FUNCTION_NAME
	Binary       string            // path to the bootstrap executable
	Env          map[string]string // function environment (template Variables + overrides)
	Timeout      time.Duration     // per-invocation limit; default 3s
	MemoryMB     int               // reported in REPORT lines and AWS_LAMBDA_FUNCTION_MEMORY_SIZE; default 128 (not enforced)
	MaxInstances int               // concurrency cap; default 8; further invocations queue
	Region       string            // AWS_REGION; default us-east-1

	// InitTimeout bounds exec → first /next; default 10s, as on Lambda.
	InitTimeout time.Duration
	// IdleTimeout stops instances idle for longer; 0 means DefaultIdleTimeout,
	// a negative value keeps idle instances forever.
	IdleTimeout time.Duration
}

func (c FunctionConfig) withDefaults() FunctionConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MemoryMB <= 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.MaxInstances <= 0 {
		c.MaxInstances = DefaultMaxInstances
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Name == "" {
		c.Name = "function"
	}
	c.Binary = absPath(c.Binary)
	return c
}

func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// FunctionARN is the ARN handed to the function as
// Lambda-Runtime-Invoked-Function-Arn.
func (c FunctionConfig) FunctionARN() string {
	region := c.Region
	if region == "" {
		region = DefaultRegion
	}
	return "arn:aws:lambda:" + region + ":" + AccountID + ":function:" + c.Name
}

// Errors returned by Invoke. Callers map ErrCrashed, ErrTimeout and
// ErrInitFailed to a 502/500 answer, as API Gateway does.
var (
	// ErrTimeout: the invocation ran longer than FunctionConfig.Timeout (or init
	// longer than InitTimeout); the instance was killed.
	ErrTimeout = errors.New("lambdaruntime: task timed out")
	// ErrCrashed: the runtime process exited while the invocation was running
	// (Runtime.ExitError); the instance was discarded.
	ErrCrashed = errors.New("lambdaruntime: runtime exited during the invocation")
	// ErrInitFailed: the instance exited or called /runtime/init/error before
	// its first /next call. The concrete error is an *InitError.
	ErrInitFailed = errors.New("lambdaruntime: function init failed")
	// ErrClosed: the pool was closed.
	ErrClosed = errors.New("lambdaruntime: pool closed")
	// ErrRequestTooLarge: the invocation payload exceeds MaxPayloadBytes.
	ErrRequestTooLarge = errors.New("lambdaruntime: request payload exceeds 6 MB")
)

// errNotDelivered marks an invocation whose instance died before the runtime
// took the event; Invoke retries it on another instance.
var errNotDelivered = fmt.Errorf("%w before receiving the event", ErrCrashed)

// InitError describes a failed init phase. It matches ErrInitFailed with
// errors.Is, and also ErrTimeout when init did not finish in time.
type InitError struct {
	Function     string
	ErrorType    string // from /runtime/init/error, or Runtime.ExitError / Sandbox.Timedout
	ErrorMessage string
	Timeout      bool
}

func (e *InitError) Error() string {
	return fmt.Sprintf("lambdaruntime: %s init failed: %s: %s", e.Function, e.ErrorType, e.ErrorMessage)
}

// Is reports whether target is ErrInitFailed (or ErrTimeout for an init timeout).
func (e *InitError) Is(target error) bool {
	return target == ErrInitFailed || (e.Timeout && target == ErrTimeout)
}

// environ builds the child's whole environment, as Lambda does: a minimal
// base (PATH, LANG), dummy credentials, the function's variables, then the
// reserved variables, which the function's configuration cannot override
// (AWS rejects them in templates). Nothing else is inherited from our own
// environment: no HOME, so the SDK never reads the developer's ~/.aws files.
func (p *Pool) environ(apiAddr string, binary string) []string {
	p.mu.Lock()
	cfg := p.cfg // SetEnv replaces cfg.Env under p.mu
	p.mu.Unlock()
	env := map[string]string{
		"PATH":                  "/usr/local/bin:/usr/bin:/bin",
		"LANG":                  "en_US.UTF-8",
		"AWS_ACCESS_KEY_ID":     localAccessKeyID,
		"AWS_SECRET_ACCESS_KEY": localSecretAccessKey,
		"AWS_SESSION_TOKEN":     localSessionToken,
	}
	if v := os.Getenv("PATH"); v != "" {
		env["PATH"] = v
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	reserved := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          apiAddr,
		"AWS_LAMBDA_FUNCTION_NAME":        cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      logStreamName(time.Now()),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      cfg.Region,
		"AWS_DEFAULT_REGION":              cfg.Region,
		"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT":                filepath.Dir(binary),
		"LAMBDA_RUNTIME_DIR":              filepath.Dir(binary),
		"_HANDLER":                        "bootstrap",
		"TZ":                              ":UTC",
	}
	for k, v := range reserved {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// logStreamName is Lambda's stream name format: 2006/01/02/[$LATEST]<32 hex>.
func logStreamName(now time.Time) string {
	return now.UTC().Format("2006/01/02") + "/[$LATEST]" + randHex(16)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// newRequestID returns a random UUID v4, the shape of Lambda request ids.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newTraceID returns an X-Ray trace header as Lambda hands it to runtimes.
func newTraceID(now time.Time) string {
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now.Unix(), randHex(12), randHex(8))
}
