//! All the integration tests of this package, one module per file, in one
//! test binary (`cargo test -p <package> --test it [module::]`): one
//! binary per file linked the whole dependency tree ~20 times over and
//! filled a CI machine's disk.

mod adversary;
mod announcements;
mod bad_input;
mod clock;
mod cluster;
mod codec;
mod common;
mod converge;
mod crowd;
mod live_pull;
mod meetups;
mod photos;
mod receipts;
mod recon;
mod resend;
mod rounds;
mod routes;
mod serve;
mod summaries;
