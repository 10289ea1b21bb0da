//! Every error class of js_eval: the message names the function and the cause, and the same
//! connection answers `js_eval('1+1') = 2` right after.

use std::time::{Duration, Instant};

use jsbox_tests::*;
use rusqlite::types::Value;

/// Runs a failing call and checks its message, then that the connection still works.
fn check(script: &str, json: Value, expected: &str) {
    let conn = open();
    let message = eval_error(&conn, script, json);
    assert!(message.contains(expected), "js_eval({script:?}): got {message:?}, expected {expected:?}");
    assert!(message.starts_with("js_eval: "), "{message:?} does not name the function");
    assert_usable(&conn);
}

#[test]
fn exceptions_name_type_message_and_line() {
    check("let a = 1;\nlet b = 2;\nnosuch + 1", Value::Null, "js_eval: ReferenceError: nosuch is not defined (line 3)");
    check("function f() {\n  null.x\n}\nf()", Value::Null, "js_eval: TypeError: cannot read property 'x' of null (line 2)");
    check("throw new RangeError('custom')", Value::Null, "js_eval: RangeError: custom (line 1)");
    check("x = ", Value::Null, "js_eval: SyntaxError: unexpected token in expression: '' (line 1)");
    check("throw 42", Value::Null, "js_eval: uncaught exception: 42");
    check("throw {toString() { throw 1 }}", Value::Null, "js_eval: uncaught exception: (a value that cannot be converted to a string)");
    check("(async () => { throw new TypeError('late') })()", Value::Null, "js_eval: TypeError: late (line 1)");
}

#[test]
fn unsupported_results() {
    check("(function () {})", Value::Null, "js_eval: cannot return a function as a SQL value");
    check("Symbol('s')", Value::Null, "js_eval: cannot return a symbol as a SQL value");
    check("let a = {}; a.self = a; a", Value::Null, "js_eval: TypeError: circular reference");
    check("2n ** 64n", Value::Null, "js_eval: BigInt 18446744073709551616 does not fit in a 64-bit INTEGER");
    check("new Promise(() => {})", Value::Null, "js_eval: the script returned a Promise that never settles");
    check("({toJSON() { throw new Error('no') }})", Value::Null, "js_eval: Error: no (line 1)");
}

#[test]
fn time_limit() {
    let conn = open();
    let started = Instant::now();
    let message = eval_error(&conn, "while (true) {}", Value::Null);
    let took = started.elapsed();
    assert_eq!(message, "js_eval: time limit of 1000 ms exceeded");
    assert!(took < Duration::from_secs(2), "stopped after {took:?}");
    assert_usable(&conn);
}

#[test]
fn memory_limit() {
    check("let a = []; while (true) a.push(new Array(100000).fill(1))", Value::Null, "js_eval: memory limit of 64 MiB exceeded");
    check("new ArrayBuffer(100 * 1024 * 1024)", Value::Null, "js_eval: memory limit of 64 MiB exceeded");
    check("'x'.repeat(2 ** 29)", Value::Null, "js_eval:");
}

#[test]
fn out_of_memory_inside_quickjs_names_the_limit() {
    // QuickJS's own allocator failing (not a growth wasmtime refused in the host's view of the
    // call) used to read "uncaught exception: [uninitialized]".
    check("'\\u2026'.repeat(4e6).normalize('NFKD').length", Value::Null, "js_eval: memory limit of 64 MiB exceeded");
    let conn = open();
    conn.query_row("SELECT js_config('memory_limit_mb', 32)", [], |_| Ok(())).unwrap();
    for script in [
        "'\\u2026'.repeat(4e6).normalize('NFKD').length",
        "JSON.stringify(Array(3e6).fill('ab'))",
        "new Array(1e7).fill(0).map(String).length",
    ] {
        assert_eq!(eval_error(&conn, script, Value::Null), "js_eval: memory limit of 32 MiB exceeded", "{script}");
    }
    assert_usable(&conn);
}

