//! Modules stored in `js_modules`: turf.min.js as published (a UMD bundle) imported by an
//! aggregate plugin and by js_eval, checked against an independent computation; ES modules
//! importing each other; what cannot be imported; errors naming the module and line; edits seen
//! by the plugins that import a module, inside transactions too.

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

fn turf_source() -> String {
    std::fs::read_to_string(repo_root().join("fixtures/vendor/turf/turf.min.js")).unwrap()
}

fn with_modules() -> Connection {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn
}

fn store_module(conn: &Connection, name: &str, kind: &str, source: &str) -> rusqlite::Result<usize> {
    conn.execute("INSERT INTO js_modules(name, kind, source) VALUES (?1, ?2, ?3)", [name, kind, source])
}

/// Turf's great-circle length in kilometers (its `distance`: haversine on a sphere of radius
/// 6371.0088 km), for points `(lon, lat)`.
fn haversine_km(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| {
            let ((lon0, lat0), (lon1, lat1)) = (w[0], w[1]);
            let (dlat, dlon) = ((lat1 - lat0).to_radians(), (lon1 - lon0).to_radians());
            let a = (dlat / 2.0).sin().powi(2) + (dlon / 2.0).sin().powi(2) * lat0.to_radians().cos() * lat1.to_radians().cos();
            2.0 * a.sqrt().atan2((1.0 - a).sqrt()) * 6371.0088
        })
        .sum()
}

const TURF_LENGTH: &str = "import * as turf from 'turf';
export function init() { return []; }
export function step(points, lon, lat) { if (lon !== null && lat !== null) points.push([lon, lat]); return points; }
export function final(points) { return points.length < 2 ? 0 : turf.length(turf.lineString(points), { units: 'kilometers' }); }
";

#[test]
fn turf_as_published_serves_an_aggregate_plugin_and_js_eval() {
    let conn = with_modules();
    store_module(&conn, "turf", "commonjs", &turf_source()).unwrap();
    store_plugin(&conn, "turf_length", "aggregate", TURF_LENGTH).unwrap();
    add_readfile(&conn);
    conn.execute_batch(&std::fs::read_to_string(repo_root().join("sql/tracks.sql")).unwrap()).unwrap();
    let expected = tracks(&tracks_fixture());
    for round in 0..2 {
        let mut stmt = conn
            .prepare("SELECT track_fid, turf_length(lon, lat) FROM (SELECT * FROM track_points ORDER BY track_fid, seq) GROUP BY track_fid")
            .unwrap();
        let lengths: Vec<(i64, f64)> = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(lengths.len(), expected.len());
        for ((fid, km), (want_fid, points)) in lengths.iter().zip(&expected) {
            assert_eq!(fid, want_fid);
            let want = haversine_km(points);
            assert!((km - want).abs() <= want * 1e-12, "round {round}, track {fid}: turf {km} km, haversine {want} km");
        }
    }
    // js_eval imports it too: named exports, and the default export (module.exports).
    let distance = value(&conn, "SELECT js_eval('import { distance } from \"turf\"; export default distance([0, 0], [1, 1])')");
    let Value::Real(km) = distance else { panic!("{distance:?}") };
    let want = haversine_km(&[(0.0, 0.0), (1.0, 1.0)]);
    assert!((km - want).abs() < want * 1e-12, "{km} vs {want}");
    let same = value(
        &conn,
        "SELECT js_eval('import turf, * as named from \"turf\"; export default turf.length === named.length && typeof turf.along')",
    );
    assert_eq!(same, Value::Text("function".into()));
}

#[test]
fn es_modules_import_each_other_by_name_and_relative_path() {
    let conn = with_modules();
    store_module(&conn, "geo/units", "module", "export const KM = 1000;\nexport default function toKm(m) { return m / KM; }").unwrap();
    store_module(
        &conn,
        "geo/length",
        "module",
        "import toKm, { KM } from './units';\nexport function km(m) { return toKm(m); }\nexport const unit = KM;",
    )
    .unwrap();
    store_plugin(&conn, "to_km", "scalar", "import { km } from 'geo/length';\nexport function main(m) { return km(m); }").unwrap();
    assert_eq!(value(&conn, "SELECT to_km(2500)"), Value::Real(2.5));
    assert_eq!(value(&conn, "SELECT js_eval('import { unit } from \"geo/length\"; export default unit * 2')"), Value::Integer(2000));
    // A script without import or export stays a script: its value is its last expression.
    assert_eq!(value(&conn, "SELECT js_eval('const x = 6; x * 7')"), Value::Integer(42));
}

