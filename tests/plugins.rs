//! Stored plugins: every kind over the fixture's tracks against independent computations,
//! windows row by row, empty groups and NULL rows, edits seen by other connections, deleted and
//! broken plugins, errors mid-group, names, and persistence across reopening the file.

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

/// How far one leg's length (in fields) may differ between QuickJS-in-wasm and native Rust: the
/// seed formula takes acos of values within 1e-12 of 1, which amplifies musl's and glibc's
/// last-bit differences in sin/cos to ~1e-5 fields (1.4 mm) on 5-15 m legs (musl's libm in the guest, glibc's natively).
const LEG_TOLERANCE: f64 = 2e-5;

fn plugin_source(file: &str) -> String {
    std::fs::read_to_string(repo_root().join("sql/plugins").join(file)).unwrap()
}

/// A connection with the fixture loaded into track_points (by `sql/tracks.sql`, as the demo
/// does) and the example plugins stored.
fn with_tracks(conn: &Connection) {
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    add_readfile(conn);
    conn.execute_batch(&std::fs::read_to_string(repo_root().join("sql/tracks.sql")).unwrap()).unwrap();
    for (name, kind, file) in [
        ("track_cff", "window", "track_cff.js"),
        ("elevation_gain", "aggregate", "elevation_gain.js"),
        ("bbox", "aggregate", "bbox.js"),
        ("speed_kmh", "window", "speed_kmh.js"),
        ("convert_length", "scalar", "convert_length.js"),
    ] {
        store_plugin(conn, name, kind, &plugin_source(file)).unwrap();
    }
}

/// A table-valued `generate_series(first, last)` substitute: rusqlite's bundled SQLite lacks the
/// series extension.
fn series(first: i64, last: i64) -> String {
    format!("(WITH RECURSIVE s(value) AS (SELECT {first} UNION ALL SELECT value + 1 FROM s WHERE value < {last}) SELECT value FROM s)")
}

fn f64s(conn: &Connection, sql: &str) -> Vec<f64> {
    conn.prepare(sql).unwrap().query_map([], |r| r.get::<_, f64>(0)).unwrap().map(Result::unwrap).collect()
}

