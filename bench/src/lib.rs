//! The benchmark's workloads, for the `jsbox-bench` binary (`make bench`) and for its own test
//! (`bench/tests/workloads.rs`), which checks on 10,000 rows that every workload's jsbox form
//! computes what its plain SQL form does.

pub mod chart;
#[cfg(feature = "inproc")]
pub mod inproc;
#[cfg(feature = "inproc")]
pub mod soak;
pub mod sql;
pub mod stats;

pub use jsbox_testkit::{run_shell_script, run_sqlite3};
