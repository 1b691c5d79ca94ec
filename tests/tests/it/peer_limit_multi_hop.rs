//! Five phones that each keep at most two links (`--peer-limit 2`, as a
//! phone on low battery would): no one is linked with everyone, yet every
//! message reaches every phone, some of them over two or more hops.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use festival_lab::{assert_each_once, deadline, phase, settle, Lan, NodeProc};

const HOSTS: usize = 5;
const LIMIT: usize = 2;

#[test]
fn with_two_links_each_messages_still_reach_everyone_over_several_hops() {
    let start = Instant::now();
    let lan = Lan::new(HOSTS);
    let limit = LIMIT.to_string();
    let mut nodes: Vec<NodeProc> =
        (0..HOSTS).map(|h| lan.spawn(h, &format!("n{h}"), &["--peer-limit", &limit])).collect();
    // Not asserted here: a node left without links shows up below as a
    // message that never arrives, with the link graph printed.
    let by = deadline(15);
    let linked = nodes.iter().all(|n| n.try_wait_until(by, |l| (!l.linked().is_empty()).then_some(())).is_ok());
    phase(start, &format!("every node has a link: {linked}"));

    let mut ids = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        ids.push(n.say(&format!("hello from n{i}")));
    }
    let delivered = wait_all_or_report(&nodes, &ids, deadline(60));
    phase(start, "every message on every node");

    for n in &mut nodes {
        let status = n.status();
        let links = status["links"].as_u64().expect("links") as usize;
        assert!(links <= LIMIT, "{}: {links} links over the limit of {LIMIT}: {status}", n.name);
    }
    let far = delivered.values().flatten().filter(|h| **h >= 2).count();
    eprintln!("hops per (node, message): {delivered:?}");
    assert!(far > 0, "no message travelled two hops or more: {delivered:?}");

    settle(Duration::from_secs(2));
    assert_each_once(&nodes, &ids);
    for n in &mut nodes {
        n.quit();
    }
    phase(start, "done");
}

/// Waits for every message on every node; on timeout, panics with who lacks
/// what and the link graph's connected components (a partition shows at a
/// glance). Returns each node's received hop counts.
fn wait_all_or_report(nodes: &[NodeProc], ids: &[String], by: Instant) -> BTreeMap<String, Vec<u64>> {
    if !nodes.iter().all(|n| n.try_wait_until(by, |l| l.has_all(ids).then_some(())).is_ok()) {
        let mut report = String::new();
        for n in nodes {
            let log = n.log();
            let missing = ids.iter().filter(|id| !log.has_message(id)).count();
            let linked: Vec<&str> = log.linked().iter().map(|p| name_of(nodes, p)).collect();
            report.push_str(&format!(
                "  {} (PeerId {}..): missing {missing} of {}, linked with {linked:?}\n",
                n.name,
                &n.peer[..8],
                ids.len()
            ));
        }
        panic!("messages did not reach everyone; link graph components {:?}\n{report}", components(nodes));
    }
    nodes
        .iter()
        .map(|n| {
            let log = n.log();
            let hops = ids.iter().filter_map(|id| log.message(id)).filter(|m| m["mine"] != true);
            (n.name.clone(), hops.filter_map(|m| m["hops"].as_u64()).collect())
        })
        .collect()
}

fn name_of<'a>(nodes: &'a [NodeProc], peer: &str) -> &'a str {
    nodes.iter().find(|n| n.peer == peer).map_or("?", |n| n.name.as_str())
}

/// Connected components of the graph of open links, by node name.
fn components(nodes: &[NodeProc]) -> Vec<Vec<String>> {
    let links: Vec<_> = nodes.iter().map(|n| n.log().linked()).collect();
    let mut seen = vec![false; nodes.len()];
    let mut out = Vec::new();
    for root in 0..nodes.len() {
        if seen[root] {
            continue;
        }
        let (mut stack, mut comp) = (vec![root], Vec::new());
        seen[root] = true;
        while let Some(i) = stack.pop() {
            comp.push(nodes[i].name.clone());
            for (j, n) in nodes.iter().enumerate() {
                let edge = links[i].contains(&n.peer) || links[j].contains(&nodes[i].peer);
                if edge && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        comp.sort();
        out.push(comp);
    }
    out
}