#[test]
fn only_modules_of_the_table_can_be_imported() {
    let conn = with_modules();
    for (script, missing) in [
        ("import fs from 'fs'; export default 1", "fs"),
        ("import x from '/etc/passwd'; export default 1", "/etc/passwd"),
        ("import x from 'node:os'; export default 1", "node:os"),
    ] {
        assert_eq!(eval_error(&conn, script, rusqlite::types::Null), format!("js_eval: module '{missing}' is not in js_modules"));
    }
    assert_eq!(
        eval_error(&conn, "import x from '../up'; export default 1", rusqlite::types::Null),
        "js_eval: ReferenceError: import '../up' from 'script' leads outside the module names"
    );
    // Names and kinds the table refuses (jsbox's check runs before the table's own).
    for name in ["./x", "/abs", ""] {
        let err = store_module(&conn, name, "module", "export const x = 1").unwrap_err().to_string();
        assert_eq!(err, format!("js_modules: module '{name}': a module name has 1 to 255 bytes and does not start with '.' or '/'"));
    }
    let err = store_module(&conn, "x", "script", "var x = 1").unwrap_err().to_string();
    assert_eq!(
        err,
        "js_modules: module 'x' in js_modules: unknown kind \"script\"; a module is 'module' (ES) or 'commonjs' (CommonJS, UMD)"
    );
    // A plugin whose import is missing is refused when stored.
    let err = store_plugin(&conn, "needs", "scalar", "import { f } from 'absent';\nexport function main() { return f(); }").unwrap_err();
    assert_eq!(err.to_string(), "js_plugins: needs: module 'absent' is not in js_modules");
    // CommonJS code cannot require: a bundle carries what it needs.
    let err = store_module(&conn, "cjs", "commonjs", "const fs = require('fs');\nmodule.exports = {};").unwrap_err();
    assert_eq!(
        err.to_string(),
        "js_modules: Error: require('fs'): jsbox modules are imported (bundle the dependency, or store it as an ES module) (module 'cjs', line 1)"
    );
    // Without jsbox's check, the table's own refuses a bad name.
    conn.execute_batch("DROP TRIGGER temp.jsbox_modules_check_insert").unwrap();
    let err = store_module(&conn, "/abs", "module", "export const x = 1").unwrap_err().to_string();
    assert!(err.contains("CHECK constraint failed"), "{err}");
}

#[test]
fn broken_modules_are_named_with_their_line() {
    let conn = with_modules();
    let err = store_module(&conn, "bad", "module", "export const a = 1;\nexport const b = ;").unwrap_err();
    assert_eq!(err.to_string(), "js_modules: SyntaxError: unexpected token in expression: ';' (module 'bad', line 2)");
    store_module(&conn, "thrower", "module", "export function f(x) {\n  if (x > 1) throw new RangeError('too far: ' + x);\n  return x;\n}")
        .unwrap();
    store_plugin(&conn, "checked", "scalar", "import { f } from 'thrower';\nexport function main(x) { return f(x); }").unwrap();
    assert_eq!(value(&conn, "SELECT checked(1)"), Value::Integer(1));
    assert_eq!(error_of(&conn, "SELECT checked(5)"), "checked: RangeError: too far: 5 (module 'thrower', line 2)");
    // A cycle is refused when its last module is stored.
    store_module(&conn, "a", "module", "import { b } from 'b';\nexport const a = 1;").unwrap();
    let err = store_module(&conn, "b", "module", "import { a } from 'a';\nexport const b = 2;").unwrap_err();
    assert_eq!(
        err.to_string(),
        "js_modules: modules import each other in a cycle (b → a → b); jsbox compiles a module after what it imports, so one of them must not import the other"
    );
    // A plugin that does not export its functions is told so.
    let err = store_plugin(&conn, "unexported", "scalar", "import { f } from 'thrower';\nfunction main(x) { return f(x); }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "js_plugins: unexported: a scalar plugin must define main; missing: main (a plugin that imports is a module: export its functions)"
    );
}

