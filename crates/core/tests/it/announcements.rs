//! The organiser's announcements: only the organiser key's are taken (the
//! rest are refused and counted), they end at the time they carry, the
//! organiser has a budget of its own, they go ahead of room traffic, and a
//! peer of an older protocol gets none of them.

use crate::common;

use common::{identity, push, text, Harness, NOW};
use festival_core::body::{AnnouncementBody, Body};
use festival_core::frame::{Frame, Priority};
use festival_core::sync::{Config, Content, LinkKind, SendError, ANNOUNCEMENTS_VERSION};
use festival_core::{Draft, Identity, Kind, RoomId, SignedEnvelope};

const HOUR: u64 = 3_600_000;

fn announcement(author: &Identity, seq: u64, until: u64) -> SignedEnvelope {
    let body = Body::Announcement(AnnouncementBody { text: format!("gates open, #{seq}"), until });
    let draft =
        Draft { seq, room: RoomId::announcements(), kind: Kind::Announcement, created_at: NOW, body: body.encode() };
    SignedEnvelope::sign(author, draft).expect("valid draft")
}

fn harness(organiser: &Identity) -> Harness {
    Harness::with_config(1, Config { organiser: Some(organiser.peer_id()), ..Config::default() })
}

#[test]
fn only_the_organisers_announcements_are_taken() {
    let (organiser, mallory, carrier) = (identity(7), identity(8), identity(2));
    let mut h = harness(&organiser);
    h.link(1, &carrier);

    let real = announcement(&organiser, 1, NOW + HOUR);
    let forged = announcement(&mallory, 1, NOW + HOUR);
    h.frame(1, push(&real));
    h.frame(1, push(&forged));

    let delivered: Vec<_> = h.io.delivered.iter().map(|d| d.0).collect();
    assert_eq!(delivered, vec![real.id()], "the organiser's, and nothing else");
    assert_eq!(h.rejected_by(&carrier, "announcement_not_organiser"), 1, "the forged one is counted");
    assert!(h.io.misbehaving.is_empty(), "a carrier of another festival's settings is not at fault");
}

#[test]
fn without_an_organiser_the_room_is_not_carried_at_all() {
    let (organiser, carrier) = (identity(7), identity(2));
    let mut h = Harness::new(1, vec![]);
    h.link(1, &carrier);
    assert!(!h.node.rooms().any(RoomId::is_announcements), "not carried, so not named in hellos");
    h.frame(1, push(&announcement(&organiser, 1, NOW + HOUR)));
    assert!(h.io.delivered.is_empty());
    assert_eq!(h.rejected_by(&carrier, "room_not_carried"), 1);
}

#[test]
fn a_late_joiner_goes_past_announcements_that_have_ended() {
    let (organiser, carrier) = (identity(7), identity(2));
    let mut h = harness(&organiser);
    h.link(1, &carrier);
    // All the organiser's announcements ended before we met anyone: the
    // first one, served by sync, is not taken, and the chain goes past it.
    let ended = announcement(&organiser, 1, NOW - 1);
    h.frame(1, common::batch(&[ended]));
    assert_eq!(h.node.head(&RoomId::announcements(), &organiser.peer_id()).0, 1, "given up: not asked for again");
    let running = announcement(&organiser, 2, NOW + HOUR);
    h.frame(1, common::batch(std::slice::from_ref(&running)));
    assert_eq!(h.io.delivered.iter().map(|d| d.0).collect::<Vec<_>>(), vec![running.id()]);
}

#[test]
fn only_the_organisers_heads_are_asked_for() {
    let (organiser, mallory, carrier) = (identity(7), identity(8), identity(2));
    let mut h = harness(&organiser);
    h.link(1, &carrier);
    let heads = [&organiser, &mallory]
        .map(|a| festival_core::frame::Head {
            author: a.peer_id(),
            contiguous: 3,
            max: 3,
            tip: festival_core::MessageId::from_bytes([0; 32]),
        })
        .to_vec();
    h.frame(
        1,
        Frame::Summary(festival_core::frame::Summary { room: RoomId::announcements(), heads, reply: false }).encode(),
    );
    let wants: Vec<_> =
        h.io.sent
            .iter()
            .filter_map(|(_, f)| match f {
                Frame::Want(w) if w.room.is_announcements() => Some(w.author),
                _ => None,
            })
            .collect();
    assert_eq!(wants, vec![organiser.peer_id()], "the organiser's chain, not another author's");
}

