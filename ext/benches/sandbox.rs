//! `make bench`: what a js_eval call costs, measured on this machine.
//!
//! - the seed post's workload (its script on its 260-point fixture) through the sandbox, with the
//!   two JSON input paths of the guest ABI (QuickJS's parser vs serde_json transcoding);
//! - the price of a fresh JS world (`js_eval('1')`);
//! - whole `sqlite3` processes: `.load` + first call against bare sqlite3, and the seed workload
//!   per call through SQL;
//! - stored plugins over 100,000 rows (aggregate on GeoJSON TEXT and on REAL, scalar), each
//!   against the same query with a plain SQL function: the difference per row is the plugin's.
//!
//! Each figure is a median over interleaved rounds, printed with min and max and the machine's
//! load; results also go to `target/bench/sandbox.json`. Ratios within one run are what to
//! compare on a noisy 2-core machine, not absolute times.

use std::process::Command;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use jsbox_bench::stats::{loadavg, stat, Stat};
use sqlite_jsbox::abi::Input;
use sqlite_jsbox::modules::Imports;
use sqlite_jsbox::sandbox::Limits;
use sqlite_jsbox::script_cache::ScriptCache;

const ROUNDS: usize = 7;

use jsbox_testkit::repo_root as repo;

/// A workload: its name, the iterations of one sample, and one iteration.
type Workload<'a> = (&'a str, usize, Box<dyn FnMut()>);

