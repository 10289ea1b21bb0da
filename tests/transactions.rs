//! The code that runs is always what the database holds for the connection at that moment:
//! through `ROLLBACK`, `ROLLBACK TO`, statements that fail half-way, refused writes, commits
//! by this connection and by others, in rollback-journal and WAL modes. Also what changing a
//! plugin's `kind` and `n_args` does, and that the caches behind all this stay exact and bounded.

use std::path::PathBuf;

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

/// A file database in `mode` with jsbox loaded and plugin `version` returning 1.
fn database(name: &str, mode: &str) -> (PathBuf, Connection) {
    let path = temp_db(&format!("{name}-{mode}"));
    let conn = Connection::open(&path).unwrap();
    conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(())).unwrap();
    load(&conn);
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    set_version(&conn, 1).unwrap();
    (path, conn)
}

fn other_connection(path: &PathBuf) -> Connection {
    let conn = Connection::open(path).unwrap();
    load(&conn);
    conn
}

/// Stores (or replaces) plugin `version`, returning `n`.
fn set_version(conn: &Connection, n: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO js_plugins(name, kind, source) VALUES ('version', 'scalar', ?1)
           ON CONFLICT(name) DO UPDATE SET source = excluded.source",
        [format!("function main() {{ return {n} }}")],
    )
}

/// What plugin `version` runs, through its function and through js_call, and what the table
/// holds: all three must agree.
fn running(conn: &Connection) -> i64 {
    let by_function = value(conn, "SELECT version()");
    let by_call = value(conn, "SELECT js_call('version')");
    let stored = value(conn, "SELECT js_eval(source || '; main()') FROM js_plugins WHERE name = 'version'");
    assert_eq!(by_function, by_call, "the function and js_call disagree");
    assert_eq!(by_function, stored, "what runs is not what the table holds");
    match by_function {
        Value::Integer(n) => n,
        other => panic!("{other:?}"),
    }
}

const MODES: [&str; 2] = ["delete", "wal"];

#[test]
fn a_rolled_back_edit_stops_running() {
    for mode in MODES {
        let (path, conn) = database("rollback", mode);
        conn.execute_batch("BEGIN").unwrap();
        set_version(&conn, 2).unwrap();
        assert_eq!(running(&conn), 2, "{mode}: the transaction sees its own edit");
        set_version(&conn, 3).unwrap();
        assert_eq!(running(&conn), 3, "{mode}");
        conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(running(&conn), 1, "{mode}: after ROLLBACK");
        // And a committed edit runs, here and on another connection.
        conn.execute_batch("BEGIN").unwrap();
        set_version(&conn, 4).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(running(&conn), 4, "{mode}: after COMMIT");
        assert_eq!(running(&other_connection(&path)), 4, "{mode}: another connection");
        drop(conn);
        remove_db(&path);
    }
}

#[test]
fn rollback_to_a_savepoint_restores_the_code_of_that_moment() {
    for mode in MODES {
        let (path, conn) = database("savepoint", mode);
        conn.execute_batch("BEGIN").unwrap();
        set_version(&conn, 2).unwrap();
        conn.execute_batch("SAVEPOINT a").unwrap();
        set_version(&conn, 3).unwrap();
        conn.execute_batch("SAVEPOINT b").unwrap();
        set_version(&conn, 4).unwrap();
        assert_eq!(running(&conn), 4, "{mode}");
        conn.execute_batch("ROLLBACK TO b").unwrap();
        assert_eq!(running(&conn), 3, "{mode}: ROLLBACK TO b");
        conn.execute_batch("ROLLBACK TO a").unwrap();
        assert_eq!(running(&conn), 2, "{mode}: ROLLBACK TO a");
        // An epoch is never reused: a new edit after the rollbacks is seen as new.
        set_version(&conn, 5).unwrap();
        assert_eq!(running(&conn), 5, "{mode}: an edit after ROLLBACK TO");
        conn.execute_batch("ROLLBACK TO a; RELEASE a").unwrap();
        assert_eq!(running(&conn), 2, "{mode}");
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(running(&conn), 2, "{mode}: committed");
        drop(conn);
        remove_db(&path);
    }
}

