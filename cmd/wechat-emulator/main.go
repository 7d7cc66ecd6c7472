// Command wechat-emulator serves the WeChat API emulator (jscode2session,
// stable_token, getuserphonenumber, checksession, resetusersessionkey)
// (package internal/devstack/wechatemu) on its own, for the local stack and manual tests.
//
//	wechat-emulator [-addr 127.0.0.1:3001] [-appid wx...] [-also wxB,wxC] [-secret ...] [-code-ttl 5m]
//
// The appid and secret default to wechatemu.DefaultAppID/DefaultSecret;
// WECHAT_APPID and WECHAT_SECRET override the defaults and flags override
// both. -also lists further appids served with the same secret (several
// mini-programs, docs/design.md §7.9). Logs are JSON on stderr; SIGINT or SIGTERM shuts it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/wechatemu"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("wechat-emulator stopped", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("wechat-emulator", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3001", "listen address")
	appID := fs.String("appid", "", "accepted appid (default $WECHAT_APPID, else "+wechatemu.DefaultAppID+")")
	secret := fs.String("secret", "", "accepted app secret (default $WECHAT_SECRET, else the emulator's built-in dev secret)")
	also := fs.String("also", "", "further appids served, comma-separated (several mini-programs)")
	ttl := fs.Duration("code-ttl", wechatemu.DefaultCodeTTL, "how long a code stays valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *appID == "" {
		*appID = envOr(config.VarAppID, wechatemu.DefaultAppID)
	}
	if *secret == "" {
		*secret = envOr(config.VarSecret, wechatemu.DefaultSecret)
	}

	var more []string
	for _, a := range strings.Split(*also, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if !config.ValidAppID(a) {
				return fmt.Errorf("-also: %q is not an appid", a)
			}
			more = append(more, a)
		}
	}
	emu := wechatemu.New(wechatemu.Config{AppID: *appID, AppIDs: more, Secret: *secret, CodeTTL: *ttl, Logger: log})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("wechat-emulator listening", slog.String("url", "http://"+ln.Addr().String()), slog.Any("appids", emu.AppIDs()))

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("wechat-emulator shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