#[test]
fn editing_a_module_changes_the_plugins_that_import_it() {
    let dir = temp_db("modules-edit");
    let conn = Connection::open(&dir).unwrap();
    load(&conn);
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    store_module(&conn, "factor", "module", "export const factor = 2;").unwrap();
    store_plugin(&conn, "scaled", "scalar", "import { factor } from 'factor';\nexport function main(x) { return x * factor; }").unwrap();
    store_plugin(
        &conn,
        "scaled_sum",
        "aggregate",
        "import { factor } from 'factor';\nexport function init() { return 0; }\nexport function step(s, x) { return s + x * factor; }\nexport function final(s) { return s; }",
    )
    .unwrap();
    let both = |conn: &Connection| -> (i64, i64) {
        conn.query_row("SELECT scaled(10), (SELECT scaled_sum(value) FROM json_each('[1,2,3]'))", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    assert_eq!(both(&conn), (20, 12));
    conn.execute("UPDATE js_modules SET source = 'export const factor = 3;' WHERE name = 'factor'", []).unwrap();
    assert_eq!(both(&conn), (30, 18));
    // Inside a transaction that rolls back, and after it.
    conn.execute_batch("BEGIN; UPDATE js_modules SET source = 'export const factor = 5;' WHERE name = 'factor';").unwrap();
    assert_eq!(both(&conn), (50, 30));
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(both(&conn), (30, 18));
    // Another connection's edit.
    let other = Connection::open(&dir).unwrap();
    load(&other);
    other.execute("UPDATE js_modules SET source = 'export const factor = 7;' WHERE name = 'factor'", []).unwrap();
    assert_eq!(both(&conn), (70, 42));
    // Deleted: the plugins say what they miss.
    other.execute("DELETE FROM js_modules WHERE name = 'factor'", []).unwrap();
    assert_eq!(error_of(&conn, "SELECT scaled(1)"), "scaled: module 'factor' is not in js_modules");
    drop(other);
    drop(conn);
    remove_db(&dir);
}

#[test]
fn js_modules_from_a_stranger_is_read_as_data_only() {
    let conn = open();
    conn.execute_batch(
        "CREATE TABLE js_plugins(name TEXT PRIMARY KEY, kind TEXT, source TEXT, n_args INTEGER);
         CREATE VIEW js_modules(name, kind, source) AS SELECT 'turf', 'module', 'export const x = 1';",
    )
    .unwrap();
    load(&conn);
    assert_eq!(
        eval_error(&conn, "import { x } from 'turf'; export default x", rusqlite::types::Null),
        "js_eval: js_modules is a view, not an ordinary table; jsbox reads plugins and modules only from a table"
    );
}

#[test]
fn finding_modules_one_by_one_stays_within_one_time_limit() {
    let conn = with_modules();
    for i in 0..10 {
        store_module(&conn, &format!("s{i}"), "module", "export const v = 1").unwrap();
    }
    conn.query_row("SELECT js_config('time_limit_ms', 300)", [], |_| Ok(())).unwrap();
    // Each import is found by a new attempt, which runs the script again from the start.
    let script = "const t = Date.now(); while (Date.now() - t < 100) {} let s = 0; \
                  for (let i = 0; i < 10; i++) s += (await import('s' + i)).v; export default s";
    let started = std::time::Instant::now();
    assert_eq!(eval_error(&conn, script, rusqlite::types::Null), "js_eval: time limit of 300 ms exceeded");
    assert!(started.elapsed() < std::time::Duration::from_millis(1500), "{:?}", started.elapsed());
    // A long name is refused by the guest, not looked up.
    let long = "x".repeat(300);
    assert_eq!(
        eval_error(&conn, &format!("import {{ v }} from '{long}'; export default v"), rusqlite::types::Null),
        "js_eval: ReferenceError: a module name of 300 bytes: names have at most 255"
    );
}

#[test]
fn compiling_a_plugin_that_imports_gives_back_parked_worlds_when_the_budget_is_short() {
    let conn = with_modules();
    conn.query_row("SELECT js_config('connection_memory_mb', 100)", [], |_| Ok(())).unwrap();
    conn.execute_batch("CREATE TABLE g(k, v); INSERT INTO g VALUES (0, 1), (1, 2);").unwrap();
    for name in ["a", "b", "c", "d"] {
        store_module(&conn, &format!("big_{name}"), "module", "export const b = new Uint8Array(28 << 20)").unwrap();
        let plugin = format!(
            "import {{ b }} from 'big_{name}';\nexport function init() {{ return 0 }}\nexport function step(s) {{ return s }}\nexport function final() {{ return b.length }}"
        );
        // Stored (and compiled) after the previous plugins' worlds were parked.
        store_plugin(&conn, &format!("p{name}"), "aggregate", &plugin).unwrap();
        let lengths: Vec<i64> = conn
            .prepare(&format!("SELECT p{name}(v) FROM g GROUP BY k"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lengths, vec![28 << 20; 2], "p{name}");
    }
}
