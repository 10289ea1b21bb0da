//! The SQL surface: one module per group of functions, all registered by [`register`].
//!
//! | function | module |
//! |---|---|
//! | `js_eval(script)`, `js_eval(script, json)` | [`eval`] |
//! | `js_version()`, `js_debug()` | [`info`] |
//! | `js_config()`, `js_config(name)`, `js_config(name, value)` | [`config`] |
//! | `js_plugins_init()`, `js_plugins_reload()`, `js_call(name, ...)`, `js_agg(name, ...)`, one function per stored plugin | [`plugins`] |

mod args;
mod config;
mod db;
mod direct;
mod eval;
mod info;
pub mod plugins;
mod tokens;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rusqlite::Connection;

use crate::error::CallError;
use crate::interrupt::Interrupt;
use crate::sandbox::Limits;
use crate::script_cache::ScriptCache;

/// State of one connection, shared by its functions and dropped when the connection closes
/// (SQLite destroys the functions, which own the last references).
#[derive(Default)]
pub struct Session {
    pub limits: Mutex<Limits>,
    /// Console output of the connection's last call, shown by `js_debug()`.
    pub last_console: Mutex<String>,
    /// The connection's stored plugins.
    plugins: Mutex<plugins::Registry>,
    /// This connection's own edits of `js_plugins` (reported by its temporary triggers).
    own_changes: plugins::OwnChanges,
    /// Set while jsbox reads `js_plugins` (SQL it runs): a jsbox function called then fails.
    reading_plugins: AtomicBool,
    /// Rows of `js_plugins` read one by one (at a call, after a change), and their source bytes.
    plugin_rows_read: AtomicU64,
    plugin_source_bytes_read: AtomicU64,
    /// Bytecode of the scripts `js_eval` ran on this connection.
    pub scripts: Mutex<ScriptCache>,
    /// `js_config('plugins', 0)`: the connection's stored plugins do not run.
    plugins_off: AtomicBool,
    /// `js_config('locked', 1)`: settings can only be tightened.
    locked: AtomicBool,
    /// This connection's id among the owners of parked worlds ([`crate::parking`]).
    pub owner: u64,
    /// The modules of `js_modules` this connection compiled.
    pub modules: Mutex<crate::modules::ModuleCache>,
}

impl Drop for Session {
    /// The connection closes: its parked worlds go with it.
    fn drop(&mut self) {
        crate::parking::release(self.owner);
    }
}

impl Session {
    fn new(interrupt: Option<Interrupt>) -> Self {
        let mut session = Session::default();
        session.owner = crate::parking::new_owner();
        session.update_limits(|limits| limits.interrupt = interrupt);
        session
    }

    pub fn limits(&self) -> Limits {
        self.limits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the limits for calls and groups that start from now on; the connection's kept
    /// scalar worlds are dropped so that they are recreated under the new limits.
    pub fn update_limits(&self, update: impl FnOnce(&mut Limits)) {
        update(&mut self.limits.lock().unwrap_or_else(|e| e.into_inner()));
        self.forget_kept_worlds();
        // Whether a plugin or module compiles (its top level runs) depends on the limits too.
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).forget_all_compiled();
        *self.modules.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
    }

    /// Drops the connection's kept scalar worlds and parked aggregate worlds (they are made
    /// again when next needed).
    pub fn forget_kept_worlds(&self) {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).forget_worlds();
        crate::parking::release(self.owner);
    }

    /// Runs `make`, which creates a sandbox; if the connection's budget refuses it while kept
    /// worlds hold part of that budget, gives them back and runs it once more (and where the
    /// process refused it, every connection's parked worlds go first).
    pub fn with_room<T>(&self, make: impl FnMut() -> Result<T, CallError>) -> Result<T, CallError> {
        crate::budget::with_room(make, |error| {
            self.forget_kept_worlds();
            if error.is_process_wide() {
                crate::parking::release_all();
            }
            true
        })
    }

    pub fn plugins_on(&self) -> bool {
        !self.plugins_off.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_plugins_on(&self, on: bool) {
        self.plugins_off.store(!on, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn locked(&self) -> bool {
        self.locked.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_locked(&self, locked: bool) {
        self.locked.store(locked, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn scripts(&self) -> MutexGuard<'_, ScriptCache> {
        self.scripts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_last_console(&self, console: String) {
        *self.last_console.lock().unwrap_or_else(|e| e.into_inner()) = console;
    }
}

/// Registers every jsbox SQL function on `db`; `interrupt` asks `db` whether it was
/// interrupted, where its SQLite library can tell.
pub fn register(db: &Connection, interrupt: Option<Interrupt>) -> rusqlite::Result<()> {
    let session = session_of(db::Db::of(db), interrupt);
    eval::register(db, &session)?;
    config::register(db, &session)?;
    info::register(db, &session)?;
    plugins::register(db, &session)?;
    Ok(())
}

/// The connection's session: the one it already has if jsbox is loaded into it again (so that
/// its plugin functions, limits and caches stay one), else a new one. A session lives as long
/// as the functions that hold it, which SQLite destroys before it frees the connection, so a
/// live session's connection is never another connection at the same address.
fn session_of(db: db::Db, interrupt: Option<Interrupt>) -> Arc<Session> {
    static SESSIONS: Mutex<Vec<(db::Db, Weak<Session>)>> = Mutex::new(Vec::new());
    let mut sessions = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    sessions.retain(|(_, session)| session.strong_count() > 0);
    if let Some(session) = sessions.iter().find(|(of, _)| *of == db).and_then(|(_, session)| session.upgrade()) {
        return session;
    }
    let session = Arc::new(Session::new(interrupt));
    sessions.push((db, Arc::downgrade(&session)));
    session
}
