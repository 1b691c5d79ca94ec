//! 200 nodes on a random graph with 5 % loss, 10 of them hostile: a flood of
//! sealed DMs from fresh keys, invented summaries and announcements, claims
//! of messages they never serve, and forged receipts. Every honest message
//! reaches every honest member (and every DM its recipient), every honest
//! store stays under its budget, and no receipt from a hostile node counts
//! anywhere.

use festival_core::body::{seal_dm, seal_receipt, Body, ReceiptBody, ReceiptStatus};
use festival_core::frame::{Frame, Head, Item, MsgRef, Summary};
use festival_core::sync::Content;
use festival_core::{Draft, Identity, MessageId, PeerId, RoomId, SignedEnvelope};
use festival_sim::{random_graph, LinkSpec, Sim};
use rand::Rng;

const N: usize = 200;
/// Small, so the flood fills it within the run (a phone's is 512 MiB).
const BUDGET: u64 = 512 * 1024;
const FLOOD: std::ops::Range<usize> = 190..193;
const INVENT: std::ops::Range<usize> = 193..196;
const STALL: std::ops::Range<usize> = 196..198;
const FORGE: std::ops::Range<usize> = 198..200;
/// Fresh-key DMs each flooding node sends per half second: ~1 MB in all
/// over the run, twice the budget.
const FLOOD_PER_ROUND: usize = 1;

fn hostile(i: usize) -> bool {
    i >= FLOOD.start
}

fn neighbours(edges: &[(usize, usize)], i: usize) -> Vec<usize> {
    edges
        .iter()
        .filter_map(|&(a, b)| {
            if a == i {
                Some(b)
            } else if b == i {
                Some(a)
            } else {
                None
            }
        })
        .collect()
}

fn push(env: &SignedEnvelope) -> Vec<u8> {
    Frame::Push(Item { hops: 1, envelope: env.bytes().to_vec() }).encode()
}

fn sign(author: &Identity, room: RoomId, seq: u64, body: Body, now: u64) -> SignedEnvelope {
    let draft = Draft { seq, room, kind: body.kind(), created_at: now, body: body.encode() };
    SignedEnvelope::sign(author, draft).expect("valid draft")
}

fn invented(i: u64) -> PeerId {
    let mut b = [0xaa; 32];
    b[..8].copy_from_slice(&i.to_le_bytes());
    PeerId::from_bytes(b)
}

/// One round of every attack. `forged` keeps the DMs already answered with
/// a forged receipt, so each gets one.
fn attack(
    sim: &mut Sim,
    edges: &[(usize, usize)],
    round: u64,
    honest_authors: &[PeerId],
    forged: &mut std::collections::BTreeSet<MessageId>,
) {
    let now = sim.now;
    // Fresh keys, each sealing a 4 KB DM to a random honest node.
    for h in FLOOD {
        for _ in 0..FLOOD_PER_ROUND {
            let key = Identity::generate(&mut sim.rng);
            let to = sim.rng.gen_range(0..FLOOD.start);
            let to = sim.peer_id(to);
            let sealed = seal_dm(&key, &to, &"x".repeat(4_000), &mut sim.rng).expect("seals");
            let env = sign(&key, RoomId::direct(), 1, Body::SealedDm(sealed), now);
            for n in neighbours(edges, h) {
                sim.inject(h, n, push(&env));
            }
        }
    }
    // Invented authors in summaries, and announcements of invented messages.
    for h in INVENT {
        let heads = (0..1_024)
            .map(|i| Head {
                author: invented(round * 1_024 + i),
                contiguous: 5,
                max: 5,
                tip: MessageId::from_bytes([3; 32]),
            })
            .collect();
        let summary = Frame::Summary(Summary { room: RoomId::festival(), heads, reply: true }).encode();
        let refs = (0..512)
            .map(|i| MsgRef {
                room: RoomId::festival(),
                author: invented(1 << 40 | round * 512 + i),
                seq: 1,
                id: MessageId::from_bytes([4; 32]),
            })
            .collect();
        let ihave = Frame::IHave { refs }.encode();
        for n in neighbours(edges, h) {
            sim.inject(h, n, summary.clone());
            sim.inject(h, n, ihave.clone());
        }
    }
    // Claims of more than exists of every honest author, never served.
    for h in STALL {
        let heads = honest_authors
            .iter()
            .map(|a| Head { author: *a, contiguous: 50, max: 50, tip: MessageId::from_bytes([5; 32]) })
            .collect();
        let summary = Frame::Summary(Summary { room: RoomId::festival(), heads, reply: false }).encode();
        for n in neighbours(edges, h) {
            sim.inject(h, n, summary.clone());
        }
    }
    // Receipts for DMs the forgers carry: sealed "read" to each DM's author,
    // and "read" in clear in the festival room.
    for h in FORGE {
        let me = sim.nodes[h].core.as_ref().expect("online").identity().peer_id();
        let secret = Identity::from_secret_bytes(&sim.nodes[h].core.as_ref().unwrap().identity().secret_bytes());
        let dms: Vec<(MessageId, PeerId)> = sim.nodes[h]
            .delivered
            .iter()
            .filter(|d| d.room.is_direct() && d.author != me && !forged.contains(&d.id))
            .map(|d| (d.id, d.author))
            .collect();
        let mut seq = 1_000 + round * 100;
        for (id, author) in dms.into_iter().rev().take(5) {
            forged.insert(id);
            seq += 1;
            let r = ReceiptBody { status: ReceiptStatus::Read, ids: vec![id] };
            let Ok(sealed) = seal_receipt(&secret, &author, r.clone(), &mut sim.rng) else { continue };
            let env = sign(&secret, RoomId::direct(), seq, Body::SealedReceipt(sealed), now);
            let clear = sign(&secret, RoomId::festival(), seq, Body::Receipt(r), now);
            for n in neighbours(edges, h) {
                sim.inject(h, n, push(&env));
                sim.inject(h, n, push(&clear));
            }
        }
    }
}