#[test]
fn ended_announcements_are_not_served() {
    let organiser = identity(1);
    let mut h = harness(&organiser);
    let asker = identity(2);
    h.link(1, &asker);
    let content = Content::Announcement { text: "soon over".into(), until: NOW + 60_000 };
    let (_, out) = h.node.send(RoomId::announcements(), content, NOW).expect("the organiser may");
    h.apply(out);
    h.now += 61_000;
    h.io.sent.clear();
    let want =
        festival_core::frame::Want { room: RoomId::announcements(), author: organiser.peer_id(), from: 1, to: 1 };
    h.frame(1, Frame::Want(want).encode());
    h.feed(festival_core::sync::Input::Tick);
    let batches = h.io.sent.iter().filter(|(_, f)| matches!(f, Frame::Batch { .. })).count();
    let gone =
        h.io.sent.iter().any(|(_, f)| matches!(f, Frame::Gone { room, from: 1, to: 1, .. } if room.is_announcements()));
    assert_eq!(batches, 0, "{:?}", h.io.sent);
    assert!(gone, "the asker hears it is gone: {:?}", h.io.sent);
}

#[test]
fn an_announcement_past_its_end_is_neither_taken_nor_passed_on() {
    let (organiser, a, b) = (identity(7), identity(2), identity(3));
    let mut h = harness(&organiser);
    h.link(1, &a);
    h.link(2, &b);
    let over = announcement(&organiser, 1, NOW - 1);
    h.frame(1, push(&over));
    assert!(h.io.delivered.is_empty());
    assert_eq!(h.rejected_by(&a, "expired"), 1);
    let passed_on =
        h.io.sent.iter().any(|(link, f)| link.0 == 2 && matches!(f, Frame::Push(i) if i.envelope == over.bytes()));
    assert!(!passed_on);
}

#[test]
fn an_announcement_that_would_outlast_the_festival_is_refused() {
    let (organiser, carrier) = (identity(7), identity(2));
    let mut h = harness(&organiser);
    h.link(1, &carrier);
    let cfg = Config::default();
    let last = NOW + cfg.message_lifetime_ms + cfg.max_clock_skew_ms;
    h.frame(1, push(&announcement(&organiser, 1, last)));
    h.frame(1, push(&announcement(&organiser, 2, last + 1)));
    h.frame(1, push(&announcement(&organiser, 3, u64::MAX)));
    assert_eq!(h.io.delivered.len(), 1, "the one that ends within the lifetime");
    assert_eq!(h.rejected_by(&carrier, "announcement_end"), 2);
    assert!(h.io.misbehaving.is_empty(), "lifetimes are a festival's setting: not the carrier's fault");
    // The chain goes past them (not asked for again and again), and on.
    assert_eq!(h.node.head(&RoomId::announcements(), &organiser.peer_id()).0, 3);
    h.frame(1, push(&announcement(&organiser, 4, NOW + HOUR)));
    assert_eq!(h.io.delivered.len(), 2);
}

#[test]
fn the_organiser_has_a_budget_of_its_own_that_forgers_cannot_spend() {
    let (organiser, mallory, carrier) = (identity(7), identity(8), identity(2));
    let burst = Config::default().announcements_per_hour.1 as u64;
    let mut h = harness(&organiser);
    h.link(1, &carrier);
    for seq in 1..=50 {
        h.frame(1, push(&announcement(&mallory, seq, NOW + HOUR)));
    }
    for seq in 1..=burst + 3 {
        h.frame(1, push(&announcement(&organiser, seq, NOW + HOUR)));
    }
    assert_eq!(h.io.delivered.len() as u64, burst, "the forged ones took nothing of it");
    assert_eq!(h.rejected_by(&carrier, "announcements_limited"), 3);
    // 30 an hour: one every two minutes, not one a second.
    h.now += 60_000;
    h.frame(1, push(&announcement(&organiser, burst + 1, NOW + HOUR)));
    assert_eq!(h.io.delivered.len() as u64, burst);
    h.now += 61_000;
    h.frame(1, push(&announcement(&organiser, burst + 1, NOW + HOUR)));
    assert_eq!(h.io.delivered.len() as u64, burst + 1);
}

