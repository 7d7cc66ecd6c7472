package samenv

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestDynamoEndpoint(t *testing.T) {
	file, err := Marshal(map[string]string{"DYNAMODB_ENDPOINT": "http://host.docker.internal:8100", "LOG_LEVEL": "debug"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		want string
		ok   bool
	}{
		{"written by Marshal", string(file), "http://127.0.0.1:8100", true},
		{"external endpoint kept", `{"Parameters":{"DYNAMODB_ENDPOINT":"http://10.0.0.5:4566"}}`, "http://10.0.0.5:4566", true},
		{"no endpoint", `{"Parameters":{"LOG_LEVEL":"debug"}}`, "", false},
		{"per-function only", `{"LoginFunction":{"DYNAMODB_ENDPOINT":"http://127.0.0.1:1"}}`, "", false},
		{"not JSON", `nope`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := DynamoEndpoint([]byte(tc.data))
			if got != tc.want || ok != tc.ok {
				t.Errorf("DynamoEndpoint = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestPublishAndWithdraw(t *testing.T) {
	mine, _ := Marshal(map[string]string{"DYNAMODB_ENDPOINT": "http://host.docker.internal:8100"})
	other, _ := Marshal(map[string]string{"DYNAMODB_ENDPOINT": "http://host.docker.internal:8200"})
	tests := []struct {
		name      string
		existing  []byte // nil: no file
		otherLive bool
		written   bool
		after     []byte
	}{
		{"no file yet", nil, false, true, mine},
		{"own file again", mine, true, true, mine},
		{"stale file of a stopped stack", other, false, true, mine},
		{"file of a running stack", other, true, false, other},
		{"unreadable content", []byte("junk"), true, true, mine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".wxlocal", "sam-env.json")
			if tc.existing != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, tc.existing, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var asked []string
			live := func(e string) bool { asked = append(asked, e); return tc.otherLive }
			written, err := Publish(path, mine, live)
			if err != nil || written != tc.written {
				t.Fatalf("Publish = %v, %v; want %v (asked %v)", written, err, tc.written, asked)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.after) {
				t.Fatalf("file = %s, want %s", got, tc.after)
			}
			// Withdraw removes only this stack's own file.
			if err := Withdraw(path, mine); err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(path)
			if gone := os.IsNotExist(statErr); gone != tc.written {
				t.Fatalf("after Withdraw: file gone = %v, want %v", gone, tc.written)
			}
		})
	}
}

func TestAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	live := "http://" + l.Addr().String()
	if !Answers(live) {
		t.Errorf("Answers(%s) = false for a listener", live)
	}
	l.Close()
	if Answers(live) {
		t.Errorf("Answers(%s) = true after the listener closed", live)
	}
	if Answers("::not a url") {
		t.Error("Answers of a malformed URL = true")
	}
}
