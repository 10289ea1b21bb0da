//! jsbox in a program that links SQLite itself (rusqlite with `bundled`, or the system's
//! library): [`register`] for one connection, [`sqlite3_jsbox_init`] for SQLite's automatic
//! extensions.

use std::os::raw::{c_char, c_int};

use rusqlite::{ffi, Connection};

use crate::engine;
use crate::interrupt::Interrupt;
use crate::sql;

/// Registers jsbox's SQL functions on `conn`, a connection of the SQLite this program links.
/// (`sqlite3_interrupt` cannot stop a running call on a connection registered this way, where
/// [`sqlite3_jsbox_init`] is given SQLite's API table; time limits always do.)
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    // An error of the runtime is reported by every call, as the loadable extension does.
    let _ = engine::runtime();
    sql::register(conn, None)
}

/// jsbox's entry point for `sqlite3_auto_extension` (rusqlite's
/// `auto_extension::register_auto_extension`): registers the SQL functions on every connection
/// the program opens from then on.
///
/// # Safety
/// Called by SQLite with a valid connection, its error-message out-parameter and its API table,
/// as SQLite calls automatic extensions.
pub unsafe extern "C" fn sqlite3_jsbox_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *const ffi::sqlite3_api_routines,
) -> c_int {
    let _ = engine::runtime();
    // SAFETY: SQLite's own connection and table (the caller's contract).
    let interrupt = unsafe { Interrupt::for_connection(db, p_api) };
    // SAFETY: a valid connection that SQLite keeps open while its extensions initialize; the
    // handle does not close it when dropped.
    let registered = unsafe { Connection::from_handle(db) }.and_then(|conn| sql::register(&conn, interrupt));
    match registered {
        Ok(()) => ffi::SQLITE_OK,
        Err(error) => {
            // SAFETY: SQLite's out-parameter (the caller's contract) and the linked library's
            // sqlite3_malloc.
            unsafe { crate::hand_error_message(pz_err_msg, ffi::sqlite3_malloc, &format!("jsbox: {error}")) };
            ffi::SQLITE_ERROR
        }
    }
}
