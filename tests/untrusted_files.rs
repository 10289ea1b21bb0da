//! Database files made by someone else: what their schema (views, triggers, defaults, checks,
//! generated columns, indexes) and their `js_plugins` table can make jsbox do when a user merely
//! opens and queries them with jsbox loaded, SQLite's `trusted_schema` left ON (its default).
//!
//! - A file cannot raise the limits or change the plugins: `js_config(name, value)`,
//!   `js_plugins_init()`, `js_plugins_reload()` and `js_plugins_changed()` are DIRECTONLY.
//! - A `js_plugins` that is a view, a virtual table, or has generated columns is refused with a
//!   clear message, never read (reading it would run the file's code, and that code could call
//!   back into jsbox: it used to hang the connection forever).
//! - A bad row affects only itself: the other plugins load and run, and the bad row's name (if
//!   it has one) reports why.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

/// A file built by a connection without jsbox (a stranger's tool), then opened with jsbox.
fn strangers_file(name: &str, schema: &str) -> (PathBuf, Connection) {
    let path = temp_db(name);
    Connection::open(&path).unwrap().execute_batch(schema).unwrap();
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    (path, conn)
}

fn default_limits(conn: &Connection) {
    assert_eq!(
        value(conn, "SELECT js_config()"),
        Value::Text(r#"{"connection_memory_mb":512,"deterministic":0,"locked":0,"memory_limit_mb":64,"plugins":1,"step_limit":100,"time_limit_ms":1000}"#.into())
    );
}

/// Runs `f` on its own thread and fails the test if it does not finish in 20 s (a hang).
fn within_20s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || tx.send(f()).unwrap());
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Disconnected) => std::panic::resume_unwind(thread.join().unwrap_err()),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no answer within 20 s (hung)"),
    }
}

