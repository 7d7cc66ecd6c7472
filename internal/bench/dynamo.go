package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/wxsession/wxsession/internal/devstack/stack"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/session"
)

// DynamoRow is the DynamoDB traffic of one API operation, counted by a
// reverse proxy between the functions and dynalite.
type DynamoRow struct {
	Op string `json:"operation"`
	// Authorized is true for requests the authorizer lets through.
	Authorized bool `json:"authorized"`
	Reps       int  `json:"reps"`
	Status     int  `json:"status"`
	// Requests, Reads and Writes are per operation (the same in every rep,
	// else Consistent is false and they are the means).
	Requests   float64 `json:"requests"`
	Reads      float64 `json:"reads"`
	Writes     float64 `json:"writes"`
	Consistent bool    `json:"consistent"`
	// SessionReads counts GetItem on the sessions table (the authorizer's
	// read), per operation, and SessionReadsExact1 says it was exactly 1 in
	// every rep.
	SessionReads       float64 `json:"session_reads"`
	SessionReadsExact1 bool    `json:"session_reads_exactly_1"`
	Detail             string  `json:"detail"`
	Error              string  `json:"error,omitempty"`
}

// dynOp is one operation to count: setup (not counted) returns the state
// do needs.
type dynOp struct {
	name       string
	authorized bool
	want       int
	setup      func(ctx context.Context) (string, error) // returns a session id
	do         func(ctx context.Context, sid string) (int, error)
}

