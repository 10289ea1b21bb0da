//! `make soak`: a million `js_eval` calls on one connection, with the process's resident memory
//! after the first 10,000 and at the end: a leak per call, however small, shows as growth.

use std::time::Instant;

use rusqlite::Connection;

use jsbox_testkit::resident_kib;

/// Growth beyond which the soak fails, in KiB.
const MAX_GROWTH_KIB: u64 = 8 * 1024;
const WARM_UP_CALLS: u64 = 10_000;

/// Runs `calls` calls through `extension`; returns whether memory stayed flat.
pub fn run(extension: &str, calls: u64) -> bool {
    let conn = Connection::open_in_memory().expect("opening a connection");
    // SAFETY: loading the extension under test.
    unsafe {
        conn.load_extension_enable().expect("enabling extensions");
        conn.load_extension(extension, None::<&str>).expect("loading jsbox");
    }
    // A script that allocates a little of everything: objects, strings, arrays, a closure.
    let script = "const xs = data.xs.map((x, i) => ({x, s: 'p' + i})); xs.reduce((a, o) => a + o.x + o.s.length, 0)";
    let mut stmt = conn.prepare("SELECT js_eval(?1, ?2)").expect("preparing");
    let started = Instant::now();
    let mut after_warm_up = 0;
    for i in 0..calls {
        let input = format!("{{\"xs\": [{i}, 1, 2, 3]}}");
        let value: i64 = stmt.query_row((script, input.as_str()), |r| r.get(0)).expect("a soak call failed");
        assert_eq!(value, i as i64 + 6 + 8, "call {i}");
        if i + 1 == WARM_UP_CALLS {
            after_warm_up = resident_kib();
        }
    }
    let at_end = resident_kib();
    let growth = at_end.saturating_sub(after_warm_up);
    println!(
        "soak: {calls} js_eval calls in {:.1?}; resident after {WARM_UP_CALLS}: {:.1} MiB, at the end: {:.1} MiB ({:+.1} MiB; limit +{} MiB)",
        started.elapsed(),
        after_warm_up as f64 / 1024.0,
        at_end as f64 / 1024.0,
        (at_end as f64 - after_warm_up as f64) / 1024.0,
        MAX_GROWTH_KIB / 1024
    );
    growth <= MAX_GROWTH_KIB
}