#[test]
fn a_statement_that_fails_half_way_leaves_the_code_as_it_was() {
    for mode in MODES {
        let (path, conn) = database("half-way", mode);
        conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('other', 'scalar', 'function main() { return 10 }')", []).unwrap();
        for explicit in [false, true] {
            if explicit {
                conn.execute_batch("BEGIN").unwrap();
            }
            // Two rows updated; the second's source is refused: neither edit survives.
            let err = conn
                .execute(
                    "UPDATE js_plugins SET source = CASE name WHEN 'version' THEN 'function main() { return 2 }' ELSE 'function main( {' END",
                    [],
                )
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("js_plugins: other: SyntaxError:"), "{err}");
            assert_eq!(running(&conn), 1, "{mode}, explicit transaction: {explicit}");
            assert_eq!(value(&conn, "SELECT other()"), Value::Integer(10));
            // Three rows inserted by one statement; the third is refused: none is callable.
            let err = conn
                .execute(
                    "INSERT INTO js_plugins(name, kind, source) VALUES
                       ('first', 'scalar', 'function main() { return 1 }'),
                       ('second', 'scalar', 'function main() { return 2 }'),
                       ('sum', 'scalar', 'function main() { return 3 }')",
                    [],
                )
                .unwrap_err()
                .to_string();
            assert_eq!(err, "js_plugins: sum: plugin name sum would shadow the SQL function sum(); choose another name");
            for name in ["first", "second", "sum"] {
                assert_eq!(
                    error_of(&conn, &format!("SELECT js_call('{name}')")),
                    format!("{name}: no plugin named {name} in js_plugins (deleted?)")
                );
            }
            if explicit {
                conn.execute_batch("COMMIT").unwrap();
            }
        }
        assert_eq!(value(&conn, "SELECT count(*) FROM js_plugins"), Value::Integer(2));
        drop(conn);
        remove_db(&path);
    }
}

#[test]
fn a_refused_edit_never_replaces_the_running_code() {
    let (path, conn) = database("refused", "wal");
    for (source, expected) in [
        ("function main( {", "js_plugins: version: SyntaxError:"),
        ("throw new Error('at load')", "js_plugins: version: Error: at load (line 1)"),
        ("function other() {}", "js_plugins: version: a scalar plugin must define main; missing: main"),
    ] {
        let err = conn.execute("UPDATE js_plugins SET source = ?1 WHERE name = 'version'", [source]).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
        assert_eq!(running(&conn), 1);
    }
    // A row refused for its name never becomes callable, in any way.
    assert!(conn
        .execute("INSERT INTO js_plugins(name, kind, source) VALUES ('js_x', 'scalar', 'function main() { return 9 }')", [])
        .is_err());
    assert_eq!(error_of(&conn, "SELECT js_call('js_x')"), "js_x: no plugin named js_x in js_plugins (deleted?)");
    drop(conn);
    remove_db(&path);
}

#[test]
fn inserts_and_deletes_roll_back_too() {
    for mode in MODES {
        let (path, conn) = database("insert-delete", mode);
        conn.execute_batch("BEGIN").unwrap();
        conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('fresh', 'scalar', 'function main() { return 7 }')", []).unwrap();
        assert_eq!(value(&conn, "SELECT fresh()"), Value::Integer(7));
        conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(error_of(&conn, "SELECT fresh()"), "fresh: no plugin named fresh in js_plugins (deleted?)");
        assert_eq!(error_of(&conn, "SELECT js_call('fresh')"), "fresh: no plugin named fresh in js_plugins (deleted?)");
        conn.execute_batch("BEGIN").unwrap();
        conn.execute("DELETE FROM js_plugins WHERE name = 'version'", []).unwrap();
        assert_eq!(error_of(&conn, "SELECT version()"), "version: no plugin named version in js_plugins (deleted?)");
        conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(running(&conn), 1, "{mode}: the delete rolled back");
        drop(conn);
        remove_db(&path);
    }
}

#[test]
fn another_connections_uncommitted_edit_is_not_seen() {
    let (path, a) = database("isolation", "wal");
    let b = other_connection(&path);
    assert_eq!(running(&b), 1);
    a.execute_batch("BEGIN").unwrap();
    set_version(&a, 2).unwrap();
    assert_eq!(running(&a), 2);
    assert_eq!(running(&b), 1, "b does not see a's uncommitted edit");
    a.execute_batch("COMMIT").unwrap();
    assert_eq!(running(&b), 2, "b sees it once committed");
    // b's own transaction, rolled back, while a's commit came in between.
    b.execute_batch("BEGIN").unwrap();
    set_version(&b, 3).unwrap();
    assert_eq!(running(&b), 3);
    b.execute_batch("ROLLBACK").unwrap();
    set_version(&a, 4).unwrap();
    assert_eq!(running(&b), 4);
    assert_eq!(running(&a), 4);
    drop((a, b));
    remove_db(&path);
}

