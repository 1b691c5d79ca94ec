//! `festival-bench relay-cluster`: several festival-relay instances as one
//! relay (docs/relay-cluster.md) under synthetic nodes, inside a private
//! network namespace (it re-runs itself under `unshare --net`; needs root).
//!
//! It starts its own PostgreSQL (durable: fsync on, as a deployment's) and
//! Redis (append-only file on), both on Unix sockets in temporary
//! directories, and `--instances` real `festival-relay` processes on them.
//! `--nodes` synthetic nodes (those of `festival-bench relay`) sit in rooms
//! of `--room-size`, each room's members spread over the instances (member
//! k of room r on instance (r + k) mod instances), so most deliveries cross
//! instances. One member of each room authors, `--rate` messages/s in all
//! for `--secs`. Figures: fan-out latency from the author's send to each
//! member's receipt of the push (one process, one clock), all of them and
//! those that crossed instances; deliveries against the expected; each
//! instance's CPU and RSS, PostgreSQL's CPU (all its processes) and
//! write transactions a second (`postgres_write_xacts_per_sec`), and
//! Redis's CPU over the load; CPU per 1,000 messages/s for the whole tier
//! (`cpu_pct_per_1k_msgs`) and for the instances alone
//! (`relay_cpu_pct_per_1k_msgs`). Each instance runs `--threads` workers.
//! Then the same load on one instance with SQLite (`festival-bench relay`'s
//! fan-out), and on the seed design's stack: as many Socket.IO servers with
//! the Redis Streams adapter (Node.js; `bench/socketio`, installed from the
//! npm registry with `npm ci` before the namespace is entered) on a Redis of
//! their own, the same clients in the same rooms: its fan-out and the CPU of
//! its servers and Redis (`socketio_cpu_pct_per_1k_msgs`; the servers
//! alone: `socketio_servers_cpu_pct_per_1k_msgs`). Socket.IO passes
//! messages unsigned and keeps nothing; festival-relay verifies every
//! signature and commits every message to PostgreSQL before it passes it
//! on. Last, what one more idle
//! connection costs an instance in RSS (`rss_per_idle_conn_kb`: a relay
//! holding 10 nodes, then `--nodes` more, the growth over `--nodes`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use festival_core::{Identity, RoomId};
use serde_json::{json, Value};

use crate::procstat::{cpu_ticks, percentile, rss_mb, TICKS_PER_SEC};
use crate::relay::{node, Record, RelayProc};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 3)]
    instances: usize,
    #[arg(long, default_value_t = 3_000)]
    nodes: usize,
    /// Members per room, the author included.
    #[arg(long, default_value_t = 20)]
    room_size: usize,
    /// Messages per second, all rooms together.
    #[arg(long, default_value_t = 1_500)]
    rate: u32,
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Worker threads of each instance (`festival-relay --threads`; 0:
    /// one per core). One: the instances, PostgreSQL, Redis and the load
    /// share this machine's cores, and each Socket.IO server is one thread.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// `festival-relay --commits-per-sec` for every instance and the
    /// single one (default: the relay's).
    #[arg(long)]
    commits_per_sec: Option<u32>,
    /// Leave out the same load on one instance with SQLite.
    #[arg(long)]
    no_single: bool,
    /// Leave out the same load on Socket.IO.
    #[arg(long)]
    no_socketio: bool,
    /// Write every delivery of the cluster's load to this file, a line
    /// each: `same` or `cross`, when it was sent (ms from the load's
    /// start) and its latency (ms); for finding where a tail comes from.
    #[arg(long)]
    latency_log: Option<std::path::PathBuf>,
}

/// Where the Socket.IO side lives (its package.json, servers and load).
fn socketio_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/socketio")
}

