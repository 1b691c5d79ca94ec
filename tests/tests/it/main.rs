//! All the integration tests of this package, one module per file, in one
//! test binary (`cargo test -p <package> --test it [module::]`): one
//! binary per file linked the whole dependency tree ~20 times over and
//! filled a CI machine's disk.

mod app_e2e;
mod bad_input_on_the_wire;
mod everyone_finds_everyone;
mod fresh_identity_flood;
mod full_of_lower_links;
mod kill_and_restart_catches_up;
mod knock;
mod lab_itself;
mod link_down_30s_converges;
mod peer_limit_multi_hop;
mod powered_links;
mod relay_hybrid;
mod relay_isolated_wifi;
mod relay_nat;
mod relay_upgrade;
mod spoofed_record;
