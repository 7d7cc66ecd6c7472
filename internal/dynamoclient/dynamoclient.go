// Package dynamoclient builds the DynamoDB client the Lambda functions use,
// from the environment, at cold start.
//
// The client is tuned to fail fast. A Lambda behind API Gateway has at most
// 29 seconds (the HTTP API integration timeout) and usually a much shorter
// function timeout, and the authorizer sits in front of every request: a
// slow or unreachable database must turn into a quick deny or 503, not into
// a request that hangs until API Gateway gives up. Hence:
//
//   - dial timeout 1 s, TLS handshake 1 s, response header timeout 2 s: a
//     hung connection is abandoned long before the function times out (a
//     DynamoDB single-item call normally answers in milliseconds);
//   - the standard retryer with 3 attempts and backoff capped at 200 ms
//     (the SDK default cap is 20 s): worst case about 3×2 s + 0.4 s, and a
//     throttled or failing call is retried a little, then reported;
//   - the standard retryer's client-side retry quota is kept: during an
//     outage it stops retrying altogether, which is what a fail-fast
//     authorizer wants.
//
// Callers still bound each operation with their own context deadline
// (dynamostore.Config.OpTimeout); the transport timeouts are a second line.
//
// The package links only the SDK core, config's environment reader and the
// DynamoDB service, to keep cold start and binary size down: New, which the
// Lambda functions use, does not call awsconfig.LoadDefaultConfig (see New).
package dynamoclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"

	"github.com/wxsession/wxsession/internal/config"
)

// envRegion is the AWS SDK's region variable; Lambda always sets it.
const envRegion = "AWS_REGION"

// Transport and retry settings; see the package documentation for why they
// are this tight.
const (
	DialTimeout           = 1 * time.Second
	TLSHandshakeTimeout   = 1 * time.Second
	ResponseHeaderTimeout = 2 * time.Second
	MaxAttempts           = 3
	MaxBackoff            = 200 * time.Millisecond
)

// localRegion is used with a local endpoint when no region is configured.
const localRegion = "us-east-1"

// New returns a DynamoDB client with fail-fast timeouts and retries for a
// Lambda function, and the aws.Config it was built from (for other clients
// that want the same settings: the secret's SSM read, the token lease).
//
// It reads the configuration a Lambda execution environment provides: the
// region from AWS_REGION (else AWS_DEFAULT_REGION), the execution role's
// credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN, and the AWS SDK's other environment settings
// (AWS_ENDPOINT_URL[_DYNAMODB], AWS_USE_FIPS_ENDPOINT, AWS_CA_BUNDLE, ...)
// through awsconfig.NewEnvConfig, with the values
// awsconfig.LoadDefaultConfig gives them (see lambdaConfig). It does not
// call LoadDefaultConfig: that links every credential source the SDK
// knows (SSO, STS web identity and assume-role, the shared config and
// credentials files, credential processes, container and EC2 instance
// roles), about 1.4 MB of each function binary, none of which a Lambda
// function uses (docs/design.md §11, "Lambda binary size"). Without
// environment credentials every request fails with an error that says so.
//
// When DYNAMODB_ENDPOINT is set the client talks to that endpoint instead of
// AWS; the region then defaults to us-east-1, and if AWS_ACCESS_KEY_ID is
// not set static dummy credentials are used, so a local run never needs an
// AWS account.
//
// Programs that run with an operator's credentials (wxadmin) use
// [NewFromDefaultConfig].
func New(ctx context.Context, getenv func(string) string) (*dynamodb.Client, aws.Config, error) {
	endpoint, err := endpointFrom(getenv)
	if err != nil {
		return nil, aws.Config{}, err
	}
	cfg, err := lambdaConfig(getenv, endpoint)
	if err != nil {
		return nil, aws.Config{}, err
	}
	if cfg.Region == "" {
		return nil, aws.Config{}, fmt.Errorf("dynamoclient: no AWS region (set %s)", envRegion)
	}
	return newClient(cfg, endpoint), cfg, nil
}

