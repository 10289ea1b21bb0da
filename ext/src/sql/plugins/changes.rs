//! How a connection knows that `js_plugins` may hold something else than what it last read, so
//! that the code that runs is always what the database holds for that connection at that
//! moment, also inside transactions that roll back.
//!
//! Two numbers make a [`Snapshot`]:
//! - the main database's data version ([`Db::data_version`]), which moves at every commit, by
//!   this connection or another;
//! - this connection's own-change epoch, for its uncommitted edits, which the data version does
//!   not see. The connection's temporary triggers on `js_plugins` (not stored in the database)
//!   call `js_plugins_changed`, which checks the row being written and hands out a new epoch,
//!   never used before on this connection; the trigger stores it in a temporary table. That
//!   table is part of the transaction: `ROLLBACK`, `ROLLBACK TO` and a statement that fails
//!   half-way restore the epoch the content had then, so an epoch always names one content.
//!
//! The epoch is read (one small query) only while this connection may have uncommitted edits
//! of `js_plugins`: from a trigger's firing until a call sees no write transaction open.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use super::registry::Snapshot;
use crate::sql::db::{Db, Transaction};

/// The connection's temporary epoch table and triggers. The write triggers run BEFORE the row
/// is written, so a row that jsbox refuses is never stored.
pub const TRIGGERS: &str = "
CREATE TEMP TABLE IF NOT EXISTS jsbox_plugins_epoch(epoch INTEGER NOT NULL);
INSERT INTO temp.jsbox_plugins_epoch(epoch) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM temp.jsbox_plugins_epoch);
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_epoch_kept BEFORE DELETE ON jsbox_plugins_epoch BEGIN
  SELECT RAISE(ABORT, 'jsbox keeps this row: it tells which edits of js_plugins this connection made');
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_insert BEFORE INSERT ON main.js_plugins BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NEW.name, NEW.kind, NEW.n_args, NEW.source);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_update BEFORE UPDATE ON main.js_plugins BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(NEW.name, NEW.kind, NEW.n_args, NEW.source);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jsbox_plugins_delete AFTER DELETE ON main.js_plugins BEGIN
  UPDATE jsbox_plugins_epoch SET epoch = js_plugins_changed(OLD.name);
END;
";

/// This connection's own edits of `js_plugins`.
#[derive(Default)]
pub struct OwnChanges {
    /// Set by a trigger; cleared when a call sees no write transaction (nothing uncommitted).
    pending: AtomicBool,
    /// The last epoch handed out.
    issued: AtomicI64,
    /// The epoch read last: what the table holds while nothing is pending.
    current: AtomicI64,
}

impl OwnChanges {
    /// A new epoch for a change a trigger is about to write.
    pub fn next_epoch(&self) -> i64 {
        self.pending.store(true, Ordering::SeqCst);
        self.issued.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// What `js_plugins` holds for this connection now, as a snapshot to compare.
    pub fn snapshot(&self, db: Db) -> Snapshot {
        let data_version = db.data_version();
        if !self.pending.load(Ordering::SeqCst) {
            return Snapshot { data_version, own_epoch: self.current.load(Ordering::SeqCst) };
        }
        let stored = db
            .connection()
            .query_row("SELECT epoch FROM temp.jsbox_plugins_epoch", [], |r| r.get::<_, i64>(0));
        let own_epoch = match stored {
            Ok(epoch) => epoch,
            // The table went away with a rolled-back transaction that created it: nothing can
            // be trusted, so every call reads afresh (a new epoch each time) until it is back.
            Err(_) => return Snapshot { data_version, own_epoch: -self.next_epoch() },
        };
        self.current.store(own_epoch, Ordering::SeqCst);
        if db.transaction() != Transaction::Write {
            self.pending.store(false, Ordering::SeqCst);
        }
        Snapshot { data_version, own_epoch }
    }
}
