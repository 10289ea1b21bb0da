//! Deterministic mode (`js_config('deterministic', 1)`): calls limited by steps, not time; a
//! clock that stands still; `Math.random` seeded from the call's code and input, and a plugin's
//! from each row. The same calls give the same results in separate processes with different
//! time zones, and fail at the same step.

use std::process::Command;

use jsbox_tests::*;
use rusqlite::types::Value;
use rusqlite::Connection;

fn deterministic() -> Connection {
    let conn = open();
    conn.query_row("SELECT js_config('deterministic', 1)", [], |_| Ok(())).unwrap();
    conn
}

#[test]
fn the_clock_stands_still_and_random_numbers_follow_the_input() {
    let conn = deterministic();
    assert_eq!(eval1(&conn, "Date.now()").unwrap(), Value::Integer(0));
    assert_eq!(eval1(&conn, "new Date().toISOString()").unwrap(), Value::Text("1970-01-01T00:00:00.000Z".into()));
    // (performance.now() counts from the snapshot's making: it stands still too.)
    assert_eq!(eval1(&conn, "performance.now()").unwrap(), eval1(&conn, "performance.now()").unwrap());
    let random = |script: &str, input: &str| eval(&conn, script, input).unwrap();
    // The same script and input: the same numbers; another input or script: others.
    assert_eq!(random("Math.random()", "[1]"), random("Math.random()", "[1]"));
    assert_ne!(random("Math.random()", "[1]"), random("Math.random()", "[2]"));
    assert_ne!(random("Math.random()", "[1]"), random("Math.random() ", "[1]"));
    // A plugin's: from the plugin and each row.
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES ('noise', 'scalar', 'function main(x) { return Math.random() }')", [])
        .unwrap();
    let (a, b, c): (f64, f64, f64) =
        conn.query_row("SELECT noise(1), noise(2), noise(1)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!(a, c);
    assert_ne!(a, b);
    // Off again: the real clock, fresh seeds.
    conn.query_row("SELECT js_config('deterministic', 0)", [], |_| Ok(())).unwrap();
    assert_eq!(eval1(&conn, "Date.now() > 1.7e12").unwrap(), Value::Integer(1));
    assert_ne!(random("Math.random()", "[1]"), random("Math.random()", "[1]"));
}

#[test]
fn calls_end_at_the_same_step_however_fast_the_machine() {
    let conn = deterministic();
    conn.query_row("SELECT js_config('step_limit', 1)", [], |_| Ok(())).unwrap();
    // One million steps: this loop takes two per iteration.
    assert_eq!(eval1(&conn, "let n = 0; for (let i = 0; i < 450000; i++) n++; n").unwrap(), Value::Integer(450_000));
    let err = eval1(&conn, "let n = 0; for (let i = 0; i < 550000; i++) n++; n").unwrap_err().to_string();
    assert_eq!(err, "js_eval: step limit of 1 million steps exceeded (deterministic mode)");
    // The script cannot catch it, and the connection goes on.
    let err = eval1(&conn, "try { for (;;) {} } catch (e) { 'caught' }").unwrap_err().to_string();
    assert_eq!(err, "js_eval: step limit of 1 million steps exceeded (deterministic mode)");
    assert_usable(&conn);
    // The wall-clock limit is not what ends it: a time limit of 10 ms does not.
    conn.query_row("SELECT js_config('time_limit_ms', 10)", [], |_| Ok(())).unwrap();
    conn.query_row("SELECT js_config('step_limit', 20)", [], |_| Ok(())).unwrap();
    assert_eq!(eval1(&conn, "let n = 0; for (let i = 0; i < 9000000; i++) n++; n").unwrap(), Value::Integer(9_000_000));
}

#[test]
fn separate_processes_in_other_time_zones_compute_the_same() {
    let script = format!(
        ".load {}\nSELECT js_config('deterministic', 1);\n\
         SELECT js_eval('[Date.now(), new Date().getHours(), Math.random(), data.x * Math.random()].join()', '{{\"x\": 3}}');\n\
         SELECT js_plugins_init();\n\
         INSERT INTO js_plugins(name, kind, source) VALUES ('jitter', 'aggregate', 'function init() {{ return 0 }} function step(s, x) {{ return s + x * Math.random() }} function final(s) {{ return s }}');\n\
         SELECT jitter(value) FROM json_each('[1, 2, 3, 4]');\n",
        extension_path()
    );
    let run = |tz: &str| {
        let mut shell = Command::new("/usr/bin/sqlite3");
        shell.arg(":memory:").env("TZ", tz).env("LANG", if tz == "UTC" { "C" } else { "de_DE.UTF-8" });
        let out = run_shell_script(shell, &script);
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let (utc, sydney, honolulu) = (run("UTC"), run("Australia/Sydney"), run("Pacific/Honolulu"));
    assert!(utc.contains("\n0,0,"), "{utc}");
    assert_eq!(utc, sydney);
    assert_eq!(utc, honolulu);
}

#[test]
fn deterministic_plugins_serve_indexes_generated_columns_and_checks_and_cannot_change_under_them() {
    let conn = open();
    conn.execute_batch(
        "SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('km', 'scalar', 'function main(m) { return m / 1000 }', 1);
         INSERT INTO js_plugins(name, kind, source) VALUES ('noisy', 'scalar', 'function main(m) { return m * Math.random() }');",
    )
    .unwrap();
    // Registered when stored, as SQLITE_DETERMINISTIC: usable wherever SQLite requires it.
    conn.execute_batch(
        "CREATE TABLE runs(id INTEGER PRIMARY KEY, meters REAL,
           km REAL GENERATED ALWAYS AS (km(meters)) STORED, CHECK (km(meters) < 1000));
         INSERT INTO runs(meters) VALUES (1500), (42195), (5000);
         CREATE INDEX runs_km ON runs(km(meters));
         CREATE INDEX runs_long ON runs(meters) WHERE km(meters) > 10;",
    )
    .unwrap();
    let plan: String = conn.query_row("EXPLAIN QUERY PLAN SELECT id FROM runs WHERE km(meters) > 4", [], |r| r.get(3)).unwrap();
    assert!(plan.contains("INDEX runs_km"), "{plan}");
    let ids: Vec<(i64, f64)> = conn
        .prepare("SELECT id, km FROM runs WHERE km(meters) > 4 ORDER BY km(meters)")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, vec![(3, 5.0), (2, 42.195)]);
    assert!(error_of(&conn, "INSERT INTO runs(meters) VALUES (2000000) RETURNING id").contains("CHECK constraint failed"));
    // A plugin that is not deterministic is not, for SQLite either.
    let err = conn.execute_batch("CREATE INDEX bad ON runs(noisy(meters))").unwrap_err().to_string();
    assert!(err.contains("non-deterministic functions prohibited in index expressions"), "{err}");
    // Its source cannot change (nor can it go) while the schema uses it.
    let refused = "js_plugins: km is deterministic and table runs uses it: what it stores was computed by this version, and SQLite cannot know it changed; drop runs (or the column), change the plugin, then create it again";
    let edit = "UPDATE js_plugins SET source = 'function main(m) { return m / 1609 }' WHERE name = 'km'";
    assert_eq!(conn.execute(edit, []).unwrap_err().to_string(), refused);
    assert_eq!(conn.execute("DELETE FROM js_plugins WHERE name = 'km'", []).unwrap_err().to_string(), refused);
    assert_eq!(conn.execute("UPDATE js_plugins SET deterministic = 0 WHERE name = 'km'", []).unwrap_err().to_string(), refused);
    // Its description may.
    conn.execute("UPDATE js_plugins SET description = 'meters to km' WHERE name = 'km'", []).unwrap();
    // Without the users, the edit goes through.
    conn.execute_batch("DROP TABLE runs").unwrap();
    conn.execute(edit, []).unwrap();
    assert_eq!(value(&conn, "SELECT round(km(1609), 6)"), Value::Real(1.0));
    // And it runs deterministically whatever the connection's mode.
    conn.execute("UPDATE js_plugins SET source = 'function main() { return Date.now() }' WHERE name = 'km'", []).unwrap();
    assert_eq!(value(&conn, "SELECT km(1)"), Value::Integer(0));
}

