//! A posts while C is offline; B meets A, later (after A has left) meets C;
//! C ends up with A's messages although A and C were never online together.

use festival_sim::{LinkSpec, Sim};

#[test]
fn c_gets_what_a_posted_while_c_was_offline_via_b() {
    let mut sim = Sim::new(11);
    let (a, b, c) = (sim.add_node(vec![]), sim.add_node(vec![]), sim.add_node(vec![]));
    sim.set_online(c, false);

    let ids: Vec<_> = (0..5).map(|i| sim.send_text(a, "festival", &format!("message {i}"))).collect();
    sim.run_for(1_000);
    sim.connect(a, b, LinkSpec::lan());
    assert!(sim.run_until_cond(10_000, 10, |s| ids.iter().all(|id| s.has(b, id))), "B never got A's messages");

    // A leaves before C shows up; B restarts in between (it must keep them on disk).
    sim.set_online(a, false);
    sim.set_online(b, false);
    sim.set_online(b, true);
    sim.set_online(c, true);
    sim.connect(b, c, LinkSpec::lan());
    assert!(sim.run_until_cond(10_000, 10, |s| ids.iter().all(|id| s.has(c, id))), "C never got A's messages");

    let seqs: Vec<u64> = sim.nodes[c].delivered.iter().filter(|d| d.author == sim.peer_id(a)).map(|d| d.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "in A's order, each once");
}
