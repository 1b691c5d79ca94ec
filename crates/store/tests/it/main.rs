//! All the integration tests of this package, one module per file, in one
//! test binary (`cargo test -p <package> --test it [module::]`): one
//! binary per file linked the whole dependency tree ~20 times over and
//! filled a CI machine's disk.

mod batch;
mod choices;
mod common;
mod conformance;
mod crash;
mod duplicate_conflict;
mod equivocation;
mod eviction;
mod expiry;
mod groups;
mod heads;
mod history;
mod identity;
mod ids;
mod meetups;
mod migration;
mod open_errors;
mod outbox;
mod peers;
mod perf;
mod permissions;
mod pg_concurrency;
mod pg_differential;
mod pg_server;
mod pg_tail;
mod photos;
mod receipts;
mod rooms;
mod search;
