//! How a connection knows that `js_plugins` may hold something else than what it last read, so
//! that the code that runs is always what the database holds for that connection at that
//! moment, also inside transactions that roll back.
//!
//! Two numbers make a [`Snapshot`]:
//! - the main database's data version ([`Db::data_version`]), which moves at every commit, by
//!   this connection or another;
//! - this connection's own-change epoch, for its uncommitted edits, which the data version does
//!   not see. The connection's temporary triggers on `js_plugins` (never stored in the database)
//!   call `js_plugins_changed` after each row written or deleted, which hands out a new epoch,
//!   never used before on this connection; the trigger stores it in a temporary table. That
//!   table is part of the transaction: `ROLLBACK`, `ROLLBACK TO` and a statement that fails
//!   half-way restore the epoch the content had then, so an epoch always names one content.
//!   Only an epoch just handed out may be stored there (a guard trigger asks
//!   `js_plugins_epoch_issued`), so SQL typed on the connection cannot bring an old one back.
//!
//! The epoch is read (one small query) only while this connection may have uncommitted edits
//! of `js_plugins`: from a trigger's firing until a call sees no write transaction open. If the
//! triggers are gone (the table was dropped and made again, renamed, or a trigger dropped), the
//! connection's own edits cannot be seen, and every call reads its row afresh ("untracked")
//! until `js_plugins_init()` or `js_plugins_reload()` installs them again.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use rusqlite::Connection;

use super::registry::Snapshot;
use crate::sql::db::{Db, Transaction};

/// The connection's temporary epoch table and triggers. The BEFORE triggers check a row before
/// it is written (a row that jsbox refuses is never stored); the AFTER triggers register a new
/// plugin's function and move the epoch once the row is there.
pub const TRIGGERS: &str = "
CREATE TEMP TABLE IF NOT EXISTS jsbox_plugins_epoch(epoch INTEGER NOT NULL);
INSERT INTO temp.jsbox_plugins_epoch(epoch) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM temp.jsbox_plugins_epoch);
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_epoch_kept BEFORE DELETE ON jsbox_plugins_epoch BEGIN
  SELECT RAISE(ABORT, 'jsbox keeps this row: it tells which edits of js_plugins this connection made');
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_epoch_single BEFORE INSERT ON jsbox_plugins_epoch BEGIN
  SELECT RAISE(ABORT, 'jsbox keeps one row here');
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_epoch_issued BEFORE UPDATE ON jsbox_plugins_epoch
  WHEN NOT js_plugins_epoch_issued(NEW.epoch) BEGIN
  SELECT RAISE(ABORT, 'only jsbox sets the epoch of js_plugins');
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_check_insert BEFORE INSERT ON main.js_plugins BEGIN
  SELECT js_plugins_check(NEW.name, NEW.kind, NEW.n_args, NEW.source);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_check_update BEFORE UPDATE ON main.js_plugins BEGIN
  SELECT js_plugins_check(NEW.name, NEW.kind, NEW.n_args, NEW.source);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_inserted AFTER INSERT ON main.js_plugins BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NEW.name, NULL);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_updated AFTER UPDATE ON main.js_plugins BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NEW.name, OLD.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_deleted AFTER DELETE ON main.js_plugins BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NULL, OLD.name);
END;
";

/// The connection's temporary triggers on `js_modules` (where it exists): a module is checked
/// before it is written, and each edit moves the epoch as a plugin's does (a plugin that
/// imports a module changes with it).
pub const MODULE_TRIGGERS: &str = "
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_check_insert BEFORE INSERT ON main.js_modules BEGIN
  SELECT js_modules_check(NEW.name, NEW.kind, NEW.source);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_check_update BEFORE UPDATE ON main.js_modules BEGIN
  SELECT js_modules_check(NEW.name, NEW.kind, NEW.source);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_inserted AFTER INSERT ON main.js_modules BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NULL, NULL);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_updated AFTER UPDATE ON main.js_modules BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NULL, NULL);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_deleted AFTER DELETE ON main.js_modules BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NULL, NULL);
