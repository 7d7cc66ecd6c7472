package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/internal/devstack/lambdaruntime"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/session"
)

// ColdRow is the cold-start result of one function.
type ColdRow struct {
	Name string `json:"name"`
	// Budgeted is false for informational rows (the floor itself, and login
	// with its secret read from a local fake SSM).
	Budgeted bool `json:"budgeted"`
	Runs     int  `json:"runs"`
	Errors   int  `json:"errors"`
	// Init is exec → the runtime's first /next (Lambda's Init Duration).
	Init Dist `json:"init"`
	// FirstResponse is exec → the first invocation's response.
	FirstResponse Dist `json:"first_response"`
	// InitRatio and InitP90Ratio compare Init's p50 and p90 with the floor's.
	InitRatio    float64 `json:"init_p50_vs_floor"`
	InitP90Ratio float64 `json:"init_p90_vs_floor"`
	// PeakRSSBytes is the median of the instances' peak RSS (VmHWM) after
	// the first invocation.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// FirstEvent describes the event of the timed runs.
	FirstEvent string `json:"first_event"`
	// InitRequests counts the network requests of a probe cold start whose
	// first event needs no I/O: every request it makes happens during init.
	InitRequests int `json:"init_requests"`
	// InitRequestDetail lists them.
	InitRequestDetail string `json:"init_request_detail"`
	// RequestsPerColdStart is the mean number of requests of a timed run
	// (init + first invocation).
	RequestsPerColdStart float64 `json:"requests_per_cold_start"`
	// RequestDetail lists the requests of the first timed run.
	RequestDetail string `json:"request_detail"`
	FirstError    string `json:"first_error,omitempty"`
}

// coldTarget is one function to cold-start.
type coldTarget struct {
	name     string
	budgeted bool
	cfg      lambdaruntime.FunctionConfig
	event    string                 // description of the timed event
	payload  func() ([]byte, error) // timed runs' first event
	probe    []byte                 // an event that needs no I/O
	check    func(lambdaruntime.Result) error
	probeChk func(lambdaruntime.Result) error
}

// coldCounter is a named proxy whose requests count as the function's
// network activity.
type coldCounter struct {
	name string
	*faultservers.Proxy
}

// coldCounters are the listeners whose requests count as the function's
// network activity.
type coldCounters []coldCounter

func (cs coldCounters) marks() []int {
	m := make([]int, len(cs))
	for i, c := range cs {
		m[i] = c.Mark()
	}
	return m
}

func (cs coldCounters) since(marks []int) []faultservers.Request {
	var out []faultservers.Request
	for i, c := range cs {
		for _, r := range c.Since(marks[i]) {
			r.Op = c.name + ":" + r.Op
			out = append(out, r)
		}
	}
	return out
}

// measureColdStarts runs one untimed warm-up round (page cache), one probe
// cold start per function, then runs timed rounds, each cold-starting every
// target once in order (floor, login, ...), and summarizes them.
func measureColdStarts(ctx context.Context, targets []coldTarget, runs int, counters coldCounters, logf func(string, ...any)) ([]ColdRow, error) {
	rows := make([]ColdRow, len(targets))
	inits := make([][]time.Duration, len(targets))
	firsts := make([][]time.Duration, len(targets))
	rss := make([][]int64, len(targets))
	reqTotals := make([]int, len(targets))
	for i, t := range targets {
		rows[i] = ColdRow{Name: t.name, Budgeted: t.budgeted, FirstEvent: t.event}
	}
	once := func(t coldTarget, payload []byte) (lambdaruntime.ColdStart, []faultservers.Request, error) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		marks := counters.marks()
		cs, err := lambdaruntime.MeasureColdStart(rctx, t.cfg, payload)
		reqs := counters.since(marks)
		if err != nil {
			return cs, reqs, err
		}
		if cs.Result.FunctionError != "" {
			return cs, reqs, fmt.Errorf("%s: function error %s: %s", t.name, cs.Result.FunctionError, truncate(string(cs.Result.Payload), 300))
		}
		return cs, reqs, nil
	}
	// Warm-up and probes.
	for i, t := range targets {
		p, err := t.payload()
		if err != nil {
			return nil, err
		}
		if _, _, err := once(t, p); err != nil {
			return nil, fmt.Errorf("bench: warm-up cold start of %s: %w", t.name, err)
		}
		cs, reqs, err := once(t, t.probe)
		if err == nil && t.probeChk != nil {
			err = t.probeChk(cs.Result)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: probe cold start of %s: %w", t.name, err)
		}
		rows[i].InitRequests = len(reqs)
		rows[i].InitRequestDetail = opSummary(reqs)
	}
	logf("cold starts: %d timed rounds of %d functions", runs, len(targets))
	for round := range runs {
		for i, t := range targets {
			p, err := t.payload()
			if err != nil {
				return nil, err
			}
			cs, reqs, err := once(t, p)
			if err == nil {
				err = t.check(cs.Result)
			}
			rows[i].Runs++
			if err != nil {
				rows[i].Errors++
				if rows[i].FirstError == "" {
					rows[i].FirstError = err.Error()
				}
				continue
			}
			inits[i] = append(inits[i], cs.Init)
			firsts[i] = append(firsts[i], cs.FirstResponse)
			rss[i] = append(rss[i], cs.MaxRSSBytes)
			reqTotals[i] += len(reqs)
			if round == 0 || rows[i].RequestDetail == "" {
				rows[i].RequestDetail = opSummary(reqs)
			}
		}
	}
	for i := range rows {
		rows[i].Init = Summarize(inits[i])
		rows[i].FirstResponse = Summarize(firsts[i])
		rows[i].PeakRSSBytes = medianInt64(rss[i])
		if n := len(inits[i]); n > 0 {
			rows[i].RequestsPerColdStart = float64(reqTotals[i]) / float64(n)
		}
	}
	if len(rows) > 0 && rows[0].Init.P50 > 0 {
		for i := range rows {
			rows[i].InitRatio = rows[i].Init.P50 / rows[0].Init.P50
			rows[i].InitP90Ratio = rows[i].Init.P90 / rows[0].Init.P90
		}
	}
	return rows, nil
}