/// Another connection's commit in the middle of a statement that holds no read transaction on
/// the database (its rows come from `VALUES`) takes effect from the next statement on, as it does
/// anyway in one that reads a table (docs/functions.md).
#[test]
fn another_connections_commit_runs_from_the_next_statement() {
    for mode in MODES {
        let (path, a) = database(&format!("one-version-{mode}"), mode);
        let b = other_connection(&path);
        b.busy_timeout(std::time::Duration::ZERO).unwrap();
        for statement in ["SELECT version() FROM (VALUES (1), (2), (3))", "SELECT version() FROM js_plugins, (VALUES (1), (2), (3))"] {
            let before = running(&a);
            let mut rows_of = a.prepare(statement).unwrap();
            let mut rows = rows_of.query([]).unwrap();
            let first: i64 = rows.next().unwrap().unwrap().get(0).unwrap();
            assert_eq!(first, before);
            // In rollback-journal mode b cannot commit while a reads the table; in WAL it can.
            let committed = set_version(&b, before + 1).is_ok();
            let rest: Vec<i64> = std::iter::from_fn(|| rows.next().unwrap().map(|r| r.get(0).unwrap())).collect();
            assert_eq!(rest, vec![before, before], "{mode}: {statement}");
            drop(rows);
            drop(rows_of);
            if !committed {
                set_version(&b, before + 1).unwrap();
            }
            assert_eq!(running(&a), before + 1, "{mode}: the next statement runs the new version");
        }
        // Unless another statement of the connection runs the plugin meanwhile: from then on
        // both run the new version, and none goes back to the old one.
        let before = running(&a);
        let mut rows_of = a.prepare("SELECT version() FROM (VALUES (1), (2), (3))").unwrap();
        let mut rows = rows_of.query([]).unwrap();
        assert_eq!(rows.next().unwrap().unwrap().get::<_, i64>(0).unwrap(), before);
        set_version(&b, before + 1).unwrap();
        assert_eq!(value(&a, "SELECT version()"), Value::Integer(before + 1));
        let rest: Vec<i64> = std::iter::from_fn(|| rows.next().unwrap().map(|r| r.get(0).unwrap())).collect();
        assert_eq!(rest, vec![before + 1, before + 1], "{mode}");
        drop(rows);
        drop(rows_of);
        drop((a, b));
        remove_db(&path);
    }
}

#[test]
fn changing_n_args_takes_effect_at_once() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn.execute(
        "INSERT INTO js_plugins(name, kind, source) VALUES ('count_args', 'scalar', 'function main(...a) { return a.length }')",
        [],
    )
    .unwrap();
    assert_eq!(value(&conn, "SELECT count_args(1, 2, 3)"), Value::Integer(3));
    conn.execute("UPDATE js_plugins SET n_args = 2 WHERE name = 'count_args'", []).unwrap();
    assert_eq!(value(&conn, "SELECT count_args(1, 2)"), Value::Integer(2));
    assert_eq!(error_of(&conn, "SELECT count_args(1, 2, 3)"), "count_args: count_args takes 2 arguments, not 3");
    assert_eq!(error_of(&conn, "SELECT js_call('count_args', 1)"), "count_args: count_args takes 2 arguments, not 1");
    conn.execute("UPDATE js_plugins SET n_args = -1 WHERE name = 'count_args'", []).unwrap();
    assert_eq!(value(&conn, "SELECT count_args(1, 2, 3, 4)"), Value::Integer(4));
    conn.execute("UPDATE js_plugins SET n_args = 1 WHERE name = 'count_args'", []).unwrap();
    assert_eq!(error_of(&conn, "SELECT count_args()"), "count_args: count_args takes 1 argument, not 0");
}

