// Package admin is wxadmin, the operator's CLI (docs/design.md §8.4):
//
//	wxadmin [-local | -stack NAME] [-region R] [-appid A] [-json] <noun> <verb> [flags]
//
//	sessions list       -openid O
//	sessions revoke     -sid S | -openid O          (reason kicked)
//	sessions revoke-all -before T                   (reason kicked)
//	users show          -openid O | -user u_…       (never a secret)
//	users ban           -openid O [-reason R] [-until T]
//	users unban         -openid O
//	users delete        -openid O
//	audit list          [-openid O] [-limit N]
//
// Every action is checked before anything is written (an unknown openid, a
// malformed time, a target without the tables: a clear error and exit
// status 1, or 2 for a usage error), is safe to repeat, prints the audit
// events it raises as JSON lines on standard error, and records them in the
// stack's audit table. cmd/wxadmin only calls Main.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed; nothing or (said so) part of it was done
	ExitUsage = 2 // bad flags or arguments; nothing was done
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const usageText = `usage: wxadmin [-local | -stack NAME] [-region R] [-appid A] [-json] <noun> <verb> [flags]

  sessions list       -openid O
  sessions revoke     -sid S | -openid O        end one session, or all of a user's (reason kicked)
  sessions revoke-all -before T                 end every session created before T (reason kicked)
  users show          -openid O | -user u_...   a user's record (never a secret) and audit pseudonym
  users ban           -openid O [-reason R] [-until T]
  users unban         -openid O
  users delete        -openid O                 sessions, profile, phone and user record
  audit list          [-openid O] [-limit N]    operator actions recorded in the audit table

Times (T): RFC 3339 (2026-12-01T00:00:00+08:00) or a date (2026-12-01, midnight UTC+8);
-until also takes a duration from now (24h, 7d) or "never"; without -until
a repeated ban keeps the current ban's end. -before also takes "now".
Global flags:
`

// Main runs wxadmin with args (without the program name) and returns the
// exit status. Results go to stdout (JSON with -json), audit events and
// errors to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("wxadmin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	local := fs.Bool("local", false, "target the running `make dev`")
	stackName := fs.String("stack", "", "target the deployed CloudFormation stack `NAME` (operator's AWS credentials)")
	region := fs.String("region", "", "AWS region of -stack (default: AWS_REGION / the profile's)")
	endpoint := fs.String("dynamodb-endpoint", "", "DynamoDB endpoint of -local (default DYNAMODB_ENDPOINT, else the port make dev wrote to .wxlocal/sam-env.json, else http://127.0.0.1:8000)")
	appID := fs.String("appid", "", "the mini-program (default: the stack's WeChatAppId; the emulator's appid locally)")
	asJSON := fs.Bool("json", false, "print results as JSON")
	printUsage := func() {
		fmt.Fprint(stderr, usageText)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage()
			return ExitOK
		}
		fmt.Fprintln(stderr, "wxadmin:", err)
		printUsage()
		return ExitUsage
	}
	rest := fs.Args()
	cmd, err := parseCommand(rest)
	if err == nil && *local == (*stackName != "") {
		err = usagef("give exactly one of -local and -stack NAME")
	}
	if err == nil && *local && *region != "" {
		err = usagef("-region applies to -stack only")
	}
	if err == nil && !*local && *endpoint != "" {
		err = usagef("-dynamodb-endpoint applies to -local only")
	}
	if err != nil {
		fmt.Fprintln(stderr, "wxadmin:", err)
		var ue usageError
		if errors.As(err, &ue) {
			printUsage()
			return ExitUsage
		}
		return ExitError
	}

	var t *Target
	if *local {
		t, err = resolveLocal(ctx, *endpoint, *appID, getenv)
	} else {
		t, err = resolveStack(ctx, *stackName, *region, *appID, getenv)
	}
	if err != nil {
		fmt.Fprintln(stderr, "wxadmin:", err)
		return ExitError
	}
	r, err := newRunner(t, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "wxadmin:", err)
		return ExitError
	}
	out, err := cmd.run(ctx, r)
	if out != nil {
		if perr := print(stdout, out, *asJSON); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "wxadmin:", err)
		return ExitError
	}
	return ExitOK
}

// command is one parsed <noun> <verb> [flags].
type command struct {
	name string
	run  func(context.Context, *runner) (result, error)
}

// result is what a command prints: a value for -json, and its text form.
type result interface{ text() string }

func print(w io.Writer, r result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	_, err := io.WriteString(w, r.text())
	return err
}