#[test]
fn the_organisers_own_node_keeps_to_the_budget() {
    let organiser = identity(1);
    let mut h = harness(&organiser);
    let burst = Config::default().announcements_per_hour.1;
    for i in 0..burst {
        let content = Content::Announcement { text: format!("notice {i}"), until: NOW + HOUR };
        let (_, out) = h.node.send(RoomId::announcements(), content, NOW).expect("within the budget");
        h.apply(out);
    }
    let content = Content::Announcement { text: "one too many".into(), until: NOW + HOUR };
    assert_eq!(h.node.send(RoomId::announcements(), content, NOW).err(), Some(SendError::AnnouncementsLimited));
}

#[test]
fn only_the_organiser_may_send_one_and_it_must_end_ahead() {
    let organiser = identity(1);
    let mut h = harness(&organiser);
    let until = NOW + HOUR;
    let content = |until| Content::Announcement { text: "stage two is closed".into(), until };
    let (id, out) = h.node.send(RoomId::announcements(), content(until), NOW).expect("the organiser may");
    h.apply(out);
    assert!(h.io.envelopes.contains_key(&id));
    assert_eq!(h.node.send(RoomId::announcements(), content(NOW), NOW).err(), Some(SendError::AnnouncementEnd));
    let lifetime = Config::default().message_lifetime_ms;
    let too_late = content(NOW + lifetime + 1);
    assert_eq!(h.node.send(RoomId::announcements(), too_late, NOW).err(), Some(SendError::AnnouncementEnd));

    let mut other = harness(&identity(7));
    assert_eq!(other.node.send(RoomId::announcements(), content(until), NOW).err(), Some(SendError::NotOrganiser));
    other.apply(Vec::new());
}

#[test]
fn announcements_go_ahead_of_room_traffic() {
    let organiser = identity(7);
    let room_msg = text(&identity(2), "camp", 1, "hi");
    assert_eq!(Frame::priority(&push(&announcement(&organiser, 1, NOW + HOUR))), Priority::Control);
    // Others' room messages passed on wait behind them (a push of hops 1
    // is the sender's own: the harness pushes with hops 1).
    let mut passed_on = festival_core::frame::Item { hops: 2, envelope: room_msg.bytes().to_vec() };
    assert_eq!(Frame::priority(&Frame::Push(passed_on.clone()).encode()), Priority::Room);
    passed_on.envelope = announcement(&organiser, 2, NOW + HOUR).bytes().to_vec();
    assert_eq!(Frame::priority(&Frame::Push(passed_on).encode()), Priority::Control);
}

#[test]
fn a_peer_of_an_older_protocol_gets_no_announcements() {
    let (organiser, old, new, newer) = (identity(7), identity(2), identity(3), identity(4));
    let mut h = harness(&organiser);
    h.link_speaking(1, &old, LinkKind::Lan, ANNOUNCEMENTS_VERSION - 1);
    h.link(2, &new);
    h.link(3, &newer);
    let a = announcement(&organiser, 1, NOW + HOUR);
    h.frame(2, push(&a));
    assert_eq!(h.io.delivered.len(), 1);
    let pushed = |link: u64| {
        h.io.sent.iter().any(|(l, f)| l.0 == link && matches!(f, Frame::Push(i) if i.envelope == a.bytes()))
    };
    assert!(pushed(3), "a peer of this protocol gets it");
    assert!(!pushed(1), "the older one does not");
    let summarised =
        h.io.sent.iter().any(|(l, f)| l.0 == 1 && matches!(f, Frame::Summary(s) if s.room.is_announcements()));
    assert!(!summarised);
    // Our hello in its version does not name the room either.
    let last_hello = h.io.sent.iter().rev().find_map(|(l, f)| match f {
        Frame::Hello(hello) if l.0 == 1 => Some(hello.clone()),
        _ => None,
    });
    let hello = last_hello.expect("a hello to the older peer");
    assert_eq!(hello.version, ANNOUNCEMENTS_VERSION - 1);
    assert!(!hello.rooms.iter().any(RoomId::is_announcements), "{hello:?}");
    // Nor is it served when the older peer asks for it anyway.
    h.io.sent.clear();
    let want =
        festival_core::frame::Want { room: RoomId::announcements(), author: organiser.peer_id(), from: 1, to: 1 };
    h.frame(1, Frame::Want(want).encode());
    h.feed(festival_core::sync::Input::Tick);
    assert!(!h.io.sent.iter().any(|(l, f)| l.0 == 1 && matches!(f, Frame::Batch { .. })), "{:?}", h.io.sent);
    assert_eq!(h.rejected_by(&old, "room_not_carried"), 1);
}