fn values(conn: &Connection, sql: &str) -> Vec<Value> {
    conn.prepare(sql).unwrap().query_map([], |r| r.get::<_, Value>(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn aggregate_track_lengths_equal_native_rust_per_track() {
    let conn = open();
    with_tracks(&conn);
    let got = f64s(
        &conn,
        "SELECT track_cff(feature) FROM (SELECT * FROM track_points ORDER BY track_fid, seq) GROUP BY track_fid ORDER BY track_fid",
    );
    let tracks = tracks(&tracks_fixture());
    assert_eq!(got.len(), tracks.len());
    for (js, (fid, points)) in got.iter().zip(&tracks) {
        let native = cff_length(points);
        assert!(rel_diff(*js, native) < 1e-5, "track {fid}: {js} vs {native}");
    }
    // The same through js_agg.
    let generic = f64s(&conn, "SELECT js_agg('track_cff', feature) FROM (SELECT * FROM track_points ORDER BY track_fid, seq) GROUP BY track_fid ORDER BY track_fid");
    assert_eq!(generic, got);
}

#[test]
fn elevation_gain_and_bbox_equal_sql() {
    let conn = open();
    with_tracks(&conn);
    let js = f64s(
        &conn,
        "SELECT elevation_gain(ele) FROM (SELECT * FROM track_points ORDER BY track_fid, seq) GROUP BY track_fid ORDER BY track_fid",
    );
    let sql = f64s(&conn, "SELECT total(max(ele - prev, 0)) FROM (SELECT track_fid, ele, lag(ele) OVER (PARTITION BY track_fid ORDER BY seq) AS prev FROM track_points) GROUP BY track_fid ORDER BY track_fid");
    assert_eq!(js.len(), 5);
    for (a, b) in js.iter().zip(&sql) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let boxes: Vec<(String, f64, f64, f64, f64)> = conn
        .prepare("SELECT json_extract(b, '$.type'), json_extract(b, '$.coordinates[0][0][0]'), min_lon, json_extract(b, '$.coordinates[0][2][1]'), max_lat \
                  FROM (SELECT bbox(lon, lat) AS b, min(lon) AS min_lon, max(lat) AS max_lat FROM track_points GROUP BY track_fid)")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(boxes.len(), 5);
    for (kind, w, min_lon, n, max_lat) in boxes {
        assert_eq!(kind, "Polygon");
        assert_eq!((w, n), (min_lon, max_lat));
    }
}

#[test]
fn window_running_length_row_by_row() {
    let conn = open();
    with_tracks(&conn);
    let rows: Vec<(i64, f64)> = conn
        .prepare(
            "SELECT track_fid, track_cff(feature) OVER (PARTITION BY track_fid ORDER BY seq) FROM track_points ORDER BY track_fid, seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let tracks = tracks(&tracks_fixture());
    let mut i = 0;
    for (fid, points) in &tracks {
        for n in 1..=points.len() {
            let (row_fid, js) = rows[i];
            assert_eq!(row_fid, *fid);
            let native = cff_length(&points[..n]);
            let legs = (n - 1) as f64;
            assert!((js - native).abs() <= LEG_TOLERANCE * legs, "track {fid} point {n}: {js} vs {native}");
            i += 1;
        }
    }
    assert_eq!(i, rows.len());
    // A sliding frame exercises inverse(): each row covers the last 3 legs.
    let sliding = f64s(&conn, "SELECT track_cff(feature) OVER (PARTITION BY track_fid ORDER BY seq ROWS 3 PRECEDING) FROM track_points WHERE track_fid = 2 ORDER BY seq");
    let points = &tracks.iter().find(|(fid, _)| *fid == 2).unwrap().1;
    for (n, js) in sliding.iter().enumerate() {
        let native = cff_length(&points[n.saturating_sub(3)..=n]);
        assert!((js - native).abs() <= LEG_TOLERANCE * 3.0, "row {n}: {js} vs {native}");
    }
}

#[test]
fn window_speed_between_consecutive_points() {
    let conn = open();
    with_tracks(&conn);
    let speeds = values(&conn, "SELECT speed_kmh(feature) OVER (PARTITION BY track_fid ORDER BY seq ROWS 1 PRECEDING) FROM track_points WHERE track_fid = 0 ORDER BY seq LIMIT 50");
    assert_eq!(speeds[0], Value::Null, "no speed at the first point");
    let fixture: serde_json::Value = serde_json::from_str(&tracks_fixture()).unwrap();
    let features = fixture["features"].as_array().unwrap();
    let time = |f: &serde_json::Value| {
        let t = f["properties"]["time"].as_str().unwrap(); // "2023-01-22 00:00:56+00"
        let hms: Vec<f64> = t[11..19].split(':').map(|x| x.parse().unwrap()).collect();
        hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
    };
    for n in 1..50 {
        let (a, b) = (&features[n - 1], &features[n]);
        let c = |f: &serde_json::Value, i: usize| f["geometry"]["coordinates"][i].as_f64().unwrap();
        let meters = distance(c(b, 1), c(b, 0), c(a, 1), c(a, 0));
        let expected = meters / (time(b) - time(a)) * 3.6;
        match &speeds[n] {
            // One short leg: the acos amplification (~1e-5 fields, 1.4 mm, per leg) is up to a
            // few 1e-4 of a 5-15 m leg.
            Value::Real(kmh) => assert!(rel_diff(*kmh, expected) < 1e-3, "point {n}: {kmh} vs {expected}"),
            Value::Integer(kmh) => assert!(rel_diff(*kmh as f64, expected) < 1e-3, "point {n}: {kmh} vs {expected}"),
            other => panic!("point {n}: {other:?}"),
        }
    }
}

#[test]
fn scalar_plugins_and_js_call() {
    let conn = open();
    with_tracks(&conn);
    let got: (f64, f64) = conn
        .query_row("SELECT convert_length(1, 'cff', 'm'), js_call('convert_length', 3, 'mi', 'km')", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(got.0, 140.0);
    assert!((got.1 - 4.828032).abs() < 1e-12);
    assert_eq!(values(&conn, "SELECT convert_length(NULL, 'm', 'km')"), vec![Value::Null]);
    assert_eq!(error_of(&conn, "SELECT convert_length(1, 'parsec', 'm')"), "convert_length: RangeError: unknown unit parsec (line 9)");
}

#[test]
fn arguments_arrive_typed() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "describe", "scalar", "function main(...args) { return args.map(a => a instanceof Uint8Array ? 'bytes:' + a.length : typeof a === 'bigint' ? 'bigint:' + a : typeof a + ':' + JSON.stringify(a)).join(' ') }").unwrap();
    let got = values(&conn, "SELECT describe(1, 2.5, NULL, 'text', '{\"a\": [1]}', '[1, 2]', '{not json', x'0102', 9007199254740993)");
    assert_eq!(
        got,
        vec![Value::Text(
            "number:1 number:2.5 object:null string:\"text\" object:{\"a\":[1]} object:[1,2] string:\"{not json\" bytes:2 bigint:9007199254740993".into()
        )]
    );
}

/// A scalar call whose arguments are a few numbers passes them, and a number result, as the
/// call's parameters and result (docs/abi.md, `jsbox_plugin_main_numbers`); every argument and
/// result must come out as through the encoded path, which a call with one more argument, a
/// string, takes.
#[test]
fn number_arguments_and_results_cross_as_encoded_ones_do() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(
        &conn,
        "seen",
        "scalar",
        "function main(...args) { return args.filter(a => typeof a !== 'string').map(a => typeof a + ':' + String(a) + (Object.is(a, -0) ? ':neg' : '')).join(' ') }",
    )
    .unwrap();
    store_plugin(
        &conn,
        "give",
        "scalar",
        "async function later(x) { return x * 2 }
         function main(what, x) {
           switch (what) {
             case 1: return x; case 2: return -0; case 3: return 0.1 + 0.2; case 4: return 2 ** 53; case 5: return 2 ** 53 + 2;
             case 6: return 1 / 0; case 7: return NaN; case 8: return String(x); case 9: return { x }; case 10: return [x, x];
             case 11: return null; case 12: return undefined; case 13: return true; case 14: return 10n ** 20n;
             case 15: console.log('x is', x); return x; case 16: return later(x);
             case 17: throw new RangeError('no ' + x); case 18: return new Uint8Array([x]); case 19: return 2 ** 31;
           }
         }",
    )
    .unwrap();
    let arguments =
        ["0", "1", "-1", "2147483647", "-2147483648", "2147483648", "9007199254740993", "1.5", "-0.0", "1e308", "9e999", "-9e999", "0.1"];
    for args in
        [vec![arguments[0]], arguments[..4].to_vec(), arguments[4..8].to_vec(), arguments[8..12].to_vec(), arguments[9..].to_vec(), vec![]]
    {
        let list = args.join(", ");
        let fast = values(&conn, &format!("SELECT seen({list})"));
        let encoded = values(&conn, &format!("SELECT seen({list}{}'slow')", if args.is_empty() { "" } else { ", " }));
        assert_eq!(fast, encoded, "seen({list})");
    }
    assert_eq!(
        values(&conn, "SELECT seen(1, 2.5, -0.0, 2147483648)"),
        vec![Value::Text("number:1 number:2.5 number:0:neg number:2147483648".into())]
    );
    for what in 1..=19 {
        for x in ["7", "2.5", "-3"] {
            let sql = |extra: &str| format!("SELECT typeof(v), quote(v) FROM (SELECT give({what}, {x}{extra}) AS v)");
            let through = |sql: String| -> Result<(String, String), String> {
                conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| e.to_string())
            };
            assert_eq!(through(sql("")), through(sql(", 'slow'")), "give({what}, {x})");
        }
    }
    for (sql, expected) in [
        ("SELECT give(1, 7)", Value::Integer(7)),
        ("SELECT give(2, 0)", Value::Integer(0)),
        ("SELECT give(5, 0)", Value::Real(9007199254740994.0)),
        ("SELECT give(7, 0)", Value::Null),
    ] {
        assert_eq!(values(&conn, sql), vec![expected], "{sql}");
    }
    assert_eq!(error_of(&conn, "SELECT give(17, 4)"), "give: RangeError: no 4 (line 8)");
    let console: String = conn.query_row("SELECT give(15, 4), js_debug() ->> '$.plugins.console.give'", [], |r| r.get(1)).unwrap();
    assert_eq!(console, "x is 4\n");
}

/// TEXT holding a JSON object or array arrives parsed, in the language `JSON.parse` accepts,
/// as `js_eval`'s input does: where serde_json refuses a text (a number beyond f64's range, a
/// lone surrogate in an escape), QuickJS's parser decides (found by the attack on round two).
#[test]
fn json_arguments_accept_what_json_parse_accepts() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "shown", "scalar", "function main(o) { return typeof o + ':' + JSON.stringify(o) }").unwrap();
    for text in [r#"[1e400]"#, r#"{"\ud800":1}"#, r#"["\udc00"]"#, r#"{"a":[1,{"b":null}]}"#, r#"[-1e-400, 1.5]"#] {
        let through_plugin = conn.query_row("SELECT shown(?1)", [text], |r| r.get::<_, Value>(0)).unwrap();
        let through_eval =
            conn.query_row("SELECT js_eval('typeof data + \":\" + JSON.stringify(data)', ?1)", [text], |r| r.get::<_, Value>(0)).unwrap();
        assert_eq!(through_plugin, through_eval, "{text}");
        assert!(matches!(&through_plugin, Value::Text(t) if t.starts_with("object:")), "{text}: {through_plugin:?}");
    }
    // Text that is JSON for neither parser stays a string.
    assert_eq!(values(&conn, "SELECT shown('{not json')"), vec![Value::Text("string:\"{not json\"".into())]);
}

