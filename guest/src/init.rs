//! What exists before the first call: the QuickJS runtime and context, created by
//! `wizer-initialize` when the build snapshots the guest, plus the pieces of the JS world that
//! differ from a stock QuickJS context (`Math.random`, `console`).
//!
//! Wizer freezes the whole linear memory after `wizer-initialize`, so every instance of the
//! snapshot starts with this state ready, and none of it is rebuilt per call.

use std::cell::{Cell, OnceCell};

use rquickjs::{Context, Ctx, Function, Object, Runtime};

/// Bytes QuickJS allocates before its cycle collector runs. Every call starts from the snapshot
/// in a fresh instance and is bounded by the memory limit, so collecting early only repeats work
/// (QuickJS's default, 256 KiB, made building the seed fixture's objects collect several times).
const GC_THRESHOLD_BYTES: usize = 16 << 20;

struct Engine {
    runtime: Runtime,
    context: Context,
}

thread_local! {
    static ENGINE: OnceCell<Engine> = const { OnceCell::new() };
    /// State of the generator behind `Math.random`, reseeded by the host on every call.
    static RANDOM_STATE: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// Runs once, at build time, inside Wizer.
#[export_name = "wizer-initialize"]
pub extern "C" fn wizer_initialize() {
    let runtime = Runtime::new().expect("QuickJS runtime");
    runtime.set_gc_threshold(GC_THRESHOLD_BYTES);
    runtime.set_loader(crate::modules::TableResolver, crate::modules::TableLoader);
    let context = Context::full(&runtime).expect("QuickJS context");
    context.with(|ctx| install_globals(&ctx)).expect("jsbox globals");
    // SAFETY: the context's own runtime, initialized, with no call running.
    context.with(|ctx| unsafe { limit_js_stack(rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr()), JS_STACK_BYTES) });
    // SAFETY: as above.
    context.with(|ctx| crate::determinism::install(unsafe { rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) }));
    ENGINE.with(|engine| {
        if engine.set(Engine { runtime, context }).is_err() {
            panic!("wizer-initialize ran twice");
        }
    });
}

/// Shadow stack (QuickJS's C stack, in linear memory) that JavaScript may use below where calls
/// start before QuickJS throws its catchable `RangeError: Maximum call stack size exceeded`.
/// Each level of recursion takes 0.30 to 0.38 times as much of it as of the engine's native stack
/// (`engine_config::MAX_WASM_STACK`, 1 MiB), measured over nine kinds of recursion (plain, with
/// many locals, getters, constructors, arrow functions, `call`, `Reflect.apply`, `map`,
/// `reduce`): a quarter of the native stack is reached first by all of them, at 137 to 940
/// levels deep (`tests/errors.rs`). Recursion whose frames take even more native stack would
/// reach the native limit first: an uncatchable `stack overflow`, the last resort.
const JS_STACK_BYTES: usize = 256 << 10;

/// Turns QuickJS's stack check on. QuickJS-ng leaves it off on WASI: `update_stack_limit` sets no
/// limit there, whatever `JS_SetMaxStackSize` asks, and `stack_top` is never set. The runtime's
/// `stack_size`, `stack_top` and `stack_limit` follow `malloc_gc_threshold` (`quickjs.c`), so
/// they are found by setting the threshold and the size to marker values, and set as QuickJS
/// sets them elsewhere: the top where calls start (this frame's shadow stack pointer, a little
/// below), the limit `bytes` below it.
///
/// # Safety
///
/// `rt` is a live runtime of the QuickJS this guest links, and no call runs.
unsafe fn limit_js_stack(rt: *mut rquickjs::qjs::JSRuntime, bytes: usize) {
    use rquickjs::qjs;
    const GC_MARK: usize = 0x5A17_C0DE;
    const SIZE_MARK: usize = 0x0BAD_5EED;
    // SAFETY: setters of a live runtime.
    unsafe {
        qjs::JS_SetGCThreshold(rt, GC_MARK as _);
        qjs::JS_SetMaxStackSize(rt, SIZE_MARK as _);
    }
    let words = rt.cast::<usize>();
    // SAFETY: reads of the runtime struct's words (the fields sought are word 156 of the
    // QuickJS linked now, past its arena state), aligned as its fields are; reads beyond the
    // struct stay in the guest's memory.
    let at = (0..1024).find(|&i| unsafe { *words.add(i) == GC_MARK && *words.add(i + 1) == SIZE_MARK });
    let at = at.expect("QuickJS's JSRuntime changed: its stack fields were not found");
    let here = 0u8;
    let top = std::hint::black_box(&here) as *const u8 as usize;
    // SAFETY: the fields found above (stack_size, stack_top, stack_limit), then a setter.
    unsafe {
        *words.add(at + 1) = bytes;
        *words.add(at + 2) = top;
        *words.add(at + 3) = top.saturating_sub(bytes);
        qjs::JS_SetGCThreshold(rt, GC_THRESHOLD_BYTES as _);
    }
}

/// Runs `f` in the snapshot's context.
pub fn with_context<R>(f: impl FnOnce(Ctx<'_>) -> R) -> R {
    ENGINE.with(|engine| {
        let engine = engine.get().expect("the guest was not initialized by Wizer");
        engine.context.with(f)
    })
}

/// Collects what loading left behind, and sets the collector's threshold one
/// [`GC_THRESHOLD_BYTES`] above what is live now. Run after a plugin is loaded: every group then
/// starts from this heap (copied from the loaded world's image), and a group that allocates
/// less than that never collects. A collection walks (and writes) every object of the heap, so
/// in a copy-on-write copy of a world holding a library it would copy most of its pages.
pub fn settle_heap() {
    ENGINE.with(|engine| {
        let runtime = &engine.get().expect("the guest was not initialized by Wizer").runtime;
        runtime.run_gc();
        let live = runtime.memory_usage().malloc_size.max(0) as usize;
        runtime.set_gc_threshold(live + GC_THRESHOLD_BYTES);
    });
}

/// Seeds `Math.random` for the coming call (the host passes a fresh seed per call).
pub fn reseed_random(seed: u64) {
    // xorshift's state must not be zero.
    RANDOM_STATE.with(|state| state.set(splitmix64(seed) | 1));
}

/// A JSON description of the guest, for `js_version()` and `js_debug()`.
pub fn info_json() -> String {
    // SAFETY: JS_GetVersion returns a pointer to a NUL-terminated static string of QuickJS.
    let quickjs = unsafe { std::ffi::CStr::from_ptr(rquickjs::qjs::JS_GetVersion()) };
    format!(r#"{{"abi":{},"quickjs":"{}"}}"#, jsbox_abi::ABI_VERSION, quickjs.to_string_lossy())
}

fn install_globals(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let math: Object = ctx.globals().get("Math")?;
    math.set("random", Function::new(ctx.clone(), next_random)?.with_name("random")?)?;
    crate::console::install(ctx)
}

/// xorshift64*: a uniformly distributed double in [0, 1) from the per-call state.
fn next_random() -> f64 {
    RANDOM_STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        let bits = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 * (1.0 / (1u64 << 53) as f64)
    })
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
