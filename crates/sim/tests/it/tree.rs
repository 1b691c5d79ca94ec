//! The room's broadcast tree (protocol 3, `festival_core::sync` `tree`):
//! breadth-first from the best-ranked node, one copy per message when
//! nothing is lost, a gone root replaced, and a protocol-2 peer served
//! without it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use festival_core::frame::{Frame, Hello};
use festival_core::policy::PowerState;
use festival_core::sync::{Config, Input, LinkKind, Node, Output, Snapshot, TREE_BEACON_MS, TREE_STALE_MS};
use festival_core::{Identity, LinkId, PeerId, RoomId};
use festival_sim::{random_graph, LinkSpec, Report, Sim};

/// Hops from `from` to every node over `edges`, among `alive` nodes.
fn bfs(n: usize, edges: &[(usize, usize)], alive: &BTreeSet<usize>, from: usize) -> Vec<Option<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges.iter().filter(|(a, b)| alive.contains(a) && alive.contains(b)) {
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut dist = vec![None; n];
    dist[from] = Some(0);
    let mut queue = VecDeque::from([from]);
    while let Some(x) = queue.pop_front() {
        for &y in &adj[x] {
            if dist[y].is_none() {
                dist[y] = Some(dist[x].unwrap() + 1);
                queue.push_back(y);
            }
        }
    }
    dist
}

/// Every node in `alive` follows `root` at its breadth-first depth, through
/// a parent one nearer, and the tree's links are each other's.
fn assert_breadth_first(sim: &Sim, edges: &[(usize, usize)], alive: &BTreeSet<usize>, root: usize) {
    let room = RoomId::festival();
    let dist = bfs(sim.nodes.len(), edges, alive, root);
    let index: BTreeMap<PeerId, usize> = (0..sim.nodes.len()).map(|i| (sim.peer_id(i), i)).collect();
    for &i in alive {
        let v = sim.nodes[i].core.as_ref().unwrap().tree_view(&room).unwrap();
        assert_eq!(v.root, sim.peer_id(root), "node {i} follows another root");
        assert_eq!(Some(v.depth as usize), dist[i], "node {i} is not at its breadth-first depth");
        match v.parent {
            None => assert_eq!(i, root),
            Some(p) => assert_eq!(dist[index[&p]], Some(v.depth as usize - 1), "node {i}'s parent"),
        }
        for p in &v.tree_peers {
            let other = sim.nodes[index[p]].core.as_ref().unwrap().tree_view(&room).unwrap();
            assert!(other.tree_peers.contains(&sim.peer_id(i)), "{i} pushes to {} but not back", index[p]);
        }
    }
    let links: usize =
        alive.iter().map(|&i| sim.nodes[i].core.as_ref().unwrap().tree_view(&room).unwrap().tree_peers.len()).sum();
    assert_eq!(links, 2 * (alive.len() - 1), "a spanning tree has n - 1 links");
}

fn best(sim: &Sim, alive: &BTreeSet<usize>, powered: &BTreeSet<usize>) -> usize {
    *alive.iter().max_by_key(|&&i| (powered.contains(&i), sim.peer_id(i))).unwrap()
}

/// `n` nodes on a random graph of degree 3-5, lossless: phones on battery
/// but for the `powered` ones (everyone on mains when it is empty); run
/// for two beacons. The simulator and its links.
fn crowd(seed: u64, n: usize, powered: &BTreeSet<usize>) -> (Sim, Vec<(usize, usize)>) {
    let mut sim = Sim::new(seed);
    // The tree's pushes, as a busy crowd has them (a quiet one fetches
    // others' messages live and pushes nothing along the tree).
    sim.config.live_pull = false;
    for _ in 0..n {
        sim.add_node(vec![]);
    }
    if !powered.is_empty() {
        for i in (0..n).filter(|i| !powered.contains(i)) {
            sim.set_power(i, PowerState::Battery { percent: 80 });
        }
    }
    let edges = random_graph(n, 3, 5, &mut sim.rng);
    for &(a, b) in &edges {
        sim.connect(a, b, LinkSpec::lan());
    }
    sim.run_for(2 * TREE_BEACON_MS);
    (sim, edges)
}

#[test]
fn the_tree_is_breadth_first_from_the_best_node_and_carries_one_copy_per_message() {
    let n = 60;
    // Phones, but for three venue boxes: a box ranks first as root.
    let powered: BTreeSet<usize> = [5, 17, 40].into();
    let (mut sim, edges) = crowd(21, n, &powered);
    let alive: BTreeSet<usize> = (0..n).collect();
    let root = best(&sim, &alive, &powered);
    assert!(powered.contains(&root));
    assert_breadth_first(&sim, &edges, &alive, root);

    // Messages from many authors: each node gets each once, along the tree.
    let dups = |s: &Sim| -> u64 {
        let stats = |i: usize| s.nodes[i].core.as_ref().unwrap().stats().clone();
        (0..n).map(|i| stats(i).peers.values().chain([&stats(i).departed]).map(|c| c.duplicates).sum::<u64>()).sum()
    };
    let before = dups(&sim);
    let mut sent = Vec::new();
    for k in 0..30 {
        let author = (k * 7) % n;
        sent.push((sim.send_text(author, "festival", &format!("m{k}")), author, sim.now));
        sim.run_for(100);
    }
    let all: Vec<usize> = (0..n).collect();
    assert!(sim.run_until_cond(10_000, 50, |s| Report::measure(s, &sent, &all).delivery_ratio >= 1.0));
    assert_eq!(dups(&sim) - before, 0, "a copy arrived twice");
    let dist = bfs(n, &edges, &alive, root);
    for (id, author, _) in &sent {
        for i in (0..n).filter(|i| i != author) {
            let d = sim.nodes[i].delivered.iter().find(|d| d.id == *id).unwrap();
            let bound = dist[*author].unwrap() + dist[i].unwrap();
            assert!((d.hops as usize) <= bound, "{} hops from {author} to {i}: more than via the root", d.hops);
        }
    }
}

