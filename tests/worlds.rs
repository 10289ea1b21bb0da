//! Loaded worlds reused: aggregate and window groups start from a copy of the plugin's loaded
//! world (its image, or a parked world reset to it), and still share nothing: globals, the
//! random generator, state left by a group that failed, limits.

use jsbox_tests::*;
use rusqlite::Connection;

fn with_plugins() -> Connection {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn
}

fn debug_int(conn: &Connection, path: &str) -> i64 {
    conn.query_row(&format!("SELECT js_debug() ->> '{path}'"), [], |r| r.get(0)).unwrap()
}

/// `groups` groups of `rows` rows each: `(g, x)`, x counting from 0.
fn groups(groups: usize, rows: usize) -> String {
    format!(
        "(WITH RECURSIVE n(value) AS (SELECT 0 UNION ALL SELECT value + 1 FROM n WHERE value < {}) \
         SELECT value / {rows} AS g, value AS x FROM n)",
        groups * rows - 1
    )
}

/// A plugin whose top level costs enough to be imaged at once, and whose state lives in
/// globals as well as in the aggregate state.
const GLOBALS: &str = "
var table = []; for (let i = 0; i < 20000; i++) table.push({ i, s: 'x' + i });
var loads = (globalThis.loads || 0) + 1; globalThis.loads = loads;
var seen = 0;
function init() { return { rows: 0, random: Math.random() }; }
function step(s, x) { seen++; globalThis.leak = (globalThis.leak || 0) + 1; s.rows++; if (x === -1) throw new Error('bad row'); return s; }
function final(s) { return JSON.stringify({ rows: s.rows, seen, leak: globalThis.leak || 0, loads, random: s.random, table: table.length }); }
";

#[test]
fn every_group_starts_from_the_loaded_world_and_sees_no_other_group() {
    let conn = with_plugins();
    store_plugin(&conn, "globals", "aggregate", GLOBALS).unwrap();
    for statement in 0..3 {
        let sql = format!("SELECT g, globals(x) FROM {} GROUP BY g", groups(300, 3));
        let mut stmt = conn.prepare(&sql).unwrap();
        let results: Vec<serde_json::Value> =
            stmt.query_map([], |r| r.get::<_, String>(1)).unwrap().map(|s| serde_json::from_str(&s.unwrap()).unwrap()).collect();
        assert_eq!(results.len(), 300);
        for result in &results {
            // Each group sees its own 3 rows, globals as the top level left them, one load.
            assert_eq!(result["rows"], 3, "{result}");
            assert_eq!(result["seen"], 3, "{result}");
            assert_eq!(result["leak"], 3, "{result}");
            assert_eq!(result["loads"], 1, "{result}");
            assert_eq!(result["table"], 20000, "{result}");
        }
        let randoms: std::collections::HashSet<String> = results.iter().map(|r| r["random"].to_string()).collect();
        assert_eq!(randoms.len(), 300, "each group draws its own random numbers (statement {statement})");
        assert!(debug_int(&conn, "$.plugins.parked_worlds") >= 1, "groups reuse parked worlds");
    }
}

#[test]
fn a_group_that_failed_leaves_nothing_behind() {
    let conn = with_plugins();
    store_plugin(&conn, "globals", "aggregate", GLOBALS).unwrap();
    // Warm: the plugin's image exists and worlds are parked.
    conn.query_row(&format!("SELECT count(*) FROM (SELECT g, globals(x) FROM {} GROUP BY g)", groups(20, 2)), [], |_| Ok(())).unwrap();
    let failing = format!(
        "SELECT count(*) FROM (SELECT g, globals(CASE WHEN g = 7 AND x % 2 = 1 THEN -1 ELSE x END) FROM {} GROUP BY g)",
        groups(20, 2)
    );
    let err = error_of(&conn, &failing);
    assert!(err.starts_with("globals: Error: bad row (line 6)"), "{err}");
    // The next statement's groups are as fresh as ever.
    let leaks: Vec<i64> = conn
        .prepare(&format!("SELECT globals(x) ->> '$.leak' FROM {} GROUP BY g", groups(20, 2)))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(leaks, vec![2; 20]);
}

