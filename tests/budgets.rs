//! Memory and sandboxes are bounded per connection, not only per call: the memory of all of a
//! connection's live sandboxes together (`js_config('connection_memory_mb')`), its share of the
//! process's instance pool, the scalar worlds it keeps (least recently used out, dropped with
//! their plugin), and what its aggregates buffer on the host (a row bigger than a sandbox may
//! hold is refused before it is buffered; batches are bounded in bytes). Each refusal is a clear
//! error naming the budget, and the connection goes on working.

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

/// The tests here measure the process's resident memory: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn int(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn with_plugins() -> Connection {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn
}

/// A table-valued series (rusqlite's bundled SQLite has no generate_series).
fn series(last: i64) -> String {
    format!("(WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < {last}) SELECT value FROM s)")
}

fn sandboxes(conn: &Connection) -> i64 {
    int(conn, "SELECT js_debug() ->> '$.connection_sandboxes'")
}

/// The connection's sandboxes that statements hold: all but the worlds kept or parked for the
/// next call or group.
fn held_by_statements(conn: &Connection) -> i64 {
    let kept = int(conn, "SELECT js_debug() ->> '$.plugins.kept_worlds'");
    let parked = int(conn, "SELECT js_debug() ->> '$.plugins.parked_worlds'");
    assert!(parked <= 8, "{parked} parked worlds");
    sandboxes(conn) - kept - parked
}

#[test]
fn kept_scalar_worlds_are_bounded_evicted_and_dropped_with_their_plugin() {
    let _serial = serial();
    let conn = with_plugins();
    // 30 scalar plugins, each holding ~24 MiB in its kept world.
    for i in 0..30 {
        store_plugin(
            &conn,
            &format!("hoard{i}"),
            "scalar",
            "const kept = new Uint8Array(24 << 20).fill(1); function main() { return kept.length }",
        )
        .unwrap();
    }
    let before = resident_kib();
    for round in 0..2 {
        for i in 0..30 {
            assert_eq!(value(&conn, &format!("SELECT hoard{i}()")), Value::Integer(24 << 20), "round {round}");
        }
    }
    let kept = int(&conn, "SELECT js_debug() ->> '$.plugins.kept_worlds'");
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    println!("30 hoarding scalar plugins: {kept} worlds kept, {} sandboxes, +{grown_mib} MiB resident", sandboxes(&conn));
    assert!(kept <= 16, "{kept} kept worlds");
    assert!(sandboxes(&conn) <= 16);
    assert!(int(&conn, "SELECT js_debug() ->> '$.connection_memory_in_use_bytes'") <= 512 << 20);
    assert!(grown_mib < 600, "+{grown_mib} MiB");
    // Deleting plugins drops their worlds.
    conn.execute("DELETE FROM js_plugins", []).unwrap();
    assert_eq!(int(&conn, "SELECT js_debug() ->> '$.plugins.kept_worlds'"), 0);
    assert_eq!(sandboxes(&conn), 0);
}

#[test]
fn creating_calling_and_deleting_plugins_never_keeps_their_sandboxes() {
    let _serial = serial();
    let conn = with_plugins();
    let other = open();
    for i in 0..300 {
        let name = format!("brief{i}");
        store_plugin(&conn, &name, "scalar", "function main(x) { return x + 1 }").unwrap();
        assert_eq!(value(&conn, &format!("SELECT {name}({i})")), Value::Integer(i + 1));
        conn.execute("DELETE FROM js_plugins WHERE name = ?1", [&name]).unwrap();
        assert_eq!(sandboxes(&conn), 0, "after deleting {name}");
    }
    assert_usable(&other);
}

#[test]
fn the_connection_memory_budget_covers_all_its_sandboxes() {
    let _serial = serial();
    let conn = with_plugins();
    // 40 aggregates in one statement, each world growing to ~16 MiB in init(): 640 MiB together.
    let step = "function init() { return new Uint8Array(16 << 20).fill(1) } function step(s, x) { return s } function final(s) { return s.length > 0 ? 1 : 0 }";
    for i in 0..40 {
        store_plugin(&conn, &format!("agg{i}"), "aggregate", step).unwrap();
    }
    let columns: Vec<String> = (0..40).map(|i| format!("agg{i}(value)")).collect();
    let sql = format!("SELECT {} FROM {}", columns.join(", "), series(1));
    conn.query_row("SELECT js_config('connection_memory_mb', 256)", [], |_| Ok(())).unwrap();
    let before = resident_kib();
    let err = error_of(&conn, &sql);
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    println!("40 aggregates of 16 MiB under a 256 MiB budget: {err:?}, +{grown_mib} MiB resident");
    assert!(
        err.ends_with("the connection's memory budget of 256 MiB for all its sandboxes is spent (js_config('connection_memory_mb'))"),
        "{err}"
    );
    assert!(grown_mib < 400, "+{grown_mib} MiB");
    assert_eq!(held_by_statements(&conn), 0, "the statement's sandboxes were given back");
    // With a budget that fits, the same statement runs.
    conn.query_row("SELECT js_config('connection_memory_mb', 2048)", [], |_| Ok(())).unwrap();
    let ok: i64 = conn.query_row(&sql, [], |r| r.get(0)).unwrap();
    assert_eq!(ok, 1);
    // A single sandbox bigger than the budget: the budget is named, not the per-call limit.
    conn.query_row("SELECT js_config('connection_memory_mb', 16), js_config('memory_limit_mb', 64)", [], |_| Ok(())).unwrap();
    let err = error_of(&conn, "SELECT js_eval('new Uint8Array(32 << 20).length')");
    assert_eq!(err, "js_eval: the connection's memory budget of 16 MiB for all its sandboxes is spent (js_config('connection_memory_mb'))");
    assert_eq!(
        error_of(&conn, "SELECT js_config('connection_memory_mb', 4)"),
        "js_config: connection_memory_mb must be between 8 and 65536 MiB, not 4"
    );
    conn.query_row("SELECT js_config('connection_memory_mb', 512)", [], |_| Ok(())).unwrap();
    assert_usable(&conn);
}

