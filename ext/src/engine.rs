//! Process-wide state, created once on first use: the wasmtime [`Engine`] for the process's
//! [`Plan`] (a pool reserved up front, or sandboxes allocated on demand where the address space
//! is capped: `crate::allocation`), the precompiled guest for it deserialized from the bytes
//! embedded in this library, its
//! [`InstancePre`] with the WASI imports linked, and the epoch ticker thread that enforces time
//! limits for every connection (started again in the child after `fork()`).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use wasmtime::{Engine, InstancePre, Linker, Module};

use crate::abi::GuestExports;
use crate::allocation::{Allocation, Plan};
use crate::code_memory::{InPlaceCode, PageAligned};
use crate::engine_config::{MemoryPlacement, RESERVED_MEMORY_BYTES};
use crate::error::CallError;
use crate::sandbox::HostState;
use crate::wasi;

/// The guest, Wizer-snapshotted and precompiled by `xtask snapshot` (see `ext/build.rs`), once
/// per [`MemoryPlacement`]; the code of the one in use runs from here ([`crate::code_memory`]).
static GUEST_CWASM: &PageAligned<[u8]> = &PageAligned(*include_bytes!(env!("JSBOX_GUEST_CWASM")));
static GUEST_BOUNDED_CWASM: &PageAligned<[u8]> = &PageAligned(*include_bytes!(env!("JSBOX_GUEST_BOUNDED_CWASM")));

/// How often the ticker advances the epoch: the resolution of time limits.
pub const TICK: Duration = Duration::from_millis(10);

/// The largest memory limit a connection may set, in MiB: the 32-bit range (a pool slot).
pub const MAX_MEMORY_LIMIT_MIB: u64 = RESERVED_MEMORY_BYTES >> 20;

/// The precompiled guest for a memory placement.
fn guest(placement: MemoryPlacement) -> &'static PageAligned<[u8]> {
    match placement {
        MemoryPlacement::Reserved => GUEST_CWASM,
        MemoryPlacement::Bounded => GUEST_BOUNDED_CWASM,
    }
}

/// Everything that is created once per process.
pub struct Runtime {
    pub engine: Engine,
    /// How sandboxes get their memory, and why.
    pub plan: Plan,
    /// The most sandboxes the process may hold at once ([`Plan::sandboxes_max`]).
    pub sandboxes_max: u32,
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
        let plan = Plan::choose()?;
        let (engine, plan) = match engine(plan.allocation) {
            Ok(engine) => (engine, plan),
            // The pool's reservation is the one step that fails where the address space is
            // smaller than this process measured (another thread mapped memory meanwhile, or
            // `JSBOX_POOL_SLOTS` asked for too many): allocate on demand then.
            Err(error) if plan.allocation.pool_slots().is_some() => {
                let plan = plan.on_demand_after(&error);
                (engine(plan.allocation)?, plan)
            }
            Err(error) => return Err(error),
        };
        let guest = guest(plan.allocation.placement());
        // SAFETY: the bytes were produced by `Engine::precompile_module` of this same wasmtime
        // version with `engine_config::sandbox(placement)` (xtask), and are a read-only static
        // that lives as long as the process.
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
            .map_err(|e| CallError::Internal(format!("registering the fork handler of the epoch thread: {e}")))?;
        let sandboxes_max = plan.sandboxes_max(initial_memory_bytes(&module));
        Ok(Runtime { engine, plan, sandboxes_max, pre, exports, ticker })
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
        guest(self.plan.allocation.placement()).0.len()
    }
}

/// Wraps a start-up failure with what was being done.
fn internal(what: &'static str) -> impl Fn(wasmtime::Error) -> CallError {
    move |e| CallError::Internal(format!("{what}: {e}"))
}

/// Makes sure this thread can enter the guest. Wasmtime sets each thread up once, at its first
/// entry (an alternate stack for its trap handler), and panics where that stack cannot be
/// mapped (a process at the end of its address space); here that is an error of this call, and
/// the next call on the thread tries again.
pub fn prepare_thread() -> Result<(), CallError> {
    thread_local!(static READY: Cell<bool> = const { Cell::new(false) });
    if READY.get() {
        return Ok(());
    }
    match std::panic::catch_unwind(Engine::tls_eager_initialize) {
        Ok(()) => {
            READY.set(true);
            Ok(())
        }
        Err(_) => Err(CallError::SystemMemory("the signal stack of this thread could not be mapped".into())),
    }
}

/// The engine for `allocation`, running code in place where it can.
fn engine(allocation: Allocation) -> Result<Engine, CallError> {
    let mut config = allocation.config();
    if InPlaceCode::supported() {
        config.with_custom_code_memory(Some(Arc::new(InPlaceCode)));
    }
    Engine::new(&config).map_err(internal("creating the engine"))
}

/// The size of the guest's memory when a sandbox starts (the snapshot's).
fn initial_memory_bytes(module: &Module) -> u64 {
    module.exports().find_map(|export| export.ty().memory().map(|memory| memory.minimum() * memory.page_size())).unwrap_or(0)
}

/// The single thread that advances the engine's epoch while calls are running. After a second
/// without any call it parks, so that an idle process with jsbox loaded does not wake up; it is
/// woken (one syscall) only then, not on every call of a busy statement.
///
/// `fork()` copies only the forking thread, so a child process has no ticker, and without one no
/// time limit would ever fire there (Python's `multiprocessing`, gunicorn's preloaded workers). A
/// `pthread_atfork` handler marks the child, and the child's first call starts a new ticker. The
/// same happens when the thread cannot be started when jsbox loads (a process out of threads or
/// address space): each call tries again, and fails with the reason until it succeeds.
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
/// Set while no ticker runs in this process: in a child after `fork()`, or after the thread
/// could not be started, until a call starts one.
static TICKERLESS: AtomicBool = AtomicBool::new(false);
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
        if spawn_ticker(engine.clone()).is_err() {
            // The first call tries again (and reports the reason if it fails too).
            TICKERLESS.store(true, Ordering::SeqCst);
        }
        Ok(Ticker { engine })
    }

    /// Marks a call as running until the guard is dropped; where no ticker runs (a forked child,
    /// or a start that failed), first starts one. Fails only when that thread cannot be started:
    /// a call without a ticker would have no time limit.
    pub fn enter(&self) -> Result<TickerGuard<'_>, CallError> {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        let guard = TickerGuard(PhantomData);
        if TICKERLESS.load(Ordering::Relaxed) {
            self.restart()?;
        }
        if PARKED.load(Ordering::SeqCst) {
            let thread = TICKER_THREAD.load(Ordering::SeqCst);
            // SAFETY: `PARKED` is only set by a running ticker, after it published its handle,
            // and handles are never freed.
            unsafe { (*thread).unpark() };
        }
        Ok(guard)
    }

    /// Starts the process's ticker where none runs (one call does, if several threads enter at
    /// once; the others' calls are timed as soon as it runs).
    #[cold]
    fn restart(&self) -> Result<(), CallError> {
        if TICKERLESS.swap(false, Ordering::SeqCst) {
            if let Err(e) = spawn_ticker(self.engine.clone()) {
                TICKERLESS.store(true, Ordering::SeqCst);
                return Err(CallError::Internal(format!("starting the epoch thread that enforces time limits: {e}")));
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
    TICKERLESS.store(true, Ordering::SeqCst);
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
