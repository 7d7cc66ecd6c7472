package dynamoclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/wxsession/wxsession/session"
)

// ErrThrottled marks work DynamoDB left unprocessed after the caller's own
// bounded retries (BatchWriteItem and BatchGetItem do so under throttling);
// Unavailable counts it as unavailable.
var ErrThrottled = errors.New("throttled")

// Unavailable is the one classifier of DynamoDB errors every store uses
// (docs/design.md §2). It reports whether err means the store could not
// answer now: the network, a timeout, throttling, a server error, a context
// that ended, or ErrThrottled. The caller answers 503 with Retry-After and
// the client may retry.
//
// Every other error is a refusal retrying cannot fix: a missing table
// (ResourceNotFoundException), denied access, invalid credentials, a
// validation error. The caller answers 500 and logs an alert, instead of
// telling clients to try again forever.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, ErrThrottled) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
			return true
		}
		if _, ok := retry.DefaultRetryableErrorCodes[code]; ok {
			return true
		}
		switch code {
		case "InternalServerError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException":
			return true
		}
		if apiErr.ErrorFault() == smithy.FaultServer {
			return true
		}
		var re *awshttp.ResponseError
		return errors.As(err, &re) && re.HTTPStatusCode() >= 500
	}
	// Not an answer from DynamoDB at all: connection refused or reset,
	// DNS, an unreadable response, the retry quota exhausted.
	return true
}

// Wrap returns err prefixed with what, wrapping session.ErrUnavailable as
// well when Unavailable(err), so that callers decide with
// errors.Is(err, session.ErrUnavailable) between 503 (try again) and 500
// (an alert). Wrap(what, nil) is nil.
func Wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if Unavailable(err) {
		return fmt.Errorf("%s: %w: %w", what, session.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