END;
";

/// The connection's temporary triggers that keep deterministic plugins that the schema uses
/// (indexes, generated columns, CHECK constraints) from changing under it: SQLite cannot know
/// that an index computed with the old source is out of date (where `js_plugins` has the
/// `deterministic` column).
pub const DETERMINISTIC_TRIGGERS: &str = "
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_guard_update BEFORE UPDATE ON main.js_plugins
  WHEN OLD.deterministic = 1 AND (NEW.source IS NOT OLD.source OR NEW.kind IS NOT OLD.kind OR NEW.n_args IS NOT OLD.n_args
    OR NEW.deterministic IS NOT OLD.deterministic OR NEW.name IS NOT OLD.name) BEGIN
  SELECT js_plugins_in_use(OLD.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_guard_delete BEFORE DELETE ON main.js_plugins WHEN OLD.deterministic = 1 BEGIN
  SELECT js_plugins_in_use(OLD.name);
END;
-- REPLACE and UPDATE OR REPLACE delete the row they replace without its DELETE triggers.
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_guard_replace BEFORE INSERT ON main.js_plugins
  WHEN EXISTS (SELECT 1 FROM main.js_plugins WHERE name = NEW.name AND deterministic = 1) BEGIN
  SELECT js_plugins_in_use(NEW.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_guard_rename BEFORE UPDATE OF name ON main.js_plugins
  WHEN NEW.name IS NOT OLD.name AND EXISTS (SELECT 1 FROM main.js_plugins WHERE name = NEW.name AND deterministic = 1) BEGIN
  SELECT js_plugins_in_use(NEW.name);
END;
";

const DETERMINISTIC_TRIGGER_NAMES: [&str; 4] =
    ["jsbox_plugins_guard_update", "jsbox_plugins_guard_delete", "jsbox_plugins_guard_replace", "jsbox_plugins_guard_rename"];

/// The same for modules that deterministic plugins the schema uses import (where both tables
/// and the `deterministic` column exist).
pub const MODULE_GUARD_TRIGGERS: &str = "
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_guard_update BEFORE UPDATE ON main.js_modules
  WHEN NEW.source IS NOT OLD.source OR NEW.kind IS NOT OLD.kind OR NEW.name IS NOT OLD.name BEGIN
  SELECT js_modules_in_use(OLD.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_guard_delete BEFORE DELETE ON main.js_modules BEGIN
  SELECT js_modules_in_use(OLD.name);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_modules_guard_replace BEFORE INSERT ON main.js_modules
  WHEN EXISTS (SELECT 1 FROM main.js_modules WHERE name = NEW.name) BEGIN
  SELECT js_modules_in_use(NEW.name);
END;
";

const MODULE_GUARD_TRIGGER_NAMES: [&str; 3] = ["jsbox_modules_guard_update", "jsbox_modules_guard_delete", "jsbox_modules_guard_replace"];

const MODULE_TRIGGER_NAMES: [&str; 5] = [
    "jsbox_modules_check_insert",
    "jsbox_modules_check_update",
    "jsbox_modules_inserted",
    "jsbox_modules_updated",
    "jsbox_modules_deleted",
];

/// The triggers on `js_plugins` itself (the others guard the epoch table).
const PLUGIN_TRIGGERS: [&str; 5] = [
    "jsbox_plugins_check_insert",
    "jsbox_plugins_check_update",
    "jsbox_plugins_inserted",
    "jsbox_plugins_updated",
    "jsbox_plugins_deleted",
];
const EPOCH_TRIGGERS: [&str; 3] = ["jsbox_plugins_epoch_kept", "jsbox_plugins_epoch_single", "jsbox_plugins_epoch_issued"];

/// Whether every trigger is in place, on the tables it was made for (those on `js_modules` where
/// that table exists).
pub fn triggers_installed(conn: &Connection) -> bool {
    let count = |names: &[&str], table: &str| -> i64 {
        let list = names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        conn.query_row(
            &format!("SELECT count(*) FROM temp.sqlite_master WHERE type = 'trigger' AND name IN ({list}) AND lower(tbl_name) = '{table}'"),
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    let modules = conn
        .query_row("SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND lower(name) = 'js_modules'", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_or(0)
        > 0;
    count(&PLUGIN_TRIGGERS, "js_plugins") == PLUGIN_TRIGGERS.len() as i64
        && count(&EPOCH_TRIGGERS, "jsbox_plugins_epoch") == EPOCH_TRIGGERS.len() as i64
        && (!modules || count(&MODULE_TRIGGER_NAMES, "js_modules") == MODULE_TRIGGER_NAMES.len() as i64)
        && (!super::rows::has_deterministic_column(conn)
            || count(&DETERMINISTIC_TRIGGER_NAMES, "js_plugins") == DETERMINISTIC_TRIGGER_NAMES.len() as i64)
        && (!(modules && super::rows::has_deterministic_column(conn))
            || count(&MODULE_GUARD_TRIGGER_NAMES, "js_modules") == MODULE_GUARD_TRIGGER_NAMES.len() as i64)
}

/// This connection's own edits of `js_plugins`.
#[derive(Default)]
pub struct OwnChanges {
    /// Set by a trigger; cleared when a call sees no write transaction (nothing uncommitted).
    pending: AtomicBool,
    /// Set when the triggers are found missing: every snapshot is then a new one.
    untracked: AtomicBool,
    /// The last epoch handed out.
    issued: AtomicI64,
    /// The last epoch handed out and not yet stored (0: none).
    unstored: AtomicI64,
    /// The epoch read last: what the table holds while nothing is pending.
    current: AtomicI64,
}

impl OwnChanges {
    /// A new epoch for a change a trigger is about to store.
    pub fn next_epoch(&self) -> i64 {
        self.pending.store(true, Ordering::SeqCst);
        let epoch = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        self.unstored.store(epoch, Ordering::SeqCst);
        epoch
    }

    /// Whether `epoch` is the one just handed out (each may be stored once).
    pub fn take_issued(&self, epoch: i64) -> bool {
        epoch > 0 && self.unstored.compare_exchange(epoch, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// The triggers are missing (`false`) or installed again (`true`).
    pub fn set_tracked(&self, tracked: bool) {
        self.untracked.store(!tracked, Ordering::SeqCst);
        self.pending.store(true, Ordering::SeqCst);
    }

    /// What `js_plugins` holds for this connection now, as a snapshot to compare. `None` when it
    /// cannot be told (the data version could not be read, the triggers are missing): then the
    /// caller reads afresh.
    pub fn snapshot(&self, db: Db) -> Option<Snapshot> {
        self.snapshot_at(db, db.data_version()?)
    }

    /// [`OwnChanges::snapshot`] with the data version already read (kept per statement by
    /// scalar calls: `Plugins::statement_data_version`).
    pub fn snapshot_at(&self, db: Db, data_version: u64) -> Option<Snapshot> {
        if self.untracked.load(Ordering::SeqCst) {
            return None;
        }
        if !self.pending.load(Ordering::SeqCst) {
            return Some(Snapshot { data_version, own_epoch: self.current.load(Ordering::SeqCst) });
        }
        // The table goes away with a rolled-back transaction that created it: nothing can be
        // told then until the triggers are installed again.
        let stored = db.connection().query_row("SELECT epoch FROM temp.jsbox_plugins_epoch", [], |r| r.get::<_, i64>(0)).ok()?;
        self.current.store(stored, Ordering::SeqCst);
        if db.transaction() != Transaction::Write {
            self.pending.store(false, Ordering::SeqCst);
        }
        Some(Snapshot { data_version, own_epoch: stored })
    }
}
