// Package metrics writes wxsession's metrics as CloudWatch Embedded Metric
// Format (EMF) log lines: one JSON object per line on the function's
// standard output, which CloudWatch Logs turns into metrics asynchronously.
// No API call, no added latency beyond writing a line
// (docs/design.md §8).
//
// A line looks like
//
//	{"_aws":{"Timestamp":1764486000123,"CloudWatchMetrics":[{"Namespace":"wxsession",
//	  "Dimensions":[["Outcome"],[]],"Metrics":[{"Name":"Logins","Unit":"Count"},
//	  {"Name":"Login5xx","Unit":"Count"}]}]},"Outcome":"ok","Logins":1,"Login5xx":0}
//
// Metric and dimension names are constants of this package, the one owner of
// them; template.yaml's alarms and dashboard use the same names (a test
// checks that). Rates are metrics worth 0 or 1 per event (Login5xx,
// WeChatUnavailable), so an alarm on their Average is the rate without
// metric math.
package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// DefaultNamespace is the CloudWatch namespace when none is configured
// (template.yaml sets METRICS_NAMESPACE to wxsession/<stack name>).
const DefaultNamespace = "wxsession"

// Metric names.
const (
	Logins              = "Logins"              // one per POST /login, dimension Outcome ("ok" or the error code)
	Login5xx            = "Login5xx"            // 1 when the login answered 5xx, else 0 (Average = 5xx rate)
	WeChatCalls         = "WeChatCalls"         // one per HTTP attempt to WeChat, dimensions Api, Errcode
	WeChatLatency       = "WeChatLatency"       // milliseconds per attempt
	WeChatUnavailable   = "WeChatUnavailable"   // 1 when the attempt found WeChat unavailable, else 0
	AuthorizerDecisions = "AuthorizerDecisions" // one per authorizer invocation, dimension Decision
	SessionsEnded       = "SessionsEnded"       // sessions ended, dimension Reason
	TokenRefreshes      = "TokenRefreshes"      // access token refreshes, dimension Outcome
	PhoneLookups        = "PhoneLookups"        // getuserphonenumber calls, dimension Outcome ("ok" = paid)
	Misconfigured       = "Misconfigured"       // a misconfiguration met at run time (bad appid/secret)
)

// Dimension names.
const (
	DimOutcome  = "Outcome"
	DimApi      = "Api"
	DimErrcode  = "Errcode"
	DimDecision = "Decision"
	DimReason   = "Reason"
)

// Authorizer decisions (dimension Decision).
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	DecisionError = "error"
)

// Outcomes of token refreshes and phone lookups (dimension Outcome). A phone
// lookup outcome is "ok" (a paid lookup) or the error code answered.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
)

// Units (the EMF specification's CloudWatch units).
const (
	unitCount        = "Count"
	unitMilliseconds = "Milliseconds"
)

// Emitter writes EMF lines. It is safe for concurrent use; a nil *Emitter
// writes nothing, so a component built without one (tests) costs nothing.
type Emitter struct {
	w   io.Writer
	ns  string
	now func() time.Time
	mu  sync.Mutex
}

// New returns an Emitter writing to w (os.Stdout in a Lambda function) in
// namespace ("" means DefaultNamespace).
func New(w io.Writer, namespace string) *Emitter {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Emitter{w: w, ns: namespace, now: time.Now}
}

// WithClock returns a copy of e reading the time from now (tests).
func (e *Emitter) WithClock(now func() time.Time) *Emitter {
	return &Emitter{w: e.w, ns: e.ns, now: now}
}

// Login counts one POST /login answer: outcome is "ok" or the error code,
// status the HTTP status.
func (e *Emitter) Login(ctx context.Context, outcome string, status int) {
	e.emit(ctx, [][]string{{DimOutcome}, {}}, []dim{{DimOutcome, outcome}},
		metric{Logins, unitCount, 1}, metric{Login5xx, unitCount, b2f(status >= 500)})
}

