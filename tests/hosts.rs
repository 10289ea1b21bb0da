//! A host whose visitors type the SQL: the real Datasette (from PyPI, in the venv `make deps`
//! prepares) with the plugin `datasette-sqlite-jsbox` (`packaging/datasette`), which sets jsbox's ceilings on
//! every connection and locks them. Visitors' requests (`datasette --get`) compute with jsbox,
//! hit Datasette's own time limit inside a call, and cannot raise a limit, unlock, or run the
//! database's stored plugins; a metadata file that turns stored plugins on is obeyed.

use std::path::PathBuf;
use std::process::Command;

use jsbox_tests::*;

/// A database with one stored plugin, written without jsbox.
fn database(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("jsbox-hosts-{}-{name}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&std::fs::read_to_string(repo_root().join("sql/schema.sql")).unwrap()).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('stored', 'scalar', 'function main() { return 7 }')", []).unwrap();
    path
}

/// `datasette --get` of `sql` against `db` (named `db` in URLs): the JSON response.
fn visit(db: &PathBuf, sql: &str, extra: &[&str]) -> serde_json::Value {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    let datasette = target.join("apsw-venv/bin/datasette");
    assert!(datasette.exists(), "{} is missing: run `make deps`", datasette.display());
    let query: String = url_encode(sql);
    let out = Command::new(&datasette)
        .current_dir(repo_root())
        .env("JSBOX_EXT", extension_path())
        .arg(db)
        .args(["--plugins-dir", "packaging/datasette/datasette_sqlite_jsbox", "--setting", "sql_time_limit_ms", "300"])
        .args(extra)
        .args(["--get", &format!("/{}.json?sql={query}&_shape=objects", db.file_stem().unwrap().to_string_lossy())])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn first_value(response: &serde_json::Value) -> serde_json::Value {
    let row = &response["rows"][0];
    row.as_object().and_then(|o| o.values().next().cloned()).unwrap_or_else(|| panic!("{response}"))
}

fn error(response: &serde_json::Value) -> String {
    response["error"].as_str().unwrap_or_else(|| panic!("expected an error: {response}")).to_owned()
}

#[test]
fn visitors_compute_but_cannot_loosen_the_hosts_ceilings() {
    let db = database("visitors");
    assert_eq!(first_value(&visit(&db, "SELECT js_eval('6 * 7') AS v", &[])), serde_json::json!(42));
    assert_eq!(
        first_value(&visit(&db, "SELECT js_config() AS v", &[])),
        serde_json::json!(
            r#"{"connection_memory_mb":512,"deterministic":0,"locked":1,"memory_limit_mb":32,"plugins":0,"step_limit":100,"time_limit_ms":300}"#
        )
    );
    // Datasette's limit reaches inside a call (its progress handler alone would not).
    assert_eq!(error(&visit(&db, "SELECT js_eval('while (true) {}') AS v", &[])), "js_eval: time limit of 300 ms exceeded");
    for (sql, setting, now) in [
        ("SELECT js_config('time_limit_ms', 100000) AS v", "time_limit_ms", "300 ms"),
        ("SELECT js_config('memory_limit_mb', 4096) AS v", "memory_limit_mb", "32 MiB"),
        ("SELECT js_config('plugins', 1) AS v", "plugins", "0"),
        ("SELECT js_config('locked', 0) AS v", "locked", "1"),
    ] {
        assert_eq!(
            error(&visit(&db, sql, &[])),
            format!("js_config: the settings of this connection are locked: {setting} can be tightened (it is {now}), not loosened")
        );
    }
    // The database's stored plugins do not run for visitors.
    let off = "stored plugins are off on this connection (js_config('plugins', 0))";
    assert_eq!(error(&visit(&db, "SELECT stored() AS v", &[])), format!("stored: {off}"));
    assert_eq!(error(&visit(&db, "SELECT js_call('stored') AS v", &[])), format!("stored: {off}"));
    let _ = std::fs::remove_file(db);
}

#[test]
fn the_host_can_turn_stored_plugins_on() {
    let db = database("plugins-on");
    let metadata = std::env::temp_dir().join(format!("jsbox-hosts-{}-metadata.json", std::process::id()));
    std::fs::write(&metadata, r#"{"plugins": {"datasette-sqlite-jsbox": {"stored_plugins": true}}}"#).unwrap();
    let metadata = metadata.display().to_string();
    assert_eq!(first_value(&visit(&db, "SELECT stored() AS v", &["--metadata", &metadata])), serde_json::json!(7));
    let _ = std::fs::remove_file(db);
    let _ = std::fs::remove_file(metadata);
}
