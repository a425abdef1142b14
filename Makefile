# Shardtrack: `make run` starts a tracker, `make test` runs the whole suite.
# Both install what is missing (npm ci from the committed lock file) and build first.
#
# NODE is the Node.js everything runs on: the `node` on the PATH when it is >= 22.12 and
# the uWebSockets.js build loads on it, else a pinned Node 22 installed once into .runtime/
# (deploy/node-runtime.sh). `make bench NODE=/usr/bin/node` runs on another one, unchecked.
# (goals that run no Node: clean)
NEEDS_NODE := $(if $(MAKECMDGOALS),$(filter-out clean,$(MAKECMDGOALS)),all)
ifeq ($(origin NODE),undefined)
ifneq ($(NEEDS_NODE),)
NODE := $(shell sh deploy/node-runtime.sh)
endif
endif
# npm, npx and the tools' `#!/usr/bin/env node` find the same Node first on the PATH
# (its absolute directory: a relative NODE must not put the working directory there).
NODE_BIN := $(shell p=$$(command -v "$(NODE)" 2>/dev/null) && [ "$$(printf %.1s "$$p")" = / ] && dirname "$$p")
ifneq ($(NODE_BIN),)
export PATH := $(NODE_BIN):$(PATH)
else ifneq ($(NEEDS_NODE),)
$(error no Node.js to run on ($(NODE)): see the line deploy/node-runtime.sh printed above)
endif
export NODE
NPM_STAMP := node_modules/.stamp

.PHONY: run test test-deps build bench bench-deps bench-ledger check-deploy clean

# No install scripts: nothing we run needs one (uWebSockets.js ships its binaries, msgpackr
# falls back to JavaScript), and the test-only WebRTC module under bittorrent-tracker would
# try to download a native build (the tests stub it: vitest.config.ts).
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

build: $(NPM_STAMP)
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.json
	mkdir -p dist/persistence && cp -r persistence/migrations dist/persistence/

run: build
	$(NODE) dist/engine/main.js $(ARGS)

# Real BitTorrent clients for test/real-client.test.ts (aria2c, transmission-daemon):
# installed when missing and we may (root with apt); without them those tests are skipped
# and say so.
TEST_CLIENTS := aria2c:aria2 transmission-daemon:transmission-daemon
test-deps:
	@missing=$$(for c in $(TEST_CLIENTS); do command -v $${c%%:*} >/dev/null 2>&1 || echo $${c##*:}; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get install -y -qq $$missing >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $$missing >/dev/null 2>&1) || true; \
	fi

test: build test-deps
	$(NODE) node_modules/vitest/vitest.mjs run

# The deployment files (Dockerfile, docker-compose.yml, Caddyfile, systemd unit, Kubernetes
# manifests) checked with the validators this machine can run (deploy/check.sh); .ci/run runs
# it after make test. The manifest check loads the tracker's own config module: it builds first.
check-deploy: build
	bash deploy/check.sh

# The benchmark suite (bench/suite.mjs; bench/README.md says what it runs and how to read it):
# every protocol, the rivals (opentracker, bittorrent-tracker) and the scaling run, in about
# 25 minutes. Options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick" or
# BENCH_ARGS="--target http://tracker.example:6969". wrk and opentracker are installed when
# missing and we may (root with apt); without them, or without redis-server (not installed here:
# Debian's package would start a system Redis), their rows are skipped and the report says so.
BENCH_TOOLS := wrk:wrk opentracker:opentracker
bench-deps:
	@missing=$$(for c in $(BENCH_TOOLS); do command -v $${c%%:*} >/dev/null 2>&1 || echo $${c##*:}; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get install -y -qq $$missing >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $$missing >/dev/null 2>&1) || true; \
	fi

bench: build bench-deps
	$(NODE) bench/suite.mjs $(BENCH_ARGS)

# Ledger flush capacity and announces/s with the ledger on vs off (local PostgreSQL).
bench-ledger: build
	$(NODE) bench/ledger-flush.mjs
	$(NODE) bench/run-ledger.mjs

clean:
	rm -rf dist test-results