// measureDynamo counts the DynamoDB requests of each API operation. The
// stack's functions must talk to DynamoDB through proxy.
func measureDynamo(ctx context.Context, st *stack.Stack, proxy *faultservers.Proxy, sessionsTable string, reps int) ([]DynamoRow, error) {
	c := newClient(4)
	defer c.CloseIdleConnections()
	call := func(method, path string, hdr map[string]string, body string) func(context.Context, string) (int, error) {
		return func(ctx context.Context, sid string) (int, error) {
			h := map[string]string{}
			if hdr != nil {
				for k, v := range hdr {
					h[k] = v
				}
			} else if sid != "" {
				h = bearer(sid)
			}
			status, _, err := do(ctx, c, method, st.APIURL+path, h, body)
			return status, err
		}
	}
	user, err := login(ctx, c, st, "")
	if err != nil {
		return nil, err
	}
	shared := func(context.Context) (string, error) { return user.SessionID, nil }
	fresh := func(ctx context.Context) (string, error) {
		r, err := login(ctx, c, st, "")
		return r.SessionID, err
	}
	unknown, err := session.NewID()
	if err != nil {
		return nil, err
	}
	ops := []dynOp{
		{name: "POST /login", want: 200,
			setup: func(context.Context) (string, error) { return issueCode(st, "") },
			do: func(ctx context.Context, code string) (int, error) {
				status, _, err := do(ctx, c, http.MethodPost, st.APIURL+"/login", nil, `{"code":"`+code+`"}`)
				return status, err
			}},
		{name: "POST /login (same device again)", want: 200,
			setup: func(ctx context.Context) (string, error) {
				first, err := loginDevice(ctx, c, st, "")
				if err != nil {
					return "", err
				}
				return issueCode(st, first.OpenID)
			},
			do: func(ctx context.Context, code string) (int, error) {
				status, _, err := do(ctx, c, http.MethodPost, st.APIURL+"/login", nil, deviceBody(code))
				return status, err
			}},
		{name: "POST /login (duplicate of a code)", want: 200,
			setup: func(ctx context.Context) (string, error) {
				code, err := issueCode(st, "")
				if err != nil {
					return "", err
				}
				_, err = postLogin(ctx, c, st, code)
				return code, err
			},
			do: func(ctx context.Context, code string) (int, error) {
				status, _, err := do(ctx, c, http.MethodPost, st.APIURL+"/login", nil, `{"code":"`+code+`"}`)
				return status, err
			}},
		{name: "GET /me (Bearer)", authorized: true, want: 200, setup: shared, do: call(http.MethodGet, "/me", nil, "")},
		{name: "GET /me (cookie)", authorized: true, want: 200, setup: shared,
			do: func(ctx context.Context, sid string) (int, error) {
				return call(http.MethodGet, "/me", map[string]string{"Cookie": "theme=dark; sessionid=" + sid}, "")(ctx, sid)
			}},
		{name: "GET /me (no session)", want: 403, setup: func(context.Context) (string, error) { return "", nil },
			do: call(http.MethodGet, "/me", map[string]string{}, "")},
		{name: "GET /me (unknown session)", want: 403, setup: func(context.Context) (string, error) { return unknown, nil },
			do: call(http.MethodGet, "/me", nil, "")},
		{name: "GET /me/profile", authorized: true, want: 200, setup: shared, do: call(http.MethodGet, "/me/profile", nil, "")},
		{name: "PUT /me/profile", authorized: true, want: 200, setup: shared,
			do: call(http.MethodPut, "/me/profile", nil, `{"nickname":"bench","avatar_url":"https://example.com/a.png"}`)},
		{name: "POST /logout", authorized: true, want: 204, setup: fresh, do: call(http.MethodPost, "/logout", nil, "")},
		{name: "POST /logout?scope=all (3 sessions)", authorized: true, want: 204,
			setup: func(ctx context.Context) (string, error) {
				first, err := login(ctx, c, st, "")
				if err != nil {
					return "", err
				}
				for range 2 {
					if _, err := login(ctx, c, st, first.OpenID); err != nil {
						return "", err
					}
				}
				return first.SessionID, nil
			},
			do: call(http.MethodPost, "/logout?scope=all", nil, "")},
	}
	rows := make([]DynamoRow, 0, len(ops)+1)
	for _, op := range ops {
		row, err := measureOp(ctx, proxy, sessionsTable, reps, op)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	// The idle timeout on: the authorizer renews a session at most once per
	// touch interval, so GET /me costs one read and, amortised, a fraction
	// of a write (docs/design.md §4).
	st.SetEnv(map[string]string{"SESSION_IDLE_TIMEOUT": "10m", "SESSION_TOUCH_INTERVAL": "1s"})
	defer st.SetEnv(map[string]string{"SESSION_IDLE_TIMEOUT": "", "SESSION_TOUCH_INTERVAL": ""})
	idleUser, err := login(ctx, c, st, "")
	if err != nil {
		return nil, err
	}
	row, err := measureOp(ctx, proxy, sessionsTable, reps, dynOp{
		name: "GET /me with SESSION_IDLE_TIMEOUT=10m (touch 1s)", authorized: true, want: 200,
		setup: func(context.Context) (string, error) { return idleUser.SessionID, nil },
		do:    call(http.MethodGet, "/me", nil, ""),
	})
	if err != nil {
		return nil, err
	}
	return append(rows, row), nil
}

// benchDevice is the device id of the "same device" login row.
const benchDevice = "bench-device-0123456789"

// deviceBody is a login body with code and benchDevice.
func deviceBody(code string) string {
	return `{"code":"` + code + `","device_id":"` + benchDevice + `"}`
}

// loginDevice logs openid in ("" = a new user) from benchDevice.
func loginDevice(ctx context.Context, c *http.Client, st *stack.Stack, openid string) (loginResult, error) {
	code, err := issueCode(st, openid)
	if err != nil {
		return loginResult{}, err
	}
	status, body, err := do(ctx, c, http.MethodPost, st.APIURL+"/login", nil, deviceBody(code))
	if err != nil || status != http.StatusOK {
		return loginResult{}, fmt.Errorf("bench: POST /login with a device: %d %s %v", status, truncate(string(body), 300), err)
	}
	var r loginResult
	if err := json.Unmarshal(body, &r); err != nil {
		return loginResult{}, fmt.Errorf("bench: POST /login: %w", err)
	}
	return r, nil
}

// measureOp counts the DynamoDB requests of reps runs of op.
func measureOp(ctx context.Context, proxy *faultservers.Proxy, sessionsTable string, reps int, op dynOp) (DynamoRow, error) {
	row := DynamoRow{Op: op.name, Authorized: op.authorized, Consistent: true, SessionReadsExact1: true}
	var first []faultservers.Request
	var prevN = -1
	for range reps {
		sid, err := op.setup(ctx)
		if err != nil {
			return DynamoRow{}, fmt.Errorf("bench: setup of %s: %w", op.name, err)
		}
		mark := proxy.Mark()
		status, err := op.do(ctx, sid)
		reqs := proxy.Since(mark)
		row.Reps++
		row.Status = status
		if err == nil && status != op.want {
			err = fmt.Errorf("status %d, want %d", status, op.want)
		}
		if err != nil && row.Error == "" {
			row.Error = err.Error()
		}
		if first == nil {
			first = reqs
		}
		if prevN >= 0 && len(reqs) != prevN {
			row.Consistent = false
		}
		prevN = len(reqs)
		sessionReads := 0
		for _, r := range reqs {
			row.Requests++
			switch {
			case readOps[r.Op]:
				row.Reads++
			case writeOps[r.Op]:
				row.Writes++
			}
			if r.Op == "GetItem" && len(r.Tables) == 1 && r.Tables[0] == sessionsTable {
				sessionReads++
			}
		}
		row.SessionReads += float64(sessionReads)
		if sessionReads != 1 {
			row.SessionReadsExact1 = false
		}
	}
	n := float64(row.Reps)
	row.Requests, row.Reads, row.Writes, row.SessionReads = row.Requests/n, row.Reads/n, row.Writes/n, row.SessionReads/n
	row.Detail = opSummary(first)
	return row, nil
}
