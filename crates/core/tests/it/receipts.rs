//! "Delivered" means someone can read it: a node sends a delivery receipt
//! for a DM sealed to it only when the DM opens. A DM addressed to us that
//! does not open (garbage ciphertext under a valid signature) is never
//! shown, so its sender must not see "Delivered" for it.

use crate::common;

use common::{identity, push, Harness};
use festival_core::body::{self, seal_dm, Body, DmContent, SealedBody};
use festival_core::frame::Frame;
use festival_core::sync::Input;
use festival_core::{Draft, Kind, MessageId, RoomId, SignedEnvelope};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn dm(author: &festival_core::Identity, seq: u64, sealed: SealedBody) -> SignedEnvelope {
    let draft = Draft {
        seq,
        room: RoomId::direct(),
        kind: Kind::SealedDm,
        created_at: common::NOW,
        body: Body::SealedDm(sealed).encode(),
    };
    SignedEnvelope::sign(author, draft).expect("valid draft")
}

/// The ids our node said were delivered to `to`, from the sealed receipts it
/// sent on any link.
fn delivered_to(h: &Harness, to: &festival_core::Identity) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for (_, frame) in &h.sent {
        let items = match frame {
            Frame::Push(item) => vec![item.clone()],
            Frame::Batch { items } => items.clone(),
            _ => continue,
        };
        for item in items {
            let env = SignedEnvelope::decode(&item.envelope).expect("we send valid envelopes");
            if env.kind() == Kind::SealedReceipt {
                if let Ok(DmContent::Receipt(r)) = body::open(to, &env) {
                    ids.extend(r.ids);
                }
            }
        }
    }
    ids
}

#[test]
fn a_dm_to_us_that_does_not_open_gets_no_delivery_receipt() {
    let mut h = Harness::new(1, vec![]);
    let me = identity(1);
    let bob = identity(2);
    h.link(1, &bob);
    let mut rng = ChaCha20Rng::seed_from_u64(9);

    let good = dm(&bob, 1, seal_dm(&bob, &me.peer_id(), "see you at the gate", &mut rng).expect("seals"));
    let mut broken = seal_dm(&bob, &me.peer_id(), "this will not open", &mut rng).expect("seals");
    for b in broken.ciphertext.iter_mut() {
        *b ^= 0x5a;
    }
    let broken = dm(&bob, 2, broken);
    h.frame(1, push(&good));
    h.frame(1, push(&broken));
    assert!(h.envelopes.contains_key(&broken.id()), "a well-signed DM is stored and carried even if it does not open");

    for _ in 0..20 {
        h.now += 500;
        h.feed(Input::Tick);
    }
    let ids = delivered_to(&h, &bob);
    assert!(ids.contains(&good.id()), "the DM that opens is acknowledged: {ids:?}");
    assert!(!ids.contains(&broken.id()), "\"Delivered\" for a DM nobody can read");
}

/// A relay writes nothing of its own: the instances of a relay cluster
/// share its key, not their seq counters, so receipts from two of them
/// would be two messages at one position of the relay's chain.
#[test]
fn a_node_told_to_send_no_dm_receipts_writes_none() {
    let cfg = festival_core::sync::Config { dm_receipts: false, ..Default::default() };
    let mut h = Harness::with_config(1, cfg);
    let (me, bob) = (identity(1), identity(2));
    h.link(1, &bob);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let good = dm(&bob, 1, seal_dm(&bob, &me.peer_id(), "to the relay", &mut rng).expect("seals"));
    h.frame(1, push(&good));
    assert!(h.envelopes.contains_key(&good.id()), "stored and carried all the same");
    for _ in 0..20 {
        h.now += 500;
        h.feed(Input::Tick);
    }
    assert!(delivered_to(&h, &bob).is_empty(), "no receipt");
}

