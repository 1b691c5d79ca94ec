//! Meet-ups and their answers: they travel in a room like texts, end half
//! an hour after their time (then neither taken, passed on nor served),
//! are refused when malformed or ending past the festival's lifetime, and a
//! peer of an older protocol is never pushed one and goes past it.

use crate::common;

use common::{identity, push, text, Harness, NOW};
use festival_core::body::{Body, BodyError, MeetupAnswer, MeetupBody, MeetupReplyBody, MEETUP_GRACE_MS};
use festival_core::frame::{Frame, Want};
use festival_core::sync::{Content, Input, LinkKind, SendError, DEFAULT_MESSAGE_LIFETIME_MS, MEETUPS_VERSION};
use festival_core::{Draft, Identity, Kind, MessageId, RoomId, SignedEnvelope};

const HOUR: u64 = 3_600_000;

fn room() -> RoomId {
    "camp-b12".parse().unwrap()
}

fn harness() -> Harness {
    Harness::new(1, vec![RoomId::festival(), room()])
}

fn signed(author: &Identity, seq: u64, body: &Body) -> SignedEnvelope {
    let draft = Draft { seq, room: room(), kind: body.kind(), created_at: NOW, body: body.encode() };
    SignedEnvelope::sign(author, draft).expect("valid draft")
}

fn meetup(author: &Identity, seq: u64, at: u64) -> SignedEnvelope {
    signed(author, seq, &Body::Meetup(MeetupBody { place: "the big wheel".into(), at }))
}

fn reply(author: &Identity, seq: u64, meetup: MessageId, until: u64) -> SignedEnvelope {
    signed(author, seq, &Body::MeetupReply(MeetupReplyBody { meetup, answer: MeetupAnswer::Coming, until }))
}

/// Passed on to `link`: pushed, or (fetching live, `Config::live_pull`)
/// announced.
fn passed_to(h: &Harness, link: u64, env: &SignedEnvelope) -> bool {
    h.io.sent.iter().any(|(l, f)| {
        l.0 == link
            && match f {
                Frame::Push(i) => i.envelope == env.bytes(),
                Frame::IHave { refs } => refs.iter().any(|r| r.id == env.id()),
                _ => false,
            }
    })
}

