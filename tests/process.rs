//! Attacks on the process that hosts the sandbox rather than on the sandbox itself
//! (docs/hardening.md, classes 7–10):
//!
//! - 7: time limits are wall-clock time from the call's start, however busy the machine is;
//! - 8: time limits still fire in a child process after `fork()` (Python's `os.fork`,
//!   `multiprocessing`), through `tests/fork_host.py`;
//! - 9: a thread with a small native stack (Rust threads, a Python thread, `ulimit -s`) gets a
//!   "stack overflow" error from runaway recursion, never a crashed process; through
//!   `tests/stack_host.py` and the sqlite3 shell too;
//! - 10: `Math.random`'s seed of one call tells nothing about another call's.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

// ---------------------------------------------------------------------------------------------
// 7. Time limits under load

/// The time limit of the busy-machine test.
const BUSY_LIMIT_MS: u64 = 300;

/// How long after its time limit a call on the busy machine may end. The old, tick-counting
/// limit ran a 300 ms limit for 1.4–2.2 s with 48 threads on 2 cores (0.8–1.2 s with 24, 1.1–3.0 s
/// with 96); the wall-clock limit ends every call within 0.1 s of it (300–380 ms with 48). The
/// bound is generous for slow, shared CI machines and still fails the old behaviour.
const BUSY_SLACK: Duration = Duration::from_millis(1200);

/// One hostile call per thread, all released at once, in more threads than the machine has cores
/// (12 per core, at least 24): every call ends with its time limit's error, no call ends before
/// its limit, and none ends much after it, although each thread gets only a fraction of a core.
#[test]
fn time_limits_are_wall_clock_time_on_a_busy_machine() {
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let threads = std::env::var("JSBOX_BUSY_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or((24 * cores).clamp(48, 128));
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let conn = open();
                value(&conn, &format!("SELECT js_config('time_limit_ms', {BUSY_LIMIT_MS})"));
                conn.execute_batch(
                    "SELECT js_plugins_init();
                     INSERT INTO js_plugins(name, kind, source) VALUES
                       ('spin', 'scalar', 'function main(n) { for (;;) {} }'),
                       ('spin_agg', 'aggregate', 'function init() { return 0 } function step(s) { for (;;) {} } function final(s) { return s }');",
                )
                .unwrap();
                // Compiles the plugins' worlds before the race starts.
                let (sql, function) = match t % 4 {
                    0 => ("SELECT js_eval('while (true) {}')", "js_eval"),
                    1 => (r#"SELECT js_eval('/^(a+)+$/.test("a".repeat(40) + "b")')"#, "js_eval"),
                    2 => ("SELECT spin(1)", "spin"),
                    _ => ("SELECT spin_agg(x) FROM (SELECT 1 AS x UNION ALL SELECT 2)", "spin_agg"),
                };
                barrier.wait();
                let started = Instant::now();
                let message = error_of(&conn, sql);
                let took = started.elapsed();
                assert_eq!(message, format!("{function}: time limit of {BUSY_LIMIT_MS} ms exceeded"), "thread {t}: {sql}");
                // The connection answers afterwards.
                assert_eq!(value(&conn, "SELECT js_eval('6 * 7')"), Value::Integer(42));
                took
            })
        })
        .collect();
    let mut took: Vec<Duration> = handles.into_iter().map(|h| h.join().expect("a thread panicked")).collect();
    took.sort();
    let ms = |d: &Duration| d.as_millis();
    println!(
        "{threads} threads on {cores} cores, limit {BUSY_LIMIT_MS} ms: min {} ms, median {} ms, max {} ms",
        ms(&took[0]),
        ms(&took[threads / 2]),
        ms(&took[threads - 1])
    );
    let limit = Duration::from_millis(BUSY_LIMIT_MS);
    assert!(took[0] >= limit, "a call stopped before its limit: {took:?}");
    assert!(
        took[threads - 1] < limit + BUSY_SLACK,
        "calls ran on past their limit (the limit stretched under load): {:?}",
        took.iter().map(ms).collect::<Vec<_>>()
    );
}