#[test]
fn ten_hostile_nodes_among_two_hundred_change_nothing_honest_nodes_notice() {
    let wall = std::time::Instant::now();
    let mut sim = Sim::new(99);
    sim.budget = Some(BUDGET);
    for _ in 0..N {
        sim.add_node(vec![]);
    }
    for i in STALL {
        sim.nodes[i].serves = false;
    }
    let edges = random_graph(N, 4, 6, &mut sim.rng);
    for &(a, b) in &edges {
        sim.connect(a, b, LinkSpec::lossy(0.05));
    }
    sim.run_for(3_000);
    let honest: Vec<usize> = (0..N).filter(|i| !hostile(*i)).collect();
    let honest_authors: Vec<PeerId> = honest.iter().map(|i| sim.peer_id(*i)).collect();
    // Every device announces its name when it joins (the app does on setup).
    for &i in &honest {
        sim.send(i, RoomId::festival(), Content::Profile(format!("Node {i}"))).expect("profile");
    }
    sim.run_for(2_000);

    let mut room_msgs = Vec::new();
    let mut forged = std::collections::BTreeSet::new();
    let mut dms = Vec::new();
    for step in 0..40u64 {
        let author = honest[sim.rng.gen_range(0..honest.len())];
        room_msgs.push(sim.send_text(author, "festival", &format!("step {step} from {author}")));
        if step % 3 == 0 {
            let to = honest[sim.rng.gen_range(0..honest.len())];
            if to != author {
                let content = Content::Direct { to: sim.peer_id(to), text: format!("dm {step}") };
                dms.push((sim.send(author, RoomId::direct(), content).expect("dm"), author, to));
            }
        }
        attack(&mut sim, &edges, step, &honest_authors, &mut forged);
        sim.run_for(500);
    }
    // A minute more for the last messages to spread, attack still on.
    for round in 40..160 {
        attack(&mut sim, &edges, round, &honest_authors, &mut forged);
        sim.run_for(500);
        let done = room_msgs.iter().all(|id| honest.iter().all(|&n| sim.saw(n, id)))
            && dms.iter().all(|(id, _, to)| sim.saw(*to, id));
        if done {
            break;
        }
    }
    eprintln!(
        "virtual {} s, frames {}, wall {:?}",
        (sim.now - festival_sim::EPOCH_MS) / 1000,
        sim.frames_sent,
        wall.elapsed()
    );
    eprintln!("by kind {:?}", sim.frames_by_kind);
    let sim_ref = &sim;
    let missing: Vec<(usize, usize)> = room_msgs
        .iter()
        .enumerate()
        .flat_map(|(k, id)| honest.iter().filter(move |&&n| !sim_ref.saw(n, id)).map(move |&n| (k, n)))
        .collect();
    assert!(
        missing.is_empty(),
        "room messages missing at honest nodes: {} of {}",
        missing.len(),
        room_msgs.len() * honest.len()
    );
    for (id, from, to) in &dms {
        assert!(sim.saw(*to, id), "DM from {from} never reached {to}");
    }

    let hostile_ids: Vec<PeerId> = (FLOOD.start..N).map(|i| sim.peer_id(i)).collect();
    let mut evicted = 0;
    for &n in &honest {
        let node = &sim.nodes[n];
        assert!(node.peak_bytes <= BUDGET, "node {n} held {} bytes, budget {BUDGET}", node.peak_bytes);
        evicted += node.store.evicted;
        for (id, by) in &node.store.receipts {
            for (peer, status) in by {
                assert!(!hostile_ids.contains(peer), "node {n}: a hostile node's {status:?} for {id:?} counted");
                if *status == ReceiptStatus::Read {
                    if let Some((_, _, to)) = dms.iter().find(|(d, _, _)| d == id) {
                        assert_eq!(*peer, sim.peer_id(*to), "node {n}: Read for a DM from someone not its recipient");
                    }
                }
            }
        }
    }
    assert!(evicted > 0, "the flood should have filled some stores to their budget");
}
