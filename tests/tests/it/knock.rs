//! A node that cannot hear its higher neighbour still links to it: the
//! higher node heard the newcomer's announcement, and knocks (dials it
//! itself) when the newcomer does not dial first. Only the lower PeerId
//! dials otherwise, so without the knock these two would never link.
//!
//! Host 1 drops every mDNS packet from host 0 (as if its query had gone
//! unanswered, or the answer were held back by mDNS's once-a-second limit)
//! and its node has a lower id than host 0's: it never learns of host 0.

use std::time::Instant;

use festival_lab::{deadline, phase, wait_all, Lan, NodeProc};

#[test]
fn a_higher_node_knocks_on_a_newcomer_that_cannot_hear_it() {
    let start = Instant::now();
    let lan = Lan::new(2);
    // Ids are random: a stage box in the upper half of the id space (one
    // start in two), so that each newcomer identity below is at least an
    // even chance; a stage box with a very low id left 30 newcomer tries
    // too few (one run in ~30 failed so).
    let mut stage = lan.spawn(0, "stage-box", &[]);
    for _ in 0..30 {
        if stage.peer.as_str() >= "8" {
            break;
        }
        drop(stage);
        stage = lan.spawn(0, "stage-box", &[]);
    }
    lan.deafen_to_mdns_of(1, 0).expect("nftables in host 1");
    // Start the newcomer with fresh identities until its id is below the
    // stage box's (one in two tries or better).
    let mut tries = 0;
    let mut newcomer: NodeProc = loop {
        tries += 1;
        let n = lan.spawn(1, "newcomer", &[]);
        if n.peer < stage.peer || tries == 30 {
            break n;
        }
        drop(n);
    };
    assert!(newcomer.peer < stage.peer, "no newcomer identity below the stage box in {tries} tries");
    phase(start, &format!("newcomer started below the stage box ({tries} identities)"));

    let by = deadline(20);
    let stage_id = stage.peer.clone();
    if newcomer.try_wait_until(by, |l| l.linked().contains(&stage_id).then_some(())).is_err() {
        panic!("the newcomer never linked to the stage box\n{}\n{}", newcomer.diagnostics(), stage.diagnostics());
    }
    phase(start, "linked");
    let newcomer_id = newcomer.peer.clone();
    assert!(
        !newcomer.log().events("discovered").any(|e| e["peer"].as_str() == Some(stage_id.as_str())),
        "the newcomer heard the stage box after all: the test proves nothing"
    );
    let ids = vec![newcomer.say("first message from the newcomer"), stage.say("welcome")];
    wait_all([&newcomer, &stage], "both messages", deadline(20), |l| l.has_all(&ids));
    assert!(stage.log().linked().contains(&newcomer_id));
    phase(start, "both messages on both nodes");
    lan.clear_impairments(1);
    newcomer.quit();
    stage.quit();
}
