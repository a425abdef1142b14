# Shardtrack: `make run` starts a tracker, `make test` runs the whole suite.
# Both install what is missing (npm ci from the committed lock file) and build first.
NPM_STAMP := node_modules/.stamp
NODE ?= node

.PHONY: run test build bench bench-hello clean

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(NPM_STAMP)
	npx tsc -p tsconfig.json

run: build
	$(NODE) dist/engine/main.js $(ARGS)

test: build
	npx vitest run

# HTTP announce benchmark (see bench/README.md for what it runs and how to read it).
bench: build
	bash bench/run-http.sh

clean:
	rm -rf dist test-results