#[test]
fn a_meetup_and_its_answers_travel_like_room_messages() {
    let (ana, ben, carrier) = (identity(5), identity(6), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    h.link(2, &identity(3));
    let card = meetup(&ana, 1, NOW + HOUR);
    h.frame(1, push(&card));
    let answer = reply(&ben, 1, card.id(), NOW + HOUR + MEETUP_GRACE_MS);
    h.frame(1, push(&answer));
    let delivered: Vec<MessageId> = h.io.delivered.iter().map(|d| d.0).collect();
    assert_eq!(delivered, vec![card.id(), answer.id()]);
    assert!(passed_to(&h, 2, &card) && passed_to(&h, 2, &answer), "passed on: {:?}", h.io.sent);
}

#[test]
fn a_meetup_past_its_card_is_neither_taken_nor_passed_on_and_nor_are_its_answers() {
    let (ana, ben, carrier) = (identity(5), identity(6), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    h.link(2, &identity(3));
    // Its time was 31 minutes ago: the card went a minute ago.
    let over = meetup(&ana, 1, NOW - MEETUP_GRACE_MS - 60_000);
    h.frame(1, push(&over));
    let late_answer = reply(&ben, 1, over.id(), NOW - 60_000);
    h.frame(1, push(&late_answer));
    assert!(h.io.delivered.is_empty());
    assert_eq!(h.rejected_by(&carrier, "expired"), 2);
    assert!(!passed_to(&h, 2, &over) && !passed_to(&h, 2, &late_answer));
    // Still within its grace, the card is taken.
    let late = meetup(&identity(7), 1, NOW - MEETUP_GRACE_MS + 60_000);
    h.frame(1, push(&late));
    assert_eq!(h.io.delivered.len(), 1);
}

#[test]
fn a_meetup_that_would_outlast_the_festival_is_refused_and_counted() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    let far = meetup(&ana, 1, NOW + DEFAULT_MESSAGE_LIFETIME_MS + HOUR);
    h.frame(1, push(&far));
    let far_answer = reply(&identity(6), 1, far.id(), NOW + DEFAULT_MESSAGE_LIFETIME_MS + HOUR);
    h.frame(1, push(&far_answer));
    assert!(h.io.delivered.is_empty());
    assert_eq!(h.rejected_by(&carrier, "meetup_end"), 2);
}

#[test]
fn malformed_meetups_and_answers_are_refused_and_counted() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    let sign_raw = |seq: u64, kind: Kind, body: Vec<u8>| {
        SignedEnvelope::sign(&ana, Draft { seq, room: room(), kind, created_at: NOW, body })
    };
    // Signing checks the body as the receiver does: a forger has to
    // write the bytes itself, which the receiver refuses the same way.
    let empty_place = Body::Meetup(MeetupBody { place: " ".into(), at: NOW + HOUR }).encode();
    assert!(sign_raw(1, Kind::Meetup, empty_place.clone()).is_err());
    assert!(sign_raw(1, Kind::MeetupReply, vec![1, 2, 3]).is_err());
    assert_eq!(Body::parse(Kind::Meetup, &empty_place), Err(BodyError::EmptyPlace));
    // A meet-up in the DM mailbox is in the wrong room.
    let in_dm = Draft {
        seq: 1,
        room: RoomId::direct(),
        kind: Kind::Meetup,
        created_at: NOW,
        body: Body::Meetup(MeetupBody { place: "gate".into(), at: NOW + HOUR }).encode(),
    };
    assert!(SignedEnvelope::sign(&ana, in_dm).is_err());
    // A forger writes and signs the bytes itself: the receiver refuses
    // them by the same rules, counts them, and takes nothing.
    let good = meetup(&ana, 1, NOW + HOUR);
    for (kind, body) in [
        (Kind::Meetup, empty_place),
        (Kind::Meetup, Body::Meetup(MeetupBody { place: "x".repeat(201), at: NOW + HOUR }).encode()),
        (Kind::MeetupReply, vec![1, 2, 3]),
        (Kind::MeetupReply, b"not postcard at all".to_vec()),
    ] {
        let forged = festival_core::envelope::Envelope { kind, body, ..good.envelope().clone() };
        let mut bytes = postcard::to_stdvec(&forged).unwrap();
        let n = bytes.len() - 64;
        let sig = ana.sign(festival_core::envelope::ENVELOPE_DOMAIN, &bytes[..n]);
        bytes[n..].copy_from_slice(&sig);
        h.frame(1, Frame::Push(festival_core::frame::Item { hops: 1, envelope: bytes }).encode());
    }
    assert!(h.io.delivered.is_empty());
    assert_eq!(h.rejected_by(&carrier, "envelope_bad_body"), 4);
    // And the link still serves: the real one goes through.
    h.frame(1, push(&good));
    assert_eq!(h.io.delivered.len(), 1);
}

#[test]
fn ended_meetups_are_not_served() {
    let mut h = harness();
    let asker = identity(2);
    h.link(1, &asker);
    let content = Content::Meetup { place: "food trucks".into(), at: NOW + 60_000 };
    let (_, out) = h.node.send(room(), content, NOW).expect("a meet-up ahead");
    h.apply(out);
    h.now += 60_000 + MEETUP_GRACE_MS + 1_000;
    h.io.sent.clear();
    let want = Want { room: room(), author: h.node.identity().peer_id(), from: 1, to: 1 };
    h.frame(1, Frame::Want(want).encode());
    h.feed(Input::Tick);
    let batches = h.io.sent.iter().filter(|(_, f)| matches!(f, Frame::Batch { .. })).count();
    let gone = h.io.sent.iter().any(|(_, f)| matches!(f, Frame::Gone { from: 1, to: 1, .. }));
    assert_eq!(batches, 0, "{:?}", h.io.sent);
    assert!(gone, "the asker hears it is gone: {:?}", h.io.sent);
}

