//! What an attack session found against the first version of the system-wide defences, each
//! kept as a test of its own so that it stays fixed: a CHECK constraint on SQLite 3.40 calling a
//! DIRECTONLY function, a virtual `js_plugins` disguised by a comment, re-reads that aborted
//! unrelated statements, own commits and edits unseen without triggers or with a busy database,
//! jsbox loaded twice, registrations left by refused rows, kept worlds pinning the budget, names
//! equal but for case, host memory held by plugin entries, and a tampered epoch. A second round
//! found: two SQLite libraries in one process, CHECK constraints reaching the limits through a
//! nested statement or a word in the user's statement, plugin registrations made from a CHECK,
//! loading quadratic beyond 50,000 rows, sources bigger than any sandbox, deleted plugins never forgotten, duplicate names in a table without a key.

use std::path::PathBuf;
use std::process::Command;

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

fn with_plugins(path: &PathBuf) -> Connection {
    let conn = Connection::open(path).unwrap();
    load(&conn);
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn
}

fn returns(n: i64) -> String {
    format!("function main() {{ return {n} }}")
}

/// `script` in `/usr/bin/sqlite3` (SQLite 3.40) on `db`, with jsbox loaded: stdout and stderr.
fn shell(db: &PathBuf, script: &str) -> (String, String) {
    let mut child = Command::new("/usr/bin/sqlite3")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let input = format!(".bail off\n.load {}\n{script}\n", extension_path());
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_check_constraint_cannot_raise_the_limits_on_sqlite_3_40() {
    // Made with Debian's Python (SQLite 3.40) and a look-alike js_config of its own.
    let path = temp_db("check-340");
    let script = format!(
        "import sqlite3\nc = sqlite3.connect({:?})\nc.create_function('js_config', 2, lambda a, b: 1, deterministic=True)\nc.create_function('js_plugins_init', 0, lambda: 1, deterministic=True)\nc.executescript(\"CREATE TABLE t(x CHECK (js_config('time_limit_ms', 3600000) + js_config('memory_limit_mb', 4096))); CREATE TABLE u(x CHECK (js_plugins_init() >= 0));\")\nc.commit()\n",
        path.display().to_string()
    );
    let made = Command::new("/usr/bin/python3").arg("-c").arg(&script).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (out, err) = shell(
        &path,
        "PRAGMA integrity_check;\nINSERT INTO t VALUES (1);\nINSERT INTO u VALUES (1);\nSELECT js_config();\nSELECT count(*) FROM sqlite_master WHERE name = 'js_plugins';",
    );
    // (PRAGMA integrity_check reports a failing CHECK as a row of its result, not an error.)
    assert!(err.contains(&format!("js_config: {IN_A_WRITE}")), "{err}");
    assert!(err.contains(&format!("js_plugins_init: {IN_A_WRITE}")), "{err}");
    assert!(out.contains(r#"{"connection_memory_mb":512,"deterministic":0,"locked":0,"memory_limit_mb":64,"plugins":1,"step_limit":100,"time_limit_ms":1000}"#), "{out}");
    assert!(out.trim_end().ends_with('0'), "no js_plugins was created: {out}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_virtual_table_disguised_by_a_comment_is_refused_and_never_hangs() {
    let path = temp_db("disguised");
    {
        let stranger = Connection::open(&path).unwrap();
        stranger
            .execute_batch(
                "CREATE TABLE content(id INTEGER PRIMARY KEY, name, kind, source, n_args);
                 CREATE VIEW content_v AS WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever)
                   SELECT n AS id, 'x' AS name, 'scalar' AS kind, 'function main() { return 1 }' AS source, -1 AS n_args FROM forever;
                 CREATE VIRTUAL TABLE js_plugins USING fts5(name, kind, source, n_args, content='content_v', content_rowid='id');
                 PRAGMA writable_schema = ON;
                 UPDATE sqlite_master SET sql = replace(sql, 'CREATE VIRTUAL', 'CREATE /**/ VIRTUAL') WHERE name = 'js_plugins';
                 PRAGMA writable_schema = OFF;",
            )
            .unwrap();
    }
    let (out, err) = std::thread::scope(|scope| {
        let run = scope.spawn(|| shell(&path, "SELECT 'loaded';\nSELECT js_plugins_reload();"));
        let started = std::time::Instant::now();
        while !run.is_finished() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "the shell hung");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        run.join().unwrap()
    });
    assert!(out.contains("loaded"), "{out} {err}");
    assert!(err.contains("js_plugins is a virtual table, not an ordinary table"), "{err}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn reading_a_plugin_row_never_aborts_other_statements() {
    let path = temp_db("no-abort");
    let a = with_plugins(&path);
    // WAL: the other connection commits while this one holds a statement open.
    a.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    store_plugin(&a, "up", "scalar", "function main(x) { return String(x).toUpperCase() }").unwrap();
    a.execute_batch(
        "CREATE TABLE cats(id INTEGER PRIMARY KEY, name); INSERT INTO cats VALUES (1, 'one'), (2, 'two');
         CREATE TABLE t(id INTEGER PRIMARY KEY, x, cat); INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 1);
         CREATE TABLE log(x);",
    )
    .unwrap();
    let b = Connection::open(&path).unwrap();
    for round in 0..3 {
        // Another connection's commit: the next plugin call reads its row again.
        b.execute("INSERT INTO log VALUES (?1)", [round]).unwrap();
        let rows: Vec<(i64, String, String)> = a
            .prepare("SELECT id, up(x), (SELECT name FROM cats WHERE cats.id = t.cat) FROM t ORDER BY (SELECT name FROM cats WHERE cats.id = t.cat), id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, vec![(1, "A".into(), "one".into()), (3, "C".into(), "one".into()), (2, "B".into(), "two".into())]);
    }
    // A statement that does not use jsbox, stepped while a plugin call reads its row.
    let mut cursor = a.prepare("SELECT id, (SELECT name FROM cats WHERE cats.id = t.cat) FROM t ORDER BY id").unwrap();
    let mut rows = cursor.query([]).unwrap();
    let mut seen = 0;
    while let Some(row) = rows.next().unwrap() {
        let _: i64 = row.get(0).unwrap();
        b.execute("INSERT INTO log VALUES (0)", []).unwrap();
        assert_eq!(value(&a, "SELECT up('q')"), Value::Text("Q".into()));
        seen += 1;
    }
    assert_eq!(seen, 3);
    drop(rows);
    drop(cursor);
    drop((a, b));
    let _ = std::fs::remove_file(path);
}

#[test]
fn own_edits_are_seen_without_the_triggers() {
    // The schema run by hand (no triggers ever), a table dropped and made again, a trigger
    // dropped, a table renamed: the connection's own edits still run, committed or not.
    let path = temp_db("untracked");
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    conn.execute_batch(&std::fs::read_to_string(repo_root().join("sql/schema.sql")).unwrap()).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('foo', 'scalar', ?1)", [returns(1)]).unwrap();
    assert_eq!(value(&conn, "SELECT js_call('foo')"), Value::Integer(1));
    conn.execute("UPDATE js_plugins SET source = ?1", [returns(2)]).unwrap();
    assert_eq!(value(&conn, "SELECT js_call('foo')"), Value::Integer(2), "an own commit, no triggers");
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("UPDATE js_plugins SET source = ?1", [returns(3)]).unwrap();
    assert_eq!(value(&conn, "SELECT js_call('foo')"), Value::Integer(3), "an own uncommitted edit, no triggers");
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(value(&conn, "SELECT js_call('foo')"), Value::Integer(2));
    conn.execute("DELETE FROM js_plugins", []).unwrap();
    assert_eq!(error_of(&conn, "SELECT js_call('foo')"), "foo: no plugin named foo in js_plugins (deleted?)");

    // With the triggers, then the table dropped and made again (a restored dump).
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "foo", "scalar", &returns(4)).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(4));
    conn.execute_batch("DROP TABLE js_plugins").unwrap();
    conn.execute_batch(&std::fs::read_to_string(repo_root().join("sql/schema.sql")).unwrap()).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('foo', 'scalar', ?1)", [returns(5)]).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(5));
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("UPDATE js_plugins SET source = ?1", [returns(6)]).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(6));
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(5));

    // A trigger dropped by hand.
    conn.query_row("SELECT js_plugins_reload()", [], |_| Ok(())).unwrap();
    conn.execute_batch("DROP TRIGGER temp.jsbox_plugins_updated").unwrap();
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("UPDATE js_plugins SET source = ?1", [returns(7)]).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(7));
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(5));

    // Renamed away: no js_plugins, no plugin.
    conn.execute_batch("ALTER TABLE js_plugins RENAME TO old_plugins").unwrap();
    assert_eq!(error_of(&conn, "SELECT foo()"), "foo: no plugin named foo in js_plugins (deleted?)");
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_busy_database_never_runs_stale_code() {
    let path = temp_db("busy");
    let a = with_plugins(&path);
    a.execute_batch("PRAGMA journal_mode = DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
    store_plugin(&a, "foo", "scalar", &returns(1)).unwrap();
    assert_eq!(value(&a, "SELECT foo() FROM t"), Value::Integer(1));
    a.busy_timeout(std::time::Duration::from_millis(100)).unwrap();
    let b = Connection::open(&path).unwrap();
    b.execute("UPDATE js_plugins SET source = ?1", [returns(2)]).unwrap();
    b.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // a cannot look: an error, never the old code.
    match a.query_row("SELECT foo()", [], |r| r.get::<_, Value>(0)) {
        Ok(v) => assert_ne!(v, Value::Integer(1), "stale code ran"),
        Err(e) => assert!(e.to_string().contains("locked"), "{e}"),
    }
    b.execute_batch("ROLLBACK").unwrap();
    assert_eq!(value(&a, "SELECT foo()"), Value::Integer(2));
    drop((a, b));
    let _ = std::fs::remove_file(path);
}

#[test]
fn loading_jsbox_twice_keeps_one_view_of_the_plugins() {
    let path = temp_db("twice");
    let conn = with_plugins(&path);
    store_plugin(&conn, "foo", "scalar", &returns(1)).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(1));
    load(&conn);
    conn.execute("DELETE FROM js_plugins", []).unwrap();
    assert_eq!(error_of(&conn, "SELECT foo()"), "foo: no plugin named foo in js_plugins (deleted?)");
    store_plugin(&conn, "foo", "scalar", &returns(2)).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(2));
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("UPDATE js_plugins SET source = ?1", [returns(3)]).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(3));
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(2));
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_refused_row_registers_nothing() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    let aggregate = "function init() { return 0 } function step(s) { return s + 1 } function final(s) { return s }";
    // Refused by a CHECK constraint after jsbox's checks passed.
    let refused = conn.execute("INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('bar', 'aggregate', ?1, 5)", [aggregate]);
    assert!(refused.unwrap_err().to_string().contains("CHECK constraint failed"));
    store_plugin(&conn, "bar", "scalar", &returns(8)).unwrap();
    assert_eq!(value(&conn, "SELECT bar()"), Value::Integer(8));
    // A row loaded with a broken kind, then fixed to another kind: reload says what to do.
    let path = temp_db("broken-kind");
    {
        let plain = Connection::open(&path).unwrap();
        plain.execute_batch("CREATE TABLE js_plugins(name, kind, source, n_args); INSERT INTO js_plugins VALUES ('foo', 'scalr', 'function main() { return 1 }', -1);").unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    assert_eq!(error_of(&conn, "SELECT foo()"), "foo: unknown kind \"scalr\"; a plugin is scalar, aggregate or window");
    conn.execute("UPDATE js_plugins SET kind = 'aggregate', source = ?1", [aggregate]).unwrap();
    let expected = "foo is now an aggregate plugin, but this connection registered its function as a scalar function; reopen the connection (or load jsbox again) to use it as aggregate; js_agg() runs it as it is now";
    assert_eq!(error_of(&conn, "SELECT foo(1)"), format!("foo: {expected}"));
    assert_eq!(error_of(&conn, "SELECT js_plugins_reload()"), format!("js_plugins_reload: foo: {expected}"));
    assert_eq!(value(&conn, "SELECT js_agg('foo', value) FROM json_each('[1, 2]')"), Value::Integer(2));
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn kept_worlds_never_pin_the_budget() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init(), js_config('memory_limit_mb', 400)", [], |_| Ok(())).unwrap();
    for i in 0..16 {
        store_plugin(
            &conn,
            &format!("keep{i}"),
            "scalar",
            "const kept = new Uint8Array(30e6).fill(1); function main() { return kept.length }",
        )
        .unwrap();
        assert_eq!(value(&conn, &format!("SELECT keep{i}()")), Value::Integer(30_000_000));
    }
    let held = |conn: &Connection| -> i64 {
        conn.query_row("SELECT js_debug() ->> '$.connection_memory_in_use_bytes'", [], |r| r.get(0)).unwrap()
    };
    assert!(held(&conn) <= 256 << 20, "kept worlds hold {} bytes, more than half the 512 MiB budget", held(&conn));
    // A call and a group that need more than the other half get it: the kept worlds give way.
    assert_eq!(value(&conn, "SELECT js_eval('new Uint8Array(300e6).length')"), Value::Integer(300_000_000));
    for i in 0..16 {
        assert_eq!(value(&conn, &format!("SELECT keep{i}()")), Value::Integer(30_000_000));
    }
    store_plugin(
        &conn,
        "grab",
        "aggregate",
        "function init() { return new Uint8Array(300e6) } function step(s) { return s } function final(s) { return s.length }",
    )
    .unwrap();
    assert_eq!(value(&conn, "SELECT grab(1)"), Value::Integer(300_000_000));
}

