//! Lifetimes SQLite controls, not jsbox: a connection closed in the middle of an
//! aggregate or a window, statements never finalized, the extension loaded twice into one
//! connection and into many. None of it may crash or disturb other connections; `make leaks`
//! runs this file under valgrind to show that it leaks nothing either.

use std::ffi::CString;
use std::ptr;

use jsbox_tests::*;
use rusqlite::ffi;
use rusqlite::types::Value;
use rusqlite::Connection;

extern "C" {
    // In the bundled SQLite, though not in rusqlite's bindings: closes a connection that still
    // has statements, making it a "zombie" until they are finalized.
    fn sqlite3_close_v2(db: *mut ffi::sqlite3) -> std::ffi::c_int;
}

/// A connection with a window plugin and 1,000 rows for it.
fn connection() -> Connection {
    let conn = open();
    setup(&conn);
    conn
}

/// The same as a raw handle, for closing by hand.
fn raw_connection() -> *mut ffi::sqlite3 {
    let mut db = ptr::null_mut();
    let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
    // SAFETY: a NUL-terminated name and an out-parameter on this stack.
    assert_eq!(unsafe { ffi::sqlite3_open_v2(c":memory:".as_ptr(), &mut db, flags, ptr::null()) }, ffi::SQLITE_OK);
    // A non-owning wrapper for the setup: dropping it leaves the connection open.
    // SAFETY: the connection just opened, which stays open while the wrapper lives.
    let conn = unsafe { Connection::from_handle(db) }.unwrap();
    load(&conn);
    setup(&conn);
    db
}

fn setup(conn: &Connection) {
    conn.execute_batch(
        "SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source) VALUES ('running', 'window',
           'function init() { return {xs: []} }
            function step(s, x) { s.xs.push({x, tag: String(x)}); return s }
            function inverse(s) { s.xs.shift(); return s }
            function final(s) { return s.xs.reduce((a, o) => a + o.x, 0) }');
         CREATE TABLE t(x);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000) INSERT INTO t SELECT x FROM n;",
    )
    .unwrap();
}

/// A raw statement on `db`, stepped `rows` times (each step runs the plugin in the sandbox).
///
/// # Safety
/// `db` is an open connection with jsbox loaded and [`setup`] done.
unsafe fn stepped(db: *mut ffi::sqlite3, sql: &str, rows: usize) -> *mut ffi::sqlite3_stmt {
    let sql = CString::new(sql).unwrap();
    let mut stmt = ptr::null_mut();
    // SAFETY: an open connection (the caller's contract), a NUL-terminated statement, and an
    // out-parameter on this stack.
    assert_eq!(unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, ptr::null_mut()) }, ffi::SQLITE_OK);
    for _ in 0..rows {
        // SAFETY: the statement just prepared, not finalized.
        assert_eq!(unsafe { ffi::sqlite3_step(stmt) }, ffi::SQLITE_ROW);
    }
    stmt
}

const WINDOW: &str = "SELECT running(x) OVER (ORDER BY x ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) FROM t";
const AGGREGATE: &str = "SELECT x % 7, running(x) FROM t GROUP BY x % 7";

#[test]
fn statements_abandoned_mid_aggregate_and_connections_closed_under_them() {
    // Reset halfway through a window and an aggregate, then finalized: the groups' sandboxes
    // are dropped with SQLite's aggregate contexts.
    let conn = connection();
    // SAFETY: the handle is only used while `conn` lives, and never closed through it.
    let db = unsafe { conn.handle() };
    for sql in [WINDOW, AGGREGATE] {
        // SAFETY: `conn` is open with jsbox loaded and set up (`connection()`).
        let stmt = unsafe { stepped(db, sql, 3) };
        // SAFETY: the statement just stepped, reset then finalized once.
        unsafe {
            assert_eq!(ffi::sqlite3_reset(stmt), ffi::SQLITE_OK);
            assert_eq!(ffi::sqlite3_finalize(stmt), ffi::SQLITE_OK);
        }
    }
    assert_usable(&conn);

    // Closed while statements are mid-window: `sqlite3_close_v2` makes the connection a
    // zombie until they are finalized, which happens afterwards.
    let db = raw_connection();
    // SAFETY: `raw_connection()` opened it with jsbox loaded and set up.
    let window = unsafe { stepped(db, WINDOW, 10) };
    // SAFETY: the same connection.
    let aggregate = unsafe { stepped(db, AGGREGATE, 2) };
    // SAFETY: close_v2 keeps the connection as a zombie until its statements are finalized,
    // which they are, once each.
    unsafe {
        assert_eq!(sqlite3_close_v2(db), ffi::SQLITE_OK);
        assert_eq!(ffi::sqlite3_finalize(window), ffi::SQLITE_OK);
        assert_eq!(ffi::sqlite3_finalize(aggregate), ffi::SQLITE_OK);
    }

    // Never finalized at all: the connection stays a zombie for the life of the process.
    let db = raw_connection();
    // SAFETY: `raw_connection()` opened it with jsbox loaded and set up.
    let _abandoned = unsafe { stepped(db, WINDOW, 10) };
    // SAFETY: closed once; close_v2 leaves it a zombie while the statement lives.
    unsafe { assert_eq!(sqlite3_close_v2(db), ffi::SQLITE_OK) };

    // Other connections are unaffected, and a full window still computes what SQL does.
    let conn = connection();
    let expected: Vec<i64> = conn
        .prepare("SELECT sum(x) OVER (ORDER BY x ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) FROM t")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let got: Vec<i64> = conn.prepare(WINDOW).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, expected);
}

#[test]
fn the_extension_loaded_twice_and_into_many_connections() {
    let conn = connection();
    // A second load into the same connection registers the functions again, over the first.
    load(&conn);
    assert_eq!(eval1(&conn, "6 * 7").unwrap(), Value::Integer(42));
    let total: i64 =
        conn.query_row("SELECT sum(v) FROM (SELECT running(x) OVER (ORDER BY x) AS v FROM t WHERE x <= 3)", [], |r| r.get(0)).unwrap();
    assert_eq!(total, 1 + 3 + 6);
    // Many connections, each loading it, opened and closed in turn and all at once.
    let many: Vec<Connection> = (0..50).map(|_| open()).collect();
    for (i, conn) in many.iter().enumerate() {
        assert_eq!(eval(conn, "data + 1", i as i64).unwrap(), Value::Integer(i as i64 + 1));
    }
    drop(many);
    for _ in 0..50 {
        assert_usable(&open());
    }
}
