//! `festival-bench relay`: the relay server under many synthetic nodes,
//! inside a private network namespace (it re-runs itself under
//! `unshare --net`, with a raised file limit; needs root).
//!
//! The relay is the real `festival-relay` binary (beside this one: build
//! both with `cargo build --release -p festival-relay -p festival-bench`),
//! so its CPU and RSS are its own. The synthetic nodes are tasks in this
//! process, each an authenticated `RelayConnection` that speaks just enough
//! of the core protocol: it says hello with its rooms, answers hellos, and
//! records the pushes it receives.
//!
//! - fan-out: `--nodes` nodes in rooms of `--room-size`; one member of each
//!   room authors its messages, `--rate` messages/s in total for `--secs`;
//!   latency from the author's send to each other member's receipt of the
//!   push (one process, one clock): p50/p99; the relay's CPU and RSS over
//!   that window.
//! - max connections: a fresh relay, idle nodes added until `--max-conns`,
//!   the open-file limit (less 100) or the first failure; the relay's RSS
//!   at that count, per connection, and what 24 GiB would hold at that cost
//!   (`connections_in_24gib_projected`, a projection, not a measurement).
//!
//! - P2P versus relay: two more synthetic nodes, linked both through a
//!   fresh relay and by a WebRTC data channel (festival-node's `Endpoint`,
//!   as `festival-bench lan` uses it); each message is pushed on both paths
//!   at the same instant and its arrival timed on each: `p2p_latency_ms`
//!   and `relay_latency_ms` (p50, one way), and their ratio.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use festival_core::body::Body;
use festival_core::envelope::{Draft, Kind, SignedEnvelope};
use festival_core::frame::{Frame, Hello, Item};
use festival_core::{Identity, RoomId};
use festival_node::relay::wire::RelayMsg;
use festival_node::relay::{RelayClientConfig, RelayConnection};
use festival_node::webrtc::EndpointEvent;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::procstat::{cpu_ticks, percentile, rss_mb, TICKS_PER_SEC};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000)]
    nodes: usize,
    /// Members per room (the author included); 1,000 with 1,000 nodes is
    /// one room everybody is in.
    #[arg(long, default_value_t = 20)]
    room_size: usize,
    /// Messages per second, all rooms together.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Stop adding idle connections here, or below the file limit (each
    /// connection is a descriptor in the relay and one in this process).
    #[arg(long, default_value_t = 100_000)]
    max_conns: usize,
    /// Messages sent on both paths for the P2P versus relay comparison.
    #[arg(long, default_value_t = 200)]
    race_samples: usize,
}

pub(crate) const FESTIVAL: &str = "bench";

pub fn run(a: Args) -> anyhow::Result<Value> {
    if !festival_node::netns::in_private_netns() {
        return Ok(serde_json::from_str(&crate::netlab::rerun_in_private_netns(NETNS_SETUP)?)?);
    }
    ensure!(a.room_size >= 2 && a.nodes >= a.room_size, "need at least one room of two");
    let relay_bin = std::env::current_exe()?.with_file_name("festival-relay");
    ensure!(relay_bin.exists(), "{} not found: cargo build --release -p festival-relay", relay_bin.display());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let load = Load { nodes: a.nodes, room_size: a.room_size, rate: a.rate, secs: a.secs };
    let mut out = rt.block_on(fanout_on(RelayProc::start(&relay_bin)?, &load))?;
    let (p2p, relay) = rt.block_on(p2p_vs_relay(&relay_bin, a.race_samples))?;
    out["p2p_latency_ms"] = json!(p2p);
    out["relay_latency_ms"] = json!(relay);
    out["p2p_over_relay"] = json!(((p2p / relay) * 1000.0).round() / 1000.0);
    let fd_limit = open_files_limit();
    let target = a.max_conns.min(fd_limit.map_or(usize::MAX, |l| l.saturating_sub(100)));
    let (max, rss) = rt.block_on(max_connections(&relay_bin, target))?;
    out["open_files_limit"] = json!(fd_limit);
    out["max_connections"] = json!(max);
    out["max_connections_rss_mb"] = json!(rss);
    // What 24 GiB would hold at the measured cost per connection (the relay
    // process alone; the clients here are in the bench process).
    if max > 0 {
        let per_conn = rss / max as f64;
        out["rss_per_connection_kb"] = json!((per_conn * 1024.0 * 10.0).round() / 10.0);
        out["connections_in_24gib_projected"] = json!((24.0 * 1024.0 / per_conn) as u64);
    }
    Ok(out)
}

