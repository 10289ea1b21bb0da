//! `js_eval(script [, json])`: runs `script` in a fresh sandbox with the global `data` bound to
//! the parsed JSON, and returns the script's value as a SQL value. The script is compiled once
//! per connection (see [`crate::script_cache`]); every call still gets a fresh world.

use std::sync::Arc;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::args;
use super::plugins::Plugins;
use super::Session;
use crate::abi::Input;
use crate::error::CallError;
use crate::modules::Imports;
use crate::script_cache::ScriptCache;

const NAME: &str = "js_eval";

pub fn register(db: &Connection, session: &Arc<Session>) -> rusqlite::Result<()> {
    // Not deterministic: scripts may read the clock and Math.random.
    let flags = FunctionFlags::SQLITE_UTF8;
    for n_args in [1, 2] {
        let plugins = Plugins::new(session, db);
        db.create_scalar_function(NAME, n_args, flags, move |ctx| js_eval(&plugins, ctx).map_err(|e| e.in_function(NAME)))?;
    }
    Ok(())
}

fn js_eval(plugins: &Plugins, ctx: &Context<'_>) -> Result<SqlValue, CallError> {
    let session = plugins.session();
    let Some(script) = args::script(ctx, 0)? else {
        return Ok(SqlValue::Null);
    };
    let input = if ctx.len() > 1 { args::json_input(ctx, 1)? } else { Input::Null };
    let limits = session.limits();
    let read = |module: &str| plugins.read_module(module);
    let outcome = session.with_room(|| {
        let mut imports = Imports::new(&read, &session.modules, &limits);
        let outcome = ScriptCache::eval(&session.scripts, script, input, &mut imports)?;
        match outcome.value {
            Err(e) if e.may_be_relieved() => Err(e),
            _ => Ok(outcome),
        }
    });
    match outcome {
        Ok(outcome) => {
            session.set_last_console(outcome.console);
            outcome.value
        }
        Err(error) => {
            // The call never got to the end (a limit): it has no console output to show.
            session.set_last_console(String::new());
            Err(error)
        }
    }
}