#[test]
fn changing_the_kind_takes_effect_on_new_connections_and_says_so_on_this_one() {
    let path = temp_db("kind");
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('shape', 'scalar', 'function main(x) { return x * 10 }')", [])
        .unwrap();
    assert_eq!(value(&conn, "SELECT shape(4)"), Value::Integer(40));
    conn.execute(
        "UPDATE js_plugins SET kind = 'aggregate', source = 'function init() { return 0 } function step(s, x) { return s + x } function final(s) { return s }' WHERE name = 'shape'",
        [],
    )
    .unwrap();
    assert_eq!(
        error_of(&conn, "SELECT shape(4)"),
        "shape: shape is now an aggregate plugin, but this connection registered its function as a scalar function; reopen the connection (or load jsbox again) to use it as aggregate; js_agg() runs it as it is now"
    );
    assert_eq!(value(&conn, "SELECT js_agg('shape', value) FROM json_each('[1, 2, 3]')"), Value::Integer(6));
    let fresh = other_connection(&path);
    assert_eq!(value(&fresh, "SELECT shape(value) FROM json_each('[1, 2, 3]')"), Value::Integer(6));
    // A window plugin still serves a connection that registered it as an aggregate.
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('summed', 'aggregate', 'function init() { return 0 } function step(s, x) { return s + x } function final(s) { return s }')", []).unwrap();
    conn.execute(
        "UPDATE js_plugins SET kind = 'window', source = source || ' function inverse(s, x) { return s - x }' WHERE name = 'summed'",
        [],
    )
    .unwrap();
    assert_eq!(value(&conn, "SELECT summed(value) FROM json_each('[1, 2, 3]')"), Value::Integer(6));
    drop((conn, fresh));
    remove_db(&path);
}

#[test]
fn compiled_plugins_are_found_by_exact_source_and_the_cache_is_bounded() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('flip', 'scalar', 'function main() { return \"a\" }')", []).unwrap();
    // Back and forth between two sources: each time the right one runs.
    for round in 0..20 {
        let (source, expected) =
            if round % 2 == 0 { ("function main() { return \"b\" }", "b") } else { ("function main() { return \"a\" }", "a") };
        conn.execute("UPDATE js_plugins SET source = ?1 WHERE name = 'flip'", [source]).unwrap();
        assert_eq!(value(&conn, "SELECT flip()"), Value::Text(expected.into()));
    }
    // 400 edits, each a distinct 100 KB source: the cache of compiled plugins stays bounded.
    let padding = format!("/*{}*/", "x".repeat(100_000));
    let before = resident_kib();
    for i in 0..400 {
        conn.execute("UPDATE js_plugins SET source = ?1 WHERE name = 'flip'", [format!("{padding} function main() {{ return {i} }}")])
            .unwrap();
        assert_eq!(value(&conn, "SELECT flip()"), Value::Integer(i));
    }
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    let cached: i64 = conn.query_row("SELECT js_debug() ->> '$.plugins.compiled_cached'", [], |r| r.get(0)).unwrap();
    println!("400 edits of a 100 KB plugin: +{grown_mib} MiB resident, {cached} compiled plugins cached");
    assert!(cached < 400 && cached * 100_000 <= 40 << 20, "{cached} cached");
    assert!(grown_mib < 64, "+{grown_mib} MiB after 400 edits");
}

#[test]
fn a_commit_makes_the_next_call_read_only_its_own_row() {
    let path = temp_db("reread");
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('small', 'scalar', 'function main(x) { return x + 1 }')", []).unwrap();
    // An unrelated 4 MB plugin.
    let big = format!("/*{}*/ function main() {{ return 0 }}", "y".repeat(4 << 20));
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('big', 'scalar', ?1)", [&big]).unwrap();
    conn.execute_batch("CREATE TABLE t(x)").unwrap();
    let stats = |conn: &Connection| -> (i64, i64) {
        conn.query_row("SELECT js_debug() ->> '$.plugins.rows_read', js_debug() ->> '$.plugins.source_bytes_read'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert_eq!(value(&conn, "SELECT small(1)"), Value::Integer(2));
    let (rows0, bytes0) = stats(&conn);
    for i in 0..10 {
        conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap(); // a commit
        assert_eq!(value(&conn, &format!("SELECT small({i})")), Value::Integer(i + 1));
    }
    let (rows, bytes) = stats(&conn);
    assert!(rows - rows0 <= 10, "{} rows read for 10 commits", rows - rows0);
    assert!(bytes - bytes0 < 1000, "{} source bytes read: the 4 MB row was read again", bytes - bytes0);
    // Many calls within one statement read nothing.
    let (rows1, _) = stats(&conn);
    let total: i64 = conn.query_row("SELECT sum(small(x)) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(total, (1..=10).sum::<i64>());
    assert!(stats(&conn).0 - rows1 <= 1);
    drop(conn);
    remove_db(&path);
}
