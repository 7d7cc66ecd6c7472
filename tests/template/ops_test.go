package template

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/internal/metrics"
)

// TestOperations checks what docs/design.md §8 asks of the translated
// template, in both partitions: a log group with the retention parameter
// for every function; the alarms, on metrics the functions really write
// (names from internal/metrics, namespace equal to METRICS_NAMESPACE),
// notifying the optional topic; a dashboard whose body is JSON; and route
// throttling for POST /login and POST /me/phone from parameters.
func TestOperations(t *testing.T) {
	wantAlarms := []string{
		"MisconfigurationAlarm", "AuthorizerErrorsAlarm", "Login5xxRateAlarm", "WeChatUnavailableRateAlarm",
		"TokenRefreshFailuresAlarm", "PhoneQuotaExhaustedAlarm", "PaidPhoneLookupsAlarm",
	}
	known := map[string]bool{
		metrics.Logins: true, metrics.Login5xx: true, metrics.WeChatCalls: true, metrics.WeChatLatency: true,
		metrics.WeChatUnavailable: true, metrics.AuthorizerDecisions: true, metrics.SessionsEnded: true,
		metrics.TokenRefreshes: true, metrics.PhoneLookups: true, metrics.Misconfigured: true,
	}
	for _, p := range partitions {
		t.Run(p.partition, func(t *testing.T) {
			res := translate(t, p.region)
			var functions, logGroups []string
			for id, r := range res {
				switch r.Type {
				case "AWS::Lambda::Function":
					functions = append(functions, id)
				case "AWS::Logs::LogGroup":
					var lg struct {
						LogGroupName    any
						RetentionInDays any
					}
					mustJSON(t, r.Properties, &lg)
					name, _ := json.Marshal(lg.LogGroupName)
					if id == "AdminLogGroup" {
						if string(name) != `{"Fn::Sub":"/wxsession/${AWS::StackName}/admin"}` {
							t.Errorf("AdminLogGroup is named %s", name)
						}
					} else if m := regexp.MustCompile(`/aws/lambda/\$\{(\w+)\}`).FindSubmatch(name); m != nil {
						logGroups = append(logGroups, string(m[1]))
					} else {
						t.Errorf("log group %s is named %s, not /aws/lambda/${Function}", id, name)
					}
					if ref, _ := json.Marshal(lg.RetentionInDays); string(ref) != `{"Ref":"LogRetentionDays"}` {
						t.Errorf("log group %s: RetentionInDays %s, want the LogRetentionDays parameter", id, ref)
					}
				}
			}
			slices.Sort(functions)
			slices.Sort(logGroups)
			if len(functions) == 0 || !slices.Equal(functions, logGroups) {
				t.Errorf("functions %v, log groups for %v: want one per function", functions, logGroups)
			}
			if res["AuditTable"].Type != "AWS::DynamoDB::Table" {
				t.Error("no AuditTable (wxadmin records operator actions there)")
			}

			namespace := functionsNamespace(t, res)
			for _, id := range wantAlarms {
				r, ok := res[id]
				if !ok || r.Type != "AWS::CloudWatch::Alarm" {
					t.Errorf("no alarm %s", id)
					continue
				}
				var a struct {
					Namespace, MetricName any
					AlarmActions          any
					OKActions             any
					TreatMissingData      string
				}
				mustJSON(t, r.Properties, &a)
				ns, _ := json.Marshal(a.Namespace)
				switch string(ns) {
				case `"AWS/Lambda"`:
				case namespace:
					if name, _ := a.MetricName.(string); !known[name] {
						t.Errorf("alarm %s watches %v, which internal/metrics never writes", id, a.MetricName)
					}
				default:
					t.Errorf("alarm %s: namespace %s, want the functions' METRICS_NAMESPACE %s or AWS/Lambda", id, ns, namespace)
				}
				for _, acts := range []any{a.AlarmActions, a.OKActions} {
					b, _ := json.Marshal(acts)
					if !strings.Contains(string(b), `"Fn::If":["HasAlarmTopic",[{"Ref":"AlarmTopicArn"}]`) {
						t.Errorf("alarm %s actions %s: want the optional AlarmTopicArn", id, b)
					}
				}
				if a.TreatMissingData != "notBreaching" {
					t.Errorf("alarm %s: TreatMissingData %q (no traffic must not alarm)", id, a.TreatMissingData)
				}
			}

			dashboards := 0
			for id, r := range res {
				if r.Type != "AWS::CloudWatch::Dashboard" {
					continue
				}
				dashboards++
				var d struct {
					DashboardBody struct {
						Sub []json.RawMessage `json:"Fn::Sub"`
					}
				}
				mustJSON(t, r.Properties, &d)
				var body string
				if len(d.DashboardBody.Sub) == 0 || json.Unmarshal(d.DashboardBody.Sub[0], &body) != nil {
					t.Fatalf("dashboard %s: body is not a !Sub string", id)
				}
				var parsed struct {
					Widgets []map[string]any `json:"widgets"`
				}
				if err := json.Unmarshal([]byte(regexp.MustCompile(`\$\{[^}]+\}`).ReplaceAllString(body, "x")), &parsed); err != nil || len(parsed.Widgets) < 5 {
					t.Errorf("dashboard %s: body is not JSON with widgets: %v", id, err)
				}
				for _, alarm := range wantAlarms {
					if !strings.Contains(body, "${"+alarm+".Arn}") {
						t.Errorf("dashboard %s does not show %s", id, alarm)
					}
				}
				for name := range known {
					if !strings.Contains(body, name) {
						t.Errorf("dashboard %s does not plot %s", id, name)
					}
				}
			}
			if dashboards != 1 {
				t.Errorf("%d dashboards, want 1", dashboards)
			}

			var stage struct {
				RouteSettings map[string]map[string]any
			}
			for _, r := range res {
				if r.Type == "AWS::ApiGatewayV2::Stage" {
					mustJSON(t, r.Properties, &stage)
				}
			}
			for route, param := range map[string]string{"POST /login": "Login", "POST /me/phone": "Phone"} {
				rs := stage.RouteSettings[route]
				rate, _ := json.Marshal(rs["ThrottlingRateLimit"])
				burst, _ := json.Marshal(rs["ThrottlingBurstLimit"])
				if string(rate) != `{"Ref":"`+param+`ThrottleRate"}` || string(burst) != `{"Ref":"`+param+`ThrottleBurst"}` {
					t.Errorf("%s route settings %v: want throttling from %sThrottleRate/%sThrottleBurst", route, rs, param, param)
				}
			}
		})
	}
}

// functionsNamespace returns the METRICS_NAMESPACE every function gets, as
// JSON; the functions must agree.
func functionsNamespace(t *testing.T, res map[string]struct {
	Type       string
	Properties json.RawMessage
}) string {
	t.Helper()
	ns := ""
	for id, r := range res {
		if r.Type != "AWS::Lambda::Function" {
			continue
		}
		var f struct {
			Environment struct{ Variables map[string]any }
		}
		mustJSON(t, r.Properties, &f)
		b, _ := json.Marshal(f.Environment.Variables["METRICS_NAMESPACE"])
		if string(b) == "null" {
			t.Errorf("function %s has no METRICS_NAMESPACE", id)
			continue
		}
		if ns != "" && ns != string(b) {
			t.Errorf("function %s: METRICS_NAMESPACE %s, another has %s", id, b, ns)
		}
		ns = string(b)
	}
	return ns
}

func mustJSON(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}
