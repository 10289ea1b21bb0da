#!/usr/bin/env bash
# What `make dist` and `make test-dist` need beyond scripts/install-deps.sh, installed once
# (idempotent): zig and cargo-zigbuild (PyPI), which link the release build against glibc 2.28
# for both architectures; auditwheel and twine (PyPI), which check the wheels; the AArch64 Rust
# target; binutils (readelf, nm, objdump: the artifact's gates) and Node's npm (npm pack).
set -euo pipefail
bash "$(dirname "$0")/install-deps.sh"

packages=(binutils nodejs npm)
missing=()
for p in "${packages[@]}"; do
  command -v "$p" >/dev/null 2>&1 && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-dist-deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "install-dist-deps: adding the aarch64-unknown-linux-gnu target"
  rustup target add aarch64-unknown-linux-gnu
fi

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
