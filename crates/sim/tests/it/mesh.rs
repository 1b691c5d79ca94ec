//! 200 nodes on a random graph of degree 4-6 with 5 % frame loss; a partition
//! that heals after 60 virtual seconds. Every message reaches every member
//! exactly once, in each author's order.

use std::collections::BTreeMap;

use festival_sim::{random_graph, LinkSpec, Report, Sim};
use rand::Rng;

#[test]
fn two_hundred_nodes_with_loss_and_a_healed_partition_converge_exactly_once_in_order() {
    let n = 200;
    let mut sim = Sim::new(2024);
    for _ in 0..n {
        sim.add_node(vec![]);
    }
    let edges = random_graph(n, 4, 6, &mut sim.rng);
    for (a, b) in edges {
        sim.connect(a, b, LinkSpec::lossy(0.05));
    }
    sim.run_for(3_000);

    // Cut the first 60 nodes off, chat on both sides, heal after 60 s.
    let side: Vec<usize> = (0..60).collect();
    sim.partition(&side);
    let mut sent = Vec::new();
    for step in 0..120 {
        let author = sim.rng.gen_range(0..n);
        let id = sim.send_text(author, "festival", &format!("msg {step} from {author}"));
        sent.push((id, author, sim.now));
        sim.run_for(500);
    }
    sim.heal();
    let members: Vec<usize> = (0..n).collect();
    let all = sim.run_until_cond(300_000, 1_000, |s| Report::measure(s, &sent, &members).delivery_ratio >= 1.0);
    let report = Report::measure(&sim, &sent, &members);
    assert!(all, "not everything arrived: {report:?}");
    assert_eq!(report.duplicate_deliveries, 0, "{report:?}");

    for m in 0..n {
        let mut last: BTreeMap<festival_core::PeerId, u64> = BTreeMap::new();
        for d in &sim.nodes[m].delivered {
            let prev = last.insert(d.author, d.seq).unwrap_or(0);
            assert_eq!(d.seq, prev + 1, "node {m}: author {:?} out of order", d.author);
        }
    }
    eprintln!("{report:?}");
}
