//! `festival-bench sim`: N nodes on a random graph of degree 4-6 with lossy
//! links; messages from random authors; run until every member has every
//! message (or the virtual deadline). With `--lan`, no drawn graph: the
//! nodes arrive over 20 s, find each other by discovery (each hears about
//! `--hear` others, at random or around it on a `--field`, or everyone)
//! and link as their meshes decide under peer limits (2-4 for phones on
//! battery, 8 for every 25th node, a venue box on mains); while the
//! messages go out, a share of the crowd (`--churn`) sleeps and wakes every
//! 5 s, and all are awake at the end. Latency and hops count the nodes that
//! never slept. Then the same seed again (at
//! `--determinism-nodes`, the full size by default up to 1,000 nodes) to
//! check that it gives the same frame trace (`Sim::trace_hash`): the key
//! `deterministic`.

use std::time::Instant;

use festival_core::frame::tag;
use festival_core::policy::{self, PowerState};
use festival_core::{Draft, Identity, Kind, MessageId, RoomId, SignedEnvelope};
use festival_sim::{random_graph, Hearing, LanCfg, LinkSpec, Report, Sim};
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
    /// Discovery and the mesh decide the links (see the module docs).
    #[arg(long)]
    lan: bool,
    /// With `--lan`: how many others each node hears, on average (0: all),
    /// drawn at random per pair.
    #[arg(long, default_value_t = 0)]
    hear: usize,
    /// With `--hear`: nodes stand on a field and hear those nearest them
    /// instead (a crowd spread over a site, each phone's Wi-Fi in reach of
    /// a few).
    #[arg(long)]
    field: bool,
    /// With `--lan`: the share of nodes that sleep or wake every 5 s while
    /// the messages go out.
    #[arg(long, default_value_t = 0.05)]
    churn: f64,
    /// With `--lan`: peer limits. `policy`: what each node's power state
    /// gives it in the product (`policy::limits`: 8 on mains, 6 or 4 on
    /// battery); `low`: 2, 3 or 4 for phones and 8 for the boxes, a crowd
    /// short of links.
    #[arg(long, value_enum, default_value_t = Limits::Policy)]
    limits: Limits,
    /// Earlier in the day, this many other people (not among the nodes)
    /// wrote one message each in the festival room; each node arrives
    /// holding each of them but `--lacking` of them (at random). The run
    /// ends when every node holds all of them too (`history_ratio`).
    #[arg(long, default_value_t = 0)]
    authors: usize,
    /// With `--authors`: the share of those messages each node lacks.
    #[arg(long, default_value_t = 0.01)]
    lacking: f64,
    /// Others' messages are pushed along the room's tree whatever the
    /// crowd (`Config::live_pull` off), as before live fetching: for
    /// comparison.
    #[arg(long)]
    tree_push: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Limits {
    Policy,
    Low,
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
    sim.config.live_pull = !a.tree_push;
    let history = history(&mut sim, a.authors);
    let mut held = |sim: &mut Sim| -> Vec<SignedEnvelope> {
        history.iter().filter(|_| !sim.rng.gen_bool(a.lacking)).cloned().collect()
    };
    let mut edges = 0;
    if a.lan {
        arrive(&mut sim, a, nodes, &mut held);
    } else {
        for _ in 0..nodes {
            let h = held(&mut sim);
            sim.add_node_holding(vec![], h);
        }
        let graph = random_graph(nodes, 4, 6, &mut sim.rng);
        for &(x, y) in &graph {
            sim.connect(x, y, LinkSpec::lossy(a.loss));
        }
        edges = graph.len();
    }
    sim.run_for(3_000);
    let start_virtual = sim.now;
    let mut sent = Vec::with_capacity(a.messages);
    let mut slept = vec![false; nodes];
    for i in 0..a.messages {
        if a.lan && a.churn > 0.0 && i as u64 * a.interval_ms % 5_000 < a.interval_ms {
            for _ in 0..(nodes as f64 * a.churn).round() as usize {
                let n = sim.rng.gen_range(0..nodes);
                let online = sim.nodes[n].online();
                slept[n] = true;
                sim.set_online(n, !online);
            }
        }
        let awake: Vec<usize> = (0..nodes).filter(|&n| sim.nodes[n].online()).collect();
        let author = awake[sim.rng.gen_range(0..awake.len())];
        let id = sim.send_text(author, "festival", &format!("bench message {i}"));
        sent.push((id, author, sim.now));
        sim.run_for(a.interval_ms);
    }
    for n in 0..nodes {
        sim.set_online(n, true);
    }
    let members: Vec<usize> = (0..nodes).collect();
    let ids: Vec<MessageId> = history.iter().map(|e| e.id()).collect();
    sim.run_until_cond(600_000, 1_000, |s| {
        Report::measure(s, &sent, &members).delivery_ratio >= 1.0 && history_ratio(s, &ids) >= 1.0
    });
    let mut r = Report::measure(&sim, &sent, &members);
    if a.lan {
        // Latency and hops of the nodes that stayed awake: a sleeper's
        // catch-up is not the mesh's speed.
        let awake: Vec<usize> = (0..nodes).filter(|&n| !slept[n]).collect();
        let live = Report::measure(&sim, &sent, &awake);
        (r.hops_p50, r.hops_p99, r.latency_p50_ms, r.latency_p99_ms) =
            (live.hops_p50, live.hops_p99, live.latency_p50_ms, live.latency_p99_ms);
    }
    let (opened, closed) = sim.lan_link_churn();
    let sync_bytes: u64 = [tag::SUMMARY, tag::DIGEST, tag::RECON].iter().filter_map(|k| sim.bytes_by_kind.get(k)).sum();
    let (shortest, stretch) = stretch(&sim, &sent);
    let out = json!({
        "bench": "sim",
        "mode": if a.lan { "lan" } else { "graph" },
        "nodes": nodes,
        "edges": if a.lan { sim.open_pairs().len() } else { edges },
        "hear": a.hear,
        "limits": if a.lan { format!("{:?}", a.limits).to_lowercase() } else { "graph".into() },
        "churn": if a.lan { a.churn } else { 0.0 },
        "slept": slept.iter().filter(|s| **s).count(),
        "links_opened": opened,
        "links_closed": closed,
        "components": if a.lan { sim.components().len() } else { 1 },
        "diameter": if a.lan { sim.diameter() } else { 0 },
        "messages": a.messages,
        "authors": a.authors,
        "history_ratio": history_ratio(&sim, &ids),
        // Anti-entropy (summaries, digests, reconciliation) per link opened.
        "sync_bytes": sync_bytes,
        "sync_bytes_per_link": sync_bytes / (if a.lan { opened } else { edges as u64 }).max(1),
        "loss": a.loss,
        "seed": a.seed,
        "delivery_ratio": r.delivery_ratio,
        "duplicate_deliveries": r.duplicate_deliveries,
        "redundancy": (r.redundancy * 1000.0).round() / 1000.0,
        "hops_p50": r.hops_p50,
        "hops_p99": r.hops_p99,
        "shortest_p99": shortest,
        "stretch_p50": stretch.0,
        "stretch_p99": stretch.1,
        "latency_p50_ms": r.latency_p50_ms,
        "latency_p99_ms": r.latency_p99_ms,
        "live_pull": !a.tree_push,
        "frames_sent": sim.frames_sent,
        "frames_by_kind": frames_by_kind(&sim),
        "virtual_s": (sim.now - start_virtual) as f64 / 1000.0,
        "wall_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
    });
    (out, sim.trace_hash())
}

