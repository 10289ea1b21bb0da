//! js_eval's results: the seed computation against independent ones, the SQL value mapping,
//! inputs of every SQL type, isolation between calls, and what the sandbox does not offer.

use jsbox_tests::*;
use rusqlite::types::Value;

const SEED_GLIBC_FIELDS: f64 = 38.34097141536927;

fn real(v: Value) -> f64 {
    match v {
        Value::Real(f) => f,
        Value::Integer(i) => i as f64,
        other => panic!("expected a number, got {other:?}"),
    }
}

#[test]
fn seed_fixture_has_260_features() {
    let conn = open();
    assert_eq!(eval(&conn, "data.features.length", seed_fixture()).unwrap(), Value::Integer(260));
}

#[test]
fn seed_track_length_matches_glibc_and_native_rust() {
    let conn = open();
    let fields = real(eval(&conn, &seed_script(), seed_fixture()).unwrap());
    assert!(rel_diff(fields, SEED_GLIBC_FIELDS) < 1e-5, "{fields} vs {SEED_GLIBC_FIELDS}");
    let tracks = tracks(&seed_fixture());
    assert_eq!(tracks.len(), 1);
    let native = cff_length(&tracks[0].1);
    assert!(rel_diff(fields, native) < 1e-5, "{fields} vs native {native}");
    assert_eq!(format!("{fields:.3}"), format!("{SEED_GLIBC_FIELDS:.3}"));
}

#[test]
fn fixture_tracks_match_native_rust_per_track() {
    let conn = open_patient();
    let fixture = tracks_fixture();
    let tracks = tracks(&fixture);
    assert!(tracks.len() >= 3, "the fixture has several tracks");
    let script = format!("{}\n;data.features = data.features.filter(f => f.properties.track_fid === FID); calculate(data)", seed_script());
    for (fid, points) in &tracks {
        let native = cff_length(points);
        let js = real(eval(&conn, &script.replace("FID", &fid.to_string()), fixture.as_str()).unwrap());
        assert!(rel_diff(js, native) < 1e-5, "track {fid}: jsbox {js} vs native {native}");
    }
}

#[test]
fn results_map_to_sql_values() {
    let conn = open();
    let cases: Vec<(&str, Value)> = vec![
        ("1+1", Value::Integer(2)),
        ("2**53", Value::Integer(1 << 53)),
        ("-(2**53)", Value::Integer(-(1 << 53))),
        ("2**53 + 2", Value::Real(9007199254740994.0)),
        ("1.5", Value::Real(1.5)),
        ("-0", Value::Integer(0)),
        ("1/0", Value::Real(f64::INFINITY)),
        ("true", Value::Integer(1)),
        ("false", Value::Integer(0)),
        ("null", Value::Null),
        ("undefined", Value::Null),
        ("'héllo ☃'", Value::Text("héllo ☃".into())),
        ("''", Value::Text(String::new())),
        ("[1, 'a', null]", Value::Text("[1,\"a\",null]".into())),
        ("({a: {b: [1.5]}})", Value::Text("{\"a\":{\"b\":[1.5]}}".into())),
        ("({toJSON() { return undefined }})", Value::Null),
        ("new Uint8Array([1, 2, 255])", Value::Blob(vec![1, 2, 255])),
        ("new Uint16Array([1, 2]).subarray(1)", Value::Blob(vec![2, 0])),
        ("new ArrayBuffer(2)", Value::Blob(vec![0, 0])),
        ("new DataView(new Uint8Array([7, 8, 9]).buffer, 1)", Value::Blob(vec![8, 9])),
        ("2n**62n", Value::Integer(1 << 62)),
        ("-(2n**63n)", Value::Integer(i64::MIN)),
        ("(async () => 42)()", Value::Integer(42)),
        // A lone surrogate cannot be UTF-8: it becomes U+FFFD.
        ("'a\\ud800b'", Value::Text("a\u{FFFD}b".into())),
    ];
    for (script, expected) in cases {
        assert_eq!(eval1(&conn, script).unwrap(), expected, "js_eval({script:?})");
    }
    // NaN has no SQL counterpart; SQLite stores it as NULL.
    assert_eq!(eval1(&conn, "0/0").unwrap(), Value::Null);
}

