//! Property tests of the wire codecs: round trips, strictness, and that no
//! input makes a decoder panic.

use crate::common;

use festival_core::body::{Body, ProfileBody, ReceiptBody, ReceiptStatus};
use festival_core::frame::{Frame, FrameError, Head, Hello, Item, MsgRef, Recon, Summary, TreeAdvert, Want};
use festival_core::sync::recon::{Node, Part};
use festival_core::{Draft, Kind, MessageId, PeerId, RoomId, SignedEnvelope};
use proptest::prelude::*;

fn room() -> impl Strategy<Value = RoomId> {
    "[a-z0-9][a-z0-9._:-]{0,20}".prop_map(|s| s.parse().unwrap())
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        "[a-zA-Z0-9 ,.!?éü🎉]{1,300}".prop_filter("not blank", |s| !s.trim().is_empty()).prop_map(Body::Text),
        (any::<bool>(), prop::collection::vec(any::<[u8; 32]>(), 1..10)).prop_map(|(read, ids)| Body::Receipt(
            ReceiptBody {
                status: if read { ReceiptStatus::Read } else { ReceiptStatus::Delivered },
                ids: ids.into_iter().map(MessageId::from_bytes).collect(),
            }
        )),
        "[a-zA-Z]{1,20}( [a-zA-Z]{1,20})?".prop_map(|name| Body::Profile(ProfileBody { name })),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    let peer = any::<[u8; 32]>().prop_map(PeerId::from_bytes);
    prop_oneof![
        (any::<bool>(), prop::collection::vec(room(), 0..5), any::<bool>(), any::<bool>()).prop_map(
            |(ack, rooms, relays, powered)| { Frame::Hello(Hello { version: 2, ack, rooms, relays, powered }) }
        ),
        (room(), prop::collection::vec((peer.clone(), 0u64..1000, 0u64..1000), 0..20), any::<bool>()).prop_map(
            |(room, h, reply)| {
                Frame::Summary(Summary {
                    room,
                    heads: h
                        .into_iter()
                        .map(|(author, c, m)| Head {
                            author,
                            contiguous: c.min(m),
                            max: c.max(m),
                            tip: MessageId::from_bytes([9; 32]),
                        })
                        .collect(),
                    reply,
                })
            }
        ),
        (room(), peer.clone(), 1u64..1_000_000, 0u64..4000).prop_map(|(room, author, from, span)| Frame::Want(Want {
            room,
            author,
            from,
            to: from + span
        })),
        (room(), peer, 1u64..1000, any::<[u8; 32]>()).prop_map(|(room, author, seq, id)| Frame::IHave {
            refs: vec![MsgRef { room, author, seq, id: MessageId::from_bytes(id) }]
        }),
        (0u8..=32, prop::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(hops, envelope)| Frame::Push(Item { hops, envelope })),
        room().prop_map(|room| Frame::Prune { room }),
        (room(), any::<[u8; 32]>(), 1u64..1_000_000, 0u64..4000).prop_map(|(room, author, from, span)| Frame::Gone {
            room,
            author: PeerId::from_bytes(author),
            from,
            to: from + span
        }),
        (prop::collection::vec(any::<u8>(), 0..300), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(a, b)| Frame::Proof { a, b }),
        (room(), any::<[u8; 32]>(), any::<bool>(), any::<u32>(), 0u8..=32, any::<bool>()).prop_map(
            |(room, root, powered, epoch, depth, parent)| {
                let parent = parent && depth > 0;
                Frame::Tree(TreeAdvert { room, root: PeerId::from_bytes(root), powered, epoch, depth, parent })
            }
        ),
        (
            room(),
            node().prop_filter("not the deepest", |n| n.depth < 16),
            prop::collection::btree_set(0usize..16, 0..16)
        )
            .prop_flat_map(|(room, base, children)| {
                // Parts about distinct children of one node: disjoint.
                let parts: Vec<_> = children.into_iter().map(|i| part_at(base.child(i))).collect();
                (Just(room), parts)
            })
            .prop_map(|(room, parts)| Frame::Recon(Recon { room, parts })),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    (0u8..=16, any::<u64>()).prop_map(|(depth, path)| Node {
        depth,
        path: if depth == 16 { path } else { path & ((1 << (4 * depth)) - 1) },
    })
}

fn part_at(node: Node) -> BoxedStrategy<Part> {
    let shorts = prop::collection::vec(any::<[u8; 8]>(), 0..=64);
    let fingerprint = any::<[u8; 8]>().prop_map(move |fp| Part::Fingerprint { node, fp });
    let hashes = shorts.clone().prop_map(move |hashes| Part::Hashes { node, hashes });
    let need = shorts.prop_map(move |hashes| Part::Need { node, hashes });
    if node.depth == 16 {
        return prop_oneof![fingerprint, hashes, need].boxed();
    }
    let split = (any::<u16>(), any::<[u8; 8]>()).prop_map(move |(present, fp)| Part::Split {
        node,
        present,
        fps: vec![fp; present.count_ones() as usize],
    });
    prop_oneof![fingerprint, split, hashes, need].boxed()
}

#[test]
fn recon_parts_out_of_bounds_are_refused() {
    let recon = |part| Frame::Recon(Recon { room: RoomId::festival(), parts: vec![part] }).encode();
    let root = Node::ROOT;
    assert!(Frame::decode(&recon(Part::Split { node: root, present: 0b11, fps: vec![[0; 8]; 2] })).is_ok());
    let refused = Err(FrameError::OutOfRange("recon part"));
    // One fingerprint per present child, no more, no fewer.
    assert_eq!(Frame::decode(&recon(Part::Split { node: root, present: 0b11, fps: vec![[0; 8]] })), refused);
    // A path wider than its depth, a node deeper than 16 nibbles, a split
    // of the deepest level, a list longer than any node holds.
    assert_eq!(Frame::decode(&recon(Part::Fingerprint { node: Node { depth: 1, path: 16 }, fp: [0; 8] })), refused);
    assert_eq!(Frame::decode(&recon(Part::Fingerprint { node: Node { depth: 17, path: 0 }, fp: [0; 8] })), refused);
    let deepest = Node { depth: 16, path: 7 };
    assert_eq!(Frame::decode(&recon(Part::Split { node: deepest, present: 0, fps: vec![] })), refused);
    assert_eq!(Frame::decode(&recon(Part::Hashes { node: root, hashes: vec![[0; 8]; 65] })), refused);
    let many =
        Frame::Recon(Recon { room: RoomId::festival(), parts: vec![Part::Need { node: root, hashes: vec![] }; 257] });
    assert!(matches!(Frame::decode(&many.encode()), Err(FrameError::TooMany { what: "parts", .. })));
}

#[test]
fn tree_adverts_out_of_range_are_refused() {
    let advert = |depth, parent| {
        Frame::Tree(TreeAdvert {
            room: RoomId::festival(),
            root: PeerId::from_bytes([1; 32]),
            powered: false,
            epoch: 7,
            depth,
            parent,
        })
        .encode()
    };
    assert!(Frame::decode(&advert(32, true)).is_ok());
    assert_eq!(Frame::decode(&advert(33, true)), Err(FrameError::OutOfRange("tree depth")));
    // A root (depth 0) has no parent.
    assert_eq!(Frame::decode(&advert(0, true)), Err(FrameError::OutOfRange("tree depth")));
    assert!(Frame::decode(&advert(0, false)).is_ok());
}

proptest! {
    #[test]
    fn envelopes_round_trip_and_ids_are_stable(seed in 0u64..1000, seq in 1u64..u64::MAX / 2, room in room(), body in body(), t in 0u64..u64::MAX / 2) {
        let me = common::identity(seed);
        let room = if body.kind() == Kind::Profile { RoomId::festival() } else { room };
        let room = if room.is_direct() { RoomId::festival() } else { room };
        let env = SignedEnvelope::sign(&me, Draft { seq, room: room.clone(), kind: body.kind(), created_at: t, body: body.encode() }).unwrap();
        let back = SignedEnvelope::decode(env.bytes()).unwrap();
        prop_assert_eq!(back.id(), env.id());
        prop_assert_eq!(back.envelope(), env.envelope());
        prop_assert_eq!(back.parsed_body(), body);
        prop_assert_eq!(back.author(), me.peer_id());
        prop_assert_eq!(SignedEnvelope::from_stored(env.bytes()).unwrap().id(), env.id());
    }

    #[test]
    fn any_single_byte_change_is_rejected(seed in 0u64..50, pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let me = common::identity(seed);
        let env = common::text(&me, "festival", 3, "see you at the main stage");
        let mut bytes = env.bytes().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(SignedEnvelope::decode(&bytes).is_err(), "byte {} changed and still verified", i);
    }

    #[test]
    fn frames_round_trip(f in frame()) {
        let bytes = f.encode();
        // None of these is a batch: a sender never holds them back.
        prop_assert!(!Frame::is_batch(&bytes), "not a batch");
        // The tag alone tells a hello (a relay limits them before decoding).
        prop_assert_eq!(Frame::is_hello(&bytes), matches!(f, Frame::Hello(_)));
        prop_assert_eq!(Frame::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn a_tag_in_a_longer_varint_is_refused(f in frame()) {
        // A relay limits hellos (and a sender orders batches) by the tag
        // byte: the same tag spelled as two varint bytes must not decode.
        let bytes = f.encode();
        let mut long = vec![bytes[0], bytes[1] | 0x80, 0x00];
        long.extend_from_slice(&bytes[2..]);
        prop_assert!(Frame::decode(&long).is_err(), "a non-shortest tag decoded");
    }

    #[test]
    fn a_longer_varint_anywhere_in_a_frame_is_refused(from in 1u64..(1 << 40), len in 0u64..4095, room in 0usize..3) {
        // A Want ends with its `to`: spell that varint one byte longer
        // (the last byte gets its "more" bit, then a zero byte). Same
        // value, another encoding: one frame must have one encoding.
        let room: RoomId = ["festival", "stage-b", "camp.12"][room].parse().unwrap();
        let f = Frame::Want(Want { room, author: PeerId::from_bytes([3; 32]), from, to: from + len });
        let bytes = f.encode();
        prop_assert_eq!(Frame::decode(&bytes).ok(), Some(f));
        let mut long = bytes.clone();
        *long.last_mut().unwrap() |= 0x80;
        long.push(0x00);
        prop_assert!(Frame::decode(&long).is_err(), "a non-shortest varint decoded");
    }

    #[test]
    fn batches_are_told_apart_by_their_tag(n in 0usize..300, len in 0usize..200) {
        let items = vec![Item { hops: 1, envelope: vec![7; len] }; n];
        prop_assert!(Frame::is_batch(&Frame::Batch { items }.encode()), "a batch");
    }

    #[test]
    fn decoders_never_panic_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Frame::decode(&bytes);
        let _ = SignedEnvelope::decode(&bytes);
        let mut with_version = vec![1u8];
        with_version.extend_from_slice(&bytes);
        let _ = Frame::decode(&with_version);
        let _ = SignedEnvelope::decode(&with_version);
        let _ = SignedEnvelope::from_stored(&with_version);
        for kind in [Kind::Text, Kind::Receipt, Kind::SealedDm, Kind::Profile] {
            let _ = Body::parse(kind, &bytes);
        }
    }
}

#[test]
fn priorities_put_control_then_own_and_dms_then_room_traffic_then_batches() {
    use festival_core::frame::Priority;
    let me = common::identity(1);
    let room_msg = common::text(&me, "main-stage", 3, "see you there");
    let push = |hops, env: &SignedEnvelope| Frame::Push(Item { hops, envelope: env.bytes().to_vec() }).encode();
    assert_eq!(Frame::priority(&push(1, &room_msg)), Priority::Direct, "our own message");
    assert_eq!(Frame::priority(&push(4, &room_msg)), Priority::Room, "someone else's, passed on");
    let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(3);
    let sealed = festival_core::body::seal_dm(&me, &common::identity(2).peer_id(), "hi", &mut rng).unwrap();
    let body = Body::SealedDm(sealed).encode();
    let dm =
        SignedEnvelope::sign(&me, Draft { seq: 1, room: RoomId::direct(), kind: Kind::SealedDm, created_at: 5, body })
            .unwrap();
    assert_eq!(Frame::priority(&push(6, &dm)), Priority::Direct, "a DM, however far it came");
    // A seq of many varint bytes, and a room named like the DM room's prefix.
    let long_seq = common::text(&me, "dmz", 1 << 40, "not a dm");
    assert_eq!(Frame::priority(&push(2, &long_seq)), Priority::Room);
    let want = Frame::Want(Want { room: RoomId::festival(), author: me.peer_id(), from: 1, to: 2 }).encode();
    assert_eq!(Frame::priority(&want), Priority::Control);
    assert_eq!(Frame::priority(&Frame::Batch { items: vec![] }.encode()), Priority::Bulk);
    assert_eq!(Frame::priority(&[1, 5, 3]), Priority::Room, "a push that does not parse");
    assert!(Priority::Control < Priority::Direct && Priority::Room < Priority::Bulk);
}

#[test]
fn each_variant_is_encoded_with_its_tag() {
    use festival_core::frame::tag;
    let room = RoomId::festival();
    let peer = PeerId::from_bytes([1; 32]);
    let msg = MsgRef { room: room.clone(), author: peer, seq: 1, id: MessageId::from_bytes([2; 32]) };
    let want = Want { room: room.clone(), author: peer, from: 1, to: 1 };
    let item = Item { hops: 1, envelope: vec![] };
    let cases = [
        (Frame::Hello(Hello { version: 4, ack: false, rooms: vec![], relays: true, powered: false }), tag::HELLO),
        (Frame::Summary(Summary { room: room.clone(), heads: vec![], reply: false }), tag::SUMMARY),
        (Frame::Digest { room: room.clone(), digest: [0; 32] }, tag::DIGEST),
        (Frame::Want(want), tag::WANT),
        (Frame::Batch { items: vec![] }, tag::BATCH),
        (Frame::Push(item), tag::PUSH),
        (Frame::IHave { refs: vec![msg.clone()] }, tag::IHAVE),
        (Frame::Graft { refs: vec![msg] }, tag::GRAFT),
        (Frame::Prune { room: room.clone() }, tag::PRUNE),
        (Frame::Gone { room: room.clone(), author: peer, from: 1, to: 1 }, tag::GONE),
        (Frame::Proof { a: vec![], b: vec![] }, tag::PROOF),
        (
            Frame::Tree(TreeAdvert {
                room: room.clone(),
                root: peer,
                powered: false,
                epoch: 1,
                depth: 0,
                parent: false,
            }),
            tag::TREE,
        ),
        (Frame::Recon(Recon { room, parts: vec![] }), tag::RECON),
    ];
    for (frame, t) in cases {
        assert_eq!(frame.encode()[1], t, "{}", frame.name());
    }
}
