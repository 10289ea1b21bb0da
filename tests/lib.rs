//! Helpers shared by the end-to-end tests: a connection with jsbox loaded, the fixtures' texts,
//! and an independent (native Rust) computation of the seed's track length to check the
//! sandbox's results against. Where things are (the repository, the extension, the fixtures)
//! and the shell runner come from `jsbox-testkit`, which the benchmarks use too.

use std::path::{Path, PathBuf};

mod children;
pub use children::*;
pub use jsbox_testkit::{
    extension_path, rel_diff, repo_root, resident_kib, run_shell_script, run_sqlite3, seed_fixture_path, tracks_fixture_path,
};

use rusqlite::types::Value;
use rusqlite::{Connection, ToSql};

pub fn seed_fixture() -> String {
    let path = seed_fixture_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The generated multi-track fixture.
pub fn tracks_fixture() -> String {
    std::fs::read_to_string(tracks_fixture_path()).unwrap()
}

/// The seed post's plugin script (`sql/seed_cff.js`).
pub fn seed_script() -> String {
    std::fs::read_to_string(repo_root().join("sql/seed_cff.js")).unwrap()
}

/// An in-memory database with jsbox loaded.
pub fn open() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    load(&conn);
    conn
}

pub fn load(conn: &Connection) {
    // SAFETY: the library loaded is the extension under test, whose entry point only registers
    // functions on this connection; extension loading is turned off again when the guard drops.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(conn).unwrap();
        conn.load_extension(extension_path(), None::<&str>).unwrap();
    }
}

/// `js_eval(script, json)` on `conn`.
pub fn eval(conn: &Connection, script: &str, json: impl ToSql) -> rusqlite::Result<Value> {
    conn.query_row("SELECT js_eval(?1, ?2)", (script, json), |row| row.get(0))
}

/// `js_eval(script)` on `conn`.
pub fn eval1(conn: &Connection, script: &str) -> rusqlite::Result<Value> {
    conn.query_row("SELECT js_eval(?1)", [script], |row| row.get(0))
}

/// The error message of a call that must fail.
pub fn eval_error(conn: &Connection, script: &str, json: impl ToSql) -> String {
    match eval(conn, script, json) {
        Ok(value) => panic!("expected an error from {script:?}, got {value:?}"),
        Err(err) => err.to_string(),
    }
}

/// A database file path of this test binary's own in the temporary folder, with no file (nor
/// WAL, shared-memory or journal file) left from an earlier run.
pub fn temp_db(name: &str) -> PathBuf {
    let suite = std::env::current_exe().ok().and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned())).unwrap_or_default();
    let path = std::env::temp_dir().join(format!("jsbox-{suite}-{}-{name}.db", std::process::id()));
    remove_db(&path);
    path
}

/// `script` in a temporary file of its own (a shell's `.read` takes it); the caller removes it.
pub fn script_file(script: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!("jsbox-script-{}-{}.sql", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, script).unwrap();
    path
}