#[test]
fn the_last_console_is_the_last_calls_even_when_it_failed() {
    let conn = open();
    let last_console =
        |conn: &rusqlite::Connection| -> String { conn.query_row("SELECT js_debug() ->> '$.last_console'", [], |r| r.get(0)).unwrap() };
    eval1(&conn, "console.log('first'); 1").unwrap();
    assert_eq!(last_console(&conn), "first\n");
    eval1(&conn, "console.log('second'); nosuch").unwrap_err();
    assert_eq!(
        last_console(&conn),
        "second\nUncaught ReferenceError: nosuch is not defined\n    at <eval> (script:1:24)\n",
        "a script that threw shows its own output, then the error with its stack"
    );
    conn.query_row("SELECT js_config('time_limit_ms', 50)", [], |_| Ok(())).unwrap();
    eval1(&conn, "console.log('third'); while (true) {}").unwrap_err();
    assert_eq!(last_console(&conn), "", "a call stopped by a limit shows none, never the previous call's");
}

#[test]
fn stack_overflow() {
    check("function f() { return f() + 1 } f()", Value::Null, "js_eval: stack overflow");
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check("data", Value::Text(nested), "js_eval: stack overflow");
}

/// Kinds of runaway recursion, as functions of their depth `n`.
const RECURSIONS: [&str; 9] = [
    "function f(n) { return n == 0 ? 0 : 1 + f(n - 1) } f(N)",
    "function f(n) { return n == 0 ? 0 : 1 + [n].map(x => f(x - 1))[0] } f(N)",
    "const o = { get x() { return this.n-- > 0 ? this.x + 1 : 0 }, n: N }; o.x",
    "function f(n) { return n == 0 ? 0 : 1 + f.call(null, n - 1) } f(N)",
    "function f(n, a, b, c, d) { let x1 = 1, x2 = 2, x3 = 3, x4 = 4; return n == 0 ? 0 : 1 + f(n - 1, x1, x2, x3, x4) } f(N)",
    "class A { constructor(n) { this.c = n == 0 ? null : new A(n - 1) } } new A(N) && 1",
    "function f(n) { return n == 0 ? 0 : 1 + (() => f(n - 1))() } f(N)",
    "function f(n) { return n == 0 ? 0 : 1 + Reflect.apply(f, null, [n - 1]) } f(N)",
    "function f(n) { return n == 0 ? 0 : 1 + [0].reduce(() => f(n - 1), 0) } f(N)",
];

#[test]
fn runaway_recursion_is_a_range_error_the_script_can_catch() {
    let conn = open();
    for recursion in RECURSIONS {
        let caught = format!("try {{ {} }} catch (e) {{ e instanceof RangeError && e.message }}", recursion.replace('N', "1e6"));
        assert_eq!(eval1(&conn, &caught).unwrap(), Value::Text("Maximum call stack size exceeded".into()), "{recursion}");
        // The sandbox goes on.
        assert_usable(&conn);
    }
    // Ordinary depths work: a plain recursion 900 levels deep, the others 250.
    assert_eq!(eval1(&conn, &RECURSIONS[0].replace('N', "900")).unwrap(), Value::Integer(900));
    for recursion in &RECURSIONS[1..] {
        assert_eq!(
            eval1(&conn, &recursion.replace('N', "250")).unwrap(),
            Value::Integer(if recursion.contains("new A") { 1 } else { 250 }),
            "{recursion}"
        );
    }
    // Not caught: the error says what it is.
    check(
        &RECURSIONS[0].replace('N', "1e6"),
        Value::Null,
        "js_eval: stack overflow: RangeError: Maximum call stack size exceeded (line 1)",
    );
}