/// The limit is measured from the start of each call, also when calls follow each other in one
/// statement (one call per row) and when they go into one long-lived sandbox (a scalar plugin's
/// world lives as long as its connection): no call is charged for the time of earlier ones.
#[test]
fn each_call_gets_its_own_time_limit() {
    let conn = open();
    value(&conn, "SELECT js_config('time_limit_ms', 1000)");
    conn.execute_batch(
        "SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source) VALUES
           ('busy', 'scalar', 'function main(ms) { const end = Date.now() + ms; while (Date.now() < end) {} return ms }');",
    )
    .unwrap();
    // Eight calls of 150 ms each, 1.2 s in all, under a 1 s limit: each fits its own limit (with
    // room for a busy machine's scheduling delays).
    let rows = "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 8) SELECT i FROM s)";
    let busy_js = "js_eval('const end = Date.now() + 150; while (Date.now() < end) {} 150')";
    // (`i - i`: a plugin is deterministic, and SQLite would call it once for a constant argument.)
    for call in [busy_js, "busy(150 + i - i)"] {
        let started = Instant::now();
        assert_eq!(value(&conn, &format!("SELECT sum({call}) FROM {rows}")), Value::Integer(8 * 150), "{call}");
        let took = started.elapsed();
        // (Over the limit in all; `Date.now()` has whole milliseconds, so each call may be 1 ms short.)
        assert!(took >= Duration::from_millis(1150), "{call}: {took:?}");
    }
    // A call that spins still ends at its own limit.
    let started = Instant::now();
    assert_eq!(error_of(&conn, "SELECT js_eval('for (;;) {}')"), "js_eval: time limit of 1000 ms exceeded");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1000) && took < Duration::from_secs(3), "{took:?}");
}

// ---------------------------------------------------------------------------------------------
// 8. After fork()

/// `tests/fork_host.py`: after `os.fork()` in a process that has made calls (so its epoch thread
/// existed, and was left behind by fork), the child's calls on the inherited and on new
/// connections still stop at their time limit, also in a grandchild, after the child's ticker
/// went idle, when the parent forked while another thread was inside a call, and in
/// `multiprocessing` workers started with 'fork'. Each child is killed (and the case failed)
/// after 20 s.
#[test]
fn time_limits_fire_in_forked_children() {
    let finished = python_helper("fork_host.py", Duration::from_secs(180));
    assert!(finished.stdout.contains("child: new connection: time limit"), "{}", finished.stdout);
}

// ---------------------------------------------------------------------------------------------
// 9. Small native stacks

/// Runaway recursion, as in the issue.
const DEEP: &str = "function f(n) { return n ? f(n - 1) + 1 : 0 } f(1e6)";

/// The deepest `f(n)` of [`DEEP`] that fits the guest's stack, found on a thread with a big
/// stack (where the guest always runs on the thread's own stack).
fn deepest_recursion(conn: &Connection) -> u64 {
    let fits = |n: u64| {
        let sql = format!("SELECT js_eval('function f(n) {{ return n ? f(n - 1) + 1 : 0 }} f({n})')");
        match conn.query_row(&sql, [], |r| r.get::<_, Value>(0)) {
            Ok(value) => {
                assert_eq!(value, Value::Integer(n as i64));
                true
            }
            Err(e) => {
                assert!(e.to_string().contains("stack overflow"), "f({n}): {e}");
                false
            }
        }
    };
    let (mut fit, mut overflow) = (1, 1_000_000);
    assert!(fits(fit) && !fits(overflow));
    while overflow - fit > 1 {
        let mid = (fit + overflow) / 2;
        if fits(mid) {
            fit = mid;
        } else {
            overflow = mid;
        }
    }
    fit
}

