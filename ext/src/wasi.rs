//! The guest's whole view of the outside world: the handful of `wasi_snapshot_preview1` imports
//! that wasi-libc and Rust's std need to start, implemented here so that they grant nothing.
//!
//! There are no preopened directories (so no file can be named), no environment, no arguments
//! and no sockets; writes to stdout/stderr are swallowed; the clock and `random_get` (the OS's
//! CSPRNG) are the only facts the guest gets from the host. This module is shared (by `#[path]`) with the build
//! tool, which runs the same guest under Wizer.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, Linker, Memory};

const MODULE: &str = "wasi_snapshot_preview1";

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
}

thread_local! {
    /// Whether the guest running on this thread is in deterministic mode: its clock stands still
    /// at the Unix epoch, and `random_get` gives a fixed stream.
    static DETERMINISTIC: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (which calls into the guest) with the clock and `random_get` deterministic or not.
/// Outside such a call the flag is off (it is restored even when `f` unwinds), so a call in
/// normal mode, which cannot be nested in a deterministic one, need not come through here.
pub fn with_determinism<R>(deterministic: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DETERMINISTIC.set(self.0);
        }
    }
    let _restore = Restore(DETERMINISTIC.replace(deterministic));
    f()
}

/// Adds the WASI imports to `linker`.
pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "environ_sizes_get", |mut caller: Caller<'_, T>, count: i32, size: i32| {
        write_u32s(&mut caller, &[(count, 0), (size, 0)])
    })?;
    linker.func_wrap(MODULE, "environ_get", |_: Caller<'_, T>, _environ: i32, _buf: i32| errno::SUCCESS)?;
    linker.func_wrap(MODULE, "args_sizes_get", |mut caller: Caller<'_, T>, count: i32, size: i32| {
        write_u32s(&mut caller, &[(count, 0), (size, 0)])
    })?;
    linker.func_wrap(MODULE, "args_get", |_: Caller<'_, T>, _argv: i32, _buf: i32| errno::SUCCESS)?;
    linker.func_wrap(MODULE, "clock_time_get", clock_time_get::<T>)?;
    linker.func_wrap(MODULE, "random_get", random_get::<T>)?;
    linker.func_wrap(MODULE, "fd_write", fd_write::<T>)?;
    // No file descriptor but stdio exists, and stdio cannot be closed, seeked or described.
    linker.func_wrap(MODULE, "fd_close", |_: Caller<'_, T>, _fd: i32| errno::BADF)?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |_: Caller<'_, T>, _fd: i32, _stat: i32| errno::BADF)?;
    linker.func_wrap(MODULE, "fd_seek", |_: Caller<'_, T>, _fd: i32, _off: i64, _whence: i32, _new: i32| errno::BADF)?;
    // `BADF` on descriptor 3 tells wasi-libc that there are no preopened directories.
    linker.func_wrap(MODULE, "fd_prestat_get", |_: Caller<'_, T>, _fd: i32, _buf: i32| errno::BADF)?;
    linker.func_wrap(MODULE, "fd_prestat_dir_name", |_: Caller<'_, T>, _fd: i32, _p: i32, _l: i32| errno::BADF)?;
    linker.func_wrap(MODULE, "proc_exit", |_: Caller<'_, T>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("the guest exited with status {code}")))
    })?;
    Ok(())
}

fn memory<T>(caller: &mut Caller<'_, T>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    }
}

/// Writes little-endian `u32`s at the given guest addresses.
fn write_u32s<T>(caller: &mut Caller<'_, T>, values: &[(i32, u32)]) -> i32 {
    let Some(memory) = memory(caller) else { return errno::FAULT };
    for &(ptr, value) in values {
        if memory.write(&mut *caller, ptr as u32 as usize, &value.to_le_bytes()).is_err() {
            return errno::FAULT;
        }
    }
    errno::SUCCESS
}

fn clock_time_get<T>(mut caller: Caller<'_, T>, clock: i32, _precision: i64, out: i32) -> i32 {
    const REALTIME: i32 = 0;
    const MONOTONIC: i32 = 1;
    // Whole milliseconds, as `Date` shows them anyway: a finer clock (`performance.now()`)
    // would only serve to time the host's caches and branch predictors from inside the sandbox.
    const RESOLUTION_NANOS: u64 = 1_000_000;
    let nanos = match clock {
        REALTIME | MONOTONIC if DETERMINISTIC.get() => 0,
        // The monotonic clock counts from the Unix epoch too: the guest only needs it to rise.
        REALTIME | MONOTONIC => {
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64 / RESOLUTION_NANOS * RESOLUTION_NANOS).unwrap_or(0)
        }
        _ => return errno::INVAL,
    };
    let Some(memory) = memory(&mut caller) else { return errno::FAULT };
    match memory.write(&mut caller, out as u32 as usize, &nanos.to_le_bytes()) {
        Ok(()) => errno::SUCCESS,
        Err(_) => errno::FAULT,
    }
}

fn random_get<T>(mut caller: Caller<'_, T>, buf: i32, len: i32) -> i32 {
    let Some(memory) = memory(&mut caller) else { return errno::FAULT };
    let Some(bytes) = memory.data_mut(&mut caller).get_mut(buf as u32 as usize..).and_then(|rest| rest.get_mut(..len as u32 as usize))
    else {
        return errno::FAULT;
    };
    if DETERMINISTIC.get() {
        // A fixed stream: the same on every machine.
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(0x9D).wrapping_add(0x5B);
        }
        return errno::SUCCESS;
    }
    match fill_random(bytes) {
        Ok(()) => errno::SUCCESS,
        Err(_) => errno::IO,
    }
}

