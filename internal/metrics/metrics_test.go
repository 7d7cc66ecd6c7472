package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxsession/wxsession/internal/metrics"
)

var (
	at  = time.UnixMilli(1764486000123)
	ctx = context.Background()
)

func TestEmitterLines(t *testing.T) {
	tests := []struct {
		name     string
		emit     func(e *metrics.Emitter)
		wantDims [][]string
		want     map[string]any
		none     bool
	}{
		{
			name:     "login ok",
			emit:     func(e *metrics.Emitter) { e.Login(ctx, "ok", 200) },
			wantDims: [][]string{{"Outcome"}, {}},
			want:     map[string]any{"Outcome": "ok", "Logins": 1.0, "Login5xx": 0.0},
		},
		{
			name:     "login 503",
			emit:     func(e *metrics.Emitter) { e.Login(ctx, "wechat_unavailable", 503) },
			wantDims: [][]string{{"Outcome"}, {}},
			want:     map[string]any{"Outcome": "wechat_unavailable", "Login5xx": 1.0},
		},
		{
			name:     "wechat call",
			emit:     func(e *metrics.Emitter) { e.WeChatCall(ctx, "jscode2session", "-1", 1500*time.Microsecond, true) },
			wantDims: [][]string{{"Api", "Errcode"}, {"Api"}, {}},
			want:     map[string]any{"Api": "jscode2session", "Errcode": "-1", "WeChatCalls": 1.0, "WeChatLatency": 1.5, "WeChatUnavailable": 1.0},
		},
		{
			name:     "authorizer",
			emit:     func(e *metrics.Emitter) { e.Authorizer(ctx, metrics.DecisionDeny) },
			wantDims: [][]string{{"Decision"}},
			want:     map[string]any{"Decision": "deny", "AuthorizerDecisions": 1.0},
		},
		{
			name:     "sessions ended",
			emit:     func(e *metrics.Emitter) { e.SessionsEnded(ctx, "banned", 3) },
			wantDims: [][]string{{"Reason"}},
			want:     map[string]any{"Reason": "banned", "SessionsEnded": 3.0},
		},
		{name: "no sessions ended, no line", emit: func(e *metrics.Emitter) { e.SessionsEnded(ctx, "banned", 0) }, none: true},
		{
			name:     "token refresh",
			emit:     func(e *metrics.Emitter) { e.TokenRefresh(ctx, metrics.OutcomeFailed) },
			wantDims: [][]string{{"Outcome"}},
			want:     map[string]any{"Outcome": "failed", "TokenRefreshes": 1.0},
		},
		{
			name:     "phone lookup",
			emit:     func(e *metrics.Emitter) { e.PhoneLookup(ctx, "phone_quota_exhausted") },
			wantDims: [][]string{{"Outcome"}},
			want:     map[string]any{"Outcome": "phone_quota_exhausted", "PhoneLookups": 1.0},
		},
		{
			name:     "misconfiguration",
			emit:     func(e *metrics.Emitter) { e.Misconfiguration(ctx) },
			wantDims: [][]string{{}},
			want:     map[string]any{"Misconfigured": 1.0},
		},
		{
			name:     "odd dimension values are escaped, empty ones named",
			emit:     func(e *metrics.Emitter) { e.PhoneLookup(ctx, "a\"b\\c\n<\xff") },
			wantDims: [][]string{{"Outcome"}},
			want:     map[string]any{"Outcome": "a\"b\\c\n<\ufffd"},
		},
		{
			name:     "empty dimension value",
			emit:     func(e *metrics.Emitter) { e.Authorizer(ctx, "") },
			wantDims: [][]string{{"Decision"}},
			want:     map[string]any{"Decision": "none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.emit(metrics.New(&buf, "").WithClock(func() time.Time { return at }))
			if tt.none {
				if buf.Len() != 0 {
					t.Fatalf("wrote %q", buf.String())
				}
				return
			}
			line := buf.Bytes()
			if bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("want one line, got %q", line)
			}
			if err := metrics.Validate(bytes.TrimSpace(line)); err != nil {
				t.Fatalf("invalid EMF %s: %v", line, err)
			}
			var m struct {
				AWS struct {
					Timestamp         int64
					CloudWatchMetrics []struct {
						Namespace  string
						Dimensions [][]string
					}
				} `json:"_aws"`
			}
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			if m.AWS.Timestamp != at.UnixMilli() || m.AWS.CloudWatchMetrics[0].Namespace != metrics.DefaultNamespace {
				t.Fatalf("metadata %+v", m.AWS)
			}
			got := m.AWS.CloudWatchMetrics[0].Dimensions
			if len(got) != len(tt.wantDims) {
				t.Fatalf("dimensions %v, want %v", got, tt.wantDims)
			}
			for i := range got {
				if strings.Join(got[i], ",") != strings.Join(tt.wantDims[i], ",") {
					t.Fatalf("dimensions %v, want %v", got, tt.wantDims)
				}
			}
			var flat map[string]any
			_ = json.Unmarshal(line, &flat)
			for k, v := range tt.want {
				if flat[k] != v {
					t.Errorf("%s = %#v, want %#v", k, flat[k], v)
				}
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	var buf bytes.Buffer
	lc := lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "req-9"})
	metrics.New(&buf, "ns/x").Authorizer(lc, metrics.DecisionAllow)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["request_id"] != "req-9" {
		t.Fatalf("line %s: %v", buf.String(), err)
	}
	if err := metrics.Validate(bytes.TrimSpace(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
}

func TestNilEmitter(t *testing.T) {
	var e *metrics.Emitter
	e.Login(ctx, "ok", 200) // must not panic
	e.Authorizer(ctx, metrics.DecisionAllow)
}

func TestValidate(t *testing.T) {
	good := `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["D"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"D":"x","M":[1,2]}`
	tests := []struct {
		name, line, wantErr string
	}{
		{"good", good, ""},
		{"not json", `{`, "not a JSON object"},
		{"no _aws", `{"M":1}`, "no _aws"},
		{"no timestamp", `{"_aws":{"CloudWatchMetrics":[]}}`, "Timestamp missing"},
		{"string timestamp", `{"_aws":{"Timestamp":"1","CloudWatchMetrics":[]}}`, "_aws"},
		{"no directives", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}`, "CloudWatchMetrics missing"},
		{"no namespace", strings.Replace(good, `"Namespace":"n",`, "", 1), "Namespace"},
		{"no dimensions", strings.Replace(good, `"Dimensions":[["D"]],`, "", 1), "Dimensions missing"},
		{"dimension not a member", strings.Replace(good, `"D":"x",`, "", 1), `dimension "D"`},
		{"dimension not a string", strings.Replace(good, `"D":"x"`, `"D":1`, 1), `dimension "D"`},
		{"no metrics", strings.Replace(good, `{"Name":"M","Unit":"Count"}`, "", 1), "0 metrics"},
		{"bad unit", strings.Replace(good, `"Count"`, `"Things"`, 1), "unknown unit"},
		{"metric not a member", strings.Replace(good, `,"M":[1,2]`, "", 1), "metric M"},
		{"metric not a number", strings.Replace(good, `[1,2]`, `"1"`, 1), "metric M"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := metrics.Validate([]byte(tt.line))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkAuthorizerLine(b *testing.B) {
	var buf bytes.Buffer
	e := metrics.New(&buf, "")
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		e.Authorizer(ctx, metrics.DecisionAllow)
	}
}
