//! The benchmark's workloads, shared by the `jsbox-bench` binary (`make bench`) and the tests,
//! which check on 10,000 rows that every workload's jsbox form computes what its plain SQL form
//! does.

pub mod sql;