#[test]
fn a_deterministic_scalar_call_starts_from_the_loaded_world_every_time() {
    let conn = open();
    conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
    conn.execute(
        "INSERT INTO js_plugins(name, kind, source) VALUES ('counter', 'scalar', 'let n = 0; function main() { return ++n }')",
        [],
    )
    .unwrap();
    let counts = |conn: &Connection| -> Vec<i64> {
        conn.prepare("SELECT counter() FROM json_each('[1,2,3,4,5]')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Normal mode: the connection keeps the plugin's world, globals and all.
    assert_eq!(counts(&conn), vec![1, 2, 3, 4, 5]);
    // Deterministic mode: what a call returns depends on its arguments, not on the calls before.
    conn.query_row("SELECT js_config('deterministic', 1)", [], |_| Ok(())).unwrap();
    assert_eq!(counts(&conn), vec![1; 5]);
    assert_eq!(counts(&conn), vec![1; 5]);
}

#[test]
fn every_nan_a_script_can_see_has_one_bit_pattern() {
    // QuickJS on wasm32 boxes values in NaNs, so it makes every NaN a number holds the canonical
    // one (0x7ff8000000000000): arithmetic, negation, a NaN with a payload read from memory, a
    // parse. A CPU's own NaN payloads (x86-64 and AArch64 differ) never reach the script.
    let conn = open();
    let script = "const f = new Float64Array(6); f[0] = 0 / 0; f[1] = -(0 / 0); f[2] = Math.sqrt(-1); f[3] = Infinity - Infinity; \
                  f[4] = new Float64Array(new Uint32Array([1, 0x7ff00000]).buffer)[0] * 1; f[5] = Number('x'); \
                  const g = new Float32Array(2); g[0] = 0 / 0; g[1] = new Float32Array(new Uint32Array([0xffc00001]).buffer)[0]; \
                  [...new Uint32Array(f.buffer), ...new Uint32Array(g.buffer)].map(x => x.toString(16)).join()";
    let expected = format!("{},7fc00000,7fc00000", ["0,7ff80000"; 6].join(","));
    assert_eq!(eval1(&conn, script).unwrap(), Value::Text(expected));
}

#[test]
fn a_plugin_used_before_in_normal_mode_starts_deterministic_calls_from_a_deterministic_load() {
    // Its top level draws a random number: a world loaded in normal mode holds another one.
    let plugin = "const drawn = Math.random(); function main() { return drawn } \
                  function init() { return 0 } function step(s) { return s } function final() { return drawn }";
    let connect = || {
        let conn = open();
        conn.query_row("SELECT js_plugins_init()", [], |_| Ok(())).unwrap();
        for (name, kind) in [("drawn", "scalar"), ("drawn_agg", "aggregate")] {
            conn.execute("INSERT INTO js_plugins(name, kind, source) VALUES (?1, ?2, ?3)", [name, kind, plugin]).unwrap();
        }
        conn
    };
    let both = |conn: &Connection| -> (f64, f64) {
        conn.query_row("SELECT drawn(), (SELECT drawn_agg(value) FROM json_each('[1, 2]'))", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    };
    let used = connect();
    for _ in 0..4 {
        both(&used);
    }
    used.query_row("SELECT js_config('deterministic', 1)", [], |_| Ok(())).unwrap();
    let fresh = connect();
    fresh.query_row("SELECT js_config('deterministic', 1)", [], |_| Ok(())).unwrap();
    let expected = both(&fresh);
    assert_eq!(expected.0, expected.1);
    for _ in 0..4 {
        assert_eq!(both(&used), expected);
    }
}

#[test]
fn the_guard_sees_every_spelling_every_replace_every_schema_and_imported_modules() {
    let conn = open();
    conn.execute_batch(
        "SELECT js_plugins_init();
         INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('km', 'scalar', 'function main(x) { return x * 2 }', 1);
         INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('other', 'scalar', 'function main(x) { return x * 3 }', 1);
         INSERT INTO js_modules(name, source) VALUES ('factor', 'export const F = 2');
         INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('scaled', 'scalar', 'import { F } from \"factor\"; export function main(x) { return x * F }', 1);
         CREATE TABLE runs(x);
         INSERT INTO runs VALUES (1), (2), (3);",
    )
    .unwrap();
    let refused = |sql: &str| {
        let err = conn.execute_batch(sql).unwrap_err().to_string();
        assert!(err.contains("uses it") || err.contains("uses that plugin"), "{sql}: {err}");
    };
    let edit = "UPDATE js_plugins SET source = 'function main(x) { return x * 5 }' WHERE name = 'km'";
    for index in ["runs(\"km\"(x))", "runs([km](x))", "runs(`KM`(x))", "runs(km/**/(x))", "runs(km -- c\n(x))"] {
        conn.execute_batch(&format!("CREATE INDEX i ON {index}")).unwrap();
        refused(edit);
        conn.execute_batch("DROP INDEX i").unwrap();
    }
    // REPLACE deletes without DELETE triggers; UPDATE OR REPLACE through a rename.
    conn.execute_batch("CREATE INDEX i ON runs(km(x))").unwrap();
    refused("REPLACE INTO js_plugins(name, kind, source, deterministic) VALUES ('km', 'scalar', 'function main(x) { return x * 5 }', 1)");
    refused("UPDATE OR REPLACE js_plugins SET name = 'km' WHERE name = 'other'");
    conn.execute_batch("DROP INDEX i").unwrap();
    // TEMP and attached schemas count too.
    conn.execute_batch("CREATE TEMP TABLE tr(x); CREATE INDEX temp.ti ON tr(km(x))").unwrap();
    refused(edit);
    conn.execute_batch(
        "DROP TABLE temp.tr; ATTACH ':memory:' AS other_db; CREATE TABLE other_db.t(x); CREATE INDEX other_db.ti ON t(km(x))",
    )
    .unwrap();
    refused(edit);
    conn.execute_batch("DETACH other_db").unwrap();
    // A table named after the plugin, or a string mentioning it, is not a use.
    conn.execute_batch("CREATE TABLE km(id); CREATE TABLE notes(t TEXT DEFAULT 'see km(x)')").unwrap();
    conn.execute_batch(edit).unwrap();
    // A module that such a plugin imports cannot change under the index either.
    conn.execute_batch("CREATE INDEX si ON runs(scaled(x))").unwrap();
    for sql in [
        "UPDATE js_modules SET source = 'export const F = 3' WHERE name = 'factor'",
        "DELETE FROM js_modules WHERE name = 'factor'",
        "REPLACE INTO js_modules(name, source) VALUES ('factor', 'export const F = 3')",
    ] {
        let err = conn.execute_batch(sql).unwrap_err().to_string();
        assert!(
            err.contains("module 'factor' is imported by the deterministic plugin scaled, and index si uses that plugin"),
            "{sql}: {err}"
        );
    }
    conn.execute_batch("DROP INDEX si; UPDATE js_modules SET source = 'export const F = 3' WHERE name = 'factor'").unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn loading_and_storing_a_plugin_are_counted_in_steps_and_never_reuse_a_looser_load() {
    let path = temp_db("deterministic-loads");
    let connect = || {
        let conn = Connection::open(&path).unwrap();
        load(&conn);
        conn
    };
    let conn = connect();
    conn.execute_batch("SELECT js_plugins_init(); SELECT js_config('time_limit_ms', 10);").unwrap();
    // A top level of about 4 million steps: far past 10 ms of wall-clock time, well within the
    // default step limit. Stored (compiled), loaded, called: none of it is timed.
    let heavy = "let t = 0; for (let i = 0; i < 2000000; i++) t++; function main(n) { return t + n }";
    conn.execute("INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('heavy', 'scalar', ?1, 1)", [heavy]).unwrap();
    assert_eq!(value(&conn, "SELECT heavy(1)"), Value::Integer(2_000_001));
    assert_eq!(value(&conn, "SELECT heavy(2)"), Value::Integer(2_000_002));
    // A lower step limit loads again, and the load does not fit it: the same error a connection
    // that never loaded the plugin gets.
    conn.query_row("SELECT js_config('step_limit', 1)", [], |_| Ok(())).unwrap();
    assert_eq!(error_of(&conn, "SELECT heavy(1)"), "heavy: step limit of 1 million steps exceeded (deterministic mode)");
    let fresh = connect();
    fresh.execute_batch("SELECT js_config('step_limit', 1)").unwrap();
    assert_eq!(error_of(&fresh, "SELECT heavy(1)"), "heavy: step limit of 1 million steps exceeded (deterministic mode)");
    // Storing a plugin whose top level runs past the step limit is refused the same way.
    let err = conn
        .execute("INSERT INTO js_plugins(name, kind, source) VALUES ('heavier', 'scalar', ?1)", [heavy.replace("heavy", "heavier")])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "js_plugins: heavier: step limit of 1 million steps exceeded (deterministic mode)");
    drop((conn, fresh));
    remove_db(&path);
}

#[test]
fn what_other_worlds_of_the_connection_hold_does_not_fail_a_deterministic_call() {
    let conn = open();
    conn.execute_batch(
        "SELECT js_plugins_init();
         SELECT js_config('connection_memory_mb', 70);
         INSERT INTO js_plugins(name, kind, source) VALUES ('hog', 'scalar', 'const kept = []; function main(n) { kept.push(new Array(n).fill(1.5)); return kept.length }');
         INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('dp', 'scalar', 'function main(n) { return new Array(n).fill(1).length }', 1);",
    )
    .unwrap();
    // A normal plugin's kept world holds most of the connection's budget...
    for _ in 0..6 {
        conn.query_row("SELECT hog(1000000)", [], |_| Ok(())).unwrap();
    }
    assert!(conn.query_row("SELECT js_debug() ->> '$.connection_memory_in_use_bytes'", [], |r| r.get::<_, i64>(0)).unwrap() > 50 << 20);
    // ...and a deterministic call computes as on a connection that holds nothing.
    assert_eq!(value(&conn, "SELECT dp(1000000)"), Value::Integer(1_000_000));
}
