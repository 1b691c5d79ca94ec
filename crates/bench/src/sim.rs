//! `festival-bench sim`: N nodes on a random graph of degree 4-6 with lossy
//! links; messages from random authors; run until every member has every
//! message (or the virtual deadline). Then the same seed again (at
//! `--determinism-nodes`, the full size by default up to 1,000 nodes) to
//! check that it gives the same frame trace (`Sim::trace_hash`): the key
//! `deterministic`.

use std::time::Instant;

use festival_sim::{random_graph, LinkSpec, Report, Sim};
use rand::Rng;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Virtual milliseconds between two messages.
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
    /// Frame loss per link.
    #[arg(long, default_value_t = 0.05)]
    loss: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Nodes of the run made twice to compare traces (0: skip the check).
    /// At most `--nodes`; with fewer, two extra runs at this size.
    #[arg(long, default_value_t = 1000)]
    determinism_nodes: usize,
}

pub fn run(a: Args) -> anyhow::Result<serde_json::Value> {
    let (mut out, trace) = one(&a, a.nodes);
    let check = a.determinism_nodes.min(a.nodes);
    if check > 0 {
        let (first, again) =
            if check == a.nodes { (trace.clone(), one(&a, check).1) } else { (one(&a, check).1, one(&a, check).1) };
        out["deterministic"] = json!(first == again);
        out["determinism_nodes"] = json!(check);
    }
    out["trace_hash"] = json!(trace);
    let peak = crate::procstat::hwm_mb(std::process::id()).ok();
    out["peak_rss_mb"] = json!(peak.map(|mb| (mb * 10.0).round() / 10.0));
    Ok(out)
}

/// One run with `nodes` nodes: its figures and its trace hash.
fn one(a: &Args, nodes: usize) -> (serde_json::Value, String) {
    let started = Instant::now();
    let mut sim = Sim::new(a.seed);
    for _ in 0..nodes {
        sim.add_node(vec![]);
    }
    let edges = random_graph(nodes, 4, 6, &mut sim.rng);
    for &(x, y) in &edges {
        sim.connect(x, y, LinkSpec::lossy(a.loss));
    }
    sim.run_for(3_000);
    let start_virtual = sim.now;
    let mut sent = Vec::with_capacity(a.messages);
    for i in 0..a.messages {
        let author = sim.rng.gen_range(0..nodes);
        let id = sim.send_text(author, "festival", &format!("bench message {i}"));
        sent.push((id, author, sim.now));
        sim.run_for(a.interval_ms);
    }
    let members: Vec<usize> = (0..nodes).collect();
    sim.run_until_cond(600_000, 1_000, |s| Report::measure(s, &sent, &members).delivery_ratio >= 1.0);
    let r = Report::measure(&sim, &sent, &members);
    let out = json!({
        "bench": "sim",
        "nodes": nodes,
        "edges": edges.len(),
        "messages": a.messages,
        "loss": a.loss,
        "seed": a.seed,
        "delivery_ratio": r.delivery_ratio,
        "duplicate_deliveries": r.duplicate_deliveries,
        "redundancy": (r.redundancy * 1000.0).round() / 1000.0,
        "hops_p50": r.hops_p50,
        "hops_p99": r.hops_p99,
        "latency_p50_ms": r.latency_p50_ms,
        "latency_p99_ms": r.latency_p99_ms,
        "frames_sent": sim.frames_sent,
        "virtual_s": (sim.now - start_virtual) as f64 / 1000.0,
        "wall_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
    });
    (out, sim.trace_hash())
}
