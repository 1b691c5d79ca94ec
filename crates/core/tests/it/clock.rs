//! Timers run on the monotonic clock, dates on the wall clock (`Now`): a
//! wall clock set back does not stall the node, one set forward does not
//! fire its timers early, and its own messages are dated by the wall clock,
//! going back only when it was set back by more than peers would accept.

use crate::common;

use common::{identity, NOW};
use festival_core::frame::Frame;
use festival_core::policy::PowerState;
use festival_core::sync::{Config, Content, Input, LinkKind, Node, Now, Output};
use festival_core::{LinkId, RoomId};

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn node() -> Node {
    Node::new(identity(1), Config::default(), Default::default(), PowerState::Mains, NOW)
}

fn hellos(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::Send { bytes, .. } if matches!(Frame::decode(bytes), Ok(Frame::Hello(_)))))
        .count()
}

fn wake(out: &[Output]) -> Option<u64> {
    out.iter().rev().find_map(|o| if let Output::WakeAt(t) = o { Some(*t) } else { None })
}

/// A link comes up at `NOW`; the peer never acknowledges the hello, so the
/// node says hello again after `hello_retry_ms` of the monotonic clock.
fn link_up(n: &mut Node) -> u64 {
    let out = n.handle(Input::LinkUp { link: LinkId(1), peer: identity(2).peer_id(), kind: LinkKind::Lan }, NOW);
    assert_eq!(hellos(&out), 1, "a hello at link up");
    let retry = Config::default().hello_retry_ms;
    assert!(wake(&out).is_some_and(|t| t <= NOW + retry), "wakes for the retry: {:?}", wake(&out));
    retry
}

#[test]
fn a_wall_clock_set_back_an_hour_does_not_stall_the_timers() {
    let mut n = node();
    let retry = link_up(&mut n);
    let out = n.handle(Input::Tick, Now { mono: NOW + retry, wall: NOW + retry - HOUR });
    assert_eq!(hellos(&out), 1, "the retry is due on the monotonic clock, whatever the wall clock says");
    assert!(wake(&out).is_some_and(|t| t > NOW + retry && t <= NOW + 2 * retry), "next wake {:?}", wake(&out));
}

#[test]
fn a_wall_clock_set_forward_a_day_fires_no_timer_early() {
    let mut n = node();
    let retry = link_up(&mut n);
    let out = n.handle(Input::Tick, Now { mono: NOW + retry / 2, wall: NOW + DAY });
    assert_eq!(hellos(&out), 0, "the retry is not due yet");
    let out = n.handle(Input::Tick, Now { mono: NOW + retry, wall: NOW + DAY });
    assert_eq!(hellos(&out), 1);
}

#[test]
fn own_messages_are_dated_by_the_wall_clock_and_go_back_only_when_it_was_set_back_far() {
    let mut n = node();
    let festival = RoomId::festival();
    let date = |n: &mut Node, now: Now| {
        let (_, out) = n.send(festival.clone(), Content::Text("hello".into()), now).expect("sent");
        let created_at = out
            .iter()
            .find_map(|o| if let Output::Persist { envelope, .. } = o { Some(envelope.created_at()) } else { None })
            .expect("a persist");
        // Answer it, as the store would.
        for o in out {
            if let Output::Persist { envelope, .. } = o {
                n.handle(Input::Persisted { id: envelope.id(), result: Ok(()) }, now);
            }
        }
        created_at
    };
    let skew = Config::default().max_clock_skew_ms;
    assert!(60_000 < skew / 2 && skew / 2 < HOUR);
    assert_eq!(date(&mut n, Now { mono: NOW, wall: NOW + 5 }), NOW + 5, "the wall clock, not the monotonic one");
    assert_eq!(
        date(&mut n, Now { mono: NOW + 10, wall: NOW - 60_000 }),
        NOW + 5,
        "set back a minute: the last date stays"
    );
    assert_eq!(date(&mut n, Now { mono: NOW + 20, wall: NOW + DAY }), NOW + DAY, "set forward: the new date");
    // Corrected after running a day ahead: dated a day ahead, every peer
    // would refuse our messages until the clock caught up.
    assert_eq!(date(&mut n, Now { mono: NOW + 30, wall: NOW + 100 }), NOW + 100, "set back by far: the wall again");
}

#[test]
fn incoming_dates_are_checked_against_the_wall_clock() {
    // A message dated now is from the future for a node whose wall clock
    // is a day behind, whatever its monotonic clock reads.
    let mut n = node();
    let peer = identity(2);
    n.handle(Input::LinkUp { link: LinkId(1), peer: peer.peer_id(), kind: LinkKind::Lan }, NOW);
    let hello = festival_core::frame::Hello {
        version: festival_core::sync::PROTOCOL_VERSION,
        ack: true,
        rooms: n.rooms().cloned().collect(),
        relays: true,
        powered: true,
    };
    n.handle(Input::Frame { link: LinkId(1), bytes: Frame::Hello(hello).encode() }, NOW);
    let env = common::text(&peer, "festival", 1, "hi");
    let behind = Now { mono: NOW + 1_000, wall: NOW - DAY };
    let out = n.handle(Input::Frame { link: LinkId(1), bytes: common::push(&env) }, behind);
    assert!(!out.iter().any(|o| matches!(o, Output::Persist { .. })), "not stored: {out:?}");
    let out =
        n.handle(Input::Frame { link: LinkId(1), bytes: common::push(&env) }, Now { mono: NOW + 2_000, wall: NOW });
    assert!(out.iter().any(|o| matches!(o, Output::Persist { .. })), "stored once the wall clock is right");
}
