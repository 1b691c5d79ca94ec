//! `festival-bench store`: sustained batched ingest into a real SQLite file,
//! with the background expiry and eviction a node runs beside it, then the
//! latency of reading a room's latest page at that size.
//!
//! Envelopes are really signed (before the clock starts); the store is
//! opened exactly as a node opens it (WAL, synchronous = FULL). With the
//! default budget (512 MiB) a million messages do not fit, so eviction runs
//! during the run, as it would on a phone.
//!
//! Then search: the queued messages indexed (`search_index_msgs_per_s`),
//! and the latency of searches for words of the texts, the last typed word
//! as a prefix (`search_p50_ms`, `search_p99_ms`). `--no-search-index`
//! stops ingest queueing texts for search, to see what the queue costs
//! ingest.
//!
//! `--shape live` (the default) makes every message of a batch another
//! chain: a thousand people talking at once, the hardest case for the
//! indexes. `--shape sync` makes batches of runs of consecutive seqs from a
//! few chains, what a peer sends in reply to a want.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use festival_core::{Draft, Identity, Kind, RoomId, SignedEnvelope};
use festival_store::{Budget, HistoryCursor, Store, STEP_ROWS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::procstat::{cpu_ticks, written_bytes, TICKS_PER_SEC};

const MIB: u64 = 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Each message of a batch from another (room, author) chain.
    Live,
    /// Each batch: runs of `--run` consecutive seqs from as many chains.
    Sync,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,
    /// Envelopes per transaction.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    #[arg(long, default_value_t = 1_000)]
    authors: usize,
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    #[arg(long, value_enum, default_value_t = Shape::Live)]
    shape: Shape,
    /// With `--shape sync`: consecutive seqs per chain in a batch.
    #[arg(long, default_value_t = 50)]
    run: usize,
    /// History pages read (half the latest page, half an older page by cursor).
    #[arg(long, default_value_t = 2_000)]
    reads: usize,
    #[arg(long, default_value_t = 50)]
    page: u32,
    /// Disk budget (database + WAL + shm), MiB (reported in MB too).
    #[arg(long, default_value_t = 512)]
    disk_budget_mb: u64,
    /// Per-author budget, MiB.
    #[arg(long, default_value_t = 4)]
    per_author_mb: u64,
    /// Per-room budget, MiB.
    #[arg(long, default_value_t = 256)]
    per_room_mb: u64,
    /// Message lifetime for expiry, ms (default: a five-day festival, so
    /// nothing in this run expires, but expiry still runs).
    #[arg(long, default_value_t = 5 * 24 * 3_600_000)]
    lifetime_ms: u64,
    /// Ingest without the background expiry and eviction (accounting stays).
    #[arg(long)]
    no_evict: bool,
    /// Searches timed after ingest; 0 also skips indexing what ingest queued
    /// (the ingest figures alone, in a minute instead of several).
    #[arg(long, default_value_t = 200)]
    searches: usize,
    /// Optimize the search index after the eviction that follows indexing.
    #[arg(long)]
    optimize: bool,
    /// Ingest without queueing texts for search: what the queue costs.
    #[arg(long)]
    no_search_index: bool,
    /// Directory for the database (default: a temporary one, removed after).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const T0: u64 = 1_750_000_000_000;

/// How often the background task looks again when the last pass found
/// nothing to do. While a pass deletes, the next starts at once, as a node
/// under a sync storm would run it.
const IDLE_PASS_INTERVAL: Duration = Duration::from_millis(250);

/// How often the files are measured during ingest, for the peak: often
/// enough to see the WAL at its largest (it grows by a batch, ~3 MB, every
/// few tens of ms, and starts over at a checkpoint).
const DISK_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

/// The largest the store's files, and the WAL, got: measured every
/// [`DISK_SAMPLE_INTERVAL`] until `done`.
async fn disk_peaks(store: Store, done: Arc<AtomicBool>) -> anyhow::Result<(u64, u64)> {
    let (mut files, mut wal) = (0, 0);
    while !done.load(Ordering::Relaxed) {
        let now = store.disk_usage().await?;
        (files, wal) = (files.max(now.total()), wal.max(now.wal_bytes));
        tokio::time::sleep(DISK_SAMPLE_INTERVAL).await;
    }
    Ok((files, wal))
}

/// (author, room, seq) of message `i`.
fn position(a: &Args, i: usize) -> (usize, usize, u64) {
    match a.shape {
        Shape::Live => (i % a.authors, (i / a.authors) % a.rooms, (i / (a.authors * a.rooms)) as u64 + 1),
        Shape::Sync => {
            // Batch b: one room (b mod rooms), as a reply to wants in one
            // room; `batch / run` authors in it, each sending `run`
            // consecutive seqs. An author's next run in that room comes
            // when the cycle over all authors returns to it.
            let per_batch = (a.batch / a.run).max(1);
            let (b, k) = (i / a.batch, (i % a.batch) / a.run);
            let n = (b / a.rooms) * per_batch + k;
            let seq = ((n / a.authors) * a.run + (i % a.batch) % a.run) as u64 + 1;
            (n % a.authors, b % a.rooms, seq)
        }
    }
}

fn make_envelopes(a: &Args) -> Vec<(SignedEnvelope, u8)> {
    let ids: Vec<Identity> =
        (0..a.authors).map(|i| Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(i as u64))).collect();
    let rooms: Vec<RoomId> = (0..a.rooms).map(|r| format!("stage-{r}").parse().expect("valid room")).collect();
    let make = |i: usize| {
        let (author, room, seq) = position(a, i);
        let body = format!("message {i}: meet at the {} stage after the show, bring water", room).into_bytes();
        let draft = Draft { seq, room: rooms[room].clone(), kind: Kind::Text, created_at: T0 + i as u64, body };
        (SignedEnvelope::sign(&ids[author], draft).expect("valid draft"), 1u8)
    };
    // Signing a million envelopes is CPU work outside the measurement: spread it.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = a.messages.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t * chunk..((t + 1) * chunk).min(a.messages)).map(make).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("signer thread")).collect()
    })
}

