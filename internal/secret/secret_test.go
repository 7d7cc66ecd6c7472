package secret

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxsession/wxsession/internal/config"
)

const (
	testSecret = "0f1e2d3c4b5a69788796a5b4c3d2e1f0" // looks like a WeChat AppSecret
	testParam  = "/wxsession/prod/wechat-secret"
	testARN    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wxsession/wechat-AbCdEf"
)

var (
	testNow   = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	testCreds = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Source: "test"}
	tokenCred = aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ", SessionToken: "IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVzLWVhc3QtMSJH", Source: "test"}
)

func staticCreds(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// source returns a Source pointed at f with env as environment; the
// endpoint variables are filled in unless env already sets them.
func source(f *fakeAWS, creds aws.Credentials, env map[string]string) Source {
	m := map[string]string{config.VarSSMEndpoint: f.srv.URL, config.VarSecretsManagerEndpoint: f.srv.URL}
	for k, v := range env {
		m[k] = v
	}
	return Source{
		Getenv:     func(k string) string { return m[k] },
		AWS:        aws.Config{Region: f.region, Credentials: staticCreds(creds)},
		HTTPClient: f.srv.Client(),
		Now:        func() time.Time { return testNow },
	}
}

func strp(s string) *string { return &s }

func TestEnvSecretWinsWithoutRequest(t *testing.T) {
	f := newFakeAWS(t, testCreds, "us-east-1", testNow)
	f.params[testParam] = "from-ssm"
	s := source(f, testCreds, map[string]string{
		config.VarSecret:          "  from-env\n",
		config.VarSecretParameter: testParam,
		config.VarSecretARN:       testARN,
	})
	got, err := s.Load(context.Background())
	if err != nil || got != "from-env" {
		t.Fatalf("Load = %q, %v; want from-env", got, err)
	}
	if n := f.count(); n != 0 {
		t.Fatalf("%d requests made, want 0", n)
	}
}

func TestNotConfigured(t *testing.T) {
	s := Source{Getenv: func(string) string { return "" }}
	_, err := s.Load(context.Background())
	if !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("err = %v, want ErrNotConfigured", err)
	}
	for _, v := range []string{"WECHAT_SECRET", "WECHAT_SECRET_PARAMETER", "WECHAT_SECRET_ARN"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error %q does not name %s", err, v)
		}
	}
}

func TestLoadSSM(t *testing.T) {
	tests := []struct {
		name      string
		region    string
		creds     aws.Credentials
		value     string // stored value; "" = parameter absent
		denied    bool
		faults    []fault
		want      string
		wantErr   string // substring of the error
		wantIs    error
		wantCalls int
	}{
		{name: "success", region: "us-east-1", creds: testCreds, value: testSecret, want: testSecret, wantCalls: 1},
		{name: "session token signed", region: "eu-west-1", creds: tokenCred, value: testSecret, want: testSecret, wantCalls: 1},
		{name: "china region signing", region: "cn-north-1", creds: tokenCred, value: testSecret, want: testSecret, wantCalls: 1},
		{name: "value trimmed", region: "us-east-1", creds: testCreds, value: testSecret + "\n", want: testSecret, wantCalls: 1},
		{
			name: "not found", region: "us-east-1", creds: testCreds,
			wantErr: `secret: SSM parameter "/wxsession/prod/wechat-secret" not found`, wantIs: ErrNotFound, wantCalls: 1,
		},
		{
			name: "access denied", region: "us-east-1", creds: testCreds, value: testSecret, denied: true,
			wantErr: `secret: access to SSM parameter "/wxsession/prod/wechat-secret" denied`, wantIs: ErrAccessDenied, wantCalls: 1,
		},
		{
			name: "500 then success", region: "us-east-1", creds: testCreds, value: testSecret,
			faults: []fault{{status: 500, body: `{"__type":"InternalServerError","message":"boom"}`}},
			want:   testSecret, wantCalls: 2,
		},
		{
			name: "throttled twice then success", region: "us-east-1", creds: testCreds, value: testSecret,
			faults: []fault{
				{status: 400, body: `{"__type":"ThrottlingException","message":"Rate exceeded"}`},
				{status: 503, body: `<html>Service Unavailable</html>`},
			},
			want: testSecret, wantCalls: 3,
		},
		{
			name: "500 three times gives up", region: "us-east-1", creds: testCreds, value: testSecret,
			faults: []fault{
				{status: 500, body: `{}`}, {status: 502, body: ``}, {status: 500, body: `{"__type":"InternalServerError"}`},
				{status: 500}, // never reached
			},
			wantErr: "SSM GetParameter: InternalServerError (HTTP 500)", wantCalls: 3,
		},
		{
			name: "validation error not retried", region: "us-east-1", creds: testCreds, value: testSecret,
			faults:  []fault{{status: 400, body: `{"__type":"com.amazonaws.ssm#ValidationException","message":"1 validation error detected"}`}},
			wantErr: "ValidationException: 1 validation error detected (HTTP 400)", wantCalls: 1,
		},
		{
			name: "empty value", region: "us-east-1", creds: testCreds, value: "   ",
			wantErr: `SSM parameter "/wxsession/prod/wechat-secret" is empty`, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t, tt.creds, tt.region, testNow)
			if tt.value != "" {
				f.params[testParam] = tt.value
			}
			f.denied[testParam] = tt.denied
			f.addFaults(tt.faults...)
			got, err := source(f, tt.creds, map[string]string{config.VarSecretParameter: testParam}).Load(context.Background())
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Load = %q, %v; want %q", got, err, tt.want)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v; want it to contain %q", err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("Load returned %q with an error", got)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if n := f.count(); n != tt.wantCalls {
				t.Errorf("%d requests, want %d", n, tt.wantCalls)
			}
			if errs := f.signatureErrors(); len(errs) > 0 {
				t.Errorf("signature errors: %v", errs)
			}
		})
	}
}

