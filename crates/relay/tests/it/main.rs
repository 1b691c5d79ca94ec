//! All the integration tests of this package, one module per file, in one
//! test binary (`cargo test -p <package> --test it [module::]`): one
//! binary per file linked the whole dependency tree ~20 times over and
//! filled a CI machine's disk.

mod auth;
mod bad_input;
mod client;
mod cluster;
mod commits;
mod common;
mod flood;
mod limits;
mod mailbox;
mod pinning;
mod rooms;
mod signaling;
mod stun;
mod tls;
mod unauthenticated;
