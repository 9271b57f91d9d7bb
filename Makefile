# Two entry points for a fresh machine: `make run` and `make test` (README).
# Everything they need is installed here, from the npm registry (and Debian for `make bench`).

NODE      ?= node
NPM       ?= npm
CONFIG    ?= examples/slardar.json5
TEST_FILES = $(shell find dist/test dist/lua-compat -name '*.test.js' 2>/dev/null | sort)

.PHONY: install build typecheck test test-chaos run clean bench bench-tools bench-engines bench-pick

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

# reliability.md's faults and load cases at full scale (60 s churn, 1 000 000-request soak, 10 000 upstreams,
# 1 000 fuzz bodies); `make test` runs the same files at small scale. One file at a time: they measure load.
CHAOS_FILES = $(shell find dist/test/chaos -name '*.test.js' 2>/dev/null | sort)
test-chaos: build
	CHAOS_SCALE=full $(NODE) --test --test-concurrency=1 --test-timeout=1800000 $(CHAOS_FILES)

# The example backends (127.0.0.1:8001, :8002) run beside the proxy and stop with it.
run: build
	@$(NODE) examples/backends.mjs & backends=$$!; \
	  trap 'kill $$backends 2>/dev/null' EXIT INT TERM; \
	  $(NODE) dist/src/cli.js dev -c $(CONFIG)

# Load benchmarks against nginx (performance.md, bench/README.md). CASES="proxy-small retry" or "all" picks cases;
# BENCH_QUICK=1 is a 1-round smoke run. Results go to bench/results/ (ignored by git).
bench: build bench-tools
	$(NODE) dist/bench/run.js $(CASES)

# The bare Node forwarding engines (http-proxy, undici Pool, http.Agent) against the same nginx anchor.
bench-engines: build bench-tools
	$(NODE) dist/bench/run.js engines

# Peer-selection micro-benchmark; exits 1 if a pick allocates.
bench-pick: build
	$(NODE) --expose-gc dist/bench/pick.js

# wrk and nginx come from Debian (as root; apt-get needs it). nginx-light is enough; releases without it ship "nginx".
# WRK= and NGINX= point the runner at binaries installed elsewhere.
bench-tools:
	@missing=""; \
	  [ -n "$$WRK" ] || command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	  [ -n "$$NGINX" ] || command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	  [ -z "$$missing" ] && exit 0; \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make bench: not found:$$missing. Install as root: apt-get install -y wrk nginx-light (or run make bench as root)." >&2; exit 1; \
	  fi; \
	  command -v apt-get >/dev/null 2>&1 || { \
	    echo "make bench: not found:$$missing, and apt-get is not available. Install wrk and nginx, or set WRK= and NGINX= to their paths." >&2; exit 1; }; \
	  apt-get update -qq || exit 1; \
	  packages=""; \
	  case "$$missing" in *wrk*) packages=" wrk";; esac; \
	  case "$$missing" in *nginx*) \
	    if apt-cache show nginx-light >/dev/null 2>&1; then packages="$$packages nginx-light"; else packages="$$packages nginx"; fi;; \
	  esac; \
	  echo "make bench: installing$$packages from Debian"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$packages

clean:
	rm -rf dist