#[test]
fn limits_hold_in_reused_worlds() {
    let conn = with_plugins();
    let hog = format!(
        "{GLOBALS}
         function value(s) {{ return s.rows; }}
         function inverse(s) {{ s.rows--; return s; }}"
    )
    .replace(
        "if (x === -1) throw new Error('bad row');",
        "if (x === -2) { const a = []; for (;;) a.push(new Array(1e5).fill(1)); } if (x === -3) for (;;) {}",
    );
    store_plugin(&conn, "hog", "window", &hog).unwrap();
    conn.query_row("SELECT js_config('time_limit_ms', 300)", [], |_| Ok(())).unwrap();
    let run = |special: i64| {
        format!(
            "SELECT count(*) FROM (SELECT g, hog(CASE WHEN g = 5 AND x % 3 = 0 THEN {special} ELSE x END) FROM {} GROUP BY g)",
            groups(10, 3)
        )
    };
    // Warm, then memory, then time, each in a group started from a reused world.
    assert_eq!(value(&conn, &run(0)), rusqlite::types::Value::Integer(10));
    assert_eq!(error_of(&conn, &run(-2)), "hog: memory limit of 64 MiB exceeded");
    assert_eq!(error_of(&conn, &run(-3)), "hog: time limit of 300 ms exceeded");
    // As a window function too, partition by partition.
    let window = format!(
        "SELECT sum(r) FROM (SELECT hog(x) OVER (PARTITION BY g ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS r FROM {})",
        groups(50, 4)
    );
    // Per partition of 4 rows: 1, 2, 2, 2.
    assert_eq!(value(&conn, &window), rusqlite::types::Value::Integer(50 * 7));
    assert_eq!(value(&conn, &run(0)), rusqlite::types::Value::Integer(10));
}

#[test]
fn a_changed_plugin_never_runs_in_a_world_of_its_old_version() {
    let conn = with_plugins();
    let version = |n: i64| GLOBALS.replace("loads, random", &format!("loads, version: {n}, random"));
    store_plugin(&conn, "versioned", "aggregate", &version(1)).unwrap();
    let versions = |conn: &Connection| -> Vec<i64> {
        conn.prepare(&format!("SELECT versioned(x) ->> '$.version' FROM {} GROUP BY g", groups(10, 2)))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(versions(&conn), vec![1; 10]);
    conn.execute("UPDATE js_plugins SET source = ?1 WHERE name = 'versioned'", [version(2)]).unwrap();
    assert_eq!(versions(&conn), vec![2; 10]);
    // Inside a transaction that rolls back, and after it.
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("UPDATE js_plugins SET source = ?1 WHERE name = 'versioned'", [version(3)]).unwrap();
    assert_eq!(versions(&conn), vec![3; 10]);
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(versions(&conn), vec![2; 10]);
}

#[test]
fn groups_that_grow_their_memory_do_not_pile_up() {
    let conn = with_plugins();
    // Each group allocates 8 MiB beyond what the loaded world holds, then lets it go.
    store_plugin(
        &conn,
        "grower",
        "aggregate",
        "function init() { return []; } function step(s, x) { s.push(new Float64Array(1 << 20).fill(x)); return s; } function final(s) { return s.length; }",
    ).unwrap();
    let sql = format!("SELECT count(*), sum(n) FROM (SELECT g, grower(x) AS n FROM {} GROUP BY g)", groups(50, 1));
    let mut in_use = Vec::new();
    for _ in 0..3 {
        let (count, sum): (i64, i64) = conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((count, sum), (50, 50));
        in_use.push(debug_int(&conn, "$.connection_memory_in_use_bytes"));
    }
    // What stays between statements (parked worlds) does not grow with the groups run.
    assert!(in_use.iter().all(|&bytes| bytes <= in_use[0].max(32 << 20)), "memory in use after each statement: {in_use:?}");
}
