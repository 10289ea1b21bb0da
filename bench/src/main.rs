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
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsbox_bench::chart;
use jsbox_bench::inproc::Job;
use jsbox_bench::sql::{self, repo, Workload};
use jsbox_bench::stats::{loadavg, stat, Stat};

const SQLITE_JS_PACKAGE: &str = "@sqliteai/sqlite-js-linux-x86_64@1.3.3";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let job = Job::from_args(&args[1..]).unwrap_or_else(|| panic!("bad child job: {args:?}"));
        job.run();
        return;
    }
    if let Some(calls) = args.iter().position(|a| a == "--soak").map(|i| args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000))
    {
        std::process::exit(if jsbox_bench::soak::run(&jsbox_testkit::extension_path(), calls) { 0 } else { 1 });
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only = Only::from_args(&args);
    let rows: u64 = if quick { 10_000 } else { 1_000_000 };
    let rounds = args.iter().position(|a| a == "--rounds").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(if quick { 3 } else { 5 });
    let target = repo().join("target");
    let bench_dir = target.join("bench");
    std::fs::create_dir_all(&bench_dir).unwrap();
    let jsbox = jsbox_testkit::extension_path();
    let sqlite_js = fetch_sqlite_js(&target.join("peers"));
    let db = ensure_data(&bench_dir, rows);
    let seed = repo().join("fixtures/seed_track_points.json");

    let load_before = loadavg();
    let mut workloads = sql::workloads(rows, sqlite_js.is_some());
    workloads.retain(|w| only.wants(w.id));
    let script = sql::script(&workloads, rounds, &jsbox, sqlite_js.as_deref(), &seed);
    let timings = if workloads.is_empty() { HashMap::new() } else { run_shell(&db, &script) };
    let process =
        if only.wants("W5") { process_startup(&jsbox, sqlite_js.as_deref(), if quick { 10 } else { 20 }) } else { HashMap::new() };
    let plugin_load = if only.wants("W11") {
        load_with_plugins(&jsbox, &plugins_db(&bench_dir, PLUGIN_ROWS), if quick { 3 } else { 5 })
    } else {
        HashMap::new()
    };
    let capped = if only.wants("W13") { capped_address_space(&db, &workloads, &jsbox, &seed, rounds) } else { HashMap::new() };
    let engines = engines(&jsbox, sqlite_js.as_deref());
    let threads = if only.wants("W7") { threads(&db, &engines, rows, rounds) } else { serde_json::Value::Null };
    let memory = if only.wants("W8") { memory(&db, &engines, &jsbox, sqlite_js.as_deref(), rows) } else { serde_json::Value::Null };
    let load_after = loadavg();
    if !only.all() {
        // A partial run: printed, not written over the full run's results and chart.
        report(&workloads, &timings, &process, &plugin_load, rows, rounds, &load_before, &load_after);
        return;
    }

    let mut results = report(&workloads, &timings, &process, &plugin_load, rows, rounds, &load_before, &load_after);
    results["w13_capped_address_space"] = report_capped(&workloads, &capped);
    results["w7_threads"] = threads;
    results["w8_memory"] = memory;
    let path = bench_dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("written to {}", path.display());
    let chart = bench_dir.join("w9-growth.svg");
    std::fs::write(&chart, growth_chart(&workloads, &timings, rows)).unwrap();
    println!("W9 chart written to {}", chart.display());
}

/// `--only W4,W2a,W5`: the workloads a run is limited to, by id or id prefix (`W9` is every
/// W9 input, `W1` only W1), for comparing one change quickly; a full run has none.
struct Only(Vec<String>);

impl Only {
    fn from_args(args: &[String]) -> Self {
        let list = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
        Only(list.map(|l| l.split(',').map(|id| id.trim().to_owned()).filter(|id| !id.is_empty()).collect()).unwrap_or_default())
    }

    fn all(&self) -> bool {
        self.0.is_empty()
    }

