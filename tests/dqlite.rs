//! dqlite (Debian's `go-dqlite`: `dqlite-demo` nodes and the `dqlite` shell, on libdqlite 1.11):
//! a 3-node cluster on 127.0.0.1 with jsbox in each node's process, plugin values written through
//! the leader, the leader killed, and the new leader computing the same; a plugin that loops
//! never takes a node down.
//!
//! dqlite refuses `load_extension`, and the nodes are a prebuilt program: jsbox gets into each
//! node's process through `tests/dqlite/jsbox_at_first_open.c`, an `LD_PRELOAD` shim that
//! registers jsbox's entry point with `sqlite3_auto_extension` at the process's first
//! `sqlite3_open_v2` (not before: go-dqlite sets SQLite's threading mode at start-up, which
//! registering, by initializing SQLite, would pre-empt).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsbox_tests::*;

/// The cluster's node processes, killed when the test ends, however it ends.
struct Nodes(Vec<Option<Child>>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `sql` through the `dqlite` shell against `servers`; its output, or its error.
fn dqlite(servers: &[String], sql: &str) -> Result<String, String> {
    let out = Command::new("dqlite").args(["-s", &servers.join(","), "demo", sql]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && !stdout.starts_with("Error") {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{stderr}"))
    }
}

fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what}: not after 30 s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn shim(dir: &Path) -> PathBuf {
    let shim = dir.join("jsbox_at_first_open.so");
    let out = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&shim)
        .arg(repo_root().join("tests/dqlite/jsbox_at_first_open.c"))
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    shim
}

#[test]
fn a_three_node_cluster_computes_the_same_after_its_leader_dies() {
    assert!(
        Command::new("dqlite-demo").arg("--help").output().is_ok(),
        "dqlite-demo is missing: scripts/install-deps.sh installs go-dqlite"
    );
    let dir = std::env::temp_dir().join(format!("jsbox-dqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shim = shim(&dir);
    // The shim dlopen()s the library itself: the file's whole name.
    let library = match extension_path() {
        path if path.ends_with(".so") => path,
        path => format!("{path}.so"),
    };
    let base = 20_000 + (std::process::id() % 2000) as u16 * 6;
    let db_addr = |i: u16| format!("127.0.0.1:{}", base + i);
    let api_addr = |i: u16| format!("127.0.0.1:{}", base + 3 + i);
    let mut nodes = Nodes(Vec::new());
    for i in 0..3 {
        let data = dir.join(format!("node{i}"));
        std::fs::create_dir_all(&data).unwrap();
        let mut node = Command::new("dqlite-demo");
        node.args(["-a", &api_addr(i), "-d", &db_addr(i), "-D"]).arg(&data);
        if i > 0 {
            node.args(["-j", &db_addr(0)]);
        }
        let child =
            node.env("LD_PRELOAD", &shim).env("JSBOX_EXTENSION", &library).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        nodes.0.push(Some(child));
        if i == 0 {
            until("the first node", || dqlite(&[db_addr(0)], "SELECT 1").ok());
        }
    }
    let all: Vec<String> = (0..3).map(db_addr).collect();
    until("three voters", || dqlite(&all, ".cluster").ok().filter(|c| c.matches("voter").count() == 3));

    // jsbox runs in the leader's process; what plugins write replicates as pages.
    assert_eq!(dqlite(&all, "SELECT js_version()").unwrap().trim(), "0.1.0");
    dqlite(&all, "SELECT js_plugins_init()").unwrap();
    dqlite(&all, "INSERT INTO js_plugins(name, kind, source) VALUES ('km', 'scalar', 'function main(m) { return m / 1000 }')").unwrap();
    dqlite(&all, "CREATE TABLE runs(m REAL, km REAL)").unwrap();
    dqlite(&all, "INSERT INTO runs(m) VALUES (1500), (42195), (5000)").unwrap();
    dqlite(&all, "UPDATE runs SET km = km(m)").unwrap();
    let before = dqlite(&all, "SELECT m, km, km(m) FROM runs ORDER BY m").unwrap();
    assert_eq!(before, "1500|1.5|1.5\n5000|5|5\n42195|42.195|42.195\n");
    // A plugin that loops fails (its time limit), and the node goes on.
    dqlite(&all, "INSERT INTO js_plugins(name, kind, source) VALUES ('spin', 'scalar', 'function main() { while (true) {} }')").unwrap();
    assert!(dqlite(&all, "SELECT spin()").is_err());
    assert_eq!(dqlite(&all, "SELECT km(2)").unwrap().trim(), "0.002");

    // The leader dies; another takes over with the same data and the same plugins.
    let leader = dqlite(&all, ".leader").unwrap().trim().to_owned();
    let index = (0..3).find(|&i| db_addr(i) == leader).unwrap_or_else(|| panic!("leader {leader:?}"));
    let mut dead = nodes.0[index as usize].take().unwrap();
    dead.kill().unwrap();
    dead.wait().unwrap();
    let rest: Vec<String> = (0..3).filter(|&i| i != index).map(db_addr).collect();
    let new_leader =
        until("a new leader", || dqlite(&rest, ".leader").ok().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty() && *l != leader));
    assert!(rest.contains(&new_leader), "{new_leader}");
    let after = until("the new leader's answer", || dqlite(&rest, "SELECT m, km, km(m) FROM runs ORDER BY m").ok());
    assert_eq!(after, before);
    assert_eq!(dqlite(&rest, "SELECT km(7)").unwrap().trim(), "0.007");
    assert!(dqlite(&rest, "SELECT spin()").is_err());
    assert_eq!(dqlite(&rest, "SELECT count(*) FROM js_plugins").unwrap().trim(), "2");
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