pub fn run(a: Args) -> anyhow::Result<Value> {
    if !festival_node::netns::in_private_netns() {
        if !a.no_socketio && !socketio_dir().join("node_modules").exists() {
            // From the npm registry, before the namespace cuts the network.
            let ok = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                .arg(socketio_dir())
                .status()
                .context("npm ci for bench/socketio (Node.js 20)")?;
            ensure!(ok.success(), "npm ci in bench/socketio failed");
        }
        return Ok(serde_json::from_str(&crate::netlab::rerun_in_private_netns(crate::relay::NETNS_SETUP)?)?);
    }
    ensure!(a.instances >= 1 && a.room_size >= 2 && a.nodes >= a.room_size, "need an instance and a room of two");
    let relay_bin = std::env::current_exe()?.with_file_name("festival-relay");
    ensure!(relay_bin.exists(), "{} not found: cargo build --release -p festival-relay", relay_bin.display());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // Every room of the load is new to the relay at once: its budget of
    // new rooms a minute (60, for a festival's people) would keep most
    // waiting for minutes.
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(config.path(), "rooms_created_per_minute = 1000000\nrooms_per_identity_per_hour = 1000000\n")?;
    let config = config.path().to_str().context("a temporary path")?.to_owned();
    let mut out = rt.block_on(cluster(&relay_bin, &a, &config))?;
    if !a.no_single {
        let mut extra = vec!["--config", &config];
        let load = load_args(&a);
        extra.extend(load.iter().map(String::as_str));
        let single = rt.block_on(crate::relay::fanout_on(
            RelayProc::start_with(&relay_bin, &extra)?,
            &crate::relay::Load { nodes: a.nodes, room_size: a.room_size, rate: a.rate, secs: a.secs },
        ))?;
        for key in ["fanout_p50_ms", "fanout_p99_ms", "delivered", "relay_cpu_pct", "relay_rss_mb"] {
            out[format!("single_sqlite_{key}")] = single[key].clone();
        }
        let cpu = single["relay_cpu_pct"].as_f64().unwrap_or(0.0);
        out["single_sqlite_cpu_pct_per_1k_msgs"] = json!(per_1k_msgs(cpu, a.rate));
    }
    out["rss_per_idle_conn_kb"] = json!(rt.block_on(crate::relay::rss_per_idle_conn_kb(&relay_bin, a.nodes))?);
    if !a.no_socketio {
        let sio = rt.block_on(socketio(&a))?;
        for key in ["fanout_p50_ms", "fanout_p99_ms", "cross_fanout_p99_ms", "delivered", "cpu_pct_per_1k_msgs"] {
            out[format!("socketio_{key}")] = sio[key].clone();
        }
        out["socketio_servers_cpu_pct"] = sio["servers_cpu_pct"].clone();
        let servers = sio["servers_cpu_pct"].as_f64().unwrap_or(0.0);
        out["socketio_servers_cpu_pct_per_1k_msgs"] = json!(per_1k_msgs(servers, a.rate));
        out["socketio_redis_cpu_pct"] = sio["redis_cpu_pct"].clone();
    }
    Ok(out)
}

/// What every relay of the benchmark is started with besides its store:
/// frame limits past the load's (the defaults are for phones), and the
/// commit budget asked for.
fn load_args(a: &Args) -> Vec<String> {
    let mut args: Vec<String> = ["--frames-per-sec", "100000", "--frames-burst", "100000"].map(String::from).to_vec();
    if let Some(c) = a.commits_per_sec {
        args.extend(["--commits-per-sec".to_owned(), c.to_string()]);
    }
    args
}

