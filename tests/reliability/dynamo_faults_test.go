package reliability_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
	"github.com/wxsession/wxsession/internal/faultservers"
)

// hangBound bounds answers while DynamoDB hangs: the store's per-operation
// deadline (3 s for login and the business function, 2 s for the
// authorizer) plus the stack's overhead.
const hangBound = 6 * time.Second

// storeRow is one request of the DynamoDB fault matrix.
type storeRow struct {
	matrixRow
	// req builds the request; ids are a live session's raw ids.
	method, path, body string
	auth               bool // send the live session's bearer token
	// usersMayGrow: the users record may be written before the failure
	// (allowed: never a session without its user, not the reverse).
	usersMayGrow bool
}

func loginRow(fault string, bound time.Duration) storeRow {
	return storeRow{matrixRow: matrixRow{fault, 503, "store_unavailable", "1", bound}, method: "POST", path: "/login"}
}

func authorizedRow(fault, method, path string, bound time.Duration) storeRow {
	return storeRow{matrixRow: matrixRow{fault, 500, "Internal Server Error", "", bound}, method: method, path: path, auth: true}
}

// runStoreRow sends one request of the matrix and checks the answer, the
// latency and that no session was written or lost.
func runStoreRow(t *testing.T, h *harness, row storeRow, sid string) time.Duration {
	t.Helper()
	sessions, users := h.count("SessionsTable"), h.count("UsersTable")
	var hdrs []header
	body := row.body
	if row.path == "/login" {
		body = `{"code":"` + h.code(randomOpenID(t, "St")) + `"}`
		hdrs = append(hdrs, header{"Content-Type", "application/json"})
	}
	if row.auth {
		hdrs = append(hdrs, bearer(sid))
	}
	if body != "" && row.path != "/login" {
		hdrs = append(hdrs, header{"Content-Type", "application/json"})
	}
	r := h.do(h.request(row.method, row.path, strings.NewReader(body), hdrs...))

	got := r.errorCode()
	if got == "" {
		got = r.gatewayMessage()
	}
	if r.Status != row.status || got != row.code {
		t.Errorf("%s %s: got %s, want %d %s", row.method, row.path, r, row.status, row.code)
	}
	if r.Status == http.StatusOK || r.Status == http.StatusNoContent {
		t.Errorf("%s %s succeeded during a store fault", row.method, row.path)
	}
	if ra := r.Header.Get("Retry-After"); ra != row.retryAfter {
		t.Errorf("Retry-After = %q, want %q", ra, row.retryAfter)
	}
	if r.Dur > row.bound || r.Dur >= functionTimeout {
		t.Errorf("answered in %v, bound %v", r.Dur, row.bound)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("a failed request set a cookie")
	}
	if n := h.count("SessionsTable"); n != sessions {
		t.Errorf("sessions table: %d items, before %d (a session, or a login claim left behind)", n, sessions)
	}
	if n := h.count("UsersTable"); n != users && !(row.usersMayGrow && n == users+1) {
		t.Errorf("users table: %d items, before %d", n, users)
	}
	return r.Dur
}

// TestDynamoUnreachableAndHung points every function's DYNAMODB_ENDPOINT at
// a closed port, then at a listener that accepts and never answers.
func TestDynamoUnreachableAndHung(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack")
	}
	closed, err := faultservers.ClosedURL()
	if err != nil {
		t.Fatal(err)
	}
	hang, err := faultservers.NewHangListener()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hang.Close() })

	for _, tc := range []struct {
		name, endpoint string
		bound          time.Duration
	}{
		{"unreachable (closed port)", closed, fastBound},
		{"hung (accepts, never answers)", hang.URL(), hangBound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, stackOpts{env: map[string]map[string]string{
				"Parameters": {"DYNAMODB_ENDPOINT": tc.endpoint},
			}})
			// A live session in the real table the functions cannot reach.
			sid := h.putSession(randomOpenID(t, "Live"), time.Now().Add(time.Hour))
			rows := []storeRow{
				loginRow("login: "+tc.name, tc.bound),
				authorizedRow("GET /me: "+tc.name, "GET", "/me", tc.bound),
				authorizedRow("GET /me/profile: "+tc.name, "GET", "/me/profile", tc.bound),
				authorizedRow("POST /logout: "+tc.name, "POST", "/logout", tc.bound),
			}
			var measured []time.Duration
			var mr []matrixRow
			for _, row := range rows {
				measured = append(measured, runStoreRow(t, h, row, sid))
				mr = append(mr, row.matrixRow)
			}
			if h.sessionItem(sid) == nil {
				t.Error("the live session is gone")
			}
			logMatrix(t, "DynamoDB "+tc.name, mr, measured)
		})
	}
}

