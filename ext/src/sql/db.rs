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

/// A statement running on the connection.
pub struct RunningStatement {
    pub sql: String,
    /// `sqlite3_stmt_readonly`: it writes nothing to the database itself.
    pub read_only: bool,
}

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
    /// this connection or another; `None` when it cannot be told now. Inside a transaction it is
    /// the pager's data version (`SQLITE_FCNTL_DATA_VERSION`: one C call, no SQL), refreshed
    /// when the transaction started and bumped at every commit. Outside one (a statement that
    /// has not read the database) the pager has not looked for other connections' commits, so
    /// `PRAGMA data_version` opens a transaction to look; it does not count this connection's
    /// own commits, which the pager's number does, so both are taken.
    pub fn data_version(self) -> Option<u64> {
        let mut pager: u32 = 0;
        // SAFETY: a live handle, a documented opcode and a u32 out-parameter. A null schema
        // name means "main" (sqlite3DbNameToBtree), without comparing names.
        unsafe {
            ffi::sqlite3_file_control(self.0, std::ptr::null(), ffi::SQLITE_FCNTL_DATA_VERSION, (&mut pager as *mut u32).cast());
        }
        if self.transaction() != Transaction::None {
            return Some(u64::from(pager) | 1 << 63);
        }
        // Busy (another connection holds an exclusive lock): unknown, never a stale number.
        let others = self.connection().query_row("PRAGMA main.data_version", [], |r| r.get::<_, i64>(0)).ok()?;
        Some((others as u64 & 0x7fff_ffff) << 32 | u64::from(pager))
    }

    /// Every statement running on the connection now (stepped and not yet reset), nested ones
    /// included: its SQL text, and whether it only reads.
    pub fn running_statements(self) -> Vec<RunningStatement> {
        let mut running = Vec::new();
        let mut stmt = std::ptr::null_mut();
        loop {
            // SAFETY: a live handle; `stmt` is null or a statement this loop got from it, and
            // no statement is finalized while the connection runs jsbox's function.
            stmt = unsafe { ffi::sqlite3_next_stmt(self.0, stmt) };
            if stmt.is_null() {
                return running;
            }
            // SAFETY: a statement of this connection (see above).
            if unsafe { ffi::sqlite3_stmt_busy(stmt) } == 0 {
                continue;
            }
            // SAFETY: as above; the text lives as long as the statement.
            let sql = unsafe { ffi::sqlite3_sql(stmt) };
            let sql = if sql.is_null() {
                String::new()
            } else {
                // SAFETY: `sqlite3_sql` returns a NUL-terminated string.
                unsafe { std::ffi::CStr::from_ptr(sql) }.to_string_lossy().into_owned()
            };
            // SAFETY: as above.
            let read_only = unsafe { ffi::sqlite3_stmt_readonly(stmt) } != 0;
            running.push(RunningStatement { sql, read_only });
        }
    }
}
