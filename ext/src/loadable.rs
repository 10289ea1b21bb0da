//! The loadable extension's entry point (`libjsbox.so`, built by the workspace's `jsbox` crate
//! with the feature `loadable_extension`): SQLite's loader calls [`entry_point`] through that
//! crate's `sqlite3_jsbox_init`, with the loading library's API table, which rusqlite's
//! extension bindings then call SQLite through.

use std::cell::Cell;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicPtr, Ordering};

use rusqlite::{ffi, Connection};

use crate::engine;
use crate::interrupt::Interrupt;
use crate::sql;

/// What the `sqlite3_jsbox_init` of the loadable library does.
///
/// # Safety
/// Called by SQLite's extension loader with a valid connection and API table.
pub unsafe fn entry_point(db: *mut ffi::sqlite3, pz_err_msg: *mut *mut c_char, p_api: *mut ffi::sqlite3_api_routines) -> c_int {
    if !serves_library(p_api) {
        // SAFETY: the loader's out-parameter and its own library's API table.
        return unsafe { refuse_load(pz_err_msg, p_api, OTHER_LIBRARY) };
    }
    // SAFETY: the table SQLite passed for this very connection.
    let interrupt = unsafe { Interrupt::for_connection(db, p_api) };
    LOADING_INTERRUPT.set(interrupt);
    // SAFETY: the loader's arguments (the caller's contract).
    unsafe { Connection::extension_init2(db, pz_err_msg, p_api, init) }
}

/// rusqlite's loadable-extension bindings keep the SQLite API table in process-wide statics, so
/// jsbox can serve one SQLite library per process: a second one (APSW beside Python's sqlite3)
/// would have its connections driven through the first one's functions, and crash.
const OTHER_LIBRARY: &str = "jsbox is already loaded into another SQLite library in this process, and serves one \
     SQLite library per process; load it with that library, or in another process";

/// Whether `api` is the table of the SQLite library jsbox serves (the first it was loaded by).
fn serves_library(api: *mut ffi::sqlite3_api_routines) -> bool {
    static LIBRARY: AtomicPtr<ffi::sqlite3_api_routines> = AtomicPtr::new(std::ptr::null_mut());
    match LIBRARY.compare_exchange(std::ptr::null_mut(), api, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => true,
        Err(first) => first == api,
    }
}

/// Fails the load with `message`, allocated by the loading library's own allocator (which frees it).
///
/// # Safety
/// `pz_err_msg` and `api` are the loader's arguments to [`entry_point`].
unsafe fn refuse_load(pz_err_msg: *mut *mut c_char, api: *mut ffi::sqlite3_api_routines, message: &str) -> c_int {
    // SAFETY: a valid API table (the caller's contract); `malloc` exists in every version.
    if let Some(malloc) = unsafe { api.as_ref() }.and_then(|api| api.malloc) {
        // SAFETY: the loader's out-parameter and its library's own sqlite3_malloc.
        unsafe { crate::hand_error_message(pz_err_msg, malloc, message) };
    }
    ffi::SQLITE_ERROR
}

thread_local! {
    /// The interrupt check of the connection being initialized, from the entry point to `init`
    /// (which rusqlite calls synchronously with a plain function pointer).
    static LOADING_INTERRUPT: Cell<Option<Interrupt>> = const { Cell::new(None) };
}

fn init(db: Connection) -> rusqlite::Result<bool> {
    silence_panics();
    // The process's runtime (engine, guest, epoch thread) is made now rather than at the first
    // call: a process that forks while another thread makes that first call would leave the
    // child waiting forever on an initialisation that no thread of its own finishes. Its error,
    // if any, is reported by every call.
    let _ = engine::runtime();
    sql::register(&db, LOADING_INTERRUPT.take())?;
    // Stay loaded for the life of the process: the epoch ticker thread runs this library's code.
    Ok(true)
}

/// A panic inside jsbox is a bug, and rusqlite turns it into the SQL function's error; its text
/// must not reach the host's stderr (the host's own panics are unaffected: this library has its
/// own copy of the standard library, and with it its own hook).
fn silence_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
