#!/usr/bin/env python3
"""Names the guest's functions in a `perf record` profile of a process that loaded libjsbox.so.

The guest's code runs in place from the bytes embedded in the library (ext/src/code_memory.rs),
so perf attributes its samples to `GUEST_CWASM` in libjsbox.so. The precompiled guest
(target/jsbox/guest.cwasm) is an ELF file whose symbol table names every function
(`wasm[0]::function[N]::name`): this maps each sample to it through the executable mapping of
that text, which perf recorded, and prints the hottest symbols, the guest's prefixed `G:`.

    perf record -F 9999 -o /tmp/w4.perf sqlite3 db.sqlite < workload.sql
    scripts/perf-guest.py /tmp/w4.perf [how many lines, 50]

Run it against the library and guest of the same build as the profile (docs/performance.md).
"""

import bisect
import collections
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "target/release/libjsbox.so"
GUEST = ROOT / "target/jsbox/guest.cwasm"
# Where the text section starts in the precompiled guest (page-aligned, after the headers).
TEXT_OFFSET = 0x1000


def symbols(path, *flags):
    out = subprocess.run(["nm", *flags, str(path)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split(" ", 2)
        # Undefined symbols have no address.
        if len(parts) == 3 and parts[0]:
            yield int(parts[0], 16), parts[2]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 50
    embedded = next(addr for addr, name in symbols(LIBRARY, "-C") if "GUEST_CWASM" in name)
    guest = sorted(symbols(GUEST, "-n"))
    starts = [addr for addr, _ in guest]
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "ip,dso,sym", "--show-mmap-events"], capture_output=True, text=True, check=True
    ).stdout
    text_at = text_len = None
    counts, total, in_guest = collections.Counter(), 0, 0
    for line in script.splitlines():
        mapping = re.search(r"\[0x([0-9a-f]+)\(0x([0-9a-f]+)\) @ 0x([0-9a-f]+) .*r-xp .*libjsbox\.so", line)
        if mapping and int(mapping.group(3), 16) == embedded + TEXT_OFFSET:
            text_at, text_len = int(mapping.group(1), 16), int(mapping.group(2), 16)
            continue
        sample = re.match(r"\s*([0-9a-f]+)\s+(.*)\((.*)\)$", line)
        if not sample:
            continue
        ip, sym, dso = int(sample.group(1), 16), sample.group(2).strip(), sample.group(3)
        total += 1
        if text_at is not None and text_at <= ip < text_at + text_len:
            i = bisect.bisect_right(starts, ip - text_at) - 1
            name = guest[i][1] if i >= 0 else "?"
            counts["G:" + re.sub(r"^wasm\[0\]::function\[\d+\]::", "", name)] += 1
            in_guest += 1
        else:
            counts[f"{(sym or '?')[:80]} [{dso.rsplit('/', 1)[-1]}]"] += 1
    if not total:
        sys.exit("no samples")
    print(f"{total} samples, {100 * in_guest / total:.1f} % in the guest")
    for name, count in counts.most_common(top):
        print(f"{100 * count / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()
