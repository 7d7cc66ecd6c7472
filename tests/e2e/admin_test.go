package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/testutil"
	"github.com/wxsession/wxsession/session"
)

// adminLog collects the audit lines wxadmin printed on its standard error
// during the run, for the end-of-run audit check.
var adminLog testutil.Buffer

var (
	wxadminOnce sync.Once
	wxadminPath string
	wxadminErr  error
)

// wxadminBinary builds cmd/wxadmin once per run.
func wxadminBinary(t testing.TB) string {
	t.Helper()
	wxadminOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wxadmin-e2e-")
		if err != nil {
			wxadminErr = err
			return
		}
		wxadminPath = filepath.Join(dir, "wxadmin")
		cmd := exec.Command("go", "build", "-o", wxadminPath, "./cmd/wxadmin")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			wxadminErr = fmt.Errorf("go build ./cmd/wxadmin: %v\n%s", err, out)
		}
	})
	if wxadminErr != nil {
		t.Fatal(wxadminErr)
	}
	return wxadminPath
}

// adminRun is one wxadmin run.
type adminRun struct {
	code           int
	stdout, stderr string
}

// auditLines returns the audit lines of the run's standard error.
func (r adminRun) auditLines(t testing.TB) []audit.Line {
	t.Helper()
	var out []audit.Line
	for _, l := range strings.Split(r.stderr, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var a audit.Line
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.Msg != audit.Msg {
			t.Fatalf("wxadmin stderr line %q is not an audit line: %v", l, err)
		}
		out = append(out, a)
	}
	return out
}

// wxadmin runs the wxadmin binary with -local against the test stack.
func wxadmin(t testing.TB, args ...string) adminRun {
	t.Helper()
	full := append([]string{"-local", "-dynamodb-endpoint", stk.DynamoURL}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wxadminBinary(t), full...)
	cmd.Env = append(os.Environ(), "DYNAMODB_ENDPOINT=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := adminRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("wxadmin %v: %v", args, err)
	}
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "{") {
			_, _ = adminLog.Write([]byte(l + "\n"))
		}
	}
	return r
}

