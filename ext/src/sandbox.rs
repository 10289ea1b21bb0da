//! One call in a fresh sandbox: a new instance of the pre-initialized guest (copy-on-write from
//! the snapshot, from the process's instance pool) with a memory cap and a time limit, the
//! request written in, the response read out, and every way of failing mapped to a
//! [`CallError`]. The instance is dropped after the call, so no state survives into the next.

use jsbox_abi::{ErrorKind, Response};
use rusqlite::types::Value as SqlValue;
use wasmtime::{PoolConcurrencyLimitError, ResourceLimiter, Store, Trap};

use crate::abi::{Guest, Input};
use crate::engine::{self, Runtime, Ticker};
use crate::error::CallError;

/// Resource limits of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The guest's linear memory may not grow beyond this many MiB.
    pub memory_mib: u64,
    /// The call is interrupted after this many milliseconds of wall-clock time.
    pub time_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_mib: 64, time_ms: 1000 }
    }
}

/// The store's data: enforces the memory limit and remembers whether it refused to grow, so
/// that an out-of-memory failure inside the guest is reported as the limit it is.
pub struct HostState {
    memory_limit_bytes: usize,
    memory_refused: bool,
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_limit_bytes;
        self.memory_refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // QuickJS never grows its function table; refuse anything outlandish.
        Ok(desired <= 1 << 20)
    }
}

/// What a successful call produced.
#[derive(Debug)]
pub struct Outcome {
    pub value: SqlValue,
    /// What the script wrote with `console.*` (bounded by the guest).
    pub console: String,
}

/// Evaluates `script` with `data` bound to `input` in a fresh sandbox.
pub fn eval(limits: Limits, script: &[u8], input: Input<'_>) -> Result<Outcome, CallError> {
    let runtime = engine::runtime()?;
    let Call { mut store, guest, _ticking } = Call::start(runtime, limits)?;
    let seed = runtime.next_seed();
    let value = guest
        .eval(&mut store, script, input, seed, |bytes| response_to_value(bytes, limits))
        .map_err(|e| failure(e, store.data(), limits))??;
    let console = match guest.console(&mut store) {
        Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Err(e) => return Err(failure(e, store.data(), limits)),
    };
    Ok(Outcome { value, console })
}

/// The guest's self-description (JSON), from a throwaway instance.
pub fn guest_info() -> Result<String, CallError> {
    let runtime = engine::runtime()?;
    let limits = Limits::default();
    let Call { mut store, guest, _ticking } = Call::start(runtime, limits)?;
    match guest.info(&mut store) {
        Ok(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Err(e) => Err(failure(e, store.data(), limits)),
    }
}

/// A live instance with its store, for the duration of one call.
struct Call<'r> {
    store: Store<HostState>,
    guest: Guest,
    /// Keeps the epoch ticking until the call is over.
    _ticking: engine::TickerGuard<'r>,
}

impl<'r> Call<'r> {
    fn start(runtime: &'r Runtime, limits: Limits) -> Result<Self, CallError> {
        let state = HostState {
            memory_limit_bytes: usize::try_from(limits.memory_mib << 20).unwrap_or(usize::MAX),
            memory_refused: false,
        };
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|state| state);
        store.set_epoch_deadline(Ticker::ticks_for(limits.time_ms));
        store.epoch_deadline_trap();
        let ticking = runtime.ticker.enter();
        let instance = match runtime.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => return Err(failure(e, store.data(), limits)),
        };
        let guest = match Guest::bind(&mut store, &instance, &runtime.exports) {
            Ok(guest) => guest,
            Err(e) => return Err(failure(e, store.data(), limits)),
        };
        Ok(Call { store, guest, _ticking: ticking })
    }
}

/// Maps a trap or host error to the limit or fault it stands for.
fn failure(error: wasmtime::Error, state: &HostState, limits: Limits) -> CallError {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        match trap {
            Trap::Interrupt => return CallError::TimeLimit(limits.time_ms),
            Trap::StackOverflow => {
                return CallError::StackOverflow("the sandbox's native stack is exhausted".into())
            }
            _ => {}
        }
    }
    if state.memory_refused {
        return CallError::MemoryLimit(limits.memory_mib);
    }
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return CallError::PoolExhausted(engine::POOL_SLOTS);
    }
    match error.downcast_ref::<Trap>() {
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Trap(error.to_string()),
    }
}

fn response_to_value(bytes: &[u8], limits: Limits) -> Result<SqlValue, CallError> {
    let response = Response::decode(bytes).map_err(|e| CallError::Internal(e.to_string()))?;
    Ok(match response {
        Response::Null => SqlValue::Null,
        Response::Integer(i) => SqlValue::Integer(i),
        Response::Real(f) => SqlValue::Real(f),
        Response::Text(s) | Response::Json(s) => SqlValue::Text(s.to_owned()),
        Response::Blob(b) => SqlValue::Blob(b.to_vec()),
        Response::Error(kind, message) => {
            let message = message.to_owned();
            return Err(match kind {
                ErrorKind::Exception => CallError::Exception(message),
                ErrorKind::InvalidInput => CallError::InvalidJson(message),
                ErrorKind::UnsupportedResult => CallError::UnsupportedResult(message),
                // The guest's allocator fails only when the memory limit refuses to grow.
                ErrorKind::OutOfMemory => CallError::MemoryLimit(limits.memory_mib),
                ErrorKind::StackOverflow => CallError::StackOverflow(message),
                ErrorKind::Script => CallError::Script(message),
                ErrorKind::Abi => CallError::Internal(message),
            });
        }
    })
}
