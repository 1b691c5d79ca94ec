//! What another instance of a relay cluster committed (`Input::Committed`)
//! is taken as stored: delivered in order and pushed on to our links with
//! the hops that instance gave it, never persisted again, never twice.

use crate::common;

use common::Harness;
use festival_core::frame::Frame;
use festival_core::sync::{Input, LinkKind};
use festival_core::LinkId;

fn pushes_to(h: &Harness, link: u64, from: usize) -> Vec<u8> {
    h.sent[from..]
        .iter()
        .filter_map(|(l, f)| match f {
            Frame::Push(item) if *l == LinkId(link) => Some(item.hops),
            _ => None,
        })
        .collect()
}

#[test]
fn what_a_sibling_committed_is_delivered_and_pushed_once_without_a_second_commit() {
    let (listener, author) = (common::identity(2), common::identity(10));
    let mut h = Harness::new(9, vec![]);
    // A relay instance's links are relay sessions.
    h.link_of_kind(1, &listener, LinkKind::Relay);
    let first = common::text(&author, "festival", 1, "hello from instance one");
    let second = common::text(&author, "festival", 2, "and again");

    let (from, persisted) = (h.sent.len(), h.persisted);
    // Out of order: the second waits for the first, as from any link.
    h.feed(Input::Committed { envelope: second.clone(), hops: 1 });
    assert!(h.delivered.is_empty());
    h.feed(Input::Committed { envelope: first.clone(), hops: 1 });
    let delivered: Vec<_> = h.delivered.iter().map(|(id, _, seq)| (*id, *seq)).collect();
    assert_eq!(delivered, vec![(first.id(), 1), (second.id(), 2)]);
    assert_eq!(h.persisted, persisted, "already in the shared store: no Persist");
    // Pushed on with hops 2, as the instance that took it from its author did.
    assert_eq!(pushes_to(&h, 1, from), vec![2, 2]);

    // The same again (the bus and the store's tail both bring it): nothing.
    let from = h.sent.len();
    h.feed(Input::Committed { envelope: first.clone(), hops: 1 });
    assert_eq!(h.delivered.len(), 2);
    assert!(pushes_to(&h, 1, from).is_empty());

    // A room the node does not carry: dropped.
    let elsewhere = common::text(&author, "elsewhere", 1, "not carried");
    h.feed(Input::Committed { envelope: elsewhere, hops: 1 });
    assert_eq!(h.delivered.len(), 2);
    assert!(pushes_to(&h, 1, from).is_empty());
    // And it is not ours: no "sent" departures for it.
    assert!(h.departures.is_empty());
}