// httpEvent builds a payload-2.0 integration event like API Gateway's.
func httpEvent(method, path, body string, headers map[string]string, principal map[string]any) ([]byte, error) {
	h := map[string]string{
		"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "wxbench",
		"x-forwarded-proto": "https", "x-forwarded-port": "443", "x-forwarded-for": "203.0.113.7",
	}
	maps.Copy(h, headers)
	rk := method + " " + path
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: rk, RawPath: path, Headers: h, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: rk, AccountID: "123456789012", Stage: "$default", APIID: "abc123",
			DomainName: h["host"], RequestID: "bench", Time: time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch: time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7", UserAgent: "wxbench",
			},
		},
	}
	if principal != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: principal}
	}
	return json.Marshal(ev)
}

// authorizerEvent builds a payload-2.0 authorizer event for GET /me.
func authorizerEvent(headers map[string]string) ([]byte, error) {
	h := map[string]string{"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "wxbench"}
	maps.Copy(h, headers)
	ev := events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/GET/me",
		RouteKey: "GET /me", RawPath: "/me", Headers: h,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "GET /me", AccountID: "123456789012", Stage: "$default", APIID: "abc123",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/me", Protocol: "HTTP/1.1", SourceIP: "203.0.113.7"},
		},
	}
	return json.Marshal(ev)
}

// wantStatus checks an HTTP integration response's statusCode.
func wantStatus(code int) func(lambdaruntime.Result) error {
	return func(r lambdaruntime.Result) error {
		var v struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(r.Payload, &v); err != nil {
			return fmt.Errorf("response is not an HTTP API response: %s", truncate(string(r.Payload), 200))
		}
		if v.StatusCode != code {
			return fmt.Errorf("status %d, want %d: %s", v.StatusCode, code, truncate(v.Body, 200))
		}
		return nil
	}
}

// wantAuthorized checks an authorizer's simple response.
func wantAuthorized(want bool) func(lambdaruntime.Result) error {
	return func(r lambdaruntime.Result) error {
		var v struct {
			IsAuthorized *bool `json:"isAuthorized"`
		}
		if err := json.Unmarshal(r.Payload, &v); err != nil || v.IsAuthorized == nil {
			return fmt.Errorf("not an authorizer simple response: %s", truncate(string(r.Payload), 200))
		}
		if *v.IsAuthorized != want {
			return fmt.Errorf("isAuthorized = %v, want %v", *v.IsAuthorized, want)
		}
		return nil
	}
}

func noCheck(lambdaruntime.Result) error { return nil }

// principalContext is the authorizer context of a session, as the
// integration receives it.
func principalContext(openid, appid, sid string, exp time.Time) map[string]any {
	return session.Principal{OpenID: openid, AppID: appid, SID: sid, ExpiresAt: exp}.Context()
}