/// Fills `bytes` from the operating system's CSPRNG: `getrandom(2)`, or `/dev/urandom` where
/// that system call is missing (Linux before 3.17) or refused (a seccomp filter). The guest's
/// `random_get` and the host's per-call `Math.random` seeds both come from here, so no output
/// of one call, connection or (forked) process says anything about another's.
pub fn fill_random(bytes: &mut [u8]) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut filled = 0;
        while filled < bytes.len() {
            let rest = &mut bytes[filled..];
            // SAFETY: `rest` is a live, writable buffer of `rest.len()` bytes.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n > 0 {
                filled += n as usize;
                continue;
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOSYS | libc::EPERM) => return urandom(rest),
                _ => return Err(error),
            }
        }
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    urandom(bytes)
}

fn urandom(bytes: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(bytes)
}

/// Swallows writes to stdout and stderr (the guest's console is captured by the guest itself),
/// reporting them as written so that nothing retries.
fn fd_write<T>(mut caller: Caller<'_, T>, fd: i32, iovs: i32, iovs_len: i32, written: i32) -> i32 {
    const STDOUT: i32 = 1;
    const STDERR: i32 = 2;
    if fd != STDOUT && fd != STDERR {
        return errno::BADF;
    }
    let Some(memory) = memory(&mut caller) else { return errno::FAULT };
    let data = memory.data(&caller);
    let mut total: u32 = 0;
    for i in 0..iovs_len.max(0) as usize {
        let at = iovs as u32 as usize + i * 8;
        let Some(len) = data.get(at + 4..at + 8) else { return errno::FAULT };
        total = total.wrapping_add(u32::from_le_bytes(len.try_into().expect("4 bytes")));
    }
    write_u32s(&mut caller, &[(written, total)])
}

#[cfg(test)]
mod tests {
    use super::fill_random;

    /// Bytes from the OS's CSPRNG: no two draws alike, no constant output, every byte value in
    /// a long draw (a buffer longer than one `getrandom` call returns is filled whole).
    #[test]
    fn fill_random_draws_from_the_os() {
        let draw = |len: usize| {
            let mut bytes = vec![0u8; len];
            fill_random(&mut bytes).unwrap();
            bytes
        };
        let draws: Vec<Vec<u8>> = (0..64).map(|_| draw(16)).collect();
        for (i, a) in draws.iter().enumerate() {
            assert!(draws[i + 1..].iter().all(|b| a != b), "a repeated draw: {a:x?}");
        }
        let long = draw(1 << 20);
        let mut seen = [false; 256];
        long.iter().for_each(|&b| seen[b as usize] = true);
        assert!(seen.iter().all(|&s| s));
        assert!(long[long.len() - 4096..].iter().any(|&b| b != 0), "the end of a long draw was not filled");
        // Its cost, for docs/hardening.md (`cargo test --release -p sqlite-jsbox --features loadable_extension fill_random -- --nocapture`).
        let started = std::time::Instant::now();
        let mut seed = [0u8; 8];
        for _ in 0..100_000 {
            fill_random(&mut seed).unwrap();
        }
        println!("fill_random, 8 bytes: {:.0} ns per call", started.elapsed().as_nanos() as f64 / 100_000.0);
    }
}
