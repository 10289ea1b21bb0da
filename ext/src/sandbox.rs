//! One call in a fresh sandbox: a new instance of the pre-initialized guest (copy-on-write from
//! the snapshot, from the process's instance pool) with a memory cap, a time limit and the
//! connection's interrupt, the request written in, the response read out, and every way of
//! failing mapped to a [`CallError`]. The instance is dropped after the call, so no state
//! survives into the next.
//!
//! Time and interrupts share one mechanism: the store's epoch deadline is always the next tick
//! of the process's epoch thread, and at each tick [`HostState::on_tick`] either stops the call
//! (its wall-clock deadline passed, connection interrupted) or lets it run one tick more. The
//! deadline is a point in time, not a number of ticks: ticks that pass while the calling thread
//! waits for a CPU are not lost, so a busy machine does not stretch the limit.
//!
//! Every entry into the guest runs through [`native_stack::on_guest_stack`], so that a thread
//! with a small native stack gets the guest's stack overflow error rather than a crash.

use jsbox_abi::{ErrorKind, Response};
use rusqlite::types::Value as SqlValue;
use wasmtime::{PoolConcurrencyLimitError, ResourceLimiter, Store, Trap, UpdateDeadline};

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::OnceLock;

use crate::abi::{Guest, GuestResult, Input};
use crate::budget::{Budget, Permit};
use crate::engine;
use crate::error::CallError;
use crate::interrupt::Interrupt;
use crate::modules::ModuleSet;
use crate::native_stack;
use crate::world_image::{self, WorldImage};

/// Resource limits of one call, and the connection's budget it counts against.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The guest's linear memory may not grow beyond this many MiB.
    pub memory_mib: u64,
    /// The call is interrupted after this many milliseconds of wall-clock time.
    pub time_ms: u64,
    /// The call stops when this connection is interrupted (where SQLite can tell).
    pub interrupt: Option<Interrupt>,
    /// What the connection's sandboxes may hold together.
    pub budget: Arc<Budget>,
    /// Deterministic mode: the call is limited by [`Limits::step_limit_millions`] instead of
    /// time, its clock stands still, and `Math.random` is seeded from what it is given.
    pub deterministic: bool,
    /// In deterministic mode, the steps (QuickJS's interrupt checks, at calls and backward
    /// jumps) a call may take, in millions.
    pub step_limit_millions: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            time_ms: 1000,
            interrupt: None,
            budget: Arc::default(),
            deterministic: false,
            step_limit_millions: DEFAULT_STEP_LIMIT_MILLIONS,
        }
    }
}

/// Steps a deterministic call may take by default, in millions (a tight loop takes about 45
/// million a second on this project's 2-core machines: about 2 s).
pub const DEFAULT_STEP_LIMIT_MILLIONS: u64 = 100;

/// Steps per interrupt check of QuickJS (`JS_INTERRUPT_COUNTER_INIT`): the guest counts checks.
const STEPS_PER_CHECK: u64 = 10_000;

/// A deterministic call's wall-clock limit: not a limit the script should meet (the step limit
/// is), only the last resort against a host so slow that no node would finish.
const DETERMINISTIC_TIME_LIMIT_MS: u64 = 600_000;

impl Limits {
    /// A seed for `Math.random`: in deterministic mode, a hash of what the call is given
    /// (`parts`: its code, its input), the same on every machine; otherwise a fresh one.
    pub fn seed(&self, parts: &[&[u8]]) -> Result<u64, CallError> {
        if !self.deterministic {
            return Ok(engine::runtime()?.next_seed());
        }
        let mut hasher = jsbox_abi::fnv::FnvHasher::default();
        for part in parts {
            std::hash::Hasher::write_usize(&mut hasher, part.len());
            std::hash::Hasher::write(&mut hasher, part);
        }
        Ok(std::hash::Hasher::finish(&hasher))
    }