#[test]
fn objects_come_back_as_json_that_sqlite_reads() {
    let conn = open();
    let got: i64 = conn.query_row("SELECT json_extract(js_eval('({a: {b: [10, 20]}})'), '$.a.b[1]')", [], |r| r.get(0)).unwrap();
    assert_eq!(got, 20);
    let valid: i64 = conn.query_row("SELECT json_valid(js_eval('data', ?1))", [seed_fixture()], |r| r.get(0)).unwrap();
    assert_eq!(valid, 1);
}

#[test]
fn inputs_of_every_sql_type_become_data() {
    let conn = open();
    assert_eq!(eval(&conn, "data", Value::Null).unwrap(), Value::Null);
    assert_eq!(eval(&conn, "typeof data", Value::Null).unwrap(), Value::Text("object".into()));
    assert_eq!(eval(&conn, "data * 2", 21).unwrap(), Value::Integer(42));
    assert_eq!(eval(&conn, "data * 2", 1.25).unwrap(), Value::Real(2.5));
    // Beyond 2^53 an INTEGER arrives as a BigInt, so no precision is lost.
    assert_eq!(eval(&conn, "typeof data", i64::MAX).unwrap(), Value::Text("bigint".into()));
    assert_eq!(eval(&conn, "data", i64::MAX).unwrap(), Value::Integer(i64::MAX));
    assert_eq!(eval(&conn, "data.a", "{\"a\": \"x\"}").unwrap(), Value::Text("x".into()));
    assert_eq!(eval(&conn, "data", "\"just a string\"").unwrap(), Value::Text("just a string".into()));
    assert_eq!(eval(&conn, "data", "3.5").unwrap(), Value::Real(3.5));
    // The same values as JSON.parse gives, also where serde_json alone would refuse the text.
    assert_eq!(eval(&conn, "data", "[1e400, -0, 1.5e-7, \"\\u00e9\"]").unwrap(), Value::Text("[null,0,1.5e-7,\"é\"]".into()));
    assert_eq!(eval(&conn, "data === '\\ud800'", "\"\\ud800\"").unwrap(), Value::Integer(1));
    // A "__proto__" key is an own property, never the object's prototype.
    let proto = "Object.getPrototypeOf(data) === Object.prototype && data.__proto__.polluted";
    assert_eq!(eval(&conn, proto, "{\"__proto__\": {\"polluted\": 7}}").unwrap(), Value::Integer(7));
    // A BLOB holding JSON text (what the shell's readfile() returns) is parsed like TEXT.
    assert_eq!(eval(&conn, "data.length", b"[1,2,3]".to_vec()).unwrap(), Value::Integer(3));
}

