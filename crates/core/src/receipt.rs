//! Which receipts count: the rule every node applies before a receipt marks
//! one of its messages "delivered" or "read".
//!
//! - A DM's receipt counts only from the DM's recipient, and only sealed
//!   (kind `SealedReceipt`, opened by us, its author): nobody else can mark
//!   a DM read, and no carrier learns who read what. A private group's
//!   message: the same, from any of its members.
//! - A room receipt (kind `Receipt`, in clear) counts only for messages of
//!   that same room, and only from a member: an author who has posted a
//!   text, a meet-up or an answer to one in the room (or, in the festival
//!   room, announced a name there).
//! - Only receipts for our own messages are kept; the rest is not ours to
//!   show.

use crate::body::{self, Body, DmContent, ReceiptStatus};
use crate::envelope::SignedEnvelope;
use crate::identity::Identity;
use crate::ids::{MessageId, PeerId, RoomId};

/// What a receipt refers to, as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub room: RoomId,
    pub author: PeerId,
    /// For a sealed DM: whom it was sealed to.
    pub recipient: Option<PeerId>,
    /// For a private group's message: its members (the author included).
    pub members: Vec<PeerId>,
}

/// The ids `env` may mark with its status, given what each id refers to
/// (`target`) and whether an author is a member of a room (`member`).
/// `None` when the envelope is no receipt we can use.
pub fn counted(
    me: &Identity,
    env: &SignedEnvelope,
    target: impl Fn(&MessageId) -> Option<Target>,
    member: impl Fn(&PeerId, &RoomId) -> bool,
) -> Option<(ReceiptStatus, Vec<MessageId>)> {
    let from = env.author();
    let my_id = me.peer_id();
    match env.parsed_body() {
        Body::Receipt(r) => {
            let room = env.room();
            if !member(&from, room) {
                return None;
            }
            let ids = r
                .ids
                .into_iter()
                .filter(|id| target(id).is_some_and(|t| t.author == my_id && t.room == *room && t.recipient.is_none()))
                .collect();
            Some((r.status, ids))
        }
        Body::SealedReceipt(s) if s.recipient == my_id => match body::open(me, env) {
            Ok(DmContent::Receipt(r)) => {
                let ids = r
                    .ids
                    .into_iter()
                    .filter(|id| {
                        target(id).is_some_and(|t| {
                            t.author == my_id
                                && (t.recipient == Some(from) || (from != my_id && t.members.contains(&from)))
                        })
                    })
                    .collect();
                Some((r.status, ids))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{seal_receipt, ReceiptBody};
    use crate::envelope::Draft;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn sign(author: &Identity, room: RoomId, body: Body) -> SignedEnvelope {
        let draft = Draft { seq: 1, room, kind: body.kind(), created_at: 1, body: body.encode() };
        SignedEnvelope::sign(author, draft).unwrap()
    }

    #[test]
    fn a_dm_is_marked_read_only_by_its_recipient_through_a_sealed_receipt() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (alice, bob, mallory) =
            (Identity::generate(&mut rng), Identity::generate(&mut rng), Identity::generate(&mut rng));
        let dm = MessageId::from_bytes([1; 32]);
        let other = MessageId::from_bytes([2; 32]);
        let target = |id: &MessageId| {
            (*id == dm).then(|| Target {
                room: RoomId::direct(),
                author: alice.peer_id(),
                recipient: Some(bob.peer_id()),
                members: Vec::new(),
            })
        };
        let read = |ids: Vec<MessageId>| ReceiptBody { status: ReceiptStatus::Read, ids };
        let from_bob = seal_receipt(&bob, &alice.peer_id(), read(vec![dm, other]), &mut rng).unwrap();
        let env = sign(&bob, RoomId::direct(), Body::SealedReceipt(from_bob));
        assert_eq!(counted(&alice, &env, target, |_, _| true), Some((ReceiptStatus::Read, vec![dm])));
        // Mallory seals a "read" for Bob's DM: it opens, but Mallory is not its recipient.
        let forged = seal_receipt(&mallory, &alice.peer_id(), read(vec![dm]), &mut rng).unwrap();
        let env = sign(&mallory, RoomId::direct(), Body::SealedReceipt(forged));
        assert_eq!(counted(&alice, &env, target, |_, _| true), Some((ReceiptStatus::Read, vec![])));
        // A receipt in clear for a DM is no DM receipt at all.
        let clear = sign(&bob, "festival".parse().unwrap(), Body::Receipt(read(vec![dm])));
        assert_eq!(counted(&alice, &clear, target, |_, _| true), Some((ReceiptStatus::Read, vec![])));
    }

    #[test]
    fn a_room_receipt_counts_only_from_a_member_for_that_rooms_messages() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
        let camp: RoomId = "camp".parse().unwrap();
        let msg = MessageId::from_bytes([3; 32]);
        let target = |id: &MessageId| {
            (*id == msg).then(|| Target {
                room: "camp".parse().unwrap(),
                author: alice.peer_id(),
                recipient: None,
                members: Vec::new(),
            })
        };
        let r = Body::Receipt(ReceiptBody { status: ReceiptStatus::Read, ids: vec![msg] });
        let env = sign(&bob, camp.clone(), r.clone());
        assert_eq!(counted(&alice, &env, target, |p, _| *p == bob.peer_id()), Some((ReceiptStatus::Read, vec![msg])));
        assert_eq!(counted(&alice, &env, target, |_, _| false), None, "not a member");
        let elsewhere = sign(&bob, RoomId::festival(), r);
        assert_eq!(counted(&alice, &elsewhere, target, |_, _| true), Some((ReceiptStatus::Read, vec![])));
    }

    #[test]
    fn a_group_messages_receipt_counts_from_its_members_only() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let [alice, bob, cy, mallory] = [0; 4].map(|_| Identity::generate(&mut rng));
        let msg = MessageId::from_bytes([4; 32]);
        let members = vec![alice.peer_id(), bob.peer_id(), cy.peer_id()];
        let target = |id: &MessageId| {
            (*id == msg).then(|| Target {
                room: RoomId::direct(),
                author: alice.peer_id(),
                recipient: None,
                members: members.clone(),
            })
        };
        let read = ReceiptBody { status: ReceiptStatus::Read, ids: vec![msg] };
        for (who, counts) in [(&bob, true), (&cy, true), (&mallory, false)] {
            let sealed = seal_receipt(who, &alice.peer_id(), read.clone(), &mut rng).unwrap();
            let env = sign(who, RoomId::direct(), Body::SealedReceipt(sealed));
            let want = if counts { vec![msg] } else { vec![] };
            assert_eq!(counted(&alice, &env, target, |_, _| true), Some((ReceiptStatus::Read, want)));
        }
    }
}
