//! Statement replay, as rqlite does it: one SQL log (plugins stored and edited, rows written and
//! updated through plugins, aggregates into tables, a call past its limit) run by three separate
//! `sqlite3` processes, started at different times with different time zones, languages and CPU
//! load. In deterministic mode their databases (`.dump`) and errors are identical; the same log
//! with the mode off must diverge, which shows that the comparison can see a difference.
//! (`js_plugins.updated_at`, SQLite's own clock in a default and a trigger, is set to one value
//! before the comparison: docs/replication.md.)

use std::process::Command;

use jsbox_tests::*;

/// The log, with deterministic mode `on` or off.
fn log(on: bool) -> String {
    format!(
        ".load {ext}
.bail off
SELECT js_config('deterministic', {on}), js_config('step_limit', 5), js_config('time_limit_ms', 20);
SELECT js_plugins_init();
CREATE TABLE t(id INTEGER PRIMARY KEY, x REAL, y REAL, note TEXT);
INSERT INTO js_plugins(name, kind, source) VALUES ('jitter', 'scalar', 'function main(x) {{ return x + Math.random() }}');
INSERT INTO js_plugins(name, kind, source) VALUES ('stamp', 'scalar', 'function main(x) {{ return new Date().toString() + \" \" + x }}');
INSERT INTO js_plugins(name, kind, source) VALUES ('spin', 'scalar', 'function main(n) {{ let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s }}');
INSERT INTO js_plugins(name, kind, source) VALUES ('noisy_sum', 'aggregate',
  'function init() {{ return 0 }} function step(s, x) {{ return s + x * (1 + Math.random() / 1000) }} function final(s) {{ return s }}');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO t(x) SELECT i FROM n;
UPDATE t SET y = jitter(x), note = stamp(id);
UPDATE js_plugins SET source = 'function main(x) {{ return x * 2 + Math.random() }}' WHERE name = 'jitter';
UPDATE t SET y = jitter(y) WHERE id % 3 = 0;
CREATE TABLE sums AS SELECT id % 10 AS k, noisy_sum(y) AS s FROM t GROUP BY k;
UPDATE t SET note = spin(400000) WHERE id = 1;
UPDATE t SET note = spin(10000000) WHERE id = 2;
INSERT INTO t(x, note) VALUES (-1, js_eval('[Date.now(), Math.random()].join()', '{{}}'));
-- js_plugins.updated_at is each node's own clock (SQLite's 'now' in a default and a trigger,
-- which no statement rewriting reaches): not part of what the nodes must agree on.
UPDATE js_plugins SET updated_at = 'replayed';
.print ---dump
.dump
",
        ext = extension_path(),
        on = u8::from(on)
    )
}

/// Runs `script` in a `sqlite3` process on a new database file, in time zone `tz` and
/// language `lang`, with another process keeping a CPU busy meanwhile if `busy`; returns its
/// `.dump` and its error lines.
fn replay(script: &str, tz: &str, lang: &str, busy: bool) -> (String, String) {
    let mode = if script.contains("'deterministic', 1") { "on" } else { "off" };
    let db = temp_db(&format!("replay-{mode}-{tz}-{busy}").replace('/', "-"));
    let mut load = busy.then(|| Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap());
    let mut shell = Command::new("/usr/bin/sqlite3");
    shell.arg(&db).env("TZ", tz).env("LANG", lang).env("LC_ALL", lang);
    let out = run_shell_script(shell, script);
    if let Some(load) = load.as_mut() {
        let _ = load.kill();
        let _ = load.wait();
    }
    remove_db(&db);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let dump = stdout.split("---dump\n").nth(1).unwrap_or("").to_owned();
    (dump, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn three_nodes(on: bool) -> Vec<(String, String)> {
    let script = log(on);
    let mut nodes = vec![replay(&script, "UTC", "C", false)];
    std::thread::sleep(std::time::Duration::from_millis(1100));
    nodes.push(replay(&script, "Australia/Sydney", "de_DE.UTF-8", true));
    std::thread::sleep(std::time::Duration::from_millis(700));
    nodes.push(replay(&script, "America/Los_Angeles", "fr_FR.UTF-8", false));
    nodes
}

#[test]
fn three_nodes_replaying_one_log_in_deterministic_mode_agree() {
    let nodes = three_nodes(true);
    let (dump, errors) = &nodes[0];
    assert!(dump.contains("CREATE TABLE sums"), "{dump}");
    // The call past its limit failed, the same way, on every node.
    assert_eq!(errors.matches("step limit of 5 million steps exceeded").count(), 1, "{errors}");
    for (other_dump, other_errors) in &nodes[1..] {
        assert_eq!(other_errors, errors);
        assert!(other_dump == dump, "the nodes' databases differ");
    }
}

#[test]
fn the_same_log_in_normal_mode_diverges() {
    let nodes = three_nodes(false);
    // Random numbers and clocks (and time limits under load) differ: the comparison sees it.
    assert!(nodes[0].0 != nodes[1].0 && nodes[0].0 != nodes[2].0 && nodes[1].0 != nodes[2].0);
}