func TestLoadSecretsManager(t *testing.T) {
	tests := []struct {
		name    string
		secret  *smSecret // nil = absent
		denied  bool
		want    string
		wantErr string
		wantIs  error
	}{
		{name: "plain string", secret: &smSecret{String: strp(testSecret)}, want: testSecret},
		{name: "json secret key", secret: &smSecret{String: strp(`{"appid":"wx1","secret":"` + testSecret + `"}`)}, want: testSecret},
		{name: "json WECHAT_SECRET key", secret: &smSecret{String: strp(` {"WECHAT_SECRET":"` + testSecret + `"}`)}, want: testSecret},
		{name: "json secret key preferred", secret: &smSecret{String: strp(`{"WECHAT_SECRET":"other","secret":"` + testSecret + `"}`)}, want: testSecret},
		{name: "json without key", secret: &smSecret{String: strp(`{"password":"` + testSecret + `"}`)}, wantErr: `JSON object without a "secret" or "WECHAT_SECRET" key`},
		{name: "json key not string", secret: &smSecret{String: strp(`{"secret":12345}`)}, wantErr: `JSON key "secret" is not a string`},
		{name: "json malformed", secret: &smSecret{String: strp(`{"secret":"` + testSecret)}, wantErr: "not a valid JSON object"},
		{name: "binary only", secret: &smSecret{Binary: []byte(testSecret)}, wantErr: "holds SecretBinary"},
		{name: "empty string", secret: &smSecret{String: strp("")}, wantErr: "SecretString is empty"},
		{name: "not found", wantErr: `secret: Secrets Manager secret "` + testARN + `" not found`, wantIs: ErrNotFound},
		{name: "access denied", secret: &smSecret{String: strp(testSecret)}, denied: true, wantErr: "denied", wantIs: ErrAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t, tokenCred, "ap-southeast-1", testNow)
			if tt.secret != nil {
				f.secrets[testARN] = *tt.secret
			}
			f.denied[testARN] = tt.denied
			got, err := source(f, tokenCred, map[string]string{config.VarSecretARN: testARN}).Load(context.Background())
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Load = %q, %v; want %q", got, err, tt.want)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load = %q, %v; want error containing %q", got, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret: %q", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if n := f.count(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if errs := f.signatureErrors(); len(errs) > 0 {
				t.Errorf("signature errors: %v", errs)
			}
		})
	}
}

func TestParameterWinsOverSecretARN(t *testing.T) {
	f := newFakeAWS(t, testCreds, "us-east-1", testNow)
	f.params[testParam] = "from-ssm"
	f.secrets[testARN] = smSecret{String: strp("from-sm")}
	got, err := source(f, testCreds, map[string]string{config.VarSecretParameter: testParam, config.VarSecretARN: testARN}).Load(context.Background())
	if err != nil || got != "from-ssm" {
		t.Fatalf("Load = %q, %v; want from-ssm", got, err)
	}
	if len(f.targets) != 1 || f.targets[0] != "AmazonSSM.GetParameter" {
		t.Fatalf("targets = %v", f.targets)
	}
}

