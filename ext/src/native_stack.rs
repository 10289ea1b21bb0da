//! The native stack the guest runs on.
//!
//! Compiled wasm runs on the calling thread's own stack. Wasmtime lets the guest use
//! [`MAX_WASM_STACK`] of it, counted down from the stack pointer where the host enters the guest,
//! and does not know where the thread's stack really ends. On a thread with less room than that
//! (a Python thread after `threading.stack_size(256 * 1024)`, a Rust thread with a small
//! `stack_size`, the main thread under `ulimit -s 256`), a script's runaway recursion runs off the
//! end of the thread's stack before it reaches wasmtime's limit: a fault in the thread's guard
//! page, which no wasm trap handler claims, and the whole process dies.
//!
//! So every entry into the guest (instantiation and each call) goes through [`on_guest_stack`]:
//! where the thread has less than [`RED_ZONE`] of stack left, the entry runs on a fresh segment of
//! that size instead (`stacker`: mmap'd with guard pages, switched to on the same thread, unmapped
//! afterwards). There the guest gets its whole [`MAX_WASM_STACK`] and runaway recursion ends in
//! wasmtime's stack-overflow trap, as on any other thread. Wasmtime's other traps work there
//! alike: they unwind to the guest's entry point, which is on the same segment, and its signal
//! handler runs on its own alternate signal stack (tested below and in `tests/process.rs`).
//!
//! Threads with room to spare (an 8 MiB main thread, Rust's 2 MiB threads) pay one comparison of
//! the stack pointer with a thread-local limit per entry; a thread that needs a segment pays an
//! mmap, an mprotect and a munmap (a few microseconds) per entry.

use crate::engine_config::MAX_WASM_STACK;

/// Stack the host's own frames may need on top of the guest's: from the entry point down to the
/// guest's first frame (wasmtime's call machinery), and below its deepest frame (a host function,
/// the epoch callback or a memory-growth libcall called from there, and the trap's unwinding).
/// Measured at under 16 KiB (see the test below, which fails if that grows past half of this).
pub const HOST_MARGIN: usize = 128 * 1024;

/// Stack an entry into the guest needs: the guest's own and the host's margin. Where less is
/// left, the entry runs on a fresh segment of this size.
pub const RED_ZONE: usize = MAX_WASM_STACK + HOST_MARGIN;

