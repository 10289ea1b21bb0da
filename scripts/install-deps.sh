#!/usr/bin/env bash
# Installs what building and testing jsbox needs on a fresh Debian 12 machine, and nothing when
# it is all there already (idempotent; `make deps` runs it). Everything comes from Debian's
# packages, rustup's own target list, and crates.io: nothing is downloaded from elsewhere.
set -euo pipefail

# clang + lld + llvm-ar + wasi-libc + the wasm32 compiler-rt: QuickJS's C code for wasm32-wasip1.
# sqlite3: the shell the demo and the tests drive. python3: Debian's, which can load extensions.
# valgrind: `make leaks`. python3-venv: the APSW venv below.
# qemu-user: tests/cpus.rs runs the sqlite3 shell on an emulated CPU that has the guest's
# baseline (x86-64-v2) and nothing more, and on one below it.
packages=(clang lld llvm wasi-libc libclang-rt-14-dev-wasm32 sqlite3 python3 python3-venv valgrind qemu-user)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# rustfmt and clippy: `make lint`, part of `make test`.
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    echo "install-deps: adding the $component component"
    rustup component add "$component"
  fi
done

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "install-deps: adding the wasm32-wasip1 target"
  rustup target add wasm32-wasip1
fi

# APSW from PyPI (its wheel bundles a current SQLite, newer than Debian's 3.40): a second host for
# the extension, where sqlite3_interrupt can stop a call (tests/apsw_host.py). Datasette from PyPI:
# a host whose visitors type the SQL (tests/hosts.rs). One venv of Debian's python3, whose sqlite3
# module loads extensions.
APSW_VERSION=3.54.1.0
DATASETTE_VERSION=0.65.5
venv="${CARGO_TARGET_DIR:-target}/apsw-venv"
if ! "$venv/bin/python" -c "
import sys, apsw, importlib.metadata as m
sys.exit(apsw.apsw_version() != '$APSW_VERSION' or m.version('datasette') != '$DATASETTE_VERSION')" 2>/dev/null; then
  echo "install-deps: preparing $venv with apsw $APSW_VERSION and datasette $DATASETTE_VERSION"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "apsw==$APSW_VERSION" "datasette==$DATASETTE_VERSION"
fi
