//! Summaries after the first carry only the heads that changed since the
//! last one a link was told: a room of many authors costs a link what
//! changed, not a head per author at every sync.

mod common;

use common::Harness;
use festival_core::frame::{Frame, Head, Summary};
use festival_core::sync::{digest_of, Input};
use festival_core::{LinkId, MessageId, PeerId, RoomId};

const MINUTE: u64 = 60_000;

/// The heads of every Summary sent on `link` since `from`, by author, but
/// the node's own: it writes receipts of what it got at its ticks, and
/// its own head changes with them.
fn summarised(h: &Harness, link: u64, room: &RoomId, from: usize) -> Vec<Vec<PeerId>> {
    let me = h.node.peer_id();
    h.sent[from..]
        .iter()
        .filter_map(|(l, f)| match f {
            Frame::Summary(s) if *l == LinkId(link) && s.room == *room => {
                Some(s.heads.iter().map(|h: &Head| h.author).filter(|a| *a != me).collect::<Vec<_>>())
            }
            _ => None,
        })
        .filter(|heads| !heads.is_empty())
        .collect()
}

fn sync_round(h: &mut Harness) -> usize {
    let from = h.sent.len();
    h.now += MINUTE;
    h.feed(Input::Tick);
    from
}

#[test]
fn a_delta_summary_carries_what_changed_since_the_link_was_last_told() {
    let room = RoomId::festival();
    let authors: Vec<_> = (0..5).map(|i| common::identity(100 + i)).collect();
    let (bringer, listener) = (common::identity(1), common::identity(2));
    let mut h = Harness::new(9, vec![]);
    h.link(1, &bringer);
    for a in &authors {
        h.frame(1, common::push(&common::text(a, "festival", 1, "hi")));
    }
    let before = h.sent.len();
    h.link(2, &listener);
    let first = summarised(&h, 2, &room, before);
    let all: usize = first.iter().map(Vec::len).sum();
    assert!(all >= authors.len(), "the link-up summary names every author: {first:?}");

    // One author writes again: the next sync tells the listener of it alone.
    h.frame(1, common::push(&common::text(&authors[3], "festival", 2, "again")));
    let from = sync_round(&mut h);
    assert_eq!(summarised(&h, 2, &room, from), vec![vec![authors[3].peer_id()]]);

    // Nothing changed: no summary at all (the digest says "still the same").
    let from = sync_round(&mut h);
    assert_eq!(summarised(&h, 2, &room, from), Vec::<Vec<PeerId>>::new());
    assert!(
        h.sent[from..].iter().any(|(l, f)| *l == LinkId(2) && matches!(f, Frame::Digest { .. })),
        "the digest still goes"
    );

    // Two change: both, in author order, nothing else.
    h.frame(1, common::push(&common::text(&authors[0], "festival", 2, "more")));
    h.frame(1, common::push(&common::text(&authors[4], "festival", 2, "more")));
    let from = sync_round(&mut h);
    let mut both = vec![authors[0].peer_id(), authors[4].peer_id()];
    both.sort();
    assert_eq!(summarised(&h, 2, &room, from), vec![both]);
}

#[test]
fn a_head_that_holds_nothing_is_not_taken_into_the_view() {
    // A head with max 0 says "nothing held": no digest counts it, so a view
    // that kept it would never match the sender's digest, and every sync
    // would ask it for a full summary again.
    let peer = common::identity(1);
    let mut h = Harness::new(9, vec![]);
    h.link(1, &peer);
    let nothing =
        Head { author: common::identity(100).peer_id(), contiguous: 0, max: 0, tip: MessageId::from_bytes([0; 32]) };
    let summary = Summary { room: RoomId::festival(), heads: vec![nothing], reply: false };
    h.frame(1, Frame::Summary(summary).encode());
    let from = h.sent.len();
    h.frame(1, Frame::Digest { room: RoomId::festival(), digest: digest_of(&[]) }.encode());
    let asked = h.sent[from..].iter().any(|(l, f)| *l == LinkId(1) && matches!(f, Frame::Summary(s) if s.reply));
    assert!(!asked, "the view matched the digest of nothing held");
    assert_eq!(h.node.state_sizes().claims, 0);
}
