//! Five laptops join the same Wi-Fi: each finds the other four over mDNS,
//! links with all of them (the default peer limit is 8), and a message from
//! any one is shown once on every other.

use std::time::{Duration, Instant};

use festival_lab::{assert_each_once, deadline, phase, settle, wait_all, Lan, NodeProc};

const HOSTS: usize = 5;

#[test]
fn everyone_finds_everyone_and_hears_everyone() {
    let start = Instant::now();
    let lan = Lan::new(HOSTS);
    let mut nodes: Vec<NodeProc> = (0..HOSTS).map(|h| lan.spawn(h, &format!("n{h}"), &[])).collect();
    phase(start, "all nodes ready");

    let peers: Vec<String> = nodes.iter().map(|n| n.peer.clone()).collect();
    let by = deadline(30);
    for n in &nodes {
        let others: Vec<&String> = peers.iter().filter(|p| **p != n.peer).collect();
        // A node may be dialled by a peer it has not discovered yet; it
        // still finds every peer on mDNS.
        n.wait_until("discovering and linking with every other node", by, |log| {
            let (linked, found) = (log.linked(), log.discovered());
            others.iter().all(|p| linked.contains(*p) && found.contains(*p)).then_some(())
        });
    }
    phase(start, "full mesh linked");

    let mut ids = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        ids.push(n.say(&format!("hello from n{i}")));
    }
    wait_all(&nodes, "every message", deadline(15), |log| log.has_all(&ids));
    phase(start, "every message on every node");

    for n in &nodes {
        let log = n.log();
        for id in &ids {
            let m = log.message(id).expect("shown");
            // Plumtree: a message may come along the broadcast tree through
            // another node even when its author is a neighbour.
            let hops = m["hops"].as_u64().expect("hops");
            if m["mine"] == true {
                assert_eq!(hops, 0, "{}: {m}", n.name);
            } else {
                assert!((1..HOSTS as u64).contains(&hops), "{}: {m}", n.name);
            }
            assert!(m["body"]["text"].as_str().is_some_and(|t| t.starts_with("hello from n")));
        }
    }
    // Give a late duplicate (a push racing a sync) time to show before counting.
    settle(Duration::from_secs(2));
    assert_each_once(&nodes, &ids);
    for n in &mut nodes {
        let status = n.status();
        assert_eq!(status["links"], HOSTS as u64 - 1, "{}: {status}", n.name);
    }
    for n in &mut nodes {
        n.quit();
    }
    phase(start, "all quit cleanly");
}
