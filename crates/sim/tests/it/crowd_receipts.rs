//! Receipts in a crowd: the festival room's first message reached 300
//! devices while each had seen one author, and every device answered with
//! a receipt that then went to every device (300 receipts flooding 300
//! devices; at 10,000 devices, 10,000 of them). Only devices within
//! `room_receipts_max_hops` of the author send one; one that saw a message
//! from further away marks nothing read for the room either.

use festival_core::sync::Input;
use festival_core::RoomId;
use festival_sim::{random_graph, LinkSpec, Sim};

#[test]
fn only_devices_near_the_author_answer_a_crowd_rooms_message() {
    const NODES: usize = 300;
    let mut sim = Sim::new(21);
    for _ in 0..NODES {
        sim.add_node(vec![]);
    }
    for (x, y) in random_graph(NODES, 2, 3, &mut sim.rng) {
        sim.connect(x, y, LinkSpec::lan());
    }
    sim.run_for(3_000);
    let max_hops = sim.config.room_receipts_max_hops as usize;

    let author = 0;
    let dist = sim.hops_from(author);
    let near = dist.iter().filter(|d| (1..=max_hops).contains(*d)).count();
    let far = (0..NODES).find(|&i| dist[i] > max_hops + 2).expect("a device far from the author");

    let id = sim.send_text(author, "festival", "anyone at the main stage?");
    assert!(sim.run_until_cond(60_000, 100, |s| (0..NODES).all(|i| s.saw(i, &id))), "the crowd got the message");
    // The far device's user reads it.
    let at_far = sim.nodes[far].delivered.iter().find(|d| d.id == id).expect("delivered").clone();
    let read = Input::MarkRead { room: at_far.room, messages: vec![(id, at_far.author)] };
    sim.feed(far, read);
    sim.run_for(10_000);

    // Who answered: a device that wrote anything in the room (it wrote
    // nothing but receipts).
    let festival: RoomId = "festival".parse().expect("room");
    let senders: Vec<usize> =
        (1..NODES).filter(|&i| sim.nodes[i].store.get_at(&festival, &sim.peer_id(i), 1).is_some()).collect();
    eprintln!("{} devices sent receipts; {near} are within {max_hops} hops, of {NODES}", senders.len());
    assert!(!senders.is_empty(), "devices near the author still answer");
    for &i in &senders {
        assert!(dist[i] <= max_hops, "device {i}, {} hops away, sent a receipt", dist[i]);
    }
    assert!(!senders.contains(&far), "the far device sent a read receipt");
}
