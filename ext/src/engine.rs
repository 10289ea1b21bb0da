//! Process-wide state, created once on first use: the wasmtime [`Engine`] and how it allocates
//! sandboxes ([`Allocation`]: a pool reserved up front, or on demand where the address space is
//! capped), the precompiled guest for that allocation deserialized from the bytes embedded in
//! this library, its
//! [`InstancePre`] with the WASI imports linked, and the epoch ticker thread that enforces time
//! limits for every connection (started again in the child after `fork()`).

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
};

use crate::abi::GuestExports;
use crate::code_memory::{InPlaceCode, PageAligned};
use crate::engine_config::{self, MemoryPlacement, RESERVED_GUARD_BYTES, RESERVED_MEMORY_BYTES};
use crate::error::CallError;
use crate::sandbox::HostState;
use crate::wasi;

/// The guest, Wizer-snapshotted and precompiled by `xtask snapshot` (see `ext/build.rs`), once
/// per [`MemoryPlacement`]; the code of the one in use runs from here ([`crate::code_memory`]).
static GUEST_CWASM: &PageAligned<[u8]> = &PageAligned(*include_bytes!(env!("JSBOX_GUEST_CWASM")));
static GUEST_BOUNDED_CWASM: &PageAligned<[u8]> = &PageAligned(*include_bytes!(env!("JSBOX_GUEST_BOUNDED_CWASM")));

/// How often the ticker advances the epoch: the resolution of time limits.
pub const TICK: Duration = Duration::from_millis(10);

/// Sandboxes (instances) that may be alive at once in the process when the address space is not
/// capped. Slots cost address space, not memory, so the pool is sized generously; when it is
/// full a call fails cleanly.
pub const POOL_SLOTS: u32 = 1000;

/// A smaller pool than this is not worth its address space: a capped process then allocates
/// each sandbox's memory on demand instead.
const MIN_POOL_SLOTS: u32 = 64;

/// Address space one pool slot reserves: its memory's 4 GiB range and the guard regions around it.
const POOL_SLOT_ADDRESS_BYTES: u64 = RESERVED_MEMORY_BYTES + 2 * RESERVED_GUARD_BYTES;

/// Room an on-demand memory maps beyond its size (address space, not memory): growing past it
/// moves the memory, a copy of all of it. A 128th of what the process may map, so that a
/// sandbox within the default memory limit (64 MiB) moves once at most under a cap of 8 GiB and
/// never under 16 GiB, within these bounds.
fn on_demand_growth_room(room: Option<u64>) -> u64 {
    const LEAST: u64 = 16 << 20;
    const MOST: u64 = 256 << 20;
    room.map_or(MOST, |room| (room / 128).clamp(LEAST, MOST))
}

/// The largest memory limit a connection may set, in MiB: the 32-bit range (a pool slot).
pub const MAX_MEMORY_LIMIT_MIB: u64 = RESERVED_MEMORY_BYTES >> 20;

/// Memory a pool slot keeps mapped between instances, so that a fresh instance does not fault
/// in the snapshot's pages again (measured: ~3× faster fresh worlds; see docs/performance.md).
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// How the process's sandboxes get their memory; chosen once, when the runtime is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// A pool of `slots` instances reserved up front ([`MemoryPlacement::Reserved`]): the
    /// fastest fresh instances, at 4 GiB of address space per slot.
    Pool { slots: u32 },
    /// Each instance maps its memory when it is made and unmaps it when dropped
    /// ([`MemoryPlacement::Bounded`]): address space in proportion to the memory in use.
    OnDemand,
}

impl Allocation {
    /// The pool `JSBOX_POOL_SLOTS` asks for (`0`: none, allocate on demand); without it, a pool of
    /// [`POOL_SLOTS`] where the address space is not capped, else of as many slots as fit in
    /// half of what the process may still map, and none when that is fewer than
    /// [`MIN_POOL_SLOTS`].
    fn choose() -> Allocation {
        let requested = std::env::var("JSBOX_POOL_SLOTS").ok().and_then(|v| v.trim().parse::<u32>().ok());
        let slots = match (requested, address_space::room()) {
            (Some(slots), _) => slots,
            (None, None) => POOL_SLOTS,
            (None, Some(room)) => u32::try_from(room / 2 / POOL_SLOT_ADDRESS_BYTES).unwrap_or(u32::MAX).min(POOL_SLOTS),
        };
        match slots {
            0 => Allocation::OnDemand,
            slots if requested.is_none() && slots < MIN_POOL_SLOTS => Allocation::OnDemand,
            slots => Allocation::Pool { slots },
        }
    }

