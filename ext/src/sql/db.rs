//! The raw handle of the connection jsbox's functions are registered on, and every C call jsbox
//! makes on it directly. The rest of the SQL surface holds a [`Db`] and never a raw pointer.
//!
//! # Safety argument (one for every `unsafe` block of this module)
//! A [`Db`] is made only by [`Db::of`], from a live `&Connection` that jsbox registers functions
//! on, and is captured by those functions (their closures, their aggregate objects). SQLite
//! calls a function only on the connection it was registered with, while that connection is
//! open, on the thread that runs the statement (which holds the connection's mutex), and it
//! destroys the function (dropping the captured `Db`) before it frees the connection. So when
//! code that holds a `Db` runs, it runs inside one of those functions or inside the
//! registration itself, and the handle points to a live connection that this thread may use.
//! `Db` values are not handed to other threads or kept elsewhere.

use std::ffi::c_int;

use rusqlite::{ffi, Connection};

/// A connection handle captured when a function is registered on it. Keeping it spares each
/// call `Context::get_connection`, which builds a `Connection` wrapper (with its own statement
/// cache) every time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Db(*mut ffi::sqlite3);

// SAFETY: see the module's safety argument: a `Db` is only used by the functions of its
// connection, on the thread SQLite runs them on; `Send` lets their closures be `Send`, as
// rusqlite requires.
unsafe impl Send for Db {}
// SAFETY: as above; `Db` has no interior state.
unsafe impl Sync for Db {}

/// Where this connection's main database is in its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transaction {
    None,
    Read,
    Write,
}

impl Db {
    pub fn of(conn: &Connection) -> Self {
        // SAFETY: see the module's safety argument; the handle is only read, never closed.
        Db(unsafe { conn.handle() })
    }

    /// A non-owning `Connection` for running SQL: dropping it never closes the handle.
    pub fn connection(self) -> Connection {
        // SAFETY: a live handle (module safety argument); `from_handle` does not take ownership.
        unsafe { Connection::from_handle(self.0) }.expect("a non-null connection handle")
    }

    pub fn transaction(self) -> Transaction {
        // SAFETY: a live handle and a NUL-terminated schema name.
        match unsafe { ffi::sqlite3_txn_state(self.0, c"main".as_ptr()) } {
            ffi::SQLITE_TXN_NONE => Transaction::None,
            ffi::SQLITE_TXN_READ => Transaction::Read,
            _ => Transaction::Write,
        }
    }

    /// A number that changes whenever the main database's committed content changes, through
    /// this connection or another. Inside a transaction it is the pager's data version
    /// (`SQLITE_FCNTL_DATA_VERSION`: one C call, no SQL), which the pager refreshes when a
    /// transaction starts and bumps at every commit. Outside one (a statement that has not read
    /// the database) the pager has not looked, so `PRAGMA data_version` opens a transaction to
    /// look; its numbers are kept apart from the pager's (odd and even).
    pub fn data_version(self) -> u32 {
        if self.transaction() == Transaction::None {
            let pragma = self.connection().query_row("PRAGMA main.data_version", [], |r| r.get::<_, i64>(0));
            if let Ok(version) = pragma {
                return (version as u32).wrapping_mul(2).wrapping_add(1);
            }
        }
        let mut version: u32 = 0;
        // SAFETY: a live handle, a documented opcode and a u32 out-parameter. A null schema
        // name means "main" (sqlite3DbNameToBtree), without comparing names.
        unsafe {
            ffi::sqlite3_file_control(self.0, std::ptr::null(), ffi::SQLITE_FCNTL_DATA_VERSION, (&mut version as *mut u32).cast());
        }
        version.wrapping_mul(2)
    }

    /// Runs `f` with the connection's `trusted_schema` setting off, then restores it: what `f`
    /// reads cannot call any function that is not `SQLITE_INNOCUOUS` from the database's own
    /// schema (views, triggers, generated columns), whatever the user's setting.
    pub fn with_untrusted_schema<R>(self, f: impl FnOnce() -> R) -> R {
        let before = self.trusted_schema(-1);
        self.trusted_schema(0);
        let result = f();
        self.trusted_schema(before);
        result
    }

    /// Sets `SQLITE_DBCONFIG_TRUSTED_SCHEMA` (0 or 1; -1 only reads it) and returns it.
    fn trusted_schema(self, on: c_int) -> c_int {
        let mut now: c_int = 1;
        // SAFETY: a live handle; this option takes an int and an int out-parameter.
        unsafe { ffi::sqlite3_db_config(self.0, ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA, on, &mut now) };
        now
    }
}
