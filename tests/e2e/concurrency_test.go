package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const clients = 16

// client is one simulated mini-program user.
type client struct {
	n        int
	lr       loginResult
	nickname string
}

// checkMe does GET /me and checks the answer is this client's.
func (c *client) checkMe(ctx context.Context) (int, error) {
	r, err := send(ctx, http.MethodGet, stk.APIURL+"/me", "", bearer(c.lr.SessionID))
	if err != nil {
		return 0, fmt.Errorf("client %d: %w", c.n, err)
	}
	if r.Status != http.StatusOK {
		return r.Status, fmt.Errorf("client %d: GET /me: %s", c.n, r)
	}
	if got := r.str("openid"); got != c.lr.OpenID {
		return r.Status, fmt.Errorf("client %d: GET /me answered for openid %q, want %q (mixed-up response)", c.n, got, c.lr.OpenID)
	}
	return r.Status, nil
}

// run is one client's session: login, 20× GET /me, PUT then GET its profile.
func (c *client) run(ctx context.Context) error {
	var err error
	if c.lr, err = loginAs(ctx, ""); err != nil {
		return fmt.Errorf("client %d: %w", c.n, err)
	}
	for range 20 {
		if _, err := c.checkMe(ctx); err != nil {
			return err
		}
	}
	c.nickname = fmt.Sprintf("client-%02d-%s", c.n, uniq())
	body, _ := json.Marshal(map[string]string{"nickname": c.nickname})
	r, err := send(ctx, http.MethodPut, stk.APIURL+"/me/profile", string(body), bearer(c.lr.SessionID))
	if err != nil {
		return fmt.Errorf("client %d: %w", c.n, err)
	}
	if r.Status != http.StatusOK || r.str("openid") != c.lr.OpenID || r.str("nickname") != c.nickname {
		return fmt.Errorf("client %d: PUT /me/profile: %s", c.n, r)
	}
	r, err = send(ctx, http.MethodGet, stk.APIURL+"/me/profile", "", bearer(c.lr.SessionID))
	if err != nil {
		return fmt.Errorf("client %d: %w", c.n, err)
	}
	if r.Status != http.StatusOK || r.str("openid") != c.lr.OpenID || r.str("nickname") != c.nickname {
		return fmt.Errorf("client %d: GET /me/profile: %s (want openid %s, nickname %s)", c.n, r, c.lr.OpenID, c.nickname)
	}
	return nil
}

