//! 200 nodes on a random graph with 5 % loss, 12 of them hostile: a flood of
//! sealed DMs from fresh keys, invented summaries and announcements, claims
//! of messages they never serve, forged receipts, and tree adverts for a
//! made-up root that draw the festival room's tree through nodes that push
//! nothing. Every honest message
//! reaches every honest member (and every DM its recipient), every honest
//! store stays under its budget, and no receipt from a hostile node counts
//! anywhere. Run twice: fetching live (a quiet crowd, the default), where
//! the hijacked tree pushes nothing anyway, and with the tree pushing (a
//! busy crowd's way, `live_pull` off), where the black holes' neighbours
//! must also notice them and pass them over.

use festival_core::body::ReceiptStatus;
use festival_core::sync::Content;
use festival_core::{PeerId, RoomId};
use festival_sim::attacks::{Attack, Attacks};
use festival_sim::{random_graph, LinkSpec, Sim};
use rand::Rng;

const N: usize = 200;
/// Small, so the flood fills it within the run (a phone's is 512 MiB).
const BUDGET: u64 = 512 * 1024;

fn hostile_nodes() -> Vec<(usize, Attack)> {
    let roles = [
        Attack::DmFlood,
        Attack::DmFlood,
        Attack::DmFlood,
        Attack::InventedSummaries,
        Attack::InventedSummaries,
        Attack::IHaveFlood,
        Attack::ClaimStall,
        Attack::ClaimStall,
        Attack::ForgedReceipts,
        Attack::ForgedReceipts,
        Attack::TreeHijack,
        Attack::TreeHijack,
    ];
    roles.into_iter().enumerate().map(|(k, a)| (N - roles.len() + k, a)).collect()
}

#[test]
fn twelve_hostile_nodes_among_two_hundred_change_nothing_honest_nodes_notice() {
    hostile_crowd(true);
}

#[test]
fn with_the_tree_pushing_the_hijacked_trees_black_holes_are_passed_over() {
    hostile_crowd(false);
}

fn hostile_crowd(live_pull: bool) {
    let mut sim = Sim::new(99);
    sim.config.live_pull = live_pull;
    sim.budget = Some(BUDGET);
    for _ in 0..N {
        sim.add_node(vec![]);
    }
    let edges = random_graph(N, 4, 6, &mut sim.rng);
    for &(a, b) in &edges {
        sim.connect(a, b, LinkSpec::lossy(0.05));
    }
    let mut attacks = Attacks::new(&mut sim, hostile_nodes(), &edges);
    sim.run_for(3_000);
    let honest: Vec<usize> = (0..N).filter(|i| !attacks.is_hostile(*i)).collect();
    // Every device announces its name when it joins (the app does on setup).
    for &i in &honest {
        sim.send(i, RoomId::festival(), Content::Profile(format!("Node {i}"))).expect("profile");
    }
    sim.run_for(2_000);

    let fake = PeerId::from_bytes([0xff; 32]);
    let following_fake = |sim: &Sim| {
        let room = RoomId::festival();
        honest
            .iter()
            .filter(|&&n| sim.nodes[n].core.as_ref().and_then(|c| c.tree_view(&room)).unwrap().root == fake)
            .count()
    };
    attacks.round(&mut sim, &honest);
    sim.run_for(500);
    let hijacked_at_start = following_fake(&sim);
    let mut room_msgs = Vec::new();
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
        attacks.round(&mut sim, &honest);
        sim.run_for(500);
    }
    // A minute more for the last messages to spread, attack still on.
    for _ in 0..120 {
        let done = room_msgs.iter().all(|id| honest.iter().all(|&n| sim.saw(n, id)))
            && dms.iter().all(|(id, _, to)| sim.saw(*to, id));
        if done {
            break;
        }
        attacks.round(&mut sim, &honest);
        sim.run_for(500);
    }
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
    // The hijack took at first (honest nodes followed the made-up root),
    // and the neighbours of the black holes then passed them over.
    assert!(hijacked_at_start > honest.len() / 2, "only {hijacked_at_start} honest nodes followed the made-up root");
    // Half a minute more of the attack, and of chat: time for every
    // neighbour of a black hole to see 32 new messages not pushed by it
    // (`TREE_PARENT_MISSES`) and for the made-up root, no longer beaconed
    // by anyone, to go stale everywhere (`TREE_STALE_MS`).
    for step in 0..60 {
        let author = honest[sim.rng.gen_range(0..honest.len())];
        sim.send_text(author, "festival", &format!("later {step}"));
        attacks.round(&mut sim, &honest);
        sim.run_for(500);
    }
    let hijacked = following_fake(&sim);
    if !live_pull {
        assert_eq!(
            hijacked, 0,
            "{hijacked} honest nodes still follow the made-up root through a node that pushes nothing"
        );
    }

    let hostile_ids: Vec<PeerId> = hostile_nodes().iter().map(|(i, _)| sim.peer_id(*i)).collect();
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
