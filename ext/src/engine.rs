//! Process-wide state, created once on first use: the wasmtime [`Engine`] (pooling allocator),
//! the precompiled guest deserialized from the bytes embedded in this library, its
//! [`InstancePre`] with the WASI imports linked, and the epoch ticker thread that enforces time
//! limits for every connection (started again in the child after `fork()`).

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
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
}

static RUNTIME: OnceLock<Result<Runtime, CallError>> = OnceLock::new();

/// The process's runtime, created on first use.
pub fn runtime() -> Result<&'static Runtime, CallError> {
    RUNTIME.get_or_init(Runtime::new).as_ref().map_err(Clone::clone)
}

impl Runtime {
    fn new() -> Result<Self, CallError> {
        // Every lazily made value of the call path is made here, once, not by a first call (a
        // fork during a first call must not leave one half made in the child).
        crate::sandbox::coarse_clock_resolution_ms();
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
        .map_err(internal(concat!(
            "loading the guest precompiled for ",
            env!("JSBOX_GUEST_TARGET"),
            " with ",
            env!("JSBOX_GUEST_CPU"),
            " (a CPU without those features cannot run it)"
        )))?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(internal("linking WASI"))?;
        let pre = linker.instantiate_pre(&module).map_err(internal("linking the guest"))?;
        let exports = GuestExports::resolve(&module)?;
        // Seeds come from the OS's random source, which must work before any call is made.
        wasi::fill_random(&mut [0; 8]).map_err(|e| CallError::Internal(format!("reading the OS's random source: {e}")))?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| CallError::Internal(format!("starting the epoch thread: {e}")))?;
        Ok(Runtime { engine, pre, exports, ticker })
    }

    /// A fresh seed for `Math.random` in the next call, from the OS's CSPRNG: nothing a script
    /// learns about its own seed tells it another call's (in this connection, another one, or
    /// a forked process). One `getrandom(2)` per call (~0.3 µs, see docs/hardening.md).
    pub fn next_seed(&self) -> u64 {
        let mut seed = [0; 8];
        // `Runtime::new` checked that the source works; it does not stop working (`getrandom`
        // only fails for a bad buffer, and retries interruptions).
        wasi::fill_random(&mut seed).expect("the OS's random source failed after working at start-up");
        u64::from_ne_bytes(seed)
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

/// The single thread that advances the engine's epoch while calls are running. After a second
/// without any call it parks, so that an idle process with jsbox loaded does not wake up; it is
/// woken (one syscall) only then, not on every call of a busy statement.
///
/// `fork()` copies only the forking thread, so a child process has no ticker, and without one no
/// time limit would ever fire there (Python's `multiprocessing`, gunicorn's preloaded workers). A
/// `pthread_atfork` handler marks the child, and the child's first call starts a new ticker.
///
/// The ticker's state is process-wide (statics): there is one runtime per process, and the fork
/// handler, which gets no argument, must reach it.
pub struct Ticker {
    /// What the ticker advances; kept to start a new ticker after a fork.
    engine: Engine,
}

/// Calls in the sandbox right now.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Set while the ticker thread is (about to be) parked.
static PARKED: AtomicBool = AtomicBool::new(false);
/// Set in a child process by the fork handler until its first call starts its own ticker.
static FORKED: AtomicBool = AtomicBool::new(false);
/// The running ticker's handle, published by the ticker thread itself before it can park, for
/// calls to unpark it. Never freed, so that no caller can be left holding a freed one: one small
/// allocation per ticker, i.e. per process and per forked child that makes a call.
static TICKER_THREAD: AtomicPtr<Thread> = AtomicPtr::new(ptr::null_mut());

/// Ticks without any call before the ticker parks.
const IDLE_TICKS_BEFORE_PARKING: u32 = 100;

/// Keeps the ticker running while a call is in the sandbox.
pub struct TickerGuard<'a>(PhantomData<&'a Ticker>);

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        restart_in_forked_children()?;
        spawn_ticker(engine.clone())?;
        Ok(Ticker { engine })
    }

    /// Marks a call as running until the guard is dropped; in a forked child, first starts the
    /// child's ticker. Fails only when that thread cannot be started: a call without a ticker
    /// would have no time limit.
    pub fn enter(&self) -> Result<TickerGuard<'_>, CallError> {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        let guard = TickerGuard(PhantomData);
        if FORKED.load(Ordering::Relaxed) {
            self.restart_after_fork()?;
        }
        if PARKED.load(Ordering::SeqCst) {
            let thread = TICKER_THREAD.load(Ordering::SeqCst);
            // SAFETY: `PARKED` is only set by a running ticker, after it published its handle,
            // and handles are never freed.
            unsafe { (*thread).unpark() };
        }
        Ok(guard)
    }

    /// The first call in a forked child starts the child's ticker (one call does, if several
    /// threads of the child enter at once; the others' calls are timed as soon as it runs).
    #[cold]
    fn restart_after_fork(&self) -> Result<(), CallError> {
        if FORKED.swap(false, Ordering::SeqCst) {
            if let Err(e) = spawn_ticker(self.engine.clone()) {
                FORKED.store(true, Ordering::SeqCst);
                return Err(CallError::Internal(format!("starting the epoch thread after fork(): {e}")));
            }
        }
        Ok(())
    }
}

/// Registers [`after_fork_in_child`] (once per process).
#[cfg(unix)]
fn restart_in_forked_children() -> std::io::Result<()> {
    static AT_FORK: OnceLock<libc::c_int> = OnceLock::new();
    // SAFETY: registers a handler that only stores to atomics (async-signal-safe, as handlers
    // run in the child of a multithreaded process must be); this library is never unloaded (see
    // `lib.rs`), so the handler's code stays mapped.
    let registered = *AT_FORK.get_or_init(|| unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) });
    match registered {
        0 => Ok(()),
        error => Err(std::io::Error::from_raw_os_error(error)),
    }
}

/// No fork() here.
#[cfg(not(unix))]
fn restart_in_forked_children() -> std::io::Result<()> {
    Ok(())
}

/// The fork handler, run in the child (which has only the forking thread): no ticker runs here,
/// and no call either, since fork() is never called from inside one.
#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    ACTIVE.store(0, Ordering::SeqCst);
    PARKED.store(false, Ordering::SeqCst);
    FORKED.store(true, Ordering::SeqCst);
}

/// Starts a ticker thread advancing `engine`'s epoch.
fn spawn_ticker(engine: Engine) -> std::io::Result<()> {
    thread::Builder::new().name("jsbox-epoch".into()).spawn(move || {
        TICKER_THREAD.store(Box::into_raw(Box::new(thread::current())), Ordering::SeqCst);
        let mut idle_ticks = 0;
        loop {
            if ACTIVE.load(Ordering::SeqCst) > 0 {
                idle_ticks = 0;
            } else {
                idle_ticks += 1;
            }
            if idle_ticks > IDLE_TICKS_BEFORE_PARKING {
                // Announce the park before re-checking, so that a call entering now either is
                // seen here or sees `PARKED` and unparks us.
                PARKED.store(true, Ordering::SeqCst);
                if ACTIVE.load(Ordering::SeqCst) == 0 {
                    thread::park();
                }
                PARKED.store(false, Ordering::SeqCst);
                idle_ticks = 0;
                continue;
            }
            thread::sleep(TICK);
            engine.increment_epoch();
        }
    })?;
    Ok(())
}

impl Drop for TickerGuard<'_> {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}