/// This process's open-file limit (what the relay it starts inherits).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The namespace for tens of thousands of sockets: loopback up, the file
/// limit raised as far as the kernel allows (root may raise the hard limit
/// to `fs.nr_open`), and the namespace's own ephemeral port range widened
/// so that one client address can hold ~64,000 connections to the relay.
pub(crate) const NETNS_SETUP: &str = "ip link set lo up && \
    { ulimit -Hn $(cat /proc/sys/fs/nr_open) 2>/dev/null || true; } && ulimit -n $(ulimit -Hn) && \
    echo '1024 65535' > /proc/sys/net/ipv4/ip_local_port_range";

pub(crate) struct RelayProc {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) dir: tempfile::TempDir,
}

impl RelayProc {
    pub(crate) fn start(bin: &Path) -> anyhow::Result<RelayProc> {
        // Raised so that one room's author may push the whole rate
        // (`--room-size` = `--nodes`); the defaults are for phones.
        Self::start_with(bin, &["--frames-per-sec", "100000", "--frames-burst", "100000"])
    }

    /// With `extra` arguments besides the connection limits (the relay's
    /// defaults for the rest).
    pub(crate) fn start_with(bin: &Path, extra: &[&str]) -> anyhow::Result<RelayProc> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--no-stun", "--festival", FESTIVAL])
            .args(["--max-connections", "1000000", "--max-connections-per-ip", "1000000"])
            // Every synthetic node comes from 127.0.0.1, up to 100 at once.
            .args(["--max-unauthenticated", "1000000", "--max-unauthenticated-per-prefix", "1000000"])
            .args(["--idle-timeout-secs", "3600", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().context("stdout")?), &mut line)?;
        let addr = line.split('"').nth(3).context("the relay prints its address")?.to_owned();
        Ok(RelayProc { child, url: format!("ws://{addr}"), dir })
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send times of messages in flight, and the latencies measured (ms).
#[derive(Default)]
pub(crate) struct Record {
    /// By the envelope's bytes (what a push carries unchanged).
    pub(crate) sent: HashMap<Vec<u8>, Instant>,
    pub(crate) latencies: Vec<f64>,
    /// With `--latency-log`: each delivery's send time and latency.
    pub(crate) log: Option<Vec<(Instant, f64)>>,
}

impl Record {
    /// A record with room for the whole load from the start: growing a
    /// map of thousands of envelopes (every key hashed again) or a vector
    /// of hundreds of thousands of latencies happens under the lock that
    /// every node's receipts take, and stalled the load generator for
    /// milliseconds at a time, counted as the relay's latency.
    pub(crate) fn sized(messages: usize, deliveries: usize, log: bool) -> Arc<Mutex<Record>> {
        Arc::new(Mutex::new(Record {
            sent: HashMap::with_capacity(messages),
            latencies: Vec::with_capacity(deliveries),
            log: log.then(|| Vec::with_capacity(deliveries)),
        }))
    }
}

/// Connect one synthetic node in `rooms`; it answers hellos and records
/// pushes until `out` closes. Returns its sender for encoded relay messages.
pub(crate) async fn node(
    url: &str,
    rooms: Vec<RoomId>,
    record: Arc<Mutex<Record>>,
) -> anyhow::Result<(mpsc::Sender<Vec<u8>>, tokio::task::JoinHandle<()>)> {
    let me = Identity::generate(&mut rand::rngs::OsRng);
    let cfg = RelayClientConfig::new(url, FESTIVAL);
    let mut conn = RelayConnection::connect(&cfg, &me).await?;
    let hello = |ack| {
        let version = festival_core::sync::PROTOCOL_VERSION;
        Frame::Hello(Hello { version, ack, rooms: rooms.clone(), relays: false, powered: false })
    };
    conn.send_raw(RelayMsg::encode_frame(&hello(false).encode())).await?;
    let ack = RelayMsg::encode_frame(&hello(true).encode());
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(bytes) => if conn.send_raw(bytes).await.is_err() { return },
                    None => return conn.close().await,
                },
                msg = conn.recv() => match msg {
                    Ok(Some(RelayMsg::Frame(bytes))) => match Frame::decode(&bytes) {
                        Ok(Frame::Hello(h)) if !h.ack && conn.send_raw(ack.clone()).await.is_err() => return,
                        Ok(Frame::Push(item)) => {
                            // When the push arrived, not when the lock was had.
                            let now = Instant::now();
                            let mut r = record.lock().expect("record");
                            if let Some(t) = r.sent.get(&item.envelope[..]).copied() {
                                let ms = now.duration_since(t).as_secs_f64() * 1000.0;
                                r.latencies.push(ms);
                                if let Some(log) = &mut r.log {
                                    log.push((t, ms));
                                }
                            }
                        }
                        _ => {}
                    },
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return,
                }
            }
        }
    });
    Ok((tx, task))
}