fn ms_percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    (v[i] * 1000.0).round() / 1000.0
}

/// What the background task did.
#[derive(Default)]
struct Housekeeping {
    expired: u64,
    evicted: u64,
    passes: u64,
    disk_peak: u64,
    wal_peak: u64,
}

/// Expiry and eviction as a node runs them: pass after pass while they
/// find work, one every [`IDLE_PASS_INTERVAL`] when they do not.
async fn housekeeping(
    store: Store,
    budget: Budget,
    lifetime_ms: u64,
    clock: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> anyhow::Result<Housekeeping> {
    let mut h = Housekeeping::default();
    while !done.load(Ordering::Relaxed) {
        let now = clock.load(Ordering::Relaxed);
        let expired = store.expire(now.saturating_sub(lifetime_ms), STEP_ROWS as u64).await?;
        let evicted = store.evict(&budget, now).await?;
        let files = store.disk_usage().await?;
        h.disk_peak = h.disk_peak.max(files.total());
        h.wal_peak = h.wal_peak.max(files.wal_bytes);
        h.expired += expired;
        h.evicted += evicted.messages;
        h.passes += 1;
        if expired == 0 && evicted.messages == 0 {
            tokio::time::sleep(IDLE_PASS_INTERVAL).await;
        }
    }
    Ok(h)
}

pub fn run(a: Args) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(a.run > 0 && a.batch.is_multiple_of(a.run), "--run must divide --batch");
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let t = Instant::now();
    let envelopes = make_envelopes(&a);
    let sign_s = t.elapsed().as_secs_f64();
    let budget = Budget {
        disk_bytes: a.disk_budget_mb * MIB,
        per_author_bytes: a.per_author_mb * MIB,
        per_room_bytes: a.per_room_mb * MIB,
    };

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let path = dir.join("bench.db");
        let store = Store::open(&path).await?;
        if a.no_search_index {
            store.stop_search_queue_for_bench();
        }
        let clock = Arc::new(AtomicU64::new(T0));
        let done = Arc::new(AtomicBool::new(false));
        let background = (!a.no_evict)
            .then(|| tokio::spawn(housekeeping(store.clone(), budget, a.lifetime_ms, clock.clone(), done.clone())));
        let sampler = tokio::spawn(disk_peaks(store.clone(), done.clone()));
        let pid = std::process::id();
        let cpu_before = cpu_ticks(pid)?;
        let (wchar_before, disk_before) = written_bytes(pid)?;
        let t = Instant::now();
        for chunk in envelopes.chunks(a.batch) {
            store.insert_batch(chunk, T0, false).await?;
            let latest = chunk.iter().map(|(e, _)| e.created_at()).max().unwrap_or(T0);
            clock.store(latest, Ordering::Relaxed);
        }
        let ingest_s = t.elapsed().as_secs_f64();
        let ingest_cpu_s = (cpu_ticks(pid)? - cpu_before) as f64 / TICKS_PER_SEC;
        let (wchar, disk) = written_bytes(pid)?;
        let (ingest_written, ingest_to_disk) = (wchar - wchar_before, disk - disk_before);
        done.store(true, Ordering::Relaxed);
        let h = match background {
            Some(task) => task.await??,
            None => Housekeeping::default(),
        };
        let (disk_peak, wal_peak) = sampler.await??;
        let (disk_peak, wal_peak) = (disk_peak.max(h.disk_peak), wal_peak.max(h.wal_peak));
        let stored = store.message_count().await?;
        anyhow::ensure!(
            stored + h.evicted + h.expired == a.messages as u64,
            "stored {stored} + evicted {} + expired {} of {}",
            h.evicted,
            h.expired,
            a.messages
        );
        // Once the run is over, as a node would at its next pass.
        let after = if a.no_evict { Default::default() } else { store.evict(&budget, T0 + a.messages as u64).await? };

        let rooms: Vec<RoomId> = (0..a.rooms).map(|r| format!("stage-{r}").parse().expect("valid room")).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut lat = Vec::with_capacity(a.reads);
        let mut older: Vec<(RoomId, HistoryCursor)> = Vec::new();
        for i in 0..a.reads {
            let (room, cursor) = if i % 2 == 1 && !older.is_empty() {
                let (r, c) = older[rng.gen_range(0..older.len())].clone();
                (r, Some(c))
            } else {
                (rooms[rng.gen_range(0..rooms.len())].clone(), None)
            };
            let t = Instant::now();
            let page = store.history(&room, cursor, a.page).await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(page.len() == a.page as usize, "short page");
            if let Some(first) = page.first() {
                older.push((room, first.cursor()));
            }
        }
        // Search: index what ingest queued, then time searches.
        let me = Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(u64::MAX));
        let t = Instant::now();
        let indexed = if a.searches > 0 { store.index_pending(&me, u32::MAX).await? } else { 0 };
        let index_s = t.elapsed().as_secs_f64();
        // The index takes room in the budget: the node's next pass evicts
        // for it, as for anything else.
        let db_indexed = store.disk_usage().await?.total();
        let t = Instant::now();
        let after_index = if a.no_evict || a.searches == 0 {
            Default::default()
        } else {
            store.evict(&budget, T0 + a.messages as u64).await?
        };
        let evict_index_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        if a.optimize {
            store.optimize_search_index().await?;
        }
        let optimize_s = t.elapsed().as_secs_f64();
        let words = ["stage", "water", "show", "meet after", "bring wat", "stage-3 show", "message 4242"];
        let mut search_lat = Vec::with_capacity(a.searches);
        let mut hits = 0usize;
        for i in 0..a.searches {
            let query = if i % 3 == 2 {
                format!("message {}", rng.gen_range(0..a.messages))
            } else {
                words[i % words.len()].to_owned()
            };
            let t = Instant::now();
            hits += store.search(&query, 50).await?.len();
            search_lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let files = store.disk_usage().await?;
        let usage = store.usage().await?;
        store.close().await;
        let mb = |bytes: u64| (bytes as f64 / 1e6).round();
        Ok(json!({
            "bench": "store",
            "shape": match a.shape { Shape::Live => "live", Shape::Sync => "sync" },
            "messages": a.messages,
            "batch": a.batch,
            "authors": a.authors,
            "rooms": a.rooms,
            "ingest_msgs_per_s": (a.messages as f64 / ingest_s).round(),
            "ingest_s": (ingest_s * 100.0).round() / 100.0,
            "ingest_cpu_s": (ingest_cpu_s * 10.0).round() / 10.0,
            // Bytes written during ingest (WAL, checkpoints, eviction's
            // vacuum), per message: what the disk has to absorb.
            "ingest_written_b_per_msg": (ingest_written as f64 / a.messages as f64).round(),
            "ingest_to_disk_b_per_msg": (ingest_to_disk as f64 / a.messages as f64).round(),
            "evict": !a.no_evict,
            "evicted": h.evicted + after.messages,
            "expired": h.expired,
            "housekeeping_passes": h.passes,
            "stored": stored - after.messages - after_index.messages,
            "usage_mb": mb(usage.bytes),
            // The budget is given in MiB; every *_mb figure is 10^6 bytes.
            "disk_budget_mib": a.disk_budget_mb,
            "disk_budget_mb": mb(budget.disk_bytes),
            // Database + WAL + shm, the largest measured during ingest.
            "disk_peak_mb": mb(disk_peak),
            "wal_peak_mb": mb(wal_peak),
            "history_page": a.page,
            "history_reads": a.reads,
            "history_p50_ms": ms_percentile(&mut lat, 0.5),
            "history_p99_ms": ms_percentile(&mut lat, 0.99),
            "search_index": !a.no_search_index,
            "search_indexed": indexed,
            // The files once everything is indexed, before and after the
            // eviction pass that makes room for the index.
            "search_db_mb": mb(db_indexed),
            "search_evicted": after_index.messages,
            // How long that pass took (FTS5 deletes and merges included).
            "search_evict_s": (evict_index_s * 100.0).round() / 100.0,
            "search_optimize": a.optimize,
            "search_optimize_s": (optimize_s * 100.0).round() / 100.0,
            "search_index_msgs_per_s": if index_s > 0.0 { (indexed as f64 / index_s).round() } else { 0.0 },
            "searches": a.searches,
            "search_hits": hits,
            "search_p50_ms": if search_lat.is_empty() { 0.0 } else { ms_percentile(&mut search_lat, 0.5) },
            "search_p99_ms": if search_lat.is_empty() { 0.0 } else { ms_percentile(&mut search_lat, 0.99) },
            "db_mb": mb(files.total()),
            "sign_s": (sign_s * 10.0).round() / 10.0,
            "synchronous": "FULL",
        }))
    })
}
