//! jsbox: a SQLite extension that runs JavaScript (QuickJS) inside a WebAssembly sandbox.
//!
//! Loading the library (`.load ./libjsbox`, `load_extension`) calls [`sqlite3_jsbox_init`], which
//! registers the SQL functions of [`sql`] on the connection. Nothing else happens at load time:
//! the wasmtime engine and the precompiled guest are created on the first call
//! ([`engine::runtime`]) and shared by every connection of the process.
//!
//! Module map: [`engine`] (process-wide engine, module, epoch ticker) · [`code_memory`] (the
//! guest's code runs from this library's pages) · [`engine_config`] (the
//! one wasmtime configuration) · [`sandbox`] (one call in a fresh instance, limits, errors) ·
//! [`script_cache`] (js_eval scripts' bytecode per connection) · [`plugin`] (stored plugins:
//! compile, worlds, rows into the sandbox) · [`abi`] (host side of the guest ABI) · [`wasi`] (the
//! capability-free WASI imports) ·
//! [`interrupt`] (calls stop when the connection is interrupted) · [`native_stack`] (the guest
//! gets its whole stack, on a fresh segment where the calling thread's is too small) · [`sql`]
//! (the SQL surface) · [`error`] (the error type).

pub mod abi;
pub mod budget;
pub mod code_memory;
pub mod engine;
pub mod engine_config;
pub mod error;
pub mod interrupt;
pub mod native_stack;
pub mod plugin;
pub mod sandbox;
pub mod script_cache;
pub mod sql;
pub mod wasi;

use std::cell::Cell;
use std::os::raw::{c_char, c_int};

use rusqlite::{ffi, Connection};

use interrupt::Interrupt;

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
    // SAFETY: the table SQLite passed for this very connection.
    let interrupt = unsafe { Interrupt::for_connection(db, p_api) };
    LOADING_INTERRUPT.set(interrupt);
    Connection::extension_init2(db, pz_err_msg, p_api, init)
}

thread_local! {
    /// The interrupt check of the connection being initialized, from the entry point to `init`
    /// (which rusqlite calls synchronously with a plain function pointer).
    static LOADING_INTERRUPT: Cell<Option<Interrupt>> = const { Cell::new(None) };
}

fn init(db: Connection) -> rusqlite::Result<bool> {
    silence_panics();
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
