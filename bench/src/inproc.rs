//! Measurements that need several connections in one process (W7, W8's 100 connections). They
//! run in a child process of the bench (`jsbox-bench --child ...`), so that the memory figures
//! are that process's own, with rusqlite's bundled SQLite (a newer SQLite than the shell's; the
//! same extension binaries load into both).

use jsbox_testkit::resident_kib;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// What a child is asked to do, as its command line after `--child`.
pub enum Job {
    /// W7: `query` on one connection, then on two connections in two threads at once, `rounds`
    /// times; prints the seconds of each as JSON.
    Threads { db: String, extension: Option<String>, setup: String, query: String, rounds: usize },
    /// W8: opens `n` connections, each loading the extension and running `query`, keeps them
    /// open, and prints the process's resident memory before and after, in KiB, as JSON.
    Connections { extension: Option<String>, n: usize, query: String },
}

impl Job {
    pub fn to_args(&self) -> Vec<String> {
        let ext = |e: &Option<String>| e.clone().unwrap_or_else(|| "-".into());
        match self {
            Job::Threads { db, extension, setup, query, rounds } => {
                vec!["threads".into(), db.clone(), ext(extension), setup.clone(), query.clone(), rounds.to_string()]
            }
            Job::Connections { extension, n, query } => vec!["connections".into(), ext(extension), n.to_string(), query.clone()],
        }
    }

    pub fn from_args(args: &[String]) -> Option<Job> {
        let ext = |s: &String| (s != "-").then(|| s.clone());
        match args {
            [kind, db, extension, setup, query, rounds] if kind == "threads" => Some(Job::Threads {
                db: db.clone(),
                extension: ext(extension),
                setup: setup.clone(),
                query: query.clone(),
                rounds: rounds.parse().ok()?,
            }),
            [kind, extension, n, query] if kind == "connections" => {
                Some(Job::Connections { extension: ext(extension), n: n.parse().ok()?, query: query.clone() })
            }
            _ => None,
        }
    }

    /// Runs the job in this process and prints its JSON result.
    pub fn run(&self) {
        let result = match self {
            Job::Threads { db, extension, setup, query, rounds } => {
                let open = || connect(Some(Path::new(db)), extension.as_deref(), setup);
                let mut single = Vec::new();
                let mut dual = Vec::new();
                for _ in 0..*rounds {
                    single.push(timed(|| run_query(&open(), query)).as_secs_f64());
                    dual.push(
                        timed(|| {
                            std::thread::scope(|s| {
                                for _ in 0..2 {
                                    s.spawn(|| run_query(&open(), query));
                                }
                            })
                        })
                        .as_secs_f64(),
                    );
                }
                serde_json::json!({ "single_s": single, "dual_s": dual })
            }
            Job::Connections { extension, n, query } => {
                let before = resident_kib();
                let connections: Vec<Connection> = (0..*n)
                    .map(|_| {
                        let conn = connect(None, extension.as_deref(), "");
                        run_query(&conn, query);
                        conn
                    })
                    .collect();
                let after = resident_kib();
                drop(connections);
                serde_json::json!({ "rss_before_kib": before, "rss_after_kib": after })
            }
        };
        println!("{result}");
    }

    /// Runs the job in a child process of this executable; returns its JSON result.
    pub fn spawn(&self) -> serde_json::Value {
        let out = Command::new(std::env::current_exe().expect("the bench's own path"))
            .arg("--child")
            .args(self.to_args())
            .output()
            .expect("running the bench's child");
        assert!(out.status.success(), "bench child failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("the child's JSON")
    }
}

/// A connection to `db` (in memory if `None`) with `extension` loaded and `setup` run.
fn connect(db: Option<&Path>, extension: Option<&str>, setup: &str) -> Connection {
    let conn = match db {
        Some(db) => Connection::open(db),
        None => Connection::open_in_memory(),
    }
    .expect("opening a connection");
    if let Some(extension) = extension {
        // SAFETY: loading the extension under test, or the peer it is compared with.
        unsafe {
            conn.load_extension_enable().expect("enabling extensions");
            conn.load_extension(extension, None::<&str>).expect("loading the extension");
            conn.load_extension_disable().expect("disabling extensions");
        }
    }
    add_math_functions(&conn);
    conn.execute_batch(setup).expect("the setup SQL");
    conn
}

/// rusqlite's bundled SQLite is built without SQLite's math functions, which the plain SQL
/// forms of the workloads use: supply the five they need where they are missing.
fn add_math_functions(conn: &Connection) {
    use rusqlite::functions::FunctionFlags;
    if conn.query_row("SELECT acos(1)", [], |_| Ok(())).is_ok() {
        return;
    }
    type MathFunction = (&'static str, fn(f64) -> f64);
    let functions: [MathFunction; 5] =
        [("acos", f64::acos), ("sin", f64::sin), ("cos", f64::cos), ("radians", f64::to_radians), ("degrees", f64::to_degrees)];
    for (name, f) in functions {
        conn.create_scalar_function(name, 1, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, move |ctx| {
            Ok(ctx.get::<Option<f64>>(0)?.map(f))
        })
        .expect("defining a math function");
    }
}

/// Runs `query` and steps through all its rows.
fn run_query(conn: &Connection, query: &str) {
    let mut stmt = conn.prepare(query).expect("preparing the query");
    let mut rows = stmt.query([]).expect("running the query");
    while rows.next().expect("stepping the query").is_some() {}
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}