// WeChatCall records one HTTP attempt to WeChat: api is the path's last
// element (jscode2session, stable_token, getuserphonenumber, ...), errcode
// WeChat's errcode ("0" on success) or, when there was none, "http_<status>",
// "timeout" or "network"; unavailable says whether the attempt counts
// against WeChat's availability (-1, 5xx, timeouts, network errors,
// unreadable answers).
func (e *Emitter) WeChatCall(ctx context.Context, api, errcode string, d time.Duration, unavailable bool) {
	e.emit(ctx, [][]string{{DimApi, DimErrcode}, {DimApi}, {}}, []dim{{DimApi, api}, {DimErrcode, errcode}},
		metric{WeChatCalls, unitCount, 1},
		metric{WeChatLatency, unitMilliseconds, float64(d.Microseconds()) / 1000},
		metric{WeChatUnavailable, unitCount, b2f(unavailable)})
}

// Authorizer counts one authorizer decision (DecisionAllow, DecisionDeny or
// DecisionError).
func (e *Emitter) Authorizer(ctx context.Context, decision string) {
	e.emit(ctx, [][]string{{DimDecision}}, []dim{{DimDecision, decision}}, metric{AuthorizerDecisions, unitCount, 1})
}

// SessionsEnded counts n sessions ended for reason (logged_out, replaced,
// banned, ...). n <= 0 writes nothing.
func (e *Emitter) SessionsEnded(ctx context.Context, reason string, n int) {
	if n <= 0 {
		return
	}
	e.emit(ctx, [][]string{{DimReason}}, []dim{{DimReason, reason}}, metric{SessionsEnded, unitCount, float64(n)})
}

// TokenRefresh counts one access token refresh (OutcomeOK or OutcomeFailed).
func (e *Emitter) TokenRefresh(ctx context.Context, outcome string) {
	e.emit(ctx, [][]string{{DimOutcome}}, []dim{{DimOutcome, outcome}}, metric{TokenRefreshes, unitCount, 1})
}

// PhoneLookup counts one getuserphonenumber call: outcome OutcomeOK (a paid
// lookup) or the error code answered (phone_quota_exhausted, ...).
func (e *Emitter) PhoneLookup(ctx context.Context, outcome string) {
	e.emit(ctx, [][]string{{DimOutcome}}, []dim{{DimOutcome, outcome}}, metric{PhoneLookups, unitCount, 1})
}

// Misconfiguration counts one misconfiguration met at run time (WeChat
// refused the appid or secret); the alarm on it pages someone.
func (e *Emitter) Misconfiguration(ctx context.Context) {
	e.emit(ctx, [][]string{{}}, nil, metric{Misconfigured, unitCount, 1})
}

type dim struct{ name, value string }

type metric struct {
	name, unit string
	value      float64
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// emit writes one EMF line: the _aws metadata (timestamp in epoch
// milliseconds, one directive with the dimension sets and the metric
// definitions), then the dimension values and metric values as top-level
// members, as the specification requires, and request_id (a plain
// property, not a dimension) when ctx holds a Lambda context.
func (e *Emitter) emit(ctx context.Context, sets [][]string, dims []dim, ms ...metric) {
	if e == nil {
		return
	}
	b := make([]byte, 0, 384)
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, e.now().UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":`...)
	b = appendString(b, e.ns)
	b = append(b, `,"Dimensions":[`...)
	for i, set := range sets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, d := range set {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, d)
		}
		b = append(b, ']')
	}
	b = append(b, `],"Metrics":[`...)
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = appendString(b, m.name)
		b = append(b, `,"Unit":`...)
		b = appendString(b, m.unit)
		b = append(b, '}')
	}
	b = append(b, `]}]}`...)
	for _, d := range dims {
		b = append(b, ',')
		b = appendString(b, d.name)
		b = append(b, ':')
		v := d.value
		if v == "" {
			v = "none" // a dimension value must not be empty
		}
		b = appendString(b, v)
	}
	for _, m := range ms {
		b = append(b, ',')
		b = appendString(b, m.name)
		b = append(b, ':')
		b = strconv.AppendFloat(b, m.value, 'f', -1, 64)
	}
	if ctx != nil {
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			b = append(b, `,"request_id":`...)
			b = appendString(b, lc.AwsRequestID)
		}
	}
	b = append(b, '}', '\n')
	e.mu.Lock()
	_, _ = e.w.Write(b)
	e.mu.Unlock()
}

