//! What one connection's sandboxes may hold together, beyond each sandbox's own limit: memory
//! summed over every live sandbox of the connection (calls, aggregate groups, kept scalar
//! worlds), and a share of the sandboxes the process may hold, so that no connection can take
//! memory or sandboxes from the others; and the process's own count of live sandboxes, within
//! `Runtime::sandboxes_max` (the pool's slots, or what fits in the address space).
//!
//! A [`Budget`] belongs to a connection; each live sandbox holds a [`Permit`] from it, which
//! counts the sandbox (in the connection and in the process) and its linear memory (wasmtime
//! asks before every growth, and at creation) and gives both back when the sandbox is dropped.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine;
use crate::error::CallError;

/// The memory all of a connection's live sandboxes may hold together by default, in MiB.
pub const DEFAULT_CONNECTION_MEMORY_MIB: u64 = 512;

/// Sandboxes alive in the process now, of every connection.
static PROCESS_SANDBOXES: AtomicU32 = AtomicU32::new(0);

/// The most sandboxes the process may hold at once.
fn process_sandboxes_max() -> u32 {
    engine::runtime().map_or(crate::allocation::POOL_SLOTS, |runtime| runtime.sandboxes_max)
}

/// The most sandboxes one connection may hold at once: an eighth of what the process may hold,
/// and at least 16 (enough for any one statement's aggregate groups in practice) where the
/// process may hold that many.
pub fn sandbox_share() -> u32 {
    let most = process_sandboxes_max();
    (most / 8).max(16).min(most)
}

/// Takes one of the process's sandboxes, within `most`; false if all are taken.
fn take_one(count: &AtomicU32, most: u32) -> bool {
    count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < most).then_some(n + 1)).is_ok()
}

/// Runs `make`, which creates a sandbox; if the connection's budget, the process's most or the
/// system refuses it, lets `free` give back what can be given for that refusal (the
/// connection's kept worlds, parked worlds) and, if it gave anything, runs `make` once more.
pub fn with_room<T>(mut make: impl FnMut() -> Result<T, CallError>, free: impl FnOnce(&CallError) -> bool) -> Result<T, CallError> {
    match make() {
        Err(e) if e.may_be_relieved() && free(&e) => make(),
        other => other,
    }
}

/// Sandboxes kept between calls by all connections of the process together (scalar plugins'
/// worlds, aggregate plugins' parked worlds): at most half of the sandboxes the process may
/// hold, so that idle connections never take every sandbox from the others.
static PROCESS_KEPT_SANDBOXES: AtomicU32 = AtomicU32::new(0);

/// One kept sandbox's place in [`PROCESS_KEPT_SANDBOXES`], given back when dropped.
#[derive(Debug)]
pub struct KeptSandbox(());

impl KeptSandbox {
    /// A place, if the process keeps fewer than it may.
    pub fn take() -> Option<KeptSandbox> {
        let most = crate::engine::runtime().map_or(0, |runtime| runtime.sandboxes_max / 2);
        let taken = PROCESS_KEPT_SANDBOXES.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < most).then_some(n + 1));
        taken.ok().map(|_| KeptSandbox(()))
    }
}

impl Drop for KeptSandbox {
    fn drop(&mut self) {
        PROCESS_KEPT_SANDBOXES.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
pub struct Budget {
    memory_limit_bytes: AtomicU64,
    memory_bytes: AtomicU64,
    sandboxes: AtomicU32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            memory_limit_bytes: AtomicU64::new(DEFAULT_CONNECTION_MEMORY_MIB << 20),
            memory_bytes: AtomicU64::new(0),
            sandboxes: AtomicU32::new(0),
        }
    }
}

impl Budget {
    pub fn memory_mib(&self) -> u64 {
        self.memory_limit_bytes.load(Ordering::Relaxed) >> 20
    }

    pub fn set_memory_mib(&self, mib: u64) {
        self.memory_limit_bytes.store(mib << 20, Ordering::Relaxed);
    }

    /// Memory the connection's live sandboxes hold now, in bytes.
    pub fn memory_in_use(&self) -> u64 {
        self.memory_bytes.load(Ordering::Relaxed)
    }

    /// Sandboxes the connection holds now.
    pub fn sandboxes(&self) -> u32 {
        self.sandboxes.load(Ordering::Relaxed)
    }

    /// Admits one more sandbox, within the connection's share and the process's most.
    pub fn admit(self: &Arc<Self>) -> Result<Permit, CallError> {
        let share = sandbox_share();
        if !take_one(&self.sandboxes, share) {
            return Err(CallError::SandboxShare(share));
        }
        let most = process_sandboxes_max();
        if !take_one(&PROCESS_SANDBOXES, most) {
            self.sandboxes.fetch_sub(1, Ordering::AcqRel);
            return Err(CallError::PoolExhausted(most));
        }
        Ok(Permit { budget: Arc::clone(self), memory_bytes: 0 })
    }
}

/// One live sandbox's place in its connection's budget.
#[derive(Debug)]
pub struct Permit {
    budget: Arc<Budget>,
    memory_bytes: u64,
}

impl Permit {
    /// Whether the sandbox's memory may grow to `desired` bytes within the connection's budget;
    /// if so, it is counted.
    pub fn grow(&mut self, desired: u64) -> bool {
        let extra = desired.saturating_sub(self.memory_bytes);
        let limit = self.budget.memory_limit_bytes.load(Ordering::Relaxed);
        let grown = self
            .budget
            .memory_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(extra).filter(|total| *total <= limit));
        if grown.is_ok() {
            self.memory_bytes += extra;
        }
        grown.is_ok()
    }

    /// Counts the sandbox's memory as `bytes` again, after a growth that was counted failed.
    pub fn shrink(&mut self, bytes: u64) {
        let released = self.memory_bytes.saturating_sub(bytes);
        self.budget.memory_bytes.fetch_sub(released, Ordering::AcqRel);
        self.memory_bytes -= released;
    }

    pub fn budget_mib(&self) -> u64 {
        self.budget.memory_mib()
    }

    /// The connection's whole budget, in bytes.
    pub fn budget_bytes(&self) -> u64 {
        self.budget.memory_limit_bytes.load(Ordering::Relaxed)
    }

    /// The memory this sandbox holds, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budget.memory_bytes.fetch_sub(self.memory_bytes, Ordering::AcqRel);
        self.budget.sandboxes.fetch_sub(1, Ordering::AcqRel);
        PROCESS_SANDBOXES.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_sandboxes_come_back_when_permits_drop() {
        let budget = Arc::new(Budget::default());
        budget.set_memory_mib(10);
        let mut a = budget.admit().unwrap();
        let mut b = budget.admit().unwrap();
        assert!(a.grow(6 << 20));
        assert!(!b.grow(5 << 20), "6 + 5 MiB exceeds 10");
        assert!(b.grow(4 << 20));
        assert!(a.grow(6 << 20), "no growth: nothing more counted");
        assert_eq!(budget.memory_in_use(), 10 << 20);
        drop(a);
        assert_eq!((budget.memory_in_use(), budget.sandboxes()), (4 << 20, 1));
        drop(b);
        assert_eq!((budget.memory_in_use(), budget.sandboxes()), (0, 0));
    }

    #[test]
    fn a_connection_gets_its_share_of_the_pool_and_no_more() {
        let budget = Arc::new(Budget::default());
        let permits: Vec<Permit> = (0..sandbox_share()).map(|_| budget.admit().unwrap()).collect();
        assert_eq!(budget.admit().unwrap_err(), CallError::SandboxShare(sandbox_share()));
        drop(permits);
        assert!(budget.admit().is_ok());
    }
}
