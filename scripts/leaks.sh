#!/usr/bin/env bash
# `make leaks`: the lifetime tests (tests/lifetime.rs: connections closed mid-aggregate,
# statements never finalized, the extension loaded twice and into many connections) under
# valgrind's leak checker. Fails on any definite leak or memory error.
#
# valgrind cannot map the pooling allocator's default address space (1000 slots x 4 GiB), so the
# pool is shrunk for the run with JSBOX_POOL_SLOTS.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "leaks: valgrind is missing (make deps installs it)"; exit 1; }
binary=$(cargo test --release -p jsbox-tests --test lifetime --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "lifetime":
        print(m["executable"])')
echo "leaks: valgrind on $binary"
JSBOX_POOL_SLOTS=4 valgrind --quiet --suppressions=scripts/valgrind.supp --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
  "$binary" --test-threads=1
echo "leaks: no definite or indirect leaks, no memory errors"
