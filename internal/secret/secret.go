// Package secret loads the WeChat app secret at cold start.
//
// Resolution order (first match wins):
//
//  1. WECHAT_SECRET, set and non-blank: returned as is (local runs, tests).
//  2. WECHAT_SECRET_PARAMETER: the name (or ARN) of an SSM Parameter Store
//     parameter, normally a SecureString; read with GetParameter and
//     WithDecryption=true. The function's role needs ssm:GetParameter on the
//     parameter (SAM's SSMParameterReadPolicy), plus kms:Decrypt when the
//     parameter uses a customer-managed KMS key rather than aws/ssm.
//  3. WECHAT_SECRET_ARN: the ARN (or name) of a Secrets Manager secret, read
//     with GetSecretValue (AWSCURRENT). If its SecretString is a JSON object,
//     the string under key "secret", else under "WECHAT_SECRET", is the app
//     secret; otherwise the whole SecretString is. A SecretString that starts
//     with "{" but does not parse is an error, as is a secret that only has
//     SecretBinary. The role needs secretsmanager:GetSecretValue.
//  4. Otherwise Load fails with [ErrNotConfigured], naming the three
//     variables.
//
// Values read from AWS are trimmed of surrounding white space (a trailing
// newline from `aws ssm put-parameter --value file://...` is a classic);
// an empty value is an error.
//
// # Why no SDK service client
//
// Linking service/ssm or service/secretsmanager would add megabytes to every
// function binary (service/ssm: about 2.6 MB) for one request per cold start.
// Instead this package calls the services' AWS JSON 1.1 APIs directly with
// net/http and signs the requests with the SDK's own SigV4 signer
// (aws/signer/v4), which every function already links through its
// DynamoDB client. Credentials and region come from the aws.Config the
// function builds anyway (dynamoclient.New).
//
// The AWS Parameters and Secrets Lambda Extension is not used either: it
// needs a layer, runs an extra process in the execution environment and
// serves over a localhost HTTP hop, while a direct SigV4 call is one HTTPS
// request at cold start, with nothing to deploy. Its cache buys nothing here
// because the secret is read once per execution environment.
//
// # Endpoints
//
// The endpoint is, in order: SSM_ENDPOINT / SECRETS_MANAGER_ENDPOINT,
// AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL_SECRETS_MANAGER (skipped when
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true, as the SDK does), the
// aws.Config's BaseEndpoint (AWS_ENDPOINT_URL), then
// https://{ssm|secretsmanager}.{region}.{dns suffix}, where the suffix is
// amazonaws.com.cn for "cn-" regions (partition aws-cn) and the ISO
// partitions' suffixes for theirs. With an endpoint override and no region,
// requests are signed for us-east-1.
//
// # Failure behaviour
//
// Each request is bounded by a 2 s timeout; network errors, timeouts, HTTP
// 5xx, 429 and throttling errors are retried, at most 3 attempts in all,
// with a short jittered backoff. Response bodies are read up to 1 MiB. AWS
// JSON errors ({"__type": ..., "message": ...}) become [*APIError] values,
// matched by errors.Is against [ErrNotFound] and [ErrAccessDenied]. No error
// returned by this package contains the secret value or a response body
// that could hold it, and the package does not log.
package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxsession/wxsession/internal/config"
)

// The AWS SDK's endpoint variables, honoured like the SDK does (wxsession's
// own variable names are in package config).
const (
	envSDKSSMEndpoint            = "AWS_ENDPOINT_URL_SSM"
	envSDKSecretsManagerEndpoint = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
	envIgnoreConfiguredEndpoint  = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
)

// JSON keys looked up, in order, when a Secrets Manager SecretString is a
// JSON object.
var secretJSONKeys = []string{"secret", config.VarSecret}

// ErrNotConfigured is returned when none of WECHAT_SECRET,
// WECHAT_SECRET_PARAMETER and WECHAT_SECRET_ARN is set.
var ErrNotConfigured = errors.New("secret: none of " + config.VarSecret + ", " + config.VarSecretParameter + ", " + config.VarSecretARN + " is set")

