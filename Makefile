# Two entry points for a fresh machine: `make run` and `make test` (README).
# Everything they need is installed here, from the npm registry (and Debian for `make bench`).

NODE      ?= node
NPM       ?= npm
CONFIG    ?= examples/slardar.json5
TEST_FILES = $(shell find dist/test dist/lua-compat -name '*.test.js' 2>/dev/null | sort)

.PHONY: install build typecheck test run clean

# Reinstall only when the lockfile changes; the stamp lives inside node_modules so a clean clone always installs.
node_modules/.slardar-installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: node_modules/.slardar-installed

# tsc type-checks while it compiles; a type error fails the build.
build: install
	./node_modules/.bin/tsc -p .

typecheck: install
	./node_modules/.bin/tsc -p . --noEmit

test: build
	$(NODE) --test --test-concurrency=2 --test-timeout=180000 $(TEST_FILES)

# The example backends (127.0.0.1:8001, :8002) run beside the proxy and stop with it.
run: build
	@$(NODE) examples/backends.mjs & backends=$$!; \
	  trap 'kill $$backends 2>/dev/null' EXIT INT TERM; \
	  $(NODE) dist/src/cli.js dev -c $(CONFIG)

clean:
	rm -rf dist
