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
// The package links only the SDK core, config and the DynamoDB service, to
// keep cold start and binary size down.
package dynamoclient

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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

// New loads the AWS configuration (awsconfig.LoadDefaultConfig: region from
// AWS_REGION, credentials from the Lambda environment) and returns a
// DynamoDB client with fail-fast timeouts and retries, and the aws.Config it
// was built from (for other clients that want the same settings).
//
// When DYNAMODB_ENDPOINT is set the client talks to that endpoint instead of
// AWS; the region then defaults to us-east-1, and if AWS_ACCESS_KEY_ID is
// not set static dummy credentials are used, so a local run never probes the
// EC2 metadata service or needs an AWS account.
func New(ctx context.Context, getenv func(string) string) (*dynamodb.Client, aws.Config, error) {
	endpoint := getenv(config.VarDynamoDBEndpoint)
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, aws.Config{}, fmt.Errorf("dynamoclient: %s=%q is not an http(s) URL", config.VarDynamoDBEndpoint, endpoint)
		}
	}

	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(HTTPClient()),
		awsconfig.WithRetryer(NewRetryer),
	}
	if r := getenv(envRegion); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	} else if endpoint != "" {
		opts = append(opts, awsconfig.WithRegion(localRegion))
	}
	if endpoint != "" && getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(
			func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "dynamoclient.local"}, nil
			})))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("dynamoclient: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return nil, aws.Config{}, fmt.Errorf("dynamoclient: no AWS region (set %s)", envRegion)
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return client, cfg, nil
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