#[test]
fn a_database_file_cannot_raise_the_limits() {
    const RAISE: &str =
        "js_config('time_limit_ms', 3600000) + js_config('memory_limit_mb', 4096) + js_config('connection_memory_mb', 65536)";
    // Each schema object in a file of its own: SQLite refuses some of them (CHECK constraints,
    // generated columns) for the whole schema once it sees the DIRECTONLY function in them.
    let cases = [
        ("view", "CREATE VIEW raise AS SELECT {RAISE} AS v", "SELECT v FROM raise"),
        ("trigger", "CREATE TABLE t(x); CREATE TABLE log(x); CREATE TRIGGER on_insert AFTER INSERT ON t BEGIN INSERT INTO log VALUES ({RAISE}); END", "INSERT INTO t VALUES (1)"),
        ("default", "CREATE TABLE defaults(a, b DEFAULT ({RAISE}))", "INSERT INTO defaults(a) VALUES (1)"),
        ("check", "CREATE TABLE checked(a CHECK ({RAISE} > 0))", "INSERT INTO checked VALUES (1)"),
        ("generated", "CREATE TABLE generated(a, b AS ({RAISE}))", "SELECT b FROM generated"),
        ("index", "CREATE TABLE indexed(a); CREATE INDEX by_expr ON indexed(({RAISE}))", "INSERT INTO indexed VALUES (1)"),
        ("partial-index", "CREATE TABLE partial(a); CREATE INDEX part ON partial(a) WHERE {RAISE} > 0", "INSERT INTO partial VALUES (1)"),
    ];
    for (name, schema, use_it) in cases {
        let path = temp_db(&format!("limits-{name}"));
        {
            // The stranger's tool has a js_config() of its own, so that SQLite accepts every
            // schema object that names it (CHECKs, generated columns and indexes are resolved
            // when they are created).
            let stranger = Connection::open(&path).unwrap();
            let flags = rusqlite::functions::FunctionFlags::SQLITE_UTF8 | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC;
            stranger.create_scalar_function("js_config", 2, flags, |_| Ok(1)).unwrap();
            stranger.execute_batch(&schema.replace("{RAISE}", RAISE)).unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        load(&conn);
        assert_eq!(value(&conn, "PRAGMA trusted_schema"), Value::Integer(1), "SQLite's default");
        let err = conn.prepare(use_it).and_then(|mut stmt| stmt.raw_execute()).unwrap_err().to_string();
        assert!(err.contains("unsafe use of js_config()"), "{name}: {err}");
        default_limits(&conn);
        // Typed by the user, the same call works.
        assert_eq!(value(&conn, "SELECT js_config('time_limit_ms', 2000)"), Value::Integer(2000), "{name}");
        drop(conn);
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn a_database_file_cannot_change_plugins_through_jsbox_functions() {
    let (path, conn) = strangers_file(
        "plugin-functions",
        "CREATE VIEW init AS SELECT js_plugins_init();
         CREATE VIEW reload AS SELECT js_plugins_reload();
         CREATE VIEW checked AS SELECT js_plugins_check('x', 'scalar', -1, 'function main() { return 1 }');
         CREATE VIEW changed AS SELECT js_plugins_changed('x', 'scalar');
         CREATE VIEW issued AS SELECT js_plugins_epoch_issued(1);",
    );
    for (view, function) in [
        ("init", "js_plugins_init"),
        ("reload", "js_plugins_reload"),
        ("checked", "js_plugins_check"),
        ("changed", "js_plugins_changed"),
        ("issued", "js_plugins_epoch_issued"),
    ] {
        assert_eq!(error_of(&conn, &format!("SELECT * FROM {view}")), format!("unsafe use of {function}()"));
    }
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'js_plugins'", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 0, "no js_plugins was created");
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn flags_are_what_the_functions_are() {
    let conn = open();
    conn.execute_batch("PRAGMA trusted_schema = OFF; CREATE TEMP TABLE dummy(x);").unwrap();
    // With the schema untrusted, only innocuous functions may run from it: js_version is
    // (a constant); js_eval and js_debug are not (they cost time and show the connection's
    // state). TEMP views are trusted, so a main-database view is made by a second connection.
    let path = temp_db("flags");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE VIEW version AS SELECT js_version(); CREATE VIEW eval AS SELECT js_eval('1'); CREATE VIEW debug AS SELECT js_debug();",
        )
        .unwrap();
    conn.execute("ATTACH ?1 AS other", [path.to_str().unwrap()]).unwrap();
    assert_eq!(value(&conn, "SELECT * FROM other.version"), value(&conn, "SELECT js_version()"));
    assert_eq!(error_of(&conn, "SELECT * FROM other.eval"), "unsafe use of js_eval()");
    assert_eq!(error_of(&conn, "SELECT * FROM other.debug"), "unsafe use of js_debug()");
    drop(conn);
    let _ = std::fs::remove_file(path);
}

/// `js_plugins` as something that runs code when read, with that code calling back into jsbox.
const REENTRANT_TABLES: [(&str, &str, &str); 6] = [
    (
        "view-js_call",
        "CREATE TABLE real(name, kind, source, n_args);
         CREATE VIEW js_plugins AS SELECT name, kind, source, n_args FROM real WHERE js_call('x') IS NOT NULL;",
        "js_plugins is a view, not an ordinary table; jsbox reads plugins and modules only from a table",
    ),
    (
        "view-js_config",
        "CREATE VIEW js_plugins AS SELECT 'x' AS name, 'scalar' AS kind, 'function main() {}' AS source, -1 AS n_args WHERE js_config('time_limit_ms') > 0;",
        "js_plugins is a view, not an ordinary table; jsbox reads plugins and modules only from a table",
    ),
    (
        "virtual",
        "CREATE VIRTUAL TABLE js_plugins USING fts5(name, kind, source, n_args);
         INSERT INTO js_plugins VALUES ('x', 'scalar', 'function main() { return 1 }', -1);",
        "js_plugins is a virtual table, not an ordinary table; jsbox reads plugins and modules only from a table",
    ),
    (
        // Refused by SQLite itself: js_call (not deterministic) may not be in a generated column.
        "generated-js_call",
        "CREATE TABLE js_plugins(name TEXT PRIMARY KEY, kind TEXT, n_args INT, body TEXT, source TEXT AS (body || js_call('x')));
         INSERT INTO js_plugins(name, kind, n_args, body) VALUES ('x', 'scalar', -1, 'function main() { return 1 }');",
        "malformed database schema (js_plugins)",
    ),
    (
        "generated",
        "CREATE TABLE js_plugins(name TEXT PRIMARY KEY, kind TEXT, n_args INT, body TEXT, source TEXT AS (body || ''));
         INSERT INTO js_plugins(name, kind, n_args, body) VALUES ('x', 'scalar', -1, 'function main() { return 1 }');",
        "js_plugins.source is a generated column; jsbox reads plugins and modules only from stored columns",
    ),
    (
        "missing-column",
        "CREATE TABLE js_plugins(name TEXT PRIMARY KEY, kind TEXT, source TEXT);",
        "js_plugins has no column n_args",
    ),
];

#[test]
fn a_js_plugins_that_is_not_an_ordinary_table_is_refused_never_read() {
    for (name, schema, message) in REENTRANT_TABLES {
        let (path, schema, message) = (temp_db(name), schema.to_owned(), message.to_owned());
        within_20s(name, move || {
            {
                // The stranger's tool has look-alikes of jsbox's functions (SQLite resolves a
                // generated column's functions when the table is created).
                let stranger = Connection::open(&path).unwrap();
                let flags = rusqlite::functions::FunctionFlags::SQLITE_UTF8 | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC;
                stranger.create_scalar_function("js_call", -1, flags, |_| Ok("")).unwrap();
                stranger.execute_batch(&schema).unwrap();
            }
            // Loading never fails because of js_plugins, and never hangs.
            let conn = Connection::open(&path).unwrap();
            load(&conn);
            for (sql, function) in [
                ("SELECT js_plugins_reload()", "js_plugins_reload"),
                ("SELECT js_plugins_init()", "js_plugins_init"),
                ("SELECT js_call('x')", "x"),
                ("SELECT js_agg('x', 1)", "x"),
            ] {
                let err = error_of(&conn, sql);
                assert!(err.starts_with(&format!("{function}: ")) && err.contains(&message), "{sql}: {err}");
            }
            default_limits(&conn);
            assert_usable(&conn);
            drop(conn);
            let _ = std::fs::remove_file(&path);
        });
    }
}

#[test]
fn an_ordinary_table_is_read_with_the_schema_untrusted() {
    // A CHECK constraint or a DEFAULT never runs on a read, and a trigger on the table runs only
    // for writes; jsbox reads with trusted_schema off anyway, whatever the connection's setting.
    let schema = std::fs::read_to_string(repo_root().join("sql/schema.sql")).unwrap();
    let (path, conn) = strangers_file(
        "ordinary",
        &format!(
            "{schema}
             INSERT INTO js_plugins(name, kind, source) VALUES ('one', 'scalar', 'function main() {{ return 1 }}');"
        ),
    );
    conn.execute_batch("PRAGMA trusted_schema = ON").unwrap();
    assert_eq!(value(&conn, "SELECT one()"), Value::Integer(1));
    assert_eq!(value(&conn, "PRAGMA trusted_schema"), Value::Integer(1), "the user's setting is restored");
    drop(conn);
    let _ = std::fs::remove_file(path);
}

/// A table without jsbox's constraints, as an older version or another tool may have made it.
const LOOSE_TABLE: &str = "CREATE TABLE js_plugins(name, kind, source, n_args, deterministic, description, updated_at);";

#[test]
fn one_bad_row_affects_only_itself() {
    let long = "a".repeat(300);
    let rows = [
        "(NULL, 'scalar', 'function main() { return 0 }', -1)".to_owned(),
        "(5, 'scalar', 'function main() { return 0 }', -1)".to_owned(),
        "('tabel_kind', 'tabel', 'function main() { return 0 }', -1)".to_owned(),
        "('huge_args', 'scalar', 'function main() { return 0 }', 1099511627776)".to_owned(),
        "('text_args', 'scalar', 'function main() { return 0 }', 'two')".to_owned(),
        "('no_source', 'scalar', NULL, -1)".to_owned(),
        "('bad_utf8', 'scalar', x'66756e6374696f6eff', -1)".to_owned(),
        "('syntax', 'scalar', 'function main( {', -1)".to_owned(),
        "('sum', 'scalar', 'function main() { return 0 }', -1)".to_owned(),
        "('like', 'scalar', 'function main() { return 0 }', -1)".to_owned(),
        format!("('{long}', 'scalar', 'function main() {{ return 0 }}', -1)"),
        "('good_scalar', 'scalar', 'function main(x) { return x * 2 }', 1)".to_owned(),
        "('good_total', 'aggregate', 'function init() { return 0 } function step(s, x) { return s + x } function final(s) { return s }', NULL)".to_owned(),
    ];
    let schema = format!("{LOOSE_TABLE} INSERT INTO js_plugins(name, kind, source, n_args) VALUES {};", rows.join(", "));
    let (path, conn) = strangers_file("bad-rows", &schema);
    // The good plugins load and run.
    assert_eq!(value(&conn, "SELECT good_scalar(21)"), Value::Integer(42));
    assert_eq!(value(&conn, "SELECT good_total(value) FROM json_each('[1, 2, 3]')"), Value::Integer(6));
    // js_plugins_reload() names every bad row, and registers the good ones all the same.
    let err = error_of(&conn, "SELECT js_plugins_reload()");
    for expected in [
        "a row of js_plugins has no name",
        "the plugin name must be TEXT, not INTEGER",
        "tabel_kind: unknown kind \"tabel\"; a plugin is scalar, aggregate or window",
        "huge_args: n_args is 1099511627776; it must be -1 (any number) or between 0 and 127",
        "text_args: n_args is \"two\" (TEXT); it must be -1 (any number) or between 0 and 127",
        "no_source: the source is NULL",
        "bad_utf8: the plugin source is not valid UTF-8 (invalid byte at offset 8)",
        "syntax: SyntaxError:",
        "sum: plugin name sum would shadow the SQL function sum(); choose another name",
        "like: plugin name like would take over the SQL operator LIKE; choose another name",
        "plugin name is 300 bytes long; SQL function names are at most 255 bytes",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from {err}");
    }
    assert!(err.starts_with("js_plugins_reload: "), "{err}");
    assert!(!err.contains("good_"), "{err}");
    assert_eq!(value(&conn, "SELECT good_scalar(1)"), Value::Integer(2));
    // A bad row with a usable name reports why, through its own function or js_call.
    assert_eq!(error_of(&conn, "SELECT tabel_kind()"), "tabel_kind: unknown kind \"tabel\"; a plugin is scalar, aggregate or window");
    assert_eq!(
        error_of(&conn, "SELECT js_call('huge_args')"),
        "huge_args: n_args is 1099511627776; it must be -1 (any number) or between 0 and 127"
    );
    assert_eq!(error_of(&conn, "SELECT no_source()"), "no_source: the source is NULL");
    assert!(error_of(&conn, "SELECT syntax()").starts_with("syntax: SyntaxError:"));
    // The built-ins and operators are untouched.
    assert_eq!(value(&conn, "SELECT sum(value) FROM json_each('[1, 2]')"), Value::Integer(3));
    assert_eq!(value(&conn, "SELECT 'abc' LIKE 'a%'"), Value::Integer(1));
    assert_usable(&conn);
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn the_schema_refuses_what_it_can() {
    // jsbox's own table, written by a connection without jsbox (no trigger checks the rows):
    // the constraints alone refuse what they can express.
    let plain = Connection::open_in_memory().unwrap();
    plain.execute_batch(&std::fs::read_to_string(repo_root().join("sql/schema.sql")).unwrap()).unwrap();
    let insert = |name: Option<&str>, kind: &str, n_args: i64| {
        plain
            .execute("INSERT INTO js_plugins(name, kind, source, n_args) VALUES (?1, ?2, 'function main() {}', ?3)", (name, kind, n_args))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    assert_eq!(insert(None, "scalar", -1).unwrap_err(), "NOT NULL constraint failed: js_plugins.name");
    for name in ["like", "REGEXP", "Match", "glob", "js_thing", "has space", "9lives", &"a".repeat(256)] {
        assert!(insert(Some(name), "scalar", -1).unwrap_err().starts_with("CHECK constraint failed"), "{name}");
    }
    assert!(insert(Some("x"), "tabel", -1).unwrap_err().starts_with("CHECK constraint failed"));
    assert!(insert(Some("x"), "scalar", 1 << 40).unwrap_err().starts_with("CHECK constraint failed"));
    assert!(insert(Some("x"), "scalar", -2).unwrap_err().starts_with("CHECK constraint failed"));
    assert_eq!(insert(Some(&"a".repeat(255)), "scalar", 127), Ok(()));
}

#[test]
fn names_that_cannot_be_plugins_are_refused_with_the_reason() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    let store = |name: &str| {
        conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES (?1, 'scalar', 'function main() { return 7 }')", [name])
            .map(drop)
            .map_err(|e| e.to_string())
    };
    for op in ["regexp", "match", "glob", "like", "LIKE", "Glob"] {
        assert_eq!(
            store(op).unwrap_err(),
            format!("js_plugins: {op}: plugin name {op} would take over the SQL operator {}; choose another name", op.to_ascii_uppercase())
        );
    }
    let long = "n".repeat(300);
    assert_eq!(
        store(&long).unwrap_err(),
        format!("js_plugins: {long}: plugin name is 300 bytes long; SQL function names are at most 255 bytes")
    );
    assert_eq!(store(&"n".repeat(255)), Ok(()));
    assert_eq!(value(&conn, &format!("SELECT {}()", "n".repeat(255))), Value::Integer(7));
    // The operators still work as SQLite's.
    assert_eq!(value(&conn, "SELECT 'abc' GLOB 'a*'"), Value::Integer(1));
    assert_eq!(value(&conn, "SELECT count(*) FROM js_plugins"), Value::Integer(1));
}

#[test]
fn a_host_locks_its_ceilings_and_turns_stored_plugins_off() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('stored', 'scalar', 'function main() { return 1 }')", []).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('total_of', 'aggregate', 'function init() { return 0 } function step(s, x) { return s + x } function final(s) { return s }')", []).unwrap();
    // What a host does before any visitor's SQL: its ceilings, stored plugins off, then the lock.
    for sql in [
        "SELECT js_config('time_limit_ms', 200)",
        "SELECT js_config('memory_limit_mb', 32)",
        "SELECT js_config('plugins', 0)",
        "SELECT js_config('locked', 1)",
    ] {
        value(&conn, sql);
    }
    // A visitor can tighten, never loosen.
    let locked = |setting: &str, now: &str| {
        format!("js_config: the settings of this connection are locked: {setting} can be tightened (it is {now}), not loosened")
    };
    assert_eq!(error_of(&conn, "SELECT js_config('time_limit_ms', 5000)"), locked("time_limit_ms", "200 ms"));
    assert_eq!(error_of(&conn, "SELECT js_config('memory_limit_mb', 4096)"), locked("memory_limit_mb", "32 MiB"));
    assert_eq!(error_of(&conn, "SELECT js_config('connection_memory_mb', 1024)"), locked("connection_memory_mb", "512 MiB"));
    assert_eq!(error_of(&conn, "SELECT js_config('plugins', 1)"), locked("plugins", "0"));
    assert_eq!(error_of(&conn, "SELECT js_config('locked', 0)"), locked("locked", "1"));
    assert_eq!(value(&conn, "SELECT js_config('time_limit_ms', 100)"), Value::Integer(100));
    assert_eq!(error_of(&conn, "SELECT js_eval('while (true) {}')"), "js_eval: time limit of 100 ms exceeded");
    // Stored plugins do not run, in any way.
    let off = "stored plugins are off on this connection (js_config('plugins', 0))";
    assert_eq!(error_of(&conn, "SELECT stored()"), format!("stored: {off}"));
    assert_eq!(error_of(&conn, "SELECT js_call('stored')"), format!("stored: {off}"));
    assert_eq!(error_of(&conn, "SELECT total_of(1)"), format!("total_of: {off}"));
    assert_eq!(error_of(&conn, "SELECT js_agg('total_of', 1)"), format!("total_of: {off}"));
    assert_eq!(error_of(&conn, "SELECT js_plugins_reload()"), format!("js_plugins_reload: {off}"));
    assert_usable(&conn);
}
