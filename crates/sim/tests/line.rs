//! A - B - C in a line; A and C are never linked. C gets A's messages through
//! B, and A gets C's receipts back the same way.

use festival_core::body::{open_dm, Body, ReceiptStatus};
use festival_core::sync::Content;
use festival_core::{Identity, RoomId};
use festival_sim::{LinkSpec, Sim};

fn receipts_in(
    sim: &Sim,
    node: usize,
    status: ReceiptStatus,
) -> Vec<(festival_core::PeerId, festival_core::MessageId)> {
    let mut out = Vec::new();
    for d in &sim.nodes[node].delivered {
        let env = sim.nodes[node].store.get(&d.id).expect("delivered means stored");
        if let Body::Receipt(r) = env.parsed_body() {
            if r.status == status {
                out.extend(r.ids.iter().map(|id| (env.author(), *id)));
            }
        }
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
    let Body::SealedDm(sealed) = env.parsed_body() else { panic!("not a DM") };
    let b_core_id = sim.nodes[b].core.as_ref().unwrap().identity();
    assert!(open_dm(b_core_id, &sim.peer_id(a), &sealed).is_err());
    let c_core_id: &Identity = sim.nodes[c].core.as_ref().unwrap().identity();
    assert_eq!(open_dm(c_core_id, &sim.peer_id(a), &sealed).unwrap(), "at the ferris wheel");

    assert!(sim.run_until_cond(10_000, 10, |s| receipts_in(s, a, ReceiptStatus::Delivered).contains(&(c_peer, id))));
    sim.feed(c, festival_core::sync::Input::MarkRead { room: RoomId::direct(), ids: vec![id] });
    assert!(
        sim.run_until_cond(10_000, 10, |s| receipts_in(s, a, ReceiptStatus::Read).contains(&(c_peer, id))),
        "A never learned that C read it"
    );
}