// NewFromDefaultConfig is [New] for programs that run with an operator's
// credentials (wxadmin): it loads the configuration with
// awsconfig.LoadDefaultConfig, i.e. every credential source and the shared
// config files, and links them.
func NewFromDefaultConfig(ctx context.Context, getenv func(string) string) (*dynamodb.Client, aws.Config, error) {
	endpoint, err := endpointFrom(getenv)
	if err != nil {
		return nil, aws.Config{}, err
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(HTTPClient()),
		awsconfig.WithRetryer(NewRetryer),
		awsconfig.WithLogger(sdkLogger),
	}
	if r := getenv(envRegion); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	} else if endpoint != "" {
		opts = append(opts, awsconfig.WithRegion(localRegion))
	}
	if endpoint != "" && getenv(envAccessKeyID) == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(localCredentials))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("dynamoclient: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return nil, aws.Config{}, fmt.Errorf("dynamoclient: no AWS region (set %s)", envRegion)
	}
	return newClient(cfg, endpoint), cfg, nil
}

// envAccessKeyID is the SDK's access key variable; Lambda sets it from the
// execution role.
const envAccessKeyID = "AWS_ACCESS_KEY_ID"

// localCredentials signs requests to a local endpoint when no credentials
// are configured.
var localCredentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "dynamoclient.local"}, nil
})

// envCredentials is LoadDefaultConfig's provider for credentials from
// environment variables (a credentials.StaticCredentialsProvider with the
// source CredentialSourceEnvVars, which the SDK reports in its user agent);
// HasKeys was checked.
type envCredentials struct{ v aws.Credentials }

func (p envCredentials) Retrieve(context.Context) (aws.Credentials, error) { return p.v, nil }

// ProviderSources implements aws.CredentialProviderSource.
func (p envCredentials) ProviderSources() []aws.CredentialSource {
	return []aws.CredentialSource{aws.CredentialSourceEnvVars}
}

// Container credentials (the SDK's HTTP credential provider, as
// awsconfig.LoadDefaultConfig resolves it in config/resolve_credentials.go):
// what an execution environment that outlives its role's session gets
// instead of the three environment variables (the way Lambda SnapStart
// restores do, and the way ECS and EKS hand out roles). Linking it costs
// no measurable size (endpointcreds is a small client).
const (
	envContainerAuthTokenFile = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	ecsContainerEndpoint      = "http://169.254.170.2"
)

// containerHosts are the hosts an http:// AWS_CONTAINER_CREDENTIALS_FULL_URI
// may name besides loopback: the ECS and EKS credential agents.
var containerHosts = []net.IP{
	net.IPv4(169, 254, 170, 2),
	net.IPv4(169, 254, 170, 23),
	net.ParseIP("fd00:ec2::23"),
}

func containerHostAllowed(host string) (bool, error) {
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		addrs, err := net.LookupHost(host)
		if err != nil {
			return false, err
		}
		ips = ips[:0]
		for _, a := range addrs {
			ips = append(ips, net.ParseIP(a))
		}
	}
	for _, ip := range ips {
		if ip == nil || !(ip.IsLoopback() || slices.ContainsFunc(containerHosts, ip.Equal)) {
			return false, nil
		}
	}
	return true, nil
}

