//! Hostile scripts, plugins and inputs: each ends in a clear SQL error or a bounded
//! result, within its limit, and the connection, the process and the data are untouched after
//! it. Each case runs on a fresh connection with small limits (500 ms, 32 MiB); its outcome and
//! time are printed (`cargo test --test hostile -- --nocapture`) for the record.

use std::time::{Duration, Instant};

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

const TIME_LIMIT_MS: u64 = 500;
const MEMORY_LIMIT_MB: u64 = 32;

/// What a case must end in.
enum Expect {
    /// An error whose message contains one of these.
    Error(&'static [&'static str]),
    /// This value.
    Value(Value),
}

struct Case {
    class: &'static str,
    /// Run before the timed statement (to build a big input).
    setup: &'static str,
    sql: String,
    expect: Expect,
}

fn case(class: &'static str, sql: impl Into<String>, expect: Expect) -> Case {
    Case { class, setup: "", sql: sql.into(), expect }
}

fn js(script: &str) -> String {
    format!("SELECT js_eval('{}')", script.replace('\'', "''"))
}

const TIME: Expect = Expect::Error(&["time limit of 500 ms exceeded"]);
const MEMORY: Expect = Expect::Error(&["memory limit of 32 MiB exceeded"]);
const STACK: Expect = Expect::Error(&["stack overflow"]);

