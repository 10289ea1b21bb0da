//! The one wasmtime configuration of the sandbox, shared (by `#[path]`) with the build tool that
//! precompiles the guest: a precompiled module only loads into an engine whose compilation
//! settings match those it was compiled with, so both sides must build their `Config` here.
//!
//! A second profile (deterministic execution, fuel instead of wall-clock time) will be another
//! function beside [`sandbox`], never settings scattered at call sites.

use wasmtime::{Config, WasmFeatures};

/// Native stack the guest may use, in bytes (wasmtime's default). Where the calling thread has
/// less than this (and the host's margin) left, the extension runs the guest on a fresh stack
/// segment of that size instead (`ext/src/native_stack.rs`), so that small thread stacks never
/// crash the process.
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// The settings shared by compilation (build tool) and execution (extension).
pub fn sandbox() -> Config {
    let mut config = Config::new();
    // The time limit: one process-wide thread bumps the epoch; each store sets a deadline.
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    // Short errors and faster traps: the host reports limits and JS errors, not wasm frames.
    config.wasm_backtrace_max_frames(None);
    // The wasm features QuickJS built by rustc/clang for wasm32-wasip1 uses, and no others.
    // Cargo features of wasmtime differ between the build tool and the extension (the build tool
    // links Wizer, which turns on GC and threads); naming the set here keeps them equal.
    config.wasm_features(WasmFeatures::all(), false);
    config.wasm_features(guest_features(), true);
    config
}

/// What `wasm32-wasip1` code from rustc 1.95 and clang 14 contains.
fn guest_features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::FLOATS
}
