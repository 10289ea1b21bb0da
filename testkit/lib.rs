//! The one home of what the end-to-end tests (`tests/`) and the benchmarks (`bench/`,
//! `ext/benches/`) both need: where the repository, the built extension and the fixtures are,
//! running the sqlite3 shell on a script, and the process's resident memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The built extension, without its suffix (as `.load` and `load_extension` take it):
/// `JSBOX_EXT` (the Makefile sets it), else the release build.
pub fn extension_path() -> String {
    std::env::var("JSBOX_EXT").unwrap_or_else(|_| repo_root().join("target/release/libjsbox").display().to_string())
}

/// The seed post's 260-point fixture (`fixtures/seed_track_points.json`).
pub fn seed_fixture_path() -> PathBuf {
    repo_root().join("fixtures/seed_track_points.json")
}

/// The generated multi-track fixture (`fixtures/track_points.geojson`).
pub fn tracks_fixture_path() -> PathBuf {
    repo_root().join("fixtures/track_points.geojson")
}

/// Runs `script` (SQL and dot-commands) through `/usr/bin/sqlite3` on `db`, from the
/// repository's root (so that `readfile('sql/...')` resolves).
pub fn run_sqlite3(db: &Path, script: &str) -> Output {
    let mut shell = Command::new("/usr/bin/sqlite3");
    shell.arg(db);
    run_shell_script(shell, script)
}

/// Runs `shell` (a `sqlite3` with its arguments, or a command that runs one) from the
/// repository's root, with `script` on its stdin.
pub fn run_shell_script(mut shell: Command, script: &str) -> Output {
    let mut child = shell
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running /usr/bin/sqlite3");
    child.stdin.take().expect("piped stdin").write_all(script.as_bytes()).expect("writing the script");
    child.wait_with_output().expect("waiting for sqlite3")
}

/// This process's resident set, in KiB (`VmRSS` of `/proc/self/status`).
pub fn resident_kib() -> u64 {
    status_kib(&std::fs::read_to_string("/proc/self/status").unwrap_or_default(), "VmRSS:").unwrap_or(0)
}

/// The KiB figure of `field` in a `/proc/<pid>/status` text.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// How far `a` is from `b`, relative to `b`.
pub fn rel_diff(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}