/// Every call of the small-stack cases, on one connection of the calling thread: runaway
/// recursion (through js_eval, with a host call or an allocation at every level, and through a
/// stored scalar plugin) is a "stack overflow" error; recursion reaches `depth`, the deepest level
/// the guest reaches on a thread with room, which needs more stack than the thread has; limits
/// hit deep in the recursion (time, memory,
/// `sqlite3_interrupt`) are reported as themselves; ordinary calls answer.
fn small_stack_cases(label: &str, depth: u64) {
    let conn = open();
    value(&conn, "SELECT js_config('time_limit_ms', 300), js_config('memory_limit_mb', 32)");
    conn.execute_batch(
        "SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source) VALUES
           ('deep', 'scalar', 'function main(n){ function f(n){return n ? f(n-1)+1 : 0} return f(n) }');",
    )
    .unwrap();
    let js = |script: &str| format!("SELECT js_eval('{}')", script.replace('\'', "''"));
    let errors = [
        (js(DEEP), "js_eval: stack overflow"),
        (js("function f(n) { Date.now(); Math.random(); return n ? f(n - 1) + 1 : 0 } f(1e6)"), "js_eval: stack overflow"),
        (js("function f(n) { const a = new Array(100).fill(n); return n ? f(n - 1) + a.length : 0 } f(1e6)"), "js_eval: stack overflow"),
        (js("function f(n) { console.log('level', n); return n ? f(n - 1) + 1 : 0 } f(1e6)"), "js_eval: stack overflow"),
        ("SELECT deep(1000000)".to_owned(), "deep: stack overflow"),
        (js("function f(n) { if (n === 0) for (;;) {} return f(n - 1) + 1 } f(200)"), "js_eval: time limit of 300 ms exceeded"),
        (
            js("function f(n) { if (n === 0) { const a = []; for (;;) a.push(new Array(1e5).fill(1)) } return f(n - 1) + 1 } f(200)"),
            "js_eval: memory limit of 32 MiB exceeded",
        ),
    ];
    for (sql, expected) in &errors {
        let message = error_of(&conn, sql);
        assert!(message.starts_with(expected), "{label}: {sql}: {message}");
        assert_eq!(value(&conn, "SELECT js_eval('6 * 7')"), Value::Integer(42), "{label}: after {sql}");
    }
    // The guest gets its whole stack: recursion as deep as on a thread with room to spare (far
    // more than this thread's whole stack could hold), and not one level more.
    assert_eq!(deepest_recursion(&conn), depth, "{label}");
    let partway = depth * 3 / 4;
    assert_eq!(value(&conn, &format!("SELECT deep({partway})")), Value::Integer(partway as i64), "{label}");
    assert_eq!(value(&conn, "SELECT deep(10)"), Value::Integer(10), "{label}");
    assert_eq!(value(&conn, &js("JSON.stringify([1, [2, [3]]])")), Value::Text("[1,[2,[3]]]".into()));
    // An interrupt deep in the recursion (rusqlite's SQLite has sqlite3_is_interrupted).
    value(&conn, "SELECT js_config('time_limit_ms', 60000)");
    let handle = conn.get_interrupt_handle();
    let interrupter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        handle.interrupt();
    });
    let message = error_of(&conn, &js("function f(n) { if (n === 0) for (;;) {} return f(n - 1) + 1 } f(200)"));
    interrupter.join().unwrap();
    assert!(message.contains("interrupted"), "{label}: {message}");
    assert_eq!(value(&conn, "SELECT js_eval('6 * 7')"), Value::Integer(42), "{label}: after the interrupt");
    println!("{label}: {} errors as expected, the deepest f(n) is f({depth}) here too", errors.len());
}

/// Uses about `bytes` of the current thread's stack, then runs `f`.
fn with_stack_used<R>(bytes: usize, f: impl FnOnce() -> R) -> R {
    const FRAME: usize = 16 * 1024;
    if bytes < FRAME {
        return f();
    }
    let frame = std::hint::black_box([0u8; FRAME]);
    let r = with_stack_used(bytes - FRAME, f);
    std::hint::black_box(&frame);
    r
}