#[test]
fn one_connection_gets_a_share_of_the_pool_not_all_of_it() {
    let _serial = serial();
    let conn = with_plugins();
    let share = int(&conn, "SELECT js_debug() ->> '$.connection_sandboxes_max'");
    // Sandboxes allocated on demand (JSBOX_POOL_SLOTS=0) have no pool: the share is that of the
    // default pool of 1,000.
    let pool = int(&conn, "SELECT coalesce(js_debug() ->> '$.pool_slots', 1000)");
    assert!(share < pool, "a share of {share} out of {pool}");
    store_plugin(
        &conn,
        "tally",
        "aggregate",
        "function init() { return 0 } function step(s) { return s + 1 } function final(s) { return s }",
    )
    .unwrap();
    // One statement with more live aggregate groups than the share.
    // Distinct arguments: SQLite computes identical aggregate expressions once.
    let columns: Vec<String> = (0..=share).map(|i| format!("tally(value + {i})")).collect();
    let err = error_of(&conn, &format!("SELECT {} FROM {}", columns.join(", "), series(2)));
    assert!(
        err.ends_with(&format!(
            "the connection already holds {share} sandboxes, the most one connection may hold at once; finish other statements first"
        )),
        "{err}"
    );
    assert_eq!(held_by_statements(&conn), 0);
    // Within the share it runs.
    let columns: Vec<String> = (0..share).map(|i| format!("tally(value + {i})")).collect();
    let counts: i64 = conn.query_row(&format!("SELECT {} FROM {}", columns.join(", "), series(2)), [], |r| r.get(0)).unwrap();
    assert_eq!(counts, 2);
    // Meanwhile other connections are never starved: a statement holding its whole share open.
    let mut stmt = conn.prepare(&format!("SELECT {} FROM {} GROUP BY value", columns.join(", "), series(3))).unwrap();
    let mut rows = stmt.query([]).unwrap();
    rows.next().unwrap();
    let others: Vec<Connection> = (0..4).map(|_| open()).collect();
    for other in &others {
        assert_usable(other);
    }
}

#[test]
fn a_row_bigger_than_a_sandbox_is_refused_before_it_is_buffered() {
    let _serial = serial();
    let conn = with_plugins();
    conn.query_row("SELECT js_config('memory_limit_mb', 32)", [], |_| Ok(())).unwrap();
    store_plugin(
        &conn,
        "bytes",
        "aggregate",
        "function init() { return 0 } function step(s, b) { return s + b.length } function final(s) { return s }",
    )
    .unwrap();
    store_plugin(&conn, "size", "scalar", "function main(b) { return b.length }").unwrap();
    let err = error_of(&conn, &format!("SELECT bytes(zeroblob(40 << 20)) FROM {}", series(60)));
    assert_eq!(err, "bytes: a row of 40 MiB of arguments cannot fit the memory limit of 32 MiB");
    assert_eq!(
        error_of(&conn, "SELECT size(zeroblob(40 << 20))"),
        "size: a row of 40 MiB of arguments cannot fit the memory limit of 32 MiB"
    );
    assert_eq!(
        error_of(&conn, "SELECT js_call('size', zeroblob(33 << 20))"),
        "size: a row of 33 MiB of arguments cannot fit the memory limit of 32 MiB"
    );
    // Rows that fit cross in batches bounded by bytes: 60 rows of 8 MiB never sit on the host
    // together (they were buffered 256 rows at a time: 480 MiB).
    // (Measured after a first small run, so that the allocator's thresholds have settled.)
    assert_eq!(int(&conn, &format!("SELECT bytes(zeroblob(8 << 20)) FROM {}", series(2))), 2 * (8 << 20));
    let before = resident_kib();
    let total = int(&conn, &format!("SELECT bytes(zeroblob(8 << 20)) FROM {}", series(60)));
    assert_eq!(total, 60 * (8 << 20));
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    println!("60 rows of 8 MiB through an aggregate: +{grown_mib} MiB resident");
    assert!(grown_mib < 160, "+{grown_mib} MiB");
    assert_usable(&conn);
}