// Source loads the app secret. Only AWS is needed when the secret comes
// from SSM or Secrets Manager; the other fields have defaults.
type Source struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// AWS supplies credentials, region, BaseEndpoint and (unless
	// HTTPClient is set) the HTTP client, normally from
	// dynamoclient.New.
	AWS aws.Config
	// HTTPClient sends the requests; nil means AWS.HTTPClient, or else a
	// client that does not follow redirects.
	HTTPClient *http.Client
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// Load returns the app secret following the resolution order in the package
// documentation. The error never contains the secret.
func (s Source) Load(ctx context.Context) (string, error) {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := strings.TrimSpace(getenv(config.VarSecret)); v != "" {
		return v, nil
	}
	if name := strings.TrimSpace(getenv(config.VarSecretParameter)); name != "" {
		return s.loadSSM(ctx, getenv, name)
	}
	if id := strings.TrimSpace(getenv(config.VarSecretARN)); id != "" {
		return s.loadSecretsManager(ctx, getenv, id)
	}
	return "", ErrNotConfigured
}

// LoadApp returns the secret of one app of a deployment (docs/design.md
// §7.9): WECHAT_SECRET when set (local runs: every app of the local
// emulator shares it), else the SSM parameter WECHAT_APPS names for the
// app, else (an app without a parameter: the one app of a deployment
// without WECHAT_APPS) what [Source.Load] returns.
func (s Source) LoadApp(ctx context.Context, app config.App) (string, error) {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := strings.TrimSpace(getenv(config.VarSecret)); v != "" || app.SecretParameter == "" {
		return s.Load(ctx)
	}
	return s.loadSSM(ctx, getenv, app.SecretParameter)
}

func (s Source) loadSSM(ctx context.Context, getenv func(string) string, name string) (string, error) {
	what := fmt.Sprintf("SSM parameter %q", name)
	req := struct {
		Name           string `json:"Name"`
		WithDecryption bool   `json:"WithDecryption"`
	}{name, true}
	body, err := s.call(ctx, getenv, ssmService, req)
	if err != nil {
		return "", describe(what, err)
	}
	var out struct {
		Parameter *struct {
			Value *string `json:"Value"`
		} `json:"Parameter"`
	}
	if json.Unmarshal(body, &out) != nil {
		// The JSON error is not wrapped: it may quote part of the body.
		return "", fmt.Errorf("secret: %s: malformed GetParameter response (%d bytes)", what, len(body))
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return "", fmt.Errorf("secret: %s: GetParameter response has no Parameter.Value", what)
	}
	v := strings.TrimSpace(*out.Parameter.Value)
	if v == "" {
		return "", fmt.Errorf("secret: %s is empty", what)
	}
	return v, nil
}

func (s Source) loadSecretsManager(ctx context.Context, getenv func(string) string, id string) (string, error) {
	what := fmt.Sprintf("Secrets Manager secret %q", id)
	req := struct {
		SecretID string `json:"SecretId"`
	}{id}
	body, err := s.call(ctx, getenv, secretsManagerService, req)
	if err != nil {
		return "", describe(what, err)
	}
	var out struct {
		SecretString *string `json:"SecretString"`
		SecretBinary *string `json:"SecretBinary"`
	}
	if json.Unmarshal(body, &out) != nil {
		return "", fmt.Errorf("secret: %s: malformed GetSecretValue response (%d bytes)", what, len(body))
	}
	if out.SecretString == nil {
		if out.SecretBinary != nil {
			return "", fmt.Errorf("secret: %s holds SecretBinary; store the app secret as SecretString", what)
		}
		return "", fmt.Errorf("secret: %s: GetSecretValue response has no SecretString", what)
	}
	v, err := fromSecretString(*out.SecretString)
	if err != nil {
		return "", fmt.Errorf("secret: %s: %w", what, err)
	}
	return v, nil
}

// fromSecretString extracts the app secret from a SecretString: the whole
// (trimmed) string, or, for a JSON object, its "secret" or "WECHAT_SECRET"
// string member. Errors never quote the input.
func fromSecretString(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		if s == "" {
			return "", errors.New("SecretString is empty")
		}
		return s, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &obj) != nil {
		return "", errors.New("SecretString starts with '{' but is not a valid JSON object")
	}
	for _, k := range secretJSONKeys {
		raw, ok := obj[k]
		if !ok {
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "", fmt.Errorf("SecretString JSON key %q is not a string", k)
		}
		if v = strings.TrimSpace(v); v == "" {
			return "", fmt.Errorf("SecretString JSON key %q is empty", k)
		}
		return v, nil
	}
	return "", fmt.Errorf("SecretString is a JSON object without a %q or %q key", secretJSONKeys[0], secretJSONKeys[1])
}

// describe turns a call error into the package's error text for what.
func describe(what string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("secret: %s not found: %w", what, err)
	case errors.Is(err, ErrAccessDenied):
		return fmt.Errorf("secret: access to %s denied (check the function role's permissions and the key policy): %w", what, err)
	default:
		return fmt.Errorf("secret: %s: %w", what, err)
	}
}