#[test]
fn invalid_json_input() {
    check("data", Value::Text("{bad".into()), "js_eval: invalid JSON input: key must be a string at line 1 column 2");
    check("data", Value::Text("".into()), "js_eval: invalid JSON input: EOF while parsing a value at line 1 column 0");
    check("data", Value::Text("[1,\n 2,\n x]".into()), "js_eval: invalid JSON input: expected value at line 3 column 2");
    check("data", Value::Text("[1,]".into()), "js_eval: invalid JSON input:");
    check("data", Value::Text("{\"a\": 1} trailing".into()), "js_eval: invalid JSON input:");
}

#[test]
fn invalid_utf8() {
    let conn = open();
    let message = conn.query_row("SELECT js_eval('data', CAST(x'41ff42' AS TEXT))", [], |r| r.get::<_, Value>(0)).unwrap_err().to_string();
    assert_eq!(message, "js_eval: the JSON input is not valid UTF-8 (invalid byte at offset 1)");
    let message = conn.query_row("SELECT js_eval(CAST(x'31c0' AS TEXT))", [], |r| r.get::<_, Value>(0)).unwrap_err().to_string();
    assert_eq!(message, "js_eval: the script is not valid UTF-8 (invalid byte at offset 1)");
    assert_usable(&conn);
}

#[test]
fn wrong_argument_types() {
    let conn = open();
    let message = conn.query_row("SELECT js_eval(42)", [], |r| r.get::<_, Value>(0)).unwrap_err().to_string();
    assert_eq!(message, "js_eval: the script must be TEXT, not INTEGER");
    let message = conn.query_row("SELECT js_eval('1', 2, 3)", [], |r| r.get::<_, Value>(0)).unwrap_err().to_string();
    assert!(message.contains("wrong number of arguments to function js_eval()"), "{message}");
    let message = eval_error(&conn, "'a\0b'", Value::Null);
    assert_eq!(message, "js_eval: script contains a NUL character");
    assert_usable(&conn);
}

#[test]
fn an_error_mid_statement_leaves_earlier_rows_and_the_data_intact() {
    let conn = open();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);").unwrap();
    let err = conn.execute("UPDATE t SET x = js_eval('if (data == 2) throw new Error(\"two\"); data * 10', x)", []).unwrap_err();
    assert_eq!(err.to_string(), "js_eval: Error: two (line 1)");
    // The statement failed as a whole: no half-written rows.
    let xs: Vec<i64> =
        conn.prepare("SELECT x FROM t ORDER BY rowid").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(xs, vec![1, 2, 3]);
    assert_usable(&conn);
}

/// `sqlite3_interrupt()` (Ctrl-C in the shell) stops a running script or plugin within a tick
/// of the epoch thread, with SQLite's own interrupt error, long before the time limit; the
/// connection stays usable. rusqlite's bundled SQLite (3.53) has `sqlite3_is_interrupted`.
#[test]
fn an_interrupt_stops_a_running_call() {
    let conn = open();
    conn.query_row("SELECT js_config('time_limit_ms', 60000)", [], |_| Ok(())).unwrap();
    let available: String = conn.query_row("SELECT js_debug() ->> '$.interrupt'", [], |r| r.get(0)).unwrap();
    assert_eq!(available, "available");
    conn.execute_batch(
        "SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source) VALUES ('spin', 'aggregate',
           'function init() { return 0; } function step(s) { for (;;) {} } function final(s) { return s; }');",
    )
    .unwrap();
    for query in ["SELECT js_eval('while (true) {}')", "SELECT spin(1)"] {
        let handle = conn.get_interrupt_handle();
        let interrupter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            handle.interrupt();
        });
        let started = Instant::now();
        let err = conn.query_row(query, [], |r| r.get::<_, Value>(0)).unwrap_err();
        let elapsed = started.elapsed();
        interrupter.join().unwrap();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::OperationInterrupted), "{query}: {err}");
        assert!(err.to_string().contains("interrupted"), "{query}: {err}");
        assert!(elapsed < Duration::from_secs(5), "{query}: stopped after {elapsed:?}, not at the interrupt");
        assert_usable(&conn);
    }
}