/// Runs `enter` (which enters the guest) on the current stack when it has [`RED_ZONE`] left, and
/// on a fresh segment of that size when it has not.
pub fn on_guest_stack<R>(enter: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, RED_ZONE, enter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Input;
    use crate::engine;
    use crate::error::CallError;
    use crate::sandbox::{self, Limits, Script};

    fn eval(limits: &Limits, script: &str) -> Result<rusqlite::types::Value, CallError> {
        sandbox::eval(limits, Script::Source(script.as_bytes()), script.as_bytes(), Input::Null, &Default::default())
            .and_then(|outcome| outcome.value)
    }

    /// Runs `f` on a fresh segment whose unused part is painted, and returns what `f` returned
    /// and how many bytes of stack below the start of `f` it used at most.
    fn measure_stack<R>(f: impl FnOnce() -> R) -> (R, usize) {
        const SEGMENT: usize = 4 << 20;
        const PAINT: u8 = 0xA5;
        stacker::grow(SEGMENT, || {
            let marker = 0u8;
            let top = std::hint::black_box(&marker) as *const u8 as usize;
            // Below everything `f` could reach (a red zone under the current frame is left alone).
            let (low, high) = (top - SEGMENT + (256 << 10), top - 4096);
            // SAFETY: [low, high) lies inside the segment that `stacker::grow` mapped (4 MiB below
            // its top, less 256 KiB for its guard page and for frames above `top`), readable and
            // writable, and below every live frame of this thread, so no live object is there.
            unsafe {
                for address in low..high {
                    std::ptr::write_volatile(address as *mut u8, PAINT);
                }
            }
            let result = f();
            // SAFETY: the same range, only read.
            let deepest = (low..high).find(|&address| unsafe { std::ptr::read_volatile(address as *const u8) } != PAINT);
            (result, top - deepest.unwrap_or(high))
        })
    }

    /// How much stack each kind of entry into the guest takes: well within [`RED_ZONE`], with at
    /// least half of [`HOST_MARGIN`] to spare, for runaway recursion that at its deepest calls
    /// the host (clock, console, memory growth), is stopped by the time limit, or overflows.
    /// `cargo test --release -p sqlite-jsbox --features loadable_extension native_stack -- --nocapture` prints the figures.
    #[test]
    fn entries_into_the_guest_fit_the_red_zone() {
        // A time limit that the runaway recursions reach their stack's end well within, even on a
        // loaded machine and with the bounds-checked guest (JSBOX_POOL_SLOTS=0).
        let limits = Limits { time_ms: 3000, memory_mib: 32, ..Limits::default() };
        let cases: [(&str, &str); 6] = [
            ("6 * 7", "42"),
            ("function f(n) { return n ? f(n - 1) + 1 : 0 } f(1e6)", "stack overflow"),
            ("function f(n) { Date.now(); return n ? f(n - 1) + 1 : 0 } f(1e6)", "stack overflow"),
            ("function f(n) { console.log(n); return n ? f(n - 1) + 1 : 0 } f(1e6)", "stack overflow"),
            ("function f(n) { const a = new Array(1000).fill(n); return n ? f(n - 1) + a.length : 0 } f(1e6)", "stack overflow"),
            ("function f(n) { for (let i = 0; i < 1e4; i++); return f(n + 1) } f(0)", "stack overflow"),
        ];
        // JavaScript's own recursion ends in QuickJS's catchable RangeError, before the native
        // stack runs out; deeply nested JSON input, built by the guest's Rust code, runs the
        // native stack to its end.
        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (result, used) = measure_stack(|| {
            sandbox::eval(&limits, Script::Source(b"data"), b"data", Input::JsonSerde(nested.as_bytes()), &Default::default())
                .and_then(|o| o.value)
        });
        assert!(matches!(result, Err(CallError::StackOverflow(_))), "{result:?}");
        println!("{used:>7} bytes of native stack: 100,000 nested arrays as input");
        let mut most = used;
        for (script, expected) in cases {
            let (result, used) = measure_stack(|| eval(&limits, script));
            let shown = match &result {
                Ok(value) => format!("{value:?}"),
                Err(e) => e.to_string(),
            };
            assert!(shown.contains(expected), "{script}: {shown}");
            println!("{used:>7} bytes of native stack: {script} -> {shown}");
            most = most.max(used);
        }
        // The host's share: what the deepest entry used beyond the guest's own allowance.
        let host = most.saturating_sub(MAX_WASM_STACK);
        println!("host frames beyond the guest's {MAX_WASM_STACK}: {host} bytes (margin {HOST_MARGIN})");
        assert!(most > MAX_WASM_STACK * 9 / 10, "runaway recursion used only {most} bytes");
        assert!(host < HOST_MARGIN / 2, "the host needs {host} bytes beyond the guest's stack; raise HOST_MARGIN");
    }

    /// On a thread with a 64 KiB stack, far less than the guest may use, entries into the guest
    /// run on a segment, and every kind of trap comes back as its error there: stack overflow,
    /// time limit (the epoch callback's trap), memory limit, and a guest abort (`unreachable`).
    #[test]
    fn traps_work_on_a_fresh_segment() {
        let handle = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(|| {
                assert!(stacker::remaining_stack().is_some_and(|left| left < RED_ZONE));
                let limits = Limits { time_ms: 200, memory_mib: 16, ..Limits::default() };
                let overflow = eval(&limits, "function f(n) { return n ? f(n - 1) + 1 : 0 } f(1e6)");
                assert!(matches!(overflow, Err(CallError::StackOverflow(_))), "{overflow:?}");
                let time = eval(&limits, "for (;;) {}");
                assert_eq!(time, Err(CallError::TimeLimit(200)));
                let memory = eval(&limits, "const a = []; for (;;) a.push(new Array(1e5).fill(1))");
                assert_eq!(memory, Err(CallError::MemoryLimit(16)));
                assert_eq!(eval(&limits, "6 * 7"), Ok(rusqlite::types::Value::Integer(42)));
                // The guest aborts (a Rust panic in wasm is `unreachable`) when asked to run more
                // bytecode than its request buffer holds, which the host never does.
                let runtime = engine::runtime().unwrap();
                let mut store = wasmtime::Store::new(&runtime.engine, ());
                store.set_epoch_deadline(u64::MAX / 2);
                let mut linker = wasmtime::Linker::new(&runtime.engine);
                crate::wasi::add_to_linker(&mut linker).unwrap();
                let trap = on_guest_stack(|| {
                    let instance = linker.instantiate(&mut store, runtime.pre.module()).unwrap();
                    let eval = instance.get_typed_func::<(u32, u32, u32, u64), u64>(&mut store, "jsbox_eval").unwrap();
                    eval.call(&mut store, (1 << 20, 0, 0, 0)).unwrap_err()
                });
                assert_eq!(trap.downcast_ref::<wasmtime::Trap>(), Some(&wasmtime::Trap::UnreachableCodeReached), "{trap:?}");
            })
            .unwrap();
        handle.join().expect("the small thread's checks failed");
    }

    /// What a fresh segment costs per call: `js_eval('1')` (a fresh world) and the same call on a
    /// 128 KiB thread, where every entry into the guest runs on a new segment. For
    /// docs/hardening.md: `cargo test --release -p sqlite-jsbox --features loadable_extension native_stack::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost_of_a_segment_per_call() {
        fn per_call() -> std::time::Duration {
            let limits = Limits::default();
            let script = crate::script_cache::ScriptCache::default();
            let scripts = std::sync::Mutex::new(script);
            let call = || {
                crate::modules::Imports::none(&limits, |imports| {
                    crate::script_cache::ScriptCache::eval(&scripts, b"1", Input::Null, imports).unwrap().value.unwrap()
                })
            };
            for _ in 0..200 {
                call();
            }
            let started = std::time::Instant::now();
            for _ in 0..5000 {
                call();
            }
            started.elapsed() / 5000
        }
        for round in 0..3 {
            let big = std::thread::spawn(per_call).join().unwrap();
            let small = std::thread::Builder::new().stack_size(128 << 10).spawn(per_call).unwrap().join().unwrap();
            println!("round {round}: js_eval('1') {big:?} on a 2 MiB thread, {small:?} on a 128 KiB thread (on a segment)");
        }
    }
}
