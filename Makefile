# wxsession - see README.md. `make dev` runs the whole stack locally; `make test` runs every test.
SHELL := /bin/bash
GO ?= go

# Lambda builds: linux/arm64, static, no RPC shim, reproducible paths, stripped. This is the
# one definition of the build flags: `make build`, SAM's build-<LogicalId> targets, the local
# stack, the benchmark and the tests all build through it (internal/repo.BuildLambda runs
# `make lambda`). The local stack and the tests set LAMBDA_GOOS/LAMBDA_GOARCH to the host's.
LAMBDA_GOOS ?= linux
LAMBDA_GOARCH ?= arm64
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=$(LAMBDA_GOOS) GOARCH=$(LAMBDA_GOARCH) $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

FUNCTIONS := login authorizer api wechat
DYNALITE := tools/dynalite/node_modules/.bin/dynalite

.PHONY: all build lambda dev test test-go test-race test-moto test-client fuzz bench lint deploy tools clean \
	build-LoginFunction build-AuthorizerFunction build-ApiFunction build-WechatFunction

all: lint build test

## build: the Lambda bootstraps for linux/arm64 in build/<function>/bootstrap
build: $(FUNCTIONS:%=build/%/bootstrap)

build/%/bootstrap: FORCE
	$(LAMBDA_BUILD) -o $@ ./functions/$*

## lambda: one Lambda binary, PKG (a main package) into OUT, built like the product
lambda:
	$(if $(and $(PKG),$(OUT)),,$(error usage: make lambda PKG=./functions/login OUT=path))$(LAMBDA_BUILD) -o $(OUT) $(PKG)

FORCE:

## SAM's BuildMethod: makefile targets (sam build calls them with ARTIFACTS_DIR set).
## The local stack calls them too, with LAMBDA_GOARCH set to the host's architecture.
build-LoginFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/login
build-AuthorizerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/authorizer
build-ApiFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/api
build-WechatFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/wechat

## tools: the npm-pinned local DynamoDB (dynalite) and the client's dev tools (TypeScript, terser)
CLIENT_DEPS := client/node_modules/.package-lock.json
tools: $(DYNALITE) $(CLIENT_DEPS)
$(DYNALITE): tools/dynalite/package.json tools/dynalite/package-lock.json
	cd tools/dynalite && npm ci --no-audit --no-fund
	@touch $@
$(CLIENT_DEPS): client/package.json client/package-lock.json
	cd client && npm ci --no-audit --no-fund
	@touch $@

## dev: the whole stack on 127.0.0.1 (API :3000, WeChat emulator :3001, DynamoDB :8000)
dev: tools
	@echo "make dev: compiling the local stack, then building the functions (the first run takes a few minutes; later runs seconds)"
	@# built, then run directly rather than with go run: go run exits 1 when Ctrl-C
	@# interrupts it, even after wxlocal's clean shutdown (exit 0).
	$(GO) build -o .wxlocal/bin/wxlocal ./cmd/wxlocal
	./.wxlocal/bin/wxlocal $(DEV_FLAGS)

## test: every test - Go unit, store, function-binary and end-to-end tests, fuzz seeds,
## the race detector on the packages with shared state, and the mini-program client's tests.
## Each suite runs once: the end-to-end suite (tests/e2e) runs in the race pass only.
test: tools lint test-go test-race

E2E_PKGS := ./tests/e2e/
test-go:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/tests/e2e$$')

RACE_PKGS := ./internal/devstack/... ./internal/wechat/... ./internal/dynamostore/... ./internal/wxtoken/... ./internal/wxuser/... ./internal/phonestore/... ./wxapi/... $(E2E_PKGS)
test-race:
	$(GO) test -count=1 -race $(RACE_PKGS)

## test-moto: every suite that takes its DynamoDB from dynalitetest (stores, handlers, function
## binaries, local stack, end-to-end; dynalite's own tests excepted) again against moto's server,
## which tools/moto/with-moto.sh starts on a free port and stops. Any other server:
## WXSESSION_TEST_DYNAMODB_ENDPOINT=URL go test ...
MOTO_PKGS = $(shell grep -rl --include='*_test.go' 'dynalitetest\.' . | grep -v -e node_modules -e '^./internal/devstack/dynalite/' \
	| xargs -n1 dirname | sort -u | sed 's|$$|/|')
test-moto:
	tools/moto/with-moto.sh $(GO) test -count=1 -timeout 8m $(MOTO_PKGS)

## test-client: the mini-program client's suites (wx, uni, Taro), package checks and sample app,
## against a local stack that the Go e2e test starts (make test runs them as part of ./...)
test-client: tools
	$(GO) test -count=1 -run 'TestMiniProgramClient' ./tests/e2e/

## fuzz: run every fuzz target for FUZZTIME each (default 300000x: an execution count, not a
## duration: with a duration Go 1.26's fuzz coordinator can fail a target with a bare "context
## deadline exceeded" when the time runs out on a loaded machine, golang/go#75804, fixed in Go 1.27)
FUZZTIME ?= 300000x
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v node_modules); do \
	  pkg=./$$(dirname $${f#./}); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: binary sizes and cold starts against bench/floor, warm latency, throughput and DynamoDB
## requests per operation through the local stack, and `go test -bench -benchmem` on the hot paths
## (wxbench runs it; raw output on stderr). Table on stdout, JSON in build/bench/latest.json.
## BENCH_FLAGS=-strict fails on a missed budget; see bench/README.md.
bench: tools
	$(GO) run ./cmd/wxbench -go $(GO) -out build/bench/latest.json $(BENCH_FLAGS)

## lint: gofmt, go vet, staticcheck (pinned in go.mod as a tool) and a `go mod tidy` diff check
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './tools/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

## deploy: sam build --build-in-source && sam deploy --guided (see README: store the app secret in SSM first)
deploy:
	sam build --build-in-source
	sam deploy --guided

clean:
	rm -rf build .wxlocal/bin
