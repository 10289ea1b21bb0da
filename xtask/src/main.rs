//! jsbox's build tool, driven by the Makefile: the only crate that links Cranelift and Wizer.
//!
//! `cargo run -p xtask --release -- snapshot <guest.wasm> <out-dir>`
//!  1. runs the guest's `wizer-initialize` under Wizer, so that the QuickJS runtime and context
//!     exist in the snapshot's memory (`<out-dir>/guest.wizer.wasm`);
//!  2. precompiles that snapshot with the extension's exact engine settings
//!     (`ext/src/engine_config.rs`) into `<out-dir>/guest.cwasm`, which the extension embeds, so
//!     that loading jsbox never compiles WebAssembly.

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

use wasmtime::{Engine, Linker, Store};
use wasmtime_wizer::Wizer;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["snapshot", guest, out_dir] => snapshot(Path::new(guest), Path::new(out_dir)),
        _ => Err(wasmtime::Error::msg("usage: xtask snapshot <guest.wasm> <out-dir>")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:?}");
            ExitCode::FAILURE
        }
    }
}

fn snapshot(guest: &Path, out_dir: &Path) -> wasmtime::Result<()> {
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

    let started = Instant::now();
    let engine = Engine::new(&engine_config::sandbox())?;
    let precompiled = engine.precompile_module(&snapshot)?;
    let cwasm_path: PathBuf = out_dir.join("guest.cwasm");
    write_if_changed(&cwasm_path, &precompiled)?;
    println!(
        "xtask: precompiled {} ({} bytes) in {:.1?}",
        cwasm_path.display(),
        precompiled.len(),
        started.elapsed()
    );
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
    block_on(wizer.run(&mut store, wasm, async |store, module| linker.instantiate(store, module)))
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
