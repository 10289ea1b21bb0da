//! `make bench` / `make bench-quick`: jsbox side by side with sqlite-js (QuickJS linked natively
//! into SQLite, no sandbox) and plain SQL, in ONE `sqlite3` process: both extensions are loaded
//! into the same SQLite library, and the workloads run interleaved, round after round, timed by
//! the shell's own `.timer`. Prints one table and writes `target/bench/results.json`.
//!
//! The data (`target/bench/tracks-<rows>.db`) is generated deterministically by SQL and cached:
//! `track_points(track_fid, seq, lon, lat, ele, feature)`, 1000 points per track.
//! sqlite-js comes from the npm registry (`npm pack`) into `target/peers/`; without npm the
//! table has no sqlite-js column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsbox_bench::sql::{self, repo, Workload};
use jsbox_bench::stats::{loadavg, stat, Stat};

const SQLITE_JS_PACKAGE: &str = "@sqliteai/sqlite-js-linux-x86_64@1.3.3";

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rows: u64 = if quick { 10_000 } else { 1_000_000 };
    let rounds = if quick { 3 } else { 5 };
    let target = repo().join("target");
    let bench_dir = target.join("bench");
    std::fs::create_dir_all(&bench_dir).unwrap();
    let jsbox = std::env::var("JSBOX_EXT").unwrap_or_else(|_| target.join("release/libjsbox").display().to_string());
    let sqlite_js = fetch_sqlite_js(&target.join("peers"));
    let db = ensure_data(&bench_dir, rows);
    let seed = repo().join("../shared/fixtures/seed_track_points.json");

    let load_before = loadavg();
    let workloads = sql::workloads(rows, sqlite_js.is_some());
    let script = sql::script(&workloads, rounds, &jsbox, sqlite_js.as_deref(), &seed);
    let timings = run_shell(&db, &script);
    let process = process_startup(&jsbox, sqlite_js.as_deref(), if quick { 10 } else { 20 });
    let load_after = loadavg();

    report(&workloads, &timings, &process, rows, rounds, &load_before, &load_after, &bench_dir);
}

