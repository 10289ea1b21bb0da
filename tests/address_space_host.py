"""jsbox in a Python host whose address space is capped at 1 GiB (as `ulimit -v` does in
containers, shared hosting and HPC): sandboxes are allocated on demand, and a host that opens
more connections, each holding a plugin's world, than its address space holds gets a clear error
for the connection that does not fit, never a crash; the address space comes back when
connections close, and threads computing at the same time get exact results.

Run by tests/address_space.rs with Debian's /usr/bin/python3 and the extension's path; prints
`N passed, N failed` last."""

import json
import math
import resource
import sqlite3
import sys
import threading

from host_checks import Checks

CAP = 1 << 30
# Set before the extension is loaded: it measures the address space when it starts.
resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

extension = sys.argv[1]
REFUSED = "the system refused the sandbox more memory (mmap failed"
# More than 1 GiB holds: each connection keeps a sandbox of ~18 MiB of address space.
MAX_CONNECTIONS = 200
checks = Checks(verbose=True)
check = checks.check


def connect():
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.enable_load_extension(True)
    conn.load_extension(extension)
    return conn


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

# Connections until one does not fit: each keeps its scalar plugin's world.
conns, refusal = [], None
for i in range(MAX_CONNECTIONS):
    conn = connect()
    try:
        conn.execute("SELECT js_plugins_init()")
        conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('twice', 'scalar', 'function main(x) { return 2 * x }')")
        got = value(conn, "SELECT twice(?)", i)
    except sqlite3.OperationalError as e:
        refusal = str(e)
        conn.close()
        break
    if got != 2 * i:
        check(f"connection {i} computes", False, got)
    conns.append(conn)
check("the address space runs out before 200 connections", refusal is not None, f"after {len(conns)} connections")
check("the connection that does not fit gets the system's refusal", refusal is not None and REFUSED in refusal, refusal)
check("connections that fit compute", len(conns) > 10, f"{len(conns)} connections")
check("those before it still compute", all(value(c, "SELECT twice(21)") == 42 for c in conns), "twice(21)")

# Closing connections gives their sandboxes' address space back.
for conn in conns[len(conns) // 2 :]:
    conn.close()
conns = conns[: len(conns) // 2]
again = connect()
again.execute("SELECT js_plugins_init()")
again.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('twice', 'scalar', 'function main(x) { return 2 * x }')")
check("after closing half, a new connection computes", value(again, "SELECT twice(21)") == 42, "twice(21)")

# A sandbox that may grow past what the process can map.
again.execute("SELECT js_config('memory_limit_mb', 4096)").fetchone()
again.execute("SELECT js_config('time_limit_ms', 20000)").fetchone()
message = error(again, "SELECT js_eval('const a = []; for (;;) a.push(new Array(1e6).fill(1.5))')")
check("growth past the address space is the system's refusal", message.startswith("js_eval: " + REFUSED), message)
check("and the connection goes on", value(again, "SELECT js_eval('6 * 7')") == 42, "6 * 7")

# Threads computing at once, each on its own connection (and its thread's stack).
for conn in conns + [again, first]:
    conn.close()
POINTS = [(-33.9 + i * 0.0009, 151.2 + i * 0.0011) for i in range(500)]


def distance(lat0, lon0, lat1, lon1):
    if lat0 == lat1 and lon0 == lon1:
        return 0.0
    r0, r1, t = math.radians(lat0), math.radians(lat1), math.radians(lon0 - lon1)
    d = min(1.0, math.sin(r0) * math.sin(r1) + math.cos(r0) * math.cos(r1) * math.cos(t))
    return math.degrees(math.acos(d)) * 60 * 1853.159


expected = sum(distance(*POINTS[i], *POINTS[i - 1]) for i in range(1, len(POINTS)))
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
