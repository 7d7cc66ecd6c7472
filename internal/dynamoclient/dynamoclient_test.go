package dynamoclient_test

import (
	"context"
	"errors"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamoclient"
)

// isolate keeps the developer's AWS environment out of the test.
func isolate(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNewAgainstDynalite(t *testing.T) {
	isolate(t)
	srv := dynalitetest.NewTestServer(t)
	c, cfg, err := dynamoclient.New(context.Background(), getenv(map[string]string{config.VarDynamoDBEndpoint: srv.Endpoint}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-east-1" {
		t.Errorf("region = %q, want the local default us-east-1", cfg.Region)
	}
	if _, err := c.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables: %v", err)
	}
}

func TestNewRegionAndEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		wantErr    string
		wantRegion string
	}{
		{"AWS like Lambda", map[string]string{"AWS_REGION": "ap-shanghai-1"}, "", "ap-shanghai-1"},
		{"local with region", map[string]string{"AWS_REGION": "eu-west-1", config.VarDynamoDBEndpoint: "http://127.0.0.1:8000"}, "", "eu-west-1"},
		{"no region", map[string]string{}, "region", ""},
		{"endpoint without scheme", map[string]string{config.VarDynamoDBEndpoint: "127.0.0.1:8000"}, config.VarDynamoDBEndpoint, ""},
		{"endpoint with other scheme", map[string]string{config.VarDynamoDBEndpoint: "ftp://x"}, config.VarDynamoDBEndpoint, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			_, cfg, err := dynamoclient.New(context.Background(), getenv(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tc.wantRegion {
				t.Errorf("region = %q, want %q", cfg.Region, tc.wantRegion)
			}
		})
	}
}

func writeBody(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// TestRetriesAreFewAndShort: a throttled call is tried MaxAttempts times,
// with backoff capped at MaxBackoff, and is signed with the local dummy
// credentials when no real ones are configured.
func TestRetriesAreFewAndShort(t *testing.T) {
	isolate(t)
	var hits atomic.Int32
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		writeBody(w, 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`)
	}))
	defer srv.Close()
	c, _, err := dynamoclient.New(context.Background(), getenv(map[string]string{config.VarDynamoDBEndpoint: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = c.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	d := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "ProvisionedThroughputExceeded") {
		t.Fatalf("err = %v", err)
	}
	if n := hits.Load(); n != dynamoclient.MaxAttempts {
		t.Errorf("%d attempts, want %d", n, dynamoclient.MaxAttempts)
	}
	if max := time.Duration(dynamoclient.MaxAttempts-1)*dynamoclient.MaxBackoff + time.Second; d > max {
		t.Errorf("took %s, want ≤ %s", d, max)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) == 0 || !strings.Contains(auth[0], "Credential=local/") {
		t.Errorf("request not signed with the local credentials: %q", auth)
	}
}

// TestHungServerDoesNotHang: without any caller deadline, a server that
// accepts and never answers costs at most MaxAttempts response-header
// timeouts plus backoff, not the function's whole timeout.
func TestHungServerDoesNotHang(t *testing.T) {
	isolate(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	c, _, err := dynamoclient.New(context.Background(), getenv(map[string]string{config.VarDynamoDBEndpoint: "http://" + l.Addr().String()}))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = c.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	d := time.Since(began)
	if err == nil {
		t.Fatal("hung server answered")
	}
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Errorf("err = %v, want a timeout", err)
	}
	max := time.Duration(dynamoclient.MaxAttempts)*dynamoclient.ResponseHeaderTimeout + time.Duration(dynamoclient.MaxAttempts-1)*dynamoclient.MaxBackoff + 2*time.Second
	if d > max {
		t.Errorf("took %s, want ≤ %s", d, max)
	}
	t.Logf("hung server: %d connections, gave up after %s", accepted.Load(), d.Round(time.Millisecond))
}