// appendString appends s as a JSON string. Dimension values are short
// identifiers; anything unusual is escaped, and invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// units are the units the EMF specification accepts (CloudWatch's
// StandardUnit).
var units = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// Validate checks that line is an EMF object CloudWatch accepts, by the
// specification's required fields
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
// an "_aws" object with a numeric Timestamp and a non-empty
// CloudWatchMetrics array; each directive with a Namespace (1-255
// characters), Dimensions (arrays of at most 30 names, each a top-level
// string member) and 1-100 Metrics (Name 1-255 characters, a known Unit if
// any, StorageResolution 1 or 60 if any), each metric a top-level number or
// array of at most 100 numbers. Tests use it on every EMF line a run writes.
func Validate(line []byte) error {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return fmt.Errorf("emf: not a JSON object: %w", err)
	}
	var meta struct {
		Timestamp         *json.Number `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  *string    `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name              string `json:"Name"`
				Unit              *string
				StorageResolution *int
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return errors.New("emf: no _aws member")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&meta); err != nil {
		return fmt.Errorf("emf: _aws: %w", err)
	}
	if meta.Timestamp == nil {
		return errors.New("emf: _aws.Timestamp missing")
	}
	if ts, err := meta.Timestamp.Int64(); err != nil || ts <= 0 {
		return fmt.Errorf("emf: _aws.Timestamp %s is not epoch milliseconds", *meta.Timestamp)
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return errors.New("emf: _aws.CloudWatchMetrics missing or empty")
	}
	for i, d := range meta.CloudWatchMetrics {
		if d.Namespace == nil || len(*d.Namespace) == 0 || len(*d.Namespace) > 255 {
			return fmt.Errorf("emf: directive %d: Namespace missing or not 1-255 characters", i)
		}
		if d.Dimensions == nil {
			return fmt.Errorf("emf: directive %d: Dimensions missing", i)
		}
		for _, set := range d.Dimensions {
			if len(set) > 30 {
				return fmt.Errorf("emf: directive %d: a dimension set has %d dimensions (at most 30)", i, len(set))
			}
			for _, name := range set {
				var v string
				if err := json.Unmarshal(root[name], &v); err != nil || v == "" {
					return fmt.Errorf("emf: directive %d: dimension %q is not a non-empty top-level string", i, name)
				}
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > 100 {
			return fmt.Errorf("emf: directive %d: %d metrics (want 1-100)", i, len(d.Metrics))
		}
		for _, m := range d.Metrics {
			if len(m.Name) == 0 || len(m.Name) > 255 {
				return fmt.Errorf("emf: directive %d: metric name %q not 1-255 characters", i, m.Name)
			}
			if m.Unit != nil && !units[*m.Unit] {
				return fmt.Errorf("emf: metric %s: unknown unit %q", m.Name, *m.Unit)
			}
			if m.StorageResolution != nil && *m.StorageResolution != 1 && *m.StorageResolution != 60 {
				return fmt.Errorf("emf: metric %s: StorageResolution %d (want 1 or 60)", m.Name, *m.StorageResolution)
			}
			var f float64
			var fs []float64
			v := root[m.Name]
			if json.Unmarshal(v, &f) != nil && (json.Unmarshal(v, &fs) != nil || len(fs) == 0 || len(fs) > 100) {
				return fmt.Errorf("emf: metric %s: value %s is not a number or an array of 1-100 numbers", m.Name, v)
			}
		}
	}
	return nil
}
