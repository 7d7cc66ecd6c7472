package dynamoclient_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/dynamoclient"
	wxlogging "github.com/wxsession/wxsession/internal/logging"
	"github.com/wxsession/wxsession/internal/testutil"
)

// lambdaEnv is what a Lambda execution environment of the provided.al2023
// runtime sets (the AWS_ part of it).
var lambdaEnv = map[string]string{
	"AWS_REGION":                      "ap-southeast-1",
	"AWS_DEFAULT_REGION":              "ap-southeast-1",
	"AWS_ACCESS_KEY_ID":               "ASIAEXAMPLEKEY",
	"AWS_SECRET_ACCESS_KEY":           "secret/example",
	"AWS_SESSION_TOKEN":               "token-example",
	"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
	"AWS_LAMBDA_FUNCTION_NAME":        "wxsession-LoginFunction",
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
	"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
	"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
	"AWS_LAMBDA_RUNTIME_API":          "127.0.0.1:9001",
}

// TestLambdaConfigMatchesDefault: New builds, without
// awsconfig.LoadDefaultConfig, the configuration and DynamoDB client that
// NewFromDefaultConfig (LoadDefaultConfig) builds in the same environment,
// for Lambda's environment and the SDK's environment settings on top of
// it: region, credentials and their source, endpoints, FIPS and dual-stack,
// the request options. Only when no credentials are in the environment do
// they differ (LoadDefaultConfig would go on to the shared files, the
// container and the instance role; New's client reports errNoCredentials),
// and when AWS_PROFILE is set (TestLambdaConfigIgnoresProfile).
func TestLambdaConfigMatchesDefault(t *testing.T) {
	// A container credentials endpoint (what an environment without the
	// three variables gets, e.g. SnapStart, ECS): answers only with the
	// token, from the variable or the file.
	const token = "container-token-example"
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != token {
			writeBody(w, 401, `{"code":"Unauthorized","message":"no token"}`)
			return
		}
		writeBody(w, 200, `{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"container/secret","Token":"container-session","Expiration":"2099-01-01T00:00:00Z"}`)
	}))
	defer creds.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnvCreds := testutil.With(lambdaEnv, "AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", "", "AWS_SESSION_TOKEN", "")
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"Lambda", lambdaEnv},
		{"Lambda with an account id", testutil.With(lambdaEnv, "AWS_ACCOUNT_ID", "123456789012")},
		{"only AWS_DEFAULT_REGION", testutil.With(lambdaEnv, "AWS_REGION", "", "AWS_DEFAULT_REGION", "eu-west-1")},
		{"no session token", testutil.With(lambdaEnv, "AWS_SESSION_TOKEN", "")},
		{"endpoint URLs", testutil.With(lambdaEnv, "AWS_ENDPOINT_URL", "https://all.example", "AWS_ENDPOINT_URL_DYNAMODB", "https://ddb.example")},
		{"endpoint URLs ignored", testutil.With(lambdaEnv, "AWS_ENDPOINT_URL", "https://all.example", "AWS_ENDPOINT_URL_DYNAMODB", "https://ddb.example", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")},
		{"FIPS and dual-stack", testutil.With(lambdaEnv, "AWS_USE_FIPS_ENDPOINT", "true", "AWS_USE_DUALSTACK_ENDPOINT", "true")},
		{"endpoint discovery", testutil.With(lambdaEnv, "AWS_ENABLE_ENDPOINT_DISCOVERY", "true")},
		{"request settings", testutil.With(lambdaEnv,
			"AWS_SDK_UA_APP_ID", "wxsession-test", "AWS_DISABLE_REQUEST_COMPRESSION", "true",
			"AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES", "100", "AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled",
			"AWS_REQUEST_CHECKSUM_CALCULATION", "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required",
			"AWS_AUTH_SCHEME_PREFERENCE", "sigv4a,sigv4")},
		{"retry settings (the custom retryer wins)", testutil.With(lambdaEnv, "AWS_MAX_ATTEMPTS", "7", "AWS_RETRY_MODE", "adaptive")},
		{"defaults mode standard", testutil.With(lambdaEnv, "AWS_DEFAULTS_MODE", "standard")},
		{"defaults mode auto", testutil.With(lambdaEnv, "AWS_DEFAULTS_MODE", "auto")},
		{"container credentials, token", testutil.With(noEnvCreds, "AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.URL+"/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN", token)},
		{"container credentials, token file", testutil.With(noEnvCreds, "AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.URL+"/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)},
		{"container credentials, no token (refused)", testutil.With(noEnvCreds, "AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.URL+"/creds")},
		{"environment credentials win over the container's", testutil.With(lambdaEnv, "AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.URL+"/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN", token)},
		{"local endpoint, no credentials", map[string]string{config.VarDynamoDBEndpoint: "http://127.0.0.1:8000"}},
		{"local endpoint with credentials", testutil.With(lambdaEnv, config.VarDynamoDBEndpoint, "http://127.0.0.1:8000")},
		{"local endpoint, only AWS_DEFAULT_REGION", map[string]string{config.VarDynamoDBEndpoint: "http://127.0.0.1:8000", "AWS_DEFAULT_REGION": "eu-west-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tc.env {
				if v != "" { // "" leaves the variable unset (isolate unset the AWS ones)
					t.Setenv(k, v)
				}
			}
			ctx := context.Background()
			got, gotCfg, err := dynamoclient.New(ctx, os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			want, wantCfg, err := dynamoclient.NewFromDefaultConfig(ctx, os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			compareConfigs(t, gotCfg, wantCfg)
			compareOptions(t, got.Options(), want.Options())
		})
	}
}

func compareConfigs(t *testing.T, got, want aws.Config) {
	t.Helper()
	type view struct {
		Region                      string
		BaseEndpoint                *string
		AppID                       string
		DefaultsMode                aws.DefaultsMode
		RuntimeEnvironment          aws.RuntimeEnvironment
		DisableRequestCompression   bool
		RequestMinCompressSizeBytes int64
		DisableClockSkewCorrection  bool
		AccountIDEndpointMode       aws.AccountIDEndpointMode
		RequestChecksumCalculation  aws.RequestChecksumCalculation
		ResponseChecksumValidation  aws.ResponseChecksumValidation
		AuthSchemePreference        []string
		RestrictFilePermissions     aws.RestrictFilePermissions
		RetryMaxAttempts            int
		RetryMode                   aws.RetryMode
		ClientLogMode               aws.ClientLogMode
		Logger, HTTPClient          string
		Creds                       aws.Credentials
		CredsErr                    bool
		Sources                     []aws.CredentialSource
	}
	v := func(c aws.Config) view {
		creds, err := c.Credentials.Retrieve(context.Background())
		creds.Expires = creds.Expires.UTC()
		var sources []aws.CredentialSource
		if s, ok := c.Credentials.(aws.CredentialProviderSource); ok {
			sources = s.ProviderSources()
		}
		return view{
			c.Region, c.BaseEndpoint, c.AppID, c.DefaultsMode, c.RuntimeEnvironment, c.DisableRequestCompression,
			c.RequestMinCompressSizeBytes, c.DisableClockSkewCorrection, c.AccountIDEndpointMode,
			c.RequestChecksumCalculation, c.ResponseChecksumValidation, c.AuthSchemePreference,
			c.RestrictFilePermissions, c.RetryMaxAttempts, c.RetryMode, c.ClientLogMode,
			reflect.TypeOf(c.Logger).String(), reflect.TypeOf(c.HTTPClient).String(),
			creds, err != nil, sources,
		}
	}
	if g, w := v(got), v(want); !reflect.DeepEqual(g, w) {
		t.Errorf("aws.Config differs from LoadDefaultConfig's:\n got %+v\nwant %+v", g, w)
	}
	if got.Retryer().MaxAttempts() != want.Retryer().MaxAttempts() {
		t.Errorf("retryer: %d attempts, LoadDefaultConfig's %d", got.Retryer().MaxAttempts(), want.Retryer().MaxAttempts())
	}
}

func compareOptions(t *testing.T, got, want dynamodb.Options) {
	t.Helper()
	type view struct {
		Region                          string
		BaseEndpoint                    *string
		AppID                           string
		AccountIDEndpointMode           aws.AccountIDEndpointMode
		DefaultsMode                    aws.DefaultsMode
		RuntimeEnvironment              aws.RuntimeEnvironment
		DisableClockSkewCorrection      bool
		DisableValidateResponseChecksum bool
		EnableAcceptEncodingGzip        bool
		EndpointDiscovery               dynamodb.EndpointDiscoveryOptions
		UseFIPS                         aws.FIPSEndpointState
		DualStack                       aws.DualStackEndpointState
		RetryMaxAttempts                int
		RetryMode                       aws.RetryMode
		MaxAttempts                     int
		ClientLogMode                   aws.ClientLogMode
		APIOptions                      int
		AuthSchemePreference            []string
		Endpoint                        string
	}
	v := func(o dynamodb.Options) view {
		params := dynamodb.EndpointParameters{
			Region: aws.String(o.Region), Endpoint: o.BaseEndpoint,
			UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
			UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		}
		ep, err := o.EndpointResolverV2.ResolveEndpoint(context.Background(), params)
		endpoint := ep.URI.String()
		if err != nil {
			endpoint = "error: " + err.Error()
		}
		return view{
			Region: o.Region, BaseEndpoint: o.BaseEndpoint, AppID: o.AppID, AccountIDEndpointMode: o.AccountIDEndpointMode,
			DefaultsMode: o.DefaultsMode, RuntimeEnvironment: o.RuntimeEnvironment,
			DisableClockSkewCorrection: o.DisableClockSkewCorrection, DisableValidateResponseChecksum: o.DisableValidateResponseChecksum,
			EnableAcceptEncodingGzip: o.EnableAcceptEncodingGzip, EndpointDiscovery: o.EndpointDiscovery,
			UseFIPS: o.EndpointOptions.UseFIPSEndpoint, DualStack: o.EndpointOptions.UseDualStackEndpoint,
			RetryMaxAttempts: o.RetryMaxAttempts, RetryMode: o.RetryMode, MaxAttempts: o.Retryer.MaxAttempts(),
			ClientLogMode: o.ClientLogMode, APIOptions: len(o.APIOptions), AuthSchemePreference: o.AuthSchemePreference,
			Endpoint: endpoint,
		}
	}
	if g, w := v(got), v(want); !reflect.DeepEqual(g, w) {
		t.Errorf("dynamodb.Options differ from LoadDefaultConfig's:\n got %+v\nwant %+v", g, w)
	}
}

// TestLambdaConfigWithoutCredentials: with no credentials in the
// environment, New's client fails every request with an error that names
// the variables, without looking anywhere else.
func TestLambdaConfigWithoutCredentials(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_REGION", "ap-southeast-1")
	c, cfg, err := dynamoclient.New(context.Background(), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Credentials.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("Retrieve: %v, want the missing-credentials error", err)
	}
	_, err = c.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("ListTables: %v, want the missing-credentials error", err)
	}
}

// TestLambdaConfigCABundle: AWS_CA_BUNDLE adds its certificates to the
// client's trusted roots, as LoadDefaultConfig does; without it the test
// server's certificate is refused.
func TestLambdaConfigCABundle(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, 200, `{"TableNames":[]}`)
	}))
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		bundle string
		ok     bool
	}{{"with the bundle", bundle, true}, {"without", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			t.Setenv(config.VarDynamoDBEndpoint, srv.URL)
			t.Setenv("AWS_CA_BUNDLE", tc.bundle)
			c, _, err := dynamoclient.New(context.Background(), os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ListTables(context.Background(), &dynamodb.ListTablesInput{})
			var unknown x509.UnknownAuthorityError
			if tc.ok && err != nil {
				t.Fatalf("ListTables: %v", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), unknown.Error()[:20])) {
				t.Fatalf("ListTables without the bundle: %v, want an unknown-authority error", err)
			}
		})
	}
}

