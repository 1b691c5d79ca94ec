//! Link parameters and topologies.

use rand::seq::SliceRandom;
use rand::Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSpec {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Probability that a frame is lost.
    pub loss: f64,
}

impl LinkSpec {
    pub const fn lan() -> Self {
        LinkSpec { latency_ms: 5, jitter_ms: 5, loss: 0.0 }
    }
    pub const fn lossy(loss: f64) -> Self {
        LinkSpec { latency_ms: 10, jitter_ms: 20, loss }
    }
}

/// A connected random graph on `n` nodes where every degree lies in
/// `min_deg..=max_deg` as far as the pairing allows: a random ring first (so
/// it is connected), then random chords.
pub fn random_graph(n: usize, min_deg: usize, max_deg: usize, rng: &mut impl Rng) -> Vec<(usize, usize)> {
    assert!(n > max_deg && min_deg >= 2 && max_deg >= min_deg);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut edges = std::collections::BTreeSet::new();
    let mut deg = vec![0usize; n];
    fn add(a: usize, b: usize, edges: &mut std::collections::BTreeSet<(usize, usize)>, deg: &mut [usize]) {
        if a != b && edges.insert((a.min(b), a.max(b))) {
            deg[a] += 1;
            deg[b] += 1;
        }
    }
    for i in 0..n {
        add(order[i], order[(i + 1) % n], &mut edges, &mut deg);
    }
    let target: Vec<usize> = (0..n).map(|_| rng.gen_range(min_deg..=max_deg)).collect();
    for _ in 0..n * max_deg * 4 {
        let short: Vec<usize> = (0..n).filter(|&i| deg[i] < target[i]).collect();
        if short.len() < 2 {
            break;
        }
        let a = *short.choose(rng).expect("non-empty");
        let b = *short.choose(rng).expect("non-empty");
        if a != b && deg[b] < max_deg {
            add(a, b, &mut edges, &mut deg);
        }
    }
    edges.into_iter().collect()
}
