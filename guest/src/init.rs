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
    // No `set_max_stack_size`: QuickJS's stack check reads the C (shadow) stack pointer, which in
    // wasm does not see the engine's native stack; deep recursion ends at wasmtime's stack limit
    // instead (`Trap::StackOverflow`, reported by the host as a stack overflow).
    let runtime = Runtime::new().expect("QuickJS runtime");
    runtime.set_gc_threshold(GC_THRESHOLD_BYTES);
    runtime.set_loader(crate::modules::TableResolver, crate::modules::TableLoader);
    let context = Context::full(&runtime).expect("QuickJS context");
    context.with(|ctx| install_globals(&ctx)).expect("jsbox globals");
    ENGINE.with(|engine| {
        if engine.set(Engine { runtime, context }).is_err() {
            panic!("wizer-initialize ran twice");
        }
    });
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