/// A connection with the suite's limits and two hostile plugins stored.
fn connection() -> Connection {
    let conn = open();
    conn.query_row(
        &format!("SELECT js_config('time_limit_ms', {TIME_LIMIT_MS}), js_config('memory_limit_mb', {MEMORY_LIMIT_MB})"),
        [],
        |_| Ok(()),
    )
    .unwrap();
    conn.execute_batch(
        "SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source) VALUES
           ('spin', 'aggregate', 'function init() { return 0 } function step(s) { for (;;) {} } function final(s) { return s }'),
           ('hoard', 'aggregate', 'const kept = []; function init() { return 0 }
              function step(s) { for (;;) kept.push(new Array(1e5).fill(s)) } function final(s) { return s }'),
           ('leaky', 'aggregate', 'var seen = 0; function init() { return 0 }
              function step(s, x) { seen += 1; globalThis.marks = (globalThis.marks || 0) + 1; return s + x }
              function final(s) { return seen * 1000 + s }');
         CREATE TABLE t(g, x); INSERT INTO t VALUES (1, 1), (1, 2), (2, 3), (2, 4), (2, 5);",
    )
    .unwrap();
    conn
}

fn cases() -> Vec<Case> {
    use Expect::{Error, Value as Is};
    let nested_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    vec![
        // CPU
        case("cpu", js("while (true) {}"), TIME),
        case("cpu", js("/^(a+)+$/.test('a'.repeat(40) + 'b')"), TIME),
        case("cpu", js("Array(1e9).join()"), Error(&["time limit", "memory limit", "RangeError"])),
        case("cpu", "SELECT spin(x) FROM t", Error(&["spin: time limit of 500 ms exceeded"])),
        case("cpu", js("({toJSON() { for (;;) {} }})"), TIME),
        // Memory
        case("memory", js("let a = []; while (true) a.push(new Array(1e5).fill(1))"), MEMORY),
        case("memory", js("'x'.repeat(2 ** 30)"), Error(&["memory limit", "RangeError: invalid string length"])),
        case("memory", js("let o = {}; for (;;) o = {o}"), MEMORY),
        case("memory", js("const b = []; for (;;) b.push(new ArrayBuffer(1 << 20))"), MEMORY),
        case("memory", "SELECT hoard(x) FROM t", Error(&["hoard: memory limit of 32 MiB exceeded"])),
        // Stack
        case("stack", js("function f() { return f() + 1 } f()"), STACK),
        case("stack", format!("SELECT js_eval('data', '{nested_json}')"), STACK),
        case("stack", js("let a = []; for (let i = 0; i < 100000; i++) a = [a]; a"), Error(&["stack overflow", "RangeError"])),
        // Output
        case("output", js("'x'.repeat(100 * 2 ** 20)"), MEMORY),
        case("output", js("let a = {}; a.self = a; a"), Error(&["TypeError: circular reference"])),
        case("output", js("({toJSON() { throw new Error('tojson') }})"), Error(&["Error: tojson (line 1)"])),
        case("output", js("({get x() { throw new Error('getter') }})"), Error(&["Error: getter (line 1)"])),
        case("output", js("new Proxy({}, {ownKeys() { throw new Error('proxy') }})"), Error(&["Error: proxy (line 1)"])),
        case("output", js("Symbol('s')"), Error(&["cannot return a symbol"])),
        case("output", js("(() => 1)"), Error(&["cannot return a function"])),
        case("output", js("NaN"), Is(Value::Null)),
        case("output", js("-Infinity"), Is(Value::Real(f64::NEG_INFINITY))),
        case("output", js("'a\\ud800b'"), Is(Value::Text("a\u{FFFD}b".into()))),
        // Escape attempts
        case(
            "escape",
            js("[typeof std, typeof os, typeof require, typeof process, typeof WebAssembly, typeof fetch].join()"),
            Is(Value::Text("undefined,undefined,undefined,undefined,undefined,undefined".into())),
        ),
        case("escape", js("import('/etc/passwd')"), Error(&["js_eval:"])),
        case("escape", js("(0, eval)('typeof std') + Function('return typeof os')()"), Is(Value::Text("undefinedundefined".into()))),
        case(
            "escape",
            js("const host = ['std', 'os', 'require', 'process', 'fetch', 'XMLHttpRequest', 'WebAssembly', 'Deno', 'Bun'];
            Object.getOwnPropertyNames(globalThis).filter(n => host.includes(n)).join()"),
            Is(Value::Text(String::new())),
        ),
        // One aggregate group's globals are not seen by the next group: group 1 counts 2 rows
        // (sum 3), group 2 counts 3 rows (sum 12), not 5.
        case(
            "escape",
            "SELECT group_concat(v) FROM (SELECT leaky(x) AS v FROM t GROUP BY g ORDER BY g)",
            Is(Value::Text("2003,3012".into())),
        ),
        case("escape", js("Object.prototype.polluted = 1; Array.prototype.push = null; 1"), Is(Value::Integer(1))),
        // Input
        case("input", "SELECT js_eval('data', '{\"a\": ')", Error(&["invalid JSON input: EOF while parsing"])),
        case("input", "SELECT js_eval('data', CAST(x'7b22ff227d' AS TEXT))", Error(&["not valid UTF-8"])),
        case("input", "SELECT js_eval(x'ff')", Error(&["js_eval:"])),
        case("input", "SELECT js_eval(NULL, NULL)", Is(Value::Null)),
        case("input", "SELECT js_eval('data', NULL)", Is(Value::Null)),
        Case {
            class: "input",
            setup: "CREATE TEMP TABLE big AS SELECT '[' || replace(hex(zeroblob(50000000)), '00', '1,') || '1]' AS j",
            sql: "SELECT js_eval('data.length', j) FROM big".into(),
            expect: MEMORY,
        },
    ]
}

#[test]
fn hostile_scripts_and_inputs_end_in_clear_errors_within_their_limits() {
    let mut failures = Vec::new();
    let mut resident_after_first = None;
    for case in cases() {
        let conn = connection();
        conn.execute_batch(case.setup).unwrap();
        let started = Instant::now();
        let outcome = conn.query_row(&case.sql, [], |r| r.get::<_, Value>(0));
        let took = started.elapsed();
        let shown: String = case.sql.chars().take(70).collect();
        let report = match &outcome {
            Ok(value) => format!("{value:?}"),
            Err(e) => e.to_string(),
        };
        println!("{:<7} {:>6} ms  {:<72} -> {}", case.class, took.as_millis(), shown, report.chars().take(100).collect::<String>());
        let ok = match (&case.expect, &outcome) {
            (Expect::Error(any), Err(e)) => any.iter().any(|part| e.to_string().contains(part)),
            (Expect::Value(expected), Ok(value)) => value == expected,
            _ => false,
        };
        if !ok {
            failures.push(format!("{shown}: got {report}"));
        }
        // Within twice the time limit, whatever the case (allocating until the memory limit
        // included), and the connection answers afterwards.
        if took > Duration::from_millis(2 * TIME_LIMIT_MS) {
            failures.push(format!("{shown}: took {took:?}"));
        }
        assert_usable(&conn);
        let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 5, "the data is untouched");
        // Nothing a call did is seen by the next call.
        let clean = js("[({}).polluted, typeof [].push].join()");
        assert_eq!(conn.query_row(&clean, [], |r| r.get::<_, Value>(0)).unwrap(), Value::Text(",function".into()));
        drop(conn);
        resident_after_first.get_or_insert_with(resident_kib);
    }
    // The sandboxes' memory went back: after cases that each filled 32 MiB, the process holds
    // about what it held after the first one.
    let (first, last) = (resident_after_first.unwrap(), resident_kib());
    assert!(first > 0, "no resident memory figure from /proc/self/status");
    println!("resident memory after the first case {} MiB, after all {} MiB", first / 1024, last / 1024);
    assert!(last < first + 16 * 1024, "resident memory grew from {first} KiB to {last} KiB");
    assert!(failures.is_empty(), "{} hostile cases misbehaved:\n{}", failures.len(), failures.join("\n"));
}
