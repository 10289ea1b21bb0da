#!/usr/bin/env bash
# `make dist`: the release build of the extension for x86-64 and AArch64, linked against glibc
# 2.28 by cargo-zigbuild (zig's linker and glibc stubs, from PyPI), gated, then every package
# built from it into dist/ (packaging/dist.py). Idempotent; installs what it needs
# (scripts/install-dist-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=$ROOT/dist
GLIBC=2.28

# Where the build tool put the guest precompiled for an architecture.
guest_dir() {
  if [ "$1" = aarch64 ]; then echo "$TARGET_DIR/jsbox-aarch64"; else echo "$TARGET_DIR/jsbox"; fi
}

bash scripts/install-dist-deps.sh
export PATH="$TARGET_DIR/dist-venv/bin:$PATH"
# libsqlite3-sys asks pkg-config for a system SQLite even for a loadable extension, which links
# none; zig's linker would then look for one in its own sysroot.
export PKG_CONFIG=false
# Stripped by the linker, for both architectures.
export CARGO_PROFILE_RELEASE_STRIP=symbols

mkdir -p "$DIST"
make build guest-aarch64
for arch in x86_64 aarch64; do
  JSBOX_GUEST_DIR=$(guest_dir "$arch") cargo-zigbuild build --release -p jsbox --target "$arch-unknown-linux-gnu.$GLIBC"
  out=$DIST/loadable/linux-$arch
  mkdir -p "$out"
  cp "$TARGET_DIR/$arch-unknown-linux-gnu/release/libjsbox.so" "$out/jsbox0.so"
  python3 packaging/check_artifact.py "$out/jsbox0.so" "$arch"
done

# The crates.io package of the library (sqlite-jsbox, with jsbox-abi): the guest precompiled for
# both architectures travels inside it (ext/prebuilt/, picked by build.rs for the target).
for arch in x86_64 aarch64; do
  from=$(guest_dir "$arch")
  mkdir -p "ext/prebuilt/$arch"
  cp "$from/guest.cwasm" "$from/guest.bounded.cwasm" "$from/guest.target" "ext/prebuilt/$arch/"
done
# What `cargo publish` would upload, each package built from its own packaged sources. Cargo
# unpacks the packages of its temporary registry into CARGO_HOME by name and version, and reuses
# what an earlier `make dist` unpacked there: remove those copies of jsbox's own crates first.
unset CARGO_PROFILE_RELEASE_STRIP PKG_CONFIG
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$cargo_home"/registry/src/-*/jsbox-abi-* "$cargo_home"/registry/src/-*/sqlite-jsbox-* \
  "$cargo_home"/registry/cache/-*/jsbox-abi-* "$cargo_home"/registry/cache/-*/sqlite-jsbox-*
cargo publish --dry-run --allow-dirty -p jsbox-abi -p sqlite-jsbox
cargo package --no-verify --allow-dirty -p jsbox-abi -p sqlite-jsbox
mkdir -p "$DIST/crates"
cp "$TARGET_DIR/package/jsbox-abi-"*.crate "$TARGET_DIR/package/sqlite-jsbox-"*.crate "$DIST/crates/"

python3 packaging/dist.py "$DIST"