#[test]
fn empty_groups_and_null_rows() {
    let conn = open();
    with_tracks(&conn);
    // No row at all: final(init()) of a fresh world.
    assert_eq!(values(&conn, "SELECT elevation_gain(ele) FROM track_points WHERE 0"), vec![Value::Integer(0)]);
    assert_eq!(values(&conn, "SELECT bbox(lon, lat) FROM track_points WHERE 0"), vec![Value::Null]);
    assert_eq!(values(&conn, "SELECT track_cff(feature) FROM track_points WHERE 0"), vec![Value::Integer(0)]);
    // NULL rows are skipped by the plugins.
    let with_nulls = f64s(
        &conn,
        "SELECT elevation_gain(CASE WHEN seq % 2 THEN ele END) FROM (SELECT * FROM track_points WHERE track_fid = 1 ORDER BY seq)",
    );
    let sql = f64s(&conn, "SELECT total(max(ele - prev, 0)) FROM (SELECT ele, lag(ele) OVER (ORDER BY seq) AS prev FROM track_points WHERE track_fid = 1 AND seq % 2)");
    assert!((with_nulls[0] - sql[0]).abs() < 1e-6, "{with_nulls:?} vs {sql:?}");
    assert_eq!(values(&conn, "SELECT js_agg('elevation_gain', ele) FROM track_points WHERE 0"), vec![Value::Null]);
}

