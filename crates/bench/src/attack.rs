//! `festival-bench attack`: each attack of `festival_sim::attacks` on a
//! simulated festival, and what honest nodes notice: delivery ratio and
//! latency p99 of honest messages without the attack and then with it, in
//! one run, and the victim's peak memory and store.
//!
//! The victim (the honest node every hostile node is linked to) runs in a
//! process of its own (`festival-bench attack-victim`, its core and store
//! driven over a pipe), so its peak RSS is its own, measured by the kernel
//! (`VmHWM`), not the simulator's.

use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use festival_core::sync::{Config, Input, LinkKind, Node, Output};
use festival_core::{Identity, LinkId, MessageId, PeerId, RoomId};
use festival_sim::attacks::{Attack, Attacks};
use festival_sim::host::{self, HostCfg};
use festival_sim::store::MemStore;
use festival_sim::{random_graph, LinkSpec, Remote, Report, Sim};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The victim's memory budget: a base (the process, its store up to its
/// disk budget, the room's authors up to the core's cap) plus, per hostile
/// link, the most per-link state the core keeps (claims at
/// `MAX_CLAIMS_PER_LINK`, ~9 MiB measured, with missing and wants far below).
const MEMORY_BASE_MB: f64 = 32.0;
const MEMORY_PER_HOSTILE_LINK_MB: f64 = 10.0;

#[derive(clap::Args)]
pub struct Args {
    /// One attack (dm_flood, invented_summaries, ihave_flood, claim_stall,
    /// forged_receipts on the simulator; relay_room_flood, relay_dm_flood on
    /// the relay) or `all`: one JSON line each.
    #[arg(long, default_value = "all")]
    attack: String,
    #[arg(long, default_value_t = 200)]
    nodes: usize,
    /// Hostile nodes, all linked to the victim.
    #[arg(long, default_value_t = 10)]
    hostile: usize,
    /// Honest messages in each phase (one every 250 virtual ms).
    #[arg(long, default_value_t = 80)]
    messages: usize,
    /// Each node's store budget, MiB.
    #[arg(long, default_value_t = 4)]
    budget_mb: u64,
    #[arg(long, default_value_t = 5)]
    seed: u64,
    /// With dm_flood: fresh-key DMs (4 KB each) each hostile node pushes
    /// every 500 virtual ms.
    #[arg(long, default_value_t = 1)]
    flood: usize,
    /// With `all`: also the attacks on the real relay (relay_room_flood,
    /// relay_dm_flood; they need root for a private network namespace and
    /// `festival-relay` built beside this binary).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    relay_attacks: bool,
}

#[derive(clap::Args)]
pub struct VictimArgs {
    /// The victim's secret key, hex.
    #[arg(long)]
    secret: String,
    #[arg(long)]
    budget: u64,
}

/// What the simulator tells the victim process.
#[derive(Serialize, Deserialize)]
enum ToVictim {
    Up {
        link: u64,
        peer: PeerId,
    },
    Down {
        link: u64,
    },
    Frame {
        link: u64,
        bytes: Vec<u8>,
    },
    Tick,
    /// Report memory and store size.
    Measure,
}

/// What leaves the victim.
#[derive(Serialize, Deserialize)]
enum FromVictim {
    Send {
        link: u64,
        bytes: Vec<u8>,
    },
    Wake(u64),
    Deliver {
        id: MessageId,
        room: RoomId,
        author: PeerId,
        seq: u64,
    },
    Misbehaving {
        link: u64,
    },
    Measured {
        peak_rss_kb: u64,
        peak_store_bytes: u64,
    },
    /// The end of one answer.
    Done,
}

fn write_msg<T: Serialize>(w: &mut impl Write, v: &T) -> anyhow::Result<()> {
    let bytes = postcard::to_stdvec(v)?;
    w.write_all(&(bytes.len() as u32).to_le_bytes())?;
    w.write_all(&bytes)?;
    Ok(())
}

