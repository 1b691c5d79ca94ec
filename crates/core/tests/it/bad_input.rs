//! Bad input from one peer: each kind is refused with a typed reason, counted
//! against that peer, never stored or forwarded, and the node goes on serving
//! an honest peer.

use crate::common;

use common::{Harness, NOW};
use festival_core::frame::{Frame, Item, Want, MAX_FRAME_BYTES};
use festival_core::{Draft, Kind, SignedEnvelope};

struct Case {
    harness: Harness,
    mallory: festival_core::Identity,
    alice: festival_core::Identity,
}

fn setup() -> Case {
    let mut harness = Harness::new(1, vec![]);
    let (mallory, alice) = (common::identity(66), common::identity(2));
    harness.link(1, &mallory);
    harness.link(2, &alice);
    Case { harness, mallory, alice }
}

/// Encode and correctly sign fields that `SignedEnvelope::sign` would refuse:
/// only the receiver's checks stand between them and the store.
fn sign_raw(author: &festival_core::Identity, env: &festival_core::envelope::Envelope) -> Vec<u8> {
    let mut bytes = postcard::to_stdvec(env).unwrap();
    let n = bytes.len() - 64;
    let sig = author.sign(festival_core::envelope::ENVELOPE_DOMAIN, &bytes[..n]);
    bytes[n..].copy_from_slice(&sig);
    bytes
}

/// After the bad input, Alice's message still goes through and is forwarded.
fn still_serves_alice(c: &mut Case, seq: u64) {
    let env = common::text(&c.alice, "festival", seq, "still here");
    c.harness.sent.clear();
    c.harness.frame(2, common::push(&env));
    assert!(c.harness.delivered.iter().any(|d| d.0 == env.id()), "honest peer not served");
    assert!(
        c.harness.sent.iter().any(|(l, f)| l.0 == 1 && matches!(f, Frame::Push(_) | Frame::IHave { .. })),
        "honest message not forwarded"
    );
}

fn assert_refused(c: &mut Case, bytes: Vec<u8>, code: &str) {
    let before = c.harness.persisted;
    let counted = c.harness.rejected_by(&c.mallory, code);
    c.harness.frame(1, bytes);
    assert_eq!(
        c.harness.rejected_by(&c.mallory, code),
        counted + 1,
        "expected one more `{code}`, got {:?}",
        c.harness.rejected
    );
    assert_eq!(c.harness.persisted, before, "refused input must not be stored");
    assert_eq!(c.harness.rejected_by(&c.alice, code), 0, "counted against the wrong peer");
}

#[test]
fn garbage_frame_is_refused_and_counted() {
    let mut c = setup();
    assert_refused(&mut c, vec![1, 0xff, 0xff, 0xff, 0xff, 0xff], "frame_malformed");
    still_serves_alice(&mut c, 1);
}

#[test]
fn oversized_frame_is_refused_before_decoding() {
    let mut c = setup();
    assert_refused(&mut c, vec![1; MAX_FRAME_BYTES + 1], "frame_oversized");
    still_serves_alice(&mut c, 1);
}

#[test]
fn unknown_frame_version_is_refused() {
    let mut c = setup();
    assert_refused(&mut c, vec![9, 0, 0], "frame_version");
    still_serves_alice(&mut c, 1);
}

#[test]
fn wrongly_signed_envelope_is_refused() {
    let mut c = setup();
    let env = common::text(&c.mallory, "festival", 1, "hello");
    let mut bytes = env.bytes().to_vec();
    let n = bytes.len();
    bytes[n - 1] ^= 0x55;
    assert_refused(&mut c, Frame::Push(Item { hops: 1, envelope: bytes }).encode(), "envelope_bad_signature");
    still_serves_alice(&mut c, 1);
}

#[test]
fn envelope_claiming_another_author_is_refused() {
    let mut c = setup();
    // Mallory signs, then swaps in Alice's id as author.
    let env = common::text(&c.mallory, "festival", 1, "i am alice");
    let mut bytes = env.bytes().to_vec();
    bytes[1..33].copy_from_slice(c.alice.peer_id().as_bytes());
    assert_refused(&mut c, Frame::Push(Item { hops: 1, envelope: bytes }).encode(), "envelope_bad_signature");
    still_serves_alice(&mut c, 1);
}

#[test]
fn out_of_range_envelopes_are_refused() {
    let mut c = setup();
    let future = SignedEnvelope::sign(
        &c.mallory,
        Draft {
            seq: 1,
            room: "festival".parse().unwrap(),
            kind: Kind::Text,
            created_at: NOW + 3_600_000,
            body: b"from the future".to_vec(),
        },
    )
    .unwrap();
    assert_refused(&mut c, common::push(&future), "from_future");
    let huge = SignedEnvelope::sign(
        &c.mallory,
        Draft { seq: 1, room: "festival".parse().unwrap(), kind: Kind::Text, created_at: NOW, body: b"x".to_vec() },
    )
    .unwrap();
    let forged = festival_core::envelope::Envelope { seq: u64::MAX, ..huge.envelope().clone() };
    let bytes = sign_raw(&c.mallory, &forged);
    assert_refused(&mut c, Frame::Push(Item { hops: 1, envelope: bytes }).encode(), "envelope_out_of_range");
    let far = common::text(&c.mallory, "festival", 1_000_000, "far ahead");
    assert_refused(&mut c, common::push(&far), "seq_out_of_range");
    let elsewhere = common::text(&c.mallory, "secret-room", 1, "not carried here");
    assert_refused(&mut c, common::push(&elsewhere), "room_not_carried");
    assert_refused(
        &mut c,
        Frame::Push(Item { hops: 200, envelope: far.bytes().to_vec() }).encode(),
        "frame_out_of_range",
    );
    let bad_want = Frame::Want(Want { room: "festival".parse().unwrap(), author: c.alice.peer_id(), from: 10, to: 5 });
    assert_refused(&mut c, bad_want.encode(), "frame_out_of_range");
    still_serves_alice(&mut c, 1);
}

