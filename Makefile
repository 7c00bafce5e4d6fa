# DockNap: `make run` and `make test` are the two set-up commands (README).
SHELL := /bin/bash
.DEFAULT_GOAL := build

# The host's own target (x86_64 here, aarch64 on a Raspberry Pi): an explicit
# --target keeps RUSTFLAGS away from build scripts and proc macros.
TARGET       := $(shell rustc -vV | sed -n 's/^host: //p')
STATIC_BIN   := target/$(TARGET)/release/docknap
BIN          := target/release/docknap
IMAGE        ?= docknap:latest
# glibc, linked statically: the binary runs in a FROM scratch image.
STATIC_FLAGS := -C target-feature=+crt-static

export DOCKNAP_TEST_IMAGE ?= docknap-test-busybox:latest
export DOCKNAP_COMPOSE    ?= $(CURDIR)/.venv/bin/docker-compose
export DOCKNAP_IMAGE      ?= $(IMAGE)

.PHONY: build ui run test test-env lint lint-and-build-tests test-rust test-chaos test-web test-web-then-chaos test-api test-ui-unit test-e2e image bench clean

## ui: the web UI, built into web/dist (embedded into the binary), only when
## its sources changed: a rebuild gives every file a new time, and cargo then
## builds the binary again.
UI_SOURCES := $(shell find web/src web/public web/scripts -type f) web/index.html web/vite.config.ts web/tsconfig.json
ui: web/.dist-built

web/.dist-built: web/node_modules/.installed $(UI_SOURCES)
	cd web && npm run --silent build
	touch $@

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## build: the static release binary with the UI inside, at target/release/docknap.
build: ui
	RUSTFLAGS="$(STATIC_FLAGS)" cargo build --release --locked --target $(TARGET)
	@# -C: an unchanged binary is left as it is; tests may be running it.
	install -C -D -m 755 $(STATIC_BIN) $(BIN)

## run: build, then serve on :8080 against the local Docker socket, data in ./data.
run: build
	bash scripts/test-env.sh --engine-only
	DOCKNAP_DATA_DIR=$${DOCKNAP_DATA_DIR:-./data} DOCKNAP_LISTEN=$${DOCKNAP_LISTEN:-0.0.0.0:8080} ./$(BIN)

## image: the FROM scratch image docknap:latest from the static binary.
image: build
	bash scripts/build-image.sh $(BIN) $(IMAGE)

## test: every suite, in two steps, two jobs at a time:
## 1. installing and starting what the tests need (mostly downloads) beside
##    the release build and the lint, then the debug test build (each cargo
##    run in a target dir of its own, so none waits for another's lock; the
##    release build's last step, LTO in one codegen unit, keeps one core);
## 2. the Rust tests beside the web suites (UI units, API fuzzing, browser)
##    and then the chaos test, which brings its own engine and mostly waits
##    for minute boundaries. Every suite runs its own servers and labels its
##    own containers on the shared engine.
test:
	$(MAKE) -j3 test-env build lint-and-build-tests
	$(MAKE) -j2 test-rust test-web-then-chaos

## lint: the house rules: the tree is formatted, and clippy finds nothing (warnings are errors).
lint: ui
	cargo fmt --check
	CARGO_TARGET_DIR=$(CURDIR)/target/lint cargo clippy --locked --all-targets -- -D warnings

lint-and-build-tests: lint
	cargo test --locked --all-targets --no-run

test-env:
	bash scripts/test-env.sh

# The image tests (tests/integration/image.rs) run docknap:latest.
test-rust: image
	DOCKNAP_BIN=$(CURDIR)/$(BIN) cargo test --locked --all-targets -- --skip chaos::

test-chaos: build
	DOCKNAP_BIN=$(CURDIR)/$(BIN) cargo test --locked --test integration -- chaos::

# One after another, not side by side.
test-web:
	$(MAKE) test-ui-unit
	$(MAKE) test-api
	$(MAKE) test-e2e

test-web-then-chaos:
	$(MAKE) test-web
	$(MAKE) test-chaos

## test-api: the UI's API types and docs/API.md match docs/openapi.json
## (scripts/api/check.sh), then Schemathesis fuzzes the real server from its
## own /api/openapi.json as each role (scripts/api/fuzz.sh): no 5xx, no
## response outside the document.
test-api: build
	bash scripts/api/check.sh
	bash scripts/api/fuzz.sh $(CURDIR)/$(BIN)

test-ui-unit: web/node_modules/.installed
	cd web && npm run --silent test:unit

test-e2e: build
	cd web && DOCKNAP_BIN=$(CURDIR)/$(BIN) node e2e/run.mjs

## bench: figures for docs/PERFORMANCE.md (printed, not asserted).
bench: test-env image
	bash scripts/bench/run.sh

clean:
	cargo clean
	rm -rf web/dist web/node_modules .run