// TestDynamoProxyFaults puts a proxy between the functions and dynalite
// that answers chosen requests with DynamoDB's wire-format errors, hangs or
// resets them.
func TestDynamoProxyFaults(t *testing.T) {
	h := newHarness(t, stackOpts{proxy: true})
	p := h.proxy
	t.Cleanup(p.Reset)
	const (
		sessions = "SessionsTable"
		users    = "UsersTable"
		profiles = "ProfilesTable"
	)
	openid := randomOpenID(t, "Prx")
	live := h.login(openid)

	// A throttled first read is retried by the SDK: the request succeeds.
	p.SetRules(faultservers.Rule{Op: "GetItem", Table: h.table(sessions), Count: 1, Action: faultservers.Throttle})
	if r := h.get("/me", bearer(live.SessionID)); r.Status != http.StatusOK {
		t.Errorf("GET /me after one throttled read: %s", r)
	}
	if n := p.Count("GetItem"); n != 2 {
		t.Errorf("GetItem requests = %d, want 2 (throttled + retry)", n)
	}
	p.Reset()

	throttle := func(op, table string) []faultservers.Rule {
		return []faultservers.Rule{{Op: op, Table: table, Action: faultservers.Throttle}}
	}
	type proxyRow struct {
		storeRow
		rules []faultservers.Rule
	}
	tbl := h.table
	rows := []proxyRow{
		{loginRow("login: every request throttled", fastBound), []faultservers.Rule{{Action: faultservers.Throttle}}},
		{loginRow("login: every request 500 InternalServerError", fastBound), []faultservers.Rule{{Action: faultservers.ServerError}}},
		{loginRow("login: users UpdateItem throttled", fastBound), throttle("UpdateItem", tbl(users))},
		{storeRow{matrixRow: matrixRow{"login: sessions PutItem throttled", 503, "store_unavailable", "1", fastBound}, method: "POST", path: "/login", usersMayGrow: true}, throttle("PutItem", tbl(sessions))},
		{storeRow{matrixRow: matrixRow{"login: sessions PutItem hangs", 503, "store_unavailable", "1", hangBound}, method: "POST", path: "/login", usersMayGrow: true}, []faultservers.Rule{{Op: "PutItem", Table: tbl(sessions), Action: faultservers.Hang}}},
		{storeRow{matrixRow: matrixRow{"login: sessions PutItem reset", 503, "store_unavailable", "1", fastBound}, method: "POST", path: "/login", usersMayGrow: true}, []faultservers.Rule{{Op: "PutItem", Table: tbl(sessions), Action: faultservers.Reset}}},
		{authorizedRow("GET /me: every request throttled", "GET", "/me", fastBound), []faultservers.Rule{{Action: faultservers.Throttle}}},
		{authorizedRow("GET /me: sessions GetItem 500", "GET", "/me", fastBound), []faultservers.Rule{{Op: "GetItem", Table: tbl(sessions), Action: faultservers.ServerError}}},
		{authorizedRow("GET /me: sessions GetItem hangs", "GET", "/me", hangBound), []faultservers.Rule{{Op: "GetItem", Table: tbl(sessions), Action: faultservers.Hang}}},
		{authorizedRow("GET /me: sessions GetItem reset", "GET", "/me", fastBound), []faultservers.Rule{{Op: "GetItem", Table: tbl(sessions), Action: faultservers.Reset}}},
		{authorizedRow("POST /logout: every request throttled", "POST", "/logout", fastBound), []faultservers.Rule{{Action: faultservers.Throttle}}},
		{storeRow{matrixRow: matrixRow{"POST /logout: tombstone PutItem throttled", 503, "store_unavailable", "1", fastBound}, method: "POST", path: "/logout", auth: true}, throttle("PutItem", tbl(sessions))},
		{storeRow{matrixRow: matrixRow{"POST /logout?scope=all: GSI Query throttled", 503, "store_unavailable", "1", fastBound}, method: "POST", path: "/logout?scope=all", auth: true}, throttle("Query", tbl(sessions))},
		{storeRow{matrixRow: matrixRow{"POST /logout?scope=all: tombstone writes throttled", 503, "store_unavailable", "1", fastBound}, method: "POST", path: "/logout?scope=all", auth: true},
			append(throttle("BatchWriteItem", tbl(sessions)), throttle("PutItem", tbl(sessions))...)},
		{storeRow{matrixRow: matrixRow{"GET /me/profile: profiles GetItem throttled", 503, "store_unavailable", "1", fastBound}, method: "GET", path: "/me/profile", auth: true}, throttle("GetItem", tbl(profiles))},
		{storeRow{matrixRow: matrixRow{"PUT /me/profile: profiles PutItem throttled", 503, "store_unavailable", "1", fastBound}, method: "PUT", path: "/me/profile", body: `{"nickname":"n"}`, auth: true}, throttle("PutItem", tbl(profiles))},
	}
	measured := make([]time.Duration, len(rows))
	for i, row := range rows {
		t.Run(row.fault, func(t *testing.T) {
			h := h.at(t)
			p.SetRules(row.rules...)
			defer p.Reset()
			measured[i] = runStoreRow(t, h, row.storeRow, live.SessionID)
			if len(p.Requests()) == 0 {
				t.Error("no request reached the proxy")
			}
			// Besides a login's own claim (put, then released), nothing
			// may reach the sessions table.
			for _, r := range p.Requests() {
				if row.path != "/login" && r.Action == 0 && (r.Op == "PutItem" || r.Op == "DeleteItem" || r.Op == "BatchWriteItem") && contains(r.Tables, tbl(sessions)) {
					t.Errorf("a %s on the sessions table went through during the fault", r.Op)
				}
			}
			p.Reset()
			// Nothing lost: the live session still works once the fault is gone.
			if r := h.get("/me", bearer(live.SessionID)); r.Status != http.StatusOK {
				t.Errorf("after the fault, GET /me: %s", r)
			}
		})
	}
	if !h.userExists(openid) {
		t.Error("the live user's record is gone")
	}
	var mr []matrixRow
	for _, r := range rows {
		mr = append(mr, r.matrixRow)
	}

	// Compound worst case: WeChat times out twice (2 × 2 s + backoff), then
	// the users write hangs until the store's 3 s deadline. The login has
	// no overall deadline of its own, so this is close to its budget; it
	// must still answer 503 inside the 10 s function timeout.
	compound := storeRow{matrixRow: matrixRow{"login: WeChat slow x2, then users UpdateItem hangs", 503, "store_unavailable", "1", 9500 * time.Millisecond}, method: "POST", path: "/login"}
	t.Run(compound.fault, func(t *testing.T) {
		h := h.at(t)
		emu := h.s.Emulator
		defer emu.ClearFaults()
		defer p.Reset()
		if err := emu.SetFaults(wechatemu.DelayFault(2500*time.Millisecond, 2)); err != nil {
			t.Fatal(err)
		}
		p.SetRules(faultservers.Rule{Op: "UpdateItem", Table: tbl(users), Action: faultservers.Hang})
		measured = append(measured, runStoreRow(t, h, compound, live.SessionID))
		mr = append(mr, compound.matrixRow)
	})
	logMatrix(t, "DynamoDB faults through the proxy (wire-format errors, hang, reset)", mr, measured)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
