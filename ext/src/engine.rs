//! Process-wide state, created once on first use: the wasmtime [`Engine`] (pooling allocator),
//! the precompiled guest deserialized from the bytes embedded in this library, its
//! [`InstancePre`] with the WASI imports linked, and the epoch ticker thread that enforces time
//! limits for every connection.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use wasmtime::{
    Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
};

use crate::abi::GuestExports;
use crate::code_memory::{InPlaceCode, PageAligned};
use crate::engine_config;
use crate::error::CallError;
use crate::sandbox::HostState;
use crate::wasi;

/// The guest, Wizer-snapshotted and precompiled by `xtask snapshot` (see `ext/build.rs`); its
/// code runs from here ([`crate::code_memory`]).
static GUEST_CWASM: &PageAligned<[u8]> = &PageAligned(*include_bytes!(env!("JSBOX_GUEST_CWASM")));

/// How often the ticker advances the epoch: the resolution of time limits.
pub const TICK: Duration = Duration::from_millis(10);

/// Sandboxes (instances) that may be alive at once in the process. Slots cost address space,
/// not memory, so the pool is sized generously; when it is full a call fails cleanly.
pub const POOL_SLOTS: u32 = 1000;

/// The pool size in effect: [`POOL_SLOTS`], or `JSBOX_POOL_SLOTS` from the environment where the
/// address space is smaller than 4 GiB per slot allows (valgrind's, for `make leaks`).
pub fn pool_slots() -> u32 {
    static SLOTS: OnceLock<u32> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::env::var("JSBOX_POOL_SLOTS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(POOL_SLOTS)
    })
}

/// The largest memory limit a connection may set, in MiB: the size of a pool slot.
pub const MAX_MEMORY_LIMIT_MIB: u64 = 4096;

/// Memory a pool slot keeps mapped between instances, so that a fresh instance does not fault
/// in the snapshot's pages again (measured: ~3× faster fresh worlds; see docs/performance.md).
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// Everything that is created once per process.
pub struct Runtime {
    pub engine: Engine,
    pub pre: InstancePre<HostState>,
    pub exports: GuestExports,
    pub ticker: Ticker,
    seeds: AtomicU64,
}

static RUNTIME: OnceLock<Result<Runtime, CallError>> = OnceLock::new();

/// The process's runtime, created on first use.
pub fn runtime() -> Result<&'static Runtime, CallError> {
    RUNTIME.get_or_init(Runtime::new).as_ref().map_err(Clone::clone)
}

impl Runtime {
    fn new() -> Result<Self, CallError> {
        let mut config = engine_config::sandbox();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling()));
        let in_place = InPlaceCode::supported();
        if in_place {
            config.with_custom_code_memory(Some(Arc::new(InPlaceCode)));
        }
        let engine = Engine::new(&config).map_err(internal("creating the engine"))?;
        // SAFETY: the bytes were produced by `Engine::precompile_module` of this same wasmtime
        // version with `engine_config::sandbox()` (xtask), and are a read-only static that
        // lives as long as the process.
        let module = unsafe {
            if in_place {
                Module::deserialize_raw(&engine, InPlaceCode::memory(GUEST_CWASM))
            } else {
                Module::deserialize(&engine, &GUEST_CWASM.0)
            }
        }
        .map_err(internal("loading the precompiled guest"))?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(internal("linking WASI"))?;
        let pre = linker.instantiate_pre(&module).map_err(internal("linking the guest"))?;
        let exports = GuestExports::resolve(&module)?;
        let ticker = Ticker::start(engine.clone());
        Ok(Runtime { engine, pre, exports, ticker, seeds: AtomicU64::new(initial_seed()) })
    }

    /// A fresh seed for `Math.random` in the next call.
    pub fn next_seed(&self) -> u64 {
        self.seeds.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
    }

    /// Size of the embedded precompiled guest, for `js_debug()`.
    pub fn guest_bytes(&self) -> usize {
        GUEST_CWASM.0.len()
    }
}

/// Wraps a start-up failure with what was being done.
fn internal(what: &'static str) -> impl Fn(wasmtime::Error) -> CallError {
    move |e| CallError::Internal(format!("{what}: {e}"))
}

fn pooling() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    let slots = pool_slots();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_component_instances(0)
        .max_memory_size((MAX_MEMORY_LIMIT_MIB << 20) as usize)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
        // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only the pages a call dirtied
        // instead of the whole kept-resident range.
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

fn initial_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id() as u64);
    hasher.finish()
}

/// The single thread that advances the engine's epoch while calls are running. After a second
/// without any call it parks, so that an idle process with jsbox loaded does not wake up; it is
/// woken (one syscall) only then, not on every call of a busy statement.
pub struct Ticker {
    state: Arc<TickerState>,
    thread: Thread,
}

struct TickerState {
    /// Calls in the sandbox right now.
    active: AtomicUsize,
    /// Set while the ticker thread is (about to be) parked.
    parked: AtomicBool,
}

/// Ticks without any call before the ticker parks.
const IDLE_TICKS_BEFORE_PARKING: u32 = 100;

/// Keeps the ticker running while a call is in the sandbox.
pub struct TickerGuard<'a>(&'a Ticker);

impl Ticker {
    fn start(engine: Engine) -> Self {
        let state = Arc::new(TickerState { active: AtomicUsize::new(0), parked: AtomicBool::new(false) });
        let shared = Arc::clone(&state);
        let handle = thread::Builder::new()
            .name("jsbox-epoch".into())
            .spawn(move || {
                let mut idle_ticks = 0;
                loop {
                    if shared.active.load(Ordering::SeqCst) > 0 {
                        idle_ticks = 0;
                    } else {
                        idle_ticks += 1;
                    }
                    if idle_ticks > IDLE_TICKS_BEFORE_PARKING {
                        // Announce the park before re-checking, so that a call entering now
                        // either is seen here or sees `parked` and unparks us.
                        shared.parked.store(true, Ordering::SeqCst);
                        if shared.active.load(Ordering::SeqCst) == 0 {
                            thread::park();
                        }
                        shared.parked.store(false, Ordering::SeqCst);
                        idle_ticks = 0;
                        continue;
                    }
                    thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the jsbox epoch thread");
        Ticker { state, thread: handle.thread().clone() }
    }

    /// Marks a call as running until the guard is dropped.
    pub fn enter(&self) -> TickerGuard<'_> {
        self.state.active.fetch_add(1, Ordering::SeqCst);
        if self.state.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        TickerGuard(self)
    }

    /// Epoch ticks that make up `ms` milliseconds, plus one: the first tick may come at any time
    /// after the call starts, so the limit is never cut short.
    pub fn ticks_for(ms: u64) -> u64 {
        ms.div_ceil(TICK.as_millis() as u64) + 1
    }
}

impl Drop for TickerGuard<'_> {
    fn drop(&mut self) {
        self.0.state.active.fetch_sub(1, Ordering::SeqCst);
    }
}