// TestLambdaConfigContainerHost: an http:// AWS_CONTAINER_CREDENTIALS_FULL_URI
// must name loopback or the ECS/EKS agents (credentials must not be sent
// in the clear elsewhere), as LoadDefaultConfig requires.
func TestLambdaConfigContainerHost(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1:9999/creds", true},
		{"http://169.254.170.2/v2/credentials", true},
		{"http://169.254.170.23/v1/credentials", true},
		{"http://[fd00:ec2::23]/v1/credentials", true},
		{"https://creds.example/", true},
		{"http://192.0.2.1/creds", false},
		{"http://[2001:db8::1]/creds", false},
		{"http:///creds", false},
	}
	for _, tc := range tests {
		t.Run(tc.uri, func(t *testing.T) {
			isolate(t)
			t.Setenv("AWS_REGION", "ap-southeast-1")
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", tc.uri)
			_, _, err := dynamoclient.New(context.Background(), os.Getenv)
			_, _, defErr := dynamoclient.NewFromDefaultConfig(context.Background(), os.Getenv)
			if (err == nil) != tc.ok || (defErr == nil) != tc.ok {
				t.Fatalf("New: %v; LoadDefaultConfig: %v; want ok=%v for both", err, defErr, tc.ok)
			}
		})
	}
}

