//! Stored plugins on the host side: compiling a plugin's source once (to QuickJS bytecode, in a
//! throwaway sandbox that also checks the functions its kind needs), and [`World`]s, sandboxes
//! with a plugin loaded, through which SQL rows cross into the plugin's functions.
//!
//! A plugin whose loading takes a while (a big library at its top level) is loaded once: the
//! first world's memory, right after loading, becomes the plugin's [`WorldImage`], and every
//! later world is a fresh sandbox with that image mapped in (`world_image.rs`).

use jsbox_abi::{Arg, PluginKind, PluginOp};
use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::Store;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::abi::{Guest, GuestResult, NumberArgs};
use crate::error::CallError;
use crate::modules::{Imports, ModuleSet};
use crate::sandbox::{bytecode_response, response_to_value, response_value, HostState, Limits, Sandbox};
use crate::world_image::WorldImage;

/// A plugin's source, compiled and checked.
#[derive(Debug)]
pub struct CompiledPlugin {
    pub kind: PluginKind,
    bytecode: Vec<u8>,
    /// The modules it imports, given to each of its worlds before it is loaded.
    pub modules: ModuleSet,
    /// The memory of a world right after loading, set by the first world made: `None` if
    /// loading is cheaper than mapping an image, or the image could not be made. One per mode:
    /// a deterministic world must start from a deterministic load (its top level's
    /// `Math.random`, the step counter), whatever a normal one loaded.
    /// With each deterministic image, the step limit it was loaded under: a lower limit loads
    /// again (the load might not fit it), the same or a higher one may use it.
    images: [OnceLock<Option<LoadedImage>>; 2],
}

/// A loaded world's image, and the step limit (millions; 0 in normal mode) it was loaded under.
type LoadedImage = (u64, Arc<WorldImage>);

/// Loading that takes at least this long is done once: the first world's image is mapped for
/// the next worlds. Quicker loading is done again for each world: a mapped image costs calls
/// that take the process's memory-map lock for writing (`mmap`), which serialize threads that
/// run groups at once (W7's two threads fell from 1.90× to 1.61× the throughput of one when
/// every plugin was imaged), while loading a small plugin costs a few tens of microseconds.
const IMAGE_WORTH: Duration = Duration::from_micros(500);

impl CompiledPlugin {
    /// Bytes of bytecode it holds, its modules' included.
    pub fn bytecode_len(&self) -> usize {
        self.bytecode.len() + self.modules.bytes()
    }
}

/// Compiles `source` as a plugin of `kind`: its top level runs once here, so syntax errors,
/// exceptions, missing functions and missing modules are reported now. The modules it imports
/// come from `imports`, which also gives the limits.
pub fn compile(kind: PluginKind, source: &str, imports: &mut Imports<'_>) -> Result<CompiledPlugin, CallError> {
    let (bytecode, modules) = imports.resolve(ModuleSet::default(), |modules, limits| {
        let mut sandbox = Sandbox::new(limits)?;
        sandbox.give_modules(modules)?;
        sandbox
            .run(|guest, store| guest.plugin_compile(store, source.as_bytes(), kind, |bytes| bytecode_response(bytes, limits.memory_mib)))
    })?;
    Ok(CompiledPlugin { kind, bytecode, modules, images: Default::default() })
}

/// A sandbox with a plugin loaded: one per aggregate group, or per connection for a scalar.
pub struct World {
    sandbox: Sandbox,
    /// Encoded arguments of rows not yet sent into the sandbox (aggregates batch their steps).
    pending: Vec<u8>,
    /// The encoded arguments of a single-row call, reused across calls.
    row: Vec<u8>,
    pending_rows: u32,
    nargs: u32,
    /// What the plugin wrote with `console.*`: in its last call (scalar), or since the group
    /// began (aggregate, window); at most [`MAX_CONSOLE_BYTES`].
    console: String,
}

/// Console output a world keeps.
const MAX_CONSOLE_BYTES: usize = 4096;

/// Rows an aggregate sends into the sandbox at once, at most...
const STEP_BATCH_ROWS: u32 = 256;
/// ...and bytes of encoded rows: big rows cross one or a few at a time.
const STEP_BATCH_BYTES: usize = 1 << 20;

