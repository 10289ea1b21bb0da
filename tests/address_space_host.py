"""jsbox in a Python host whose address space is capped at 1 GiB (as `ulimit -v` does in
containers, shared hosting and HPC): sandboxes are allocated on demand, as many as fit in half of
the address space; more connections with plugins than that all compute (kept worlds are bounded
in the process), statements that hold every sandbox make the next call fail clearly until they
finish, a sandbox that grows past the address space gets the system's refusal, and threads
computing at the same time get exact results.

Run by tests/address_space.rs with Debian's /usr/bin/python3 and the extension's path; prints
`N passed, N failed` last."""

import json
import resource
import sqlite3
import sys
import threading

import host_checks
from host_checks import Checks

CAP = 1 << 30
# Set before the extension is loaded: it measures the address space when it starts.
resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

extension = sys.argv[1]
REFUSED = "the system refused the sandbox more memory (mmap failed"
# More connections than the process may hold sandboxes (~25 under 1 GiB).
MAX_CONNECTIONS = 100
checks = Checks(verbose=True)
check = checks.check


def connect():
    return host_checks.connect(extension)


def value(conn, sql, *args):
    return conn.execute(sql, args).fetchone()[0]


def error(conn, sql, *args):
    try:
        conn.execute(sql, args).fetchone()
        return "no error"
    except sqlite3.OperationalError as e:
        return str(e)


first = connect()
debug = json.loads(value(first, "SELECT js_debug()"))
check("on demand", (debug["allocator"], debug["memory_placement"]) == ("on-demand", "bounded"), debug["allocator"])

most = debug["sandboxes_max"]
check("the process may hold some sandboxes, not a pool's thousand", 10 <= most < 1000, f"sandboxes_max {most}")

# More connections than the process may hold sandboxes, each calling a scalar plugin: worlds are
# kept up to half of the process's most, the others computed in fresh worlds; all compute.
conns = []
for i in range(MAX_CONNECTIONS):
    conn = connect()
    conn.execute("SELECT js_plugins_init()")
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('twice', 'scalar', 'function main(x) { return 2 * x }')")
    conns.append(conn)
wrong = [i for i, conn in enumerate(conns) for x in (i, i + 1) if value(conn, "SELECT twice(?)", x) != 2 * x]
check(f"{MAX_CONNECTIONS} connections with a plugin each compute", not wrong, f"wrong in {wrong[:5]}")
kept = sum(json.loads(value(conn, "SELECT js_debug() ->> 'plugins'"))["kept_worlds"] for conn in conns)
check("the worlds kept in the process are at most half of its most", 0 < kept <= most // 2, f"{kept} kept, most {most}")

# Statements that hold sandboxes open (aggregate groups) take what the process may hold: the
# next one gets a clear error, and once they finish, it computes.
# A window function's partition keeps its world until the partition's last row is read.
tally = "function init() { return 0 } function step(s) { return s + 1 } function inverse(s) { return s - 1 } function final(s) { return s }"
columns = ", ".join(f"tally(value + {i}) OVER w" for i in range(debug["connection_sandboxes_max"] - 1))
holding = f"SELECT {columns} FROM (SELECT 1 AS value UNION ALL SELECT 2) WINDOW w AS (ORDER BY value ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
for conn in conns[:8]:
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('tally', 'window', ?)", (tally,))
holders, refusal = [], None
for conn in conns[:8]:
    try:
        cursor = conn.execute(holding)
        cursor.fetchone()
        holders.append(cursor)
    except sqlite3.OperationalError as e:
        refusal = str(e)
        break
check("a statement past the process's most is refused", refusal is not None and refusal.startswith("tally: too many sandboxes in use at once in this process"), f"{refusal} after {len(holders)} statements")
for cursor in holders:
    cursor.fetchall()
check("and computes once the others finish", conns[len(holders)].execute(holding).fetchall() == [(2,) * (holding.count("tally("))] * 2, "tally")
for conn in conns:
    conn.close()

again = connect()
# A sandbox that may grow past what the process can map.
again.execute("SELECT js_config('memory_limit_mb', 4096)").fetchone()
again.execute("SELECT js_config('time_limit_ms', 20000)").fetchone()
message = error(again, "SELECT js_eval('const a = []; for (;;) a.push(new Array(1e6).fill(1.5))')")
check("growth past the address space is the system's refusal", message.startswith("js_eval: " + REFUSED), message)
check("and the connection goes on", value(again, "SELECT js_eval('6 * 7')") == 42, "6 * 7")

# Threads computing at once, each on its own connection (and its thread's stack).
for conn in (again, first):
    conn.close()
POINTS = [(-33.9 + i * 0.0009, 151.2 + i * 0.0011) for i in range(500)]


expected = sum(host_checks.seed_distance(*POINTS[i], *POINTS[i - 1]) for i in range(1, len(POINTS)))
LENGTH = """function distance(lat0, lon0, lat1, lon1) {
  if (lat0 == lat1 && lon0 == lon1) return 0;
  const r0 = Math.PI * lat0 / 180, r1 = Math.PI * lat1 / 180, t = Math.PI * (lon0 - lon1) / 180;
  let d = Math.sin(r0) * Math.sin(r1) + Math.cos(r0) * Math.cos(r1) * Math.cos(t);
  if (d > 1) d = 1;
  return Math.acos(d) * 180 / Math.PI * 60 * 1853.159;
}
function init() { return { lat: null, lon: null, m: 0 }; }
function step(s, lat, lon) { if (s.lat !== null) s.m += distance(lat, lon, s.lat, s.lon); s.lat = lat; s.lon = lon; return s; }
function final(s) { return s.m; }"""
results = {}


def worker(t):
    try:
        conn = connect()
        conn.execute("SELECT js_plugins_init()")
        conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('track_length', 'aggregate', ?)", (LENGTH,))
        conn.execute("CREATE TABLE p(seq INTEGER PRIMARY KEY, lat REAL, lon REAL)")
        conn.executemany("INSERT INTO p(lat, lon) VALUES (?, ?)", POINTS)
        results[t] = [value(conn, "SELECT track_length(lat, lon) FROM (SELECT * FROM p ORDER BY seq)") for _ in range(5)]
        conn.close()
    except sqlite3.OperationalError as e:
        results[t] = str(e)


threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
exact = [t for t, r in results.items() if isinstance(r, list) and all(abs(x - expected) <= 1e-6 * expected for x in r)]
check("8 threads at once compute the track's length", len(exact) == 8, f"{results if len(exact) != 8 else len(exact)} vs {expected}")

checks.finish()
