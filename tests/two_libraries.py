"""Two SQLite libraries in one process (APSW's bundled SQLite beside Python's own): jsbox serves
the first one it is loaded by and refuses the second with a clear error, instead of driving one
library's connections through the other's functions (which crashed the process).

Run by tests/attacks.rs with the APSW venv's Python (a venv of Debian's python3, so its sqlite3
module loads extensions): `two_libraries.py EXTENSION apsw-first|sqlite3-first`. Prints
`N passed, N failed`."""

import sqlite3
import sys

import apsw

from host_checks import Checks

extension, order = sys.argv[1], sys.argv[2]
checks = Checks()
check = checks.check
REFUSED = "jsbox is already loaded into another SQLite library in this process"


def load_apsw():
    conn = apsw.Connection(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(extension)
    return conn


def load_sqlite3():
    conn = sqlite3.connect(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(extension)
    return conn


def store_and_call(conn, execute):
    execute("SELECT js_plugins_init()")
    execute("INSERT INTO js_plugins(name, kind, source) VALUES ('twice', 'scalar', 'function main(x) { return x * 2 }')")
    return execute("SELECT twice(21)")


first, second = (load_apsw, load_sqlite3) if order == "apsw-first" else (load_sqlite3, load_apsw)
conn = first()
if order == "apsw-first":
    execute = lambda sql: list(conn.execute(sql))
else:
    execute = lambda sql: conn.execute(sql).fetchall()
check("the first library computes", store_and_call(conn, execute) == [(42,)])
try:
    second()
    check("the second library is refused", False, "it loaded")
except Exception as e:  # sqlite3.OperationalError or apsw.ExtensionLoadingError
    check("the second library is refused", REFUSED in str(e), str(e))
check("the first library still computes", execute("SELECT twice(4)") == [(8,)])
check("and still changes limits", execute("SELECT js_config('time_limit_ms', 500)") == [(500,)])
checks.finish()