/// Blocking someone: their DMs are dropped unstored (not the carrier's
/// fault: no refusal), they get no receipt, delivered or read, and their
/// room messages are still carried for others. Undoing it takes their DMs
/// again.
#[test]
fn a_blocked_person_gets_no_receipts_and_their_dms_are_not_kept() {
    let mut h = Harness::new(1, vec![]);
    let (me, bob, carrier) = (identity(1), identity(2), identity(3));
    h.link(1, &carrier);
    let mut rng = ChaCha20Rng::seed_from_u64(9);

    // One DM taken before the block: its read receipt is then never sent.
    let before = dm(&bob, 1, seal_dm(&bob, &me.peer_id(), "hi", &mut rng).expect("seals"));
    h.frame(1, push(&before));
    h.feed(Input::Block { peer: bob.peer_id(), blocked: true });
    assert!(h.node.is_blocked(&bob.peer_id()));
    h.feed(Input::MarkRead { room: RoomId::direct(), messages: vec![(before.id(), bob.peer_id())] });

    let after = dm(&bob, 2, seal_dm(&bob, &me.peer_id(), "why no answer", &mut rng).expect("seals"));
    h.frame(1, push(&after));
    assert!(!h.envelopes.contains_key(&after.id()), "a blocked person's DM is not stored");
    assert_eq!(h.node.stats().blocked_dropped, 1);
    assert!(h.node.stats().peers.get(&carrier.peer_id()).is_none_or(|c| c.rejected.is_empty()), "not a refusal");
    let room_text = common::text(&bob, "festival", 1, "still carried for others");
    h.frame(1, push(&room_text));
    assert!(h.envelopes.contains_key(&room_text.id()), "their room messages are still carried");

    for _ in 0..20 {
        h.now += 500;
        h.feed(Input::Tick);
    }
    assert!(delivered_to(&h, &bob).is_empty(), "no receipt of any kind goes to a blocked person");

    // Unblocked: the next DM is taken (and acknowledged) again.
    h.feed(Input::Block { peer: bob.peer_id(), blocked: false });
    h.frame(1, push(&after));
    assert!(h.envelopes.contains_key(&after.id()), "taken once unblocked");
    for _ in 0..20 {
        h.now += 500;
        h.feed(Input::Tick);
    }
    assert!(delivered_to(&h, &bob).contains(&after.id()));
}

/// The blocked set is capped: past `caps::MAX_BLOCKED` a block is ignored
/// (the app's store refuses it first), and unblocking makes room again.
#[test]
fn blocks_past_the_cap_are_ignored() {
    let mut h = Harness::new(1, vec![]);
    let max = festival_core::sync::caps::MAX_BLOCKED;
    let peer = |i: usize| {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(i as u64).to_be_bytes());
        festival_core::PeerId::from_bytes(b)
    };
    for i in 0..=max {
        h.feed(Input::Block { peer: peer(i), blocked: true });
    }
    assert!(h.node.is_blocked(&peer(max - 1)));
    assert!(!h.node.is_blocked(&peer(max)), "one past the cap is not kept");
    h.feed(Input::Block { peer: peer(0), blocked: false });
    h.feed(Input::Block { peer: peer(max), blocked: true });
    assert!(h.node.is_blocked(&peer(max)));
}

/// Open receipts (not sealed) that our node sent in the festival room.
fn room_receipts(h: &Harness) -> usize {
    h.sent
        .iter()
        .filter(|(_, f)| match f {
            Frame::Push(item) => SignedEnvelope::decode(&item.envelope).unwrap().kind() == Kind::Receipt,
            _ => false,
        })
        .count()
}

fn text_at(author: &festival_core::Identity, seq: u64, hops: u8) -> Vec<u8> {
    let env = common::text(author, "festival", seq, "anyone at the main stage?");
    Frame::Push(festival_core::frame::Item { hops, envelope: env.bytes().to_vec() }).encode()
}

/// A room's open receipt waits a random time within
/// `Config::room_receipt_delay_ms` (never less, never more), and is dropped
/// if a message from further than `room_receipts_max_hops` came meanwhile:
/// the room turned out to be a crowd.
#[test]
fn a_rooms_receipt_waits_its_delay_and_is_dropped_if_the_room_turned_out_a_crowd() {
    use festival_core::sync::Config;
    let cfg = Config::default();
    let (least, most) = cfg.room_receipt_delay_ms;
    assert!(least < most);
    let far = cfg.room_receipts_max_hops + 1;
    let (ana, ben) = (identity(5), identity(6));

    // A small room: the receipt goes, not before the least delay, by the most.
    let mut sent_after = Vec::new();
    for seed in 1..=8 {
        // Each device's own random draws (the engine seeds each at random).
        let mut h = Harness::with_config(seed, Config { rng_seed: [seed as u8; 32], ..Config::default() });
        h.link(1, &identity(2));
        h.link(2, &identity(3));
        h.frame(1, text_at(&ana, 1, 1));
        h.now += least - 1;
        h.feed(Input::Tick);
        assert_eq!(room_receipts(&h), 0, "not before {least} ms");
        let start = h.now - (least - 1);
        while room_receipts(&h) == 0 && h.now < start + most {
            h.now += 50;
            h.feed(Input::Tick);
        }
        assert!(room_receipts(&h) > 0, "sent by {most} ms");
        assert_eq!(h.node.stats().room_receipts_dropped, 0);
        sent_after.push(h.now - start);
    }
    sent_after.sort();
    sent_after.dedup();
    assert!(sent_after.len() > 1, "the wait is drawn, not fixed: {sent_after:?}");

    // A message from far off while it waits: dropped, and counted.
    let mut h = Harness::new(1, vec![]);
    h.link(1, &identity(2));
    h.frame(1, text_at(&ana, 1, 1));
    h.frame(1, text_at(&ben, 1, far));
    h.now += most;
    h.feed(Input::Tick);
    assert_eq!(room_receipts(&h), 0, "the room is a crowd: no receipt");
    assert_eq!(h.node.stats().room_receipts_dropped, 1);
}