/// Removes a database file and its WAL, shared-memory and journal files.
pub fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The single value `sql` gives on `conn` (which must succeed).
pub fn value(conn: &Connection, sql: &str) -> Value {
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The error message of `sql` on `conn`, which must fail.
pub fn error_of(conn: &Connection, sql: &str) -> String {
    match conn.query_row(sql, [], |r| r.get::<_, Value>(0)) {
        Ok(value) => panic!("expected an error from {sql}, got {value:?}"),
        Err(err) => err.to_string(),
    }
}

/// The sqlite3 shell's `readfile(path)` (relative to the repository), which rusqlite's bundled
/// SQLite lacks.
pub fn add_readfile(conn: &Connection) {
    conn.create_scalar_function("readfile", 1, rusqlite::functions::FunctionFlags::SQLITE_UTF8, |ctx| {
        let path: String = ctx.get(0)?;
        std::fs::read(repo_root().join(path)).map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
    })
    .unwrap();
}

/// Stores plugin `name` of `kind` in `js_plugins` (which must exist).
pub fn store_plugin(conn: &Connection, name: &str, kind: &str, source: &str) -> rusqlite::Result<usize> {
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES (?1, ?2, ?3)", (name, kind, source))
}

/// Asserts that `conn` still evaluates scripts after an error.
pub fn assert_usable(conn: &Connection) {
    assert_eq!(eval1(conn, "1+1").unwrap(), Value::Integer(2));
}

/// The seed's `distance` in meters, computed natively (glibc's libm).
pub fn distance(lat0: f64, lon0: f64, lat1: f64, lon1: f64) -> f64 {
    if lat0 == lat1 && lon0 == lon1 {
        return 0.0;
    }
    let pi = std::f64::consts::PI;
    let (radlat0, radlat1) = (pi * lat0 / 180.0, pi * lat1 / 180.0);
    let radtheta = pi * (lon0 - lon1) / 180.0;
    let dist = (radlat0.sin() * radlat1.sin() + radlat0.cos() * radlat1.cos() * radtheta.cos()).min(1.0);
    dist.acos() * 180.0 / pi * 60.0 * 1853.159
}

/// The seed's track length in Canadian football fields (140 m) for points `(lon, lat)` in order.
pub fn cff_length(points: &[(f64, f64)]) -> f64 {
    points.windows(2).map(|w| distance(w[1].1, w[1].0, w[0].1, w[0].0) / 140.0).sum()
}

/// The `(track_fid, [(lon, lat)])` tracks of a FeatureCollection, points in file order.
pub fn tracks(geojson: &str) -> Vec<(i64, Vec<(f64, f64)>)> {
    let doc: serde_json::Value = serde_json::from_str(geojson).unwrap();
    let mut tracks: Vec<(i64, Vec<(f64, f64)>)> = Vec::new();
    for feature in doc["features"].as_array().unwrap() {
        let fid = feature["properties"]["track_fid"].as_i64().unwrap();
        let c = &feature["geometry"]["coordinates"];
        let point = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        match tracks.last_mut() {
            Some((last, points)) if *last == fid => points.push(point),
            _ => tracks.push((fid, vec![point])),
        }
    }
    tracks
}

/// `sql/demo.sql` with its `.load` pointing at the built extension.
pub fn demo_script() -> String {
    let demo = std::fs::read_to_string(repo_root().join("sql/demo.sql")).unwrap();
    demo.replace(".load ./target/release/libjsbox", &format!(".load {}", extension_path()))
}

/// Checks the demo's output (`sql/demo.sql` in the shell) against the native computation: the
/// seed fixture's 260 features, and each track's length both from `js_eval` and from the stored
/// plugins' `GROUP BY` table.
pub fn assert_demo_output(stdout: &str) {
    // One row per track with JS and SQL lengths and their relative difference.
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| l.split('│').map(str::trim).filter(|c| !c.is_empty()).collect())
        .filter(|cells: &Vec<&str>| cells.len() == 5 && cells[0].parse::<i64>().is_ok())
        .collect();
    let tracks = tracks(&tracks_fixture());
    assert_eq!(rows.len(), tracks.len(), "demo output:\n{stdout}");
    for (row, (fid, points)) in rows.iter().zip(&tracks) {
        assert_eq!(row[0], fid.to_string());
        assert_eq!(row[1], points.len().to_string());
        let js: f64 = row[2].parse().unwrap();
        let native = cff_length(points);
        assert!(rel_diff(js, native) < 1e-5, "track {fid}: {js} vs {native}");
    }
    assert!(stdout.contains("260"), "demo output:\n{stdout}");
    // The stored plugins' GROUP BY table: track, fields, miles, climb, west, north, points.
    let plugin_rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| l.split('│').map(str::trim).filter(|c| !c.is_empty()).collect())
        .filter(|cells: &Vec<&str>| cells.len() == 7 && cells[0].parse::<i64>().is_ok())
        .collect();
    assert_eq!(plugin_rows.len(), tracks.len(), "demo output:\n{stdout}");
    for (row, (fid, points)) in plugin_rows.iter().zip(&tracks) {
        let fields: f64 = row[1].parse().unwrap();
        let miles: f64 = row[2].parse().unwrap();
        let native = cff_length(points);
        assert!(rel_diff(fields, native) < 1e-5, "track {fid}: {fields} vs {native}");
        assert!((miles - native * 140.0 / 1609.344).abs() < 1e-3, "track {fid}: {miles} mi");
        assert_eq!(row[6], points.len().to_string());
    }
}
