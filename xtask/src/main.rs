//! jsbox's build tool, driven by the Makefile: the only crate that links Cranelift and Wizer.
//!
//! `cargo run -p xtask --release -- snapshot <guest.wasm> <out-dir> [--target TRIPLE] [--cpu PRESET]`
//!  1. runs the guest's `wizer-initialize` under Wizer, so that the QuickJS runtime and context
//!     exist in the snapshot's memory (`<out-dir>/guest.wizer.wasm`);
//!  2. precompiles that snapshot with the extension's exact engine settings
//!     (`ext/src/engine_config.rs`), once per memory placement, into `<out-dir>/guest.cwasm` and
//!     `<out-dir>/guest.bounded.cwasm`, which the extension embeds, so that loading jsbox never
//!     compiles WebAssembly; for an explicit target (by default this
//!     machine's architecture on Linux) and CPU baseline (by default [`baseline_cpu`]), never for
//!     the build machine's own CPU: the artifact runs on every CPU that has the baseline, and
//!     wasmtime refuses it, with an error, on one that does not. `<out-dir>/guest.target` records
//!     both, and the snapshot's hash, for `js_debug()`.

#[path = "../../ext/src/engine_config.rs"]
mod engine_config;
#[path = "../../ext/src/wasi.rs"]
mod wasi;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::ExitCode;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use engine_config::MemoryPlacement;
use wasmtime::{Engine, Linker, Store};
use wasmtime_wizer::Wizer;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["snapshot", guest, out_dir, ref options @ ..] => {
            Target::from_options(options).and_then(|target| snapshot(Path::new(guest), Path::new(out_dir), &target))
        }
        _ => Err(wasmtime::Error::msg("usage: xtask snapshot <guest.wasm> <out-dir> [--target TRIPLE] [--cpu PRESET]")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:?}");
            ExitCode::FAILURE
        }
    }
}

/// What the guest is precompiled for.
struct Target {
    triple: String,
    /// A Cranelift preset of CPU features ("" for the architecture's baseline).
    cpu: String,
}

/// The CPU features the precompiled guest may use, per architecture: x86-64-v2 (SSE4.2, POPCNT,
/// CMPXCHG16B: every x86-64 CPU since 2009, Nehalem and later, and what most distributions now
/// require) and plain AArch64 (NEON is part of it). QuickJS's interpreter gains little from more
/// (docs/performance.md measures x86-64-v3).
fn baseline_cpu(triple: &str) -> &'static str {
    if triple.starts_with("x86_64") {
        "x86-64-v2"
    } else {
        ""
    }
}

impl Target {
    fn from_options(options: &[&str]) -> wasmtime::Result<Self> {
        let mut triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let mut cpu = None;
        let mut options = options.iter();
        while let Some(option) = options.next() {
            let value = options.next().ok_or_else(|| wasmtime::Error::msg(format!("{option} needs a value")))?;
            match *option {
                "--target" => triple = value.to_string(),
                "--cpu" => cpu = Some(value.to_string()),
                other => return Err(wasmtime::Error::msg(format!("unknown option {other}"))),
            }
        }
        let cpu = cpu.unwrap_or_else(|| baseline_cpu(&triple).to_owned());
        Ok(Target { triple, cpu })
    }

    /// The extension's settings, compiling for this target and CPU and not for this machine.
    fn config(&self, placement: MemoryPlacement) -> wasmtime::Result<wasmtime::Config> {
        let mut config = engine_config::sandbox(placement);
        config.target(&self.triple)?;
        if !self.cpu.is_empty() {
            // SAFETY: a CPU preset only selects the instructions the code may use; wasmtime
            // records them in the artifact and refuses to run it on a CPU that lacks one.
            unsafe {
                config.cranelift_flag_enable(&self.cpu);
            }
        }
        Ok(config)
    }
}

fn snapshot(guest: &Path, out_dir: &Path, target: &Target) -> wasmtime::Result<()> {
    let wasm = std::fs::read(guest).map_err(|e| wasmtime::Error::msg(format!("{}: {e}", guest.display())))?;
    std::fs::create_dir_all(out_dir)?;

    let started = Instant::now();
    let snapshot = wizen(&wasm)?;
    let wizer_path = out_dir.join("guest.wizer.wasm");
    write_if_changed(&wizer_path, &snapshot)?;
    println!(
        "xtask: {} ({} bytes) -> {} ({} bytes) in {:.1?}",
        guest.display(),
        wasm.len(),
        wizer_path.display(),
        snapshot.len(),
        started.elapsed()
    );

    let cpu = if target.cpu.is_empty() { "baseline" } else { &target.cpu };
    for (placement, file_name) in MemoryPlacement::ALL {
        let started = Instant::now();
        let engine = Engine::new(&target.config(placement)?)?;
        let precompiled = engine.precompile_module(&snapshot)?;
        let cwasm_path: PathBuf = out_dir.join(file_name);
        write_if_changed(&cwasm_path, &precompiled)?;
        println!(
            "xtask: precompiled {} ({} bytes) for {} ({cpu}), {} memory, in {:.1?}",
            cwasm_path.display(),
            precompiled.len(),
            target.triple,
            placement.name(),
            started.elapsed()
        );
    }
    // The snapshot's identity, for nodes of a replicated database to check that they run the
    // same guest (js_debug()'s guest_hash): FNV-1a of its bytes.
    let hash = snapshot.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    write_if_changed(&out_dir.join("guest.target"), format!("{} {cpu} {hash:016x}\n", target.triple).as_bytes())?;
    Ok(())
}

/// Runs `wizer-initialize` and returns the pre-initialized module.
fn wizen(wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    // Wizer's own engine only runs the initializer; its settings do not reach the output.
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    wasi::add_to_linker(&mut linker)?;
    let wizer = Wizer::new();
    // With a stopped clock and a fixed random stream, the snapshot depends on the guest alone:
    // every build of the same guest, for any target, has the same hash (js_debug()'s guest_hash).
    wasi::with_determinism(true, || block_on(wizer.run(&mut store, wasm, async |store, module| linker.instantiate(store, module))))
}

/// Writes `bytes` unless the file already holds them, so that cargo does not rebuild the
/// extension (which embeds the artifact) when nothing changed.
fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes)
}

/// Polls a future that never waits on I/O (Wizer's `run` is async only in signature).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
