//! All the integration tests of this package, one module per file, in one
//! test binary (`cargo test -p <package> --test it [module::]`): one
//! binary per file linked the whole dependency tree ~20 times over and
//! filled a CI machine's disk.

mod crowd;
mod crowd_receipts;
mod deterministic;
mod hostile;
mod lan;
mod line;
mod mesh;
mod partitions;
mod store_and_forward;
mod store_conformance;
mod tree;
