#!/usr/bin/env bash
# What `make dist` and `make test-dist` need beyond scripts/install-deps.sh, installed once
# (idempotent): zig and cargo-zigbuild (PyPI), which link the release build against glibc 2.28
# for both architectures; auditwheel and twine (PyPI), which check the wheels; the AArch64 Rust
# target; binutils (readelf, nm, objdump: the artifact's gates) and Node's npm (npm pack).
set -euo pipefail
bash "$(dirname "$0")/install-deps.sh"
source "$(dirname "$0")/ensure.sh"

ensure_debian_packages install-dist-deps binutils nodejs
# Some nodejs packages (NodeSource's) carry npm; Debian's does not, and has it as a package.
command -v npm >/dev/null || ensure_debian_packages install-dist-deps npm
ensure_rust_target install-dist-deps aarch64-unknown-linux-gnu

ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1
AUDITWHEEL_VERSION=6.8.2
TWINE_VERSION=7.0.0
venv="${CARGO_TARGET_DIR:-target}/dist-venv"
if ! "$venv/bin/python" -c "
import sys, importlib.metadata as m
want = {'ziglang': '$ZIGLANG_VERSION', 'cargo-zigbuild': '$CARGO_ZIGBUILD_VERSION', 'auditwheel': '$AUDITWHEEL_VERSION', 'twine': '$TWINE_VERSION'}
sys.exit(any(m.version(k) != v for k, v in want.items()))" 2>/dev/null; then
  echo "install-dist-deps: preparing $venv with zig, cargo-zigbuild, auditwheel and twine"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION" \
    "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" "auditwheel==$AUDITWHEEL_VERSION" "twine==$TWINE_VERSION"
fi
