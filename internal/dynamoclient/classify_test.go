package dynamoclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/wxsession/wxsession/internal/dynamoclient"
	"github.com/wxsession/wxsession/session"
)

func TestUnavailable(t *testing.T) {
	api := func(code string, fault smithy.ErrorFault) error {
		return fmt.Errorf("operation error DynamoDB: GetItem: %w", &smithy.GenericAPIError{Code: code, Message: "m", Fault: fault})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"throttled", api("ProvisionedThroughputExceededException", smithy.FaultClient), true},
		{"throttling", api("ThrottlingException", smithy.FaultClient), true},
		{"request limit", api("RequestLimitExceeded", smithy.FaultClient), true},
		{"internal", api("InternalServerError", smithy.FaultServer), true},
		{"unavailable", api("ServiceUnavailable", smithy.FaultUnknown), true},
		{"any server fault", api("Whatever", smithy.FaultServer), true},
		{"deadline", context.DeadlineExceeded, true},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"unprocessed batch items", fmt.Errorf("3 left: %w", dynamoclient.ErrThrottled), true},
		{"missing table", api("ResourceNotFoundException", smithy.FaultClient), false},
		{"access denied", api("AccessDeniedException", smithy.FaultClient), false},
		{"bad credentials", api("UnrecognizedClientException", smithy.FaultClient), false},
		{"validation", api("ValidationException", smithy.FaultClient), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dynamoclient.Unavailable(tt.err); got != tt.want {
				t.Fatalf("Unavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
			wrapped := dynamoclient.Wrap("op", tt.err)
			if tt.err == nil {
				if wrapped != nil {
					t.Fatalf("Wrap(nil) = %v", wrapped)
				}
				return
			}
			if got := errors.Is(wrapped, session.ErrUnavailable); got != tt.want {
				t.Fatalf("Wrap(%v) is ErrUnavailable = %v, want %v", tt.err, got, tt.want)
			}
			if !errors.Is(wrapped, tt.err) {
				t.Fatalf("Wrap(%v) lost the cause", tt.err)
			}
		})
	}
}
