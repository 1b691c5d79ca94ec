//! The attacks of `festival-bench attack` that aim at the relay: the real
//! `festival-relay` binary (beside this one), honest synthetic nodes in
//! rooms (as `festival-bench relay` makes them), and hostile clients.
//!
//! - `relay_room_flood`: each hostile client says hello naming 255 rooms
//!   nobody uses, new names every time, as fast as its socket takes them;
//!   when the relay closes it, it comes back under a fresh key.
//! - `relay_dm_flood`: each hostile client pushes sealed DMs of 4,000
//!   characters (the most a text may have), each signed by a fresh key, as
//!   fast as the relay reads them, towards the relay's disk budget.
//!
//! Each hostile client sends at most 4 MiB/s (its uplink, see
//! [`HOSTILE_UPLINK_BYTES_PER_SEC`]).
//!
//! One run: honest messages without the attack (baseline), then the same
//! again while the attack runs. Delivery counts pushes that reached every
//! other member of the author's room; latency is wall time from the push to
//! each member (one process, one clock), so it moves with the machine's
//! load: the targets are checked here and in docs/benchmarks.md, not in a
//! test. The relay's peak memory is its `VmHWM`; its disk, the files in its
//! data directory, sampled every 50 ms while the attack runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use festival_core::body::{seal_dm, Body};
use festival_core::envelope::{Draft, Kind, SignedEnvelope};
use festival_core::frame::{Frame, Hello, Item};
use festival_core::{Identity, RoomId};
use festival_node::relay::wire::RelayMsg;
use festival_node::relay::{RelayClientConfig, RelayConnection};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::procstat::{hwm_mb, percentile};
use crate::relay::{node, Record, RelayProc, FESTIVAL};

/// The relay attacks, by name.
pub const ATTACKS: [&str; 2] = ["relay_room_flood", "relay_dm_flood"];

/// The relay's disk budget in this bench: the smallest it accepts.
const DISK_BUDGET_MB: u64 = 64;
/// What the relay may take in memory under attack: its baseline with the
/// honest nodes is ~20 MB; hostile sockets hold at most their queues.
const MEMORY_BUDGET_MB: f64 = 256.0;
/// Honest rooms and members per room (one of them authors).
const ROOMS: usize = 4;
const ROOM_SIZE: usize = 8;
/// Honest messages go out at this rate, all rooms together.
const HONEST_PER_SEC: f64 = 20.0;
/// Distinct hostile hellos (255 room names each: 65,280 names, far more
/// than the rooms a relay carries) and distinct sealed DMs (250 per honest
/// message: 20,000 of ~4 KB, 80 MB, more than the disk budget, at the
/// default 80) prepared per run.
const HELLO_FRAMES: usize = 256;
const DM_FRAMES_PER_HONEST_MESSAGE: usize = 250;
/// Each hostile client's uplink: 4 MiB/s, a phone on a good Wi-Fi channel
/// and four times what the relay lets one identity send (ten of them send
/// 40 MiB/s). Without a cap the clients would send at loopback speed and
/// take the two cores this machine shares between them and the relay.
const HOSTILE_UPLINK_BYTES_PER_SEC: f64 = 4.0 * 1024.0 * 1024.0;
/// The attack runs this long before the honest phase starts.
const WARM_UP: Duration = Duration::from_secs(3);

pub struct Params {
    pub hostile: usize,
    pub messages: usize,
}