/// The body of [`small_native_stacks_never_crash_the_process`], run in a child process of its
/// own, because what it guards against is the death of the process.
#[test]
#[ignore = "run in a child process by small_native_stacks_never_crash_the_process"]
fn small_native_stack_cases() {
    let depth = deepest_recursion(&open());
    println!("the guest's deepest f(n) on a thread with room: f({depth})");
    let mut threads: Vec<(String, thread::JoinHandle<()>)> = Vec::new();
    for kib in [256, 128] {
        let label = format!("a thread with a {kib} KiB stack");
        let name = label.clone();
        let handle = thread::Builder::new().stack_size(kib * 1024).spawn(move || small_stack_cases(&name, depth)).unwrap();
        threads.push((label, handle));
    }
    // A thread with a big stack, most of which is already used by the host's own frames.
    let label = "a 4 MiB thread with 3.7 MiB of its stack used".to_owned();
    let name = label.clone();
    let handle = thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(move || with_stack_used(3_700 * 1024, || small_stack_cases(&name, depth)))
        .unwrap();
    threads.push((label, handle));
    for (label, handle) in threads {
        handle.join().unwrap_or_else(|_| panic!("{label}: the cases failed"));
    }
    println!("SMALL STACK CASES PASSED");
}

/// Rust threads with 256 KiB and 128 KiB of stack, and one with little of its stack left, make
/// calls whose guest recursion needs more stack than they have: each gets its "stack overflow"
/// error or its result, and the process lives on.
#[test]
fn small_native_stacks_never_crash_the_process() {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", "small_native_stack_cases", "--include-ignored", "--nocapture", "--test-threads=1"]);
    let finished = run_bounded(command, Duration::from_secs(300));
    println!("{}{}", finished.stdout, finished.stderr);
    finished.assert_success("the small-stack cases' process");
    assert!(finished.stdout.contains("SMALL STACK CASES PASSED"), "{}", finished.stdout);
}

/// `tests/stack_host.py`: Python threads made with `threading.stack_size(256 KiB)` and 128 KiB
/// get "stack overflow" errors from js_eval and a stored plugin, and results from ordinary calls.
#[test]
fn small_python_thread_stacks_never_crash_python() {
    python_helper("stack_host.py", Duration::from_secs(120));
}