/// The fan-out load: nodes in rooms of `room_size`, one author per room,
/// `rate` messages/s in all for `secs`.
pub(crate) struct Load {
    pub(crate) nodes: usize,
    pub(crate) room_size: usize,
    pub(crate) rate: u32,
    pub(crate) secs: u64,
}

/// The fan-out figures of `relay` under `a`.
pub(crate) async fn fanout_on(relay: RelayProc, a: &Load) -> anyhow::Result<Value> {
    let total = (a.rate as u64 * a.secs) as usize;
    let expected = total * (a.room_size - 1);
    let record = Record::sized(total, expected, false);
    let rooms: Vec<RoomId> =
        (0..a.nodes / a.room_size).map(|i| format!("room-{i}").parse().expect("room id")).collect();
    let mut authors = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..rooms.len() * a.room_size {
        let room = rooms[i / a.room_size].clone();
        let (tx, task) = node(&relay.url, vec![RoomId::festival(), room], record.clone()).await?;
        if i % a.room_size == 0 {
            authors.push((tx, Identity::generate(&mut rand::rngs::OsRng)));
        } else {
            tasks.push((tx, task));
        }
    }
    // Let the relay join every room and finish the hellos.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = cpu_ticks(relay.child.id())?;
    let started = Instant::now();
    let mut seqs = vec![0u64; rooms.len()];
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate as f64));
    for n in 0..total {
        tick.tick().await;
        let r = n % rooms.len();
        seqs[r] += 1;
        // Authored by the room's author identity, pushed by its node.
        let (tx, author) = &authors[r];
        let (env, msg) = bench_push(author, &rooms[r], seqs[r], n)?;
        record.lock().expect("record").sent.insert(env, Instant::now());
        let _ = tx.try_send(msg);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while record.lock().expect("record").latencies.len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(relay.child.id())? - before) as f64 / TICKS_PER_SEC / elapsed * 100.0;
    let rss = rss_mb(relay.child.id())?;
    let mut lat = std::mem::take(&mut record.lock().expect("record").latencies);
    let delivered = lat.len();
    drop(authors);
    for (tx, task) in tasks {
        drop(tx);
        let _ = task.await;
    }
    Ok(json!({
        "bench": "relay",
        "nodes": rooms.len() * a.room_size,
        "room_size": a.room_size,
        "msgs_per_sec": a.rate,
        "secs": a.secs,
        "messages": total,
        "expected_deliveries": expected,
        "delivered": delivered,
        "fanout_p50_ms": percentile(&mut lat, 0.5),
        "fanout_p99_ms": percentile(&mut lat, 0.99),
        "relay_cpu_pct": (cpu * 10.0).round() / 10.0,
        "relay_rss_mb": (rss * 10.0).round() / 10.0,
    }))
}

/// Message `n` of a fan-out load, by `author` at `seq` of `room`: its
/// envelope's bytes (what the push carries to every member) and the relay
/// message that pushes it.
pub(crate) fn bench_push(author: &Identity, room: &RoomId, seq: u64, n: usize) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let env = SignedEnvelope::sign(
        author,
        Draft {
            seq,
            room: room.clone(),
            kind: Kind::Text,
            created_at: festival_node::clock::now_ms(),
            body: Body::Text(format!("bench message {n}: {}", "x".repeat(100))).encode(),
        },
    )?;
    let frame = Frame::Push(Item { hops: 0, envelope: env.bytes().to_vec() }).encode();
    Ok((env.bytes().to_vec(), RelayMsg::encode_frame(&frame)))
}

