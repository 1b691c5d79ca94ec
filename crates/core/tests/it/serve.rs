//! Serving a want within the frame's limits: whatever range a peer asks for
//! (another implementation may ask for more seqs than a batch can carry),
//! the answer is one valid Batch.

use crate::common;

use common::Harness;
use festival_core::frame::{Frame, Want, MAX_BATCH_ITEMS};
use festival_core::{LinkId, RoomId};

#[test]
fn a_want_for_more_seqs_than_a_batch_carries_gets_one_valid_batch_of_the_first() {
    let author = common::identity(100);
    let (bringer, asker) = (common::identity(1), common::identity(2));
    let mut h = Harness::new(9, vec![]);
    h.link(1, &bringer);
    let chain: Vec<_> = (1..=300).map(|seq| common::text(&author, "festival", seq, "x")).collect();
    for part in chain.chunks(MAX_BATCH_ITEMS) {
        h.frame(1, common::batch(part));
    }
    assert_eq!(h.node.head(&RoomId::festival(), &author.peer_id()), (300, 300));
    h.link(2, &asker);
    let from = h.sent.len();
    let want = Want { room: RoomId::festival(), author: author.peer_id(), from: 1, to: 300 };
    h.frame(2, Frame::Want(want).encode());
    // The harness decodes every frame sent and panics on one that does not
    // decode: a batch of 300 items would.
    let batches: Vec<Vec<u64>> = h.sent[from..]
        .iter()
        .filter_map(|(l, f)| match f {
            Frame::Batch { items } if *l == LinkId(2) => Some(
                items
                    .iter()
                    .map(|i| festival_core::SignedEnvelope::decode(&i.envelope).expect("valid envelope").seq())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(batches.len(), 1, "one batch per want");
    assert_eq!(batches[0], (1..=MAX_BATCH_ITEMS as u64).collect::<Vec<_>>(), "the first, oldest first");
}