#[test]
fn groups_never_share_state() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "leak", "aggregate", "function init() { return 0 }\nfunction step(s, x) { globalThis.seen = (globalThis.seen || 0) + 1; return s + x }\nfunction final(s) { return s * 1000 + globalThis.seen }").unwrap();
    let got = values(&conn, &format!("SELECT leak(value) FROM {} GROUP BY value % 2 ORDER BY value % 2", series(1, 6)));
    // Each group counts only its own 3 rows: (2+4+6)*1000+3 and (1+3+5)*1000+3.
    assert_eq!(got, vec![Value::Integer(12003), Value::Integer(9003)]);
}

#[test]
fn a_scalar_plugin_keeps_its_world_per_connection_until_an_error() {
    let path = temp_db("kept-world");
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "counter", "scalar", "let n = 0;\nfunction main(fail) { n++; if (fail) throw new Error('asked to'); return n }")
        .unwrap();
    assert_eq!(
        values(&conn, &format!("SELECT counter(0) FROM {}", series(1, 3))),
        vec![Value::Integer(1), Value::Integer(2), Value::Integer(3)]
    );
    assert_eq!(values(&conn, "SELECT counter(0)"), vec![Value::Integer(4)]);
    assert_eq!(error_of(&conn, "SELECT counter(1)"), "counter: Error: asked to (line 2)");
    assert_eq!(values(&conn, "SELECT counter(0)"), vec![Value::Integer(1)], "a fresh world after the error");
    // Another connection to the same database has a world of its own: it counts from 1, and
    // this connection's count goes on where it was.
    let other = Connection::open(&path).unwrap();
    load(&other);
    assert_eq!(values(&other, "SELECT counter(0)"), vec![Value::Integer(1)], "the other connection's own world");
    assert_eq!(values(&other, "SELECT counter(0)"), vec![Value::Integer(2)]);
    assert_eq!(values(&conn, "SELECT counter(0)"), vec![Value::Integer(2)], "this connection's world, untouched");
    drop((conn, other));
    remove_db(&path);
}