// TestConcurrency: 16 concurrent mini-programs each get only their own
// answers; then the business function's processes are SIGKILLed while 16
// clients keep calling GET /me, and the stack recovers.
func TestConcurrency(t *testing.T) {
	needStack(t)
	// A bound, not a speed assertion: generous for -race on a loaded machine.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	cs := make([]*client, clients)
	var errs errList
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range cs {
		cs[i] = &client{n: i}
		wg.Go(func() {
			if err := cs[i].run(ctx); err != nil {
				errs.add(err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d clients × (login + 20 GET /me + PUT/GET profile) in %v", clients, time.Since(t0).Round(time.Millisecond))
	if err := errs.err(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.lr.OpenID] || seen[c.lr.SessionID] {
			t.Fatalf("two clients share an openid or a session id")
		}
		seen[c.lr.OpenID], seen[c.lr.SessionID] = true, true
	}

	t.Run("kill the api function mid-run", func(t *testing.T) {
		testKill(t, ctx, cs)
	})
}

// outcome is one GET /me of the kill phase.
type outcome struct {
	start  time.Time
	status int // 0: transport error
	err    error
}

func testKill(t *testing.T, ctx context.Context, cs []*client) {
	pool := stk.Pool(fnAPI)
	if pool == nil {
		t.Fatalf("no pool for %s", fnAPI)
	}
	binary := pool.Config().Binary
	before := pool.Stats()

	var (
		stop    atomic.Bool
		mu      sync.Mutex
		results []outcome
		wg      sync.WaitGroup
	)
	for _, c := range cs {
		wg.Go(func() {
			for !stop.Load() {
				o := outcome{start: time.Now()}
				o.status, o.err = c.checkMe(ctx)
				mu.Lock()
				results = append(results, o)
				mu.Unlock()
			}
		})
	}
	// Kill once every client has had answers (not after a fixed time: under
	// -race on a loaded machine the first requests can take seconds).
	count := func(after time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range results {
			if !o.start.Before(after) {
				n++
			}
		}
		return n
	}
	if err := waitUntil(ctx, func() bool { return count(time.Time{}) >= 2*len(cs) }); err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("waiting for every client to be answered before the kill: %v", err)
	}
	pids, err := childProcesses(binary)
	if err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatal(err)
	}
	killAt := time.Now()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill %d: %v", pid, err)
		}
	}
	killed := time.Now()
	// Keep going until every client has made a few requests after the kill.
	waitErr := waitUntil(ctx, func() bool { return count(killed) >= 3*len(cs) })
	stop.Store(true)
	wg.Wait()

	if waitErr != nil {
		t.Fatalf("waiting for requests after the kill: %v", waitErr)
	}
	if len(results) == 0 {
		t.Fatal("no requests were made during the kill phase")
	}
	if len(pids) == 0 {
		t.Fatalf("found no %s processes (children of pid %d running %s) to kill", fnAPI, os.Getpid(), binary)
	}
	var ok, failedInFlight, failedAfter int
	var afterErrs []error
	statuses := map[int]int{}
	for _, o := range results {
		statuses[o.status]++
		switch {
		case o.err == nil:
			ok++
		case o.status == http.StatusOK: // 200 for the wrong user
			t.Errorf("during the kill: %v", o.err)
		case o.start.Before(killed):
			failedInFlight++
			if o.status != 0 && o.status < 500 {
				t.Errorf("a request in flight during the kill got %v; want a 5xx at worst", o.err)
			}
		default:
			failedAfter++
			if len(afterErrs) < 5 {
				afterErrs = append(afterErrs, o.err)
			}
		}
	}
	after := pool.Stats()
	t.Logf("killed %d %s process(es) at +%v; %d requests: %d ok, %d failed in flight, %d failed after the kill; statuses %v; pool crashes %d→%d, live now %d",
		len(pids), fnAPI, killAt.Sub(results[0].start).Round(time.Millisecond), len(results), ok, failedInFlight, failedAfter,
		statuses, before.Crashes, after.Crashes, after.Live)
	// Each instance runs one invocation at a time: at most one request per
	// killed process can be lost.
	if failedInFlight > len(pids) {
		t.Errorf("%d requests in flight failed, more than the %d killed processes", failedInFlight, len(pids))
	}
	// A request that starts after the kill must not be handed to a dead
	// instance (or must be retried on a live one).
	if failedAfter > 0 {
		t.Errorf("%d request(s) started after the kill failed, e.g. %v", failedAfter, afterErrs)
	}
	if ok == 0 {
		t.Errorf("no request succeeded during the kill phase")
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still alive after SIGKILL", pid)
		}
	}
	// Afterwards every request succeeds, on new processes.
	var errs errList
	var wg2 sync.WaitGroup
	for _, c := range cs {
		wg2.Go(func() {
			for range 5 {
				if _, err := c.checkMe(ctx); err != nil {
					errs.add(err)
				}
			}
		})
	}
	wg2.Wait()
	if err := errs.err(); err != nil {
		t.Errorf("after the kill: %v", err)
	}
	now, err := childProcesses(binary)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range now {
		for _, k := range pids {
			if p == k {
				t.Errorf("killed pid %d still listed as a child", p)
			}
		}
	}
	if len(now) == 0 {
		t.Errorf("no %s process running after recovery", fnAPI)
	}
	if r := do(t, http.MethodGet, stk.WeChatURL+"/test/health", ""); r.Status != http.StatusOK {
		t.Errorf("emulator health after the kill: %s", r)
	}
}

// childProcesses returns the pids of this process's children whose
// executable is binary (the pool starts instances as direct children).
func childProcesses(binary string) ([]int, error) {
	want, err := filepath.EvalSymlinks(binary)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", binary, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may contain spaces and parens.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != self {
			continue
		}
		if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && exe == want {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// alive reports whether pid runs (a zombie counts as dead).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitUntil polls cond every 10 ms until it holds, or returns ctx's error:
// a wait that scales with the machine's speed, not a fixed sleep.
func waitUntil(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