/// The sqlite3 shell whose main thread has only 256 KiB (and 128 KiB) of stack (`ulimit -s`):
/// runaway recursion is an error message, and the shell goes on to the next statement.
#[test]
fn the_sqlite3_shell_with_a_small_stack_limit_survives_deep_recursion() {
    for kib in [256, 128] {
        let load = format!(".load {}", extension_path());
        let shell = |sql: &str, stdin_sql: Option<&str>| {
            let mut command = Command::new("bash");
            let script = match stdin_sql {
                None => format!("ulimit -s {kib} && exec /usr/bin/sqlite3 :memory: -cmd \"$1\" \"$2\""),
                Some(_) => format!("ulimit -s {kib} && printf '%s\\n' \"$2\" | exec /usr/bin/sqlite3 :memory: -cmd \"$1\""),
            };
            command.arg("-c").arg(script).arg("bash").arg(&load).arg(stdin_sql.unwrap_or(sql));
            run_bounded(command, Duration::from_secs(60))
        };
        // One failing statement as an argument: an error and status 1, not a signal.
        let sql = format!("SELECT js_eval('{DEEP}');");
        let finished = shell(&sql, None);
        assert_eq!(finished.status.signal(), None, "ulimit -s {kib}: the shell crashed: {}", finished.stderr);
        assert_eq!(finished.status.code(), Some(1), "ulimit -s {kib}: {}", finished.stderr);
        assert!(finished.stderr.contains("js_eval: stack overflow"), "ulimit -s {kib}: {}", finished.stderr);
        // A script: the overflow, a stored plugin's overflow, then ordinary calls.
        let script = format!(
            "SELECT js_eval('{DEEP}');
             SELECT js_plugins_init();
             INSERT INTO js_plugins(name, kind, source) VALUES ('deep', 'scalar', 'function main(n){{ function f(n){{return n ? f(n-1)+1 : 0}} return f(n) }}');
             SELECT deep(1000000);
             SELECT deep(100);
             SELECT js_eval('6 * 7');"
        );
        let finished = shell("", Some(&script));
        assert_eq!(finished.status.signal(), None, "ulimit -s {kib}: the shell crashed: {}", finished.stderr);
        assert!(finished.stderr.contains("js_eval: stack overflow"), "ulimit -s {kib}: {}", finished.stderr);
        assert!(finished.stderr.contains("deep: stack overflow"), "ulimit -s {kib}: {}", finished.stderr);
        // (js_plugins_init()'s own row first.)
        let lines: Vec<&str> = finished.stdout.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines.ends_with(&["100", "42"]), "ulimit -s {kib}: stdout {:?}, stderr {}", finished.stdout, finished.stderr);
        println!("ulimit -s {kib}: {}", finished.stderr.trim());
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Math.random across calls

/// The guest's `Math.random`: xorshift64* seeded with splitmix64 of the host's seed (see
/// guest/src/init.rs), modelled here so that the test can mount the attack of the issue.
mod model {
    pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    const MULTIPLIER: u64 = 0x2545_F491_4F6C_DD1D;

    pub fn splitmix64(seed: u64) -> u64 {
        let mut z = seed.wrapping_add(GOLDEN);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration).
    pub fn inverse(a: u64) -> u64 {
        let mut x = a;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        }
        x
    }

    /// Undoes `x ^= x >> shift`.
    fn unshift_right(mut x: u64, shift: u32) -> u64 {
        let mut s = shift;
        while s < 64 {
            x ^= x >> s;
            s *= 2;
        }
        x
    }

    fn unshift_left(mut x: u64, shift: u32) -> u64 {
        let mut s = shift;
        while s < 64 {
            x ^= x << s;
            s *= 2;
        }
        x
    }

    pub fn unsplitmix64(mut z: u64) -> u64 {
        z = unshift_right(z, 31).wrapping_mul(inverse(0x94D0_49BB_1331_11EB));
        z = unshift_right(z, 27).wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9));
        unshift_right(z, 30).wrapping_sub(GOLDEN)
    }

    pub fn step(mut x: u64) -> u64 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x
    }

    fn unstep(mut x: u64) -> u64 {
        x = unshift_right(x, 27);
        x = unshift_left(x, 25);
        unshift_right(x, 12)
    }

    /// The 53 bits of one draw (`Math.random() * 2^53`) from state `x`.
    pub fn output(x: u64) -> u64 {
        x.wrapping_mul(MULTIPLIER) >> 11
    }

    /// The first three draws of a call seeded with `seed`.
    pub fn draws(seed: u64) -> [u64; 3] {
        let x0 = splitmix64(seed) | 1;
        let (x1, x2, x3) = (step(x0), step(step(x0)), step(step(step(x0))));
        [output(x1), output(x2), output(x3)]
    }

    /// The attacker's first move: the seeds that explain a call's first three draws (the state
    /// after a draw is its 53 bits and 11 unknown ones; the next draw tells which). Two seeds
    /// map to each state, as the guest sets the state's lowest bit.
    pub fn recover_seeds(draws: [u64; 3]) -> Vec<u64> {
        let inverse_multiplier = inverse(MULTIPLIER);
        let mut seeds = Vec::new();
        for low in 0..1u64 << 11 {
            let x1 = ((draws[0] << 11) | low).wrapping_mul(inverse_multiplier);
            if output(step(x1)) == draws[1] && output(step(step(x1))) == draws[2] {
                let x0 = unstep(x1);
                seeds.extend([unsplitmix64(x0), unsplitmix64(x0 ^ 1)]);
            }
        }
        seeds.retain(|&seed| draws == self::draws(seed));
        seeds
    }

    /// Whether `b - a` is `k` steps of a counter that adds [`GOLDEN`] per call, for any `k`
    /// within a million calls either way: how the old seeds of any two calls were related.
    pub fn counter_related(a: u64, b: u64) -> bool {
        let k = b.wrapping_sub(a).wrapping_mul(inverse(GOLDEN)) as i64;
        k.unsigned_abs() <= 1_000_000
    }
}