#[test]
fn a_plugin_that_throws_in_step_fails_the_statement_only() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "picky", "aggregate", "function init() { return 0 }\nfunction step(s, x) {\n  if (x === 3) throw new TypeError('three is not allowed');\n  return s + x\n}\nfunction final(s) { return s }").unwrap();
    assert_eq!(error_of(&conn, &format!("SELECT picky(value) FROM {}", series(1, 5))), "picky: TypeError: three is not allowed (line 3)");
    assert_eq!(values(&conn, &format!("SELECT picky(value) FROM {}", series(4, 6))), vec![Value::Integer(15)]);
    store_plugin(
        &conn,
        "slow",
        "aggregate",
        "function init() { return 0 }\nfunction step(s) { for (;;) {} }\nfunction final(s) { return s }",
    )
    .unwrap();
    assert_eq!(error_of(&conn, "SELECT slow(1)"), "slow: time limit of 1000 ms exceeded");
    assert_usable(&conn);
}

#[test]
fn edits_are_seen_by_this_and_other_connections() {
    let path = temp_db("edits");
    let a = Connection::open(&path).unwrap();
    load(&a);
    let b = Connection::open(&path).unwrap();
    load(&b);
    a.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&a, "version", "scalar", "function main() { return 1 }").unwrap();
    assert_eq!(values(&a, "SELECT version()"), vec![Value::Integer(1)]);
    // b learns of the new plugin by reloading (it was loaded before the row existed)...
    b.query_row("SELECT js_plugins_reload()", [], |_| Ok(())).unwrap();
    assert_eq!(values(&b, "SELECT version()"), vec![Value::Integer(1)]);
    // ...and of an edit without anything: the next statement runs the new source.
    a.execute("UPDATE js_plugins SET source = 'function main() { return 2 }' WHERE name = 'version'", []).unwrap();
    assert_eq!(values(&a, "SELECT version()"), vec![Value::Integer(2)]);
    assert_eq!(values(&b, "SELECT version()"), vec![Value::Integer(2)]);
    // A deleted plugin is a clear error, on both.
    a.execute("DELETE FROM js_plugins WHERE name = 'version'", []).unwrap();
    assert_eq!(error_of(&a, "SELECT version()"), "version: no plugin named version in js_plugins (deleted?)");
    assert_eq!(error_of(&b, "SELECT version()"), "version: no plugin named version in js_plugins (deleted?)");
    drop((a, b));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn plugins_survive_closing_and_reopening_the_file() {
    let path = temp_db("reopen");
    {
        let conn = Connection::open(&path).unwrap();
        load(&conn);
        conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
        store_plugin(&conn, "double", "scalar", "function main(x) { return x * 2 }").unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    load(&conn); // registers the stored plugins at load
    assert_eq!(values(&conn, "SELECT double(21)"), vec![Value::Integer(42)]);
    drop(conn);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn broken_plugins_are_reported_with_their_name() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    // Stored through this connection: the INSERT fails and stores nothing.
    let err = store_plugin(&conn, "broken", "scalar", "function main( {").unwrap_err().to_string();
    assert!(err.starts_with("js_plugins: broken: SyntaxError:"), "{err}");
    let err = store_plugin(&conn, "partial", "aggregate", "function init() {}\nfunction final(s) {}").unwrap_err().to_string();
    assert_eq!(err, "js_plugins: partial: an aggregate plugin must define init, step, final; missing: step");
    let count: i64 = conn.query_row("SELECT count(*) FROM js_plugins", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 0);
    // Stored by a connection without jsbox: reported when first called.
    let path = temp_db("broken");
    {
        let plain = Connection::open(&path).unwrap();
        plain.execute_batch(&std::fs::read_to_string(repo_root().join("sql/schema.sql")).unwrap()).unwrap();
        plain.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('oops', 'scalar', 'function main() { return }}')", []).unwrap();
    }
    {
        // A row whose name would shadow a built-in, stored without jsbox: loading still works.
        let plain = Connection::open(&path).unwrap();
        plain.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('upper', 'scalar', 'function main() { return 1 }')", []).unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    assert_eq!(values(&conn, "SELECT upper('x')"), vec![Value::Text("X".into())], "the built-in is untouched");
    let err = error_of(&conn, "SELECT js_plugins_reload()");
    assert!(err.starts_with("js_plugins_reload: oops: SyntaxError:"), "{err}");
    let err = error_of(&conn, "SELECT oops()");
    assert!(err.starts_with("oops: SyntaxError:") && err.ends_with("(line 1)"), "{err}");
    assert_usable(&conn);
    drop(conn);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn names_are_validated() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    let main = "function main() { return 1 }";
    assert_eq!(
        store_plugin(&conn, "sum", "scalar", main).unwrap_err().to_string(),
        "js_plugins: sum: plugin name sum would shadow the SQL function sum(); choose another name"
    );
    assert_eq!(
        store_plugin(&conn, "json_extract", "scalar", main).unwrap_err().to_string(),
        "js_plugins: json_extract: plugin name json_extract would shadow the SQL function json_extract(); choose another name"
    );
    assert_eq!(
        store_plugin(&conn, "js_thing", "scalar", main).unwrap_err().to_string(),
        "js_plugins: js_thing: plugin name js_thing is reserved: js_ names belong to jsbox"
    );
    assert_eq!(
        store_plugin(&conn, "has space", "scalar", main).unwrap_err().to_string(),
        "js_plugins: has space: plugin name \"has space\" is not an identifier (letters, digits, _)"
    );
    assert_eq!(
        store_plugin(&conn, "x", "table", main).unwrap_err().to_string(),
        "js_plugins: x: unknown kind \"table\"; a plugin is scalar, aggregate or window"
    );
    assert!(store_plugin(&conn, "fine_name2", "scalar", main).is_ok());
    assert_eq!(values(&conn, "SELECT fine_name2()"), vec![Value::Integer(1)]);
}

#[test]
fn js_plugins_functions_without_a_table() {
    let conn = open();
    assert_eq!(
        error_of(&conn, "SELECT js_plugins_reload()"),
        "js_plugins_reload: there is no js_plugins table; js_plugins_init() creates it"
    );
    assert_eq!(error_of(&conn, "SELECT js_call('nothing')"), "nothing: no plugin named nothing in js_plugins (deleted?)");
    assert_eq!(values(&conn, "SELECT js_plugins_init()"), vec![Value::Integer(0)]);
    assert_eq!(values(&conn, "SELECT js_plugins_init()"), vec![Value::Integer(0)], "idempotent");
}

#[test]
fn a_window_over_an_empty_frame_is_final_of_init() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(&conn, "frame_size", "window", "function init() { return 0 }\nfunction step(s) { return s + 1 }\nfunction inverse(s) { return s - 1 }\nfunction final(s) { return s }").unwrap();
    // Frames beyond the partition's end are empty from the first row on.
    let got = values(
        &conn,
        &format!("SELECT frame_size(value) OVER (ORDER BY value ROWS BETWEEN 5 FOLLOWING AND 6 FOLLOWING) FROM {}", series(1, 3)),
    );
    assert_eq!(got, vec![Value::Integer(0); 3]);
    // Frames that empty out after rows were stepped.
    let got = values(
        &conn,
        &format!("SELECT frame_size(value) OVER (ORDER BY value ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING) FROM {}", series(1, 4)),
    );
    assert_eq!(got, vec![Value::Integer(2), Value::Integer(2), Value::Integer(1), Value::Integer(0)]);
}

#[test]
fn js_agg_and_js_call_need_one_plugin_name() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_plugin(
        &conn,
        "a",
        "aggregate",
        "function init() { return 0 }\nfunction step(s, x) { return s + x }\nfunction final(s) { return s }",
    )
    .unwrap();
    store_plugin(
        &conn,
        "b",
        "aggregate",
        "function init() { return 100 }\nfunction step(s, x) { return s + x }\nfunction final(s) { return s }",
    )
    .unwrap();
    assert_eq!(
        error_of(&conn, &format!("SELECT js_agg(CASE WHEN value < 3 THEN 'a' ELSE 'b' END, value) FROM {}", series(1, 5))),
        "js_agg: the plugin name changed within a group, from a to b"
    );
    assert_eq!(values(&conn, &format!("SELECT js_agg('b', value) FROM {}", series(1, 5))), vec![Value::Integer(115)]);
    assert_eq!(error_of(&conn, "SELECT js_agg()"), "js_agg: the first argument must be the plugin's name");
    assert_eq!(error_of(&conn, "SELECT js_call()"), "js_call: the first argument must be the plugin's name");
    assert_eq!(error_of(&conn, "SELECT js_call(7)"), "js_call: the plugin name must be TEXT, not INTEGER");
    assert_eq!(error_of(&conn, "SELECT js_call('a', 1)"), "a: a is an aggregate plugin, not scalar");
}

