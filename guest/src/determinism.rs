//! Deterministic mode, inside the guest: what a call may do is counted in steps, not time, and
//! `Math.random` is seeded from what the call is given, so that the same call on the same data
//! gives the same result, or fails the same way, on every machine.
//!
//! - **Steps.** QuickJS polls for interrupts at calls and backward jumps; every 10,000 polls it
//!   asks the runtime's interrupt handler ([`on_poll`]). The handler counts those asks against
//!   the call's budget and stops the call past it (an uncatchable `InternalError: interrupted`,
//!   which [`exhausted`] tells apart). The count depends only on the JavaScript executed, never
//!   on the machine or its load. (The poll counter's phase is part of the world's memory, so a
//!   world started from the same image starts the same way.)
//! - **Random numbers.** With a row seed set, each row of a plugin call reseeds `Math.random`
//!   from the seed and the row's encoded arguments: the same row gives the same numbers, other
//!   rows other ones.
//!
//! The host sets both before each deterministic call (`jsbox_determinism`); a budget of 0 and no
//! seed (the default) is the normal mode, where the handler only counts.

use std::cell::Cell;

use jsbox_abi::fnv::FnvHasher;

thread_local! {
    /// Interrupt-handler calls allowed in the current call (0: no budget).
    static BUDGET: Cell<u64> = const { Cell::new(0) };
    /// Interrupt-handler calls so far in the current call.
    static POLLS: Cell<u64> = const { Cell::new(0) };
    /// The seed rows are reseeded from, in deterministic mode.
    static ROW_SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Installs the interrupt handler (at initialization, in the snapshot).
pub fn install(rt: *mut rquickjs::qjs::JSRuntime) {
    // SAFETY: a live runtime; the handler only touches this module's thread-locals.
    unsafe { rquickjs::qjs::JS_SetInterruptHandler(rt, Some(on_poll), std::ptr::null_mut()) };
}

/// Sets the budget (in interrupt-handler calls, 0: none) and the row seed for the coming call.
pub fn set(budget: u64, row_seed: Option<u64>) {
    BUDGET.set(budget);
    POLLS.set(0);
    ROW_SEED.set(row_seed);
}

/// Whether rows are reseeded (deterministic mode): then they must arrive encoded.
pub fn rows_seeded() -> bool {
    ROW_SEED.get().is_some()
}

/// Whether the current call ran out of its budget.
pub fn exhausted() -> bool {
    let budget = BUDGET.get();
    budget != 0 && POLLS.get() > budget
}

/// Reseeds `Math.random` for a row (its encoded arguments), in deterministic mode.
pub fn reseed_for_row(row: &[u8]) {
    if let Some(seed) = ROW_SEED.get() {
        let mut hasher = FnvHasher::default();
        std::hash::Hasher::write_u64(&mut hasher, seed);
        std::hash::Hasher::write(&mut hasher, row);
        crate::init::reseed_random(std::hash::Hasher::finish(&hasher));
    }
}

unsafe extern "C" fn on_poll(_rt: *mut rquickjs::qjs::JSRuntime, _opaque: *mut std::ffi::c_void) -> std::ffi::c_int {
    let polls = POLLS.get() + 1;
    POLLS.set(polls);
    let budget = BUDGET.get();
    (budget != 0 && polls > budget) as std::ffi::c_int
}
