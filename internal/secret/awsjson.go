package secret

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/wxsession/wxsession/internal/backoff"
	"github.com/wxsession/wxsession/internal/config"
)

// retryBackoff separates attempts: full jitter, at most 100 ms before the
// second attempt, then 200 ms.
var retryBackoff = backoff.Policy{Base: 100 * time.Millisecond}

const (
	// attemptTimeout bounds one request, body included.
	attemptTimeout = 2 * time.Second
	// maxAttempts bounds the requests per Load.
	maxAttempts = 3
	// maxBody bounds the response body read.
	maxBody = 1 << 20
	// maxMessage bounds the AWS error message kept in an APIError.
	maxMessage = 300
	// fallbackRegion signs requests to an overridden endpoint when no
	// region is configured.
	fallbackRegion  = "us-east-1"
	jsonContentType = "application/x-amz-json-1.1"
)

// service describes one AWS JSON 1.1 operation.
type service struct {
	name        string // for messages: "SSM", "Secrets Manager"
	operation   string // "GetParameter"
	target      string // X-Amz-Target
	signingName string // SigV4 service name
	prefix      string // endpoint host prefix
	envEndpoint string // our override variable
	envSDK      string // the SDK's service-specific variable
}

var (
	ssmService = service{
		name: "SSM", operation: "GetParameter", target: "AmazonSSM.GetParameter",
		signingName: "ssm", prefix: "ssm",
		envEndpoint: config.VarSSMEndpoint, envSDK: envSDKSSMEndpoint,
	}
	secretsManagerService = service{
		name: "Secrets Manager", operation: "GetSecretValue", target: "secretsmanager.GetSecretValue",
		signingName: "secretsmanager", prefix: "secretsmanager",
		envEndpoint: config.VarSecretsManagerEndpoint, envSDK: envSDKSecretsManagerEndpoint,
	}
)

// ErrNotFound matches (errors.Is) an [*APIError] saying the parameter or
// secret does not exist.
var ErrNotFound = errors.New("not found")

// ErrAccessDenied matches (errors.Is) an [*APIError] saying the caller may
// not read the parameter or secret or decrypt it.
var ErrAccessDenied = errors.New("access denied")

// APIError is an error answer from SSM or Secrets Manager.
type APIError struct {
	Service    string // "SSM" or "Secrets Manager"
	Operation  string // "GetParameter" or "GetSecretValue"
	StatusCode int    // HTTP status
	Code       string // AWS error type without namespace, e.g. "ParameterNotFound"; "" if the body had none
	Message    string // AWS error message, truncated
}

// Error formats the error as "SSM GetParameter: Code: message (HTTP n)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Service + " " + e.Operation + ": ")
	if e.Code != "" {
		b.WriteString(e.Code)
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "(HTTP %d)", e.StatusCode)
	return b.String()
}

var (
	notFoundCodes = map[string]bool{
		"ParameterNotFound":         true,
		"ParameterVersionNotFound":  true,
		"ResourceNotFoundException": true,
	}
	accessDeniedCodes = map[string]bool{
		"AccessDeniedException":    true,
		"AccessDenied":             true,
		"KMSAccessDeniedException": true,
		"DecryptionFailure":        true,
	}
	throttlingCodes = map[string]bool{
		"ThrottlingException":                    true,
		"Throttling":                             true,
		"TooManyRequestsException":               true,
		"RequestLimitExceeded":                   true,
		"InternalServerError":                    true,
		"InternalServiceError":                   true,
		"InternalFailure":                        true,
		"ServiceUnavailable":                     true,
		"RequestTimeout":                         true,
		"RequestTimeoutException":                true,
		"PriorRequestNotComplete":                true,
		"ProvisionedThroughputExceededException": true,
	}
)

// Is reports whether the error is an instance of ErrNotFound or
// ErrAccessDenied.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return notFoundCodes[e.Code]
	case ErrAccessDenied:
		return accessDeniedCodes[e.Code] || (e.Code == "" && e.StatusCode == http.StatusForbidden)
	}
	return false
}

func (e *APIError) retryable() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || throttlingCodes[e.Code]
}

// Endpoint returns the default endpoint of an AWS service (endpoint prefix
// such as "ssm" or "secretsmanager") in region: "https://ssm.eu-west-1.amazonaws.com",
// "https://ssm.cn-north-1.amazonaws.com.cn". It returns an error for a
// region that is not a plain DNS label.
func Endpoint(prefix, region string) (string, error) {
	if !validRegion(region) {
		return "", fmt.Errorf("invalid AWS region %q", region)
	}
	return "https://" + prefix + "." + region + "." + dnsSuffix(region), nil
}

