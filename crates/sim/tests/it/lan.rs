//! The mesh decides who links to whom (LAN mode): 200 devices find each
//! other by discovery (delays, lost records), dial within their peer limit,
//! and form one connected mesh under every limit >= 2; with devices that
//! sleep and come back, and 5 % frame loss, every message reaches every
//! device. The same seed gives the same run.

use festival_core::MessageId;
use festival_sim::{LanCfg, LinkSpec, Sim};
use rand::Rng;

const NODES: usize = 200;

/// 200 devices arriving over 20 s, with `limits[i]` links at most for
/// device `i` (the last for the rest), and `loss` on every link.
fn crowd(seed: u64, limits: Vec<usize>, loss: f64) -> Sim {
    let mut sim = Sim::new(seed);
    let mut cfg = LanCfg::new(2, LinkSpec::lossy(loss));
    cfg.limits = limits;
    sim.enable_lan(cfg);
    for _ in 0..NODES {
        sim.add_node(vec![]);
        let gap = sim.rng.gen_range(0..200);
        sim.run_for(gap);
    }
    sim
}

/// Runs until the online nodes form one component (or `limit_ms` pass);
/// panics with the components otherwise.
fn wait_connected(sim: &mut Sim, limit_ms: u64, what: &str) {
    if !sim.run_until_cond(limit_ms, 500, |s| s.components().len() == 1) {
        let sizes: Vec<usize> = sim.components().iter().map(Vec::len).collect();
        panic!("{what}: not one connected mesh after {limit_ms} ms: component sizes {sizes:?}");
    }
}

fn wait_delivered(sim: &mut Sim, ids: &[MessageId], limit_ms: u64, what: &str) {
    let online: Vec<usize> = (0..sim.nodes.len()).filter(|&i| sim.nodes[i].online()).collect();
    let all = |s: &Sim| online.iter().all(|&i| ids.iter().all(|id| s.saw(i, id)));
    if !sim.run_until_cond(limit_ms, 500, all) {
        let lacking: Vec<usize> = online.iter().copied().filter(|&i| !ids.iter().all(|id| sim.saw(i, id))).collect();
        let sizes: Vec<usize> = sim.components().iter().map(Vec::len).collect();
        panic!(
            "{what}: {} of {} online nodes lack messages after {limit_ms} ms ({lacking:?}); components {sizes:?}",
            lacking.len(),
            online.len()
        );
    }
    eprintln!("{what}: delivered at {} ms", sim.now - festival_sim::EPOCH_MS);
}

#[test]
fn two_hundred_devices_form_one_mesh_under_every_limit() {
    for limit in [2, 3, 4, 8] {
        let mut sim = crowd(7 + limit as u64, vec![limit], 0.05);
        wait_connected(&mut sim, 60_000, &format!("limit {limit}"));
        for i in 0..NODES {
            let links = sim.mesh(i).expect("online").kept();
            assert!(links <= limit, "node {i}: {links} links over the limit {limit}");
        }
        // At a limit of 2 the mesh is one chain of 200 in id order: pushes
        // stop after 32 hops (the protocol's limit) and go on as
        // announcements and grafts, and each lost frame costs a timeout, so
        // the far end of the chain takes minutes.
        let ids: Vec<MessageId> = (0..5).map(|k| sim.send_text(k * 37, "festival", &format!("m{k}"))).collect();
        let within = if limit == 2 { 600_000 } else { 120_000 };
        wait_delivered(&mut sim, &ids, within, &format!("limit {limit}"));
    }
}

/// The links beyond each node's chain link are chords across the crowd, so
/// the mesh stays narrow. When a full node gave every nearer lower peer's
/// dial the place of a farther link, all links settled on neighbours by
/// id: a ring with short chords, 30 links across at this size (8 now).
#[test]
fn extra_links_are_random_chords_that_keep_the_mesh_narrow() {
    let mut sim = crowd(5, vec![4], 0.0);
    wait_connected(&mut sim, 60_000, "limit 4");
    sim.run_for(30_000);
    wait_connected(&mut sim, 10_000, "limit 4, settled");
    let diameter = sim.diameter();
    eprintln!("200 devices at limit 4: diameter {diameter}, {} links", sim.open_pairs().len());
    assert!(diameter <= 10, "diameter {diameter}");
}

#[test]
fn at_a_limit_of_two_the_chain_of_two_hundred_delivers_everything_without_loss() {
    let mut sim = crowd(9, vec![2], 0.0);
    wait_connected(&mut sim, 60_000, "limit 2");
    let ids: Vec<MessageId> = (0..5).map(|k| sim.send_text(k * 37, "festival", &format!("m{k}"))).collect();
    wait_delivered(&mut sim, &ids, 300_000, "limit 2 without loss");
}

