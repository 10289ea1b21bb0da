//! A process whose address space is capped (`ulimit -v`: containers, shared hosting, HPC) cannot
//! reserve the pool's 4 GiB per sandbox. jsbox sizes the pool to what fits, and allocates each
//! sandbox's memory on demand where too little fits (docs/hosts.md). Under caps of 8 and 16 GiB
//! the README's demo computes as usual and every limit holds; `JSBOX_POOL_SLOTS` chooses the pool;
//! a Python host capped at 1 GiB fills its address space with connections and gets errors, not a
//! crash (`tests/address_space_host.py`).

use std::process::Command;
use std::time::Duration;

use jsbox_tests::*;

/// `ulimit -v` counts KiB.
const GIB: u64 = 1 << 20;

/// The sqlite3 shell, with jsbox loaded, its address space capped at `cap_kib` KiB (`None`: not
/// capped) and `env` set, running `script` (dot-commands allowed) from a file.
fn capped_shell(cap_kib: Option<u64>, env: &[(&str, &str)], script: &str) -> Finished {
    let file = script_file(script);
    let cap = cap_kib.map_or("unlimited".to_owned(), |kib| kib.to_string());
    let mut command = Command::new("bash");
    command
        .current_dir(repo_root())
        .env_remove("JSBOX_POOL_SLOTS")
        .envs(env.iter().copied())
        .args(["-c", r#"ulimit -v "$0" && exec "$@""#, &cap, "sqlite3", ":memory:"])
        .args(["-cmd", &format!(".load {}", extension_path()), &format!(".read {}", file.display())]);
    let finished = run_bounded(command, Duration::from_secs(120));
    let _ = std::fs::remove_file(file);
    finished
}

/// How the shell's process allocates sandboxes: `allocator|pool_slots|memory_placement`.
fn allocation(cap_kib: Option<u64>, env: &[(&str, &str)]) -> String {
    let run = capped_shell(
        cap_kib,
        env,
        "SELECT js_eval('6 * 7'), js_debug() ->> 'allocator', js_debug() ->> 'pool_slots', js_debug() ->> 'memory_placement';",
    );
    run.assert_success("the shell");
    let out = run.stdout.trim();
    out.strip_prefix("42|").unwrap_or_else(|| panic!("{out}\n{}", run.stderr)).to_owned()
}

#[test]
fn the_demo_runs_in_a_capped_address_space() {
    for cap in [8 * GIB, 16 * GIB] {
        let run = capped_shell(Some(cap), &[], &demo_script().replace(&format!(".load {}", extension_path()), ""));
        run.assert_success(&format!("the demo under ulimit -v {cap}"));
        assert_demo_output(&run.stdout);
        assert_eq!(allocation(Some(cap), &[]), "on-demand||bounded", "ulimit -v {cap}");
    }
}

/// Where the cap leaves room for a pool worth having, the pool holds as many slots as fit in half
/// of it; without a cap, the full pool.
#[test]
fn the_pool_is_sized_to_what_the_process_may_map() {
    assert_eq!(allocation(None, &[]), "pool|1000|reserved");
    let terabyte = 1024 * GIB;
    let found = allocation(Some(terabyte), &[]);
    let slots: u64 = found
        .strip_prefix("pool|")
        .and_then(|rest| rest.strip_suffix("|reserved"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{found}"));
    // Half of 1 TiB in slots of 4 GiB and their guards, less what the shell has mapped.
    assert!((100..=127).contains(&slots), "{slots} slots under a 1 TiB cap");
}

/// `JSBOX_POOL_SLOTS` sets the pool's size (0: no pool, on demand); a pool that cannot be
/// reserved falls back to on demand.
#[test]
fn the_pool_slots_setting_chooses_the_pool() {
    assert_eq!(allocation(None, &[("JSBOX_POOL_SLOTS", "0")]), "on-demand||bounded");
    assert_eq!(allocation(None, &[("JSBOX_POOL_SLOTS", "7")]), "pool|7|reserved");
    assert_eq!(allocation(Some(16 * GIB), &[("JSBOX_POOL_SLOTS", "1000")]), "on-demand||bounded");
    assert_eq!(allocation(Some(16 * GIB), &[("JSBOX_POOL_SLOTS", "2")]), "pool|2|reserved");
}

/// On demand, each limit still holds and says so, and after each failure the connection answers.
#[test]
fn limits_hold_when_sandboxes_are_allocated_on_demand() {
    let run = capped_shell(
        Some(8 * GIB),
        &[],
        "SELECT js_eval('const a = []; for (;;) a.push(new Array(1e5).fill(1.5))');
         SELECT js_eval('6 * 7');
         SELECT js_config('time_limit_ms', 200);
         SELECT js_eval('for (;;) {}');
         SELECT js_eval('function f(n) { return f(n + 1) + 1 } f(0)');
         SELECT js_eval('data.features.length', readfile('fixtures/seed_track_points.json'));",
    );
    let errors: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(errors.len(), 3, "{}", run.stderr);
    assert!(errors[0].ends_with("js_eval: memory limit of 64 MiB exceeded"), "{}", errors[0]);
    assert!(errors[1].ends_with("js_eval: time limit of 200 ms exceeded"), "{}", errors[1]);
    // QuickJS's own check or, where the bounds-checked code's native frames are larger, the
    // sandbox's native stack: either way an error.
    assert!(errors[2].contains("js_eval: ") && errors[2].contains("stack overflow"), "{}", errors[2]);
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), ["42", "200", "260"]);
}

/// A sandbox whose limit allows more than the process may map gets the system's refusal, named as
/// such; the connection goes on.
#[test]
fn memory_the_process_cannot_map_is_an_error() {
    let run = capped_shell(
        Some(GIB / 2),
        &[],
        "SELECT js_config('memory_limit_mb', 4096);
         SELECT js_config('time_limit_ms', 20000);
         SELECT js_eval('const a = []; for (;;) a.push(new Array(1e6).fill(1.5))');
         SELECT js_eval('6 * 7');",
    );
    let errors: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].contains("js_eval: the system refused the sandbox more memory (mmap failed"), "{}", errors[0]);
    assert!(errors[0].ends_with("the process's address space (ulimit -v) or the machine's memory is exhausted"), "{}", errors[0]);
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), ["4096", "20000", "42"]);
}

/// A value of `JSBOX_POOL_SLOTS` that is not a number is an error that names it, not a silent
/// default (an empty one is as if unset).
#[test]
fn a_bad_pool_slots_setting_is_an_error() {
    for bad in ["abc", "-1", "1e3", "4 GiB"] {
        let run = capped_shell(None, &[("JSBOX_POOL_SLOTS", bad)], "SELECT js_eval('6 * 7');");
        assert!(
            run.stderr.contains(&format!(
                "js_eval: internal error: JSBOX_POOL_SLOTS must be a number of pool slots (0: none, allocate on demand), not {bad:?}"
            )),
            "{bad:?}: {}",
            run.stderr
        );
    }
}

/// Many connections, statements that hold sandboxes, and threads, in a Python host capped at
/// 1 GiB.
#[test]
fn a_capped_python_host_fills_its_address_space_without_crashing() {
    python_helper("address_space_host.py", Duration::from_secs(180));
}

/// The very end of a capped address space: loading and calls fail with errors, and jsbox works
/// again once the process has unmapped what it held.
#[test]
fn at_the_end_of_the_address_space_calls_fail_cleanly_and_recover() {
    python_helper("address_space_edge_host.py", Duration::from_secs(300));
}