#[test]
fn a_root_that_leaves_is_replaced_by_the_next_best() {
    let n = 40;
    let (mut sim, edges) = crowd(22, n, &BTreeSet::new());
    let mut alive: BTreeSet<usize> = (0..n).collect();
    let root = best(&sim, &alive, &alive);
    assert_breadth_first(&sim, &edges, &alive, root);

    sim.set_online(root, false);
    alive.remove(&root);
    // The rest stay connected in this graph (checked, else the test proves nothing).
    let next = best(&sim, &alive, &alive);
    assert!(bfs(n, &edges, &alive, next).iter().enumerate().all(|(i, d)| !alive.contains(&i) || d.is_some()));
    sim.run_for(TREE_STALE_MS + 3 * TREE_BEACON_MS);
    assert_breadth_first(&sim, &edges, &alive, next);
    let author = *alive.iter().next().unwrap();
    let id = sim.send_text(author, "festival", "still here");
    let others: Vec<usize> = alive.iter().copied().collect();
    assert!(sim.run_until_cond(5_000, 50, |s| others.iter().all(|&i| s.has(i, &id))));
}

#[test]
fn a_root_that_restarts_is_the_root_again() {
    let n = 30;
    let (mut sim, edges) = crowd(23, n, &BTreeSet::new());
    let alive: BTreeSet<usize> = (0..n).collect();
    let root = best(&sim, &alive, &alive);
    assert_breadth_first(&sim, &edges, &alive, root);
    // A minute as root, then a restart shorter than a root's staleness:
    // its epochs go on from its clock (a count that started over at zero
    // would be taken for old beacons and ignored for another minute).
    sim.run_for(12 * TREE_BEACON_MS);
    sim.set_online(root, false);
    sim.run_for(3_000);
    sim.set_online(root, true);
    sim.run_for(TREE_STALE_MS + 3 * TREE_BEACON_MS);
    assert_breadth_first(&sim, &edges, &alive, root);
}

#[test]
fn a_protocol_2_peer_gets_version_2_hellos_and_no_tree_frames() {
    let me = Identity::from_secret_bytes(&[1; 32]);
    let mut node = Node::new(me, Config::default(), Snapshot::default(), PowerState::Mains, 0);
    let old = Identity::from_secret_bytes(&[2; 32]).peer_id();
    let link = LinkId(1);
    let mut sent: Vec<Frame> = Vec::new();
    let take = |outs: Vec<Output>, sent: &mut Vec<Frame>| {
        for o in outs {
            if let Output::Send { link: l, bytes } = o {
                assert_eq!(l, link);
                sent.push(Frame::decode(&bytes).unwrap());
            }
        }
    };
    take(node.handle(Input::LinkUp { link, peer: old, kind: LinkKind::Lan }, 0), &mut sent);
    assert!(
        matches!(&sent[0], Frame::Hello(h) if h.version == festival_core::sync::PROTOCOL_VERSION),
        "we say hello in our version first"
    );
    let v2_hello = |ack| {
        let hello =
            Hello { version: 2, ack, rooms: vec![RoomId::festival(), RoomId::direct()], relays: true, powered: false };
        Frame::Hello(hello).encode()
    };
    take(node.handle(Input::Frame { link, bytes: v2_hello(false) }, 10), &mut sent);
    let last_hello =
        sent.iter().rev().find_map(|f| if let Frame::Hello(h) = f { Some((h.version, h.ack)) } else { None });
    // Without an ack: the peer refused our first hello and has none to
    // ack, and a protocol-2 node answers only a hello without one.
    assert_eq!(last_hello, Some((2, false)), "answered in the peer's version");
    take(node.handle(Input::Frame { link, bytes: v2_hello(true) }, 20), &mut sent);
    let hellos = sent.iter().filter(|f| matches!(f, Frame::Hello(_))).count();
    for t in (1..=4).map(|k| k * TREE_BEACON_MS) {
        take(node.handle(Input::Tick, t), &mut sent);
    }
    let unknown = |f: &Frame| matches!(f, Frame::Tree(_) | Frame::Recon(_));
    assert!(!sent.iter().any(unknown), "a protocol-2 peer got a frame it cannot read");
    assert!(sent.iter().any(|f| matches!(f, Frame::Summary(_))), "it gets every head in summaries");
    assert_eq!(sent.iter().filter(|f| matches!(f, Frame::Hello(_))).count(), hellos, "hellos repeated after the ack");
    assert_eq!(node.stats().rejected_total(), 0);
}