#[test]
fn a_peer_of_an_older_protocol_is_told_nothing_of_them_and_goes_past_them() {
    let (ana, old, new) = (identity(5), identity(2), identity(3));
    let mut h = harness();
    h.link_speaking(1, &old, LinkKind::Lan, MEETUPS_VERSION - 1);
    h.link(2, &new);
    h.link(3, &identity(4));
    // A meet-up between two texts of its author.
    let before = text(&ana, "camp-b12", 1, "heading out");
    let card = meetup(&ana, 2, NOW + HOUR);
    let after = text(&ana, "camp-b12", 3, "see you there");
    for env in [&before, &card, &after] {
        h.frame(2, push(env));
    }
    assert!(passed_to(&h, 3, &card), "a peer of this protocol gets it");
    assert!(passed_to(&h, 1, &before) && passed_to(&h, 1, &after), "the older one gets the texts");
    let told_old = h.io.sent.iter().any(|(l, f)| {
        l.0 == 1
            && match f {
                Frame::Push(i) => i.envelope == card.bytes(),
                Frame::IHave { refs } => refs.iter().any(|r| r.id == card.id()),
                _ => false,
            }
    });
    assert!(!told_old, "neither pushed nor announced to the older one: {:?}", h.io.sent);
    // Its sync asks for the author's chain: it gets the texts, and for the
    // gap it asks again and hears the meet-up is gone, so it goes past it.
    let served = |h: &mut Harness, from: u64, to: u64| {
        h.io.sent.clear();
        h.frame(1, Frame::Want(Want { room: room(), author: ana.peer_id(), from, to }).encode());
        h.feed(Input::Tick);
        let batch: Vec<Vec<u8>> =
            h.io.sent
                .iter()
                .filter(|(l, _)| l.0 == 1)
                .flat_map(|(_, f)| match f {
                    Frame::Batch { items } => items.iter().map(|i| i.envelope.clone()).collect(),
                    _ => Vec::new(),
                })
                .collect();
        let gone: Vec<(u64, u64)> =
            h.io.sent
                .iter()
                .filter_map(|(l, f)| match f {
                    Frame::Gone { from, to, .. } if l.0 == 1 => Some((*from, *to)),
                    _ => None,
                })
                .collect();
        (batch, gone)
    };
    let (batch, _) = served(&mut h, 1, 3);
    assert_eq!(batch, vec![before.bytes().to_vec(), after.bytes().to_vec()], "the texts only");
    let (batch, gone) = served(&mut h, 2, 2);
    assert!(batch.is_empty());
    assert_eq!(gone, vec![(2, 2)]);
}

#[test]
fn a_proof_of_equivocating_meetups_goes_to_no_peer_that_would_refuse_it() {
    let (mallory, old, new) = (identity(9), identity(2), identity(3));
    let mut h = harness();
    h.link_speaking(1, &old, LinkKind::Lan, MEETUPS_VERSION - 1);
    h.link(2, &new);
    h.link(3, &identity(4));
    let a = meetup(&mallory, 1, NOW + HOUR);
    let b = meetup(&mallory, 1, NOW + 2 * HOUR);
    h.frame(2, push(&a));
    h.io.sent.clear();
    h.frame(3, push(&b));
    assert_eq!(h.io.equivocators, vec![mallory.peer_id()], "the equivocation is proved");
    let proof_to = |link: u64| h.io.sent.iter().any(|(l, f)| l.0 == link && matches!(f, Frame::Proof { .. }));
    assert!(proof_to(2), "a peer of this protocol hears of it: {:?}", h.io.sent);
    // The older peer would refuse a proof of a kind it cannot decode as
    // invalid (a fault of ours): a flood of them would cut honest links.
    assert!(!proof_to(1), "{:?}", h.io.sent);
}

#[test]
fn sending_checks_the_place_the_time_and_that_the_card_is_still_up() {
    let mut h = harness();
    let at = |at: u64| Content::Meetup { place: "gate B".into(), at };
    assert_eq!(h.node.send(room(), at(NOW - 1), NOW).unwrap_err(), SendError::MeetupTime);
    assert_eq!(h.node.send(room(), at(NOW + DEFAULT_MESSAGE_LIFETIME_MS), NOW).unwrap_err(), SendError::MeetupTime);
    let bad = Content::Meetup { place: "gate\nB".into(), at: NOW + HOUR };
    assert_eq!(h.node.send(room(), bad, NOW).unwrap_err(), SendError::Body(BodyError::PlaceNotOneLine));
    let (id, out) = h.node.send(room(), at(NOW + HOUR), NOW).expect("ahead, within the lifetime");
    h.apply(out);
    let answer = |until: u64| Content::MeetupReply { meetup: id, answer: MeetupAnswer::Cant, until };
    assert_eq!(h.node.send(room(), answer(NOW), NOW).unwrap_err(), SendError::MeetupOver);
    let (_, out) = h.node.send(room(), answer(NOW + HOUR + MEETUP_GRACE_MS), NOW).expect("the card is up");
    h.apply(out);
    assert_eq!(h.io.delivered.len(), 2);
    let not_joined = h.node.send("elsewhere".parse().unwrap(), at(NOW + HOUR), NOW).unwrap_err();
    assert!(matches!(not_joined, SendError::NotInRoom(_)));
}
