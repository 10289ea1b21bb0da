//! jsbox: JavaScript (QuickJS) inside a WebAssembly sandbox, as SQL functions of SQLite.
//!
//! For rusqlite users, with the SQLite their program links (`bundled` or the system's). (Not a
//! doctest: the workspace builds this crate as a loadable extension; `make test-dist` runs the
//! same in a crate of its own, tests/dist/test_dist.py.)
//!
//! ```ignore
//! let conn = rusqlite::Connection::open_in_memory()?;
//! sqlite_jsbox::register(&conn)?;
//! let answer: i64 = conn.query_row("SELECT js_eval('data.a + 1', '{\"a\": 41}')", [], |row| row.get(0))?;
//! assert_eq!(answer, 42);
//! # Ok::<(), rusqlite::Error>(())
//! ```
//!
//! or, for every connection the program opens afterwards,
//! `unsafe { rusqlite::auto_extension::register_auto_extension(sqlite_jsbox::sqlite3_jsbox_init) }`.
//!
//! The same code is also the loadable extension (`libjsbox.so`, `.load ./libjsbox`): the `jsbox`
//! crate of this workspace builds it with the feature `loadable_extension` ([`loadable`]), which
//! switches rusqlite to SQLite's extension API table, and which a program linking SQLite must
//! not turn on (it would silently take the program's own `bundled` SQLite away).
//!
//! Either way the first registration makes the process's runtime (the wasmtime engine, the
//! precompiled guest and the epoch thread, [`engine::runtime`], shared by every connection) and
//! registers the SQL functions of [`sql`] on the connection.
//!
//! Types that look alike, from the widest to the narrowest:
//!
//! - [`engine::Runtime`]: the process's, made once: the wasmtime engine, the precompiled guest
//!   module with its imports linked (`InstancePre`), the epoch thread.
//! - [`sql::Session`]: one connection's: its limits and budget, the scripts it compiled, its
//!   plugins' registry.
//! - [`sandbox::Sandbox`]: one live instance of the guest (a wasmtime `Store` and `Instance`)
//!   with its limits: one `js_eval` call, one aggregate group, or one kept scalar world.
//! - [`plugin::World`]: a `Sandbox` with a plugin's bytecode loaded, and its batched rows.
//! - [`sandbox::HostState`]: a sandbox's store data: the memory limit and budget permit it
//!   enforces, the deadline, what stopped the last call.
//! - [`abi::Guest`]: a sandbox's view of the guest's exports: typed function handles and its
//!   memory, through which requests and responses pass.
//!
//! Module map: [`engine`] (process-wide engine, module, epoch ticker) · [`allocation`] (a pool,
//! or sandboxes on demand where the address space is capped) · [`code_memory`] (the
//! guest's code runs from this library's pages) · [`engine_config`] (the
//! one wasmtime configuration) · [`sandbox`] (one call in a fresh instance, limits, errors) ·
//! [`script_cache`] (js_eval scripts' bytecode per connection) · [`plugin`] (stored plugins:
//! compile, worlds, rows into the sandbox) · [`abi`] (host side of the guest ABI) · [`wasi`] (the
//! capability-free WASI imports) ·
//! [`interrupt`] (calls stop when the connection is interrupted) · [`native_stack`] (the guest
//! gets its whole stack, on a fresh segment where the calling thread's is too small) · [`sql`]
//! (the SQL surface) · [`error`] (the error type).

pub mod abi;
pub mod allocation;
pub mod bounded_cache;
pub mod budget;
pub mod code_memory;
pub mod engine;
pub mod engine_config;
pub mod error;
pub mod interrupt;
#[cfg(feature = "loadable_extension")]
pub mod loadable;
pub mod modules;
pub mod native_stack;
pub mod parking;
pub mod plugin;
pub mod sandbox;
pub mod script_cache;
pub mod sql;
pub mod wasi;
pub mod world_image;

/// Hands `message` to SQLite through an entry point's `pz_err_msg`, in a buffer from `malloc`,
/// the loading library's `sqlite3_malloc` (SQLite frees it).
///
/// # Safety
/// `pz_err_msg` is null or SQLite's out-parameter of an extension's entry point, and `malloc` is
/// that library's `sqlite3_malloc`.
unsafe fn hand_error_message(
    pz_err_msg: *mut *mut std::os::raw::c_char,
    malloc: unsafe extern "C" fn(std::os::raw::c_int) -> *mut std::os::raw::c_void,
    message: &str,
) {
    if pz_err_msg.is_null() {
        return;
    }
    // SAFETY: SQLite's allocator (the caller's contract); the copy stays within the allocation,
    // which is NUL-terminated, and SQLite owns it from here.
    unsafe {
        let buffer = malloc(message.len() as std::os::raw::c_int + 1) as *mut std::os::raw::c_char;
        if !buffer.is_null() {
            std::ptr::copy_nonoverlapping(message.as_ptr().cast(), buffer, message.len());
            *buffer.add(message.len()) = 0;
            *pz_err_msg = buffer;
        }
    }
}

#[cfg(not(feature = "loadable_extension"))]
mod linked;
#[cfg(not(feature = "loadable_extension"))]
pub use linked::{register, sqlite3_jsbox_init};