/// Frames sent, by kind (`Frame::name`).
fn frames_by_kind(sim: &Sim) -> serde_json::Value {
    let names = [
        "hello", "summary", "digest", "want", "batch", "push", "ihave", "graft", "prune", "gone", "proof", "tree",
        "recon",
    ];
    let by: serde_json::Map<String, serde_json::Value> = sim
        .frames_by_kind
        .iter()
        .map(|(k, n)| (names.get(*k as usize).map_or_else(|| format!("tag{k}"), |s| s.to_string()), json!(n)))
        .collect();
    serde_json::Value::Object(by)
}

/// How far the pushes went out of their way: per delivery, its hops less
/// the fewest links from its author over the links open at the end. Returns
/// the p99 of those fewest links, and the p50 and p99 of the excess.
fn stretch(sim: &Sim, sent: &[(festival_core::MessageId, usize, u64)]) -> (usize, (usize, usize)) {
    let mut shortest = Vec::new();
    let mut excess = Vec::new();
    let mut by_author: std::collections::BTreeMap<usize, Vec<festival_core::MessageId>> = Default::default();
    for (id, author, _) in sent {
        by_author.entry(*author).or_default().push(*id);
    }
    for (author, ids) in by_author {
        let dist = sim.hops_from(author);
        for (n, node) in sim.nodes.iter().enumerate() {
            for d in node.delivered.iter().filter(|d| ids.contains(&d.id)) {
                if n != author && dist[n] != usize::MAX {
                    shortest.push(dist[n]);
                    excess.push((d.hops as usize).saturating_sub(dist[n]));
                }
            }
        }
    }
    let p = |v: &mut Vec<usize>, q: f64| {
        v.sort_unstable();
        v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0)
    };
    (p(&mut shortest, 0.99), (p(&mut excess, 0.5), p(&mut excess, 0.99)))
}

