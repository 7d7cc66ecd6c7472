package reliability_test

import (
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/faultservers"
)

// TestFaultServers checks the fault servers themselves: the SDK must see the
// proxy's answers as DynamoDB's own errors, or the matrix tests nothing.
func TestFaultServers(t *testing.T) {
	p, err := faultservers.NewProxy(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, err := dynalite.LocalClient(context.Background(), p.URL(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		t.Fatal(err)
	}
	get := func(ctx context.Context) error {
		_, err := db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String("T1"),
			Key:       map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}},
		})
		return err
	}

	p.SetRules(
		faultservers.Rule{Op: "GetItem", Table: "T1", Count: 1, Action: faultservers.Throttle},
		faultservers.Rule{Op: "GetItem", Count: 1, Action: faultservers.ServerError},
		faultservers.Rule{Op: "GetItem", Table: "T1", Count: 1, Action: faultservers.Reset},
		faultservers.Rule{Op: "GetItem", Table: "T1", Count: 1, Action: faultservers.Hang},
	)
	var pte *types.ProvisionedThroughputExceededException
	if err := get(context.Background()); !errors.As(err, &pte) {
		t.Errorf("throttle: %v, want ProvisionedThroughputExceededException", err)
	}
	var ise *types.InternalServerError
	if err := get(context.Background()); !errors.As(err, &ise) {
		t.Errorf("server error: %v, want InternalServerError", err)
	}
	if err := get(context.Background()); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset: %v, want ECONNRESET", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	err = get(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 250*time.Millisecond {
		t.Errorf("hang: %v after %v", err, time.Since(start))
	}
	// Rules used up, no upstream: 502.
	var re interface{ HTTPStatusCode() int }
	if err := get(context.Background()); !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadGateway {
		t.Errorf("no upstream: %v, want HTTP 502", err)
	}
	if n, want := p.Count("GetItem"), 5; n != want {
		t.Errorf("counted %d GetItem, want %d", n, want)
	}
	for _, r := range p.Requests() {
		if len(r.Tables) != 1 || r.Tables[0] != "T1" {
			t.Errorf("request %+v: tables not parsed", r)
		}
	}

	// A closed port refuses, the reset listener resets, the hang listener hangs.
	closed, err := faultservers.ClosedURL()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 300 * time.Millisecond}
	if _, err := c.Get(closed); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("closed port: %v", err)
	}
	rst, err := faultservers.NewResetListener()
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	if _, err := c.Get(rst.URL()); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset listener: %v", err)
	}
	hang, err := faultservers.NewHangListener()
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	var ne interface{ Timeout() bool }
	if _, err := c.Get(hang.URL()); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("hang listener: %v", err)
	}
	if rst.Accepted() != 1 || hang.Accepted() != 1 {
		t.Errorf("accepted: reset %d, hang %d", rst.Accepted(), hang.Accepted())
	}
}
