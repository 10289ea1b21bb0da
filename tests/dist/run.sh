#!/usr/bin/env bash
# `make test-dist`: prepares what the checks of tests/dist/test_dist.py need beyond `make dist`
# (idempotent), then runs them. From Debian's packages: an arm64 sqlite3 shell and its libraries,
# unpacked (not installed) into target/arm64-root for qemu-aarch64, and Chromium for the
# screenshot. From PyPI and the npm registry, inside the checks: apsw, datasette, sqlite-utils,
# better-sqlite3, Node 22 and TypeScript.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/ensure.sh
target=${CARGO_TARGET_DIR:-$PWD/target}
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

root=$target/arm64-root
if [ ! -x "$root/usr/bin/sqlite3" ]; then
  echo "test-dist: unpacking Debian's arm64 sqlite3 into $root"
  dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
  debs=$(mktemp -d)
  (cd "$debs" && apt-get download -qq sqlite3:arm64 libsqlite3-0:arm64 libc6:arm64 libreadline8:arm64 \
    libtinfo6:arm64 zlib1g:arm64 libgcc-s1:arm64)
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root"; done
  rm -rf "$debs"
fi
ensure_debian_packages test-dist chromium
exec /usr/bin/python3 tests/dist/test_dist.py
