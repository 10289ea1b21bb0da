//! Eight threads, each with its own connection, making thousands of calls at once, good and
//! hostile mixed: every good result is this thread's own (no cross-talk between
//! connections or calls), every hostile call fails with its own error, nothing crashes.
//! `JSBOX_CONCURRENCY_CALLS` sets the calls per thread (default 10,000: 80,000 calls, ~3 s).

use std::thread;

use jsbox_tests::*;
use rusqlite::types::Value;

const THREADS: usize = 8;

fn calls_per_thread() -> usize {
    std::env::var("JSBOX_CONCURRENCY_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// What call `i` of thread `t` runs, and what it must give.
fn call(t: usize, i: usize) -> (String, String, Result<Value, &'static str>) {
    match i % 100 {
        // A thrown exception.
        13 => ("throw new Error('thread ' + data.t)".into(), format!("{{\"t\": {t}}}"), Err("Error: thread")),
        // Unbounded recursion.
        37 => ("function f() { return f() + 1 } f()".into(), "null".into(), Err("stack overflow")),
        // Memory, up to the connection's 16 MiB limit.
        61 => ("new ArrayBuffer(64 << 20)".into(), "null".into(), Err("memory limit of 16 MiB")),
        // Time, up to the connection's 200 ms limit (once per thread: it takes that long). The
        // limit is wall-clock time, so it is generous enough that a good call preempted among 8
        // busy threads on 2 cores never reaches it.
        89 if i == 89 => ("for (;;) {}".into(), "null".into(), Err("time limit of 200 ms")),
        // A good call whose answer only this thread and this call can give; it also leaves a
        // global behind, which no later call may see.
        _ => (
            "const seen = typeof leftover; globalThis.leftover = data; seen === 'undefined' ? data.t * 1000000 + data.i : -1".into(),
            format!("{{\"t\": {t}, \"i\": {i}}}"),
            Ok(Value::Integer((t * 1_000_000 + i) as i64)),
        ),
    }
}

#[test]
fn eight_threads_mixed_good_and_hostile_calls() {
    let calls = calls_per_thread();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let conn = open();
                conn.query_row("SELECT js_config('memory_limit_mb', 16), js_config('time_limit_ms', 200)", [], |_| Ok(())).unwrap();
                let mut good = 0;
                for i in 0..calls {
                    let (script, input, expected) = call(t, i);
                    let got = eval(&conn, &script, input.as_str());
                    match (&expected, &got) {
                        (Ok(value), Ok(got)) => {
                            assert_eq!(got, value, "thread {t} call {i}");
                            good += 1;
                        }
                        (Err(part), Err(e)) => assert!(e.to_string().contains(part), "thread {t} call {i}: {e}"),
                        _ => panic!("thread {t} call {i}: expected {expected:?}, got {got:?}"),
                    }
                }
                good
            })
        })
        .collect();
    let good: usize = handles.into_iter().map(|h| h.join().expect("a thread panicked")).sum();
    assert!(good >= THREADS * calls * 95 / 100, "only {good} good calls");
}