/// The transcoder that builds `data` (serde_json straight into QuickJS values, arrays in one
/// piece, object keys through an atom cache) against QuickJS's own `JSON.parse` of the same
/// text, compared by structure: both sides are serialized by the same `JSON.stringify`.
#[test]
fn json_input_builds_what_json_parse_builds() {
    let conn = open();
    let long_key = "k".repeat(100);
    let texts = [
        r#"{"a":[1,[2,{"b":null}],true,false,"s",1.5,-7,2147483648,-2147483649],"k":{},"e":[]}"#.to_owned(),
        r#"[[[[[]]]],[{"x":[{"x":[{"x":1}]}]}],"\u00e9\n\"",{"0":1,"1":2,"10":3,"a":4}]"#.to_owned(),
        // The same keys again and again (the cache), then many distinct and a long one.
        format!("[{}]", (0..500).map(|i| format!(r#"{{"type":"Feature","id":{i},"k{}":{i}}}"#, i % 50)).collect::<Vec<_>>().join(",")),
        format!(r#"{{"{long_key}":1,"{long_key}x":[{{"{long_key}":2}}]}}"#),
        // Doubles that need all 17 digits, where a parser that is only nearly right is off by
        // one unit in the last place.
        "[3.948234964231735e+299,0.30000000000000004,2.2250738585072014e-308,5e-324,1.7976931348623157e308,-151.20009000000002,9007199254740993.0]".to_owned(),
        // Integers beyond 2^53 are numbers, rounded as JSON.parse rounds them (found by
        // tests/fuzz.rs: they arrived as BigInts).
        "[9007199254740992,9007199254740993,-9007199254740993,18446744073709551615,18446744073709551616,123456789012345678901234567890,-0]".to_owned(),
    ];
    for text in &texts {
        let literal = serde_json::to_string(text).unwrap();
        let script = format!("JSON.stringify(data) === JSON.stringify(JSON.parse({literal})) ? 'same' : JSON.stringify(data)");
        assert_eq!(eval(&conn, &script, text.as_str()).unwrap(), Value::Text("same".into()), "input {text}");
    }
    // A syntax error deep inside arrays and objects releases what was built, and the next call
    // on the connection is unaffected.
    let broken = format!("[{}, [1, [2, {{\"a\": [3, oops]}}]]]", texts[0]);
    assert!(eval(&conn, "data", broken.as_str()).unwrap_err().to_string().contains("invalid JSON"));
    assert_eq!(eval(&conn, "data.a[1][1].b", texts[0].as_str()).unwrap(), Value::Null);
}

/// The builder keeps the shapes of the key sequences it has seen alive (guest/src/json.rs), so
/// that objects like the previous ones share them: each object still has exactly its own keys,
/// in its own order, whatever the objects before it had.
#[test]
fn objects_built_from_kept_shapes_keep_their_own_keys() {
    let conn = open_patient();
    let objects = [
        r#"{"a":1,"b":2}"#,
        r#"{"b":3,"a":4}"#,
        r#"{"a":5}"#,
        r#"{"a":6,"b":7,"c":8}"#,
        r#"{"a":9,"a":10}"#,
        r#"{"__proto__":11,"a":12}"#,
        r#"{"1":13,"a":14,"0":15}"#,
        r#"{"a":{"a":{"b":16}},"b":[{"b":17,"a":18}]}"#,
    ];
    // Past what the builder follows: 40 keys in one object, and 3,000 distinct key sequences.
    let wide = format!("{{{}}}", (0..40).map(|i| format!(r#""w{i}":{i}"#)).collect::<Vec<_>>().join(","));
    let many: Vec<String> = (0..3000).map(|i| format!(r#"{{"m{i}":{i},"a":{i}}}"#)).collect();
    let text = format!("[{},{wide},{}]", objects.join(","), many.join(","));
    let literal = serde_json::to_string(&text).unwrap();
    let script = format!(
        "const parsed = JSON.parse({literal});
         const keys = (o) => Object.keys(o).join();
         data.every((o, i) => JSON.stringify(o) === JSON.stringify(parsed[i]) && keys(o) === keys(parsed[i])
           && Object.getPrototypeOf(o) === Object.prototype) && Object.hasOwn(data[5], '__proto__') ? 'same' : JSON.stringify(data)"
    );
    assert_eq!(eval(&conn, &script, text.as_str()).unwrap(), Value::Text("same".into()));

    // Row after row in one aggregate world, where the shapes outlive the rows that made them.
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(
        &conn,
        "key_orders",
        "aggregate",
        "function init() { return []; }
         function step(s, o) { s.push(Object.keys(o).join('.') + '=' + JSON.stringify(o)); return s; }
         function final(s) { return s.join(' '); }",
    )
    .unwrap();
    let rows: Vec<&str> = objects.iter().copied().filter(|o| !o.contains(r#""a":9"#) && !o.contains(r#""1":13"#)).collect();
    let values = rows.iter().map(|o| format!("('{o}')")).collect::<Vec<_>>().join(",");
    let got: String = conn.query_row(&format!("SELECT key_orders(column1) FROM (VALUES {values})"), [], |r| r.get(0)).unwrap();
    // Compact objects without repeated or integer keys: JSON.stringify gives back the text, and
    // the keys are the top-level names in the order written.
    let expected: Vec<String> = rows
        .iter()
        .map(|o| {
            let top: serde_json::Map<String, serde_json::Value> = serde_json::from_str(o).unwrap();
            let mut keys: Vec<(usize, &String)> = top.keys().map(|k| (o.find(&format!("\"{k}\":")).unwrap(), k)).collect();
            keys.sort();
            format!("{}={o}", keys.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>().join("."))
        })
        .collect();
    assert_eq!(got, expected.join(" "));
}

/// An object of 100,000 keys is built in linear time: the shapes kept are for short objects.
#[test]
fn an_object_of_a_hundred_thousand_keys_within_the_default_limits() {
    let conn = open();
    let text = format!("{{{}}}", (0..100_000).map(|i| format!(r#""key{i}":{i}"#)).collect::<Vec<_>>().join(","));
    assert_eq!(eval(&conn, "Object.keys(data).length", text.as_str()).unwrap(), Value::Integer(100_000));
}

#[test]
fn null_and_empty_scripts() {
    let conn = open();
    assert_eq!(conn.query_row("SELECT js_eval(NULL)", [], |r| r.get::<_, Value>(0)).unwrap(), Value::Null);
    assert_eq!(eval(&conn, "", "{}").unwrap(), Value::Null);
    assert_eq!(eval1(&conn, "  // only a comment\n").unwrap(), Value::Null);
}

/// A connection whose calls may take long: the big-input tests must not depend on the machine's
/// speed or load (the default 1 s limit is checked by its own test).
fn open_patient() -> rusqlite::Connection {
    let conn = open();
    conn.query_row("SELECT js_config('time_limit_ms', 60000)", [], |_| Ok(())).unwrap();
    conn
}

#[test]
fn a_ten_megabyte_geojson_input() {
    let conn = open_patient();
    let fixture: serde_json::Value = serde_json::from_str(&tracks_fixture()).unwrap();
    let features = fixture["features"].as_array().unwrap();
    let mut big = fixture.clone();
    let copies = 10_000_000 / tracks_fixture().len() + 1;
    big["features"] = serde_json::Value::Array((0..copies).flat_map(|_| features.iter().cloned()).collect());
    let json = big.to_string();
    assert!(json.len() > 10_000_000, "{} bytes", json.len());
    let script = "data.features.reduce((n, f) => n + f.properties.track_seg_point_id, 0)";
    let expected: i64 = copies as i64 * features.iter().map(|f| f["properties"]["track_seg_point_id"].as_i64().unwrap()).sum::<i64>();
    assert_eq!(eval(&conn, script, json.as_str()).unwrap(), Value::Integer(expected));
}

#[test]
fn a_json_input_beyond_the_memory_limit_is_refused_clearly() {
    let conn = open_patient();
    // ~10 MB of small arrays: more JS objects than 64 MiB holds.
    let item = r#"{"id":1234567,"tags":["x","y","z"],"pos":[151.2,-33.8]}"#;
    let json = format!("[{}]", vec![item; 10_000_000 / item.len()].join(","));
    assert_eq!(eval_error(&conn, "data.length", json.as_str()), "js_eval: memory limit of 64 MiB exceeded");
    assert_usable(&conn);
}

#[test]
fn every_call_sees_a_fresh_world() {
    let conn = open();
    let (set, seen): (i64, String) =
        conn.query_row("SELECT js_eval('globalThis.x = 1'), js_eval('typeof x')", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((set, seen.as_str()), (1, "undefined"));
    eval1(&conn, "Object.prototype.polluted = 'yes'; Array.prototype.map = null; 1").unwrap();
    assert_eq!(eval1(&conn, "({}).polluted").unwrap(), Value::Null);
    assert_eq!(eval1(&conn, "[1, 2].map(x => x * 2)").unwrap(), Value::Text("[2,4]".into()));
}

/// A script is compiled once per connection and its bytecode reused, but each call still runs
/// it in a fresh world; a script that does not compile is reported every time, never cached.
#[test]
fn a_script_run_again_reuses_its_bytecode_in_fresh_worlds() {
    let conn = open();
    let counter = "globalThis.n = (globalThis.n || 0) + 1; n + (typeof data === 'number' ? data : 0)";
    let rows = "WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 3)";
    let mut stmt = conn.prepare(&format!("{rows} SELECT js_eval(?1, value) FROM s")).unwrap();
    let got: Vec<i64> = stmt.query_map([counter], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, [2, 3, 4]);
    let cached =
        |conn: &rusqlite::Connection| -> i64 { conn.query_row("SELECT js_debug() ->> '$.scripts_cached'", [], |r| r.get(0)).unwrap() };
    assert_eq!(cached(&conn), 1);
    for _ in 0..2 {
        let error = eval_error(&conn, "1 +\n(", Value::Null);
        assert!(error.starts_with("js_eval: SyntaxError") && error.contains("line 2"), "{error}");
    }
    assert_eq!(cached(&conn), 1);
    // Another connection compiles for itself.
    assert_eq!(cached(&open()), 0);
}

#[test]
fn math_random_differs_between_calls() {
    let conn = open();
    let draws: Vec<f64> = (0..20).map(|_| real(eval1(&conn, "Math.random()").unwrap())).collect();
    let mut unique = draws.clone();
    unique.sort_by(f64::total_cmp);
    unique.dedup();
    assert_eq!(unique.len(), draws.len(), "Math.random repeated across calls: {draws:?}");
    assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
    let within = eval1(&conn, "new Set(Array.from({length: 100}, Math.random)).size").unwrap();
    assert_eq!(within, Value::Integer(100));
}

#[test]
fn the_sandbox_offers_no_host_access() {
    let conn = open();
    let absent = "[typeof std, typeof os, typeof require, typeof process, typeof fetch, \
                  typeof WebAssembly, typeof XMLHttpRequest].join()";
    let expected = ["undefined"; 7].join(",");
    assert_eq!(eval1(&conn, absent).unwrap(), Value::Text(expected.clone()));
    // The same through eval and the Function constructor.
    assert_eq!(eval1(&conn, &format!("eval({absent:?})")).unwrap(), Value::Text(expected.clone()));
    assert_eq!(eval1(&conn, &format!("new Function('return ' + {absent:?})()")).unwrap(), Value::Text(expected));
    // Reading a file: there is no file system, and only modules of js_modules can be imported.
    let import = "(async () => { try { await import('/etc/passwd'); return 'read' } \
                  catch (e) { return 'refused: ' + e.message } })()";
    assert_eq!(eval1(&conn, import).unwrap(), Value::Text("refused: module '/etc/passwd' is not in js_modules".into()));
}

#[test]
fn the_clock_works() {
    let conn = open();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    let js_ms = real(eval1(&conn, "Date.now()").unwrap());
    assert!((js_ms - now_ms).abs() < 60_000.0, "Date.now() = {js_ms}, host {now_ms}");
    // No finer than a millisecond, even through performance.now() (no timer for side channels).
    // Over 20 ms of busy reading, a 1 ms clock shows ~21 distinct values, a fine one thousands.
    let distinct = "const s = new Set(); const end = Date.now() + 20;
        while (Date.now() < end) s.add(performance.now()); s.size";
    let readings = eval1(&conn, distinct).unwrap();
    assert!(matches!(readings, Value::Integer(n) if n <= 25), "{readings:?} distinct readings in 20 ms");
}

#[test]
fn version_and_debug() {
    let conn = open();
    let version: String = conn.query_row("SELECT js_version()", [], |r| r.get(0)).unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let debug: String = conn.query_row("SELECT js_debug()", [], |r| r.get(0)).unwrap();
    let debug: serde_json::Value = serde_json::from_str(&debug).unwrap();
    assert_eq!(debug["jsbox"], version.as_str());
    assert_eq!(debug["wasmtime"], "48.0.8");
    assert!(debug["quickjs"].as_str().unwrap().starts_with("0."), "{debug}");
    assert_eq!(debug["memory_limit_mb"], 64);
    assert_eq!(debug["time_limit_ms"], 1000);
    assert_eq!(debug["sqlite"], rusqlite::version());
}

#[test]
fn console_output_is_captured_not_printed() {
    let conn = open();
    assert_eq!(eval1(&conn, "console.log('hello', {a: 1}, 2); console.error('oops'); 7").unwrap(), Value::Integer(7));
    let console: String = conn.query_row("SELECT json_extract(js_debug(), '$.last_console')", [], |r| r.get(0)).unwrap();
    assert_eq!(console, "hello {\"a\":1} 2\noops\n");
    // Bounded: a flood keeps only the first few KiB.
    eval1(&conn, "for (let i = 0; i < 100000; i++) console.log('x'.repeat(100)); 1").unwrap();
    let console: String = conn.query_row("SELECT json_extract(js_debug(), '$.last_console')", [], |r| r.get(0)).unwrap();
    assert!(console.len() <= 4100 && console.ends_with('…'), "{} bytes", console.len());
}

#[test]
fn connections_share_nothing() {
    let a = open();
    let b = open();
    eval1(&a, "globalThis.secret = 42").unwrap();
    assert_eq!(eval1(&b, "typeof secret").unwrap(), Value::Text("undefined".into()));
}

#[test]
fn threads_with_their_own_connections() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let conn = open();
                for i in 0..200 {
                    let got = eval(&conn, "data.t * 1000 + data.i", format!("{{\"t\":{t},\"i\":{i}}}")).unwrap();
                    assert_eq!(got, Value::Integer(t * 1000 + i));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn limits_are_set_per_connection_with_js_config() {
    let conn = open();
    let config: String = conn.query_row("SELECT js_config()", [], |r| r.get(0)).unwrap();
    assert_eq!(
        config,
        r#"{"connection_memory_mb":512,"deterministic":0,"locked":0,"memory_limit_mb":64,"plugins":1,"step_limit":100,"time_limit_ms":1000}"#
    );
    assert_eq!(conn.query_row("SELECT js_config('time_limit_ms', 100)", [], |r| r.get::<_, i64>(0)).unwrap(), 100);
    assert_eq!(conn.query_row("SELECT js_config('time_limit_ms')", [], |r| r.get::<_, i64>(0)).unwrap(), 100);
    let started = std::time::Instant::now();
    assert_eq!(eval_error(&conn, "for (;;) {}", Value::Null), "js_eval: time limit of 100 ms exceeded");
    assert!(started.elapsed() < std::time::Duration::from_millis(900), "{:?}", started.elapsed());
    conn.query_row("SELECT js_config('memory_limit_mb', 16)", [], |_| Ok(())).unwrap();
    assert_eq!(eval_error(&conn, "new ArrayBuffer(20 * 1024 * 1024)", Value::Null), "js_eval: memory limit of 16 MiB exceeded");
    assert_eq!(eval1(&conn, "new ArrayBuffer(8 * 1024 * 1024).byteLength").unwrap(), Value::Integer(8 << 20));
    let debug: String = conn.query_row("SELECT js_debug()", [], |r| r.get(0)).unwrap();
    assert!(debug.contains(r#""memory_limit_mb":16"#) && debug.contains(r#""time_limit_ms":100"#), "{debug}");
    // Other connections keep their own limits.
    assert_eq!(open().query_row("SELECT js_config()", [], |r| r.get::<_, String>(0)).unwrap(), config);
    // Out of range, unknown, or mistyped settings are refused.
    let err = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, Value>(0)).unwrap_err().to_string();
    assert_eq!(err("SELECT js_config('time_limit_ms', 0)"), "js_config: time_limit_ms must be between 10 and 3600000 ms, not 0");
    assert_eq!(err("SELECT js_config('memory_limit_mb', 100000)"), "js_config: memory_limit_mb must be between 8 and 4096 MiB, not 100000");
    assert_eq!(
        err("SELECT js_config('stack', 1)"),
        "js_config: unknown setting \"stack\"; settings: memory_limit_mb, time_limit_ms, deterministic, step_limit, connection_memory_mb, plugins, locked"
    );
    assert_eq!(err("SELECT js_config('time_limit_ms', '5s')"), "js_config: the setting's value must be INTEGER, not TEXT");
    assert_usable(&conn);
}