    /// The wall-clock limit of a call: its own, or, in deterministic mode, the last resort.
    fn wall_clock_ms(&self) -> u64 {
        if self.deterministic {
            DETERMINISTIC_TIME_LIMIT_MS
        } else {
            self.time_ms
        }
    }

    /// The guest's budget of interrupt checks for a call (0: none).
    fn check_budget(&self) -> u64 {
        if self.deterministic {
            (self.step_limit_millions * 1_000_000).div_ceil(STEPS_PER_CHECK).max(1)
        } else {
            0
        }
    }
}

/// Why the epoch callback stopped a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    TimeLimit,
    Interrupted,
}

/// Why a growth of a sandbox's memory failed during the current call.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Refusal {
    /// The sandbox's own memory limit.
    Limit,
    /// The connection's budget for all its sandboxes.
    Budget,
    /// The system, although both allowed it: the process could not map more (`ulimit -v`, or
    /// the machine is out of memory). The system's reason.
    System(String),
}

/// The store's data: enforces the memory limit and remembers why a growth failed, so that an
/// out-of-memory failure inside the guest is reported as the limit it is.
pub struct HostState {
    memory_limit_bytes: usize,
    /// Why the last refused growth of the current call was refused.
    refusal: Option<Refusal>,
    /// The memory's size before the growth being made, to count it again if the growth fails.
    size_before_growth: usize,
    /// This sandbox's place in the connection's budget (given back when the store drops).
    permit: Permit,
    /// When the current call's time limit runs out: wall-clock time from its start, in
    /// milliseconds of [`coarse_clock_ms`].
    deadline_ms: u64,
    interrupt: Option<Interrupt>,
    /// Set when the epoch callback stopped the call.
    stopped: Option<Stop>,
}

impl HostState {
    /// Wasmtime's epoch callback, run on the calling thread at every tick while the guest runs:
    /// stops the call when the connection was interrupted or its deadline has passed (so within
    /// one tick of the deadline, however long the thread waited for a CPU in between).
    fn on_tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        if self.interrupt.is_some_and(|interrupt| interrupt.interrupted()) {
            self.stopped = Some(Stop::Interrupted);
            return Err(Trap::Interrupt.into());
        }
        if coarse_clock_ms() >= self.deadline_ms {
            self.stopped = Some(Stop::TimeLimit);
            return Err(Trap::Interrupt.into());
        }
        Ok(UpdateDeadline::Continue(1))
    }

    /// Arms the limits for a new call.
    fn start_call(&mut self, limits: &Limits) {
        self.refusal = None;
        // One resolution more: the reading now may be late by one, the one at the end early.
        self.deadline_ms = coarse_clock_ms().saturating_add(limits.wall_clock_ms()).saturating_add(coarse_clock_resolution_ms());
        self.stopped = None;
    }
}

/// The system's monotonic clock in milliseconds, at its coarse resolution (a few ms; read
/// from memory the kernel updates, without reading a timer): fine for limits checked every
/// 10 ms, and cheap enough to take at every call into a sandbox.
#[cfg(target_os = "linux")]
fn coarse_clock_ms() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-parameter; CLOCK_MONOTONIC_COARSE exists on Linux since 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000
}

/// The resolution of [`coarse_clock_ms`], rounded up to whole milliseconds.
#[cfg(target_os = "linux")]
pub(crate) fn coarse_clock_resolution_ms() -> u64 {
    static RESOLUTION: OnceLock<u64> = OnceLock::new();
    *RESOLUTION.get_or_init(|| {
        let mut resolution = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid out-parameter.
        unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut resolution) };
        (resolution.tv_sec as u64 * 1000 + (resolution.tv_nsec as u64).div_ceil(1_000_000)).max(1)
    })
}

/// Elsewhere, the standard monotonic clock, from the first reading on.
#[cfg(not(target_os = "linux"))]
pub(crate) fn coarse_clock_ms() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn coarse_clock_resolution_ms() -> u64 {
    1
}