// TestVerifierRejectsBadSignature proves the fake's signature check can
// fail: a client holding a different secret key is refused.
func TestVerifierRejectsBadSignature(t *testing.T) {
	tests := []struct {
		name   string
		client aws.Credentials
		region string // client's region; server expects us-east-1
	}{
		{"wrong secret key", aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: "not-the-right-key"}, "us-east-1"},
		{"wrong region in scope", testCreds, "us-west-2"},
		{"missing session token", testCreds, "us-east-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverCreds := testCreds
			if tt.name == "missing session token" {
				serverCreds = aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: testCreds.SecretAccessKey, SessionToken: "tok"}
			}
			f := newFakeAWS(t, serverCreds, "us-east-1", testNow)
			f.params[testParam] = testSecret
			s := source(f, tt.client, map[string]string{config.VarSecretParameter: testParam})
			s.AWS.Region = tt.region
			_, err := s.Load(context.Background())
			if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
				t.Fatalf("Load error = %v, want InvalidSignatureException", err)
			}
			if len(f.signatureErrors()) != 1 {
				t.Fatalf("signature errors = %v, want 1", f.signatureErrors())
			}
		})
	}
}

func TestHungServerIsBounded(t *testing.T) {
	f := newFakeAWS(t, testCreds, "us-east-1", testNow)
	f.params[testParam] = testSecret
	f.addFaults(fault{hang: true}, fault{hang: true}, fault{hang: true}, fault{hang: true})
	start := time.Now()
	_, err := source(f, testCreds, map[string]string{config.VarSecretParameter: testParam}).Load(context.Background())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Load succeeded against a hung server")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	if n := f.count(); n != maxAttempts {
		t.Errorf("%d requests, want %d", n, maxAttempts)
	}
	// 3 attempts × 2 s + backoff; generous upper bound.
	if elapsed > 12*time.Second {
		t.Errorf("Load took %v against a hung server", elapsed)
	}
}

