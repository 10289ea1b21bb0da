# jsbox — build, demo, test, bench. `make demo` and `make test` work on a fresh machine: the
# `deps` step installs what is missing (scripts/install-deps.sh).
#
# Build order: guest (QuickJS → wasm32-wasip1) → xtask snapshot (Wizer pre-initialization and
# precompilation with the extension's engine settings) → ext (libjsbox.so, which embeds the
# precompiled guest). Each crate is built by its own cargo invocation so that features never
# unify across them (Cranelift stays in xtask; the tests' bundled SQLite stays in tests).

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
# QuickJS's C code is compiled by Debian's clang against wasi-libc (see .cargo/config.toml).
export CFLAGS_wasm32_wasip1 := --sysroot=$(CURDIR)/guest/sysroot

GUEST_WASM := $(CARGO_TARGET_DIR)/wasm32-wasip1/release/jsbox_guest.wasm
GUEST_DIR  := $(CARGO_TARGET_DIR)/jsbox
GUEST_CWASM := $(GUEST_DIR)/guest.cwasm
XTASK      := $(CARGO_TARGET_DIR)/release/xtask
EXT        := $(CARGO_TARGET_DIR)/release/libjsbox.so
export JSBOX_GUEST_DIR := $(GUEST_DIR)
# The extension under test, without its suffix, as `.load` and load_extension take it.
export JSBOX_EXT := $(basename $(EXT))

.PHONY: all deps build guest-aarch64 demo test lint test-unit test-e2e bench bench-quick bench-sandbox soak leaks fuzz fixtures dist test-dist clean FORCE

all: build

deps:
	@bash scripts/install-deps.sh

build: $(EXT)

# cargo decides whether anything changed; make re-reads the timestamps after each step, so the
# snapshot is redone only when the guest or the build tool really changed.
$(GUEST_WASM): FORCE | deps
	$(CARGO) build --release -p jsbox-guest --target wasm32-wasip1

$(XTASK): FORCE | deps
	$(CARGO) build --release -p xtask

$(GUEST_CWASM): $(GUEST_WASM) $(XTASK)
	$(XTASK) snapshot $(GUEST_WASM) $(GUEST_DIR)

# The guest precompiled for AArch64 (to embed in an aarch64 build of the extension).
guest-aarch64: $(GUEST_WASM) $(XTASK)
	$(XTASK) snapshot $(GUEST_WASM) $(CARGO_TARGET_DIR)/jsbox-aarch64 --target aarch64-unknown-linux-gnu

$(EXT): $(GUEST_CWASM) FORCE
	$(CARGO) build --release -p jsbox

demo: build
	sqlite3 :memory: < sql/demo.sql

test: lint test-unit test-e2e

# The code style (rustfmt.toml) and the workspace's lints (Cargo.toml's [workspace.lints]: the
# unsafe discipline), warnings as errors, for each crate as it is built: the guest for wasm32, the
# build tool, the library as the loadable extension and as a library that links SQLite, the tests
# and the bench.
lint: build
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release -p jsbox-guest --target wasm32-wasip1 -- -D warnings
	$(CARGO) clippy --release -p xtask -- -D warnings
	$(CARGO) clippy --release -p jsbox-abi -p sqlite-jsbox -p jsbox --features sqlite-jsbox/loadable_extension --all-targets -- -D warnings
	$(CARGO) clippy --release -p sqlite-jsbox --all-targets -- -D warnings
	$(CARGO) clippy --release -p jsbox-testkit -p jsbox-tests -p jsbox-bench --all-targets -- -D warnings

# Unit tests of the shared ABI, the extension's pure modules and the guest's helpers (on the
# host target).
test-unit: build
	$(CARGO) test --release -p jsbox-abi -p sqlite-jsbox --features sqlite-jsbox/loadable_extension
	$(CARGO) test --release -p jsbox-guest

# End to end: rusqlite (bundled, newer SQLite) loads the built library; the real
# /usr/bin/sqlite3 shell and Debian's /usr/bin/python3 run it too. Also the bench's own unit
# tests (its chart), which share the tests' rusqlite build.
test-e2e: build
	$(CARGO) test --release --no-fail-fast -p jsbox-tests -p jsbox-bench

# jsbox side by side with sqlite-js (fetched with npm into target/peers) and plain SQL, in one
# sqlite3 process: 1,000,000 rows (bench) or 10,000 (bench-quick); then the sandbox's own costs.
# `make bench ONLY=W4,W6` runs those workloads only (ids or prefixes: W9 is every W9 input;
# W5, W7, W8, W11 and W13 are whole sections) and prints them, keeping the full run's results.
bench: build
	$(CARGO) run --release -p jsbox-bench -- $(if $(ONLY),--only $(ONLY))
	$(if $(ONLY),,$(CARGO) bench -p sqlite-jsbox --features loadable_extension --bench sandbox)

bench-quick: build
	$(CARGO) run --release -p jsbox-bench -- --quick

bench-sandbox: build
	$(CARGO) bench -p sqlite-jsbox --features loadable_extension --bench sandbox

# The property-based fuzzing of tests/fuzz.rs, long: 20,000 cases per property (make test: 256).
fuzz: build
	PROPTEST_CASES=20000 $(CARGO) test --release -p jsbox-tests --test fuzz -- --nocapture

# The lifetime tests under valgrind's leak checker (scripts/leaks.sh).
leaks: build
	bash scripts/leaks.sh

# A million js_eval calls on one connection: resident memory after 10,000 and at the end.
soak: build
	$(CARGO) run --release -p jsbox-bench -- --soak 1000000

fixtures:
	python3 fixtures/generate.py

# Release packages into dist/ (docs/install.md): the extension for x86-64 and AArch64 linked
# against glibc 2.28 and gated (packaging/check_artifact.py), the wheels for PyPI (sqlite-jsbox,
# datasette-sqlite-jsbox, sqlite-utils-sqlite-jsbox), the npm packages, the release tarballs
# and checksums.txt.
dist:
	bash scripts/dist.sh

# Each package of dist/ installed the way a user would, and used (tests/dist/test_dist.py):
# prints `N passed, N failed`.
test-dist: dist
	bash tests/dist/run.sh

clean:
	$(CARGO) clean
	rm -rf dist

FORCE:
