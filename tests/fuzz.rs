//! Property-based fuzzing of the SQL surface: random scripts, random JSON and random SQL
//! values through `js_eval` and a stored plugin. Whatever comes in, a call returns a value or an
//! error that names the function, the connection keeps working, and valid JSON arrives as
//! exactly what `JSON.parse` makes of it. `make test` runs proptest's default 256 cases per
//! property; `make fuzz` runs many more (`PROPTEST_CASES`). What it found so far: JSON integers
//! beyond 2^53 arrived as BigInts where `JSON.parse` makes numbers (fixed; the case is in
//! tests/js_eval.rs).

use jsbox_tests::*;
use proptest::prelude::*;
use rusqlite::types::Value;
use rusqlite::Connection;

/// Fragments random scripts are made of: valid and broken JavaScript, hostile bits, and
/// characters the parsers must survive.
const FRAGMENTS: &[&str] = &[
    "1",
    "+",
    "-",
    "*",
    "/",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    ".",
    "=>",
    "=",
    "'",
    "\"",
    "`",
    "data",
    "x",
    "let x = ",
    "const y = 2;",
    "return",
    "function f(a) { return a }",
    "f(1)",
    "new ",
    "Array(3)",
    "Object",
    ".keys(data)",
    "JSON.stringify(",
    "JSON.parse('[1]')",
    "null",
    "undefined",
    "NaN",
    "Infinity",
    "-0",
    "1e308",
    "2n ** 70n",
    "'\\ud800'",
    "'\\u0000'",
    "\u{0}",
    "\u{FFFF}",
    "é",
    "☃",
    "\n",
    "//",
    "/*",
    "*/",
    "throw ",
    "new Error('e')",
    "try {",
    "} catch (e) {}",
    "async ",
    "await ",
    "Promise.resolve(1)",
    ".then(v => v)",
    "Symbol()",
    "Proxy",
    "Reflect",
    "globalThis",
    "eval('1')",
    "Function('return 1')()",
    "import('x')",
    "for (let i = 0; i < 10; i++) ",
    "while (0)",
    "'x'.repeat(1000)",
    "new Uint8Array(4)",
    "new DataView(new ArrayBuffer(2))",
    "Math.random()",
    "Date.now()",
    "console.log(data)",
    "?.",
    "??",
    "...",
    "class A {}",
    "new A()",
    "#p",
    "@",
];

fn script() -> impl Strategy<Value = String> {
    prop_oneof![prop::collection::vec(prop::sample::select(FRAGMENTS), 0..12).prop_map(|parts| parts.join(" ")), any::<String>(),]
}

/// JSON values of every kind, nested.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinities", |f| f.is_finite()).prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any SQL value.
fn sql_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        any::<String>().prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Value::Blob),
        // Text that looks like JSON, valid or not.
        json().prop_map(|j| Value::Text(j.to_string())),
        "[\\[{][a-z0-9\",:\\[\\]{} ]{0,20}".prop_map(Value::Text),
    ]
}

