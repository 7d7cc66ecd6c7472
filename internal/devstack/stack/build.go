package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// BuildReport describes one function's build.
type BuildReport struct {
	Function string
	// Binary is the bootstrap the function's pool runs.
	Binary string
	// Changed is true when the bootstrap's bytes differ from the previous
	// build's (always true for the first build).
	Changed  bool
	Duration time.Duration
}

// builder runs the Makefile's build-<LogicalId> targets, the ones `sam
// build` calls for BuildMethod: makefile, with LAMBDA_GOARCH (and
// LAMBDA_GOOS) set to the host's so the binaries run here.
//
// Each stack builds into its own directory, <root>/.wxlocal/bin/<pid>-<n>,
// so stacks running side by side (make dev and the test packages, or several
// test packages at once) never write or execute each other's files. make
// writes <base>/<id>/bootstrap; a changed binary is then copied to
// <id>/run-<n>/bootstrap, which is what the pool executes: a file the next
// build never overwrites while an instance might be starting from it. The
// directory is removed when the stack closes; ones left by killed processes
// are removed by the next stack that starts.
type builder struct {
	root string
	base string
	log  *slog.Logger

	mu     sync.Mutex
	hashes map[string][sha256.Size]byte
	bins   map[string]string
	gen    int
}

var builderSeq atomic.Int64

func newBuilder(root string, log *slog.Logger) *builder {
	binRoot := filepath.Join(root, ".wxlocal", "bin")
	removeStale(binRoot)
	base := filepath.Join(binRoot, fmt.Sprintf("%d-%d", os.Getpid(), builderSeq.Add(1)))
	return &builder{root: root, base: base, log: log, hashes: map[string][sha256.Size]byte{}, bins: map[string]string{}}
}

// removeStale deletes build directories of processes that no longer run.
func removeStale(binRoot string) {
	entries, err := os.ReadDir(binRoot)
	if err != nil {
		return
	}
	for _, e := range entries {
		pidStr, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if !e.IsDir() || !ok || err != nil {
			continue
		}
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(binRoot, e.Name()))
	}
}

// cleanup removes this stack's build directory.
func (b *builder) cleanup() error {
	return os.RemoveAll(b.base)
}

// current is the binary the function should run.
func (b *builder) current(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bins[id]
}

func (b *builder) dir(id string) string { return filepath.Join(b.base, id) }

// buildAll builds every function, at most GOMAXPROCS at a time, and
// reports each; on failure it returns the first error (with make's output)
// and keeps the previous binaries.
func (b *builder) buildAll(ctx context.Context, ids []string) ([]BuildReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	reports := make([]BuildReport, len(ids))
	data := make([][]byte, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			data[i], errs[i] = b.make(ctx, id)
			reports[i] = BuildReport{Function: id, Binary: b.bins[id], Duration: time.Since(t0)}
			if errs[i] == nil {
				b.log.Info("function built", "function", id, "ms", reports[i].Duration.Milliseconds())
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return reports, err
	}
	for i, id := range ids {
		sum := sha256.Sum256(data[i])
		if prev, ok := b.hashes[id]; ok && prev == sum {
			continue
		}
		run := filepath.Join(b.dir(id), "run-"+strconv.Itoa(b.gen))
		bin := filepath.Join(run, "bootstrap")
		if err := os.MkdirAll(run, 0o755); err != nil {
			return reports, fmt.Errorf("stack: build %s: %w", id, err)
		}
		if err := os.WriteFile(bin, data[i], 0o755); err != nil {
			return reports, fmt.Errorf("stack: build %s: %w", id, err)
		}
		b.hashes[id], b.bins[id] = sum, bin
		reports[i].Binary, reports[i].Changed = bin, true
		b.prune(id, bin)
	}
	return reports, nil
}

// make runs the function's Makefile target and returns the bootstrap's bytes.
func (b *builder) make(ctx context.Context, id string) ([]byte, error) {
	dir := b.dir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stack: build %s: %w", id, err)
	}
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", b.root, "build-"+id,
		"ARTIFACTS_DIR="+dir, "LAMBDA_GOARCH="+runtime.GOARCH, "LAMBDA_GOOS="+runtime.GOOS)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("stack: build %s (make build-%s) failed: %w\n%s", id, id, err, tail(out.String(), 4000))
	}
	built := filepath.Join(dir, "bootstrap")
	data, err := os.ReadFile(built)
	if err != nil {
		return nil, fmt.Errorf("stack: build %s: make build-%s did not produce %s: %w", id, id, built, err)
	}
	return data, nil
}

// prune removes run directories other than the current one and the one
// before it (busy instances may still run that; an executable removed
// while running keeps working on Unix anyway).
func (b *builder) prune(id, current string) {
	entries, err := os.ReadDir(b.dir(id))
	if err != nil {
		return
	}
	keep := filepath.Base(filepath.Dir(current))
	n, _ := strconv.Atoi(strings.TrimPrefix(keep, "run-"))
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "run-") || name == keep {
			continue
		}
		if m, err := strconv.Atoi(strings.TrimPrefix(name, "run-")); err == nil && m == n-1 {
			continue
		}
		_ = os.RemoveAll(filepath.Join(b.dir(id), name))
	}
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