/// `--authors`: one message each from that many people, written an hour
/// before the run.
fn history(sim: &mut Sim, authors: usize) -> Vec<SignedEnvelope> {
    (0..authors)
        .map(|_| {
            let me = Identity::from_secret_bytes(&sim.rng.gen());
            let draft = Draft {
                seq: 1,
                room: RoomId::festival(),
                kind: Kind::Text,
                created_at: sim.now - 3_600_000,
                body: b"earlier today".to_vec(),
            };
            SignedEnvelope::sign(&me, draft).expect("a valid draft")
        })
        .collect()
}

/// Of every node's copies of the history, the share it holds.
fn history_ratio(sim: &Sim, ids: &[MessageId]) -> f64 {
    if ids.is_empty() {
        return 1.0;
    }
    let held: usize = sim.nodes.iter().map(|n| ids.iter().filter(|id| n.store.contains(id)).count()).sum();
    held as f64 / (ids.len() * sim.nodes.len()) as f64
}

/// `--lan`: the crowd arrives over 20 s and links by discovery.
fn arrive(sim: &mut Sim, a: &Args, nodes: usize, held: &mut dyn FnMut(&mut Sim) -> Vec<SignedEnvelope>) {
    // Every 25th node is a venue box on mains; the others are phones on
    // battery above the level where they stop relaying.
    let power: Vec<PowerState> =
        (0..nodes)
            .map(|i| {
                if i % 25 == 0 {
                    PowerState::Mains
                } else {
                    PowerState::Battery { percent: sim.rng.gen_range(25..=100) }
                }
            })
            .collect();
    let limits: Vec<usize> = match a.limits {
        Limits::Policy => power.iter().map(|&p| policy::limits(p).max_peers).collect(),
        Limits::Low => (0..nodes).map(|i| if i % 25 == 0 { 8 } else { 2 + i % 3 }).collect(),
    };
    let mut cfg = LanCfg::new(3, LinkSpec::lossy(a.loss));
    cfg.limits = limits;
    if a.hear > 0 && a.hear < nodes {
        cfg.hears = if a.field {
            // A unit square; the radius that holds `hear` others on average.
            let positions: Vec<(f64, f64)> = (0..nodes).map(|_| (sim.rng.gen(), sim.rng.gen())).collect();
            let radius = (a.hear as f64 / (std::f64::consts::PI * nodes as f64)).sqrt();
            Hearing::Field { positions, radius }
        } else {
            Hearing::Random { share: a.hear as f64 / (nodes - 1) as f64, salt: sim.rng.gen() }
        };
    }
    sim.enable_lan(cfg);
    let gap = 20_000 / nodes.max(1) as u64;
    for p in power {
        let h = held(sim);
        let n = sim.add_node_holding(vec![], h);
        if p != PowerState::Mains {
            sim.set_power(n, p);
        }
        sim.run_for(gap);
    }
}
