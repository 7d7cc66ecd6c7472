package faultservers_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/wxsession/wxsession/internal/faultservers"
)

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	defer backend.Close()
	p, err := faultservers.NewProxy(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	post := func(target, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/", strings.NewReader(body))
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := post("DynamoDB_20120810.GetItem", `{}`); status != http.StatusBadGateway {
		t.Errorf("without an upstream: status %d, want 502", status)
	}
	if err := p.SetUpstream(backend.URL); err != nil {
		t.Fatal(err)
	}
	p.SetRules(faultservers.Rule{Op: "PutItem", Table: "Sessions", Count: 1, Action: faultservers.Throttle})
	mark := p.Mark()
	body := `{"TableName":"Sessions","Key":{"sid":{"S":"x"}}}`
	tests := []struct {
		name, target, body string
		wantStatus         int
		wantOp             string
		wantTables         string
		wantAction         faultservers.Action
	}{
		{"forwarded", "DynamoDB_20120810.GetItem", body, 200, "GetItem", "Sessions", 0},
		{"batch tables sorted", "DynamoDB_20120810.BatchWriteItem", `{"RequestItems":{"B":[],"A":[]}}`, 200, "BatchWriteItem", "A,B", 0},
		{"rule takes the first match", "DynamoDB_20120810.PutItem", body, 400, "PutItem", "Sessions", faultservers.Throttle},
		{"rule used up", "DynamoDB_20120810.PutItem", body, 200, "PutItem", "Sessions", 0},
		{"other AWS JSON service", "AmazonSSM.GetParameter", `{}`, 200, "GetParameter", "", 0},
		{"plain HTTP", "", `x`, 200, "POST /", "", 0},
	}
	for i, tt := range tests {
		status, got := post(tt.target, tt.body)
		if status != tt.wantStatus {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, status, tt.wantStatus, got)
		}
		if status == 200 && got != tt.body {
			t.Errorf("%s: body %q, want the request body echoed", tt.name, got)
		}
		reqs := p.Since(mark)
		if len(reqs) != i+1 {
			t.Fatalf("%s: %d requests recorded, want %d", tt.name, len(reqs), i+1)
		}
		r := reqs[i]
		if r.Op != tt.wantOp || strings.Join(r.Tables, ",") != tt.wantTables || r.Action != tt.wantAction || r.At.IsZero() {
			t.Errorf("%s: recorded %+v", tt.name, r)
		}
	}
	if n := p.Count("PutItem"); n != 2 {
		t.Errorf("Count(PutItem) = %d, want 2", n)
	}
}

func TestProxyAnswer(t *testing.T) {
	p, err := faultservers.NewProxy(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("answered:"), b...))
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := http.Post(p.URL()+"/x", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "answered:hi" || p.Count("POST /x") != 1 {
		t.Fatalf("answer %q, count %d", b, p.Count("POST /x"))
	}
}

func TestLoseAnswer(t *testing.T) {
	var applied []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		applied = append(applied, string(b))
		_, _ = w.Write(b)
	}))
	defer backend.Close()
	lose := faultservers.NewLoseAnswer(nil)
	lose.Lose("put", 1)
	tests := []struct {
		body     string
		wantLost bool
	}{
		{"get a", false},
		{"put b", true},  // applied, answer lost
		{"put c", false}, // the count is used up
	}
	for i, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, backend.URL, strings.NewReader(tt.body))
		resp, err := lose.Do(req)
		if tt.wantLost {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("%q: err %v, want a connection reset", tt.body, err)
			}
		} else {
			if err != nil {
				t.Fatalf("%q: %v", tt.body, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tt.body {
				t.Errorf("%q: answer %q", tt.body, b)
			}
		}
		if len(applied) != i+1 || applied[i] != tt.body {
			t.Fatalf("%q: the server saw %q", tt.body, applied)
		}
	}
	if lose.Lost() != 1 {
		t.Errorf("Lost() = %d, want 1", lose.Lost())
	}
}

// TestGate: a held request reaches the server only once released; other
// requests (another operation, another body) pass at once.
func TestGate(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(b))
		mu.Unlock()
	}))
	defer backend.Close()
	g := faultservers.NewGate(nil)
	send := func(target, body string) error {
		req, _ := http.NewRequest(http.MethodPost, backend.URL, strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		resp, err := g.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	h := g.Hold("PutItem", "held")
	done := make(chan error, 1)
	go func() { done <- send("DynamoDB_20120810.PutItem", "put held") }()
	<-h.Arrived()
	for _, tt := range []struct{ target, body string }{
		{"DynamoDB_20120810.GetItem", "get held"}, // another operation
		{"DynamoDB_20120810.PutItem", "put free"}, // another body
	} {
		if err := send(tt.target, tt.body); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	before := strings.Join(seen, ",")
	mu.Unlock()
	if before != "get held,put free" {
		t.Fatalf("before the release the server saw %q", before)
	}
	h.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := send("DynamoDB_20120810.PutItem", "put held again"); err != nil { // the hold is used up
		t.Fatal(err)
	}
	if got := strings.Join(seen, ","); got != "get held,put free,put held,put held again" {
		t.Errorf("the server saw %q", got)
	}
}