/// Run one relay attack inside a private network namespace (re-running
/// this binary under `unshare --net` if needed; needs root).
pub fn run(name: &str, p: &Params) -> anyhow::Result<Value> {
    ensure!(ATTACKS.contains(&name), "unknown relay attack {name}");
    if !festival_node::netns::in_private_netns() {
        let exe = std::env::current_exe()?;
        let out = Command::new("unshare")
            .args(["--net", "bash", "-c", "ip link set lo up && exec \"$@\"", "_"])
            .arg(exe)
            .args(["attack", "--attack", name, "--hostile", &p.hostile.to_string()])
            .args(["--messages", &p.messages.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .context("unshare --net (needs root)")?;
        ensure!(out.status.success(), "the relay attack inside the namespace failed");
        return Ok(serde_json::from_str(String::from_utf8(out.stdout)?.trim())?);
    }
    let relay_bin = std::env::current_exe()?.with_file_name("festival-relay");
    ensure!(relay_bin.exists(), "{} not found: cargo build -p festival-relay (same profile)", relay_bin.display());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(attack(&relay_bin, name, p))
}

async fn attack(bin: &Path, name: &str, p: &Params) -> anyhow::Result<Value> {
    let started = Instant::now();
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(config.path(), format!("disk_budget_mb = {DISK_BUDGET_MB}\n"))?;
    let config_path = config.path().to_string_lossy().into_owned();
    // Every client here comes from 127.0.0.1: the per-address limits are
    // lifted so the honest nodes are not refused for sharing it. The rate
    // limits per socket and per identity stay the relay's defaults.
    let relay = RelayProc::start_with(bin, &["--config", &config_path])?;
    let record = Record::sized(p.messages, p.messages * (ROOM_SIZE - 1), false);
    let rooms: Vec<RoomId> = (0..ROOMS).map(|i| format!("stage-{i}").parse().expect("room id")).collect();
    let mut authors = Vec::new();
    let mut members = Vec::new();
    for i in 0..ROOMS * ROOM_SIZE {
        let room = rooms[i / ROOM_SIZE].clone();
        let (tx, task) = node(&relay.url, vec![RoomId::festival(), room], record.clone()).await?;
        if i % ROOM_SIZE == 0 {
            authors.push((tx, Identity::generate(&mut rand::rngs::OsRng), 0u64));
        } else {
            members.push((tx, task));
        }
    }
    // Hellos done and rooms joined.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let base = honest_phase(&record, &rooms, &mut authors, p.messages).await?;

    // The hostile frames are made before the attack starts, so the CPU
    // the relay shares with this process goes to sending them, not to
    // signing and formatting (an attacker has machines of its own).
    let frames: Arc<Vec<Vec<u8>>> = Arc::new(if name == "relay_dm_flood" {
        let n = (p.messages * DM_FRAMES_PER_HONEST_MESSAGE) as u64;
        tokio::task::spawn_blocking(move || (0..n).map(sealed_dm_push).collect()).await?
    } else {
        (0..HELLO_FRAMES as u64).map(room_hello).collect()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    let mut hostile = Vec::new();
    for h in 0..p.hostile {
        let (url, stop, pushed, frames) = (relay.url.clone(), stop.clone(), pushed.clone(), frames.clone());
        hostile.push(tokio::spawn(async move { hostile_client(&url, &frames, h, &stop, &pushed).await }));
    }
    let disk_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, dir) = (stop.clone(), disk_peak.clone(), relay.dir.path().to_owned());
        tokio::spawn(async move {
            while !stop.load(Relaxed) {
                peak.fetch_max(dir_bytes(&dir), Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(WARM_UP).await;
    let under = honest_phase(&record, &rooms, &mut authors, p.messages).await?;
    stop.store(true, Relaxed);
    for h in hostile {
        let _ = h.await;
    }
    let _ = sampler.await;
    let peak_rss = hwm_mb(relay.child.id())?;
    let disk_peak = disk_peak.load(Relaxed).max(dir_bytes(relay.dir.path()));
    drop(authors);
    for (tx, task) in members {
        drop(tx);
        let _ = task.await;
    }
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(json!({
        "bench": "attack",
        "attack": name,
        "target": "relay",
        "honest_nodes": ROOMS * ROOM_SIZE,
        "hostile": p.hostile,
        "messages_per_phase": p.messages,
        "hostile_frames_sent": pushed.load(Relaxed),
        "baseline_delivery_ratio": base.ratio,
        "honest_delivery_ratio": under.ratio,
        "baseline_p99_ms": base.p99,
        "honest_p99_ms": under.p99,
        "p99_ratio": if base.p99 > 0.0 { (under.p99 / base.p99 * 100.0).round() / 100.0 } else { 0.0 },
        "victim_peak_rss_mb": round(peak_rss),
        "victim_disk_mb": round(disk_peak as f64 / 1024.0 / 1024.0),
        "disk_budget_mb": DISK_BUDGET_MB,
        "victim_memory_budget_mb": MEMORY_BUDGET_MB,
        "wall_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
    }))
}

struct Phase {
    ratio: f64,
    p99: f64,
}

/// `messages` honest pushes, round robin over the rooms' authors, then
/// until each reached every other member of its room (or 20 s passed).
async fn honest_phase(
    record: &Mutex<Record>,
    rooms: &[RoomId],
    authors: &mut [(mpsc::Sender<Vec<u8>>, Identity, u64)],
    messages: usize,
) -> anyhow::Result<Phase> {
    {
        let mut r = record.lock().expect("record");
        r.sent.clear();
        r.latencies.clear();
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / HONEST_PER_SEC));
    for n in 0..messages {
        tick.tick().await;
        let r = n % rooms.len();
        let (tx, author, seq) = &mut authors[r];
        *seq += 1;
        let env = SignedEnvelope::sign(
            author,
            Draft {
                seq: *seq,
                room: rooms[r].clone(),
                kind: Kind::Text,
                created_at: festival_node::clock::now_ms(),
                body: Body::Text(format!("honest message {n}")).encode(),
            },
        )?;
        let frame = Frame::Push(Item { hops: 0, envelope: env.bytes().to_vec() }).encode();
        record.lock().expect("record").sent.insert(env.bytes().to_vec(), Instant::now());
        tx.send(RelayMsg::encode_frame(&frame)).await.context("an honest node's socket closed")?;
    }
    let expected = messages * (ROOM_SIZE - 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while record.lock().expect("record").latencies.len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut lat = std::mem::take(&mut record.lock().expect("record").latencies);
    Ok(Phase {
        ratio: (lat.len().min(expected) as f64 / expected as f64 * 10_000.0).round() / 10_000.0,
        p99: percentile(&mut lat, 0.99).unwrap_or(0.0),
    })
}

/// One hostile client until `stop`: connects under a fresh key, sends the
/// prepared `frames` in turn (starting at its own offset), and comes back
/// under another key whenever the relay closes it. It never reads: what the
/// relay queues for it, the relay drops or closes it for.
async fn hostile_client(url: &str, frames: &[Vec<u8>], me: usize, stop: &AtomicBool, pushed: &AtomicU64) {
    let mut n = me * frames.len() / 16;
    while !stop.load(Relaxed) {
        let key = Identity::generate(&mut rand::rngs::OsRng);
        let Ok(mut conn) = RelayConnection::connect(&RelayClientConfig::new(url, FESTIVAL), &key).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (since, mut bytes) = (Instant::now(), 0u64);
        while !stop.load(Relaxed) {
            n = (n + 1) % frames.len();
            if conn.send_raw(RelayMsg::encode_frame(&frames[n])).await.is_err() {
                break;
            }
            pushed.fetch_add(1, Relaxed);
            // Held to its uplink: ahead of it, wait.
            bytes += frames[n].len() as u64;
            let due = since + Duration::from_secs_f64(bytes as f64 / HOSTILE_UPLINK_BYTES_PER_SEC);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
}

/// A hello naming 255 rooms no one else uses, new names each time.
fn room_hello(n: u64) -> Vec<u8> {
    let rooms = (0..255).map(|i| format!("junk-{n}-{i}").parse().expect("room id")).collect();
    Frame::Hello(Hello {
        version: festival_core::sync::PROTOCOL_VERSION,
        ack: false,
        rooms,
        relays: false,
        powered: false,
    })
    .encode()
}

/// A push of a sealed DM of the longest text, from a fresh key to a fresh
/// recipient.
fn sealed_dm_push(n: u64) -> Vec<u8> {
    let mut rng = rand::rngs::OsRng;
    let (from, to) = (Identity::generate(&mut rng), Identity::generate(&mut rng).peer_id());
    let text = format!("{n} {}", "x".repeat(festival_core::body::MAX_TEXT_BYTES - 24));
    let sealed = seal_dm(&from, &to, &text, &mut rng).expect("seals");
    let body = Body::SealedDm(sealed);
    let draft = Draft {
        seq: 1,
        room: RoomId::direct(),
        kind: body.kind(),
        created_at: festival_node::clock::now_ms(),
        body: body.encode(),
    };
    let env = SignedEnvelope::sign(&from, draft).expect("valid draft");
    Frame::Push(Item { hops: 0, envelope: env.bytes().to_vec() }).encode()
}

/// Bytes of the files under `dir` (the relay's database, WAL, shm, keys).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
