// Command wxadmin is the operator's CLI for a wxsession deployment: list and
// revoke sessions, show, ban, unban and delete users, revoke every session
// issued before a time, read the operators' audit trail.
//
//	go run ./cmd/wxadmin -local sessions list -openid O          # against `make dev`
//	go run ./cmd/wxadmin -stack wxsession users ban -openid O -reason fraud -until 7d
//
// Run it without arguments for the full usage. The logic is in
// internal/admin; this main only wires the process to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/wxsession/wxsession/internal/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := admin.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
