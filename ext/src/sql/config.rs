//! `js_config()`: the connection's sandbox limits, read and set from SQL.
//!
//! `js_config()` returns every setting as JSON, `js_config(name)` one setting, and
//! `js_config(name, value)` sets it (for calls and groups that start afterwards) and returns it.

use std::sync::Arc;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;

use super::db::Db;
use super::Session;
use crate::engine::MAX_MEMORY_LIMIT_MIB;
use crate::error::CallError;
use crate::sandbox::Limits;

const NAME: &str = "js_config";

/// A setting: its name, its allowed range, and where it lives in [`Limits`].
struct Setting {
    name: &'static str,
    min: u64,
    max: u64,
    unit: &'static str,
    get: fn(&Limits) -> u64,
    set: fn(&mut Limits, u64),
}

const SETTINGS: [Setting; 3] = [
    Setting {
        name: "memory_limit_mb",
        // The pre-initialized QuickJS needs a few MiB before any script runs.
        min: 8,
        max: MAX_MEMORY_LIMIT_MIB,
        unit: "MiB",
        get: |l| l.memory_mib,
        set: |l, v| l.memory_mib = v,
    },
    Setting {
        name: "time_limit_ms",
        min: 10,
        max: 3_600_000,
        unit: "ms",
        get: |l| l.time_ms,
        set: |l, v| l.time_ms = v,
    },
    Setting {
        name: "connection_memory_mb",
        min: 8,
        max: 65_536,
        unit: "MiB",
        get: |l| l.budget.memory_mib(),
        set: |l, v| l.budget.set_memory_mib(v),
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
        db.create_scalar_function(NAME, n_args, flags, move |ctx| {
            js_config(&session, handle, ctx).map_err(|e| e.in_function(NAME))
        })?;
    }
    Ok(())
}

fn js_config(session: &Session, db: Db, ctx: &Context<'_>) -> Result<SqlValue, CallError> {
    if ctx.is_empty() {
        let limits = session.limits();
        let all: serde_json::Map<String, serde_json::Value> =
            SETTINGS.iter().map(|s| (s.name.to_owned(), (s.get)(&limits).into())).collect();
        return Ok(SqlValue::Text(serde_json::Value::Object(all).to_string()));
    }
    let name = match ctx.get_raw(0) {
        ValueRef::Text(name) => String::from_utf8_lossy(name).into_owned(),
        other => {
            return Err(CallError::ArgumentType { what: "the setting's name", expected: "TEXT", got: super::args::type_name(other) })
        }
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
                    "{} must be between {} and {} {}, not {v}",
                    setting.name, setting.min, setting.max, setting.unit
                )))
            }
            other => {
                return Err(CallError::ArgumentType { what: "the setting's value", expected: "INTEGER", got: super::args::type_name(other) })
            }
        };
        // DIRECTONLY is not enough everywhere (see `direct`).
        super::direct::called_directly(db, NAME)?;
        session.update_limits(|limits| (setting.set)(limits, value));
    }
    Ok(SqlValue::Integer((setting.get)(&session.limits()) as i64))
}