    pub fn placement(self) -> MemoryPlacement {
        match self {
            Allocation::Pool { .. } => MemoryPlacement::Reserved,
            Allocation::OnDemand => MemoryPlacement::Bounded,
        }
    }

    /// Sandboxes that may be alive at once in the process (`None`: as many as the address space
    /// holds).
    pub fn slots(self) -> Option<u32> {
        match self {
            Allocation::Pool { slots } => Some(slots),
            Allocation::OnDemand => None,
        }
    }

    /// What `js_debug()` calls it.
    pub fn name(self) -> &'static str {
        match self {
            Allocation::Pool { .. } => "pool",
            Allocation::OnDemand => "on-demand",
        }
    }

    fn guest(self) -> &'static PageAligned<[u8]> {
        match self.placement() {
            MemoryPlacement::Reserved => GUEST_CWASM,
            MemoryPlacement::Bounded => GUEST_BOUNDED_CWASM,
        }
    }

    fn config(self) -> Config {
        let mut config = engine_config::sandbox(self.placement());
        match self {
            Allocation::Pool { slots } => {
                config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(slots)));
            }
            Allocation::OnDemand => {
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                config.memory_reservation_for_growth(on_demand_growth_room(address_space::room()));
            }
        }
        config
    }
}

/// Everything that is created once per process.
pub struct Runtime {
    pub engine: Engine,
    pub allocation: Allocation,
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
        let (engine, allocation) = match Allocation::choose() {
            // The pool's reservation is the one step that fails where the address space is
            // smaller than this process measured (another thread mapped memory meanwhile, or
            // `JSBOX_POOL_SLOTS` asked for too many): allocate on demand then.
            Allocation::Pool { slots } => match engine(Allocation::Pool { slots }) {
                Ok(engine) => (engine, Allocation::Pool { slots }),
                Err(_) => (engine(Allocation::OnDemand)?, Allocation::OnDemand),
            },
            Allocation::OnDemand => (engine(Allocation::OnDemand)?, Allocation::OnDemand),
        };
        let guest = allocation.guest();
        // SAFETY: the bytes were produced by `Engine::precompile_module` of this same wasmtime
        // version with `engine_config::sandbox(allocation.placement())` (xtask), and are a
        // read-only static that lives as long as the process.
        let module = unsafe {
            if InPlaceCode::supported() {
                Module::deserialize_raw(&engine, InPlaceCode::memory(guest))
            } else {
                Module::deserialize(&engine, &guest.0)
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
        Ok(Runtime { engine, allocation, pre, exports, ticker })
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

    /// Size of the precompiled guest in use, for `js_debug()`.
    pub fn guest_bytes(&self) -> usize {
        self.allocation.guest().0.len()
    }
}

/// Wraps a start-up failure with what was being done.
fn internal(what: &'static str) -> impl Fn(wasmtime::Error) -> CallError {
    move |e| CallError::Internal(format!("{what}: {e}"))
}

/// The engine for `allocation`, running code in place where it can.
fn engine(allocation: Allocation) -> Result<Engine, CallError> {
    let mut config = allocation.config();
    if InPlaceCode::supported() {
        config.with_custom_code_memory(Some(Arc::new(InPlaceCode)));
    }
    Engine::new(&config).map_err(internal("creating the engine"))
}

fn pooling(slots: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
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

/// What the process may still map: `RLIMIT_AS` (`ulimit -v`) less what is mapped now.
mod address_space {
    /// Bytes the process may still map, or `None` when its address space is not capped.
    #[cfg(target_os = "linux")]
    pub fn room() -> Option<u64> {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct it is given, which lives on this stack.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        Some(limit.rlim_cur.saturating_sub(mapped_now()))
    }

    /// The process's mapped size (`VmSize`): the first field of /proc/self/statm, in pages.
    #[cfg(target_os = "linux")]
    fn mapped_now() -> u64 {
        let pages = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|statm| statm.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let page_bytes = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        pages * page_bytes
    }

    /// Elsewhere the pool's reservation is tried, and its failure falls back to on demand.
    #[cfg(not(target_os = "linux"))]
    pub fn room() -> Option<u64> {
        None
    }
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
