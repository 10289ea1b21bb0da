//! Every benchmark workload computes the same thing in jsbox as in plain SQL (and in sqlite-js,
//! when `make bench` has fetched it): checked on the 10,000-row data within 1e-5 relative
//! (QuickJS in wasm uses musl's libm, which differs from glibc's in last bits, amplified by the
//! seed formula's acos near 1).

use std::process::Command;

use jsbox_bench::sql;
use jsbox_testkit::{extension_path, rel_diff, repo_root, seed_fixture_path};

/// Runs the benchmark setup plus `query` on `db` in the sqlite3 shell; returns the numbers of
/// the query's result row.
fn numbers(db: &std::path::Path, setup: &str, query: &str) -> Vec<f64> {
    let out = jsbox_bench::run_sqlite3(db, &format!("{setup}\n.print @@result\n{query}\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{query}: {}", String::from_utf8_lossy(&out.stderr));
    let row = stdout.split("@@result\n").nth(1).unwrap().trim();
    row.split('|').map(|v| v.parse().unwrap_or_else(|_| panic!("{query}: not a number: {row}"))).collect()
}

#[test]
fn every_workload_agrees_with_plain_sql_on_10k_rows() {
    let dir = std::env::temp_dir().join(format!("jsbox-bench-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("tracks.db");
    let _ = std::fs::remove_file(&db);
    let out = Command::new("/usr/bin/sqlite3").arg(&db).arg(sql::generate(10_000)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let peer = repo_root().join("target/peers/package/js");
    let sqlite_js = peer.with_extension("so").exists().then(|| peer.display().to_string());
    let setup = sql::setup(&extension_path(), sqlite_js.as_deref(), &seed_fixture_path());
    let mut workloads = sql::workloads(10_000, sqlite_js.is_some());
    // The full run's smallest W2b growth step reads tracks 0-9: all of the 10,000-row data.
    workloads.extend(sql::growth(1_000_000, sqlite_js.is_some()).into_iter().filter(|w| w.id == "W9b-1%"));
    let mut checked = 0;
    for w in &workloads {
        let Some(plain) = &w.plain else { continue };
        let setup = format!("{setup}\n{}", w.setup);
        let expected = numbers(&db, &setup, plain);
        for (engine, query) in w.engines().filter(|(engine, _)| *engine != "plain") {
            let got = numbers(&db, &setup, query);
            assert_eq!(got.len(), expected.len(), "{} {engine}", w.id);
            for (g, e) in got.iter().zip(&expected) {
                assert!(rel_diff(*g, *e) < 1e-5, "{} {engine}: {g} vs plain SQL {e}", w.id);
            }
            checked += 1;
        }
        assert!(expected.iter().any(|v| *v != 0.0), "{}: plain SQL computed nothing", w.id);
    }
    assert!(checked >= 10, "only {checked} workload results checked");
    let _ = std::fs::remove_dir_all(&dir);
}