/// One connection per test thread, with a scalar plugin that describes its arguments.
fn with_connection<R>(f: impl FnOnce(&Connection) -> R) -> R {
    thread_local! {
        static CONN: Connection = {
            let conn = open();
            conn.query_row("SELECT js_config('time_limit_ms', 200), js_config('memory_limit_mb', 32)", [], |_| Ok(())).unwrap();
            conn.execute_batch(
                "SELECT js_plugins_init();
                 INSERT INTO js_plugins(name, kind, source) VALUES ('describe', 'scalar',
                   'function main(...args) {
                      return JSON.stringify(args.map(a => a === null ? [\"null\", null]
                        : a instanceof Uint8Array ? [\"bytes\", Array.from(a)]
                        : typeof a === \"bigint\" ? [\"bigint\", String(a)]
                        : [typeof a, a]));
                    }');",
            )
            .unwrap();
            conn
        };
    }
    CONN.with(|conn| f(conn))
}

/// Whether a plugin's argument `arg` arrived as `kind` (`typeof`, or null, bytes, bigint) with
/// `value` (as JSON.stringify wrote it): INTEGER as a number, a BigInt beyond ±2^53; REAL as a
/// number (JSON has no infinities: null); NULL as null; BLOB as a Uint8Array of its bytes; TEXT
/// whose first non-blank character is `{` or `[` parsed when it is JSON, else as the string.
fn arrived_as(arg: &Value, kind: &str, value: &serde_json::Value) -> bool {
    const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;
    match arg {
        Value::Null => kind == "null",
        Value::Integer(i) if (*i as f64).abs() < EXACT_INTEGER_LIMIT => kind == "number" && value.as_f64() == Some(*i as f64),
        Value::Integer(i) => kind == "bigint" && value.as_str() == Some(i.to_string().as_str()),
        // SQLite stores NaN as NULL.
        Value::Real(f) if f.is_nan() => kind == "null",
        Value::Real(f) if f.is_infinite() => kind == "number" && value.is_null(),
        Value::Real(f) => kind == "number" && value.as_f64() == Some(*f),
        Value::Blob(bytes) => {
            kind == "bytes"
                && value.as_array().is_some_and(|got| got.iter().map(|b| b.as_u64()).eq(bytes.iter().map(|b| Some(u64::from(*b)))))
        }
        Value::Text(text) => {
            let looks_like_json = text.trim_start_matches([' ', '\t', '\n', '\r']).starts_with(['{', '[']);
            let as_string = kind == "string" && value.as_str() == Some(text.as_str());
            match (looks_like_json, serde_json::from_str::<serde_json::Value>(text)) {
                (false, _) => as_string,
                (true, Ok(_)) => kind == "object",
                // serde_json refuses a few texts JSON.parse accepts (numbers beyond f64's range).
                (true, Err(_)) => as_string || kind == "object",
            }
        }
    }
}

/// An error from `function`, as every jsbox error is reported.
fn names_function(e: &rusqlite::Error, function: &str) -> bool {
    let message = e.to_string();
    message.starts_with(&format!("{function}: ")) || message == "interrupted"
}

proptest! {
    // Failures are kept as plain tests (tests/js_eval.rs), not as seed files.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_scripts_on_random_inputs(script in script(), input in sql_value()) {
        with_connection(|conn| {
            let got = conn.query_row("SELECT js_eval(?1, ?2)", (&script, &input), |r| r.get::<_, Value>(0));
            if let Err(e) = &got {
                prop_assert!(names_function(e, "js_eval"), "js_eval({script:?}, {input:?}): {e}");
            }
            prop_assert_eq!(eval1(conn, "1+1").unwrap(), Value::Integer(2));
            Ok(())
        })?;
    }

    #[test]
    fn valid_json_arrives_as_json_parse_makes_it(value in json()) {
        with_connection(|conn| {
            let text = value.to_string();
            let literal = serde_json::to_string(&text).unwrap();
            let script = format!("JSON.stringify(data) === JSON.stringify(JSON.parse({literal})) ? 'same' : JSON.stringify(data)");
            let got = eval(conn, &script, text.as_str());
            prop_assert_eq!(got.unwrap(), Value::Text("same".into()), "input {}", text);
            Ok(())
        })?;
    }

    #[test]
    fn any_sql_values_into_a_plugin(args in prop::collection::vec(sql_value(), 0..5)) {
        with_connection(|conn| {
            let placeholders = (1..=args.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT describe({placeholders})");
            let got = conn.query_row(&sql, rusqlite::params_from_iter(args.iter()), |r| r.get::<_, Value>(0));
            match &got {
                // Each argument arrives as the contract says (docs/functions.md, "Stored plugins").
                Ok(Value::Text(described)) => {
                    let described: Vec<(String, serde_json::Value)> = serde_json::from_str(described).unwrap();
                    prop_assert_eq!(described.len(), args.len());
                    for (arg, (kind, value)) in args.iter().zip(&described) {
                        prop_assert!(arrived_as(arg, kind, value), "{arg:?} arrived as {kind} {value}");
                    }
                }
                Ok(other) => prop_assert!(false, "describe gave {other:?}"),
                Err(e) => prop_assert!(names_function(e, "describe"), "describe({args:?}): {e}"),
            }
            Ok(())
        })?;
    }
}
