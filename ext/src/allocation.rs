//! How the process's sandboxes get their memory, chosen once when the runtime is made.
//!
//! - [`Allocation::Pool`]: wasmtime's pooling allocator, slots reserved up front, each memory with
//!   its whole 4 GiB range and guard regions ([`MemoryPlacement::Reserved`]): the code has no
//!   bounds checks and a fresh sandbox reuses a slot whose pages stay mapped. It costs 4 GiB of
//!   address space (not memory) per slot.
//! - [`Allocation::OnDemand`]: each sandbox maps its memory when it is made and unmaps it when it
//!   goes ([`MemoryPlacement::Bounded`]: the code checks every access), for a process whose
//!   address space is capped (`ulimit -v`, `RLIMIT_AS`: containers, shared hosting, HPC).
//!
//! Either way the process holds at most [`Plan::sandboxes_max`] sandboxes at once: the pool's
//! slots, or as many on-demand sandboxes as fit in half of what the process may map, so that the
//! host keeps the other half for its own allocations and threads (a failed `malloc` aborts a
//! process; a refused sandbox is an error of one call).

use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::engine_config::{self, MemoryPlacement, RESERVED_GUARD_BYTES, RESERVED_MEMORY_BYTES};
use crate::error::CallError;

/// Sandboxes that may be alive at once in the process when the address space is not capped.
/// Slots cost address space, not memory, so the pool is sized generously.
pub const POOL_SLOTS: u32 = 1000;

/// A smaller pool than this is not worth its address space: a capped process then allocates
/// each sandbox's memory on demand instead.
const MIN_POOL_SLOTS: u32 = 64;

/// Address space one pool slot reserves: its memory's 4 GiB range and the guard regions around it.
const POOL_SLOT_ADDRESS_BYTES: u64 = RESERVED_MEMORY_BYTES + 2 * RESERVED_GUARD_BYTES;

/// Memory a pool slot keeps mapped between instances, so that a fresh instance does not fault
/// in the snapshot's pages again (measured: ~3× faster fresh worlds; see docs/performance.md).
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// The environment variable that overrides the choice: a number of pool slots, `0` for none.
pub const POOL_SLOTS_VARIABLE: &str = "JSBOX_POOL_SLOTS";

/// How sandboxes get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// A pool of `slots` sandboxes reserved up front.
    Pool { slots: u32 },
    /// Each sandbox maps its memory, and `growth_room` bytes beyond it: growing past that moves
    /// the memory (a copy of all of it).
    OnDemand { growth_room: u64 },
}

/// The allocation chosen, why, and what the process may map.
#[derive(Clone, Debug)]
pub struct Plan {
    pub allocation: Allocation,
    /// Why this allocation, for `js_debug()`.
    pub reason: String,
    /// What the process could still map when the plan was made (`None`: not capped).
    room: Option<u64>,
}

impl Plan {
    /// The pool `JSBOX_POOL_SLOTS` asks for (`0`: none, allocate on demand); without it, a pool of
    /// [`POOL_SLOTS`] where the address space is not capped, else of as many slots as fit in
    /// half of what the process may still map, and none when that is fewer than
    /// [`MIN_POOL_SLOTS`].
    pub fn choose() -> Result<Plan, CallError> {
        let room = address_space::room();
        // Unset or empty: jsbox chooses.
        let requested = match std::env::var(POOL_SLOTS_VARIABLE) {
            Ok(value) if !value.trim().is_empty() => Some(value.trim().parse::<u32>().map_err(|_| {
                CallError::Internal(format!(
                    "{POOL_SLOTS_VARIABLE} must be a number of pool slots (0: none, allocate on demand), not {value:?}"
                ))
            })?),
            _ => None,
        };
        let (slots, reason) = match (requested, room) {
            (Some(slots), _) => (slots, format!("{POOL_SLOTS_VARIABLE}={slots}")),
            (None, None) => (POOL_SLOTS, "the address space is not capped".to_owned()),
            (None, Some(room)) => {
                let fit = u32::try_from(room / 2 / POOL_SLOT_ADDRESS_BYTES).unwrap_or(u32::MAX).min(POOL_SLOTS);
                let reason =
                    format!("the address space is capped (ulimit -v) with {} MiB left: {fit} slots of 4 GiB fit in half", room >> 20);
                match fit {
                    fit if fit < MIN_POOL_SLOTS => (0, format!("{reason}, fewer than {MIN_POOL_SLOTS}")),
                    fit => (fit, reason),
                }
            }
        };
        let allocation = match slots {
            0 => Allocation::OnDemand { growth_room: on_demand_growth_room(room) },
            slots => Allocation::Pool { slots },
        };
        Ok(Plan { allocation, reason, room })
    }

    /// Sandboxes allocated on demand instead, after the pool's reservation failed with `error`.
    pub fn on_demand_after(self, error: &CallError) -> Plan {
        Plan {
            allocation: Allocation::OnDemand { growth_room: on_demand_growth_room(self.room) },
            reason: format!("{}; the pool could not be reserved ({error})", self.reason),
            room: self.room,
        }
    }

    /// The most sandboxes the process may hold at once: the pool's slots; on demand, as many as
    /// fit in half of what the process may map, a sandbox taking `initial_memory` bytes at
    /// first (the snapshot's memory), its room to grow and its guard; [`POOL_SLOTS`] where the
    /// address space is not capped.
    pub fn sandboxes_max(&self, initial_memory: u64) -> u32 {
        match self.allocation {
            Allocation::Pool { slots } => slots,
            Allocation::OnDemand { growth_room } => match self.room {
                None => POOL_SLOTS,
                Some(room) => {
                    let sandbox = initial_memory + growth_room + engine_config::BOUNDED_GUARD_BYTES;
                    u32::try_from(room / 2 / sandbox).unwrap_or(u32::MAX).clamp(1, POOL_SLOTS)
                }
            },
        }
    }
}

/// Room an on-demand memory maps beyond its size (address space, not memory): growing past it
/// moves the memory, a copy of all of it. A 512th of what the process may map, within these
/// bounds: a sandbox within the default memory limit (64 MiB) moves at most three times under a
/// cap of 8 GiB, and about 250 sandboxes fit in half of any cap.
fn on_demand_growth_room(room: Option<u64>) -> u64 {
    const LEAST: u64 = 16 << 20;
    const MOST: u64 = 256 << 20;
    room.map_or(MOST, |room| (room / 512).clamp(LEAST, MOST))
}

impl Allocation {
    pub fn placement(self) -> MemoryPlacement {
        match self {
            Allocation::Pool { .. } => MemoryPlacement::Reserved,
            Allocation::OnDemand { .. } => MemoryPlacement::Bounded,
        }
    }

    /// The pool's slots (`None` on demand).
    pub fn pool_slots(self) -> Option<u32> {
        match self {
            Allocation::Pool { slots } => Some(slots),
            Allocation::OnDemand { .. } => None,
        }
    }

    /// What `js_debug()` calls it.
    pub fn name(self) -> &'static str {
        match self {
            Allocation::Pool { .. } => "pool",
            Allocation::OnDemand { .. } => "on-demand",
        }
    }

    /// The engine's settings for this allocation.
    pub fn config(self) -> Config {
        let mut config = engine_config::sandbox(self.placement());
        match self {
            Allocation::Pool { slots } => {
                config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(slots)));
            }
            Allocation::OnDemand { growth_room } => {
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                config.memory_reservation_for_growth(growth_room);
            }
        }
        config
    }
}

fn pooling(slots: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_component_instances(0)
        .max_memory_size(RESERVED_MEMORY_BYTES as usize)
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