/// Real GPX data has gaps: rows without a feature, points without a time or without
/// coordinates, missing elevations. The example plugins skip them as SQL aggregates skip NULLs,
/// and a speed that needs a missing value is NULL, as SQL arithmetic on NULL is; checked against
/// the same computation in Rust over the rows that have the values.
#[test]
fn example_plugins_skip_missing_values_as_sql_aggregates_do() {
    let conn = open();
    with_tracks(&conn);
    conn.execute_batch(
        "CREATE TABLE gaps AS SELECT seq, feature, lon, lat, ele FROM track_points WHERE track_fid = 0 AND seq <= 40;
         UPDATE gaps SET feature = NULL, lon = NULL, lat = NULL WHERE seq = 5;
         UPDATE gaps SET feature = json_set(feature, '$.properties.time', json('null')) WHERE seq = 10;
         UPDATE gaps SET feature = json_remove(feature, '$.properties.time') WHERE seq = 11;
         UPDATE gaps SET feature = json_set(feature, '$.geometry', json('null')), lon = NULL, lat = NULL WHERE seq = 15;
         UPDATE gaps SET ele = NULL WHERE seq IN (20, 21);",
    )
    .unwrap();
    struct Row {
        coordinates: Option<(f64, f64)>,
        seconds: Option<f64>,
        ele: Option<f64>,
    }
    let rows: Vec<Row> = conn
        .prepare("SELECT feature, lon, lat, ele FROM gaps ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            let feature: Option<String> = r.get(0)?;
            let seconds = feature.as_deref().and_then(|f| {
                let f: serde_json::Value = serde_json::from_str(f).unwrap();
                let t = f["properties"]["time"].as_str()?.to_owned(); // "2023-01-22 00:00:56+00"
                let hms: Vec<f64> = t[11..19].split(':').map(|x| x.parse().unwrap()).collect();
                Some(hms[0] * 3600.0 + hms[1] * 60.0 + hms[2])
            });
            let (lon, lat): (Option<f64>, Option<f64>) = (r.get(1)?, r.get(2)?);
            Ok(Row { coordinates: lon.zip(lat), seconds, ele: r.get(3)? })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();

    // Length over the points that have coordinates.
    let points: Vec<(f64, f64)> = rows.iter().filter_map(|r| r.coordinates).collect();
    let js = f64s(&conn, "SELECT track_cff(feature) FROM (SELECT * FROM gaps ORDER BY seq)")[0];
    assert!((js - cff_length(&points)).abs() <= LEG_TOLERANCE * points.len() as f64, "{js} vs {}", cff_length(&points));

    // Elevation gain over the elevations there are.
    let eles: Vec<f64> = rows.iter().filter_map(|r| r.ele).collect();
    let gain: f64 = eles.windows(2).map(|w| (w[1] - w[0]).max(0.0)).sum();
    let js = f64s(&conn, "SELECT elevation_gain(ele) FROM (SELECT * FROM gaps ORDER BY seq)")[0];
    assert!((js - gain).abs() < 1e-9, "{js} vs {gain}");

    // The bounding box of the points there are.
    let bbox = values(&conn, "SELECT bbox(lon, lat) FROM gaps");
    let Value::Text(bbox) = &bbox[0] else { panic!("{bbox:?}") };
    let bbox: serde_json::Value = serde_json::from_str(bbox).unwrap();
    let lons = points.iter().map(|p| p.0);
    let lats = points.iter().map(|p| p.1);
    let (w, e) = (lons.clone().fold(f64::INFINITY, f64::min), lons.fold(f64::NEG_INFINITY, f64::max));
    let (south, n) = (lats.clone().fold(f64::INFINITY, f64::min), lats.fold(f64::NEG_INFINITY, f64::max));
    // A GeoJSON Polygon: the ring of the box's corners.
    assert_eq!(bbox["type"], "Polygon");
    assert_eq!(bbox["coordinates"], serde_json::json!([[[w, south], [e, south], [e, n], [w, n], [w, south]]]));

    // Speeds: NULL where a point or the one before it lacks its time or coordinates.
    let speeds = values(&conn, "SELECT speed_kmh(feature) OVER (ORDER BY seq ROWS 1 PRECEDING) FROM gaps ORDER BY seq");
    assert_eq!(speeds.len(), rows.len());
    assert_eq!(speeds[0], Value::Null);
    let mut nulls = 0;
    for n in 1..rows.len() {
        let (a, b) = (&rows[n - 1], &rows[n]);
        match (a.coordinates.zip(a.seconds), b.coordinates.zip(b.seconds)) {
            (Some(((lon0, lat0), t0)), Some(((lon1, lat1), t1))) => {
                let expected = distance(lat1, lon1, lat0, lon0) / (t1 - t0) * 3.6;
                let kmh = match &speeds[n] {
                    Value::Real(kmh) => *kmh,
                    Value::Integer(kmh) => *kmh as f64,
                    other => panic!("row {n}: {other:?}, expected {expected}"),
                };
                assert!(rel_diff(kmh, expected) < 1e-3, "row {n}: {kmh} vs {expected}");
            }
            _ => {
                assert_eq!(speeds[n], Value::Null, "row {n} spans a gap");
                nulls += 1;
            }
        }
    }
    // Rows 5, 10, 11 and 15 and the rows after them: 7 speeds span a gap.
    assert_eq!(nulls, 7);
}

#[test]
fn each_plugin_console_output_of_its_last_call_or_group_is_kept() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    let store = |name: &str, kind: &str, source: &str| {
        conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES (?1, ?2, ?3)", [name, kind, source]).unwrap();
    };
    store("noisy", "scalar", "function main(x) { if (x > 1) console.log('saw', x); return x }");
    store("quiet", "scalar", "function main(x) { return x }");
    store("summed", "aggregate", "function init() { return 0 } function step(s, x) { console.warn('row', x); return s + x } function final(s) { console.log('final', s); return s }");
    let consoles = |conn: &Connection| -> serde_json::Value {
        serde_json::from_str(&conn.query_row("SELECT js_debug() -> '$.plugins.console'", [], |r| r.get::<_, String>(0)).unwrap()).unwrap()
    };
    conn.query_row("SELECT noisy(1), noisy(2), quiet(3), (SELECT summed(value) FROM json_each('[1,2,3]'))", [], |_| Ok(())).unwrap();
    assert_eq!(consoles(&conn), serde_json::json!({ "noisy": "saw 2\n", "summed": "row 1\nrow 2\nrow 3\nfinal 6\n" }));
    // The last call wrote nothing: nothing is shown for it any more.
    conn.query_row("SELECT noisy(1)", [], |_| Ok(())).unwrap();
    assert_eq!(consoles(&conn), serde_json::json!({ "summed": "row 1\nrow 2\nrow 3\nfinal 6\n" }));
    // A plugin that throws keeps what it wrote before.
    store("failing", "scalar", "function main() { console.error('about to fail'); throw new Error('no') }");
    assert_eq!(error_of(&conn, "SELECT failing()"), "failing: Error: no (line 1)");
    assert_eq!(consoles(&conn)["failing"], "about to fail\nUncaught Error: no\n    at main (script:1:61)\n");
    // The stack of an error in a module names the module and its lines.
    conn.execute("INSERT INTO js_modules(name, source) VALUES ('deep', 'export function check(x) {\n  if (x < 0) throw new RangeError(\"negative\")\n  return x\n}')", [])
        .unwrap();
    store("checked", "scalar", "import { check } from 'deep'\nexport function main(x) {\n  return check(x)\n}");
    assert_eq!(error_of(&conn, "SELECT checked(-1)"), "checked: RangeError: negative (module 'deep', line 2)");
    assert_eq!(consoles(&conn)["checked"], "Uncaught RangeError: negative\n    at check (deep:2:24)\n    at main (script:3:16)\n");
}