/// Runs the workloads round-robin, so that machine noise spreads over all of them alike.
fn interleaved(workloads: &mut [Workload<'_>]) -> Vec<Stat> {
    let mut samples = vec![Vec::new(); workloads.len()];
    for (_, _, f) in workloads.iter_mut() {
        f(); // warm-up
    }
    for _ in 0..ROUNDS {
        for (i, (_, iters, f)) in workloads.iter_mut().enumerate() {
            let started = Instant::now();
            for _ in 0..*iters {
                f();
            }
            samples[i].push(started.elapsed() / *iters as u32);
        }
    }
    samples.iter().map(|s| stat(s, 1).expect("ROUNDS samples")).collect()
}

/// One call as `js_eval` makes it: the script compiled on first use, its bytecode reused.
fn eval_ok(script: &str, input: Input<'_>) {
    static SCRIPTS: LazyLock<Mutex<ScriptCache>> = LazyLock::new(Default::default);
    let limits = Limits::default();
    Imports::none(&limits, |imports| ScriptCache::eval(&SCRIPTS, script.as_bytes(), input, imports))
        .expect("benchmark call failed")
        .value
        .expect("benchmark script failed");
}

fn sqlite3(args: &[&str]) -> impl FnMut() {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    move || {
        let out = Command::new("/usr/bin/sqlite3").current_dir(repo()).args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn main() {
    let seed_json = std::fs::read(repo().join("fixtures/seed_track_points.json")).unwrap();
    let seed_script = std::fs::read_to_string(repo().join("sql/seed_cff.js")).unwrap();
    let ext = std::env::var("JSBOX_EXT").unwrap_or_else(|_| repo().join("target/release/libjsbox").display().to_string());
    let load = format!(".load {ext}");
    let seed_path = repo().join("fixtures/seed_track_points.json").display().to_string();
    const SQL_CALLS: usize = 100;
    let sql_seed = format!(
        "SELECT count(js_eval(readfile('sql/seed_cff.js'), j)) FROM generate_series(1, {SQL_CALLS}), \
         (SELECT readfile('{seed_path}') AS j);"
    );
    let sql_empty = format!("SELECT count(*) FROM generate_series(1, {SQL_CALLS}), (SELECT readfile('{seed_path}') AS j);");
    // Stored plugins: a 100,000-point copy of the fixture (25 copies of its 5 tracks) in a file.
    const PLUGIN_ROWS: usize = 100_000;
    let db = repo().join("target/bench/plugins.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&db);
    let setup = format!(
        "{load}\n.read sql/tracks.sql\nSELECT js_plugins_init();\n\
         INSERT INTO js_plugins(name, kind, source) VALUES ('track_cff', 'window', readfile('sql/plugins/track_cff.js')), \
         ('elevation_gain', 'aggregate', readfile('sql/plugins/elevation_gain.js')), \
         ('convert_length', 'scalar', readfile('sql/plugins/convert_length.js'));\n\
         CREATE TABLE big AS SELECT track_fid + 10 * k AS track_fid, seq, lon, lat, ele, feature FROM track_points, \
         (WITH RECURSIVE c(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM c WHERE k < 24) SELECT k FROM c) ORDER BY 1, 2;\n"
    );
    let status = Command::new("/usr/bin/sqlite3")
        .current_dir(repo())
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(setup.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(status.success());
    let db_arg = db.display().to_string();
    let per_group = |select: &str| {
        format!("SELECT count(*) FROM (SELECT {select} FROM (SELECT * FROM big ORDER BY track_fid, seq) GROUP BY track_fid);")
    };
    let agg_plain = per_group("sum(length(feature))");
    let agg_cff = per_group("track_cff(feature)");
    let agg_ele_plain = per_group("sum(ele)");
    let agg_ele = per_group("elevation_gain(ele)");
    let scalar_plain = "SELECT sum(lat * 0.001) FROM big;".to_string();
    let scalar_js = "SELECT sum(convert_length(lat, 'm', 'km')) FROM big;".to_string();

    let load_before = loadavg();

    let (s1, s2, s3, s4) = (seed_script.clone(), seed_script.clone(), seed_json.clone(), seed_json.clone());
    let (j1, j2) = (seed_json.clone(), seed_json.clone());
    let mut workloads: Vec<Workload<'_>> = vec![
        (W1_QUICKJS, 50, Box::new(move || eval_ok(&s1, Input::Json(&s3)))),
        (W1_SERDE, 50, Box::new(move || eval_ok(&s2, Input::JsonSerde(&s4)))),
        (INPUT_QUICKJS, 50, Box::new(move || eval_ok("data.features.length", Input::Json(&j1)))),
        (INPUT_SERDE, 50, Box::new(move || eval_ok("data.features.length", Input::JsonSerde(&j2)))),
        ("W6 js_eval('1'): a fresh JS world", 2000, Box::new(|| eval_ok("1", Input::Null))),
        (BARE_PROCESS, 10, Box::new(sqlite3(&[":memory:", "SELECT 1+1"]))),
        (LOAD_AND_CALL, 10, Box::new(sqlite3(&[":memory:", "-cmd", &load, "SELECT js_eval('1+1')"]))),
        (READFILE_100, 3, Box::new(sqlite3(&[":memory:", "-cmd", &load, &sql_empty]))),
        (SEED_100, 3, Box::new(sqlite3(&[":memory:", "-cmd", &load, &sql_seed]))),
        (AGG_PLAIN, 2, Box::new(sqlite3(&[&db_arg, "-cmd", &load, &agg_plain]))),
        (AGG_CFF, 2, Box::new(sqlite3(&[&db_arg, "-cmd", &load, &agg_cff]))),
        (AGG_ELE_PLAIN, 2, Box::new(sqlite3(&[&db_arg, "-cmd", &load, &agg_ele_plain]))),
        (AGG_ELE, 2, Box::new(sqlite3(&[&db_arg, "-cmd", &load, &agg_ele]))),
        (SCALAR_PLAIN, 2, Box::new(sqlite3(&[&db_arg, "-cmd", &load, &scalar_plain]))),
        (SCALAR, 2, Box::new(sqlite3(&[&db_arg, "-cmd", &load, &scalar_js]))),
    ];
    let stats = interleaved(&mut workloads);
    let load_after = loadavg();

    println!("jsbox bench: {ROUNDS} interleaved rounds; load average before {load_before}, after {load_after}");
    println!("{:<66} {:>11} {:>11} {:>11}", "workload", "median", "min", "max");
    let mut rows = Vec::new();
    for ((name, _, _), s) in workloads.iter().zip(&stats) {
        println!("{name:<66} {:>11.1?} {:>11.1?} {:>11.1?}", s.median, s.min, s.max);
        rows.push(serde_json::json!({"workload": name, "median_us": s.median.as_secs_f64() * 1e6,
            "min_us": s.min.as_secs_f64() * 1e6, "max_us": s.max.as_secs_f64() * 1e6}));
    }
    // The derived figures, from the workloads by name (a renamed workload fails here, loudly).
    let median = |name: &str| {
        let at = workloads.iter().position(|(n, _, _)| *n == name).unwrap_or_else(|| panic!("no workload named {name:?}"));
        stats[at].median
    };
    let over = |name: &str, baseline: &str| median(name).saturating_sub(median(baseline));
    let per_call_sql = over(SEED_100, READFILE_100) / SQL_CALLS as u32;
    let startup = over(LOAD_AND_CALL, BARE_PROCESS);
    println!();
    println!("W1 through SQL, per call (100-call process minus the same process without js_eval): {per_call_sql:.1?}");
    println!("W5 .load + first call, over bare sqlite3: {startup:.1?}");
    let per_row = |plugin: &str, plain: &str| over(plugin, plain) / PLUGIN_ROWS as u32;
    let (cff_row, ele_row, scalar_row) = (per_row(AGG_CFF, AGG_PLAIN), per_row(AGG_ELE, AGG_ELE_PLAIN), per_row(SCALAR, SCALAR_PLAIN));
    println!("plugin cost per row over plain SQL: aggregate on GeoJSON TEXT {cff_row:.2?}, aggregate on REAL {ele_row:.2?}, scalar {scalar_row:.2?}");
    println!("W1 serde_json / QuickJS parser: {:.2}", ratio(median(W1_SERDE), median(W1_QUICKJS)));
    println!("JSON input only, serde_json / QuickJS parser: {:.2}", ratio(median(INPUT_SERDE), median(INPUT_QUICKJS)));
    let target = repo().join("target");
    let sizes = [
        ("guest .wasm", target.join("wasm32-wasip1/release/jsbox_guest.wasm")),
        ("Wizer snapshot .wasm", target.join("jsbox/guest.wizer.wasm")),
        ("precompiled .cwasm", target.join("jsbox/guest.cwasm")),
        ("libjsbox.so", target.join("release/libjsbox.so")),
    ];
    for (name, path) in &sizes {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("{name}: {len} bytes");
    }
    let out = target.join("bench");
    std::fs::create_dir_all(&out).unwrap();
    let json = serde_json::json!({
        "load_before": load_before, "load_after": load_after, "rounds": ROUNDS, "workloads": rows,
        "w1_sql_per_call_us": per_call_sql.as_secs_f64() * 1e6, "w5_load_first_call_us": startup.as_secs_f64() * 1e6,
        "plugin_row_us": {"aggregate_geojson": cff_row.as_secs_f64() * 1e6, "aggregate_real": ele_row.as_secs_f64() * 1e6, "scalar": scalar_row.as_secs_f64() * 1e6},
    });
    std::fs::write(out.join("sandbox.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

// The workloads that derived figures are computed from, by name.
const W1_QUICKJS: &str = "W1 seed script on seed fixture, JSON via QuickJS's parser";
const W1_SERDE: &str = "W1 seed script on seed fixture, JSON via serde_json transcoding";
const INPUT_QUICKJS: &str = "JSON input only (data.features.length), QuickJS's parser";
const INPUT_SERDE: &str = "JSON input only (data.features.length), serde_json";
const BARE_PROCESS: &str = "W5 bare sqlite3 process: SELECT 1+1";
const LOAD_AND_CALL: &str = "W5 sqlite3 process: .load + js_eval('1+1')";
const READFILE_100: &str = "sqlite3 process: 100 x readfile, no js_eval";
const SEED_100: &str = "sqlite3 process: 100 x js_eval(seed script, seed fixture)";
const AGG_PLAIN: &str = "100k rows, 125 groups: sum(length(feature)) (plain SQL)";
const AGG_CFF: &str = "100k rows, 125 groups: track_cff(feature) (GeoJSON TEXT, aggregate)";
const AGG_ELE_PLAIN: &str = "100k rows, 125 groups: sum(ele) (plain SQL)";
const AGG_ELE: &str = "100k rows, 125 groups: elevation_gain(ele) (REAL, aggregate)";
const SCALAR_PLAIN: &str = "100k rows: sum(lat * 0.001) (plain SQL)";
const SCALAR: &str = "100k rows: sum(convert_length(lat, 'm', 'km')) (scalar plugin)";

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
