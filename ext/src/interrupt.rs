//! Stopping a running call when its connection is interrupted (`sqlite3_interrupt()`, Ctrl-C in
//! the sqlite3 shell), where the SQLite library provides `sqlite3_is_interrupted` (3.41 and
//! later).
//!
//! rusqlite 0.40's extension bindings describe SQLite 3.34's API table, which has no slot for
//! that function. The table only ever grows at its end, so the slot is reached by its index in
//! the newer table, after checking the library's version through the same table. The table is
//! the one SQLite handed to this connection's `sqlite3_jsbox_init`: a process may hold several
//! SQLite libraries (Python's and APSW's), each with its own.
//!
//! The check runs on the thread executing the guest, from wasmtime's epoch callback: every tick
//! of the epoch thread ([`crate::engine::TICK`]), so an interrupted call stops within ~10 ms.

use std::ffi::c_int;
use std::fmt;

use rusqlite::ffi;

/// `sqlite3_is_interrupted`'s index in `struct sqlite3_api_routines` (sqlite3ext.h, 3.41+).
const IS_INTERRUPTED_SLOT: usize = 266;
/// The first SQLite version whose API table has that slot.
const FIRST_VERSION: c_int = 3_041_000;

type IsInterrupted = unsafe extern "C" fn(*mut ffi::sqlite3) -> c_int;

/// Asks one connection whether it has been interrupted.
#[derive(Clone, Copy)]
pub struct Interrupt {
    db: *mut ffi::sqlite3,
    is_interrupted: IsInterrupted,
}

// SAFETY: `sqlite3_is_interrupted` only reads the connection's interrupt flag, which SQLite
// itself reads and writes from any thread (that is what `sqlite3_interrupt` is for); the
// connection outlives its functions, which own the `Interrupt`.
unsafe impl Send for Interrupt {}
// SAFETY: as for Send: the one operation, `interrupted`, only reads a flag SQLite itself keeps
// consistent across threads.
unsafe impl Sync for Interrupt {}

/// The same connection (each connection has one library, hence one function).
impl PartialEq for Interrupt {
    fn eq(&self, other: &Self) -> bool {
        self.db == other.db
    }
}

impl Eq for Interrupt {}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupt").field("db", &self.db).finish()
    }
}

impl Interrupt {
    /// The check for connection `db`, through the API table its library passed to the
    /// extension's entry point; `None` where that library is older than 3.41.
    ///
    /// # Safety
    /// `api` is the table SQLite passed to `sqlite3_jsbox_init` for `db` (or null).
    pub unsafe fn for_connection(db: *mut ffi::sqlite3, api: *const ffi::sqlite3_api_routines) -> Option<Self> {
        if db.is_null() || api.is_null() {
            return None;
        }
        // SAFETY: a valid API table (the caller's contract).
        let version = unsafe { library_version(api)? };
        if version < FIRST_VERSION {
            return None;
        }
        // SAFETY: from 3.41 on, the table has the slot, a function pointer like all its slots.
        let slot = unsafe { *(api as *const Option<IsInterrupted>).add(IS_INTERRUPTED_SLOT) };
        Some(Interrupt { db, is_interrupted: slot? })
    }

    /// Whether the connection has been interrupted.
    pub fn interrupted(&self) -> bool {
        // SAFETY: a live connection (see above) and the function of its own library.
        unsafe { (self.is_interrupted)(self.db) != 0 }
    }
}

/// The version of the SQLite library that passed `api`, through the table itself (a loadable
/// extension links no SQLite).
///
/// # Safety
/// `api` is a valid API table.
#[cfg(feature = "loadable_extension")]
unsafe fn library_version(api: *const ffi::sqlite3_api_routines) -> Option<c_int> {
    // SAFETY: a valid table (the caller's contract); `libversion_number` exists in every table
    // since 3.3.
    Some(unsafe { ((*api).libversion_number?)() })
}

/// The version of the SQLite library the program links, which passed `api` (the table is
/// opaque in these bindings).
///
/// # Safety
/// None beyond the caller's: the linked library's function.
#[cfg(not(feature = "loadable_extension"))]
unsafe fn library_version(_api: *const ffi::sqlite3_api_routines) -> Option<c_int> {
    // SAFETY: sqlite3_libversion_number has no preconditions.
    Some(unsafe { ffi::sqlite3_libversion_number() })
}
