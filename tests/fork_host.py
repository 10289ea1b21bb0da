"""jsbox after fork(): the process-wide epoch thread that enforces time limits does not survive
fork() (only the forking thread does), so the extension must start a new one in the child.

Run by tests/process.rs with Debian's /usr/bin/python3 (its sqlite3 module can load extensions)
and the extension's path; prints one line per check and `N passed, N failed` last. Every child is
killed after CHILD_TIMEOUT seconds, which fails its case: a time limit that never fires must not
hang the suite."""

import json
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time

import host_checks
from host_checks import Checks

extension = sys.argv[1]
CHILD_TIMEOUT = 20
LIMIT_MS = 200
EXPECTED = f"js_eval: time limit of {LIMIT_MS} ms exceeded"
# A spinning call must end within this many seconds (its limit is 0.2 s).
PROMPTLY = 5
checks = Checks(verbose=True)
check = checks.check


def connect():
    return host_checks.connect(extension)


def spin(conn, limit_ms=LIMIT_MS):
    """A call that only a time limit stops: (its error message, seconds it took)."""
    conn.execute(f"SELECT js_config('time_limit_ms', {limit_ms})").fetchone()
    started = time.monotonic()
    try:
        conn.execute("SELECT js_eval('while (true) {}')").fetchone()
        message = "the call returned"
    except sqlite3.OperationalError as e:
        message = str(e)
    return message, time.monotonic() - started


def spin_result(name, conn):
    """A check, as a (name, ok, detail) triple, that a spinning call stops at its limit."""
    message, took = spin(conn)
    return (name, message == EXPECTED and took < PROMPTLY, f"{message} after {took:.2f} s")


def value(conn, sql):
    return conn.execute(sql).fetchone()[0]


def draw(conn):
    return value(conn, "SELECT js_eval('Math.random()')")


def in_child(name, body):
    """Runs body() -> [(name, ok, detail)] in a forked child and records its checks; kills the
    child (a failed check) when it runs longer than CHILD_TIMEOUT. Returns the pid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            results = body()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            results = [("raised", False, repr(e))]
        os.write(w, json.dumps(results).encode())
        os._exit(0)
    os.close(w)
    return pid, r


def wait_child(name, pid, r):
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            check(f"{name}: the child finishes", False, f"killed after {CHILD_TIMEOUT} s: a time limit never fired")
            return []
        time.sleep(0.02)
    with os.fdopen(r) as pipe:
        data = pipe.read()
    check(f"{name}: the child exits normally", os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"status {status}")
    results = json.loads(data or "[]")
    for case, ok, detail in results:
        check(f"{name}: {case}", ok, detail)
    return results


# The parent makes calls first, so that its epoch thread exists (and is the one fork leaves
# behind), and a spinning call stops at its limit here.
conn = connect()
check("parent: a call", value(conn, "SELECT js_eval('1 + 1')") == 2)
check(*spin_result("parent: time limit", conn))


def child():
    results = [("first draw", True, draw(conn))]
    results.append(spin_result("inherited connection: time limit", conn))
    fresh = connect()
    results.append(spin_result("new connection: time limit", fresh))
    results.append(("new connection: a call", value(fresh, "SELECT js_eval('6 * 7')") == 42, ""))
    # After a second without calls the epoch thread parks; the next call wakes the child's own.
    time.sleep(1.5)
    results.append(spin_result("after the epoch thread idled: time limit", fresh))

    # A grandchild: a second fork, from a process whose epoch thread was itself restarted.
    def grandchild():
        return [spin_result("inherited connection: time limit", conn), spin_result("new connection: time limit", connect())]

    pid, r = in_child("grandchild", grandchild)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            results.append(("grandchild finishes", False, f"killed after {CHILD_TIMEOUT} s"))
            return results
        time.sleep(0.02)
    with os.fdopen(r) as pipe:
        results += [(f"grandchild: {n}", ok, d) for n, ok, d in json.loads(pipe.read() or "[]")]
    return results


pid, r = in_child("child", child)
# The parent's first draw after the fork: the same seed as the child's would repeat its numbers.
parent_draw = draw(conn)
child_draw = dict((n, d) for n, _, d in wait_child("child", pid, r)).get("first draw")
check("parent and child draw different numbers after the fork", child_draw is not None and child_draw != parent_draw, f"{parent_draw} and {child_draw}")


def busy_parent_child():
    return [
        spin_result("new connection: time limit", connect()),
        spin_result("inherited connection: time limit", conn),
    ]


# Fork while another thread of the parent is inside a call (spinning under a 3 s limit): the
# child has no such thread, and its calls are still timed.
busy = connect()
spinning = {}
spinner = threading.Thread(target=lambda: spinning.update(result=spin(busy, 3000)))
spinner.start()
time.sleep(0.5)
pid, r = in_child("fork during a call", busy_parent_child)
wait_child("fork during a call", pid, r)
spinner.join()
message, took = spinning["result"]
check("fork during a call: the parent's call", message == "js_eval: time limit of 3000 ms exceeded", f"{message} after {took:.2f} s")


def worker(i):
    """A multiprocessing worker: a spinning call on the connection inherited from the parent and
    on one of its own."""
    inherited = spin(conn)
    own = spin(connect())
    return i, inherited, own


context = multiprocessing.get_context("fork")
pool = context.Pool(2)
try:
    results = pool.map_async(worker, range(4)).get(timeout=CHILD_TIMEOUT * 2)
    for i, inherited, own in results:
        for which, (message, took) in (("inherited", inherited), ("own", own)):
            check(f"multiprocessing worker {i}: {which} connection: time limit", message == EXPECTED and took < PROMPTLY, f"{message} after {took:.2f} s")
except multiprocessing.TimeoutError:
    check("multiprocessing workers finish", False, f"no result after {CHILD_TIMEOUT * 2} s: a time limit never fired")
finally:
    pool.terminate()
    pool.join()


def process_target(queue):
    queue.put(spin(connect()))


queue = context.Queue()
process = context.Process(target=process_target, args=(queue,))
process.start()
process.join(CHILD_TIMEOUT)
if process.is_alive():
    process.kill()
    process.join()
    check("multiprocessing.Process: time limit", False, f"killed after {CHILD_TIMEOUT} s")
else:
    message, took = queue.get()
    check("multiprocessing.Process: time limit", message == EXPECTED and took < PROMPTLY, f"{message} after {took:.2f} s")

checks.finish()
