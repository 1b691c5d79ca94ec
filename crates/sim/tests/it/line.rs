//! A - B - C in a line; A and C are never linked. C gets A's messages through
//! B, and A gets C's receipts back the same way.

use festival_core::body::{open_dm, ReceiptStatus};
use festival_core::sync::Content;
use festival_core::{Identity, RoomId};
use festival_sim::{LinkSpec, Sim};

/// The receipts `node` counted for its messages (by the protocol's rule), at
/// least `status`.
fn receipts_in(
    sim: &Sim,
    node: usize,
    status: ReceiptStatus,
) -> Vec<(festival_core::PeerId, festival_core::MessageId)> {
    let mut out = Vec::new();
    for (id, by) in &sim.nodes[node].store.receipts {
        out.extend(by.iter().filter(|(_, s)| **s >= status).map(|(p, _)| (*p, *id)));
    }
    out
}

#[test]
fn c_gets_a_room_message_through_b_and_a_gets_cs_receipt() {
    let mut sim = Sim::new(7);
    let stage: RoomId = "main-stage".parse().unwrap();
    let (a, b, c) =
        (sim.add_node(vec![stage.clone()]), sim.add_node(vec![stage.clone()]), sim.add_node(vec![stage.clone()]));
    sim.connect(a, b, LinkSpec::lan());
    sim.connect(b, c, LinkSpec::lan());
    sim.run_for(1_000);
    // Room receipts count from members: people who have written there.
    sim.send_text(c, "main-stage", "hi all");

    let id = sim.send_text(a, "main-stage", "headliner starts at 22:00");
    assert!(sim.run_until_cond(10_000, 10, |s| s.has(c, &id)), "C never got A's message");
    let at_c = sim.nodes[c].delivered.iter().find(|d| d.id == id).unwrap();
    assert_eq!(at_c.hops, 2, "A -> B -> C is two hops");

    let c_peer = sim.peer_id(c);
    assert!(
        sim.run_until_cond(10_000, 10, |s| receipts_in(s, a, ReceiptStatus::Delivered).contains(&(c_peer, id))),
        "A never got C's delivery receipt"
    );
}

#[test]
fn a_sealed_dm_crosses_b_unreadable_and_read_receipt_returns() {
    let mut sim = Sim::new(8);
    let (a, b, c) = (sim.add_node(vec![]), sim.add_node(vec![]), sim.add_node(vec![]));
    sim.connect(a, b, LinkSpec::lan());
    sim.connect(b, c, LinkSpec::lan());
    sim.run_for(1_000);

    let c_peer = sim.peer_id(c);
    let id = sim.send(a, RoomId::direct(), Content::Direct { to: c_peer, text: "at the ferris wheel".into() }).unwrap();
    assert!(sim.run_until_cond(10_000, 10, |s| s.has(c, &id)));

    // B carried it but cannot open it; C can.
    let env = sim.nodes[b].store.get(&id).expect("B stored the DM").clone();
    let b_core_id = sim.nodes[b].core.as_ref().unwrap().identity();
    assert!(open_dm(b_core_id, &env).is_err());
    let c_core_id: &Identity = sim.nodes[c].core.as_ref().unwrap().identity();
    assert_eq!(open_dm(c_core_id, &env).unwrap(), "at the ferris wheel");

    assert!(sim.run_until_cond(10_000, 10, |s| receipts_in(s, a, ReceiptStatus::Delivered).contains(&(c_peer, id))));
    let a_peer = sim.peer_id(a);
    sim.feed(c, festival_core::sync::Input::MarkRead { room: RoomId::direct(), messages: vec![(id, a_peer)] });
    assert!(
        sim.run_until_cond(10_000, 10, |s| receipts_in(s, a, ReceiptStatus::Read).contains(&(c_peer, id))),
        "A never learned that C read it"
    );
}

/// A line of 60 nodes: pushes stop after 32 hops (the protocol's limit), and
/// the message goes on as announcements to every link, which the next node
/// grafts: a few hundred milliseconds a hop, not a sync interval. And with
/// loss, a push lost on the way is repaired by sync and then pushed on as if
/// it came live (it is fresh), so one loss does not slow every hop after it.
#[test]
fn a_message_crosses_a_line_longer_than_the_push_limit_without_waiting_for_syncs() {
    // Virtual time: the same seed gives the same run. Measured: 7.4 s and
    // 37 s; without the announcements past 32 hops the first takes over
    // 60 s, and without pushing on repaired fresh messages the second 56 s.
    for (loss, within) in [(0.0, 20_000), (0.05, 45_000)] {
        let mut sim = Sim::new(12);
        let nodes: Vec<usize> = (0..60).map(|_| sim.add_node(vec![])).collect();
        let spec = if loss > 0.0 { LinkSpec::lossy(loss) } else { LinkSpec::lan() };
        for w in nodes.windows(2) {
            sim.connect(w[0], w[1], spec);
        }
        sim.run_for(2_000);
        let start = sim.now;
        let id = sim.send_text(nodes[0], "festival", "the far end hears this");
        let last = nodes[59];
        // A sync interval (5 s on mains) per hop beyond 32 would be over 2
        // minutes.
        assert!(
            sim.run_until_cond(within, 10, |s| s.has(last, &id)),
            "loss {loss}: the far end of the line did not get it within {within} ms"
        );
        let hops = sim.nodes[last].delivered.iter().find(|d| d.id == id).expect("delivered").hops;
        eprintln!("loss {loss}: {} ms, {hops} hops", sim.now - start);
    }
}
