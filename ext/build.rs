//! Locates the precompiled guest that `xtask snapshot` produced (the Makefile runs it first, or
//! `make dist` copied it into the package's prebuilt/) and records the versions `js_debug()`
//! reports.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    // The guest precompiled for the target: where JSBOX_GUEST_DIR says (the Makefile), else the
    // workspace's build (in jsbox's repository), else the package's own copy (a crate from
    // crates.io, which has no workspace around it).
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let built = workspace.join("target/jsbox");
    let guest_dir = std::env::var_os("JSBOX_GUEST_DIR").map(PathBuf::from).unwrap_or_else(|| {
        if built.join("guest.cwasm").exists() {
            built.clone()
        } else {
            manifest.join("prebuilt").join(&arch)
        }
    });
    println!("cargo:rerun-if-env-changed=JSBOX_GUEST_DIR");
    // One precompiled guest per memory placement (`MemoryPlacement::ALL` in engine_config.rs).
    for (file_name, var) in [("guest.cwasm", "JSBOX_GUEST_CWASM"), ("guest.bounded.cwasm", "JSBOX_GUEST_BOUNDED_CWASM")] {
        let cwasm = guest_dir.join(file_name);
        println!("cargo:rerun-if-changed={}", cwasm.display());
        if !cwasm.exists() {
            panic!(
                "{} is missing: no guest precompiled for {arch} (the crate carries x86_64 and \
                 aarch64 in prebuilt/; in jsbox's repository `make build` makes it)",
                cwasm.display()
            );
        }
        println!("cargo:rustc-env={var}={}", cwasm.display());
    }
    // What xtask precompiled it for: a target triple and a CPU baseline, and the snapshot's
    // hash, shown by js_debug().
    let target = guest_dir.join("guest.target");
    println!("cargo:rerun-if-changed={}", target.display());
    let recorded = std::fs::read_to_string(&target).unwrap_or_default();
    let mut words = recorded.split_whitespace();
    println!("cargo:rustc-env=JSBOX_GUEST_TARGET={}", words.next().unwrap_or("unknown"));
    println!("cargo:rustc-env=JSBOX_GUEST_CPU={}", words.next().unwrap_or("unknown"));
    println!("cargo:rustc-env=JSBOX_GUEST_HASH={}", words.next().unwrap_or("unknown"));

    // The workspace's lock file, or the package's own (cargo package includes it).
    let lock_path = [workspace.join("Cargo.lock"), manifest.join("Cargo.lock")].into_iter().find(|path| path.exists()).unwrap_or_default();
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    println!("cargo:rerun-if-changed={}", lock_path.display());
    for (krate, var) in [("wasmtime", "JSBOX_WASMTIME_VERSION"), ("rquickjs", "JSBOX_RQUICKJS_VERSION")] {
        println!("cargo:rustc-env={var}={}", locked_version(&lock, krate).unwrap_or("unknown"));
    }
}

/// The version Cargo.lock pins for `krate`.
fn locked_version<'a>(lock: &'a str, krate: &str) -> Option<&'a str> {
    let entry = format!("name = \"{krate}\"\nversion = \"");
    let start = lock.find(&entry)? + entry.len();
    let len = lock[start..].find('"')?;
    Some(&lock[start..start + len])
}