impl HostState {
    /// The limit that refused a growth during the current call, if one did: the connection's
    /// budget or the sandbox's own limit.
    fn memory_error(&self, limits: &Limits) -> Option<CallError> {
        Some(match self.refusal.as_ref()? {
            Refusal::Budget => CallError::ConnectionMemory(self.permit.budget_mib()),
            Refusal::Limit => CallError::MemoryLimit(limits.memory_mib),
            Refusal::System(reason) => CallError::SystemMemory(reason.clone()),
        })
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit_bytes {
            self.refusal = Some(Refusal::Limit);
            return Ok(false);
        }
        if !self.permit.grow(desired as u64) {
            self.refusal = Some(Refusal::Budget);
            return Ok(false);
        }
        self.size_before_growth = current;
        Ok(true)
    }

    /// A growth both limits allowed failed: the memory keeps its size, and the budget counts
    /// that size again.
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.permit.shrink(self.size_before_growth as u64);
        self.refusal = Some(Refusal::System(format!("{error:#}")));
        Ok(())
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // QuickJS never grows its function table; refuse anything outlandish.
        Ok(desired <= 1 << 20)
    }
}

/// What a call that ran produced: its value or the script's error, and its console output.
#[derive(Debug)]
pub struct Outcome {
    pub value: Result<SqlValue, CallError>,
    /// What the script wrote with `console.*` (bounded by the guest).
    pub console: String,
    /// The script's bytecode, when it was given as source (for the caller to cache).
    pub bytecode: Option<Vec<u8>>,
}