/// The same load on Socket.IO servers with the Redis Streams adapter.
async fn socketio(a: &Args) -> anyhow::Result<Value> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = socketio_dir();
    let redis = festival_relay::testing::TempRedis::start().await.context("starting Redis")?;
    let socket = redis.url().trim_start_matches("redis+unix://").to_owned();
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..a.instances {
        let mut child = Command::new("node")
            .arg(dir.join("server.js"))
            .arg(&socket)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("node server.js")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let listening: Value = serde_json::from_str(&line).with_context(|| format!("a Socket.IO server: {line}"))?;
        ports.push(listening["listening"].as_u64().context("the port it listens on")?.to_string());
        servers.push(KillOnDrop(child));
    }
    let mut load = KillOnDrop(
        Command::new("node")
            .arg(dir.join("load.js"))
            .arg(ports.join(","))
            .args([a.nodes.to_string(), a.room_size.to_string(), a.rate.to_string(), a.secs.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("node load.js")?,
    );
    let pids: Vec<u32> = servers.iter().map(|s| s.0.id()).collect();
    let redis_pid = redis.pid().context("Redis runs")?;
    let ticks = || pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).sum::<u64>();
    let mut lines = std::io::BufReader::new(load.0.stdout.take().context("stdout")?).lines();
    let mut before = None;
    let mut result = None;
    for line in lines.by_ref() {
        let line = line?;
        if line.contains("\"phase\"") {
            before = Some((ticks(), cpu_ticks(redis_pid)?, Instant::now()));
        } else if line.starts_with('{') {
            result = Some(line);
            break;
        }
    }
    let (servers_before, redis_before, started) = before.context("the load never started")?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut out: Value = serde_json::from_str(&result.context("no figures from load.js")?)?;
    let pct = |t: u64| t as f64 / TICKS_PER_SEC / elapsed * 100.0;
    let servers_cpu = pct(ticks().saturating_sub(servers_before));
    let redis_cpu = pct(cpu_ticks(redis_pid)?.saturating_sub(redis_before));
    out["servers_cpu_pct"] = json!(round1(servers_cpu));
    out["redis_cpu_pct"] = json!(round1(redis_cpu));
    out["cpu_pct_per_1k_msgs"] = json!(per_1k_msgs(servers_cpu + redis_cpu, a.rate));
    Ok(out)
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU (% of a core) per 1,000 messages/s at `rate` messages/s, rounded.
fn per_1k_msgs(cpu_pct: f64, rate: u32) -> f64 {
    round1(cpu_pct / (f64::from(rate) / 1000.0))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// CPU ticks of PostgreSQL: the postmaster and every process it started.
fn postgres_ticks(postmaster: u32) -> u64 {
    let mut total = cpu_ticks(postmaster).unwrap_or(0);
    let Ok(procs) = std::fs::read_dir("/proc") else { return total };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The fields after the command's closing parenthesis: state, ppid, ...
        let ppid = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            total += cpu_ticks(pid).unwrap_or(0);
        }
    }
    total
}

