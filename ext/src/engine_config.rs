//! The one wasmtime configuration of the sandbox, shared (by `#[path]`) with the build tool that
//! precompiles the guest: a precompiled module only loads into an engine whose compilation
//! settings match those it was compiled with, so both sides must build their `Config` here.
//!
//! The guest is precompiled twice, once per [`MemoryPlacement`]: where the process may reserve
//! 4 GiB of address space per sandbox, the memory's bounds are enforced by guard pages and the
//! code checks nothing; where it may not (`ulimit -v`), the code checks every access itself.
//! Both are one setting each here, never settings scattered at call sites.

use wasmtime::{Config, WasmFeatures};

/// Native stack the guest may use, in bytes (wasmtime's default). Where the calling thread has
/// less than this (and the host's margin) left, the extension runs the guest on a fresh stack
/// segment of that size instead (`ext/src/native_stack.rs`), so that small thread stacks never
/// crash the process.
pub const MAX_WASM_STACK: usize = 1024 * 1024;

/// How a sandbox's linear memory is laid out in the host's address space. The choice is compiled
/// into the guest's code, so each placement has its own precompiled guest; the extension picks
/// one when it starts (`ext/src/engine.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryPlacement {
    /// Each memory reserves the whole 32-bit range (4 GiB) plus a guard region: every access
    /// falls inside the reservation, and one outside the memory's size faults on an
    /// inaccessible page, so the code carries no bounds checks. Costs 4 GiB of address space
    /// (not memory) per sandbox.
    Reserved,
    /// Each memory maps only its current size (and some room to grow, moving when it outgrows
    /// it); the code compares every access with the memory's size. Costs address space equal to
    /// the memory used, for processes whose address space is capped.
    Bounded,
}

impl MemoryPlacement {
    /// Both placements, each with the file name of its precompiled guest.
    pub const ALL: [(MemoryPlacement, &'static str); 2] =
        [(MemoryPlacement::Reserved, "guest.cwasm"), (MemoryPlacement::Bounded, "guest.bounded.cwasm")];

    /// What `js_debug()` calls it.
    pub fn name(self) -> &'static str {
        match self {
            MemoryPlacement::Reserved => "reserved",
            MemoryPlacement::Bounded => "bounded",
        }
    }
}

/// Address space the [`MemoryPlacement::Reserved`] placement reserves per memory: the 32-bit range.
pub const RESERVED_MEMORY_BYTES: u64 = 1 << 32;
/// The inaccessible region after a reserved memory, which catches accesses whose static offset
/// takes them past the 4 GiB range (wasmtime's default on 64-bit hosts).
pub const RESERVED_GUARD_BYTES: u64 = 32 << 20;
/// The inaccessible region after a bounded memory: one wasm page, so that an access whose static
/// offset is smaller needs only its index compared.
pub const BOUNDED_GUARD_BYTES: u64 = 64 << 10;

/// The settings shared by compilation (build tool) and execution (extension).
pub fn sandbox(placement: MemoryPlacement) -> Config {
    let mut config = Config::new();
    match placement {
        MemoryPlacement::Reserved => {
            config.memory_reservation(RESERVED_MEMORY_BYTES);
            config.memory_guard_size(RESERVED_GUARD_BYTES);
            config.guard_before_linear_memory(true);
        }
        MemoryPlacement::Bounded => {
            config.memory_reservation(0);
            config.memory_guard_size(BOUNDED_GUARD_BYTES);
            config.guard_before_linear_memory(false);
            config.memory_may_move(true);
        }
    }
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