/// A script to evaluate: its source, or the bytecode a previous call compiled it to.
#[derive(Clone, Copy, Debug)]
pub enum Script<'a> {
    Source(&'a [u8]),
    Bytecode(&'a [u8]),
}

/// Evaluates `script` with `data` bound to `input` in a fresh sandbox given `modules` to
/// import. Source is compiled in that sandbox first, and its bytecode returned with the outcome.
/// `source` is the script's source (given as such or not), which seeds `Math.random` in
/// deterministic mode, with the input.
pub fn eval(limits: &Limits, script: Script<'_>, source: &[u8], input: Input<'_>, modules: &ModuleSet) -> Result<Outcome, CallError> {
    let mut sandbox = Sandbox::new(limits)?;
    sandbox.give_modules(modules)?;
    let seed = if limits.deterministic {
        let mut input_bytes = vec![0; input.len()];
        input.write_to(&mut input_bytes);
        limits.seed(&[source, &[input.kind() as u8], &input_bytes])?
    } else {
        limits.seed(&[])?
    };
    let (value, console, bytecode) = sandbox.run(|guest, store| {
        let compiled = match script {
            Script::Bytecode(_) => None,
            Script::Source(source) => match guest.script_compile(store, source, |bytes| bytecode_response(bytes, limits.memory_mib))? {
                Ok(bytecode) => Some(bytecode),
                Err(error) => return Ok(Ok((Err(error), String::new(), None))),
            },
        };
        let code = match (&compiled, script) {
            (Some(bytecode), _) => bytecode.as_slice(),
            (None, Script::Bytecode(bytecode)) => bytecode,
            (None, Script::Source(_)) => unreachable!("source is compiled above"),
        };
        let value = guest.eval(store, code, input, seed, |bytes| response_to_value(bytes, limits.memory_mib))?;
        let console = guest.console(store).map(|b| String::from_utf8_lossy(b).into_owned())?;
        Ok(Ok((value, console, compiled)))
    })?;
    Ok(Outcome { value: value.map_err(|e| sandbox.explain(e)), console, bytecode })
}

/// The bytecode a compile call responded with, or the error it reports.
pub fn bytecode_response(bytes: &[u8], memory_mib: u64) -> Result<Vec<u8>, CallError> {
    match Response::decode(bytes) {
        Ok(Response::Blob(bytecode)) => Ok(bytecode.to_vec()),
        _ => response_to_value(bytes, memory_mib).and_then(|_| Err(CallError::Internal("the script compiled to no bytecode".into()))),
    }
}

/// The guest's self-description (JSON), from a throwaway instance.
pub fn guest_info() -> Result<String, CallError> {
    Sandbox::new(&Limits::default())?.run(|guest, store| guest.info(store).map(|b| Ok(String::from_utf8_lossy(b).into_owned())))
}

/// A live sandbox: an instance of the guest with its store. It lives for one `js_eval` call, one
/// aggregate group, or one connection's scalar plugin; limits apply to each call into it.
pub struct Sandbox {
    /// Dropped by hand ([`Sandbox`]'s `Drop`): after its memory was overlaid, only once that
    /// memory is as wasmtime made it.
    store: ManuallyDrop<Store<HostState>>,
    guest: Guest,
    limits: Limits,
    /// The world image mapped over the memory ([`Sandbox::from_image`]), if one was.
    image: Option<Arc<WorldImage>>,
    /// In deterministic mode, what `Math.random` is reseeded from at each row (with the row).
    row_seed: Option<u64>,
    /// Whether the guest may hold a deterministic call's settings (a budget, a row seed): set
    /// by such a call, or by an image, which holds whatever the captured world held.
    determinism_set: bool,
}

impl Sandbox {
    /// A fresh instance of the pre-initialized snapshot.
    pub fn new(limits: &Limits) -> Result<Self, CallError> {
        let runtime = engine::runtime()?;
        engine::prepare_thread()?;
        let permit = limits.budget.admit()?;
        let limits = limits.clone();
        let mut state = HostState {
            memory_limit_bytes: usize::try_from(limits.memory_mib << 20).unwrap_or(usize::MAX),
            refusal: None,
            size_before_growth: 0,
            permit,
            deadline_ms: 0,
            interrupt: limits.interrupt,
            stopped: None,
        };
        state.start_call(&limits);
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|state| state);
        store.epoch_deadline_callback(|mut ctx| ctx.data_mut().on_tick());
        store.set_epoch_deadline(1);
        let _ticking = runtime.ticker.enter()?;
        let instance = match native_stack::on_guest_stack(|| runtime.pre.instantiate(&mut store)) {
            Ok(instance) => instance,
            Err(e) => return Err(instantiation_failure(e, store.data(), &limits)),
        };
        match Guest::bind(&mut store, &instance, &runtime.exports) {
            Ok(guest) => {
                Ok(Sandbox { store: ManuallyDrop::new(store), guest, limits, image: None, row_seed: None, determinism_set: false })
            }
            Err(e) => Err(failure(e, store.data(), &limits)),
        }
    }

    /// A fresh instance whose memory is made equal to `image` (a loaded world's, see
    /// [`Sandbox::capture`]), copy-on-write, with `Math.random` reseeded by `seed`.
    pub fn from_image(limits: &Limits, image: &Arc<WorldImage>, seed: u64) -> Result<Self, CallError> {
        let mut sandbox = Sandbox::new(limits)?;
        fresh_image(&sandbox)?;
        let memory = sandbox.guest.memory();
        let size = memory.data_size(&*sandbox.store);
        if image.len() > size {
            let pages = (image.len() - size).div_ceil(WASM_PAGE_BYTES) as u64;
            if let Err(e) = memory.grow(&mut *sandbox.store, pages) {
                return Err(failure(e, sandbox.store.data(), limits));
            }
        }
        sandbox.image = Some(Arc::clone(image));
        sandbox.determinism_set = true;
        // SAFETY: the instance's whole memory is at least `image.len()` bytes, mapped by
        // wasmtime for this store alone, and no call runs (nothing borrows it).
        unsafe { image.map_over(memory.data_ptr(&*sandbox.store)) }.map_err(|e| CallError::SystemMemory(e.to_string()))?;
        sandbox.reseed(seed)?;
        Ok(sandbox)
    }

    /// Reseeds `Math.random`.
    pub fn reseed(&mut self, seed: u64) -> Result<(), CallError> {
        self.run(|guest, store| guest.reseed(store, seed).map(Ok))
    }

    /// Makes a sandbox made [`Sandbox::from_image`] equal to its image again, as a new one
    /// would be; `false` if it was not made so, or cannot be reset here (then drop it).
    ///
    /// A memory that grew past the image cannot be: its size is part of what a new one would
    /// be (the guest's allocator asks the memory's size to grow it), and memories do not shrink.
    /// Reset, it would grow again with every group, by what each group allocated.
    pub fn reset(&mut self) -> bool {
        let Some(image) = &self.image else { return false };
        let memory = self.guest.memory();
        let (base, size) = (memory.data_ptr(&*self.store), memory.data_size(&*self.store));
        if size != image.len() {
            return false;
        }
        // SAFETY: the instance's memory, where `image` was mapped, with no call running.
        if unsafe { image.restore(base, size) }.is_err() {
            return false;
        }
        // The guest's request buffer is where the image has it again.
        self.guest.forget_request_buffer();
        true
    }

    /// An image of this sandbox's memory now, for [`Sandbox::from_image`].
    pub fn capture(&self) -> Result<WorldImage, CallError> {
        WorldImage::capture(self.guest.memory().data(&*self.store)).map_err(|e| CallError::SystemMemory(e.to_string()))
    }

    /// Runs `f` against the guest with a fresh time limit, mapping traps to limit errors, and
    /// errors the guest reports after a refused growth to the limit that refused it.
    pub fn run<R>(&mut self, f: impl FnOnce(&Guest, &mut Store<HostState>) -> GuestResult<Result<R, CallError>>) -> Result<R, CallError> {
        let runtime = engine::runtime()?;
        engine::prepare_thread()?;
        self.store.data_mut().start_call(&self.limits);
        self.store.set_epoch_deadline(1);
        let _ticking = runtime.ticker.enter()?;
        let deterministic = self.limits.deterministic;
        let settings = (deterministic || self.determinism_set).then(|| (self.limits.check_budget(), self.row_seed));
        self.determinism_set = deterministic;
        let call = || {
            native_stack::on_guest_stack(|| {
                if let Some((budget, row_seed)) = settings {
                    self.guest.determinism(&mut self.store, budget, row_seed)?;
                }
                f(&self.guest, &mut self.store)
            })
        };
        // (Two thread-local accesses saved per call in normal mode: see `with_determinism`.)
        let result = if deterministic { crate::wasi::with_determinism(true, call) } else { call() };
        let state = self.store.data();
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.explain(error)),
            Err(trap) => Err(failure(trap, state, &self.limits)),
        }
    }

    /// Seeds `Math.random` at each row of a deterministic call from `seed` and the row.
    pub fn set_row_seed(&mut self, seed: u64) {
        self.row_seed = Some(seed);
    }

    /// An error the guest reported, as the limit that caused it where a growth was refused in
    /// this call (QuickJS reports its own out-of-memory as an exception).
    pub fn explain(&self, error: CallError) -> CallError {
        match self.store.data().memory_error(&self.limits) {
            Some(limit) if error.may_be_memory() => limit,
            // The guest knows it ran out of steps, not how many it had.
            _ if matches!(error, CallError::StepLimit(_)) => CallError::StepLimit(self.limits.step_limit_millions),
            _ => error,
        }
    }

    /// Whether it was made from a world image.
    pub fn is_imaged(&self) -> bool {
        self.image.is_some()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The memory this sandbox holds now, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.store.data().permit.memory_bytes()
    }

    /// What the connection's sandboxes may hold together, in bytes.
    pub fn budget_bytes(&self) -> u64 {
        self.store.data().permit.budget_bytes()
    }
}

