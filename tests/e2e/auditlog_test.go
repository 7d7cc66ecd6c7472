package e2e

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/audit"
	"github.com/wxsession/wxsession/internal/metrics"
)

// notRaisedYet are the audit events no feature of this build raises yet;
// the end-of-run check requires every other event of audit.Events.
var notRaisedYet = map[audit.Event]bool{}

// wantMetrics are the metrics a full run must have written.
var wantMetrics = []string{metrics.Logins, metrics.Login5xx, metrics.WeChatCalls, metrics.WeChatLatency,
	metrics.WeChatUnavailable, metrics.AuthorizerDecisions, metrics.SessionsEnded, metrics.TokenRefreshes,
	metrics.PhoneLookups, metrics.Misconfigured}

// auditSchema is every field an audit line always has.
var auditSchema = []string{"time", "level", "msg", "event", "actor", "app", "user", "session", "reason", "error", "source_ip", "request_id"}

var pseudonymShape = regexp.MustCompile(`^u_[A-Za-z0-9_-]{22}$`)

// fullRun reports whether every test of the package ran (no -run filter,
// not -short): only then must every event have been seen.
func fullRun() bool {
	f := flag.Lookup("test.run")
	return !testing.Short() && (f == nil || f.Value.String() == "")
}

// checkAuditAndEMF parses the functions' log and wxadmin's audit lines of
// the run: every audit line has the documented schema (docs/design.md
// §8.1), every EMF line is one CloudWatch accepts (metrics.Validate), and,
// after a full run, every audit event and every metric appeared.
func checkAuditAndEMF(functions, admin string, complete bool) []string {
	var problems []string
	seen := map[audit.Event]int{}
	seenMetric := map[string]int{}
	emfLines := 0
	for _, src := range []struct{ name, text string }{{"function log", functions}, {"wxadmin", admin}} {
		sc := bufio.NewScanner(strings.NewReader(src.text))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if !strings.HasPrefix(line, "{") {
				continue
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				continue // checkFunctionLogLines reports it
			}
			if _, ok := m["_aws"]; ok {
				emfLines++
				if err := metrics.Validate([]byte(line)); err != nil {
					problems = append(problems, fmt.Sprintf("%s line %d: %v: %.300s", src.name, n, err, line))
				}
				for _, name := range wantMetrics {
					if _, ok := m[name]; ok {
						seenMetric[name]++
					}
				}
				continue
			}
			if m["msg"] != audit.Msg {
				continue
			}
			if p := auditLineProblem(m); p != "" {
				problems = append(problems, fmt.Sprintf("%s line %d: %s: %.300s", src.name, n, p, line))
			}
			ev, _ := m["event"].(string)
			seen[audit.Event(ev)]++
		}
	}
	if !complete {
		return problems
	}
	for _, ev := range audit.Events {
		if !notRaisedYet[ev] && seen[ev] == 0 {
			problems = append(problems, fmt.Sprintf("no %q audit line in the whole run", ev))
		}
	}
	for _, name := range wantMetrics {
		if seenMetric[name] == 0 {
			problems = append(problems, fmt.Sprintf("no EMF line with metric %s in the whole run (%d EMF lines)", name, emfLines))
		}
	}
	return problems
}

// auditLineProblem checks one audit line against the schema.
func auditLineProblem(m map[string]any) string {
	for _, k := range auditSchema {
		if _, ok := m[k].(string); !ok {
			return fmt.Sprintf("field %q missing or not a string", k)
		}
	}
	ev := audit.Event(m["event"].(string))
	if !slices.Contains(audit.Events, ev) {
		return fmt.Sprintf("unknown event %q", ev)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
		return "time is not RFC 3339"
	}
	if m["request_id"] == "" || m["app"] == "" {
		return "empty request_id or app"
	}
	actor := m["actor"].(string)
	if actor != audit.ActorUser && actor != audit.ActorSystem && !strings.HasPrefix(actor, audit.ActorOperatorPrefix) {
		return fmt.Sprintf("actor %q", actor)
	}
	if u := m["user"].(string); u != "" && !pseudonymShape.MatchString(u) {
		return fmt.Sprintf("user %q is not a pseudonym", u)
	}
	if s := m["session"].(string); s != "" && len(s) != 43 {
		return "session is not a stored hash"
	}
	if ev == audit.LoginFailed && m["error"] == "" {
		return "login_failed without error"
	}
	return ""
}

// TestCheckAuditAndEMF runs the end-of-run check on synthetic lines.
func TestCheckAuditAndEMF(t *testing.T) {
	good := `{"time":"2026-11-30T07:00:00.1Z","level":"INFO","msg":"audit","event":"login_failed","actor":"user","app":"wx1","user":"","session":"","reason":"","error":"invalid_code","source_ip":"1.2.3.4","request_id":"r1"}`
	emf := `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["Outcome"]],"Metrics":[{"Name":"Logins","Unit":"Count"}]}]},"Outcome":"ok","Logins":1}`
	tests := []struct {
		name  string
		lines string
		want  string
	}{
		{"good", good + "\n" + emf, ""},
		{"missing field", strings.Replace(good, `"reason":"",`, "", 1), `field "reason"`},
		{"unknown event", strings.Replace(good, "login_failed", "login_maybe", 1), "unknown event"},
		{"openid as user", strings.Replace(good, `"user":""`, `"user":"oAbCdEfGhIjKlMnOpQrStUvWxYz0"`, 1), "not a pseudonym"},
		{"failed without error", strings.Replace(good, `"error":"invalid_code"`, `"error":""`, 1), "without error"},
		{"bad EMF", strings.Replace(emf, `"Timestamp":1,`, "", 1), "Timestamp"},
	}
	for _, tt := range tests {
		p := checkAuditAndEMF(tt.lines, "", false)
		if tt.want == "" && len(p) != 0 || tt.want != "" && (len(p) != 1 || !strings.Contains(p[0], tt.want)) {
			t.Errorf("%s: problems %q, want %q", tt.name, p, tt.want)
		}
	}
	if p := checkAuditAndEMF(good+"\n"+emf, "", true); len(p) == 0 {
		t.Error("a run with one event passed the completeness check")
	}
}
