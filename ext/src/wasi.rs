//! The guest's whole view of the outside world: the handful of `wasi_snapshot_preview1` imports
//! that wasi-libc and Rust's std need to start, implemented here so that they grant nothing.
//!
//! There are no preopened directories (so no file can be named), no environment, no arguments
//! and no sockets; writes to stdout/stderr are swallowed; the clock and `random_get` are the
//! only facts the guest gets from the host. This module is shared (by `#[path]`) with the build
//! tool, which runs the same guest under Wizer.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, Linker, Memory};

const MODULE: &str = "wasi_snapshot_preview1";

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
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
    linker.func_wrap(MODULE, "fd_seek", |_: Caller<'_, T>, _fd: i32, _off: i64, _whence: i32, _new: i32| {
        errno::BADF
    })?;
    // `BADF` on descriptor 3 tells wasi-libc that there are no preopened directories.
    linker.func_wrap(MODULE, "fd_prestat_get", |_: Caller<'_, T>, _fd: i32, _buf: i32| errno::BADF)?;
    linker.func_wrap(MODULE, "fd_prestat_dir_name", |_: Caller<'_, T>, _fd: i32, _p: i32, _l: i32| {
        errno::BADF
    })?;
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
        // The monotonic clock counts from the Unix epoch too: the guest only needs it to rise.
        REALTIME | MONOTONIC => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 / RESOLUTION_NANOS * RESOLUTION_NANOS)
            .unwrap_or(0),
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
    let Some(bytes) = memory
        .data_mut(&mut caller)
        .get_mut(buf as u32 as usize..)
        .and_then(|rest| rest.get_mut(..len as u32 as usize))
    else {
        return errno::FAULT;
    };
    fill_random(bytes);
    errno::SUCCESS
}

/// Fills `bytes` from std's per-process random keys (the guest uses randomness only to seed
/// hash maps; `Math.random` is seeded per call by the host through the ABI).
fn fill_random(bytes: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
    }
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