/// The same messages on a data channel and through the relay, sent at the
/// same instant: (p2p p50, relay p50), one way, in ms.
async fn p2p_vs_relay(bin: &Path, samples: usize) -> anyhow::Result<(f64, f64)> {
    let relay = RelayProc::start(bin)?;
    let room: RoomId = "race".parse().expect("room id");
    let rooms = vec![RoomId::festival(), room.clone()];
    let arrived = Arc::new(Mutex::new(Record::default()));
    let (via_relay, _sender) = node(&relay.url, rooms.clone(), Arc::new(Mutex::new(Record::default()))).await?;
    let (_keep, receiver) = node(&relay.url, rooms, arrived.clone()).await?;

    let (mut x, mut y) = (crate::lan::side().await?, crate::lan::side().await?);
    let conn = festival_node::webrtc::ConnId(1);
    crate::lan::open_channel(&mut x, &mut y, conn).await?;
    // The relay joins the room from the hellos; let that settle.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let author = Identity::generate(&mut rand::rngs::OsRng);
    let mut p2p = Vec::with_capacity(samples);
    for seq in 1..=samples as u64 {
        let env = SignedEnvelope::sign(
            &author,
            Draft {
                seq,
                room: room.clone(),
                kind: Kind::Text,
                created_at: festival_node::clock::now_ms(),
                body: Body::Text(format!("race {seq}: {}", "x".repeat(100))).encode(),
            },
        )?;
        let frame = Frame::Push(Item { hops: 0, envelope: env.bytes().to_vec() }).encode();
        let sent = Instant::now();
        arrived.lock().expect("record").sent.insert(env.bytes().to_vec(), sent);
        via_relay.send(RelayMsg::encode_frame(&frame)).await?;
        x.ep.send(conn, &frame)?;
        loop {
            ensure!(sent.elapsed() < Duration::from_secs(5), "a data-channel message was lost");
            let (_, ey) = crate::lan::step(&mut x, &mut y, Duration::from_millis(50)).await?;
            if ey.iter().any(|e| matches!(e, EndpointEvent::Data(..))) {
                p2p.push(sent.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
        // Spaced out: one message in flight at a time on each path.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrived.lock().expect("record").latencies.len() < samples && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut relayed = std::mem::take(&mut arrived.lock().expect("record").latencies);
    ensure!(relayed.len() == samples, "{} of {samples} messages came through the relay", relayed.len());
    drop(via_relay);
    receiver.abort();
    let p2p = percentile(&mut p2p, 0.5).context("no p2p samples")?;
    Ok((p2p, percentile(&mut relayed, 0.5).context("no relay samples")?))
}

/// Idle nodes added 100 at a time until `target` or the first failure.
async fn max_connections(bin: &Path, target: usize) -> anyhow::Result<(usize, f64)> {
    let relay = RelayProc::start(bin)?;
    let held = hold(&relay, target).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_mb(relay.child.id())?;
    let max = held.len();
    for (tx, task) in held {
        drop(tx);
        task.abort();
    }
    Ok((max, (rss * 10.0).round() / 10.0))
}

/// What one more idle connection costs a relay, in KB of RSS: the growth
/// from a relay holding 10 connections to one holding `n` more, over `n`
/// (so the process's own baseline is not counted per connection).
pub(crate) async fn rss_per_idle_conn_kb(bin: &Path, n: usize) -> anyhow::Result<f64> {
    let relay = RelayProc::start(bin)?;
    let first = hold(&relay, 10).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mb(relay.child.id())?;
    let more = hold(&relay, n).await?;
    ensure!(more.len() == n, "only {} of {n} connections opened", more.len());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mb(relay.child.id())?;
    for (tx, task) in first.into_iter().chain(more) {
        drop(tx);
        task.abort();
    }
    Ok(((after - before) * 1024.0 / n as f64 * 10.0).round() / 10.0)
}

type Held = Vec<(mpsc::Sender<Vec<u8>>, tokio::task::JoinHandle<()>)>;

/// Open up to `target` idle nodes on `relay` (the festival room only), a
/// hundred at a time; fewer when a connection fails (a file limit).
async fn hold(relay: &RelayProc, target: usize) -> anyhow::Result<Held> {
    let record = Arc::new(Mutex::new(Record::default()));
    let mut held = Vec::new();
    'outer: while held.len() < target {
        let batch = (target - held.len()).min(100);
        let mut joins = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (url, record) = (relay.url.clone(), record.clone());
            joins.spawn(async move { node(&url, vec![RoomId::festival()], record).await });
        }
        while let Some(r) = joins.join_next().await {
            match r? {
                Ok(n) => held.push(n),
                Err(e) => {
                    eprintln!("connection {} failed: {e}", held.len() + 1);
                    break 'outer;
                }
            }
        }
    }
    Ok(held)
}