#[test]
fn replayed_envelope_is_a_counted_duplicate_not_a_second_delivery() {
    let mut c = setup();
    let env = common::text(&c.alice, "festival", 1, "once");
    c.harness.frame(2, common::push(&env));
    for _ in 0..5 {
        c.harness.frame(1, common::push(&env));
    }
    assert_eq!(c.harness.delivered.iter().filter(|d| d.0 == env.id()).count(), 1);
    assert_eq!(c.harness.node.stats().peers[&c.mallory.peer_id()].duplicates, 5);
    assert_eq!(c.harness.persisted, 1);
    still_serves_alice(&mut c, 2);
}

#[test]
fn equivocation_is_kept_as_proof_and_not_held_against_the_carrier() {
    let mut c = setup();
    let first = common::text(&c.mallory, "festival", 1, "version one");
    let second = common::text(&c.mallory, "festival", 1, "version two");
    c.harness.frame(1, common::push(&first));
    // Alice carries the second version in good faith.
    c.harness.sent.clear();
    c.harness.frame(2, common::push(&second));
    assert_eq!(c.harness.node.stats().peers[&c.alice.peer_id()].rejected_total(), 0, "the carrier is not blamed");
    assert_eq!(c.harness.equivocators, vec![c.mallory.peer_id()], "the author is marked");
    assert!(c.harness.node.is_equivocator(&c.mallory.peer_id()));
    // The proof goes to every link, with both signed envelopes.
    let proofs: Vec<_> = c.harness.sent.iter().filter(|(_, f)| matches!(f, Frame::Proof { .. })).collect();
    assert_eq!(proofs.len(), 2, "{:?}", c.harness.sent);
    let Frame::Proof { a, b } = &proofs[0].1 else { unreachable!() };
    let mut got = [a.clone(), b.clone()];
    got.sort();
    let mut want = [first.bytes().to_vec(), second.bytes().to_vec()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(c.harness.delivered.iter().filter(|d| d.1 == c.mallory.peer_id()).count(), 1, "one version shown");
    still_serves_alice(&mut c, 1);
}

#[test]
fn a_proof_from_a_peer_marks_the_author_once_and_a_bogus_one_is_refused() {
    let mut c = setup();
    let eve = common::identity(77);
    let one = common::text(&eve, "festival", 3, "one");
    let two = common::text(&eve, "festival", 3, "two");
    let proof = Frame::Proof { a: one.bytes().to_vec(), b: two.bytes().to_vec() }.encode();
    c.harness.frame(2, proof.clone());
    c.harness.frame(2, proof);
    assert_eq!(c.harness.equivocators, vec![eve.peer_id()], "once");
    // Two messages at different positions prove nothing.
    let other = common::text(&eve, "festival", 4, "two");
    assert_refused(
        &mut c,
        Frame::Proof { a: one.bytes().to_vec(), b: other.bytes().to_vec() }.encode(),
        "proof_invalid",
    );
    assert_refused(&mut c, Frame::Proof { a: one.bytes().to_vec(), b: one.bytes().to_vec() }.encode(), "proof_invalid");
    still_serves_alice(&mut c, 1);
}

#[test]
fn a_flood_from_one_peer_is_rate_limited_reported_and_others_go_on() {
    let mut c = setup();
    let junk = Frame::Prune { room: "festival".parse().unwrap() }.encode();
    for _ in 0..20_000 {
        c.harness.frame(1, junk.clone());
    }
    let limited = c.harness.rejected_by(&c.mallory, "rate_limited");
    assert_eq!(limited, festival_core::sync::caps::MISBEHAVING_REFUSALS, "counted until reported");
    assert_eq!(c.harness.misbehaving, vec![festival_core::LinkId(1)], "reported once, for dropping");
    // One report for the flood, not one per frame.
    assert!(c.harness.rejected.len() as u64 <= limited);
    still_serves_alice(&mut c, 1);
}

#[test]
fn plain_text_in_the_dm_mailbox_is_refused() {
    let mut c = setup();
    // Signed correctly, but the mailbox room takes only sealed DMs and receipts.
    let mut env = common::text(&c.mallory, "festival", 1, "hi");
    let forged = festival_core::envelope::Envelope { room: festival_core::RoomId::direct(), ..env.envelope().clone() };
    env = SignedEnvelope::from_stored(&sign_raw(&c.mallory, &forged)).unwrap();
    assert_refused(&mut c, common::push(&env), "envelope_wrong_room");
    still_serves_alice(&mut c, 1);
}