/// `npm pack`s sqlite-js into `dir` once; `None` (and a note) when npm cannot.
fn fetch_sqlite_js(dir: &Path) -> Option<String> {
    let lib = dir.join("package/js.so");
    if !lib.exists() {
        std::fs::create_dir_all(dir).unwrap();
        let packed = Command::new("npm")
            .args(["pack", SQLITE_JS_PACKAGE, "--pack-destination"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output();
        let tarball = match packed {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or("").to_owned(),
            Ok(out) => {
                eprintln!("bench: npm pack {SQLITE_JS_PACKAGE} failed, running without sqlite-js: {}", String::from_utf8_lossy(&out.stderr).trim());
                return None;
            }
            Err(e) => {
                eprintln!("bench: npm is not available ({e}), running without sqlite-js");
                return None;
            }
        };
        let ok = Command::new("tar").arg("xzf").arg(dir.join(&tarball)).arg("-C").arg(dir).status().is_ok_and(|s| s.success());
        if !ok || !lib.exists() {
            eprintln!("bench: could not unpack {tarball}, running without sqlite-js");
            return None;
        }
    }
    Some(lib.with_extension("").display().to_string())
}

/// Generates (once) the benchmark database of `rows` points.
fn ensure_data(dir: &Path, rows: u64) -> PathBuf {
    let db = dir.join(format!("tracks-{rows}.db"));
    if db.exists() {
        return db;
    }
    let partial = db.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let started = Instant::now();
    let out = Command::new("/usr/bin/sqlite3").arg(&partial).arg(sql::generate(rows)).output().unwrap();
    assert!(out.status.success(), "generating the data: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&partial, &db).unwrap();
    eprintln!("bench: generated {} in {:.1?}", db.display(), started.elapsed());
    db
}

/// Runs the script in one sqlite3 process; returns, per statement tag, the wall times.
fn run_shell(db: &Path, script: &str) -> HashMap<String, Vec<Duration>> {
    let out = jsbox_bench::run_sqlite3(db, script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && out.stderr.is_empty(), "bench script failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut timings: HashMap<String, Vec<Duration>> = HashMap::new();
    let mut tag: Option<String> = None;
    for line in stdout.lines() {
        if let Some(t) = line.strip_prefix(sql::TAG) {
            tag = Some(t.to_owned());
        } else if let Some(rest) = line.strip_prefix("Run Time: real ") {
            if let Some(t) = tag.take() {
                let secs: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                timings.entry(t).or_default().push(Duration::from_secs_f64(secs));
            }
        }
    }
    timings
}

/// W5: whole processes, `.load` + one call, against bare sqlite3.
fn process_startup(jsbox: &str, sqlite_js: Option<&str>, runs: usize) -> HashMap<&'static str, Vec<Duration>> {
    let mut cases: Vec<(&'static str, Vec<String>)> = vec![
        ("bare", vec![":memory:".into(), "SELECT 1+1".into()]),
        ("jsbox", vec![":memory:".into(), "-cmd".into(), format!(".load {jsbox}"), "SELECT js_eval('1+1')".into()]),
    ];
    if let Some(sjs) = sqlite_js {
        cases.push(("sqlite-js", vec![":memory:".into(), "-cmd".into(), format!(".load {sjs}"), "SELECT js_eval('1+1')".into()]));
    }
    let mut times: HashMap<&'static str, Vec<Duration>> = HashMap::new();
    for _ in 0..runs {
        for (name, args) in &cases {
            let started = Instant::now();
            let out = Command::new("/usr/bin/sqlite3").args(args).output().unwrap();
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            times.entry(name).or_default().push(started.elapsed());
        }
    }
    times
}

fn show(s: Option<Stat>) -> String {
    match s {
        Some(s) => format!("{:.3?} ({:.3?}–{:.3?})", s.median, s.min, s.max),
        None => "—".into(),
    }
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> Option<f64> {
    Some(a?.median.as_secs_f64() / b?.median.as_secs_f64())
}

#[allow(clippy::too_many_arguments)]
fn report(
    workloads: &[Workload],
    timings: &HashMap<String, Vec<Duration>>,
    process: &HashMap<&'static str, Vec<Duration>>,
    rows: u64,
    rounds: usize,
    load_before: &str,
    load_after: &str,
    dir: &Path,
) {
    println!("jsbox bench: {rows} rows, {rounds} interleaved rounds in one sqlite3 process; load average before {load_before}, after {load_after}");
    println!("{:<58} {:>30} {:>30} {:>30} {:>9} {:>9}  goal", "workload", "jsbox", "sqlite-js", "plain SQL", "/sqlite-js", "/plain");
    let mut json_rows = Vec::new();
    let mut emit = |name: &str, unit: &str, j: Option<Stat>, s: Option<Stat>, p: Option<Stat>, goal: &str| {
        let (rs, rp) = (ratio(j, s), ratio(j, p));
        let fmt = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into());
        println!("{:<58} {:>30} {:>30} {:>30} {:>9} {:>9}  {goal}", format!("{name} ({unit})"), show(j), show(s), show(p), fmt(rs), fmt(rp));
        let us = |s: Option<Stat>| s.map(|s| s.median.as_secs_f64() * 1e6);
        json_rows.push(serde_json::json!({
            "workload": name, "unit": unit, "goal": goal,
            "jsbox_us": us(j), "sqlite_js_us": us(s), "plain_sql_us": us(p),
            "jsbox_over_sqlite_js": rs, "jsbox_over_plain": rp,
        }));
    };
    for w in workloads {
        let get = |engine: &str| stat(timings.get(&format!("{}/{engine}", w.id)).map(Vec::as_slice).unwrap_or(&[]), w.per);
        emit(&format!("{} {}", w.id, w.title), w.unit, get("jsbox"), get("sqlite-js"), get("plain"), w.goal);
    }
    let p = |name: &str| stat(process.get(name).map(Vec::as_slice).unwrap_or(&[]), 1);
    emit("W5 whole process: .load + js_eval('1+1')", "per process", p("jsbox"), p("sqlite-js"), p("bare"), "≤ 2.0× sqlite-js");
    let results = serde_json::json!({
        "rows": rows, "rounds": rounds, "load_before": load_before, "load_after": load_after, "workloads": json_rows,
    });
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("written to {}", path.display());
}
