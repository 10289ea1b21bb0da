//! The benchmark's workloads, shared by the `jsbox-bench` binary (`make bench`) and the tests,
//! which check on 10,000 rows that every workload's jsbox form computes what its plain SQL form
//! does.

pub mod chart;
#[cfg(feature = "inproc")]
pub mod inproc;
#[cfg(feature = "inproc")]
pub mod soak;
pub mod sql;
pub mod stats;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
        .current_dir(sql::repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running /usr/bin/sqlite3");
    child.stdin.take().expect("piped stdin").write_all(script.as_bytes()).expect("writing the script");
    child.wait_with_output().expect("waiting for sqlite3")
}
