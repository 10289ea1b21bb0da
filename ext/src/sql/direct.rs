//! Telling a call that the statement being run makes from one that the database's schema makes
//! on its behalf, for the functions that change limits or plugins.
//!
//! They are `SQLITE_DIRECTONLY`, so SQLite refuses them in views, triggers, defaults, generated
//! columns and indexes; but not everywhere in every version: SQLite 3.40 runs CHECK constraints
//! that call them (and a CHECK can reach them through another function, such as the shell's
//! `sha3_query`, that runs a nested statement). A CHECK constraint runs only in a statement that
//! writes (INSERT, UPDATE, an upsert) or in `PRAGMA integrity_check`/`quick_check`. So these
//! functions also require that exactly one statement is running on the connection, that it only
//! reads and is not a PRAGMA, and that its own text calls the function (a function-call token,
//! not a word in a string literal or a comment). The cost, documented: a limit is set by a
//! statement of its own (`SELECT js_config(...)`), not inside a write, not while another
//! statement of the connection is running, and not through a TEMP view that does not name it.

use super::db::Db;
use super::tokens::{calls, first_word_is};
use crate::error::CallError;

/// Whether the one statement running on the connection is a reading one that calls `function`
/// in its own text; else why not.
pub fn called_directly(db: Db, function: &str) -> Result<(), CallError> {
    let refused = |why: &'static str| Err(CallError::NotDirect(why));
    match db.running_statements().as_slice() {
        [only] if !only.read_only => {
            refused("limits and plugins are changed by a statement of their own (SELECT js_config(...)), not inside one that writes")
        }
        [only] if first_word_is(&only.sql, "pragma") => refused("limits and plugins are not changed inside a PRAGMA"),
        [only] if calls(&only.sql, function) => Ok(()),
        [_] => refused("called from the database's schema (a view, trigger, constraint or index), not from the statement being run"),
        _ => refused(
            "another statement of this connection is still running (finish or reset it first); jsbox cannot tell which one made the call",
        ),
    }
}