    fn wants(&self, id: &str) -> bool {
        self.all()
            || self.0.iter().any(|want| id == want || (id.starts_with(want.as_str()) && !id[want.len()..].starts_with(char::is_numeric)))
    }
}

/// The engines of this run, with the extension each loads.
fn engines(jsbox: &str, sqlite_js: Option<&str>) -> Vec<(&'static str, Option<String>)> {
    let mut engines = vec![("jsbox", Some(jsbox.to_owned()))];
    if let Some(sjs) = sqlite_js {
        engines.push(("sqlite-js", Some(sjs.to_owned())));
    }
    engines.push(("plain", None));
    engines
}

/// W7: W2b's throughput on two connections in two threads, against one connection, per engine
/// (plain SQL's figure is what this machine's two cores allow).
fn threads(db: &Path, engines: &[(&'static str, Option<String>)], rows: u64, rounds: usize) -> serde_json::Value {
    let tracks = (rows / 1000).min(250);
    println!();
    println!("W7 W2b on {tracks} tracks: two connections on two threads vs one connection (goal: jsbox ≥ 1.8× the throughput)");
    let mut out = serde_json::Map::new();
    for (engine, extension) in engines {
        let job = Job::Threads {
            db: db.display().to_string(),
            extension: extension.clone(),
            setup: sql::functions_sql(engine),
            query: sql::track_lengths_from_features(engine, Some(tracks)),
            rounds,
        };
        let result = job.spawn();
        let seconds = |key: &str| -> Vec<Duration> {
            result[key].as_array().unwrap().iter().map(|v| Duration::from_secs_f64(v.as_f64().unwrap())).collect()
        };
        let (single, dual) = (stat(&seconds("single_s"), 1).unwrap(), stat(&seconds("dual_s"), 1).unwrap());
        let scaling = 2.0 * single.median.as_secs_f64() / dual.median.as_secs_f64();
        println!(
            "  {engine:<10} one connection {:>28}  two threads {:>28}  throughput {scaling:.2}×",
            show(Some(single)),
            show(Some(dual))
        );
        out.insert(
            engine.to_string(),
            serde_json::json!({ "single_s": result["single_s"], "dual_s": result["dual_s"], "throughput_ratio": scaling }),
        );
    }
    out.into()
}

/// W8: resident memory of one sqlite3 shell after W2b, per engine, and of 100 connections that
/// each ran a call (one process per engine).
fn memory(db: &Path, engines: &[(&'static str, Option<String>)], jsbox: &str, sqlite_js: Option<&str>, rows: u64) -> serde_json::Value {
    const CONNECTIONS: usize = 100;
    println!();
    println!("W8 resident memory (goals: jsbox ≤ +3 MiB over plain SQL after W2b; ≤ 200 MiB for {CONNECTIONS} connections)");
    let mut out = serde_json::Map::new();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut plain_after_w2b = None;
    let mut plain_connections = None;
    // Plain SQL first: the others are reported against it.
    for (engine, extension) in engines.iter().rev() {
        let script = format!(
            // The shell's own status: `.system` runs `sh -c`, whose parent is the shell.
            "{}{}\n.print @@status\n.system cat /proc/$PPID/status\n",
            sql::single_engine_setup(engine, jsbox, sqlite_js),
            sql::track_lengths_from_features(engine, None)
        );
        let output = jsbox_bench::run_sqlite3(db, &script);
        assert!(output.status.success(), "W8 {engine}: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let status = stdout.split("@@status").nth(1).unwrap_or("");
        let after_w2b = jsbox_testkit::status_kib(status, "VmRSS:").unwrap_or(0);
        let peak = jsbox_testkit::status_kib(status, "VmHWM:").unwrap_or(0);
        // What the resident memory is: private (heap, sandboxes' memory) or pages mapped from
        // files (code, read-only data: shared with every process that maps them, and dropped
        // rather than swapped under pressure).
        let anon = jsbox_testkit::status_kib(status, "RssAnon:").unwrap_or(0);
        let file = jsbox_testkit::status_kib(status, "RssFile:").unwrap_or(0);
        let call = match *engine {
            "plain" => "SELECT 1 + 1",
            _ => "SELECT js_eval('1 + 1')",
        };
        let many = Job::Connections { extension: extension.clone(), n: CONNECTIONS, query: call.into() }.spawn();
        let many_kib = many["rss_after_kib"].as_u64().unwrap();
        let (plain_w2b, plain_anon, plain_file) = *plain_after_w2b.get_or_insert((after_w2b, anon, file));
        let plain_many = *plain_connections.get_or_insert(many_kib);
        println!(
            "  {engine:<10} after W2b ({rows} rows) {:>7.1} MiB (peak {:>7.1}, {:+.1} over plain: private {:+.1}, mapped from files {:+.1})   {CONNECTIONS} connections {:>7.1} MiB ({:+.1} over plain)",
            mib(after_w2b),
            mib(peak),
            mib(after_w2b) - mib(plain_w2b),
            mib(anon) - mib(plain_anon),
            mib(file) - mib(plain_file),
            mib(many_kib),
            mib(many_kib) - mib(plain_many)
        );
        out.insert(
            engine.to_string(),
            serde_json::json!({
                "after_w2b_mib": mib(after_w2b), "peak_w2b_mib": mib(peak), "over_plain_after_w2b_mib": mib(after_w2b) - mib(plain_w2b),
                "private_over_plain_after_w2b_mib": mib(anon) - mib(plain_anon), "files_over_plain_after_w2b_mib": mib(file) - mib(plain_file),
                "connections": CONNECTIONS, "connections_mib": mib(many_kib), "over_plain_connections_mib": mib(many_kib) - mib(plain_many),
            }),
        );
    }
    out.into()
}

/// W9's chart: the W1 script's time per call against the input's size, and W2b's time per row
/// against the rows.
fn growth_chart(workloads: &[Workload], timings: &HashMap<String, Vec<Duration>>, rows: u64) -> String {
    let median = |id: &str, engine: &str, per: u64| {
        stat(timings.get(&format!("{id}/{engine}")).map(Vec::as_slice).unwrap_or(&[]), per).map(|s| s.median.as_secs_f64())
    };
    let engine_names = [("jsbox", "jsbox"), ("sqlite-js", "sqlite-js"), ("plain", "plain SQL")];
    let mut inputs = Vec::new();
    let mut per_row = Vec::new();
    for (engine, name) in engine_names {
        let mut sizes = Vec::new();
        let mut row_points = Vec::new();
        for w in workloads {
            let Some(t) = median(w.id, engine, w.per) else { continue };
            if let Some(size) = w.id.strip_prefix("W9a-") {
                sizes.push((nominal_bytes(size), t));
            } else if w.id.starts_with("W9b-") {
                row_points.push((w.per as f64, t * w.per as f64));
            } else if w.id == "W2b" {
                row_points.push((rows as f64, t));
            }
        }
        row_points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !sizes.is_empty() {
            inputs.push(chart::Series { name, points: sizes });
        }
        if row_points.len() > 1 {
            per_row.push(chart::Series { name, points: row_points });
        }
    }
    let mut panels = vec![chart::Panel {
        title: "W9a: seed script, time per call by input size".into(),
        x_label: "GeoJSON input (log)",
        x_tick: chart::bytes,
        series: inputs,
    }];
    if !per_row.is_empty() {
        panels.push(chart::Panel {
            title: "W9b: W2b aggregate, time per query by rows".into(),
            x_label: "rows (log)",
            x_tick: chart::count,
            series: per_row,
        });
    }
    chart::svg(&panels)
}

/// "10KB" → 10,000.
fn nominal_bytes(label: &str) -> f64 {
    let (digits, unit) = label.split_at(label.find(|c: char| !c.is_ascii_digit()).unwrap_or(label.len()));
    let scale = match unit {
        "KB" => 1e3,
        "MB" => 1e6,
        _ => 1.0,
    };
    digits.parse::<f64>().unwrap_or(0.0) * scale
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
                eprintln!(
                    "bench: npm pack {SQLITE_JS_PACKAGE} failed, running without sqlite-js: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
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
    timings_of(jsbox_bench::run_sqlite3(db, script))
}

/// Per statement tag, the wall times a shell's `.timer` printed.
fn timings_of(out: std::process::Output) -> HashMap<String, Vec<Duration>> {
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
    time_shells(&cases, runs)
}

/// Runs each case's `/usr/bin/sqlite3` process `runs` times, interleaved: their wall times.
fn time_shells(cases: &[(&'static str, Vec<String>)], runs: usize) -> HashMap<&'static str, Vec<Duration>> {
    let mut times: HashMap<&'static str, Vec<Duration>> = HashMap::new();
    for _ in 0..runs {
        for (name, args) in cases {
            let started = Instant::now();
            let out = Command::new("/usr/bin/sqlite3").args(args).output().unwrap();
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            times.entry(name).or_default().push(started.elapsed());
        }
    }
    times
}

/// W13: the address space capped by `ulimit -v` at this many KiB (8 GiB), where jsbox allocates
/// each sandbox on demand and runs the bounds-checked guest.
const CAPPED_KIB: u64 = 8 << 20;
/// W13's workloads.
const CAPPED_WORKLOADS: [&str; 3] = ["W2a", "W3", "W6"];

/// W13: jsbox's forms of [`CAPPED_WORKLOADS`] in a shell with the pool and in one whose address
/// space is capped, a process per round and mode, interleaved. Timings keyed `W2a/pool`,
/// `W2a/capped`, ...
fn capped_address_space(db: &Path, workloads: &[Workload], jsbox: &str, seed: &Path, rounds: usize) -> HashMap<String, Vec<Duration>> {
    let chosen: Vec<&Workload> = workloads.iter().filter(|w| CAPPED_WORKLOADS.contains(&w.id)).collect();
    let mut script = sql::setup(jsbox, None, seed);
    script.push_str(".timer on\n");
    for w in &chosen {
        script.push_str(&format!(".print {}{}\n{}\n", sql::TAG, w.id, w.jsbox));
    }
    let mut timings: HashMap<String, Vec<Duration>> = HashMap::new();
    for _ in 0..rounds {
        for mode in ["pool", "capped"] {
            let mut shell = Command::new("bash");
            let cap = if mode == "capped" { CAPPED_KIB.to_string() } else { "unlimited".into() };
            shell.args(["-c", r#"ulimit -v "$0" && exec /usr/bin/sqlite3 "$1""#, &cap, &db.display().to_string()]);
            let out = jsbox_bench::run_shell_script(shell, &script);
            assert!(out.status.success() && out.stderr.is_empty(), "W13 {mode}: {}", String::from_utf8_lossy(&out.stderr));
            for (id, times) in timings_of(out) {
                timings.entry(format!("{id}/{mode}")).or_default().extend(times);
            }
        }
    }
    timings
}

/// W11: rows in the plugin table of the database that `.load` registers.
const PLUGIN_ROWS: u64 = 20_000;

/// A database whose `js_plugins` holds `rows` scalar plugins, written without jsbox.
fn plugins_db(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join(format!("plugins-{rows}.db"));
    if !path.exists() {
        let schema = std::fs::read_to_string(repo().join("sql/schema.sql")).unwrap();
        let fill = format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
             INSERT INTO js_plugins(name, kind, source) SELECT 'plugin_' || i, 'scalar', 'function main(x) {{ return x + ' || i || ' }}' FROM s;"
        );
        let mut shell = Command::new("/usr/bin/sqlite3").arg(&path).stdin(Stdio::piped()).spawn().unwrap();
        shell.stdin.take().unwrap().write_all(format!("{schema}\n{fill}").as_bytes()).unwrap();
        assert!(shell.wait().unwrap().success(), "creating {}", path.display());
    }
    path
}

/// W11: whole processes opening `db`, with and without `.load` (which registers every plugin),
/// and calling the last plugin.
fn load_with_plugins(jsbox: &str, db: &Path, runs: usize) -> HashMap<&'static str, Vec<Duration>> {
    let db = db.display().to_string();
    let last = format!("SELECT plugin_{PLUGIN_ROWS}(1)");
    let cases: [(&'static str, Vec<String>); 2] = [
        ("bare", vec![db.clone(), "SELECT count(*) FROM js_plugins".into()]),
        ("jsbox", vec![db.clone(), "-cmd".into(), format!(".load {jsbox}"), "SELECT count(*) FROM js_plugins".into(), last]),
    ];
    time_shells(&cases, runs)
}

/// W13's table: each workload with the pool and under the cap, and their ratio.
fn report_capped(workloads: &[Workload], timings: &HashMap<String, Vec<Duration>>) -> serde_json::Value {
    println!(
        "\nW13 address space capped at {} GiB (ulimit -v: sandboxes allocated on demand, bounds-checked guest) vs the pool",
        CAPPED_KIB >> 20
    );
    let mut rows = Vec::new();
    for w in workloads.iter().filter(|w| CAPPED_WORKLOADS.contains(&w.id)) {
        let get = |mode: &str| stat(timings.get(&format!("{}/{mode}", w.id)).map(Vec::as_slice).unwrap_or(&[]), w.per);
        let (pool, capped) = (get("pool"), get("capped"));
        let over = ratio(capped, pool);
        println!(
            "  {:<50} pool {:>30}  capped {:>30}  capped/pool {}",
            format!("{} {} ({})", w.id, w.title, w.unit),
            show(pool),
            show(capped),
            over.map_or("—".into(), |r| format!("{r:.2}"))
        );
        let us = |s: Option<Stat>| s.map(|s| s.median.as_secs_f64() * 1e6);
        rows.push(serde_json::json!({ "workload": w.id, "pool_us": us(pool), "capped_us": us(capped), "capped_over_pool": over }));
    }
    serde_json::Value::Array(rows)
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
    plugin_load: &HashMap<&'static str, Vec<Duration>>,
    rows: u64,
    rounds: usize,
    load_before: &str,
    load_after: &str,
) -> serde_json::Value {
    println!("jsbox bench: {rows} rows, {rounds} interleaved rounds in one sqlite3 process; load average before {load_before}, after {load_after}");
    println!("{:<58} {:>30} {:>30} {:>30} {:>9} {:>9}  goal", "workload", "jsbox", "sqlite-js", "plain SQL", "/sqlite-js", "/plain");
    let mut json_rows = Vec::new();
    let mut emit = |name: &str, unit: &str, j: Option<Stat>, s: Option<Stat>, p: Option<Stat>, goal: &str| {
        let (rs, rp) = (ratio(j, s), ratio(j, p));
        let fmt = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into());
        println!(
            "{:<58} {:>30} {:>30} {:>30} {:>9} {:>9}  {goal}",
            format!("{name} ({unit})"),
            show(j),
            show(s),
            show(p),
            fmt(rs),
            fmt(rp)
        );
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
    emit("W5 whole process: .load + js_eval('1+1')", "per process", p("jsbox"), p("sqlite-js"), p("bare"), "≤ 1.2× sqlite-js");
    let w11 = |name: &str| stat(plugin_load.get(name).map(Vec::as_slice).unwrap_or(&[]), 1);
    emit(
        &format!("W11 .load on a database with {PLUGIN_ROWS} plugin rows, + one call"),
        "per process",
        w11("jsbox"),
        None,
        w11("bare"),
        "≤ plain SQLite's open + 1 s",
    );
    serde_json::json!({
        "rows": rows, "rounds": rounds, "load_before": load_before, "load_after": load_after, "workloads": json_rows,
    })
}
