//! `libjsbox.so`: the loadable SQLite extension (`.load ./libjsbox`, `load_extension`). All of it
//! is the `sqlite-jsbox` library, built with the feature `loadable_extension`; this crate only
//! exports its entry point, the library's one exported symbol.

use std::os::raw::{c_char, c_int};

use rusqlite::ffi;

/// The extension's entry point, found by SQLite from the library's name (`libjsbox` → `jsbox`).
///
/// # Safety
/// Called by SQLite's extension loader with a valid connection and API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_jsbox_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: the loader's arguments, passed on unchanged (the caller's contract).
    unsafe { sqlite_jsbox::loadable::entry_point(db, pz_err_msg, p_api) }
}