// parseCommand parses <noun> <verb> [flags] completely, before anything is
// resolved or done.
func parseCommand(args []string) (command, error) {
	if len(args) < 2 {
		return command{}, usagef("missing <noun> <verb>")
	}
	name := args[0] + " " + args[1]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		openid, sid, user, reason, until, before string
		limit                                    int
	)
	flagsOf := map[string][]string{
		"sessions list":       {"openid"},
		"sessions revoke":     {"openid", "sid"},
		"sessions revoke-all": {"before"},
		"users show":          {"openid", "user"},
		"users ban":           {"openid", "reason", "until"},
		"users unban":         {"openid"},
		"users delete":        {"openid"},
		"audit list":          {"openid", "limit"},
	}
	allowed, ok := flagsOf[name]
	if !ok {
		return command{}, usagef("unknown command %q", name)
	}
	for _, f := range allowed {
		switch f {
		case "openid":
			fs.StringVar(&openid, "openid", "", "the user's openid")
		case "sid":
			fs.StringVar(&sid, "sid", "", "the session's sid (GET /me/sessions, sessions list)")
		case "user":
			fs.StringVar(&user, "user", "", "the user's audit pseudonym (u_...)")
		case "reason":
			fs.StringVar(&reason, "reason", "", "why (recorded in the audit trail, at most 200 characters)")
		case "until":
			fs.StringVar(&until, "until", "", "end of the ban; \"never\": until unbanned (default: a new ban lasts until unbanned, a repeated ban keeps the current end)")
		case "before":
			fs.StringVar(&before, "before", "", "end sessions created before this time")
		case "limit":
			fs.IntVar(&limit, "limit", 50, "at most this many entries, newest first")
		}
	}
	if err := fs.Parse(args[2:]); err != nil {
		return command{}, usagef("%s: %v", name, err)
	}
	if fs.NArg() > 0 {
		return command{}, usagef("%s: unexpected argument %q", name, fs.Arg(0))
	}
	now := time.Now()
	need := func(v, flagName string) error {
		if v == "" {
			return usagef("%s: -%s is required", name, flagName)
		}
		return nil
	}
	if openid != "" && !validOpenID(openid) {
		return command{}, usagef("%s: -openid %q is not an openid (1-64 characters of A-Z, a-z, 0-9, - and _)", name, openid)
	}
	c := command{name: name}
	switch name {
	case "sessions list":
		if err := need(openid, "openid"); err != nil {
			return c, err
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.listSessions(ctx, openid) }
	case "sessions revoke":
		switch {
		case (sid == "") == (openid == ""):
			return c, usagef("%s: give exactly one of -sid and -openid", name)
		case sid != "" && !validSID(sid):
			return c, usagef("%s: -sid %q is not a session's sid (43 characters of base64url)", name, sid)
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.revoke(ctx, sid, openid) }
	case "sessions revoke-all":
		if err := need(before, "before"); err != nil {
			return c, err
		}
		t, err := parseTime(before, now, true)
		if err != nil {
			return c, usagef("%s: -before: %v", name, err)
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.revokeAllBefore(ctx, t) }
	case "users show":
		switch {
		case (user == "") == (openid == ""):
			return c, usagef("%s: give exactly one of -openid and -user", name)
		case user != "" && !validPseudonym(user):
			return c, usagef("%s: -user %q is not an audit pseudonym (u_ and 22 characters)", name, user)
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.showUser(ctx, openid, user) }
	case "users ban":
		if err := need(openid, "openid"); err != nil {
			return c, err
		}
		if len(reason) > 200 || strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return c, usagef("%s: -reason must be at most 200 characters without control characters", name)
		}
		var end time.Time
		keep := until == "" // a repeated ban keeps the current end
		if until != "" && until != "never" {
			t, err := parseTime(until, now, false)
			if err != nil {
				return c, usagef("%s: -until: %v", name, err)
			}
			if !t.After(now) {
				return c, usagef("%s: -until %s is not in the future", name, t.Format(time.RFC3339))
			}
			end = t
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.ban(ctx, openid, reason, end, keep) }
	case "users unban":
		if err := need(openid, "openid"); err != nil {
			return c, err
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.unban(ctx, openid) }
	case "users delete":
		if err := need(openid, "openid"); err != nil {
			return c, err
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.deleteUser(ctx, openid) }
	case "audit list":
		if limit < 1 || limit > 1000 {
			return c, usagef("%s: -limit must be 1-1000", name)
		}
		c.run = func(ctx context.Context, r *runner) (result, error) { return r.auditList(ctx, openid, limit) }
	}
	return c, nil
}

// chinaTime is UTC+8, the zone of WeChat's calendar and of a bare date.
var chinaTime = time.FixedZone("UTC+8", 8*3600)

// parseTime reads a -before or -until value: RFC 3339; a date
// (YYYY-MM-DD, midnight UTC+8); for -until a duration from now (Go syntax,
// or Nd for days: 24h, 90m, 7d); for -before (before) "now".
func parseTime(s string, now time.Time, before bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "now" && before:
		return now, nil
	case s == "":
		return time.Time{}, errors.New("empty time")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, chinaTime); err == nil {
		return t, nil
	}
	if before {
		return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339, YYYY-MM-DD or \"now\")", s)
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && fmt.Sprint(n) == d && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339, YYYY-MM-DD, or a duration such as 24h or 7d)", s)
}

func validOpenID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validSID(s string) bool { return len(s) == 43 && validOpenID(s) }

func validPseudonym(s string) bool {
	return len(s) == 24 && strings.HasPrefix(s, "u_") && validOpenID(s)
}
