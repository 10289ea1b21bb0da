//! Child processes of the tests: run to their end within a time bound, their output kept; the
//! Python host scripts beside the tests, which print `N passed, N failed` last.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{extension_path, repo_root};

/// Debian's Python, whose sqlite3 module can load extensions.
pub const PYTHON: &str = "/usr/bin/python3";

/// What a child process did: its status and its output.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Finished {
    /// Panics unless the process exited normally with status 0.
    pub fn assert_success(&self, what: &str) {
        if let Some(signal) = self.status.signal() {
            panic!("{what} was killed by signal {signal}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        }
        assert!(self.status.success(), "{what} failed ({})\nstdout:\n{}\nstderr:\n{}", self.status, self.stdout, self.stderr);
    }
}

/// Runs `command` to its end, killing it (and failing) when it takes longer than `limit`: a
/// time limit that never fires must fail the test, not hang it.
pub fn run_bounded(mut command: Command, limit: Duration) -> Finished {
    let started = Instant::now();
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).ok();
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).ok();
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "{command:?} still ran after {limit:?} and was killed\nstdout:\n{}\nstderr:\n{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Finished { status, stdout: out.join().unwrap(), stderr: err.join().unwrap(), took: started.elapsed() }
}

/// A Python helper beside this file, run with Debian's python3 on the built extension; it prints
/// `N passed, N failed` last.
pub fn python_helper(script: &str, limit: Duration) -> Finished {
    let mut command = Command::new(PYTHON);
    command.current_dir(repo_root()).arg(repo_root().join("tests").join(script)).arg(extension_path());
    let finished = run_bounded(command, limit);
    println!("{script} ({:.1} s):\n{}{}", finished.took.as_secs_f64(), finished.stdout, finished.stderr);
    finished.assert_success(script);
    let last = finished.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(last.ends_with(" passed, 0 failed"), "{script}: {last}\n{}", finished.stdout);
    finished
}
