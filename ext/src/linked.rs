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
            // SAFETY: SQLite's out-parameter (the caller's contract).
            unsafe { set_error_message(pz_err_msg, &format!("jsbox: {error}")) };
            ffi::SQLITE_ERROR
        }
    }
}

/// Hands `message` to SQLite through `pz_err_msg`, allocated with `sqlite3_malloc` (SQLite frees it).
///
/// # Safety
/// `pz_err_msg` is null or SQLite's out-parameter of an extension's entry point.
unsafe fn set_error_message(pz_err_msg: *mut *mut c_char, message: &str) {
    if pz_err_msg.is_null() {
        return;
    }
    // SAFETY: sqlite3_malloc of the linked library; the copy stays within the allocation, which
    // is NUL-terminated, and SQLite owns it from here.
    unsafe {
        let buffer = ffi::sqlite3_malloc(message.len() as c_int + 1) as *mut c_char;
        if !buffer.is_null() {
            std::ptr::copy_nonoverlapping(message.as_ptr() as *const c_char, buffer, message.len());
            *buffer.add(message.len()) = 0;
            *pz_err_msg = buffer;
        }
    }
}
