//! Route choice per message: a message leaves by a direct data channel when
//! there is one, by the relay otherwise, and waits in the store with no link.

use crate::common;

use common::{identity, Harness};
use festival_core::frame::Frame;
use festival_core::sync::{Content, LinkKind};
use festival_core::{LinkId, RoomId};

/// Send a text; returns the links its push went to, in order, and the
/// path reported in `Sent`.
fn send(h: &mut Harness, text: &str) -> (Vec<LinkId>, Option<LinkKind>) {
    let (id, out) = h.node.send(RoomId::festival(), Content::Text(text.into()), h.now).expect("send");
    let from = h.sent.len();
    h.apply(out);
    let pushes = h.sent[from..].iter().filter(|(_, f)| matches!(f, Frame::Push(_))).map(|(l, _)| *l).collect();
    let sent = h.departures.iter().find(|(m, _)| *m == id).map(|(_, k)| *k);
    (pushes, sent)
}

#[test]
fn a_message_leaves_by_a_direct_link_before_the_relay() {
    let mut h = Harness::new(1, vec![RoomId::festival()]);
    // The relay session came up first: its link id is the lower one.
    h.link_of_kind(1, &identity(2), LinkKind::Relay);
    let (pushes, sent) = send(&mut h, "only the relay");
    assert_eq!((pushes, sent), (vec![LinkId(1)], Some(LinkKind::Relay)));

    h.link(2, &identity(3));
    let (pushes, sent) = send(&mut h, "direct and relay");
    assert_eq!(pushes, vec![LinkId(2), LinkId(1)], "the data channel first, the relay (a mailbox) too");
    assert_eq!(sent, Some(LinkKind::Lan));
}

#[test]
fn with_no_link_a_message_waits() {
    let mut h = Harness::new(1, vec![RoomId::festival()]);
    let (pushes, sent) = send(&mut h, "nobody around");
    assert!(pushes.is_empty());
    assert_eq!(sent, None);
}
