//! A node whose every slot went to lower nodes' dials still links up when a
//! higher node appears (see `festival_core::mesh`); without that, the higher
//! node is cut off for good. CI once saw five nodes at `--peer-limit 2`
//! split so.
//!
//! Four nodes at a limit of 2, ids a < b < m < h. Host a cannot hear host b
//! (so a does not move its link up to b, its nearer higher peer). a and b
//! link to m before h starts: m is full of lower links. Then h starts: m
//! drops one of them and links to h, the dropped node finds another way
//! up, and every message reaches everyone.

use std::time::Instant;

use festival_lab::{assert_each_once, deadline, phase, settle, wait_all, Lan, NodeProc};

const LIMIT: &str = "2";

#[test]
fn a_node_full_of_lower_links_makes_room_for_a_higher_newcomer() {
    let start = Instant::now();
    let lan = Lan::new(4);
    // Identities come from each node's first start; then stop them all and
    // start them again in the order the scenario needs.
    let mut nodes: Vec<NodeProc> = (0..4).map(|h| lan.spawn(h, &format!("n{h}"), &["--peer-limit", LIMIT])).collect();
    for n in &mut nodes {
        n.quit();
    }
    nodes.sort_by(|x, y| x.peer.cmp(&y.peer));
    let [mut a, mut b, mut m, mut h] = <[NodeProc; 4]>::try_from(nodes).unwrap_or_else(|_| unreachable!("four nodes"));
    lan.deafen_to_mdns_of(a.host, b.host).expect("nftables in a's host");
    phase(start, "identities known, a cannot hear b");

    m.restart();
    a.restart();
    let m_id = m.peer.clone();
    a.wait_until("a linked to m", deadline(20), |l| l.linked().contains(&m_id).then_some(()));
    b.restart();
    b.wait_until("b linked to m", deadline(20), |l| l.linked().contains(&m_id).then_some(()));
    let (a_id, b_id) = (a.peer.clone(), b.peer.clone());
    m.wait_until("m full of lower links", deadline(10), |l| {
        let linked = l.linked();
        (linked.contains(&a_id) && linked.contains(&b_id)).then_some(())
    });
    phase(start, "m full of lower links");

    h.restart();
    let h_id = h.peer.clone();
    let by = deadline(30);
    if h.try_wait_until(by, |l| (!l.linked().is_empty()).then_some(())).is_err() {
        panic!(
            "the higher newcomer never linked\n{}\n{}\n{}\n{}",
            a.diagnostics(),
            b.diagnostics(),
            m.diagnostics(),
            h.diagnostics()
        );
    }
    phase(start, "h linked");
    m.wait_until("m linked to h", deadline(20), |l| l.linked().contains(&h_id).then_some(()));

    let ids = vec![a.say("from a"), b.say("from b"), m.say("from m"), h.say("from h")];
    wait_all([&a, &b, &m, &h], "every message on every node", deadline(60), |l| l.has_all(&ids));
    phase(start, "every message on every node");
    for n in [&mut a, &mut b, &mut m, &mut h] {
        let links = n.status()["links"].as_u64().expect("links");
        assert!(links <= 2, "{}: {links} links over the limit of 2", n.name);
    }
    settle(std::time::Duration::from_secs(1));
    assert_each_once([&a, &b, &m, &h], &ids);
    lan.clear_impairments(a.host);
    for n in [&mut a, &mut b, &mut m, &mut h] {
        n.quit();
    }
    phase(start, "done");
}
