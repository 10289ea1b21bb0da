//! Worlds of aggregate and window plugins, parked between groups.
//!
//! A group ends with its world holding the group's state. If the world was made from its
//! plugin's image (`plugin.rs`), it is reset to that image in place ([`World::reset`]: the pages
//! the group wrote are copied back) and parked here; the connection's next group of the same
//! plugin version takes it instead of making a sandbox. A parked world is, byte for byte, a
//! world just loaded: no state passes from one group to the next.
//!
//! Parked worlds belong to one connection (their limits and budget are its own) and one
//! compiled plugin version; they are few (per plugin and per connection), and count among the
//! sandboxes the process keeps between calls ([`KeptSandbox`]). They are given up first when
//! sandboxes run short: their connection's limits change, its budget is spent, or the process
//! runs out of sandboxes ([`release_all`], from any connection).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use crate::budget::KeptSandbox;
use crate::plugin::{CompiledPlugin, World};

/// Worlds parked per connection and plugin version: a statement may run a plugin in two groups
/// at once (two calls in one SELECT, several window partitions)...
const PER_PLUGIN: usize = 2;
/// ...and per connection.
const PER_CONNECTION: usize = 8;

struct Parked {
    owner: u64,
    plugin: Arc<CompiledPlugin>,
    world: World,
    _kept: KeptSandbox,
}

static PARKED: Mutex<Vec<Parked>> = Mutex::new(Vec::new());

fn parked() -> MutexGuard<'static, Vec<Parked>> {
    static FORK_HANDLERS: Once = Once::new();
    FORK_HANDLERS.call_once(|| {
        // SAFETY: handlers that only lock and unlock PARKED, on the forking thread.
        unsafe { libc::pthread_atfork(Some(lock_for_fork), Some(unlock_after_fork), Some(unlock_after_fork)) };
    });
    PARKED.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// PARKED, locked by the thread that forks, from just before `fork()` until just after it in
    /// both processes: a child never inherits it locked by a thread it does not have.
    static HELD_ACROSS_FORK: RefCell<Option<MutexGuard<'static, Vec<Parked>>>> = const { RefCell::new(None) };
}

extern "C" fn lock_for_fork() {
    let guard = PARKED.lock().unwrap_or_else(|e| e.into_inner());
    HELD_ACROSS_FORK.with_borrow_mut(|held| *held = Some(guard));
}

extern "C" fn unlock_after_fork() {
    HELD_ACROSS_FORK.with_borrow_mut(Option::take);
}

/// A new owner id for a connection (never reused in the process).
pub fn new_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A world of `plugin` that connection `owner` parked, as it was right after loading, in
/// deterministic mode or not.
pub fn unpark(owner: u64, plugin: &Arc<CompiledPlugin>, deterministic: bool) -> Option<World> {
    let mut parked = parked();
    let at = parked.iter().rposition(|p| p.owner == owner && Arc::ptr_eq(&p.plugin, plugin) && p.world.deterministic() == deterministic)?;
    Some(parked.swap_remove(at).world)
}

/// Parks a finished group's world of `plugin` for connection `owner`'s next group, reset to the
/// plugin's image; drops it if it cannot be reset or there is no room.
pub fn park(owner: u64, plugin: &Arc<CompiledPlugin>, mut world: World) {
    if !world.resettable() {
        return;
    }
    let (of_plugin, of_owner) = {
        let parked = parked();
        let of_owner = parked.iter().filter(|p| p.owner == owner);
        (of_owner.clone().filter(|p| Arc::ptr_eq(&p.plugin, plugin)).count(), of_owner.count())
    };
    let evicted = if of_plugin >= PER_PLUGIN {
        return;
    } else if of_owner >= PER_CONNECTION {
        // The connection's oldest parked world (of another plugin, or an older version) goes.
        let mut parked = parked();
        parked.iter().position(|p| p.owner == owner).map(|at| parked.remove(at))
    } else {
        None
    };
    drop(evicted);
    let Some(kept) = KeptSandbox::take() else { return };
    // Reset outside the lock: it copies the pages the group wrote.
    if world.reset() {
        parked().push(Parked { owner, plugin: Arc::clone(plugin), world, _kept: kept });
    }
}

/// Drops connection `owner`'s parked worlds (its limits changed, its budget is short, it
/// closes).
pub fn release(owner: u64) -> bool {
    let released: Vec<Parked> = {
        let mut parked = parked();
        let (mine, others) = std::mem::take(&mut *parked).into_iter().partition(|p| p.owner == owner);
        *parked = others;
        mine
    };
    !released.is_empty()
}

/// Drops every parked world of the process (a connection was refused a sandbox by the process).
pub fn release_all() -> bool {
    let released = std::mem::take(&mut *parked());
    !released.is_empty()
}

/// How many worlds connection `owner` has parked.
pub fn count(owner: u64) -> usize {
    parked().iter().filter(|p| p.owner == owner).count()
}
