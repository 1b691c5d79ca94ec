//! `festival-bench store`: sustained batched ingest into a real SQLite file,
//! then the latency of reading a room's latest page at that size.
//!
//! Envelopes are really signed (before the clock starts); the store is
//! opened exactly as a node opens it (WAL, synchronous = FULL).

use std::time::Instant;

use festival_core::{Draft, Identity, Kind, RoomId, SignedEnvelope};
use festival_store::{HistoryCursor, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

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
    /// History pages read (half the latest page, half an older page by cursor).
    #[arg(long, default_value_t = 2_000)]
    reads: usize,
    #[arg(long, default_value_t = 50)]
    page: u32,
    /// Directory for the database (default: a temporary one, removed after).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const T0: u64 = 1_750_000_000_000;

fn make_envelopes(a: &Args) -> Vec<(SignedEnvelope, u8)> {
    let ids: Vec<Identity> =
        (0..a.authors).map(|i| Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(i as u64))).collect();
    let rooms: Vec<RoomId> = (0..a.rooms).map(|r| format!("stage-{r}").parse().expect("valid room")).collect();
    let make = |i: usize| {
        let author = i % a.authors;
        let room = (i / a.authors) % a.rooms;
        let seq = (i / (a.authors * a.rooms)) as u64 + 1;
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

pub fn run(a: Args) -> anyhow::Result<serde_json::Value> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let t = Instant::now();
    let envelopes = make_envelopes(&a);
    let sign_s = t.elapsed().as_secs_f64();

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let path = dir.join("bench.db");
        let store = Store::open(&path).await?;
        let t = Instant::now();
        for chunk in envelopes.chunks(a.batch) {
            store.insert_batch(chunk, T0, false).await?;
        }
        let ingest_s = t.elapsed().as_secs_f64();
        let stored = store.message_count().await?;
        anyhow::ensure!(stored as usize == a.messages, "stored {stored} of {}", a.messages);

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
        let db_bytes =
            std::fs::metadata(&path)?.len() + std::fs::metadata(dir.join("bench.db-wal")).map_or(0, |m| m.len());
        store.close().await;
        Ok(json!({
            "bench": "store",
            "messages": a.messages,
            "batch": a.batch,
            "authors": a.authors,
            "rooms": a.rooms,
            "ingest_msgs_per_s": (a.messages as f64 / ingest_s).round(),
            "ingest_s": (ingest_s * 100.0).round() / 100.0,
            "history_page": a.page,
            "history_reads": a.reads,
            "history_p50_ms": ms_percentile(&mut lat, 0.5),
            "history_p99_ms": ms_percentile(&mut lat, 0.99),
            "db_mb": (db_bytes as f64 / 1e6).round(),
            "sign_s": (sign_s * 10.0).round() / 10.0,
            "synchronous": "FULL",
        }))
    })
}
