//! `js_config()`: the connection's sandbox limits, read and set from SQL.
//!
//! `js_config()` returns every setting as JSON, `js_config(name)` one setting, and
//! `js_config(name, value)` sets it (for calls and groups that start afterwards) and returns it.
//! A host that runs other people's SQL sets its ceilings, then `js_config('locked', 1)`: from
//! then on every setting can only be tightened on that connection.

use std::sync::Arc;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;

use super::db::Db;
use super::Session;
use crate::engine::MAX_MEMORY_LIMIT_MIB;
use crate::error::CallError;

const NAME: &str = "js_config";

/// A setting: its name, its allowed range, how it is read and set on a connection, and which
/// way is looser (what a locked connection refuses).
struct Setting {
    name: &'static str,
    min: u64,
    max: u64,
    unit: &'static str,
    get: fn(&Session) -> u64,
    set: fn(&Session, u64),
    /// Whether going from the first value to the second loosens the setting.
    looser: fn(u64, u64) -> bool,
}

/// More is looser (limits, switches that allow something).
fn higher(now: u64, new: u64) -> bool {
    new > now
}

const SETTINGS: [Setting; 7] = [
    Setting {
        name: "memory_limit_mb",
        // The pre-initialized QuickJS needs a few MiB before any script runs.
        min: 8,
        max: MAX_MEMORY_LIMIT_MIB,
        unit: " MiB",
        get: |s| s.limits().memory_mib,
        set: |s, v| s.update_limits(|l| l.memory_mib = v),
        looser: higher,
    },
    Setting {
        name: "time_limit_ms",
        min: 10,
        max: 3_600_000,
        unit: " ms",
        get: |s| s.limits().time_ms,
        set: |s, v| s.update_limits(|l| l.time_ms = v),
        looser: higher,
    },
    Setting {
        // Deterministic mode: calls are limited by steps, not time; the clock stands still and
        // Math.random is seeded from the call's code and input (docs/replication.md). On, a call
        // may run longer than time_limit_ms: looser.
        name: "deterministic",
        min: 0,
        max: 1,
        unit: "",
        get: |s| u64::from(s.limits().deterministic),
        set: |s, v| s.update_limits(|l| l.deterministic = v == 1),
        looser: higher,
    },
    Setting {
        name: "step_limit",
        min: 1,
        max: 1_000_000,
        unit: " million steps",
        get: |s| s.limits().step_limit_millions,
        set: |s, v| s.update_limits(|l| l.step_limit_millions = v),
        looser: higher,
    },
    Setting {
        name: "connection_memory_mb",
        min: 8,
        max: 65_536,
        unit: " MiB",
        get: |s| s.limits().budget.memory_mib(),
        set: |s, v| s.limits().budget.set_memory_mib(v),
        looser: higher,
    },
    Setting {
        // Whether the connection's stored plugins run (their functions, js_call, js_agg).
        name: "plugins",
        min: 0,
        max: 1,
        unit: "",
        get: |s| u64::from(s.plugins_on()),
        set: |s, v| s.set_plugins_on(v == 1),
        looser: higher,
    },
    Setting {
        // One way: once 1, every setting can only be tightened on this connection. A host sets
        // its ceilings, then this, before any visitor's SQL runs.
        name: "locked",
        min: 0,
        max: 1,
        unit: "",
        get: |s| u64::from(s.locked()),
        set: |s, v| s.set_locked(v == 1),
        looser: |now, new| new < now,
    },
];

pub fn register(db: &Connection, session: &Arc<Session>) -> rusqlite::Result<()> {
    let handle = Db::of(db);
    for n_args in 0..=2 {
        let session = Arc::clone(session);
        // Setting a limit is DIRECTONLY: a database's own views, triggers and defaults may not
        // raise the limits of the connection that reads it. Reading them is harmless.
        let flags = match n_args {
            2 => FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
            _ => FunctionFlags::SQLITE_UTF8,
        };
        db.create_scalar_function(NAME, n_args, flags, move |ctx| js_config(&session, handle, ctx).map_err(|e| e.in_function(NAME)))?;
    }
    Ok(())
}

fn js_config(session: &Session, db: Db, ctx: &Context<'_>) -> Result<SqlValue, CallError> {
    if ctx.is_empty() {
        let all: serde_json::Map<String, serde_json::Value> =
            SETTINGS.iter().map(|s| (s.name.to_owned(), (s.get)(session).into())).collect();
        return Ok(SqlValue::Text(serde_json::Value::Object(all).to_string()));
    }
    let name = match ctx.get_raw(0) {
        ValueRef::Text(name) => String::from_utf8_lossy(name).into_owned(),
        other => return Err(CallError::ArgumentType { what: "the setting's name", expected: "TEXT", got: super::args::type_name(other) }),
    };
    let setting = SETTINGS.iter().find(|s| s.name == name).ok_or_else(|| {
        let known: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        CallError::Config(format!("unknown setting {name:?}; settings: {}", known.join(", ")))
    })?;
    if ctx.len() == 2 {
        let value = match ctx.get_raw(1) {
            ValueRef::Integer(v) if v >= setting.min as i64 && v <= setting.max as i64 => v as u64,
            ValueRef::Integer(v) => {
                return Err(CallError::Config(format!(
                    "{} must be between {} and {}{}, not {v}",
                    setting.name, setting.min, setting.max, setting.unit
                )))
            }
            other => {
                return Err(CallError::ArgumentType {
                    what: "the setting's value",
                    expected: "INTEGER",
                    got: super::args::type_name(other),
                })
            }
        };
        // DIRECTONLY is not enough everywhere (see `direct`).
        super::direct::called_directly(db, NAME)?;
        let now = (setting.get)(session);
        if session.locked() && (setting.looser)(now, value) {
            return Err(CallError::Config(format!(
                "the settings of this connection are locked: {} can be tightened (it is {now}{}), not loosened",
                setting.name, setting.unit
            )));
        }
        (setting.set)(session, value);
    }
    Ok(SqlValue::Integer((setting.get)(session) as i64))
}
