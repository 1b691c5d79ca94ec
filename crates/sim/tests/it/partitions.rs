//! Two partitions that each received different messages of the same
//! authors (issue 11): one side holds their first three, the other their
//! next three, above a gap. Once the two are joined, reconciliation finds
//! exactly those heads, and every node ends with all six of each author,
//! each delivered once and in order.

use std::collections::BTreeMap;

use festival_core::frame::{Frame, Item};
use festival_core::{Draft, Identity, Kind, PeerId, RoomId, SignedEnvelope};
use festival_sim::{random_graph, LinkSpec, Sim, EPOCH_MS};

fn text(author: &Identity, seq: u64) -> SignedEnvelope {
    let draft = Draft {
        seq,
        room: RoomId::festival(),
        kind: Kind::Text,
        created_at: EPOCH_MS - 60_000 + seq,
        body: format!("part {seq}").into_bytes(),
    };
    SignedEnvelope::sign(author, draft).unwrap()
}

#[test]
fn partitions_holding_different_messages_of_the_same_authors_reconcile_exactly() {
    let half = 15;
    let mut sim = Sim::new(31);
    for _ in 0..2 * half {
        sim.add_node(vec![]);
    }
    // Each side a connected random graph of its own; no link between them.
    let mut edges = Vec::new();
    for side in 0..2 {
        for (a, b) in random_graph(half, 3, 4, &mut sim.rng) {
            edges.push((a + side * half, b + side * half));
        }
    }
    for &(a, b) in &edges {
        sim.connect(a, b, LinkSpec::lossy(0.0));
    }
    sim.run_for(3_000);

    // Ten people outside the simulated nodes; their first three messages
    // reach side A, their next three side B (by a push into one node each).
    let authors: Vec<Identity> = (0..10u8).map(|i| Identity::from_secret_bytes(&[i + 1; 32])).collect();
    let (a_link, b_link) = (edges[0], *edges.iter().find(|(a, _)| *a >= half).unwrap());
    for author in &authors {
        for seq in 1..=6 {
            let (from, to) = if seq <= 3 { a_link } else { b_link };
            let push = Frame::Push(Item { hops: 1, envelope: text(author, seq).bytes().to_vec() }).encode();
            sim.inject(from, to, push);
        }
    }
    sim.run_for(10_000);
    let ids = |seqs: std::ops::RangeInclusive<u64>| -> Vec<_> {
        authors.iter().flat_map(|a| seqs.clone().map(move |s| text(a, s).id())).collect()
    };
    let (first, second) = (ids(1..=3), ids(4..=6));
    let holds = |s: &Sim, n: usize, id: &festival_core::MessageId| s.nodes[n].store.contains(id);
    for n in 0..half {
        assert!(first.iter().all(|id| holds(&sim, n, id)) && !second.iter().any(|id| holds(&sim, n, id)), "A: {n}");
    }
    for n in half..2 * half {
        assert!(second.iter().all(|id| holds(&sim, n, id)) && !first.iter().any(|id| holds(&sim, n, id)), "B: {n}");
        let shown = sim.nodes[n].delivered.iter().any(|d| authors.iter().any(|a| a.peer_id() == d.author));
        assert!(!shown, "above a gap: nothing of theirs shown yet");
    }

    // One link joins the sides.
    sim.connect(0, half, LinkSpec::lossy(0.0));
    let all: Vec<_> = first.iter().chain(&second).copied().collect();
    let done = sim.run_until_cond(60_000, 500, |s| (0..2 * half).all(|n| all.iter().all(|id| s.has(n, id))));
    assert!(done, "every node holds all six of every author");
    let who: BTreeMap<PeerId, ()> = authors.iter().map(|a| (a.peer_id(), ())).collect();
    for n in 0..2 * half {
        let mut last: BTreeMap<PeerId, u64> = BTreeMap::new();
        for d in sim.nodes[n].delivered.iter().filter(|d| who.contains_key(&d.author)) {
            let prev = last.insert(d.author, d.seq).unwrap_or(0);
            assert_eq!(d.seq, prev + 1, "node {n}: delivered once each, in order");
        }
        assert!(last.values().all(|s| *s == 6), "node {n}: {last:?}");
    }
    // The join found the difference by reconciliation, not by summaries
    // of every head: `Recon` frames were sent.
    assert!(sim.frames_by_kind.get(&festival_core::frame::tag::RECON).copied().unwrap_or(0) > 0);
}
