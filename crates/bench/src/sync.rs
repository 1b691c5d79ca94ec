//! `festival-bench sync`: what two nodes exchange to reconcile one room's
//! heads (protocol 4, `festival_core::sync::recon`): bytes on the wire and
//! round trips, for rooms of N authors that are in sync or differ in d
//! heads. One JSON line per (N, d).
//!
//! The exchange runs the node's own functions and frames
//! (`recon::exchange`: every frame encoded and decoded as on a link). The
//! heads are random authors at random positions; the d differing ones are
//! d authors the second node holds one message behind the first (another
//! seq and tip), half of them, rounded down, authors it has not heard of
//! at all. `full_summary_bytes` is what protocol 3 sent instead at every
//! link-up: a summary of every head. Targets (issue 11): in sync at most 512 bytes at every N; ten
//! differences among 100,000 authors at most 8 KiB.

use std::collections::BTreeMap;

use festival_core::frame::{Frame, Head, Summary, MAX_SUMMARY_HEADS};
use festival_core::sync::recon;
use festival_core::{MessageId, PeerId, RoomId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Room sizes (authors), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000,100000")]
    authors: Vec<usize>,
    /// Differing heads, comma-separated (0: in sync).
    #[arg(long, value_delimiter = ',', default_value = "0,1,10,100")]
    differing: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The targets: bytes allowed for (authors, differing), if any.
fn target(authors: usize, differing: usize) -> Option<usize> {
    match (authors, differing) {
        (_, 0) => Some(512),
        (100_000, 10) => Some(8 * 1024),
        _ => None,
    }
}

pub fn run(args: Args) -> anyhow::Result<Vec<String>> {
    let room = RoomId::festival();
    let mut lines = Vec::new();
    for &n in &args.authors {
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ n as u64);
        let full: BTreeMap<PeerId, Head> = (0..n)
            .map(|_| {
                let author = PeerId::from_bytes(rng.gen());
                let max = rng.gen_range(1..500u64);
                (author, Head { author, contiguous: max, max, tip: MessageId::from_bytes(rng.gen()) })
            })
            .collect();
        let authors: Vec<PeerId> = full.keys().copied().collect();
        // What protocol 3 sent at every link-up: every head, in summaries.
        let heads: Vec<Head> = full.values().copied().collect();
        let full_summary: usize = heads
            .chunks(MAX_SUMMARY_HEADS)
            .map(|h| Frame::Summary(Summary { room: room.clone(), heads: h.to_vec(), reply: false }).encode().len())
            .sum();
        for &d in &args.differing {
            anyhow::ensure!(d <= n, "{d} differing heads in a room of {n}");
            let mut behind = full.clone();
            let mut picked = BTreeMap::new();
            while picked.len() < d {
                let a = authors[rng.gen_range(0..n)];
                picked.insert(a, ());
            }
            for (i, a) in picked.keys().enumerate() {
                if i < d / 2 {
                    behind.remove(a);
                } else {
                    let h = behind.get_mut(a).expect("picked from the room");
                    h.max -= 1;
                    h.contiguous = h.max;
                    h.tip = MessageId::from_bytes(rng.gen());
                }
            }
            let x = recon::exchange(&room, &behind, &full);
            // Exactly the differences crossed: d heads to the node behind,
            // and its own differing heads (those it holds) back.
            anyhow::ensure!(x.to_a.len() == d, "{} of {d} heads reached the node behind", x.to_a.len());
            anyhow::ensure!(x.to_b.len() == d - d / 2, "{} heads went back", x.to_b.len());
            let target = target(n, d);
            lines.push(
                json!({
                    "bench": "sync",
                    "authors": n,
                    "differing": d,
                    "bytes": x.bytes,
                    "round_trips": x.flights.div_ceil(2),
                    "flights": x.flights,
                    "frames": x.frames,
                    "target_bytes": target,
                    "within_target": target.map(|t| x.bytes <= t),
                    "full_summary_bytes": full_summary,
                    "seed": args.seed,
                })
                .to_string(),
            );
        }
    }
    Ok(lines)
}