#[test]
fn names_equal_but_for_case_are_one_function() {
    let path = temp_db("case");
    {
        let plain = Connection::open(&path).unwrap();
        plain
            .execute_batch(
                "CREATE TABLE js_plugins(name, kind, source, n_args);
                 INSERT INTO js_plugins VALUES ('foo', 'scalar', 'function main(x) { return \"foo \" + x }', -1);
                 INSERT INTO js_plugins VALUES ('Foo', 'aggregate', 'function init() { return 0 } function step(s) { return s } function final(s) { return \"Foo\" }', -1);",
            )
            .unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    assert_eq!(value(&conn, "SELECT foo(1)"), Value::Text("foo 1".into()), "the first row's own code");
    assert_eq!(
        error_of(&conn, "SELECT js_plugins_reload()"),
        "js_plugins_reload: Foo: plugin name Foo is the same SQL function as plugin foo (SQLite ignores case in function names)"
    );
    drop(conn);
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "foo", "scalar", &returns(1)).unwrap();
    assert_eq!(
        store_plugin(&conn, "FOO", "scalar", &returns(2)).unwrap_err().to_string(),
        "js_plugins: FOO: plugin name FOO is the same SQL function as plugin foo (SQLite ignores case in function names)"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn plugin_entries_are_bounded_by_bytes() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    let padding = format!("/*{}*/", "z".repeat(1 << 20));
    for i in 0..100 {
        store_plugin(&conn, &format!("big{i}"), "scalar", &format!("{padding} function main() {{ return {i} }}")).unwrap();
    }
    let total: i64 = conn.query_row("SELECT sum(js_call(name)) FROM js_plugins", [], |r| r.get(0)).unwrap();
    assert_eq!(total, (0..100).sum::<i64>());
    let bytes: i64 = conn.query_row("SELECT js_debug() ->> '$.plugins.entry_bytes'", [], |r| r.get(0)).unwrap();
    assert!(bytes <= 66 << 20, "entries hold {bytes} bytes for 100 MB of plugins");
    // Evicted entries are read again when called.
    assert_eq!(value(&conn, "SELECT big0()"), Value::Integer(0));
}

#[test]
fn the_epoch_cannot_be_set_by_hand() {
    let path = temp_db("epoch");
    let conn = with_plugins(&path);
    store_plugin(&conn, "foo", "scalar", &returns(1)).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("UPDATE js_plugins SET source = ?1", [returns(5)]).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(5));
    let saved: i64 = conn.query_row("SELECT epoch FROM temp.jsbox_plugins_epoch", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE js_plugins SET source = ?1", [returns(6)]).unwrap();
    let err = conn.execute("UPDATE temp.jsbox_plugins_epoch SET epoch = ?1", [saved]).unwrap_err().to_string();
    assert_eq!(err, "only jsbox sets the epoch of js_plugins");
    assert!(conn.execute("INSERT INTO temp.jsbox_plugins_epoch VALUES (?1)", [saved]).is_err());
    assert!(conn.execute("DELETE FROM temp.jsbox_plugins_epoch", []).is_err());
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(6));
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_trigger_named_js_plugins_is_not_the_table() {
    let conn = open();
    conn.execute_batch("CREATE TABLE other(x); CREATE TRIGGER JS_PLUGINS AFTER INSERT ON other BEGIN SELECT 1; END;").unwrap();
    assert_eq!(value(&conn, "SELECT js_plugins_init()"), Value::Integer(0));
    store_plugin(&conn, "foo", "scalar", &returns(1)).unwrap();
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(1));
}

