# Sourced by the install scripts (install-deps.sh, install-dist-deps.sh, tests/dist/run.sh):
# installers that do nothing when what they install is there already.

# ensure_debian_packages LABEL PACKAGE...: installs the Debian packages that are missing.
ensure_debian_packages() {
  local label=$1 package sudo=""
  shift
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  echo "$label: installing ${missing[*]}"
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_rust_target LABEL TRIPLE: adds rustup's standard library for TRIPLE.
ensure_rust_target() {
  rustup target list --installed | grep -qx "$2" && return 0
  echo "$1: adding the $2 target"
  rustup target add "$2"
}

# ensure_rust_component LABEL COMPONENT: adds a rustup component (rustfmt, clippy).
ensure_rust_component() {
  rustup component list --installed | grep -q "^$2" && return 0
  echo "$1: adding the $2 component"
  rustup component add "$2"
}
