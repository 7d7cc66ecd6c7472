//go:build linux

package reliability_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxsession/wxsession/session"
)

// stoppedBound bounds every answer while the local DynamoDB is stopped:
// the authorizer gives up after 2 s, the login and business functions after
// 3 s; requests may queue behind busy instances for one more round.
const stoppedBound = 8 * time.Second

// dynalitePID finds the dynalite process of endpoint among this process's
// children (the stack does not expose it): a node process whose command
// line runs dynalite's cli.js with --port <port>.
func dynalitePID(t *testing.T, endpoint string) int {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		if !isDynalite(args, port) {
			continue
		}
		if ppid(pid) != self {
			continue
		}
		found = append(found, pid)
	}
	if len(found) != 1 {
		t.Fatalf("found %d dynalite processes on port %s among our children: %v", len(found), port, found)
	}
	return found[0]
}

func isDynalite(args []string, port string) bool {
	cli := false
	for i, a := range args {
		if strings.HasSuffix(a, filepath.Join("dynalite", "cli.js")) {
			cli = true
		}
		if a == "--port" && i+1 < len(args) && args[i+1] == port && cli {
			return true
		}
	}
	return false
}

// ppid reads a process's parent pid from /proc/<pid>/stat.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestDynamoSIGSTOP freezes the local DynamoDB (SIGSTOP) under a mix of
// normal and hostile requests: nothing is allowed, every answer comes within
// the bound, and after SIGCONT the same session works again.
func TestDynamoSIGSTOP(t *testing.T) {
	h := newHarness(t, stackOpts{})
	openid := randomOpenID(t, "Stop")
	lb := h.login(openid)
	if r := h.get("/me", bearer(lb.SessionID)); r.Status != http.StatusOK {
		t.Fatalf("GET /me before the stop: %s", r)
	}
	sessionsBefore := h.countSessions()
	pid := dynalitePID(t, h.s.DynamoURL)

	var contOnce sync.Once
	cont := func() {
		contOnce.Do(func() {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT %d: %v", pid, err)
			}
		})
	}
	t.Cleanup(cont) // runs before the stack's Close (cleanups are LIFO)
	defer cont()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	stoppedAt := time.Now()

	unknown, _ := session.NewID()
	type probe struct {
		name   string
		req    func() *http.Request
		accept map[int]bool // statuses allowed while the store is frozen
	}
	authz := map[int]bool{500: true, 403: true} // fail closed: never 200
	login := map[int]bool{503: true}
	deny := map[int]bool{403: true}
	var probes []probe
	for i := 0; i < 3; i++ {
		probes = append(probes, probe{"GET /me (bearer)", func() *http.Request {
			return h.request("GET", "/me", nil, bearer(lb.SessionID))
		}, authz})
	}
	probes = append(probes,
		probe{"GET /me (cookie)", func() *http.Request {
			return h.request("GET", "/me", nil, cookie("sessionid="+lb.SessionID))
		}, authz},
		probe{"GET /me/profile", func() *http.Request {
			return h.request("GET", "/me/profile", nil, bearer(lb.SessionID))
		}, authz},
		probe{"POST /logout?scope=all", func() *http.Request {
			return h.request("POST", "/logout?scope=all", nil, bearer(lb.SessionID))
		}, authz},
		probe{"GET /me (unknown id)", func() *http.Request {
			return h.request("GET", "/me", nil, bearer(unknown))
		}, authz},
		probe{"GET /me (malformed id, no read)", func() *http.Request {
			return h.request("GET", "/me", nil, bearer("not-a-session-id"))
		}, deny},
		probe{"GET /me (no credentials)", func() *http.Request {
			return h.request("GET", "/me", nil)
		}, deny},
	)
	for i := 0; i < 3; i++ {
		code := h.code(randomOpenID(t, "StopL"))
		probes = append(probes, probe{"POST /login", func() *http.Request {
			return h.request("POST", "/login", strings.NewReader(`{"code":"`+code+`"}`), header{"Content-Type", "application/json"})
		}, login})
	}

	replies := make([]reply, len(probes))
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i], errs[i] = h.send(p.req())
		}()
	}
	wg.Wait()
	var worst time.Duration
	for i, p := range probes {
		r := replies[i]
		if errs[i] != nil {
			t.Errorf("%s: %v", p.name, errs[i])
			continue
		}
		if !p.accept[r.Status] {
			t.Errorf("%s while DynamoDB is stopped: %s", p.name, r)
		}
		if r.Dur > stoppedBound {
			t.Errorf("%s answered in %v, bound %v", p.name, r.Dur, stoppedBound)
		}
		worst = max(worst, r.Dur)
		t.Logf("stopped: %-32s %d in %v", p.name, r.Status, r.Dur.Round(time.Millisecond))
	}
	t.Logf("while stopped (%v): %d requests, slowest answer %v", time.Since(stoppedAt).Round(time.Millisecond), len(probes), worst.Round(time.Millisecond))

	cont()
	contAt := time.Now()
	// Within a few seconds the same session works again.
	deadline := time.Now().Add(10 * time.Second)
	var last reply
	recovered := false
	for i := 0; i < 100 && time.Now().Before(deadline); i++ {
		last = h.get("/me", bearer(lb.SessionID))
		if last.Status == http.StatusOK {
			recovered = true
			break
		}
		if last.Status != 500 && last.Status != 403 {
			t.Errorf("after SIGCONT: GET /me %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !recovered {
		t.Fatalf("the session did not work again within 10 s of SIGCONT: %s", last)
	}
	t.Logf("same session answered 200 again %v after SIGCONT", time.Since(contAt).Round(time.Millisecond))
	if h.sessionItem(lb.SessionID) == nil || !h.userExists(openid) {
		t.Error("the session or its user record was lost")
	}
	// The frozen logins wrote no session (abandoned user writes and login
	// claims may land when DynamoDB resumes; that is allowed: a claim is no
	// session and is purged after 10 minutes).
	if n := h.countSessions(); n != sessionsBefore {
		t.Errorf("sessions table: %d items, before the stop %d", n, sessionsBefore)
	}
	// And logins work again.
	lb2 := h.login(randomOpenID(t, "After"))
	if r := h.get("/me", bearer(lb2.SessionID)); r.Status != http.StatusOK {
		t.Errorf("new session after SIGCONT: GET /me %s", r)
	}
}