/// Bytes of a wasm page.
const WASM_PAGE_BYTES: usize = 64 << 10;

/// The image of a fresh instance's memory, captured from `sandbox` if it is the first (it must
/// be fresh: no call has run in it).
fn fresh_image(sandbox: &Sandbox) -> Result<&'static WorldImage, CallError> {
    world_image::fresh(|| WorldImage::capture(sandbox.guest.memory().data(&*sandbox.store))).map_err(CallError::SystemMemory)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.image.is_some() {
            let memory = self.guest.memory();
            let (base, size) = (memory.data_ptr(&*self.store), memory.data_size(&*self.store));
            let restored = fresh_image(self).map_err(|_| ()).and_then(|fresh| {
                // SAFETY: the instance's memory, `size` bytes (at least the fresh image's, as
                // memories never shrink), with no call running; wasmtime gets it back as it
                // made it: the fresh image, and zeros above.
                unsafe {
                    fresh.map_over(base).map_err(drop)?;
                    world_image::zero_over(base.add(fresh.len()), size.saturating_sub(fresh.len())).map_err(drop)
                }
            });
            if restored.is_err() {
                // The memory cannot be given back as wasmtime expects it: never give it back
                // (the sandbox's slot and memory stay taken until the process ends).
                return;
            }
        }
        // SAFETY: dropped once, here; the store is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.store) }
    }
}