// mustAdmin runs wxadmin -json and decodes its result, failing t unless it
// exits 0.
func mustAdmin(t testing.TB, v any, args ...string) adminRun {
	t.Helper()
	r := wxadmin(t, append([]string{"-json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("wxadmin %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("wxadmin %v: stdout is not JSON: %v\n%s", args, err, r.stdout)
		}
	}
	return r
}

// loginStatus logs openid in once and returns the answer.
func loginStatus(t testing.TB, openid string) response {
	t.Helper()
	is, err := newCode(context.Background(), openid)
	if err != nil {
		t.Fatal(err)
	}
	secrets.add(is.Code, "login code", -1)
	r := do(t, http.MethodPost, stk.APIURL+"/login", `{"code":"`+is.Code+`"}`)
	if id := r.str("session_id"); id != "" {
		secrets.add(id, "session id", rec.count()-1)
	}
	return r
}

func newOpenID(t testing.TB) string {
	t.Helper()
	return "oAdm" + uniq() + uniq() + uniq()
}

func TestAdminBanUnban(t *testing.T) {
	needStack(t)
	openid := newOpenID(t)
	a, b := login(t, openid), login(t, openid)
	other := login(t, "")

	var banned struct {
		Ended int `json:"sessions_ended"`
	}
	r := mustAdmin(t, &banned, "users", "ban", "-openid", openid, "-reason", "chargeback fraud", "-until", "2h")
	if banned.Ended != 2 {
		t.Errorf("ban ended %d sessions, want 2", banned.Ended)
	}
	lines := r.auditLines(t)
	if len(lines) != 1 || lines[0].Event != audit.UserBanned || lines[0].Reason != "chargeback fraud" || lines[0].Until == "" ||
		lines[0].User != audit.UserPseudonym(stk.Emulator.AppID(), openid) || !strings.HasPrefix(lines[0].Actor, audit.ActorOperatorPrefix) {
		t.Errorf("audit lines %+v, want one user_banned with reason, until, pseudonym and operator", lines)
	}
	for _, s := range []loginResult{a, b} {
		wantEnded(t, "a banned user's session", s.SessionID, string(session.ReasonBanned))
	}
	wantActive(t, "another user's session", other.SessionID)

	before := countItems(t, tblSessions)
	lr := loginStatus(t, openid)
	if lr.Status != http.StatusForbidden || lr.str("error") != "user_banned" || len(lr.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("login of a banned user: %s, want 403 user_banned and no cookie", lr)
	}
	until, err := time.Parse(time.RFC3339, lr.str("until"))
	if err != nil || time.Until(until) < time.Hour || time.Until(until) > 3*time.Hour {
		t.Errorf("until %q: want about 2h from now (%v)", lr.str("until"), err)
	}
	if lr.str("session_id") != "" {
		t.Error("a session id was issued to a banned user")
	}
	// The refused login leaves at most its claim (no session for the user).
	for _, it := range scanAll(t, tblSessions) {
		if str(it, "openid") == openid && str(it, "ended_reason") == "" && str(it, "claim") == "" && str(it, "failed") == "" {
			t.Fatalf("a live session item of the banned user exists after the refused login (%d items before)", before)
		}
	}

	var shown struct {
		Banned      bool   `json:"banned"`
		BanReason   string `json:"ban_reason"`
		AuditUser   string `json:"audit_user"`
		BannedUntil string `json:"banned_until"`
	}
	r = mustAdmin(t, &shown, "users", "show", "-openid", openid)
	if !shown.Banned || shown.BanReason != "chargeback fraud" || shown.BannedUntil == "" || shown.AuditUser != audit.UserPseudonym(stk.Emulator.AppID(), openid) {
		t.Errorf("users show: %s", r.stdout)
	}
	if strings.Contains(r.stdout, "session_key") {
		t.Error("users show prints a session_key field")
	}

	// Repeating the ban without -until keeps its end (a new reason does
	// not make it permanent); -until never makes it permanent.
	for _, tt := range []struct {
		args      []string
		wantUntil bool
	}{
		{[]string{"-reason", "again"}, true},
		{[]string{"-reason", "for good", "-until", "never"}, false},
	} {
		mustAdmin(t, nil, append([]string{"users", "ban", "-openid", openid}, tt.args...)...)
		shown.BannedUntil = ""
		r = mustAdmin(t, &shown, "users", "show", "-openid", openid)
		if !shown.Banned || (shown.BannedUntil != "") != tt.wantUntil {
			t.Errorf("after users ban %v: %s (want an end: %v)", tt.args, r.stdout, tt.wantUntil)
		}
	}

	r = mustAdmin(t, nil, "users", "unban", "-openid", openid)
	if l := r.auditLines(t); len(l) != 1 || l[0].Event != audit.UserUnbanned {
		t.Errorf("unban audit lines %+v", l)
	}
	wantActive(t, "login after unban", login(t, openid).SessionID)
	// Unbanning again is harmless and records nothing.
	if r := mustAdmin(t, nil, "users", "unban", "-openid", openid); len(r.auditLines(t)) != 0 {
		t.Errorf("a second unban raised %+v", r.auditLines(t))
	}
}

func TestAdminRevoke(t *testing.T) {
	needStack(t)
	openid := newOpenID(t)
	a, b, c := login(t, openid), login(t, openid), login(t, openid)

	var list struct {
		Sessions []struct {
			SID string `json:"sid"`
		} `json:"sessions"`
	}
	mustAdmin(t, &list, "sessions", "list", "-openid", openid)
	if len(list.Sessions) != 3 {
		t.Fatalf("sessions list: %d sessions, want 3", len(list.Sessions))
	}
	r := mustAdmin(t, nil, "sessions", "revoke", "-sid", session.Hash(a.SessionID))
	if l := r.auditLines(t); len(l) != 1 || l[0].Event != audit.SessionKicked || l[0].Session != session.Hash(a.SessionID) || l[0].Reason != "kicked" {
		t.Errorf("revoke -sid audit lines %+v", l)
	}
	wantEnded(t, "revoked session", a.SessionID, "kicked")
	wantActive(t, "another session of the user", b.SessionID)
	// Again: nothing to end, exit 0, no event.
	if r := mustAdmin(t, nil, "sessions", "revoke", "-sid", session.Hash(a.SessionID)); len(r.auditLines(t)) != 0 {
		t.Errorf("repeated revoke raised %+v", r.auditLines(t))
	}
	var count struct {
		Ended int `json:"sessions_ended"`
	}
	mustAdmin(t, &count, "sessions", "revoke", "-openid", openid)
	if count.Ended != 2 {
		t.Errorf("revoke -openid ended %d, want 2", count.Ended)
	}
	for _, s := range []loginResult{b, c} {
		wantEnded(t, "session of a kicked user", s.SessionID, "kicked")
	}
	// A kicked user may log in again.
	wantActive(t, "login after a kick", login(t, openid).SessionID)
}

func TestAdminRevokeAllBefore(t *testing.T) {
	needStack(t)
	old1, old2 := login(t, ""), login(t, "")
	cut := time.Now()
	// The stack's clock is this machine's: wait until a login is surely
	// after cut (created_us has microseconds; RFC 3339 with nanoseconds is
	// passed on).
	newer := login(t, "")
	var count struct {
		Ended int `json:"sessions_ended"`
	}
	r := mustAdmin(t, &count, "sessions", "revoke-all", "-before", cut.UTC().Format(time.RFC3339Nano))
	if count.Ended < 2 {
		t.Errorf("revoke-all ended %d sessions, want at least the 2 older ones", count.Ended)
	}
	if l := r.auditLines(t); len(l) != 1 || l[0].Event != audit.SessionKicked || l[0].Count != count.Ended || l[0].User != "" ||
		l[0].Until != "" || l[0].Before != cut.UTC().Format(time.RFC3339) {
		t.Errorf("revoke-all audit lines %+v", l)
	}
	for _, s := range []loginResult{old1, old2} {
		wantEnded(t, "session from before the cut", s.SessionID, "kicked")
	}
	wantActive(t, "session from after the cut", newer.SessionID)
}

func TestAdminDeleteUser(t *testing.T) {
	needStack(t)
	openid := newOpenID(t)
	s := login(t, openid)
	if r := do(t, http.MethodPut, stk.APIURL+"/me/profile", `{"nickname":"to be deleted"}`, bearer(s.SessionID)...); r.Status != http.StatusOK {
		t.Fatalf("PUT /me/profile: %s", r)
	}
	// The e2e stack runs PHONE_UNIQUE=true: the number stays claimed by
	// the user until its phone data is deleted.
	number := randomNumber()
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", `{"code":"`+phoneCode(t, openid, number)+`"}`, bearer(s.SessionID)...); r.Status != http.StatusOK {
		t.Fatalf("POST /me/phone: %s", r)
	}
	r := mustAdmin(t, nil, "users", "delete", "-openid", openid)
	if l := r.auditLines(t); len(l) != 1 || l[0].Event != audit.AccountDeleted || l[0].Count != 1 {
		t.Errorf("delete audit lines %+v", l)
	}
	wantEnded(t, "session of a deleted user", s.SessionID, string(session.ReasonAccountDeleted))
	assertUserGone(t, openid)
	other := newOpenID(t)
	so := login(t, other)
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", `{"code":"`+phoneCode(t, other, number)+`"}`, bearer(so.SessionID)...); r.Status != http.StatusOK {
		t.Errorf("another user binds the deleted user's number: %s, want 200", r)
	}
	again := login(t, openid)
	if r := do(t, http.MethodGet, stk.APIURL+"/me/phone", "", bearer(again.SessionID)...); r.Status != http.StatusNotFound {
		t.Errorf("GET /me/phone after deletion and a new sign-up: %s, want 404", r)
	}
	mustAdmin(t, nil, "users", "delete", "-openid", openid)
	// Deleting a user that does not exist is idempotent like DELETE /me:
	// exit 0, nothing to delete, nothing audited.
	gone := newOpenID(t)
	r = wxadmin(t, "users", "delete", "-openid", gone)
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to delete") || len(r.auditLines(t)) != 0 {
		t.Errorf("delete of an unknown user: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
}