func validRegion(r string) bool {
	if r == "" || len(r) > 63 || r[0] == '-' || r[len(r)-1] == '-' {
		return false
	}
	for _, c := range r {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// dnsSuffix returns the partition DNS suffix of region.
func dnsSuffix(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-isob-"):
		return "sc2s.sgov.gov"
	case strings.HasPrefix(region, "us-isof-"):
		return "csp.hci.ic.gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "c2s.ic.gov"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "cloud.adc-e.uk"
	default:
		return "amazonaws.com"
	}
}

// resolveEndpoint returns the URL to POST to and the signing region.
func (s Source) resolveEndpoint(getenv func(string) string, svc service) (string, string, error) {
	region := s.AWS.Region
	override, from := strings.TrimSpace(getenv(svc.envEndpoint)), svc.envEndpoint
	if override == "" && !strings.EqualFold(strings.TrimSpace(getenv(envIgnoreConfiguredEndpoint)), "true") {
		override, from = strings.TrimSpace(getenv(svc.envSDK)), svc.envSDK
	}
	if override == "" && s.AWS.BaseEndpoint != nil {
		override, from = strings.TrimSpace(*s.AWS.BaseEndpoint), "aws.Config.BaseEndpoint"
	}
	if override == "" {
		if region == "" {
			return "", "", fmt.Errorf("no AWS region configured (set AWS_REGION)")
		}
		u, err := Endpoint(svc.prefix, region)
		if err != nil {
			return "", "", err
		}
		return u + "/", region, nil
	}
	u, err := url.Parse(override)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", "", fmt.Errorf("%s is not an http(s) URL without user info", from)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	if region == "" {
		region = fallbackRegion
	}
	return u.String(), region, nil
}

type doer interface {
	Do(*http.Request) (*http.Response, error)
}

var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (s Source) client() doer {
	switch {
	case s.HTTPClient != nil:
		return s.HTTPClient
	case s.AWS.HTTPClient != nil:
		return s.AWS.HTTPClient
	default:
		return noRedirectClient
	}
}

// call sends input to svc with retries and returns the body of a 2xx answer.
func (s Source) call(ctx context.Context, getenv func(string) string, svc service, input any) ([]byte, error) {
	endpoint, region, err := s.resolveEndpoint(getenv, svc)
	if err != nil {
		return nil, err
	}
	if s.AWS.Credentials == nil {
		return nil, errors.New("no AWS credentials provider in aws.Config")
	}
	payload, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", svc.operation, err)
	}
	sum := sha256.Sum256(payload)
	payloadHash := hex.EncodeToString(sum[:])

	var lastErr error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if attempt > 1 {
			if err := retryBackoff.Wait(ctx, attempt-1); err != nil {
				return nil, fmt.Errorf("%w (after %d attempts; last error: %v)", err, attempt-1, lastErr)
			}
		}
		body, retry, err := s.attempt(ctx, svc, endpoint, region, payload, payloadHash)
		if err == nil {
			return body, nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil && !errors.Is(lastErr, ctx.Err()) {
		return nil, fmt.Errorf("%w: %w", ctx.Err(), lastErr)
	}
	return nil, lastErr
}

// attempt makes one signed request; retry reports whether the failure is
// worth another attempt.
func (s Source) attempt(ctx context.Context, svc service, endpoint, region string, payload []byte, payloadHash string) (body []byte, retry bool, err error) {
	creds, err := s.AWS.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("retrieve AWS credentials: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, false, fmt.Errorf("build %s request: %w", svc.operation, err)
	}
	req.Header.Set("Content-Type", jsonContentType)
	req.Header.Set("X-Amz-Target", svc.target)
	req.Header.Set("User-Agent", "wxsession-secret/1")
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, payloadHash, svc.signingName, region, now()); err != nil {
		return nil, false, fmt.Errorf("sign %s request: %w", svc.operation, err)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("%s %s: %w", svc.name, svc.operation, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, true, fmt.Errorf("%s %s: read response: %w", svc.name, svc.operation, err)
	}
	if len(body) > maxBody {
		return nil, false, fmt.Errorf("%s %s: response larger than %d bytes", svc.name, svc.operation, maxBody)
	}
	if resp.StatusCode/100 == 2 {
		return body, false, nil
	}
	apiErr := parseError(svc, resp, body)
	return nil, apiErr.retryable(), apiErr
}

// parseError reads an AWS JSON error answer. Only the error type and
// message are kept, never the raw body.
func parseError(svc service, resp *http.Response, body []byte) *APIError {
	e := &APIError{Service: svc.name, Operation: svc.operation, StatusCode: resp.StatusCode}
	var doc struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		CodeUp   string `json:"Code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(body, &doc) // a non-JSON body leaves the fields empty
	code := resp.Header.Get("X-Amzn-Errortype")
	for _, c := range []string{doc.Type, doc.Code, doc.CodeUp} {
		if code == "" {
			code = c
		}
	}
	e.Code = sanitizeCode(code)
	msg := doc.Message
	if msg == "" {
		msg = doc.MessageU
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	e.Message = msg
	return e
}

// sanitizeCode strips the namespace ("com.amazonaws.ssm#X") and the
// suffix ("X:http://internal.amazon.com/...") from an AWS error type.
func sanitizeCode(c string) string {
	if i := strings.IndexByte(c, ':'); i >= 0 {
		c = c[:i]
	}
	if i := strings.LastIndexByte(c, '#'); i >= 0 {
		c = c[i+1:]
	}
	c = strings.TrimSpace(c)
	if len(c) > 100 {
		c = c[:100]
	}
	return c
}

// Compile-time check that the SDK's HTTP client fits.
var _ doer = aws.HTTPClient(nil)
