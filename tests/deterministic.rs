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
        let out = Command::new("/usr/bin/sqlite3")
            .arg(":memory:")
            .env("TZ", tz)
            .env("LANG", if tz == "UTC" { "C" } else { "de_DE.UTF-8" })
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(script.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let (utc, sydney, honolulu) = (run("UTC"), run("Australia/Sydney"), run("Pacific/Honolulu"));
    assert!(utc.contains("\n0,0,"), "{utc}");
    assert_eq!(utc, sydney);
    assert_eq!(utc, honolulu);
}