async fn cluster(bin: &Path, a: &Args, config: &str) -> anyhow::Result<Value> {
    let pg = festival_store::pg::TempServer::start(true).await.context("starting PostgreSQL")?;
    let store = pg.create_database("relay").await?;
    let redis = festival_relay::testing::TempRedis::start().await.context("starting Redis")?;
    let mut relays = Vec::with_capacity(a.instances);
    for i in 0..a.instances {
        let name = format!("relay-{i}");
        let bus = redis.url();
        let threads = a.threads.to_string();
        let args = ["--config", config, "--store", &store, "--bus", &bus, "--instance", &name, "--threads", &threads];
        let mut extra: Vec<&str> = args.to_vec();
        let load = load_args(a);
        extra.extend(load.iter().map(String::as_str));
        relays.push(RelayProc::start_with(bin, &extra)?);
    }
    // Deliveries to members on the author's instance, and on another.
    let total = (u64::from(a.rate) * a.secs) as usize;
    let expected = total * (a.room_size - 1);
    let log = a.latency_log.is_some();
    let (same, cross) = (Record::sized(total, expected, log), Record::sized(total, expected, log));
    let rooms: Vec<RoomId> =
        (0..a.nodes / a.room_size).map(|i| format!("room-{i}").parse().expect("room id")).collect();
    let mut authors = Vec::new();
    let mut members = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for k in 0..a.room_size {
            let at = (r + k) % a.instances;
            let author_at = r % a.instances;
            let record = if at == author_at { same.clone() } else { cross.clone() };
            let (tx, task) = node(&relays[at].url, vec![RoomId::festival(), room.clone()], record).await?;
            if k == 0 {
                authors.push((tx, Identity::generate(&mut rand::rngs::OsRng)));
            } else {
                members.push((tx, task));
            }
        }
    }
    // Every instance joins every room (from its nodes' hellos, and from
    // what the others carry); let that settle.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let pids: Vec<u32> = relays.iter().map(|r| r.child.id()).collect();
    let relay_before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let postmaster = pg.pid().context("PostgreSQL runs")?;
    let pg_before = postgres_ticks(postmaster);
    // As a deployment's server is after its first checkpoint: segments
    // ahead to write into (compare postgres_wal_mb, what the load wrote).
    // A fresh one creates (zero-fills and syncs) a 16 MB segment every ~8 s
    // of this load, and every instance's commits waited ~12 ms for it.
    let wal_ahead = pg.recycle_wal().await.context("recycling PostgreSQL's WAL")?;
    let wal_before = pg.wal_bytes().await?;
    let xid_before = pg.next_xid("relay").await?;
    let redis_pid = redis.pid().context("Redis runs")?;
    let redis_before = cpu_ticks(redis_pid)?;
    let load_before = cpu_ticks(std::process::id())?;
    let started = Instant::now();
    let mut seqs = vec![0u64; rooms.len()];
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(a.rate)));
    for n in 0..total {
        tick.tick().await;
        let r = n % rooms.len();
        seqs[r] += 1;
        let (tx, author) = &authors[r];
        let (env, msg) = crate::relay::bench_push(author, &rooms[r], seqs[r], n)?;
        let now = Instant::now();
        same.lock().expect("record").sent.insert(env.clone(), now);
        cross.lock().expect("record").sent.insert(env, now);
        let _ = tx.try_send(msg);
    }
    let delivered = || same.lock().expect("record").latencies.len() + cross.lock().expect("record").latencies.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let pct = |ticks: u64| ticks as f64 / TICKS_PER_SEC / elapsed * 100.0;
    let relay_cpu: Vec<f64> =
        pids.iter().zip(&relay_before).map(|(p, b)| round1(pct(cpu_ticks(*p).unwrap_or(0) - b))).collect();
    let relay_rss: Vec<f64> = pids.iter().map(|p| round1(rss_mb(*p).unwrap_or(0.0))).collect();
    let pg_cpu = round1(pct(postgres_ticks(postmaster).saturating_sub(pg_before)));
    let pg_writes = pg.next_xid("relay").await?.saturating_sub(xid_before);
    let wal_mb = pg.wal_bytes().await?.saturating_sub(wal_before) as f64 / 1e6;
    let redis_cpu = round1(pct(cpu_ticks(redis_pid)? - redis_before));
    let load_cpu = round1(pct(cpu_ticks(std::process::id())? - load_before));
    if let Some(path) = &a.latency_log {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (which, record) in [("same", &same), ("cross", &cross)] {
            for (t, ms) in record.lock().expect("record").log.iter().flatten() {
                writeln!(f, "{which} {:.3} {ms:.3}", t.duration_since(started).as_secs_f64() * 1000.0)?;
            }
        }
    }
    let mut cross_lat = std::mem::take(&mut cross.lock().expect("record").latencies);
    let mut all = std::mem::take(&mut same.lock().expect("record").latencies);
    all.extend_from_slice(&cross_lat);
    drop(authors);
    for (tx, task) in members {
        drop(tx);
        let _ = task.await;
    }
    let tier_cpu = relay_cpu.iter().sum::<f64>() + pg_cpu + redis_cpu;
    Ok(json!({
        "bench": "relay-cluster",
        "instances": a.instances,
        "nodes": rooms.len() * a.room_size,
        "room_size": a.room_size,
        "msgs_per_sec": a.rate,
        "secs": a.secs,
        "messages": total,
        "expected_deliveries": expected,
        "delivered": all.len(),
        "cross_instance_deliveries": cross_lat.len(),
        "fanout_p50_ms": percentile(&mut all, 0.5),
        "fanout_p99_ms": percentile(&mut all, 0.99),
        "cross_fanout_p50_ms": percentile(&mut cross_lat, 0.5),
        "cross_fanout_p99_ms": percentile(&mut cross_lat, 0.99),
        "relay_cpu_pct": relay_cpu,
        "relay_rss_mb": relay_rss,
        "postgres_cpu_pct": pg_cpu,
        "postgres_write_xacts_per_sec": round1(pg_writes as f64 / elapsed),
        "postgres_wal_segments_ahead": wal_ahead,
        "postgres_wal_mb": round1(wal_mb),
        "redis_cpu_pct": redis_cpu,
        "tier_cpu_pct": round1(tier_cpu),
        "load_cpu_pct": load_cpu,
        "relay_threads": a.threads,
        "relay_commits_per_sec": a.commits_per_sec.unwrap_or(festival_relay::RelayConfig::default().commits_per_sec),
        "relay_cpu_pct_per_1k_msgs": per_1k_msgs(relay_cpu.iter().sum::<f64>(), a.rate),
        "cpu_pct_per_1k_msgs": per_1k_msgs(tier_cpu, a.rate),
    }))
}