// TestLambdaConfigIgnoresProfile: an AWS_PROFILE in the function's
// environment (a template variable copied from a developer's shell) is
// not read: New takes the region and the execution role's credentials
// from the environment, where LoadDefaultConfig fails the cold start on a
// profile that no file in Lambda defines.
func TestLambdaConfigIgnoresProfile(t *testing.T) {
	isolate(t)
	for k, v := range testutil.With(lambdaEnv, "AWS_PROFILE", "dev") {
		t.Setenv(k, v)
	}
	_, cfg, err := dynamoclient.New(context.Background(), os.Getenv)
	if err != nil {
		t.Fatalf("New with AWS_PROFILE set: %v", err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != lambdaEnv["AWS_ACCESS_KEY_ID"] || cfg.Region != lambdaEnv["AWS_REGION"] {
		t.Fatalf("New with AWS_PROFILE set: region %q, credentials %q (%v); want the environment's", cfg.Region, creds.AccessKeyID, err)
	}
	if _, _, err := dynamoclient.NewFromDefaultConfig(context.Background(), os.Getenv); err == nil {
		t.Fatal("LoadDefaultConfig accepted a profile no file defines; the difference this test documents is gone")
	}
}

// TestSDKLogsAreJSON: the SDK's own log messages (e.g. "failed to discard
// remaining HTTP response body") reach the function's slog handler, so the
// function log stays one JSON object per line (the e2e leak/log check).
func TestSDKLogsAreJSON(t *testing.T) {
	tests := []struct {
		name      string
		class     logging.Classification
		wantLevel string
	}{
		{"warning", logging.Warn, "WARN"},
		{"debug", logging.Debug, "DEBUG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			t.Setenv("AWS_REGION", "ap-southeast-1")
			var buf bytes.Buffer
			prev := slog.Default()
			slog.SetDefault(slog.New(wxlogging.RequestIDHandler{Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})}))
			defer slog.SetDefault(prev)
			for _, build := range []func(context.Context, func(string) string) (*dynamodb.Client, aws.Config, error){dynamoclient.New, dynamoclient.NewFromDefaultConfig} {
				buf.Reset()
				_, cfg, err := build(context.Background(), os.Getenv)
				if err != nil {
					t.Fatal(err)
				}
				// As the SDK's middleware logs: through the operation's
				// context (middleware.GetLogger → logging.WithContext).
				ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-sdk-1"})
				ctx = middleware.SetLogger(ctx, cfg.Logger)
				middleware.GetLogger(ctx).Logf(tc.class, "failed to close HTTP response body, %v", "some reason")
				var line map[string]any
				if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
					t.Fatalf("SDK log line %q is not one JSON object: %v", buf.String(), err)
				}
				if line["level"] != tc.wantLevel || line["component"] != "aws-sdk" || line["msg"] != "failed to close HTTP response body, some reason" ||
					line[wxlogging.RequestIDKey] != "req-sdk-1" {
					t.Errorf("SDK log line = %v, want the request's request_id too", line)
				}
			}
		})
	}
}