/// Maps a failed instantiation to its cause: a limit or a full pool as for any call; otherwise
/// the system refused to map the new sandbox's memory (the snapshot runs no code when
/// instantiated, so nothing else fails there).
fn instantiation_failure(error: wasmtime::Error, state: &HostState, limits: &Limits) -> CallError {
    let system_refused = error.downcast_ref::<Trap>().is_none()
        && error.downcast_ref::<PoolConcurrencyLimitError>().is_none()
        && state.memory_error(limits).is_none();
    if system_refused {
        CallError::SystemMemory(format!("{error:#}"))
    } else {
        failure(error, state, limits)
    }
}

/// Maps a trap or host error to the limit or fault it stands for.
fn failure(error: wasmtime::Error, state: &HostState, limits: &Limits) -> CallError {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        match trap {
            Trap::Interrupt if state.stopped == Some(Stop::Interrupted) => return CallError::Interrupted,
            Trap::Interrupt => return CallError::TimeLimit(limits.time_ms),
            Trap::StackOverflow => return CallError::StackOverflow("the sandbox's native stack is exhausted".into()),
            _ => {}
        }
    }
    if let Some(error) = state.memory_error(limits) {
        return error;
    }
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return CallError::PoolExhausted(engine::runtime().map_or(0, |runtime| runtime.sandboxes_max));
    }
    match error.downcast_ref::<Trap>() {
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Trap(error.to_string()),
    }
}

/// Decodes a guest response into a SQL value, or the error it reports.
pub fn response_to_value(bytes: &[u8], memory_mib: u64) -> Result<SqlValue, CallError> {
    response_value(Response::decode(bytes).map_err(|e| CallError::Internal(e.to_string()))?, memory_mib)
}

/// A decoded response as a SQL value, or the error it reports.
pub fn response_value(response: Response<'_>, memory_mib: u64) -> Result<SqlValue, CallError> {
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
                ErrorKind::OutOfMemory => CallError::MemoryLimit(memory_mib),
                ErrorKind::StackOverflow => CallError::StackOverflow(message),
                ErrorKind::Script => CallError::Script(message),
                ErrorKind::Abi => CallError::Internal(message),
                ErrorKind::ModuleMissing => CallError::ModuleMissing(message),
                // The limit is the sandbox's: `Sandbox::run` names it.
                ErrorKind::StepLimit => CallError::StepLimit(0),
            });
        }
    })
}
