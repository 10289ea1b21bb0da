//! What both benchmarks (`bench/` and `ext/benches/sandbox.rs`) report about their samples and
//! the machine.

use std::time::Duration;

/// Median, min and max of a workload's samples.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
}

/// The statistics of `samples`, each divided by `per` (the calls a sample covers); `None` for no
/// samples.
pub fn stat(samples: &[Duration], per: u64) -> Option<Stat> {
    if samples.is_empty() {
        return None;
    }
    let mut s: Vec<Duration> = samples.iter().map(|d| *d / per as u32).collect();
    s.sort();
    Some(Stat { median: s[s.len() / 2], min: s[0], max: s[s.len() - 1] })
}

/// The machine's 1, 5 and 15 minute load averages, to print beside the figures.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
