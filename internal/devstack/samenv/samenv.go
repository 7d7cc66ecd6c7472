// Package samenv owns the --env-vars file `make dev` writes for
// `sam local start-api` (docs/design.md §6): its place, its shape, and the
// reading of the DynamoDB endpoint back from it (wxadmin -local, and
// wxlocal deciding whether a running stack owns the file). It is small on
// purpose, so that the operator's tool does not link the local stack.
package samenv

import (
	"bytes"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/wxsession/wxsession/internal/config"
)

const (
	// File is where `make dev` writes the file, relative to the repository
	// root.
	File = ".wxlocal/sam-env.json"
	// GlobalKey is the --env-vars key that applies to every function
	// (SAM's format).
	GlobalKey = "Parameters"
	// DockerHost is how containers started by `sam local` reach the host.
	DockerHost = "host.docker.internal"
)

// Marshal renders vars as an --env-vars file that applies to every
// function.
func Marshal(vars map[string]string) ([]byte, error) {
	out, err := json.MarshalIndent(map[string]map[string]string{GlobalKey: vars}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// DynamoEndpoint reads the DynamoDB endpoint of a file Marshal made, as the
// host sees it (DockerHost read as 127.0.0.1); ok is false when data is not
// such a file or names none.
func DynamoEndpoint(data []byte) (endpoint string, ok bool) {
	var env map[string]map[string]string
	if json.Unmarshal(data, &env) != nil {
		return "", false
	}
	e := env[GlobalKey][config.VarDynamoDBEndpoint]
	if e == "" {
		return "", false
	}
	if u, err := url.Parse(e); err == nil && u.Hostname() == DockerHost {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
		e = u.String()
	}
	return e, true
}

// Publish writes data (a file Marshal made) to path, creating its
// directory, unless path already holds another stack's file whose DynamoDB
// endpoint still answers (live reports that): two stacks on other ports must
// not take the file from each other, or wxadmin -local would follow the
// second one after it stopped. written reports whether the file is now
// data; a stale file of a stack that is gone is replaced.
func Publish(path string, data []byte, live func(endpoint string) bool) (written bool, err error) {
	if old, err := os.ReadFile(path); err == nil && !bytes.Equal(old, data) {
		if e, ok := DynamoEndpoint(old); ok && live(e) {
			return false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	return true, os.WriteFile(path, data, 0o644)
}

// Withdraw removes path if it still holds data, the file this stack
// published, so that no file outlives its stack.
func Withdraw(path string, data []byte) error {
	if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, data) {
		return nil
	}
	return os.Remove(path)
}

// Answers reports whether something accepts TCP connections at endpoint's
// host and port within a short time: the liveness Publish asks about.
func Answers(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	c, err := net.DialTimeout("tcp", u.Host, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