func TestHungServerThenSuccess(t *testing.T) {
	f := newFakeAWS(t, testCreds, "us-east-1", testNow)
	f.params[testParam] = testSecret
	f.addFaults(fault{hang: true})
	got, err := source(f, testCreds, map[string]string{config.VarSecretParameter: testParam}).Load(context.Background())
	if err != nil || got != testSecret {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if n := f.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestCallerContextStopsRetries(t *testing.T) {
	f := newFakeAWS(t, testCreds, "us-east-1", testNow)
	f.addFaults(fault{hang: true}, fault{hang: true}, fault{hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := source(f, testCreds, map[string]string{config.VarSecretParameter: testParam}).Load(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Load took %v after the caller's 300ms deadline", el)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestOversizedBody(t *testing.T) {
	f := newFakeAWS(t, testCreds, "us-east-1", testNow)
	f.extra = func(w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", jsonContentType)
		_, _ = w.Write([]byte(`{"Parameter":{"Value":"` + testSecret + strings.Repeat("x", maxBody) + `"}}`))
		return true
	}
	_, err := source(f, testCreds, map[string]string{config.VarSecretParameter: testParam}).Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1 (no retry)", n)
	}
}

// TestSecretNeverInErrors provokes every failure whose response carries
// the secret and checks no error text contains it.
func TestSecretNeverInErrors(t *testing.T) {
	raw := func(status int, body string) func(http.ResponseWriter) bool {
		return func(w http.ResponseWriter) bool {
			w.Header().Set("Content-Type", jsonContentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return true
		}
	}
	tests := []struct {
		name  string
		env   map[string]string
		extra func(http.ResponseWriter) bool
	}{
		{"ssm truncated json", map[string]string{config.VarSecretParameter: testParam}, raw(200, `{"Parameter":{"Value":"`+testSecret)},
		{"ssm value wrong type", map[string]string{config.VarSecretParameter: testParam}, raw(200, `{"Parameter":{"Value":["`+testSecret+`"]}}`)},
		{"ssm bad char after secret", map[string]string{config.VarSecretParameter: testParam}, raw(200, `{"Parameter":{"Value":"`+testSecret+`"}`+testSecret)},
		{"ssm 500 with secret in body", map[string]string{config.VarSecretParameter: testParam}, raw(500, `{"Parameter":{"Value":"`+testSecret+`"}}`)},
		{"ssm 500 typed error with secret in body", map[string]string{config.VarSecretParameter: testParam}, raw(500, `{"__type":"InternalServerError","Parameter":{"Value":"`+testSecret+`"}}`)},
		{"ssm 400 non-json with secret", map[string]string{config.VarSecretParameter: testParam}, raw(400, testSecret)},
		{"sm truncated json", map[string]string{config.VarSecretARN: testARN}, raw(200, `{"SecretString":"`+testSecret)},
		{"sm json object no key", map[string]string{config.VarSecretARN: testARN}, raw(200, `{"SecretString":"{\"pw\":\"`+testSecret+`\"}"}`)},
		{"sm json object malformed", map[string]string{config.VarSecretARN: testARN}, raw(200, `{"SecretString":"{\"secret\":\"`+testSecret+`\""}`)},
		{"sm json key wrong type", map[string]string{config.VarSecretARN: testARN}, raw(200, `{"SecretString":"{\"secret\":[\"`+testSecret+`\"]}"}`)},
		{"sm secret invalid utf8 tail", map[string]string{config.VarSecretARN: testARN}, raw(200, `{"SecretString":"{\"secret\":\"`+testSecret+"\xff"+`\"x}"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t, testCreds, "us-east-1", testNow)
			f.extra = tt.extra
			got, err := source(f, testCreds, tt.env).Load(context.Background())
			if err == nil {
				t.Fatalf("Load = %q, want an error", got)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testSecret[:8]) {
				t.Fatalf("error leaks the secret: %q", err)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		prefix, region, want string
		wantErr              bool
	}{
		{"ssm", "us-east-1", "https://ssm.us-east-1.amazonaws.com", false},
		{"secretsmanager", "eu-central-1", "https://secretsmanager.eu-central-1.amazonaws.com", false},
		{"ssm", "cn-north-1", "https://ssm.cn-north-1.amazonaws.com.cn", false},
		{"secretsmanager", "cn-northwest-1", "https://secretsmanager.cn-northwest-1.amazonaws.com.cn", false},
		{"ssm", "us-gov-west-1", "https://ssm.us-gov-west-1.amazonaws.com", false},
		{"ssm", "us-iso-east-1", "https://ssm.us-iso-east-1.c2s.ic.gov", false},
		{"ssm", "us-isob-east-1", "https://ssm.us-isob-east-1.sc2s.sgov.gov", false},
		{"ssm", "ap-east-1", "https://ssm.ap-east-1.amazonaws.com", false}, // Hong Kong is partition aws
		{"ssm", "", "", true},
		{"ssm", "evil.com/x", "", true},
		{"ssm", "US-EAST-1", "", true},
	}
	for _, tt := range tests {
		got, err := Endpoint(tt.prefix, tt.region)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Endpoint(%q, %q) = %q, %v; want %q (err %v)", tt.prefix, tt.region, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestResolveEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		region     string
		base       *string
		svc        service
		want       string
		wantRegion string
		wantErr    string
	}{
		{name: "default", region: "us-east-1", svc: ssmService, want: "https://ssm.us-east-1.amazonaws.com/", wantRegion: "us-east-1"},
		{name: "default china", region: "cn-north-1", svc: secretsManagerService, want: "https://secretsmanager.cn-north-1.amazonaws.com.cn/", wantRegion: "cn-north-1"},
		{name: "no region", svc: ssmService, wantErr: "no AWS region"},
		{
			name: "our override wins", region: "us-east-1", svc: ssmService,
			env:  map[string]string{"SSM_ENDPOINT": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_SSM": "http://other"},
			base: aws.String("http://base"), want: "http://127.0.0.1:4566/", wantRegion: "us-east-1",
		},
		{
			name: "sdk service variable", region: "us-east-1", svc: secretsManagerService,
			env:  map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm.local:9000/", "SSM_ENDPOINT": "http://ssm.local"},
			base: aws.String("http://base"), want: "http://sm.local:9000/", wantRegion: "us-east-1",
		},
		{
			name: "sdk variable ignored", region: "us-east-1", svc: ssmService,
			env:  map[string]string{"AWS_ENDPOINT_URL_SSM": "http://other", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
			want: "https://ssm.us-east-1.amazonaws.com/", wantRegion: "us-east-1",
		},
		{name: "base endpoint", region: "us-east-1", svc: ssmService, base: aws.String("http://localstack:4566"), want: "http://localstack:4566/", wantRegion: "us-east-1"},
		{name: "override without region", svc: ssmService, env: map[string]string{"SSM_ENDPOINT": "http://x"}, want: "http://x/", wantRegion: "us-east-1"},
		{name: "bad override", region: "us-east-1", svc: ssmService, env: map[string]string{"SSM_ENDPOINT": "localhost:4566"}, wantErr: "SSM_ENDPOINT is not an http(s) URL"},
		{name: "override with credentials refused", region: "us-east-1", svc: ssmService, env: map[string]string{"SSM_ENDPOINT": "http://u:p@x"}, wantErr: "without user info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Source{AWS: aws.Config{Region: tt.region, BaseEndpoint: tt.base}}
			got, region, err := s.resolveEndpoint(func(k string) string { return tt.env[k] }, tt.svc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || region != tt.wantRegion {
				t.Fatalf("resolveEndpoint = %q, %q, %v; want %q, %q", got, region, err, tt.want, tt.wantRegion)
			}
		})
	}
}

func TestParseErrorCodes(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		header   string
		body     string
		wantCode string
		wantMsg  string
		notFound bool
		denied   bool
		retry    bool
	}{
		{"plain type", 400, "", `{"__type":"ParameterNotFound"}`, "ParameterNotFound", "", true, false, false},
		{"namespaced type", 400, "", `{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"x"}`, "ParameterNotFound", "x", true, false, false},
		{"header type wins", 400, "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.secretsmanager/", `{}`, "ResourceNotFoundException", "", true, false, false},
		{"Message capitalised", 400, "", `{"__type":"AccessDeniedException","Message":"no"}`, "AccessDeniedException", "no", false, true, false},
		{"bare 403", 403, "", `<html/>`, "", "", false, true, false},
		{"throttling 400", 400, "", `{"__type":"ThrottlingException","message":"Rate exceeded"}`, "ThrottlingException", "Rate exceeded", false, false, true},
		{"429", 429, "", ``, "", "", false, false, true},
		{"503 html", 503, "", `<html>down</html>`, "", "", false, false, true},
		{"validation", 400, "", `{"__type":"ValidationException","message":"bad\nname"}`, "ValidationException", "bad name", false, false, false},
		{"long message truncated", 400, "", `{"__type":"X","message":"` + strings.Repeat("m", 500) + `"}`, "X", strings.Repeat("m", maxMessage) + "…", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.header != "" {
				resp.Header.Set("X-Amzn-ErrorType", tt.header)
			}
			e := parseError(ssmService, resp, []byte(tt.body))
			if e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Errorf("code, message = %q, %q; want %q, %q", e.Code, e.Message, tt.wantCode, tt.wantMsg)
			}
			if errors.Is(e, ErrNotFound) != tt.notFound || errors.Is(e, ErrAccessDenied) != tt.denied || e.retryable() != tt.retry {
				t.Errorf("notFound, denied, retry = %v, %v, %v; want %v, %v, %v",
					errors.Is(e, ErrNotFound), errors.Is(e, ErrAccessDenied), e.retryable(), tt.notFound, tt.denied, tt.retry)
			}
		})
	}
}

func TestMissingCredentialsOrRegion(t *testing.T) {
	env := map[string]string{config.VarSecretParameter: testParam}
	getenv := func(k string) string { return env[k] }
	if _, err := (Source{Getenv: getenv, AWS: aws.Config{Region: "us-east-1"}}).Load(context.Background()); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("no credentials: err = %v", err)
	}
	if _, err := (Source{Getenv: getenv, AWS: aws.Config{Credentials: staticCreds(testCreds)}}).Load(context.Background()); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("no region: err = %v", err)
	}
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	})
	_, err := (Source{Getenv: getenv, AWS: aws.Config{Region: "us-east-1", Credentials: failing}}).Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), "retrieve AWS credentials") {
		t.Errorf("failing provider: err = %v", err)
	}
}

// TestLoadApp: each app of WECHAT_APPS reads its own parameter; an app
// without one falls back to Load; WECHAT_SECRET (local runs) wins.
func TestLoadApp(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		app         config.App
		want        string
		wantTargets int
	}{
		{"own parameter", nil, config.App{AppID: "wxB", SecretParameter: "/wxsession/apps/wxB"}, "secret-b", 1},
		{"other app's parameter", nil, config.App{AppID: "wxA", SecretParameter: "/wxsession/apps/wxA"}, "secret-a", 1},
		{"no parameter: WECHAT_SECRET_PARAMETER", map[string]string{config.VarSecretParameter: testParam}, config.App{AppID: "wx1"}, "single", 1},
		{"local WECHAT_SECRET wins", map[string]string{config.VarSecret: "local"}, config.App{AppID: "wxB", SecretParameter: "/wxsession/apps/wxB"}, "local", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t, testCreds, "us-east-1", testNow)
			f.params["/wxsession/apps/wxA"] = "secret-a"
			f.params["/wxsession/apps/wxB"] = "secret-b"
			f.params[testParam] = "single"
			got, err := source(f, testCreds, tt.env).LoadApp(context.Background(), tt.app)
			if err != nil || got != tt.want || len(f.targets) != tt.wantTargets {
				t.Fatalf("LoadApp = %q, %v after %d requests; want %q after %d", got, err, len(f.targets), tt.want, tt.wantTargets)
			}
		})
	}
}