impl World {
    pub fn new(plugin: &CompiledPlugin, limits: &Limits) -> Result<Self, CallError> {
        let seed = limits.seed(&[&plugin.bytecode])?;
        let image = &plugin.images[usize::from(limits.deterministic)];
        let step_limit = if limits.deterministic { limits.step_limit_millions } else { 0 };
        let mut sandbox = match image.get() {
            Some(Some((loaded_under, image))) if image.len() as u64 <= limits.memory_mib << 20 && *loaded_under <= step_limit => {
                Sandbox::from_image(limits, image, seed)?
            }
            _ => {
                let started = Instant::now();
                let mut sandbox = Sandbox::new(limits)?;
                sandbox.give_modules(&plugin.modules)?;
                sandbox.run(|guest, store| {
                    guest.plugin_load(store, &plugin.bytecode, plugin.kind, seed, |bytes| response_to_value(bytes, limits.memory_mib))
                })?;
                if image.get().is_none() && started.elapsed() >= IMAGE_WORTH {
                    let _ = image.set(sandbox.capture().ok().map(|captured| (step_limit, Arc::new(captured))));
                }
                sandbox
            }
        };
        // Deterministic mode reseeds at each row from the plugin and the row.
        sandbox.set_row_seed(seed);
        Ok(World { sandbox, pending: Vec::new(), row: Vec::new(), pending_rows: 0, nargs: 0, console: String::new() })
    }

    /// Whether this world runs in deterministic mode.
    pub fn deterministic(&self) -> bool {
        self.sandbox.limits().deterministic
    }

    /// Whether this world can be [`World::reset`] and used again.
    pub fn resettable(&self) -> bool {
        self.sandbox.is_imaged()
    }

    /// Makes this world as it was right after its plugin was loaded (its memory equal to the
    /// plugin's image again), for another group; `false` if it cannot be (drop it then).
    pub fn reset(&mut self) -> bool {
        self.pending.clear();
        self.pending_rows = 0;
        self.console.clear();
        self.sandbox.reset()
    }

    /// Reseeds `Math.random` (a world used again): as a new world of `plugin` would be.
    pub fn reseed(&mut self, plugin: &CompiledPlugin) -> Result<(), CallError> {
        let seed = self.sandbox.limits().seed(&[&plugin.bytecode])?;
        self.sandbox.reseed(seed)
    }