// containerCredentials is LoadDefaultConfig's provider for
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on the ECS agent's address) or
// AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to loopback or the
// ECS/EKS agents only), with AWS_CONTAINER_AUTHORIZATION_TOKEN or the
// token file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names (read at each
// refresh), cached and refreshed 5 minutes before expiry.
func containerCredentials(env awsconfig.EnvConfig, retryer func() aws.Retryer) (aws.CredentialsProvider, error) {
	uri := env.ContainerCredentialsEndpoint
	if env.ContainerCredentialsRelativePath != "" {
		uri = ecsContainerEndpoint + env.ContainerCredentialsRelativePath
	} else {
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("dynamoclient: AWS_CONTAINER_CREDENTIALS_FULL_URI: invalid URL, %w", err)
		}
		host := u.Hostname()
		if host == "" {
			return nil, errors.New("dynamoclient: AWS_CONTAINER_CREDENTIALS_FULL_URI: no host")
		}
		if u.Scheme == "http" {
			ok, err := containerHostAllowed(host)
			if err != nil {
				return nil, fmt.Errorf("dynamoclient: AWS_CONTAINER_CREDENTIALS_FULL_URI: failed to resolve host %q, %v", host, err)
			}
			if !ok {
				return nil, fmt.Errorf("dynamoclient: AWS_CONTAINER_CREDENTIALS_FULL_URI: invalid endpoint host, %q, only loopback/ecs/eks hosts are allowed", host)
			}
		}
	}
	p := endpointcreds.New(uri, func(o *endpointcreds.Options) {
		o.AuthorizationToken = env.ContainerAuthorizationToken
		if file := os.Getenv(envContainerAuthTokenFile); file != "" {
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(file)
				if err != nil {
					return "", fmt.Errorf("failed to read authorization token from %v: %v", file, err)
				}
				return string(b), nil
			})
		}
		o.Retryer = retryer()
		o.CredentialSources = []aws.CredentialSource{aws.CredentialSourceHTTP}
	})
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute }), nil
}

// sdkLogger writes the SDK's log messages with slog's default logger
// (lambdamain installs the functions' JSON handler), with
// component=aws-sdk: WARN for the SDK's warnings, DEBUG otherwise. The SDK
// hands it each operation's context (logging.ContextLogger, through
// middleware.GetLogger), so a line logged during a request carries that
// request's request_id like the function's own lines.
var sdkLogger logging.Logger = slogSDKLogger{ctx: context.Background()}

type slogSDKLogger struct{ ctx context.Context }

func (l slogSDKLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	slog.Default().Log(l.ctx, level, fmt.Sprintf(format, v...), "component", "aws-sdk")
}

// WithContext implements logging.ContextLogger.
func (l slogSDKLogger) WithContext(ctx context.Context) logging.Logger {
	return slogSDKLogger{ctx: ctx}
}

// errNoCredentials is what every request of a client from New reports when
// the environment has no credentials.
var errNoCredentials = errors.New("dynamoclient: no AWS credentials: " + envAccessKeyID + " and AWS_SECRET_ACCESS_KEY are not set, " +
	"nor AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI " +
	"(a Lambda function gets them from its execution role; shared files, profiles and instance roles are not read)")

func endpointFrom(getenv func(string) string) (string, error) {
	endpoint := getenv(config.VarDynamoDBEndpoint)
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("dynamoclient: %s=%q is not an http(s) URL", config.VarDynamoDBEndpoint, endpoint)
		}
	}
	return endpoint, nil
}

