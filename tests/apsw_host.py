"""jsbox inside APSW, whose wheel bundles a current SQLite (newer than Debian's 3.40): the
extension loads, computes, and sqlite3_interrupt() stops a running call, which needs
sqlite3_is_interrupted (3.41+) reached through that library's own API table.

Run by tests/clients.rs with the venv that `make deps` prepares; prints `N passed, N failed`."""

import sys
import threading
import time

import apsw

from host_checks import Checks

extension = sys.argv[1]
checks = Checks(verbose=False)
check = checks.check


conn = apsw.Connection(":memory:")
conn.enable_load_extension(True)
conn.load_extension(extension)
cur = conn.cursor()

value = cur.execute("SELECT js_eval('data.a * 2', '{\"a\": 21}')").fetchone()[0]
check("js_eval computes", value == 42, value)

sqlite = cur.execute("SELECT js_debug() ->> '$.sqlite'").fetchone()[0]
check("js_debug reports APSW's SQLite", sqlite == apsw.sqlite_lib_version(), f"{sqlite} vs {apsw.sqlite_lib_version()}")
interrupt = cur.execute("SELECT js_debug() ->> '$.interrupt'").fetchone()[0]
check("interrupt is available", interrupt == "available", interrupt)

cur.execute("SELECT js_config('time_limit_ms', 60000)")
threading.Timer(0.3, conn.interrupt).start()
started = time.monotonic()
try:
    cur.execute("SELECT js_eval('while (true) {}')").fetchall()
    check("an interrupt stops the call", False, "the call returned")
except apsw.InterruptError as e:
    took = time.monotonic() - started
    check("an interrupt stops the call", took < 5, f"after {took:.1f} s: {e}")

value = cur.execute("SELECT js_eval('1 + 1')").fetchone()[0]
check("the connection answers afterwards", value == 2, value)

checks.finish()
