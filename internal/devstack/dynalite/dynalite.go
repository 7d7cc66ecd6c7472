// Package dynalite runs the npm-pinned dynalite (tools/dynalite), a
// DynamoDB-compatible server written in Node.js, for tests and the local
// stack, and creates tables on it.
//
// dynalite speaks DynamoDB's JSON wire protocol, so the same
// *dynamodb.Client code that runs on AWS runs against it. It does not
// support transactions, and it refuses UpdateTimeToLive (CreateTables logs
// that and carries on: TTL deletion is an optimisation, every read checks
// expires_at anyway).
//
// The package only works on Unix (it manages a process group). It is local
// tooling: Lambda functions must not import it.
package dynalite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/repo"
)

// DefaultReadyTimeout bounds how long Start waits for dynalite to answer.
const DefaultReadyTimeout = 15 * time.Second

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// Options configures Start. The zero value starts an in-memory server on a
// free port of 127.0.0.1, using the tools/dynalite directory of the
// enclosing Go module.
type Options struct {
	// Port to listen on; 0 picks a free port.
	Port int
	// Host to listen on; "" means 127.0.0.1.
	Host string
	// DataDir is dynalite's LevelDB directory (created if missing); ""
	// keeps all data in memory, lost on Stop.
	DataDir string
	// ToolsDir is the directory holding dynalite's package.json and
	// package-lock.json. "" means tools/dynalite in the directory of the
	// nearest go.mod at or above the working directory.
	ToolsDir string
	// ReadyTimeout bounds the wait for the first successful ListTables;
	// 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Stdout and Stderr receive dynalite's output; nil discards it (the
	// last few KiB of stderr are kept for error messages either way).
	Stdout, Stderr io.Writer
	// Logger receives lifecycle events; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running dynalite process.
type Server struct {
	// Endpoint is the base URL clients use, e.g. http://127.0.0.1:8000.
	Endpoint string
	// Host and Port are where the server listens.
	Host string
	Port int

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error         // cmd.Wait's result, valid after done
	stderr   *tailBuffer
	logger   *slog.Logger
	stopOnce sync.Once
	stopErr  error
	lock     *os.File // holds DataDir's lock until Stop; nil in memory
}

// Start runs `npm ci` in the tools directory if dynalite is not installed
// there, starts `node node_modules/dynalite/cli.js` with table state
// transitions made instant, and returns once the server answers
// ListTables. ctx bounds the start only (installation and readiness), not
// the server's lifetime: call Stop. On failure the process group is killed.
func Start(ctx context.Context, o Options) (*Server, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	readyTimeout := o.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = DefaultReadyTimeout
	}
	dir, err := toolsDir(o.ToolsDir)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("dynalite: node not found in PATH (install Node.js %d or newer): %w", MinNodeMajor, err)
	}
	if err := checkNode(ctx, node); err != nil {
		return nil, err
	}
	if err := ensureInstalled(ctx, dir, logger); err != nil {
		return nil, err
	}
	var lock *os.File
	if o.DataDir != "" {
		if lock, err = lockDataDir(o.DataDir); err != nil {
			return nil, err
		}
		defer func() {
			if lock != nil { // not handed to a Server
				_ = lock.Close()
			}
		}()
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("dynalite: create data dir: %w", err)
		}
	}

	// dynalite treats --port 0 as "use 4567", so a free port is chosen
	// here. Another process may grab it between the probe and dynalite's
	// listen; then dynalite exits with EADDRINUSE and a new port is tried.
	attempts := 1
	if o.Port == 0 {
		attempts = 3
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		port := o.Port
		if port == 0 {
			if port, err = freePort(host); err != nil {
				return nil, err
			}
		}
		s, err := start(ctx, node, dir, host, port, o, logger, readyTimeout)
		if err == nil {
			s.lock, lock = lock, nil
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) || ctx.Err() != nil {
			break
		}
		logger.Warn("dynalite port taken, retrying", "port", port)
	}
	return nil, lastErr
}

var errAddrInUse = errors.New("address in use")

func start(ctx context.Context, node, dir, host string, port int, o Options, logger *slog.Logger, readyTimeout time.Duration) (*Server, error) {
	args := []string{
		filepath.Join("node_modules", "dynalite", "cli.js"),
		"--port", strconv.Itoa(port),
		"--host", host,
	}
	if o.DataDir != "" {
		abs, err := filepath.Abs(o.DataDir)
		if err != nil {
			return nil, fmt.Errorf("dynalite: data dir: %w", err)
		}
		args = append(args, "--path", abs)
	}
	args = append(args, "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")

	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	tail := &tailBuffer{max: 8 << 10}
	listening := &markerWriter{marker: []byte("Dynalite listening at"), seen: make(chan struct{})}
	cmd.Stdout = io.MultiWriter(orDiscard(o.Stdout), listening)
	cmd.Stderr = io.MultiWriter(orDiscard(o.Stderr), tail)
	setProcAttr(cmd)

	began := time.Now()
	s := &Server{
		Endpoint: "http://" + net.JoinHostPort(host, strconv.Itoa(port)),
		Host:     host,
		Port:     port,
		cmd:      cmd,
		done:     make(chan struct{}),
		stderr:   tail,
		logger:   logger,
	}
	// On Linux the child gets SIGKILL when the OS thread that started it
	// exits (Pdeathsig), not only when this process dies; the goroutine
	// that starts it therefore keeps its thread locked until the child is
	// gone.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return // exiting locked ends the thread; there is no child
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("dynalite: start node: %w", err)
	}

	if err := s.waitReady(ctx, readyTimeout, listening.seen); err != nil {
		_ = s.Stop()
		msg := strings.TrimSpace(tail.String())
		if strings.Contains(msg, "EADDRINUSE") {
			return nil, fmt.Errorf("dynalite: port %d: %w: %s", port, errAddrInUse, msg)
		}
		if msg != "" {
			return nil, fmt.Errorf("%w; stderr: %s", err, msg)
		}
		return nil, err
	}
	logger.Info("dynalite started", "endpoint", s.Endpoint, "pid", s.Pid(),
		"data_dir", o.DataDir, "took_ms", time.Since(began).Milliseconds())
	return s, nil
}

