//! Figures from a finished run.

use std::collections::BTreeMap;

use festival_core::MessageId;

use crate::Sim;

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub messages: usize,
    pub members: usize,
    /// Deliveries seen / deliveries expected (each message to each member but its author).
    pub delivery_ratio: f64,
    /// Deliveries of a message more than once to one node (must be 0).
    pub duplicate_deliveries: usize,
    /// Envelope copies received per message delivered, over all nodes.
    pub redundancy: f64,
    pub hops_p50: u8,
    pub hops_p99: u8,
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
}

fn percentile<T: Copy + Ord + Default>(v: &mut [T], p: f64) -> T {
    if v.is_empty() {
        return T::default();
    }
    v.sort_unstable();
    let idx = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

impl Report {
    /// Measure how `messages` (with their authors and send times) reached `members`.
    pub fn measure(sim: &Sim, messages: &[(MessageId, usize, u64)], members: &[usize]) -> Report {
        let sent: BTreeMap<MessageId, (usize, u64)> = messages.iter().map(|(id, a, t)| (*id, (*a, *t))).collect();
        let mut seen = 0usize;
        let mut dups = 0usize;
        let mut hops = Vec::new();
        let mut lat = Vec::new();
        let mut copies = 0u64;
        let mut delivered_total = 0u64;
        for &m in members {
            let mut count: BTreeMap<MessageId, usize> = BTreeMap::new();
            for d in &sim.nodes[m].delivered {
                if let Some(&(author, t)) = sent.get(&d.id) {
                    if author == m {
                        continue;
                    }
                    let c = count.entry(d.id).or_default();
                    *c += 1;
                    if *c == 1 {
                        seen += 1;
                        hops.push(d.hops);
                        lat.push(d.at - t);
                    } else {
                        dups += 1;
                    }
                }
            }
            delivered_total += sim.nodes[m].delivered.iter().filter(|d| d.author != sim.peer_id(m)).count() as u64;
            copies += sim.envelopes_in(m);
        }
        let expected = messages.len() * members.len() - messages.iter().filter(|(_, a, _)| members.contains(a)).count();
        Report {
            messages: messages.len(),
            members: members.len(),
            delivery_ratio: if expected == 0 { 1.0 } else { seen as f64 / expected as f64 },
            duplicate_deliveries: dups,
            redundancy: if delivered_total == 0 { 0.0 } else { copies as f64 / delivered_total as f64 },
            hops_p50: percentile(&mut hops, 0.5),
            hops_p99: percentile(&mut hops, 0.99),
            latency_p50_ms: percentile(&mut lat, 0.5),
            latency_p99_ms: percentile(&mut lat, 0.99),
        }
    }
}