/// Runs a Python host script (from `tests/`) that prints `N passed, N failed`.
fn python_host(python: &std::path::Path, script: &str, args: &[&str]) {
    let out = Command::new(python).current_dir(repo_root()).arg(format!("tests/{script}")).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} {args:?}: status {:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().last().is_some_and(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
}

#[test]
fn a_second_sqlite_library_in_the_process_is_refused_not_crashed() {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    let python = target.join("apsw-venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    for order in ["apsw-first", "sqlite3-first"] {
        python_host(&python, "two_libraries.py", &[&extension_path(), order]);
    }
}

/// A file made with Debian's Python (SQLite 3.40) whose schema is `schema`, with look-alikes of
/// `functions` (each taking `n` arguments) so that SQLite accepts it.
fn file_made_on_340(name: &str, functions: &[(&str, i32)], schema: &str) -> PathBuf {
    let path = temp_db(name);
    let look_alikes: String =
        functions.iter().map(|(f, n)| format!("c.create_function('{f}', {n}, lambda *a: 'x', deterministic=True)\n")).collect();
    let script = format!(
        "import sqlite3\nc = sqlite3.connect({:?})\n{look_alikes}c.executescript({schema:?})\nc.commit()\n",
        path.display().to_string()
    );
    let made = Command::new("/usr/bin/python3").arg("-c").arg(&script).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    path
}

const IN_A_WRITE: &str =
    "refused: limits and plugins are changed by a statement of their own (SELECT js_config(...)), not inside one that writes";
const OTHER_STATEMENT: &str =
    "refused: another statement of this connection is still running (finish or reset it first); jsbox cannot tell which one made the call";
const DEFAULT_LIMITS: &str =
    r#"{"connection_memory_mb":512,"deterministic":0,"locked":0,"memory_limit_mb":64,"plugins":1,"step_limit":100,"time_limit_ms":1000}"#;

#[test]
fn a_check_constraint_cannot_reach_the_limits_through_a_nested_statement_or_a_mention() {
    // The shell's sha3_query runs a nested statement whose text calls js_config.
    let path = file_made_on_340(
        "sha3",
        &[("sha3_query", 1), ("js_config", 2)],
        "CREATE TABLE notes(body TEXT CHECK (sha3_query('SELECT js_config(''time_limit_ms'', 3600000)') IS NOT NULL));
         CREATE TABLE marked(body TEXT CHECK (js_config('memory_limit_mb', 4096) > 0));",
    );
    let (out, err) = shell(
        &path,
        "INSERT INTO notes VALUES ('just a note');
         INSERT INTO marked VALUES ('see the js_config( docs');
         INSERT INTO marked VALUES (1) /* js_config( */;
         SELECT js_config();",
    );
    assert!(out.contains(DEFAULT_LIMITS), "{out} {err}");
    // Inside writes, refused; the nested statement runs beside the INSERT, so its call is
    // refused as well (sha3_query does not pass the error on): the limits stay.
    assert_eq!(err.matches(IN_A_WRITE).count(), 2, "{err}");
    // Another statement of the connection that calls js_config is still running (an open
    // cursor) while a CHECK calls it from a second one.
    let script = format!(
        "import sqlite3\nc = sqlite3.connect({:?})\nc.enable_load_extension(True)\nc.load_extension({:?})\n\
         c.execute('CREATE TABLE src(k)'); c.executemany('INSERT INTO src VALUES (?)', [('time_limit_ms',), ('memory_limit_mb',)])\n\
         cursor = c.execute('SELECT k, js_config(k) FROM src'); cursor.fetchone()\n\
         try:\n    c.execute(\"INSERT INTO marked VALUES ('x')\")\nexcept sqlite3.OperationalError as e:\n    print(e)\n\
         print(c.execute('SELECT js_config()').fetchone()[0])\n",
        path.display().to_string(),
        extension_path()
    );
    let run = Command::new("/usr/bin/python3").arg("-c").arg(&script).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains(OTHER_STATEMENT) && stdout.contains(DEFAULT_LIMITS), "{stdout} {}", String::from_utf8_lossy(&run.stderr));
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_check_constraint_cannot_register_plugin_functions() {
    // On SQLite 3.40 the CHECK runs; a function is registered only for a stored row, as that
    // row says, never as the arguments say.
    let path = file_made_on_340(
        "check-register",
        &[("js_plugins_changed", 2)],
        "CREATE TABLE log(x CHECK (js_plugins_changed('slugify', 'window') IS NOT NULL));",
    );
    let (out, err) = shell(
        &path,
        "SELECT js_plugins_init();
         INSERT INTO log VALUES ('hello');
         INSERT INTO js_plugins(name, kind, source) VALUES ('slugify', 'scalar', 'function main(s) { return s.toLowerCase() }');
         SELECT slugify('Hello');",
    );
    assert!(out.lines().any(|l| l == "hello"), "{out} {err}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn loading_registers_at_most_50000_plugin_functions() {
    let path = temp_db("many");
    {
        let plain = Connection::open(&path).unwrap();
        plain
            .execute_batch(
                "CREATE TABLE js_plugins(name TEXT PRIMARY KEY, kind, source, n_args);
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50010)
                 INSERT INTO js_plugins SELECT 'p' || i, 'scalar', 'function main() { return ' || i || ' }', -1 FROM s;",
            )
            .unwrap();
    }
    let started = std::time::Instant::now();
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    let took = started.elapsed();
    println!(".load with 50,010 plugin rows: {took:?}");
    assert_eq!(value(&conn, "SELECT js_debug() ->> '$.plugins.registered'"), Value::Integer(50_000));
    assert_eq!(value(&conn, "SELECT p1()"), Value::Integer(1));
    assert_eq!(value(&conn, "SELECT js_call('p50010')"), Value::Integer(50_010));
    assert!(error_of(&conn, "SELECT p50010()").contains("no such function"));
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_source_no_sandbox_can_hold_is_never_copied() {
    let path = temp_db("huge-source");
    let conn = with_plugins(&path);
    conn.query_row("SELECT js_config('memory_limit_mb', 16)", [], |_| Ok(())).unwrap();
    // Written without the triggers (another tool), 40 MB of source.
    conn.execute_batch("DROP TRIGGER temp.jsbox_plugins_check_insert").unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('huge', 'scalar', '/*' || hex(zeroblob(20000000)) || '*/ function main() { return 1 }')", [])
        .unwrap();
    let before = resident_kib();
    let expected = "huge: the source has at least 40000033 bytes; no sandbox can hold more than the memory limit of 16 MiB";
    // Not registered (its row could never run), and reported by js_call and reload.
    assert!(error_of(&conn, "SELECT huge()").contains("no such function: huge"));
    assert_eq!(error_of(&conn, "SELECT js_call('huge')"), expected);
    let err = error_of(&conn, "SELECT js_plugins_reload()");
    assert!(err.contains(expected), "{err}");
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 100, "+{grown_mib} MiB");
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn deleted_and_renamed_plugins_are_forgotten() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    for i in 0..2000 {
        let name = format!("tmp{i}");
        store_plugin(&conn, &name, "scalar", &returns(i)).unwrap();
        assert_eq!(value(&conn, &format!("SELECT {name}()")), Value::Integer(i));
        conn.execute("DELETE FROM js_plugins WHERE name = ?1", [&name]).unwrap();
    }
    assert_eq!(value(&conn, "SELECT js_debug() ->> '$.plugins.entries'"), Value::Integer(0));
    store_plugin(&conn, "big", "scalar", "const kept = new Uint8Array(20e6); function main() { return kept.length }").unwrap();
    assert_eq!(value(&conn, "SELECT big()"), Value::Integer(20_000_000));
    assert_eq!(value(&conn, "SELECT js_debug() ->> '$.plugins.kept_worlds'"), Value::Integer(1));
    conn.execute("UPDATE js_plugins SET name = 'big2' WHERE name = 'big'", []).unwrap();
    assert_eq!(value(&conn, "SELECT js_debug() ->> '$.plugins.kept_worlds'"), Value::Integer(0), "the old name's world is gone");
    assert_eq!(value(&conn, "SELECT big2()"), Value::Integer(20_000_000));
    assert_eq!(error_of(&conn, "SELECT big()"), "big: no plugin named big in js_plugins (deleted?)");
}

#[test]
fn duplicate_names_in_a_table_without_a_key_are_reported_and_the_first_counts() {
    let path = temp_db("duplicates");
    {
        let plain = Connection::open(&path).unwrap();
        plain
            .execute_batch(
                "CREATE TABLE js_plugins(name, kind, source, n_args);
                 INSERT INTO js_plugins VALUES ('foo', 'scalar', 'function main() { return 1 }', -1);
                 INSERT INTO js_plugins VALUES ('foo', 'scalar', 'function main() { return 2 }', -1);
                 CREATE TABLE t(x); INSERT INTO t VALUES (1);",
            )
            .unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(1));
    assert_eq!(
        error_of(&conn, "SELECT js_plugins_reload() FROM t"),
        "js_plugins_reload: foo: another row is named foo too; only the first one is used"
    );
    assert_eq!(value(&conn, "SELECT foo()"), Value::Integer(1));
    drop(conn);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_statement_that_writes_never_changes_the_limits_whatever_its_text() {
    // Third round: statements whose text has a `js_config(` token, firing the file's CHECK
    // constraint (SQLite 3.40 runs it) through a trigger: a read of the limits, a table and a CTE
    // named js_config, parameters with Tcl-style suffixes.
    let path = file_made_on_340(
        "writes",
        &[("js_config", 2)],
        "CREATE TABLE log(x CHECK (js_config('time_limit_ms', 3600000) > 0));
         CREATE TABLE t(y); CREATE TRIGGER to_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (NEW.y); END;
         CREATE TABLE js_config(x); CREATE TRIGGER js_config_to_log AFTER INSERT ON js_config BEGIN INSERT INTO log VALUES (NEW.x); END;",
    );
    let (out, err) = shell(
        &path,
        "INSERT INTO t VALUES (js_config('time_limit_ms'));
         INSERT INTO t SELECT json_extract(js_config(), '$.time_limit_ms');
         INSERT INTO js_config(x) VALUES (1);
         WITH js_config(v) AS (SELECT 1) INSERT INTO log SELECT v FROM js_config;
         INSERT INTO log VALUES (:js_config(x));
         SELECT js_config();",
    );
    assert!(out.contains(DEFAULT_LIMITS), "{out} {err}");
    assert!(err.matches(IN_A_WRITE).count() >= 4, "{err}");
    // A statement of its own still sets them; with a cursor of the connection still open it says so.
    let script = format!(
        "import sqlite3\nc = sqlite3.connect(':memory:')\nc.enable_load_extension(True)\nc.load_extension({:?})\n\
         print(c.execute('SELECT js_config(\"time_limit_ms\", 50)').fetchone()[0])\n\
         cursor = c.execute('SELECT 1 UNION ALL SELECT 2'); cursor.fetchone()\n\
         try:\n    c.execute('SELECT js_config(\"time_limit_ms\", 60)').fetchone()\nexcept sqlite3.OperationalError as e:\n    print(e)\n",
        extension_path()
    );
    let run = Command::new("/usr/bin/python3").arg("-c").arg(&script).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout, format!("50\njs_config: {OTHER_STATEMENT}\n"), "{}", String::from_utf8_lossy(&run.stderr));
    let _ = std::fs::remove_file(path);
}

#[test]
fn plugins_beyond_the_function_cap_are_stored_and_reached() {
    let path = temp_db("cap");
    {
        let plain = Connection::open(&path).unwrap();
        plain.execute_batch(&std::fs::read_to_string(repo_root().join("sql/schema.sql")).unwrap()).unwrap();
        plain
            .execute_batch(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50000)
                 INSERT INTO js_plugins(name, kind, source) SELECT 'p' || i, 'scalar', 'function main() { return ' || i || ' }' FROM s;",
            )
            .unwrap();
    }
    // Loading registers the 50,000 and installs the triggers.
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    // Stored and edited beyond the cap: not a SQL function of its own, reached by js_call.
    store_plugin(&conn, "fresh", "scalar", &returns(7)).unwrap();
    assert_eq!(value(&conn, "SELECT js_call('fresh')"), Value::Integer(7));
    conn.execute("UPDATE js_plugins SET source = ?1 WHERE name = 'fresh'", [returns(8)]).unwrap();
    assert_eq!(value(&conn, "SELECT js_call('fresh')"), Value::Integer(8));
    drop(conn);
    let _ = std::fs::remove_file(path);
}
