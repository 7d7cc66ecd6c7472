// Command wxlocal is `make dev`: it runs wxsession's whole stack locally,
// without Docker or an AWS account — the function binaries built from this
// repository, a DynamoDB-compatible server (dynalite), the WeChat emulator
// and a local API Gateway (HTTP API, payload 2.0) that reads template.yaml.
// See package internal/devstack/stack for what it wires and how.
//
// Usage (from the repository root):
//
//	go run ./cmd/wxlocal [flags]
//
//	-api-addr 127.0.0.1:3000       the API (like sam local start-api)
//	-wechat-addr 127.0.0.1:3001    the WeChat emulator
//	-dynamodb-addr 127.0.0.1:8000  dynalite
//	-dynamodb-endpoint URL         an external DynamoDB-compatible server instead of
//	                               dynalite (DynamoDB Local, LocalStack, moto); the
//	                               template's tables are created there when missing
//	-data-dir .wxlocal/dynamodb    dynalite's data ("" = in memory)
//	-reset                         wipe -data-dir first (start from empty tables)
//	-env-vars file.json            sam's --env-vars format
//	-parameter-overrides "K=V,K=V" sam's --parameter-overrides
//	-no-watch                      do not rebuild on source changes
//
// Listeners bind to loopback: an address without a host (":3000") means
// 127.0.0.1. Binding elsewhere takes an explicit host (-api-addr
// 0.0.0.0:3000) and prints a warning: the emulator issues a login for any
// openid, so anyone who reaches it can log in as anyone.
//
// SIGINT or SIGTERM stops every child process and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/samenv"
	"github.com/wxsession/wxsession/internal/devstack/stack"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	fs := flag.NewFlagSet("wxlocal", flag.ContinueOnError)
	apiAddr := fs.String("api-addr", stack.DefaultAPIAddr, "API listen address")
	wxAddr := fs.String("wechat-addr", stack.DefaultWeChatAddr, "WeChat emulator listen address")
	dynAddr := fs.String("dynamodb-addr", stack.DefaultDynamoAddr, "dynalite listen address")
	dynEndpoint := fs.String("dynamodb-endpoint", "", "external DynamoDB-compatible endpoint `URL` to use instead of dynalite (tables are created there when missing)")
	dataDir := fs.String("data-dir", filepath.Join(".wxlocal", "dynamodb"), "dynalite data directory, relative to the repository root (\"\" = in memory)")
	reset := fs.Bool("reset", false, "wipe -data-dir before starting")
	envVars := fs.String("env-vars", "", "JSON file of function environment overrides (sam --env-vars format)")
	overrides := fs.String("parameter-overrides", "", "template parameter overrides, \"K=V,K=V\" (sam --parameter-overrides)")
	noWatch := fs.Bool("no-watch", false, "do not rebuild functions when sources change")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	root, err := stack.FindRoot()
	if err != nil {
		logger.Error("wxlocal must run inside the repository", "err", err)
		return 1
	}
	params, err := stack.ParseParameterOverrides(*overrides)
	if err != nil {
		logger.Error("bad -parameter-overrides", "err", err)
		return 2
	}
	var env map[string]map[string]string
	if *envVars != "" {
		if env, err = stack.LoadEnvVars(*envVars); err != nil {
			logger.Error("bad -env-vars", "err", err)
			return 2
		}
	}
	if *dynEndpoint != "" {
		if _, err := stack.ExternalEndpoint(*dynEndpoint); err != nil {
			logger.Error("bad -dynamodb-endpoint", "err", err)
			return 2
		}
		if *reset {
			logger.Error("-reset wipes dynalite's data directory; it does nothing to an external -dynamodb-endpoint")
			return 2
		}
		*dataDir = ""
	}
	dir := *dataDir
	if dir != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if *reset && dir != "" {
		// Never wipe the data of a stack that is running on it.
		release, err := dynalite.LockDataDir(dir)
		if err != nil {
			logger.Error("cannot reset the data directory", "err", err)
			return 1
		}
		err = wipe(root, dir)
		release()
		if err != nil {
			logger.Error("cannot reset the data directory", "err", err)
			return 1
		}
		logger.Info("data directory wiped", "dir", dir)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t0 := time.Now()
	s, err := stack.Start(ctx, stack.Options{
		Root: root, APIAddr: *apiAddr, WeChatAddr: *wxAddr, DynamoAddr: *dynAddr,
		DynamoEndpoint: *dynEndpoint, DataDir: dir, Params: params, EnvOverrides: env, Watch: !*noWatch,
		Logger: logger, LogOut: os.Stdout,
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		logger.Error("local stack failed to start", "err", err)
		return 1
	}
	logger.Info("local stack started", "ms", time.Since(t0).Milliseconds())
	// sam local start-api --env-vars .wxlocal/sam-env.json (and
	// wxadmin -local) reach this stack on the ports it listens on now,
	// unless another running stack published the file first.
	envPath := filepath.Join(root, filepath.FromSlash(samenv.File))
	samEnv, err := s.SAMEnv()
	if err != nil {
		logger.Warn("no sam-env.json", "err", err)
	} else if written, err := samenv.Publish(envPath, samEnv, samenv.Answers); err != nil {
		logger.Warn("cannot write "+samenv.File, "err", err)
	} else if !written {
		logger.Info(samenv.File+" belongs to another running stack; left as it is (pass -dynamodb-endpoint to wxadmin for this one)",
			"dynamodb", s.DynamoURL)
		samEnv = nil
	}
	fmt.Print(s.Banner())

	<-ctx.Done()
	stop()
	logger.Info("shutting down")
	if samEnv != nil {
		if err := samenv.Withdraw(envPath, samEnv); err != nil {
			logger.Warn("cannot remove "+samenv.File, "err", err)
		}
	}
	if err := s.Close(); err != nil {
		logger.Error("shutdown", "err", err)
	}
	return 0
}

// wipe removes the data directory, refusing paths that are obviously not
// a data directory (the repository root or one of its ancestors).
func wipe(root, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// Rel(abs, root) does not climb out of abs when abs is root or one of
	// its ancestors.
	if rel, err := filepath.Rel(abs, root); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return fmt.Errorf("refusing to wipe %s: it contains the repository", abs)
	}
	return os.RemoveAll(abs)
}
