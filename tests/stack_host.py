"""jsbox in Python threads with small native stacks (threading.stack_size): the guest may use
512 KiB of native stack, more than such a thread has; runaway recursion must be a "stack
overflow" error, never a crash of the Python process.

Run by tests/process.rs with Debian's /usr/bin/python3 and the extension's path; prints one line
per check and `N passed, N failed` last."""

import sqlite3
import sys
import threading

import host_checks
from host_checks import Checks

extension = sys.argv[1]
DEEP = "function f(n) { return n ? f(n - 1) + 1 : 0 } f(1e6)"
checks = Checks(verbose=True)
check = checks.check


def error_of(conn, sql):
    try:
        return f"returned {conn.execute(sql).fetchone()[0]!r}"
    except sqlite3.OperationalError as e:
        return str(e)


def cases(label):
    conn = host_checks.connect(extension)
    conn.execute("SELECT js_plugins_init()").fetchone()
    conn.execute(
        "INSERT INTO js_plugins(name, kind, source) VALUES ('deep', 'scalar', "
        "'function main(n){ function f(n){return n ? f(n-1)+1 : 0} return f(n) }')"
    )
    for sql, expected in [
        (f"SELECT js_eval('{DEEP}')", "js_eval: stack overflow"),
        ("SELECT js_eval('function f(n) { Date.now(); return n ? f(n - 1) + 1 : 0 } f(1e6)')", "js_eval: stack overflow"),
        ("SELECT deep(1000000)", "deep: stack overflow"),
    ]:
        message = error_of(conn, sql)
        check(f"{label}: {sql}", message.startswith(expected), message)
    for sql, expected in [
        ("SELECT js_eval('6 * 7')", 42),
        ("SELECT deep(100)", 100),
        ("SELECT js_eval('function f(n) { return n ? f(n - 1) + 1 : 0 } f(150)')", 150),
    ]:
        got = conn.execute(sql).fetchone()[0]
        check(f"{label}: {sql}", got == expected, repr(got))


for kib in (256, 128):
    threading.stack_size(kib * 1024)
    thread = threading.Thread(target=cases, args=(f"a {kib} KiB thread",))
    thread.start()
    thread.join()
threading.stack_size(0)
cases("the main thread")

checks.finish()
