"""jsbox at the very end of a capped address space: a Python process capped at 512 MiB maps
almost all of it before it loads jsbox, leaving a few MiB (one child process per amount left).
There, loading and each call either work or fail with an error naming the function (never a
crash, never a panic's text), and once the process unmaps what it held, jsbox works again in
that process: the epoch thread that could not start, and the thread set-up that could not map its
signal stack, are tried again.

Run by tests/address_space.rs with Debian's /usr/bin/python3 and the extension's path; prints
`N passed, N failed` last."""

import json
import mmap
import resource
import sqlite3
import subprocess
import sys
import threading

from host_checks import Checks

CAP = 512 << 20
# Pages left to the process when jsbox loads: from too few to run anything to enough.
LEFT_PAGES = [1000, 2000, 3000, 3500, 4000, 5000, 6000, 8000, 12000]
AGGREGATE = "function init() { return 0 } function step(s, x) { return s + x } function final(s) { return s }"


def child(extension, left_pages):
    """Maps all but `left_pages` of the capped address space, then uses jsbox; prints a JSON
    object of what each step gave."""
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))
    held = []
    for size in (64 << 20, 1 << 20, 4096):
        while True:
            try:
                held.append(mmap.mmap(-1, size))
            except OSError:
                break
    # Give back one 64 MiB mapping, less what is to stay free.
    big = next(m for m in reversed(held) if len(m) == 64 << 20)
    held.remove(big)
    big.close()
    filler = mmap.mmap(-1, (64 << 20) - left_pages * 4096)
    results = {}
    conn = sqlite3.connect(":memory:", check_same_thread=False)

    def attempt(key, sql, *args):
        try:
            results[key] = conn.execute(sql, args).fetchone()[0]
        except sqlite3.OperationalError as e:
            results[key] = "error: " + str(e)

    def load(key):
        try:
            conn.enable_load_extension(True)
            conn.load_extension(extension)
            results[key] = "loaded"
        except sqlite3.OperationalError as e:
            results[key] = "error: " + str(e)

    load("load")
    attempt("plugins", "SELECT js_plugins_init()")
    try:
        conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('summed', 'aggregate', ?)", (AGGREGATE,))
        results["insert"] = "inserted"
    except sqlite3.OperationalError as e:
        results["insert"] = "error: " + str(e)
    attempt("eval", "SELECT js_eval('1 + 1')")
    attempt("aggregate", "SELECT summed(value) FROM json_each('[1, 2, 3]')")
    # Give the address space back, and try everything again.
    filler.close()
    for m in held[: len(held) // 2]:
        m.close()
    if results["load"] != "loaded":
        load("load again")
        attempt("plugins again", "SELECT js_plugins_init()")
    if results["insert"] != "inserted":
        try:
            conn.execute("INSERT OR REPLACE INTO js_plugins(name, kind, source) VALUES ('summed', 'aggregate', ?)", (AGGREGATE,))
        except sqlite3.OperationalError as e:
            results["insert again"] = "error: " + str(e)
    attempt("eval after", "SELECT js_eval('1 + 1')")
    attempt("aggregate after", "SELECT summed(value) FROM json_each('[1, 2, 3]')")

    def other_thread():
        attempt("other thread after", "SELECT js_eval('6 * 7')")

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    print(json.dumps(results), flush=True)


def clean(value, expected):
    """A step's result is its expected value (any, where none is expected), or an error that
    names a function or file and is not a panic."""
    if isinstance(value, str) and value.startswith("error: "):
        return "panic" not in value and ": " in value[len("error: "):]
    return expected is None or value == expected


def main(extension):
    checks = Checks(verbose=True)
    for left in LEFT_PAGES:
        run = subprocess.run([sys.executable, __file__, extension, "child", str(left)], capture_output=True, text=True, timeout=120)
        name = f"{left} pages left"
        if run.returncode != 0:
            checks.check(name, False, f"exit {run.returncode}: {run.stderr.strip()[-300:]} {run.stdout.strip()[-300:]}")
            continue
        results = json.loads(run.stdout.strip().splitlines()[-1])
        expected = {"eval": 2, "aggregate": 6, "eval after": 2, "aggregate after": 6, "other thread after": 42}
        before = all(clean(v, expected.get(k)) for k, v in results.items() if "after" not in k)
        after = (results["eval after"], results["aggregate after"], results["other thread after"]) == (2, 6, 42)
        checks.check(name, before and after and not run.stderr.strip(), json.dumps(results) + run.stderr.strip()[-300:])
    checks.finish()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "child":
        child(sys.argv[1], int(sys.argv[3]))
    else:
        main(sys.argv[1])
