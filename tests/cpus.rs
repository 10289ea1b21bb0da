//! The precompiled guest runs on every CPU of its baseline, not only on the build machine's: the
//! sqlite3 shell under qemu-user, emulating a CPU that has x86-64-v2 and nothing more (Nehalem),
//! computes as usual; on one below the baseline (Core 2) every call fails with an error that says
//! why, and nothing crashes. Both precompiled guests: the pool's (shrunk, as qemu-user cannot map
//! 1000 × 4 GiB) and the bounds-checked one of sandboxes allocated on demand.

use std::process::Command;

use jsbox_tests::*;

/// `JSBOX_POOL_SLOTS` for each guest: a small pool, and none (sandboxes allocated on demand).
const POOLS: [&str; 2] = ["4", "0"];

/// The shell on an emulated `cpu`, with jsbox loaded and a pool of `pool_slots`, running `sql`:
/// (stdout, stderr, exit code).
fn sqlite3_on(cpu: &str, pool_slots: &str, sql: &str) -> (String, String, Option<i32>) {
    let out = Command::new("qemu-x86_64")
        .current_dir(repo_root())
        .env("JSBOX_POOL_SLOTS", pool_slots)
        .args(["-cpu", cpu, "/usr/bin/sqlite3", ":memory:", "-cmd", &format!(".load {}", extension_path()), sql])
        .output()
        .expect("running qemu-x86_64 (Debian's qemu-user; `make deps` installs it)");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code())
}

#[test]
#[cfg(target_arch = "x86_64")]
fn the_guest_runs_on_a_cpu_with_the_baseline_and_nothing_more() {
    for (pool_slots, placement) in POOLS.into_iter().zip(["reserved", "bounded"]) {
        let (out, err, code) = sqlite3_on(
            "Nehalem",
            pool_slots,
            "SELECT js_eval('6 * 7'), js_eval('data.features.length', readfile('fixtures/seed_track_points.json')), \
             js_debug() ->> '$.guest_cpu', js_debug() ->> '$.memory_placement';",
        );
        assert_eq!((out.trim(), code), (format!("42|260|x86-64-v2|{placement}").as_str(), Some(0)), "{err}");
        // The seed's whole script, with its floating point, gives the native computation's result.
        let (out, err, _) =
            sqlite3_on("Nehalem", pool_slots, "SELECT js_eval(readfile('sql/seed_cff.js'), readfile('fixtures/seed_track_points.json'));");
        let expected = cff_length(&tracks(&seed_fixture())[0].1);
        let got: f64 = out.trim().parse().unwrap_or_else(|_| panic!("{out} {err}"));
        // As in tests/js_eval.rs: the guest's libm (musl) and glibc differ in the last bits of acos.
        assert!(rel_diff(got, expected) < 1e-5, "{placement}: {got} vs {expected}");
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn a_cpu_below_the_baseline_gets_an_error_not_a_crash() {
    for pool_slots in POOLS {
        let (out, err, code) = sqlite3_on("core2duo", pool_slots, "SELECT js_eval('6 * 7');");
        assert_eq!(code, Some(1), "{out} {err}");
        assert!(
            err.contains(
                "loading the guest precompiled for x86_64-unknown-linux-gnu with x86-64-v2 (a CPU without those features cannot run it)"
            ),
            "{err}"
        );
    }
}

/// The build tool precompiles the guest for another architecture from here: an AArch64 ELF
/// object, with its target recorded for js_debug().
#[test]
fn the_build_tool_precompiles_for_aarch64() {
    let target = std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    let out = std::env::temp_dir().join(format!("jsbox-aarch64-{}", std::process::id()));
    let run = Command::new(target.join("release/xtask"))
        .args(["snapshot", &target.join("wasm32-wasip1/release/jsbox_guest.wasm").display().to_string(), &out.display().to_string()])
        .args(["--target", "aarch64-unknown-linux-gnu"])
        .output()
        .expect("running the build tool (make build makes it)");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for file_name in ["guest.cwasm", "guest.bounded.cwasm"] {
        let cwasm = std::fs::read(out.join(file_name)).unwrap();
        // ELF, 64-bit, e_machine 183 (EM_AARCH64).
        assert_eq!(&cwasm[..5], b"\x7fELF\x02", "{file_name}");
        assert_eq!(u16::from_le_bytes([cwasm[18], cwasm[19]]), 183, "{file_name}");
    }
    // The target, the CPU baseline and the snapshot's hash: the same as the x86-64 build's, as
    // the snapshot is made the same way from the same guest (a stopped clock, fixed random bytes).
    let recorded = std::fs::read_to_string(out.join("guest.target")).unwrap();
    let words: Vec<&str> = recorded.split_whitespace().collect();
    assert_eq!(words[..2], ["aarch64-unknown-linux-gnu", "baseline"], "{recorded}");
    let native = std::fs::read_to_string(target.join("jsbox/guest.target")).unwrap();
    assert_eq!(Some(words[2]), native.split_whitespace().nth(2), "{recorded} vs {native}");
    let _ = std::fs::remove_dir_all(out);
}
