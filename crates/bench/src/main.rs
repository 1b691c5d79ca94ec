//! festival-bench: reproducible benchmarks. Each run prints one JSON line.
//!
//! - `store`: ingest and history latency of festival-store on a real file.
//! - `sim`: a large simulated mesh (festival-sim): delivery, redundancy, hops, latency.
//! - `lan`: WebRTC data channels and real nodes, inside namespaces it creates.
//! - `relay`: festival-relay under many synthetic nodes: fan-out latency, CPU, RSS, connections.
//! - `relay-cluster`: several relay instances on PostgreSQL and Redis:
//!   cross-instance fan-out, CPU of the tier; and one instance on SQLite.
//! - `sync`: bytes and round trips to reconcile a room's heads, in sync and not.
//! - `attack`: hostile nodes on a simulated festival: honest delivery and
//!   latency with and without each attack, the victim's memory and store.

mod attack;
mod lan;
mod netlab;
mod procstat;
mod relay;
mod relay_attack;
mod relay_cluster;
mod sim;
mod store;
mod sync;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "festival-bench", about = "Festival Chat benchmarks (one JSON line per run)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Sustained batched ingest, then history reads at that size.
    Store(store::Args),
    /// A simulated mesh of many nodes.
    Sim(sim::Args),
    /// Data-channel latency/throughput/setup and real nodes on a namespace LAN.
    Lan(lan::Args),
    /// The relay server with many synthetic nodes, in a private namespace.
    Relay(relay::Args),
    /// Several relay instances on PostgreSQL and Redis (and one on SQLite),
    /// in a private namespace.
    RelayCluster(relay_cluster::Args),
    /// Reconciling a room's heads: bytes and round trips (one JSON line per point).
    Sync(sync::Args),
    /// Hostile nodes on a simulated festival (one JSON line per attack).
    Attack(attack::Args),
    /// The victim of `attack`, run by it in a process of its own.
    #[command(hide = true)]
    AttackVictim(attack::VictimArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let line = match cli.bench {
        Bench::Store(a) => store::run(a)?,
        Bench::Sim(a) => sim::run(a)?,
        Bench::Lan(a) => lan::run(a)?,
        Bench::Relay(a) => relay::run(a)?,
        Bench::RelayCluster(a) => relay_cluster::run(a)?,
        Bench::Sync(a) => {
            for line in sync::run(a)? {
                println!("{line}");
            }
            return Ok(());
        }
        Bench::Attack(a) => {
            for line in attack::run(a)? {
                println!("{line}");
            }
            return Ok(());
        }
        Bench::AttackVictim(a) => return attack::victim(a),
    };
    println!("{line}");
    Ok(())
}