// waitReady waits until dynalite has printed that it listens (so the
// answer below cannot come from another server on the same port) and
// answers ListTables.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration, listening <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case <-listening:
	case <-s.done:
		return fmt.Errorf("dynalite: exited before it was ready: %v", s.waitErr)
	case <-ctx.Done():
		return fmt.Errorf("dynalite: did not report listening on %s within %s: %w", s.Endpoint, timeout, ctx.Err())
	}
	client, err := LocalClient(ctx, s.Endpoint, func(o *dynamodb.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = &http.Client{Timeout: time.Second}
	})
	if err != nil {
		return err
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("dynalite: exited before it was ready: %v", s.waitErr)
		default:
		}
		if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err == nil {
			return nil
		} else {
			lastErr = err
		}
		select {
		case <-s.done:
			return fmt.Errorf("dynalite: exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("dynalite: not ready at %s within %s: %w (last error: %v)", s.Endpoint, timeout, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// External returns a Server standing for a DynamoDB-compatible endpoint
// that something else runs (DynamoDB Local, LocalStack, moto's server; see
// dynalitetest.EnvEndpoint): Stop does nothing, Pid is 0 and Done is never
// closed.
func External(endpoint string) *Server {
	return &Server{Endpoint: endpoint, done: make(chan struct{}), logger: slog.New(slog.DiscardHandler)}
}

// Pid returns the process id of the node process (also its process group
// id), so fault tests can SIGSTOP and SIGCONT it; 0 for an External server.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Done is closed when the dynalite process has exited, for whatever reason.
func (s *Server) Done() <-chan struct{} {
	return s.done
}

// Stop ends the server: SIGTERM to its process group, SIGKILL after a grace
// period, then waits for the process. A process stopped with SIGSTOP is
// continued first so it can handle SIGTERM. Stop is idempotent.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop()
		if s.lock != nil {
			_ = s.lock.Close()
		}
	})
	return s.stopErr
}

func (s *Server) stop() error {
	if s.cmd == nil {
		return nil // External: not ours to stop
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	pgid := s.Pid()
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("dynalite: SIGTERM: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		s.logger.Warn("dynalite ignored SIGTERM, killing", "pid", pgid)
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("dynalite: SIGKILL: %w", err)
		}
		<-s.done
	}
	s.logger.Debug("dynalite stopped", "endpoint", s.Endpoint)
	return nil
}

// toolsDir resolves Options.ToolsDir: dir, else tools/dynalite under the
// repository root.
func toolsDir(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	root, err := repo.Root("")
	if err != nil {
		return "", fmt.Errorf("dynalite: %w; set Options.ToolsDir", err)
	}
	return filepath.Join(root, "tools", "dynalite"), nil
}

// ensureInstalled runs `npm ci` in dir unless dynalite is installed there.
// Concurrent callers (go test runs packages in parallel processes) are
// serialised with a lock file so only one of them installs.
func ensureInstalled(ctx context.Context, dir string, logger *slog.Logger) error {
	bin := filepath.Join(dir, "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		return fmt.Errorf("dynalite: no package.json in tools dir %s: %w", dir, err)
	}
	unlock, err := lockFile(filepath.Join(os.TempDir(), "wxsession-dynalite-npm-"+strconv.FormatUint(uint64(fnv32(dir)), 16)+".lock"))
	if err != nil {
		return fmt.Errorf("dynalite: lock for npm ci: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return nil // installed by another process while we waited
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("dynalite: not installed in %s and npm not found in PATH: %w", dir, err)
	}
	logger.Info("installing dynalite (npm ci)", "dir", dir)
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dynalite: npm ci in %s: %w: %s", dir, err, strings.TrimSpace(out.String()))
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("dynalite: npm ci in %s did not install dynalite: %w", dir, err)
	}
	return nil
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("dynalite: find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// markerWriter closes seen once marker has appeared in what was written
// (a marker split across writes is found too).
type markerWriter struct {
	marker []byte
	seen   chan struct{}
	mu     sync.Mutex
	buf    []byte
	found  bool
}

func (m *markerWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.found {
		return len(p), nil
	}
	m.buf = append(m.buf, p...)
	if bytes.Contains(m.buf, m.marker) {
		m.found = true
		m.buf = nil
		close(m.seen)
	} else if keep := len(m.marker) - 1; len(m.buf) > keep {
		m.buf = append(m.buf[:0], m.buf[len(m.buf)-keep:]...)
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// LocalClient returns a DynamoDB client for a local endpoint: static dummy
// credentials (dynalite checks that requests are signed, not by whom),
// region us-east-1, BaseEndpoint = endpoint, and the standard retryer with a
// short backoff cap so tests do not sleep for seconds. It reads no
// environment and no shared config files. optFns adjust the client further
// (tests swap the HTTPClient to count requests).
func LocalClient(ctx context.Context, endpoint string, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("dynalite: endpoint %q is not an http(s) URL", endpoint)
	}
	cfg := aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "dynalite.LocalClient"}, nil
		}),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxBackoff = 200 * time.Millisecond
			})
		},
	}
	opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)
	return dynamodb.NewFromConfig(cfg, opts...), nil
}