fn read_msg<T: for<'a> Deserialize<'a>>(r: &mut impl Read) -> anyhow::Result<Option<T>> {
    let mut len = [0u8; 4];
    if let Err(e) = r.read_exact(&mut len) {
        return if e.kind() == std::io::ErrorKind::UnexpectedEof { Ok(None) } else { Err(e.into()) };
    }
    let mut buf = vec![0; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(postcard::from_bytes(&buf)?))
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The victim process: one node's core and store, driven over stdin/stdout.
pub fn victim(a: VictimArgs) -> anyhow::Result<()> {
    let mut secret = [0u8; 32];
    hex::decode_to_slice(&a.secret, &mut secret).context("secret")?;
    let (mut input, mut output) = (BufReader::new(std::io::stdin().lock()), BufWriter::new(std::io::stdout().lock()));
    let cfg = HostCfg {
        budget: Some(a.budget),
        lifetime_ms: Config::default().message_lifetime_ms,
        rooms: Default::default(),
    };
    let mut store = MemStore::default();
    let mut core: Option<Node> = None;
    let mut peak = 0;
    while let Some((now, msg)) = read_msg::<(u64, ToVictim)>(&mut input)? {
        let core = core.get_or_insert_with(|| {
            let cfg = Config { rng_seed: secret, ..Config::default() };
            let power = festival_core::policy::PowerState::Mains;
            Node::new(Identity::from_secret_bytes(&secret), cfg, Default::default(), power, now)
        });
        let input = match msg {
            ToVictim::Up { link, peer } => Some(Input::LinkUp { link: LinkId(link), peer, kind: LinkKind::Lan }),
            ToVictim::Down { link } => Some(Input::LinkDown { link: LinkId(link) }),
            ToVictim::Frame { link, bytes } => Some(Input::Frame { link: LinkId(link), bytes }),
            ToVictim::Tick => Some(Input::Tick),
            ToVictim::Measure => {
                write_msg(&mut output, &FromVictim::Measured { peak_rss_kb: peak_rss_kb(), peak_store_bytes: peak })?;
                None
            }
        };
        if let Some(input) = input {
            for o in host::handle(core, &mut store, &cfg, input, now, &mut peak) {
                let m = match o {
                    Output::Send { link, bytes } => FromVictim::Send { link: link.0, bytes },
                    Output::WakeAt(t) => FromVictim::Wake(t),
                    Output::Deliver { id, room, author, seq } => FromVictim::Deliver { id, room, author, seq },
                    Output::Misbehaving { link, .. } => FromVictim::Misbehaving { link: link.0 },
                    _ => continue,
                };
                write_msg(&mut output, &m)?;
            }
        }
        write_msg(&mut output, &FromVictim::Done)?;
        output.flush()?;
    }
    Ok(())
}

/// The simulator's side of the victim process.
struct VictimProcess {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl VictimProcess {
    fn spawn(secret: [u8; 32], budget: u64) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["attack-victim", "--secret", &hex::encode(secret), "--budget", &budget.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = BufWriter::new(child.stdin.take().context("stdin")?);
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(VictimProcess { child, stdin, stdout })
    }

    fn ask(&mut self, now: u64, msg: ToVictim) -> Vec<FromVictim> {
        write_msg(&mut self.stdin, &(now, msg)).expect("victim alive");
        self.stdin.flush().expect("victim alive");
        let mut out = Vec::new();
        loop {
            match read_msg::<FromVictim>(&mut self.stdout).expect("victim answers") {
                Some(FromVictim::Done) | None => return out,
                Some(m) => out.push(m),
            }
        }
    }

    fn measure(&mut self, now: u64) -> (u64, u64) {
        for m in self.ask(now, ToVictim::Measure) {
            if let FromVictim::Measured { peak_rss_kb, peak_store_bytes } = m {
                return (peak_rss_kb, peak_store_bytes);
            }
        }
        (0, 0)
    }
}

impl Drop for VictimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The victim as the simulator sees it: a pipe to its process.
struct Pipe(std::rc::Rc<std::cell::RefCell<VictimProcess>>);

impl Remote for Pipe {
    fn handle(&mut self, input: Input, now: u64) -> Vec<Output> {
        let msg = match input {
            Input::LinkUp { link, peer, .. } => ToVictim::Up { link: link.0, peer },
            Input::LinkDown { link } => ToVictim::Down { link: link.0 },
            Input::Frame { link, bytes } => ToVictim::Frame { link: link.0, bytes },
            Input::Tick => ToVictim::Tick,
            _ => return Vec::new(),
        };
        self.0
            .borrow_mut()
            .ask(now, msg)
            .into_iter()
            .filter_map(|m| match m {
                FromVictim::Send { link, bytes } => Some(Output::Send { link: LinkId(link), bytes }),
                FromVictim::Wake(t) => Some(Output::WakeAt(t)),
                FromVictim::Deliver { id, room, author, seq } => Some(Output::Deliver { id, room, author, seq }),
                FromVictim::Misbehaving { link } => {
                    Some(Output::Misbehaving { link: LinkId(link), peer: PeerId::from_bytes([0; 32]) })
                }
                _ => None,
            })
            .collect()
    }
}

/// Honest traffic for one phase: `n` festival messages from random honest
/// authors, one every 250 ms; returns them with their send times. The
/// victim (`honest[0]`) only receives: it runs in its own process, which
/// takes frames and ticks, not messages to author.
fn phase(sim: &mut Sim, honest: &[usize], n: usize, mut attacks: Option<&mut Attacks>) -> Vec<(MessageId, usize, u64)> {
    let mut sent = Vec::with_capacity(n);
    let authors = &honest[1..];
    for i in 0..n {
        let author = authors[sim.rng.gen_range(0..authors.len())];
        sent.push((sim.send_text(author, "festival", &format!("honest {i}")), author, sim.now));
        if let Some(a) = attacks.as_deref_mut() {
            if i % 2 == 0 {
                a.round(sim, honest);
            }
        }
        sim.run_for(250);
    }
    sent
}

fn settle(sim: &mut Sim, sent: &[(MessageId, usize, u64)], honest: &[usize], attacks: Option<&mut Attacks>) -> Report {
    let mut attacks = attacks;
    for _ in 0..240 {
        if Report::measure(sim, sent, honest).delivery_ratio >= 1.0 {
            break;
        }
        if let Some(a) = attacks.as_deref_mut() {
            a.round(sim, honest);
        }
        sim.run_for(500);
    }
    Report::measure(sim, sent, honest)
}

/// Who misses which honest message after settling: `[node, [message index]]`
/// for each honest node that misses any, so a ratio under 1 can be told
/// apart (one message nobody has, or one node cut off).
fn missing(sim: &Sim, sent: &[(MessageId, usize, u64)], honest: &[usize]) -> Vec<(usize, Vec<usize>)> {
    let mut out = Vec::new();
    for &n in honest {
        let got: std::collections::HashSet<MessageId> = sim.nodes[n].delivered.iter().map(|d| d.id).collect();
        let lack: Vec<usize> =
            sent.iter().enumerate().filter(|(_, (id, a, _))| *a != n && !got.contains(id)).map(|(i, _)| i).collect();
        if !lack.is_empty() {
            out.push((n, lack));
        }
    }
    out
}

fn one(a: &Args, attack: Attack) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let budget = a.budget_mb * 1024 * 1024;
    let mut sim = Sim::new(a.seed);
    sim.budget = Some(budget);
    for _ in 0..a.nodes {
        sim.add_node(vec![]);
    }
    let victim = 0;
    let hostile: Vec<usize> = (a.nodes - a.hostile..a.nodes).collect();
    let mut edges = random_graph(a.nodes, 4, 6, &mut sim.rng);
    // Every hostile node is linked to the victim.
    edges.extend(hostile.iter().map(|h| (victim, *h)));
    edges.sort();
    edges.dedup();
    let process = std::rc::Rc::new(std::cell::RefCell::new(VictimProcess::spawn(sim.node_secret(victim), budget)?));
    sim.set_remote(victim, Box::new(Pipe(process.clone())));
    for &(x, y) in &edges {
        sim.connect(x, y, LinkSpec::lossy(0.05));
    }
    let mut attacks = Attacks::new(&mut sim, hostile.iter().map(|h| (*h, attack)).collect(), &edges);
    attacks.flood_per_round = a.flood;
    sim.run_for(3_000);
    let honest: Vec<usize> = (0..a.nodes).filter(|i| !attacks.is_hostile(*i)).collect();
    debug_assert_eq!(honest.first(), Some(&victim), "phase() takes honest[0] for the victim");
    for &i in honest.iter().filter(|i| **i != victim) {
        sim.send(i, RoomId::festival(), festival_core::sync::Content::Profile(format!("Node {i}")))?;
    }
    sim.run_for(2_000);

    let base_sent = phase(&mut sim, &honest, a.messages, None);
    let base = settle(&mut sim, &base_sent, &honest, None);
    let (base_rss_kb, _) = process.borrow_mut().measure(sim.now);

    let attack_sent = phase(&mut sim, &honest, a.messages, Some(&mut attacks));
    let under = settle(&mut sim, &attack_sent, &honest, Some(&mut attacks));
    let (peak_rss_kb, peak_store) = process.borrow_mut().measure(sim.now);
    let missing = missing(&sim, &attack_sent, &honest);
    if std::env::var_os("ATTACK_DEBUG").is_some() {
        for (n, lack) in missing.iter().take(3) {
            for i in lack {
                eprintln!("node {n} misses #{i} by node {} sent at {}", attack_sent[*i].1, attack_sent[*i].2);
            }
        }
    }
    let honest_peak = honest.iter().filter(|i| **i != victim).map(|i| sim.nodes[*i].peak_bytes).max().unwrap_or(0);
    let mb = |b: u64| (b as f64 / 1024.0 / 1024.0 * 1000.0).round() / 1000.0;
    Ok(json!({
        "bench": "attack",
        "attack": attack.name(),
        "nodes": a.nodes,
        "hostile": a.hostile,
        "loss": 0.05,
        "seed": a.seed,
        "messages_per_phase": a.messages,
        "flood_per_round": a.flood,
        "baseline_delivery_ratio": base.delivery_ratio,
        "honest_delivery_ratio": under.delivery_ratio,
        "baseline_p99_ms": base.latency_p99_ms,
        "honest_p99_ms": under.latency_p99_ms,
        "p99_ratio": if base.latency_p99_ms > 0 { (under.latency_p99_ms as f64 / base.latency_p99_ms as f64 * 100.0).round() / 100.0 } else { 0.0 },
        "victim_baseline_rss_mb": mb(base_rss_kb * 1024),
        "victim_peak_rss_mb": mb(peak_rss_kb * 1024),
        "victim_disk_mb": mb(peak_store),
        "honest_peak_disk_mb": mb(honest_peak),
        "disk_budget_mb": a.budget_mb,
        "victim_memory_budget_mb": MEMORY_BASE_MB + MEMORY_PER_HOSTILE_LINK_MB * a.hostile as f64 + 2.0 * a.budget_mb as f64,
        "missing": missing,
        "frames_sent": sim.frames_sent,
        "wall_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
    }))
}

/// `all`: every attack on the simulator, then every attack on the relay
/// (`--relay-attacks false` leaves those out); or one of either by name.
pub fn run(a: Args) -> anyhow::Result<Vec<serde_json::Value>> {
    let relay = crate::relay_attack::Params { hostile: a.hostile, messages: a.messages };
    if crate::relay_attack::ATTACKS.contains(&a.attack.as_str()) {
        return Ok(vec![crate::relay_attack::run(&a.attack, &relay)?]);
    }
    let attacks: Vec<Attack> = if a.attack == "all" {
        Attack::ALL.to_vec()
    } else {
        vec![*Attack::ALL.iter().find(|x| x.name() == a.attack).context("unknown attack")?]
    };
    let mut out: Vec<serde_json::Value> = attacks.into_iter().map(|x| one(&a, x)).collect::<anyhow::Result<_>>()?;
    if a.attack == "all" && a.relay_attacks {
        for name in crate::relay_attack::ATTACKS {
            out.push(crate::relay_attack::run(name, &relay)?);
        }
    }
    Ok(out)
}
