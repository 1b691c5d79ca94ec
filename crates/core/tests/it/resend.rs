//! The person's retry of one of their DMs (`Input::Resend`): pushed to the
//! room's tree links and the relay, announced to the other links, each
//! link told once and counted; nothing for an envelope that is not ours.

use crate::common;

use common::{identity, Harness};
use festival_core::frame::Frame;
use festival_core::sync::{Config, Content, Input, LinkKind};
use festival_core::RoomId;

#[test]
fn a_retried_dm_is_pushed_to_the_tree_and_the_relay_and_announced_to_the_rest() {
    let mut h =
        Harness::with_config(1, Config { rooms: vec![RoomId::festival(), RoomId::direct()], ..Config::default() });
    let (a, b, relay) = (identity(2), identity(3), identity(4));
    h.link(1, &a);
    h.link(2, &b);
    h.link_of_kind(3, &relay, LinkKind::Relay);
    let to = identity(9).peer_id();
    let (id, out) =
        h.node.send(RoomId::direct(), Content::Direct { to, text: "are you at the gate?".into() }, h.now).unwrap();
    h.apply(out);
    let env = h.io.envelopes.get(&id).cloned().expect("stored");
    h.io.sent.clear();
    h.feed(Input::Resend { envelope: env.clone() });
    let told = |link: u64| {
        h.io.sent.iter().filter(|(l, _)| l.0 == link).any(|(_, f)| match f {
            Frame::Push(i) => i.envelope == env.bytes(),
            Frame::IHave { refs } => refs.iter().any(|r| r.id == id),
            _ => false,
        })
    };
    assert!(told(1) && told(2), "every link is told: {:?}", h.io.sent);
    let pushed_to_relay =
        h.io.sent.iter().any(|(l, f)| l.0 == 3 && matches!(f, Frame::Push(i) if i.envelope == env.bytes()));
    assert!(pushed_to_relay, "the relay gets the message itself: {:?}", h.io.sent);
    assert_eq!(h.node.stats().resent_to, 3);

    // Someone else's envelope: nothing is sent, nothing counted.
    h.io.sent.clear();
    let theirs = common::text(&a, "festival", 1, "not yours to resend");
    h.feed(Input::Resend { envelope: theirs });
    assert!(h.io.sent.is_empty(), "{:?}", h.io.sent);
    assert_eq!(h.node.stats().resent_to, 3);
}