/// The test's attack works: against seeds from a counter (the old scheme), it recovers each
/// call's seed from its draws and finds the counter relation between any two calls.
#[test]
fn the_seed_attack_breaks_counter_seeds() {
    let start = 0x1234_5678_9ABC_DEF0u64;
    let seeds: Vec<u64> = (0..20u64).map(|i| start.wrapping_add(i.wrapping_mul(model::GOLDEN))).collect();
    for (i, pair) in seeds.windows(2).enumerate() {
        let recovered = model::recover_seeds(model::draws(pair[0]));
        assert!(recovered.contains(&pair[0]), "call {i}: {recovered:x?}");
        // The next call's draws follow from this one's ...
        let next = model::draws(pair[1]);
        assert!(recovered.iter().any(|&s| model::draws(s.wrapping_add(model::GOLDEN)) == next), "call {i}");
        // ... and any later call's seed is a counter step away.
        assert!(recovered.iter().any(|&s| model::counter_related(s, seeds[19])), "call {i}");
    }
    // Seeds that are not counter steps apart are told apart.
    assert!(!model::counter_related(start, start ^ 0x8000_0000_0000_0001));
}

/// The three first draws of one call, as the attacker sees them: `Math.random() * 2^53`, the
/// generator's 53 bits (integers, which JSON carries exactly).
fn draws(conn: &Connection) -> [u64; 3] {
    let sql = "SELECT js_eval('JSON.stringify([Math.random(), Math.random(), Math.random()].map(x => x * 2 ** 53))')";
    let json = match value(conn, sql) {
        Value::Text(json) => json,
        other => panic!("{other:?}"),
    };
    let bits: Vec<u64> = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}: not 53-bit draws"));
    [bits[0], bits[1], bits[2]]
}

/// The attack of the issue against the extension: a script can recover its own call's seed from
/// three draws (the generator is fast, not cryptographic, as in browsers), but the seeds of
/// other calls, on the same connection and on another one, bear no relation to it: no call's
/// seed is a counter step from another's, consecutive calls show no fixed difference, and two
/// connections' draws differ.
#[test]
fn math_random_seeds_are_unrelated_across_calls_and_connections() {
    let (a, b) = (open(), open());
    let mut seeds: Vec<Vec<u64>> = Vec::new();
    let mut firsts: Vec<(String, [u64; 3])> = Vec::new();
    for i in 0..40 {
        let (name, conn) = if i % 2 == 0 { ("a", &a) } else { ("b", &b) };
        let draws = draws(conn);
        let recovered = model::recover_seeds(draws);
        assert!(
            !recovered.is_empty(),
            "call {i}: no seed explains the draws {draws:?}: has guest/src/init.rs's generator changed? (update the model)"
        );
        seeds.push(recovered);
        firsts.push((format!("call {i} on connection {name}"), draws));
    }
    // The two connections' (and every call's) draws differ.
    for (i, (x, dx)) in firsts.iter().enumerate() {
        for (y, dy) in &firsts[i + 1..] {
            assert_ne!(dx, dy, "{x} and {y} drew the same numbers");
        }
    }
    // No two calls' seeds are related by the old counter.
    for (i, si) in seeds.iter().enumerate() {
        for (j, sj) in seeds.iter().enumerate().skip(i + 1) {
            for (&x, &y) in si.iter().flat_map(|x| sj.iter().map(move |y| (x, y))) {
                assert!(!model::counter_related(x, y), "calls {i} and {j}: seeds {x:#x} and {y:#x} are counter steps apart");
            }
        }
    }
    // No fixed difference between consecutive calls' seeds.
    let differences: Vec<u64> = seeds.windows(2).map(|w| w[1][0].wrapping_sub(w[0][0])).collect();
    let mut distinct = differences.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), differences.len(), "consecutive seeds repeat a difference: {differences:x?}");
}