func newClient(cfg aws.Config, endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// lambdaConfig is the aws.Config awsconfig.LoadDefaultConfig (with New's
// options: HTTP client, retryer, region, local credentials) returns in an
// environment without shared config files, profiles or credential sources
// other than environment variables, as in Lambda. It follows the SDK's
// resolvers (config/resolve.go, v1.33) one by one; TestLambdaConfigMatchesDefault
// compares the two for a table of environments.
func lambdaConfig(getenv func(string) string, endpoint string) (aws.Config, error) {
	env, err := awsconfig.NewEnvConfig()
	if err != nil {
		return aws.Config{}, fmt.Errorf("dynamoclient: read AWS environment: %w", err)
	}
	cfg := aws.Config{
		// The SDK's own warnings (a response body it could not drain, a
		// checksum it could not check) go through slog, so a function's
		// log stays one JSON object per line (docs/design.md §8); where
		// LoadDefaultConfig would print them as plain text on stderr.
		Logger: sdkLogger,
		// The service clients read FIPS, dual-stack, endpoint discovery
		// and AWS_ENDPOINT_URL_<SERVICE> from here, as from
		// LoadDefaultConfig's sources.
		ConfigSources: []any{env},
		Region:        getenv(envRegion),
		Retryer:       NewRetryer,
		// A custom retryer: LoadDefaultConfig then ignores AWS_MAX_ATTEMPTS
		// and AWS_RETRY_MODE too.
		AppID:                       env.AppID,
		DefaultsMode:                aws.DefaultsModeLegacy,
		RequestMinCompressSizeBytes: 10240,
		AccountIDEndpointMode:       aws.AccountIDEndpointModePreferred,
		RequestChecksumCalculation:  aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation:  aws.ResponseChecksumValidationWhenSupported,
		AuthSchemePreference:        env.AuthSchemePreference,
		RestrictFilePermissions:     aws.RestrictFilePermissionsUserReadWrite,
	}
	if cfg.Region == "" && endpoint != "" {
		cfg.Region = localRegion // an option: it wins over AWS_DEFAULT_REGION
	}
	if cfg.Region == "" {
		cfg.Region = env.Region
	}
	httpClient := HTTPClient()
	if env.CustomCABundle != "" {
		pem, err := os.ReadFile(env.CustomCABundle)
		if err != nil {
			return aws.Config{}, fmt.Errorf("dynamoclient: AWS_CA_BUNDLE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return aws.Config{}, errors.New("dynamoclient: AWS_CA_BUNDLE: failed to load custom CA bundle PEM file")
		}
		httpClient = httpClient.WithTransportOptions(func(t *http.Transport) {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{}
			}
			t.TLSClientConfig.RootCAs = pool
		})
	}
	cfg.HTTPClient = httpClient
	switch {
	case endpoint != "" && getenv(envAccessKeyID) == "":
		cfg.Credentials = aws.NewCredentialsCache(localCredentials)
	case env.Credentials.HasKeys():
		cfg.Credentials = aws.NewCredentialsCache(envCredentials{env.Credentials})
	case env.ContainerCredentialsRelativePath != "" || env.ContainerCredentialsEndpoint != "":
		p, err := containerCredentials(env, cfg.Retryer)
		if err != nil {
			return aws.Config{}, err
		}
		cfg.Credentials = p
	default:
		cfg.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errNoCredentials
		}))
	}
	if env.DefaultsMode != "" {
		cfg.DefaultsMode = env.DefaultsMode
		if env.DefaultsMode == aws.DefaultsModeAuto {
			// LoadDefaultConfig also asks the EC2 instance metadata service
			// for its region, which Lambda does not have.
			cfg.RuntimeEnvironment = aws.RuntimeEnvironment{
				EnvironmentIdentifier: aws.ExecutionEnvironmentID(os.Getenv("AWS_EXECUTION_ENV")),
				Region:                env.Region,
			}
		}
	}
	if env.BaseEndpoint != "" && (env.IgnoreConfiguredEndpoints == nil || !*env.IgnoreConfiguredEndpoints) {
		cfg.BaseEndpoint = aws.String(env.BaseEndpoint)
	}
	if env.DisableRequestCompression != nil {
		cfg.DisableRequestCompression = *env.DisableRequestCompression
	}
	if env.DisableClockSkewCorrection != nil {
		cfg.DisableClockSkewCorrection = *env.DisableClockSkewCorrection
	}
	if env.RequestMinCompressSizeBytes != nil {
		cfg.RequestMinCompressSizeBytes = *env.RequestMinCompressSizeBytes
	}
	if env.AccountIDEndpointMode != "" {
		cfg.AccountIDEndpointMode = env.AccountIDEndpointMode
	}
	if env.RequestChecksumCalculation > 0 {
		cfg.RequestChecksumCalculation = env.RequestChecksumCalculation
	}
	if env.ResponseChecksumValidation > 0 {
		cfg.ResponseChecksumValidation = env.ResponseChecksumValidation
	}
	if env.RestrictFilePermissions != "" {
		cfg.RestrictFilePermissions = env.RestrictFilePermissions
	}
	return cfg, nil
}

// HTTPClient returns the SDK HTTP client with the package's timeouts.
func HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = DialTimeout
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = TLSHandshakeTimeout
			t.ResponseHeaderTimeout = ResponseHeaderTimeout
		})
}

// NewRetryer returns the standard retryer with MaxAttempts attempts and
// backoff capped at MaxBackoff.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
	})
}
