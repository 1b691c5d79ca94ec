//! Someone walks out of Wi-Fi range for 30 s (their host's veth goes down)
//! while the others chat, and writes a couple of messages meanwhile. Back in
//! range, everyone converges: every message on every node, each exactly once.

use std::time::{Duration, Instant};

use festival_lab::{assert_each_once, deadline, phase, settle, wait_all, Lan, NodeProc};

const HOSTS: usize = 4;
/// The walk out of range; long enough for ICE to give up on the links.
const CUT: Duration = Duration::from_secs(30);
/// Rounds of chat spread over the cut.
const ROUNDS: u32 = 3;
/// From link up to every node holding every message.
const CONVERGE: Duration = Duration::from_secs(60);

#[test]
fn a_host_cut_off_for_30s_converges_with_every_message_exactly_once() {
    let start = Instant::now();
    let lan = Lan::new(HOSTS);
    let mut nodes: Vec<NodeProc> = (0..HOSTS).map(|h| lan.spawn(h, &format!("n{h}"), &[])).collect();
    let peers: Vec<String> = nodes.iter().map(|n| n.peer.clone()).collect();
    let by = deadline(30);
    for n in &nodes {
        let others: Vec<&str> = peers.iter().filter(|p| **p != n.peer).map(|p| &p[..12]).collect();
        n.wait_until(&format!("links with every other node {others:?}"), by, |l| {
            peers.iter().filter(|p| **p != n.peer).all(|p| l.linked().contains(p)).then_some(())
        });
    }
    phase(start, "full mesh linked");
    let mut ids = vec![nodes[3].say("before the walk")];
    // The walk starts once the others hold it: `saved` comes before the push
    // leaves, and a veth taken down in that gap would hold the message back
    // until link up, which is the last phase's business, not this one's.
    wait_all(&nodes[..HOSTS - 1], "the message said before the walk", deadline(10), |l| l.has_all(&ids));

    let away = HOSTS - 1;
    lan.link_down(away);
    let cut_at = Instant::now();
    phase(start, "n3 cut off");
    let mut from_away = Vec::new();
    for round in 0..ROUNDS {
        for (i, n) in nodes.iter_mut().enumerate() {
            let id = n.say(&format!("round {round} from n{i}"));
            if i == away {
                from_away.push(id)
            } else {
                ids.push(id)
            }
        }
        // The scenario itself: chat spread over the time away.
        settle((CUT / ROUNDS).saturating_sub(Duration::from_millis(50)));
    }
    wait_all(&nodes[..away], "the messages of those in range", deadline(10), |l| l.has_all(&ids));
    ids.extend(from_away);
    settle(CUT.saturating_sub(cut_at.elapsed()));
    let down_for = cut_at.elapsed();
    let gone = nodes[0].log().events("link_down").any(|e| e["peer"] == nodes[away].peer.as_str());
    phase(start, &format!("link up after {:.1} s (n0 saw its link to n3 drop: {gone})", down_for.as_secs_f64()));
    lan.link_up(away);
    let up_at = Instant::now();

    wait_all(&nodes, "every message", up_at + CONVERGE, |l| l.has_all(&ids));
    phase(start, &format!("converged {:.1} s after link up", up_at.elapsed().as_secs_f64()));

    settle(Duration::from_secs(3));
    assert_each_once(&nodes, &ids);
    for n in &mut nodes {
        n.quit();
    }
    phase(start, "done");
}