    /// `main(...args)` for one row.
    pub fn main<'a>(&mut self, args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone) -> Result<SqlValue, CallError> {
        self.console.clear();
        // Numbers cross as the call's parameters and result (about a sixth of W4's time), except
        // in deterministic mode, where each row reseeds `Math.random` from its encoding.
        if !self.sandbox.limits().deterministic {
            if let Some(numbers) = NumberArgs::of(args.clone()) {
                return self.main_numbers(&numbers);
            }
        }
        self.call_row(PluginOp::Main, args)
    }

    fn main_numbers(&mut self, numbers: &NumberArgs) -> Result<SqlValue, CallError> {
        let memory_mib = self.sandbox.limits().memory_mib;
        let console = &mut self.console;
        self.sandbox.run(|guest, store| {
            let (value, wrote) = match guest
                .plugin_main_numbers(store, numbers, |bytes| (response_to_value(bytes, memory_mib), jsbox_abi::has_console(bytes)))?
            {
                Ok(number) => (response_value(jsbox_abi::numbers::response(number), memory_mib), false),
                Err(read) => read,
            };
            if wrote {
                append_console(guest, store, console)?;
            }
            Ok(value)
        })
    }

    /// What the plugin wrote with `console.*` in its last call (scalar) or in this group.
    pub fn console(&self) -> &str {
        &self.console
    }

    /// The memory the world holds now, and what its connection's sandboxes may hold together.
    pub fn memory_bytes(&self) -> u64 {
        self.sandbox.memory_bytes()
    }

    pub fn budget_bytes(&self) -> u64 {
        self.sandbox.budget_bytes()
    }

    /// `state = init()`.
    pub fn init(&mut self) -> Result<(), CallError> {
        self.console.clear();
        self.call(PluginOp::Init, 0, 0, &[]).map(drop)
    }

    /// Queues `state = step(state, ...args)`; rows cross into the sandbox in batches.
    pub fn step<'a>(&mut self, args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone) -> Result<(), CallError> {
        self.check_row_size(args.clone())?;
        self.nargs = args.len() as u32;
        encode_row(args, &mut self.pending)?;
        self.pending_rows += 1;
        if self.pending_rows >= STEP_BATCH_ROWS || self.pending.len() >= STEP_BATCH_BYTES {
            self.send_pending(PluginOp::Step)?;
        }
        Ok(())
    }

    /// `state = inverse(state, ...args)` (window functions), after the queued steps.
    pub fn inverse<'a>(&mut self, args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone) -> Result<(), CallError> {
        self.send_pending(PluginOp::Step)?;
        self.call_row(PluginOp::Inverse, args).map(drop)
    }

    /// The plugin's result after the queued steps, which travel with the request (one crossing
    /// per row of a window): `final(state)` for `PluginOp::Final`, a window's current
    /// `value(state)` for `PluginOp::Value`.
    pub fn result(&mut self, op: PluginOp) -> Result<SqlValue, CallError> {
        self.send_pending(op)
    }

    /// Sends the queued steps with `op`: `Step` runs them, `Final` and `Value` run them and
    /// then answer.
    fn send_pending(&mut self, op: PluginOp) -> Result<SqlValue, CallError> {
        if self.pending_rows == 0 && op == PluginOp::Step {
            return Ok(SqlValue::Null);
        }
        let rows = std::mem::take(&mut self.pending_rows);
        let pending = std::mem::take(&mut self.pending);
        let result = self.call(op, rows, self.nargs, &pending);
        self.pending = pending;
        self.pending.clear();
        result
    }

    /// Refuses a row that could not fit the sandbox's memory, before it is copied anywhere.
    fn check_row_size<'a>(&self, args: impl Iterator<Item = ValueRef<'a>>) -> Result<(), CallError> {
        let bytes: usize = args
            .map(|arg| match arg {
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len(),
                _ => 8,
            })
            .sum();
        let limit_mib = self.sandbox.limits().memory_mib;
        if bytes as u64 > limit_mib << 20 {
            return Err(CallError::RowTooLarge { row_mib: (bytes as u64).div_ceil(1 << 20), limit_mib });
        }
        Ok(())
    }

    /// `op` on one row, encoded into the reused `row` buffer.
    fn call_row<'a>(&mut self, op: PluginOp, args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone) -> Result<SqlValue, CallError> {
        self.check_row_size(args.clone())?;
        let nargs = args.len() as u32;
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        let result = encode_row(args, &mut row).and_then(|()| self.call(op, 1, nargs, &row));
        self.row = row;
        result
    }

    fn call(&mut self, op: PluginOp, rows: u32, nargs: u32, args: &[u8]) -> Result<SqlValue, CallError> {
        let memory_mib = self.sandbox.limits().memory_mib;
        let console = &mut self.console;
        self.sandbox.run(|guest, store| {
            let (value, wrote) = guest
                .plugin_call(store, op, rows, nargs, args, |bytes| (response_to_value(bytes, memory_mib), jsbox_abi::has_console(bytes)))?;
            // The guest marks a response whose call wrote console output: only then is it read.
            if wrote {
                append_console(guest, store, console)?;
            }
            Ok(value)
        })
    }
}

/// Appends what the guest's last call wrote to its console to `console`, within
/// [`MAX_CONSOLE_BYTES`].
fn append_console(guest: &Guest, store: &mut Store<HostState>, console: &mut String) -> GuestResult<()> {
    let written = guest.console(store)?;
    if !written.is_empty() && console.len() < MAX_CONSOLE_BYTES {
        let room = MAX_CONSOLE_BYTES - console.len();
        let text = String::from_utf8_lossy(written);
        let cut = text.char_indices().map(|(i, _)| i).take_while(|&i| i <= room).last().unwrap_or(0);
        console.push_str(if text.len() <= room { &text } else { &text[..cut] });
    }
    Ok(())
}

/// Encodes one row of SQL arguments.
fn encode_row<'a>(args: impl Iterator<Item = ValueRef<'a>>, out: &mut Vec<u8>) -> Result<(), CallError> {
    for (i, arg) in args.enumerate() {
        let arg = match arg {
            ValueRef::Null => Arg::Null,
            ValueRef::Integer(n) => Arg::Integer(n),
            ValueRef::Real(f) => Arg::Real(f),
            ValueRef::Blob(b) => Arg::Blob(b),
            ValueRef::Text(t) => Arg::from_text(
                std::str::from_utf8(t)
                    .map_err(|e| CallError::InvalidUtf8 { what: format!("argument {}", i + 1).into(), offset: e.valid_up_to() })?,
            ),
        };
        arg.encode_into(out);
    }
    Ok(())
}
