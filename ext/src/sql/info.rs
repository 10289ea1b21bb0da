//! `js_version()` and `js_debug()`: what this build of jsbox is and how it is configured.

use std::sync::{Arc, OnceLock};

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use serde_json::json;

use super::Session;
use crate::engine;
use crate::error::CallError;
use crate::sandbox;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn register(db: &Connection, session: &Arc<Session>) -> rusqlite::Result<()> {
    // The one function that is innocuous: a constant, no state, no cost.
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    db.create_scalar_function("js_version", 0, flags, |_| Ok(VERSION))?;
    let session = Arc::clone(session);
    db.create_scalar_function("js_debug", 0, FunctionFlags::SQLITE_UTF8, move |_| {
        debug_json(&session).map_err(|e| e.in_function("js_debug"))
    })?;
    Ok(())
}

/// The guest's self-description, asked once per process.
fn guest_info() -> Result<&'static serde_json::Value, CallError> {
    static INFO: OnceLock<Result<serde_json::Value, CallError>> = OnceLock::new();
    INFO.get_or_init(|| {
        let text = sandbox::guest_info()?;
        serde_json::from_str(&text).map_err(|e| CallError::Internal(format!("guest info: {e}")))
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn debug_json(session: &Session) -> Result<String, CallError> {
    let runtime = engine::runtime()?;
    let guest = guest_info()?;
    let limits = session.limits();
    let last_console = session.last_console.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let debug = json!({
        "jsbox": VERSION,
        "quickjs": guest["quickjs"],
        "rquickjs": env!("JSBOX_RQUICKJS_VERSION"),
        "wasmtime": env!("JSBOX_WASMTIME_VERSION"),
        "sqlite": rusqlite::version(),
        "abi": guest["abi"],
        "memory_limit_mb": limits.memory_mib,
        "time_limit_ms": limits.time_ms,
        "time_limit_resolution_ms": engine::TICK.as_millis() as u64,
        // sqlite3_interrupt() stops a running call only where SQLite has sqlite3_is_interrupted.
        "interrupt": if limits.interrupt.is_some() {
            "available"
        } else {
            "not available: this SQLite has no sqlite3_is_interrupted (3.41 and later)"
        },
        "wasm_stack_bytes": crate::engine_config::MAX_WASM_STACK,
        // How sandboxes get their memory: a pool reserved up front, or on demand where the
        // address space is capped (docs/hosts.md).
        "allocator": runtime.plan.allocation.name(),
        "allocation_reason": runtime.plan.reason,
        "pool_slots": runtime.plan.allocation.pool_slots(),
        "memory_placement": runtime.plan.allocation.placement().name(),
        "sandboxes_max": runtime.sandboxes_max,
        "connection_sandboxes_max": crate::budget::sandbox_share(),
        "connection_sandboxes": limits.budget.sandboxes(),
        "connection_memory_mb": limits.budget.memory_mib(),
        "connection_memory_in_use_bytes": limits.budget.memory_in_use(),
        "guest_precompiled_bytes": runtime.guest_bytes(),
        // The CPUs the embedded guest runs on: this target, with at least these features.
        "guest_target": env!("JSBOX_GUEST_TARGET"),
        "guest_cpu": env!("JSBOX_GUEST_CPU"),
        // The Wizer snapshot's FNV-1a hash: nodes that replicate statements check it is equal.
        "guest_hash": env!("JSBOX_GUEST_HASH"),
        "json_input_parser": "serde_json",
        "scripts_cached": session.scripts().len(),
        "plugins": session.plugin_stats(),
        "last_console": last_console,
    });
    Ok(debug.to_string())
}