// assertUserGone checks that no item of openid is left in the users and
// profiles tables, and no live session.
func assertUserGone(t *testing.T, openid string) {
	t.Helper()
	user := session.UserKey(stk.Emulator.AppID(), openid)
	for _, it := range scanAll(t, tblUsers) {
		if str(it, "user") == user || str(it, "openid") == openid {
			t.Errorf("the users table still holds the user: %v", it["user"])
		}
	}
	for _, it := range scanAll(t, tblProfiles) {
		if str(it, "openid") == openid || str(it, "user") == user {
			t.Error("the profiles table still holds the user's profile")
		}
	}
	for _, it := range scanAll(t, tblSessions) {
		if str(it, "openid") == openid && str(it, "ended_reason") == "" {
			t.Error("a live session of the deleted user remains")
		}
	}
	for _, it := range scanAll(t, "PhonesTable") {
		if strings.Contains(str(it, "user"), openid) || strings.Contains(str(it, "owner"), openid) {
			t.Errorf("the phones table still holds an item of the deleted user: %s/%s", str(it, "user"), str(it, "item"))
		}
	}
}

func TestDeleteMe(t *testing.T) {
	needStack(t)
	openid := newOpenID(t)
	s1, s2 := login(t, openid), login(t, openid)
	if r := do(t, http.MethodPut, stk.APIURL+"/me/profile", `{"nickname":"bye"}`, bearer(s1.SessionID)...); r.Status != http.StatusOK {
		t.Fatalf("PUT /me/profile: %s", r)
	}
	number := randomNumber()
	if r := do(t, http.MethodPost, stk.APIURL+"/me/phone", `{"code":"`+phoneCode(t, openid, number)+`"}`, bearer(s1.SessionID)...); r.Status != http.StatusOK {
		t.Fatalf("POST /me/phone: %s", r)
	}
	r := do(t, http.MethodDelete, stk.APIURL+"/me", "", bearer(s1.SessionID)...)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("DELETE /me: %s, want 204", r)
	}
	if c := r.Header.Get("Set-Cookie"); !strings.Contains(c, "sessionid=") || !strings.Contains(c, "Max-Age=0") {
		t.Errorf("DELETE /me does not clear the cookie: %q", c)
	}
	for _, s := range []loginResult{s1, s2} {
		wantEnded(t, "session of a deleted account", s.SessionID, string(session.ReasonAccountDeleted))
		if st := do(t, http.MethodDelete, stk.APIURL+"/me", "", bearer(s.SessionID)...).Status; st != http.StatusForbidden {
			t.Errorf("DELETE /me again with an ended session: %d, want 403", st)
		}
	}
	assertUserGone(t, openid)
	for _, it := range scanAll(t, "PhonesTable") {
		if str(it, "pure_phone_number") == number {
			t.Errorf("the phones table still holds the deleted user's number: %s/%s", str(it, "user"), str(it, "item"))
		}
	}
	// Signing up again starts from nothing.
	again := login(t, openid)
	// The nickname field itself: the random openid in the body may contain
	// "bye" (it did: oAdmrpaw75byepg...).
	r = do(t, http.MethodGet, stk.APIURL+"/me/profile", "", bearer(again.SessionID)...)
	var profile struct {
		Nickname *string `json:"nickname"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &profile) != nil || profile.Nickname == nil || *profile.Nickname != "" {
		t.Errorf("profile after re-sign-up: %s, want an empty nickname", r)
	}
}

// TestAdminConcurrentBanAndLogin: a ban racing logins of the same user
// never leaves a live session: after both finish, every id a login handed
// out is refused with reason banned.
func TestAdminConcurrentBanAndLogin(t *testing.T) {
	needStack(t)
	for round := 0; round < 3; round++ {
		openid := newOpenID(t)
		login(t, openid)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var issued []string
		var errs errList
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lr, err := loginAs(context.Background(), openid)
				if err != nil {
					if !strings.Contains(err.Error(), "user_banned") {
						errs.add(err)
					}
					return
				}
				mu.Lock()
				issued = append(issued, lr.SessionID)
				mu.Unlock()
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := wxadmin(t, "users", "ban", "-openid", openid, "-reason", "race"); r.code != 0 {
				errs.add(fmt.Errorf("ban: exit %d: %s", r.code, r.stderr))
			}
		}()
		wg.Wait()
		if err := errs.err(); err != nil {
			t.Fatal(err)
		}
		for _, id := range issued {
			wantEnded(t, fmt.Sprintf("round %d: a session issued while the ban ran", round), id, string(session.ReasonBanned))
		}
		for _, it := range scanAll(t, tblSessions) {
			if str(it, "openid") == openid && str(it, "ended_reason") == "" && str(it, "claim") == "" && str(it, "failed") == "" {
				t.Errorf("round %d: a live session item of the banned user remains", round)
			}
		}
		t.Logf("round %d: %d logins succeeded before the ban took effect", round, len(issued))
	}
}

func TestAdminBadInput(t *testing.T) {
	needStack(t)
	unknown := newOpenID(t)
	auditBefore := countItems(t, "AuditTable")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"users", "ban", "-openid", unknown}, 1, "no user"},
		{[]string{"users", "unban", "-openid", unknown}, 1, "no user"},
		{[]string{"users", "show", "-openid", unknown}, 1, "no user"},
		{[]string{"sessions", "list", "-openid", unknown}, 1, "no user"},
		{[]string{"sessions", "revoke", "-openid", unknown}, 1, "no user"},
		{[]string{"sessions", "revoke", "-sid", strings.Repeat("A", 43)}, 1, "no session"},
		{[]string{"users", "ban", "-openid", unknown, "-until", "someday"}, 2, "not a time"},
		{[]string{"sessions", "revoke-all", "-before", "2026-02-30"}, 2, "not a time"},
		{[]string{"users", "show", "-user", "u_" + strings.Repeat("A", 22)}, 1, "no user"},
	}
	for _, tt := range tests {
		r := wxadmin(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("wxadmin %v: exit %d (want %d), stderr:\n%s", tt.args, r.code, tt.code, r.stderr)
		}
		if len(r.auditLines(t)) != 0 {
			t.Errorf("wxadmin %v raised audit events", tt.args)
		}
	}
	if n := countItems(t, "AuditTable"); n != auditBefore {
		t.Errorf("refused commands recorded %d audit items", n-auditBefore)
	}
}

func TestAdminAuditList(t *testing.T) {
	needStack(t)
	openid := newOpenID(t)
	login(t, openid)
	mustAdmin(t, nil, "users", "ban", "-openid", openid, "-reason", "listed")
	mustAdmin(t, nil, "users", "unban", "-openid", openid)
	var out struct {
		Events []audit.Line `json:"events"`
	}
	mustAdmin(t, &out, "audit", "list", "-openid", openid)
	if len(out.Events) != 2 || out.Events[0].Event != audit.UserUnbanned || out.Events[1].Event != audit.UserBanned || out.Events[1].Reason != "listed" {
		t.Errorf("audit list -openid: %+v, want unban then ban", out.Events)
	}
}
