//! Frames delivered in any order, with duplicates, converge to the same
//! holdings, and the user sees each message once, in per-author order.

mod common;

use std::collections::BTreeMap;

use common::Harness;
use festival_core::{PeerId, SignedEnvelope};
use proptest::prelude::*;

fn corpus(authors: usize, per_author: u64) -> Vec<SignedEnvelope> {
    let mut out = Vec::new();
    for a in 0..authors {
        let who = common::identity(100 + a as u64);
        for seq in 1..=per_author {
            out.push(common::text(&who, "festival", seq, &format!("{a}/{seq}")));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_order_with_duplicates_converges(
        order in Just((0..24usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in prop::collection::vec(0..24usize, 0..10),
        as_batch in prop::collection::vec(any::<bool>(), 34),
    ) {
        let msgs = corpus(3, 8);
        let peers = [common::identity(1), common::identity(2)];
        let mut h = Harness::new(9, vec![]);
        h.link(1, &peers[0]);
        h.link(2, &peers[1]);
        let sequence: Vec<usize> = order.iter().chain(dups.iter()).copied().collect();
        for (k, &i) in sequence.iter().enumerate() {
            let bytes = if as_batch[k % as_batch.len()] { common::batch(&msgs[i..=i]) } else { common::push(&msgs[i]) };
            h.frame(1 + (k % 2) as u64, bytes);
        }
        // Each message exactly once, in per-author order, none missing.
        prop_assert_eq!(h.delivered.len(), msgs.len());
        let mut last: BTreeMap<PeerId, u64> = BTreeMap::new();
        for (_, author, seq) in &h.delivered {
            let prev = last.insert(*author, *seq).unwrap_or(0);
            prop_assert_eq!(*seq, prev + 1);
        }
        for m in &msgs {
            prop_assert_eq!(h.node.head(m.room(), &m.author()), (8, 8));
        }
        prop_assert!(h.rejected.is_empty(), "{:?}", h.rejected);
    }
}
