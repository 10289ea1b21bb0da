//! The extension as users meet it outside Rust: the real `/usr/bin/sqlite3` shell (SQLite 3.40),
//! Debian's `/usr/bin/python3` sqlite3 module and APSW (a current SQLite); plus the fixture
//! generator's determinism.

use std::path::PathBuf;
use std::process::Command;

use jsbox_tests::*;

fn sqlite3(args: &[&str]) -> (String, String, bool) {
    let out = Command::new("/usr/bin/sqlite3").current_dir(repo_root()).args(args).output().expect("running /usr/bin/sqlite3");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned(), out.status.success())
}

#[test]
fn sqlite3_shell_loads_the_extension_and_reads_a_fixture() {
    let load = format!(".load {}", extension_path());
    let fixture = seed_fixture_path().display().to_string();
    let (out, err, ok) = sqlite3(&[":memory:", "-cmd", &load, &format!("SELECT js_eval('data.features.length', readfile('{fixture}'));")]);
    assert!(ok, "stderr: {err}");
    assert_eq!(out.trim(), "260");
    // SQLite 3.40 has no sqlite3_is_interrupted: js_debug() says so (tests/errors.rs covers a
    // newer SQLite, where interrupts stop calls).
    let (out, err, ok) = sqlite3(&[":memory:", "-cmd", &load, "SELECT js_debug() ->> '$.interrupt';"]);
    assert!(ok, "stderr: {err}");
    assert!(out.starts_with("not available"), "{out}");
}

#[test]
fn sqlite3_shell_reports_errors_and_keeps_console_off_stdout() {
    let load = format!(".load {}", extension_path());
    let (out, err, ok) = sqlite3(&[":memory:", "-cmd", &load, "SELECT js_eval('console.log(\"not on stdout\"); 1+1');"]);
    assert!(ok, "stderr: {err}");
    assert_eq!(out.trim(), "2", "console output must not reach stdout");
    let (out, err, ok) = sqlite3(&[":memory:", "-cmd", &load, "SELECT js_eval('\n\nnosuch');"]);
    assert!(!ok);
    assert!(out.is_empty(), "stdout: {out}");
    assert!(err.contains("js_eval: ReferenceError: nosuch is not defined (line 3)"), "stderr: {err}");
}

#[test]
fn no_panic_text_ever_reaches_the_hosts_stderr() {
    let load = format!(".load {}", extension_path());
    for sql in ["SELECT js_call();", "SELECT js_agg();", "SELECT js_call(1);", "SELECT js_agg(NULL, 1);"] {
        let (out, err, ok) = sqlite3(&[":memory:", "-cmd", &load, sql]);
        assert!(!ok && out.is_empty(), "{sql}: {out}");
        assert!(err.contains("js_call: ") || err.contains("js_agg: "), "{sql}: {err}");
        assert!(!err.contains("panic") && !err.contains("backtrace") && err.lines().count() == 1, "{sql}: {err}");
    }
}

#[test]
fn sqlite3_shell_runs_the_demo() {
    let out = run_sqlite3(std::path::Path::new(":memory:"), &demo_script());
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_demo_output(&String::from_utf8_lossy(&out.stdout));
}

#[test]
fn debian_python_loads_the_extension() {
    let script = format!(
        "import sqlite3\n\
         c = sqlite3.connect(':memory:')\n\
         c.enable_load_extension(True)\n\
         c.load_extension({ext:?})\n\
         print(c.execute(\"select js_eval('1+1')\").fetchone()[0])\n\
         print(c.execute(\"select js_eval('data.a', '{{\\\"a\\\": [1,2]}}')\").fetchone()[0])\n\
         try:\n    c.execute(\"select js_eval('while(true){{}}')\").fetchone()\n\
         except sqlite3.OperationalError as e:\n    print(e)\n",
        ext = extension_path()
    );
    let out = Command::new("/usr/bin/python3").arg("-c").arg(&script).output().expect("running /usr/bin/python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "2\n[1,2]\njs_eval: time limit of 1000 ms exceeded\n");
}

/// APSW (from PyPI, bundling SQLite 3.54) as a newer host than Debian's: the extension loads,
/// computes, and `sqlite3_interrupt()` stops a running call (`tests/apsw_host.py`; `make deps`
/// prepares the venv).
#[test]
fn apsw_with_a_current_sqlite_loads_the_extension_and_interrupts_calls() {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    let python = target.join("apsw-venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps` (scripts/install-deps.sh)", python.display());
    let out = Command::new(&python)
        .current_dir(repo_root())
        .arg("tests/apsw_host.py")
        .arg(extension_path())
        .output()
        .expect("running the APSW host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().last(), Some("5 passed, 0 failed"), "{stdout}");
}

#[test]
fn the_fixture_is_what_its_generator_makes() {
    let out = Command::new("/usr/bin/python3").arg(repo_root().join("fixtures/generate.py")).arg("--check").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