#[test]
fn mixed_limits_with_churn_stay_one_mesh_and_deliver_everything() {
    // Phones on battery keep 2-4 links, venue boxes 8.
    let limits: Vec<usize> = (0..NODES).map(|i| if i % 25 == 0 { 8 } else { 2 + i % 3 }).collect();
    let mut sim = crowd(99, limits, 0.05);
    wait_connected(&mut sim, 60_000, "after arrival");
    let mut ids = Vec::new();
    // Ten rounds: a tenth of the crowd sleeps, others come back, and
    // someone awake says something.
    for round in 0..10 {
        for _ in 0..NODES / 10 {
            let i = sim.rng.gen_range(0..NODES);
            let online = sim.nodes[i].online();
            sim.set_online(i, !online);
        }
        let speaker = (0..NODES).find(|&i| sim.nodes[(i + round * 13) % NODES].online()).expect("someone awake");
        let speaker = (speaker + round * 13) % NODES;
        ids.push(sim.send_text(speaker, "festival", &format!("round {round}")));
        sim.run_for(5_000);
    }
    for i in 0..NODES {
        sim.set_online(i, true);
    }
    wait_connected(&mut sim, 60_000, "after churn");
    wait_delivered(&mut sim, &ids, 120_000, "mixed limits with churn");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = || {
        let mut sim = crowd(5, vec![3], 0.05);
        sim.run_for(20_000);
        for i in (0..NODES).step_by(7) {
            sim.set_online(i, false);
        }
        sim.send_text(1, "festival", "hello");
        sim.run_for(20_000);
        (sim.trace_hash(), sim.lan_link_churn())
    };
    assert_eq!(run(), run());
}

/// Secrets of `n` keys whose ids sort below every other's (their first
/// byte is 0): ground from `sim`'s RNG, as an attacker would.
fn low_keys(sim: &mut Sim, n: usize) -> Vec<[u8; 32]> {
    let mut keys = Vec::new();
    while keys.len() < n {
        let secret: [u8; 32] = sim.rng.gen();
        if festival_core::Identity::from_secret_bytes(&secret).peer_id().as_bytes()[0] == 0 {
            keys.push(secret);
        }
    }
    keys
}

/// The honest nodes in groups that reach each other over open links
/// between honest nodes (a Sybil forwards nothing), largest first.
fn honest_components(sim: &Sim, sybils: &[usize]) -> Vec<usize> {
    let n = sim.nodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for (a, b) in sim.open_pairs() {
        if !sybils.contains(&a) && !sybils.contains(&b) {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
    }
    let mut sizes = std::collections::BTreeMap::<usize, usize>::new();
    for i in (0..n).filter(|i| !sybils.contains(i) && sim.nodes[*i].online()) {
        *sizes.entry(root(&mut parent, i)).or_default() += 1;
    }
    let mut sizes: Vec<usize> = sizes.into_values().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

#[test]
fn eight_sybil_keys_with_the_lowest_ids_do_not_partition_the_crowd() {
    for limit in [2, 3, 4] {
        let mut sim = Sim::new(21 + limit as u64);
        // The Sybils arrive first and take every link they are given (no
        // limit of their own), and forward nothing.
        let keys = low_keys(&mut sim, 8);
        let mut cfg = LanCfg::new(limit, LinkSpec::lossy(0.05));
        cfg.limits = [vec![usize::MAX; 8], vec![limit]].concat();
        sim.enable_lan(cfg);
        let sybils: Vec<usize> = keys.into_iter().map(|k| sim.add_node_with_secret(k, vec![])).collect();
        for &s in &sybils {
            sim.nodes[s].silent = true;
        }
        for _ in 0..NODES {
            sim.add_node(vec![]);
            let gap = sim.rng.gen_range(0..200);
            sim.run_for(gap);
        }
        let one = sim.run_until_cond(90_000, 500, |s| honest_components(s, &sybils).len() == 1);
        assert!(one, "limit {limit}: honest nodes split by 8 Sybils: {:?}", honest_components(&sim, &sybils));
        let honest: Vec<usize> = (8..8 + NODES).collect();
        let ids: Vec<MessageId> = (0..5).map(|k| sim.send_text(honest[k * 37], "festival", &format!("m{k}"))).collect();
        let all = |s: &Sim| honest.iter().all(|&i| ids.iter().all(|id| s.saw(i, id)));
        let within = if limit == 2 { 600_000 } else { 120_000 };
        assert!(sim.run_until_cond(within, 500, all), "limit {limit}: messages did not reach every honest node");
    }
}

/// A record anyone can multicast, with a linked peer's id at another
/// address, again at every re-announcement: the verified links stay, and
/// messages keep flowing over them.
#[test]
fn spoofed_records_for_linked_peers_drop_no_link() {
    let mut sim = crowd(31, vec![3], 0.0);
    wait_connected(&mut sim, 60_000, "before the spoofing");
    // Until the links settle (no link opened or closed for 20 s), so any
    // change below is the spoofs'.
    let mut last = (sim.lan_link_churn(), sim.now);
    let settled = sim.run_until_cond(300_000, 1_000, |s| {
        if s.lan_link_churn() != last.0 {
            last = (s.lan_link_churn(), s.now);
        }
        s.now >= last.1 + 20_000
    });
    assert!(settled, "the links never settled");
    let pairs = sim.open_pairs();
    let churn = sim.lan_link_churn();
    for round in 0..10u16 {
        // Both ends of every link hear a spoof of the other.
        for &(a, b) in &pairs {
            sim.lan_spoof_record(a, b, 40_000 + round);
            sim.lan_spoof_record(b, a, 40_000 + round);
        }
        sim.run_for(2_000);
    }
    assert_eq!(sim.open_pairs(), pairs, "a spoofed record changed the links");
    assert_eq!(sim.lan_link_churn(), churn, "links were opened or closed");
    let ids: Vec<MessageId> = (0..3).map(|k| sim.send_text(k * 50, "festival", &format!("m{k}"))).collect();
    wait_delivered(&mut sim, &ids, 60_000, "after the spoofing");
}
