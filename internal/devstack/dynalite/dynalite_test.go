package dynalite_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/testutil"
)

func table(name string) dynalite.Table {
	return dynalite.Table{
		Input: dynamodb.CreateTableInput{
			TableName:   aws.String(name),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("g"), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName:  aws.String("g-index"),
				KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("g"), KeyType: types.KeyTypeHash}},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			}},
		},
		TTLAttribute: "expires_at",
	}
}

func TestStartCreateTablesStop(t *testing.T) {
	ctx := context.Background()
	srv := dynalitetest.NewTestServer(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") || srv.Port == 0 {
		t.Fatalf("endpoint %q port %d", srv.Endpoint, srv.Port)
	}
	c := dynalitetest.Client(t, srv)
	var logs testutil.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tables := []dynalite.Table{table("tab1"), table("tab2")}
	for i := 0; i < 2; i++ { // idempotent
		if err := dynalite.CreateTables(ctx, c, tables, logger); err != nil {
			t.Fatalf("CreateTables #%d: %v", i+1, err)
		}
	}
	out, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out.TableNames, ","); got != "tab1,tab2" {
		t.Fatalf("tables = %s", got)
	}
	d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("tab1")})
	if err != nil {
		t.Fatal(err)
	}
	if d.Table.TableStatus != types.TableStatusActive || d.Table.GlobalSecondaryIndexes[0].IndexStatus != types.IndexStatusActive {
		t.Fatalf("table not active: %v", d.Table.TableStatus)
	}
	// dynalite refuses UpdateTimeToLive: a WARN, not an error.
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "TimeToLive") {
		t.Errorf("expected a TimeToLive warning, logs:\n%s", logs.String())
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("process still running after Stop")
	}
	if err := syscall.Kill(srv.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists: %v", srv.Pid(), err)
	}
	if err := srv.Stop(); err != nil { // idempotent
		t.Fatalf("second Stop: %v", err)
	}
}

func TestCreateTablesRejectsBadInput(t *testing.T) {
	srv := dynalitetest.NewTestServer(t)
	c := dynalitetest.Client(t, srv)
	err := dynalite.CreateTables(context.Background(), c, []dynalite.Table{{}}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("CreateTables without a name: no error")
	}
	bad := table("bad")
	bad.Input.KeySchema[0].AttributeName = aws.String("undefined")
	if err := dynalite.CreateTables(context.Background(), c, []dynalite.Table{bad}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("CreateTables with an invalid schema: no error")
	}
}

func TestDataDirPersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	start := func() *dynalite.Server {
		s, err := dynalite.Start(ctx, dynalite.Options{DataDir: filepath.Join(dir, "db"), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop() })
		return s
	}
	s1 := start()
	// A second server on the same directory is refused while s1 runs (it
	// used to crash later with LevelDB iterator errors).
	if s, err := dynalite.Start(ctx, dynalite.Options{DataDir: filepath.Join(dir, "db"), Logger: slog.New(slog.DiscardHandler)}); !errors.Is(err, dynalite.ErrDataDirInUse) {
		if s != nil {
			_ = s.Stop()
		}
		t.Fatalf("second Start on the same data dir: err = %v, want ErrDataDirInUse", err)
	} else if !strings.Contains(err.Error(), "data directory in use by another stack; pass -data-dir") {
		t.Fatalf("message %q", err)
	}
	if _, err := dynalite.LockDataDir(filepath.Join(dir, "db")); !errors.Is(err, dynalite.ErrDataDirInUse) {
		t.Fatalf("LockDataDir while s1 runs: %v", err)
	}
	c1 := dynalitetest.Client(t, s1)
	if err := dynalite.CreateTables(ctx, c1, []dynalite.Table{table("persist")}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("persist"), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "k"}, "g": &types.AttributeValueMemberS{Value: "v"},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := start() // Stop released the lock
	c2 := dynalitetest.Client(t, s2)
	out, err := c2.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("persist"), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "k"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Item) == 0 {
		t.Fatal("item lost across restart with DataDir")
	}
}

func TestFixedPortAndPortInUse(t *testing.T) {
	srv := dynalitetest.NewTestServer(t)
	// Starting a second server on the same fixed port must fail, quickly
	// and with dynalite's reason, and must not leave a process behind.
	began := time.Now()
	_, err := dynalite.Start(context.Background(), dynalite.Options{Port: srv.Port, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatal("second server on a taken port started")
	}
	if !strings.Contains(err.Error(), "EADDRINUSE") {
		t.Errorf("error lacks the reason: %v", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("failure took %s", d)
	}
}

func TestBadToolsDir(t *testing.T) {
	_, err := dynalite.Start(context.Background(), dynalite.Options{ToolsDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "package.json") {
		t.Fatalf("err = %v, want a missing package.json error", err)
	}
}

func TestSIGSTOPHangsThenSIGCONTRecovers(t *testing.T) {
	srv := dynalitetest.NewTestServer(t)
	c := dynalitetest.Client(t, srv, func(o *dynamodb.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	})
	ctx := context.Background()
	if _, err := c.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := c.ListTables(stopped, &dynamodb.ListTablesInput{})
	cancel()
	if err == nil {
		_ = syscall.Kill(srv.Pid(), syscall.SIGCONT)
		t.Fatal("stopped server answered")
	}
	if err := syscall.Kill(srv.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// A resumed node process first works off what queued up while it was
	// stopped; on a loaded machine give it a few seconds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGCONT: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestStopStoppedProcess(t *testing.T) {
	srv := dynalitetest.NewTestServer(t)
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("Stop of a SIGSTOPped server took %s", d)
	}
}

func TestLocalClientRejectsBadEndpoint(t *testing.T) {
	if _, err := dynalite.LocalClient(context.Background(), "127.0.0.1:8000"); err == nil {
		t.Fatal("endpoint without scheme accepted")
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

func TestRequestTables(t *testing.T) {
	tests := []struct {
		body string
		want []string
	}{
		{`{"TableName":"Sessions","Key":{}}`, []string{"Sessions"}},
		{`{"RequestItems":{"B":[],"A":[]}}`, []string{"A", "B"}},
		{`{}`, nil},
		{`not json`, nil},
	}
	for _, tc := range tests {
		if got := dynalite.RequestTables([]byte(tc.body)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RequestTables(%s) = %v, want %v", tc.body, got, tc.want)
		}
	}
}
