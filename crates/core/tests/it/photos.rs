//! Photos: a header (with the thumbnail) then chunks, each a signed
//! envelope of the author's chain. They travel header first, chunks behind
//! all text in a link's queue; a node on low battery carries none of them;
//! a peer of an older protocol is told nothing of them; malformed ones are
//! refused and counted, and the link keeps serving.

use crate::common;

use common::{identity, push, text, Harness, NOW};
use festival_core::body::{Body, BodyError};
use festival_core::frame::{Frame, Item, Priority, Want};
use festival_core::photo::{self, PhotoBody, PhotoChunkBody, CHUNK_BYTES, MAX_CAPTION_BYTES, MAX_PHOTO_BYTES};
use festival_core::policy::PowerState;
use festival_core::sync::{Config, Content, Input, LinkKind, SendError, PHOTOS_VERSION};
use festival_core::{Draft, EnvelopeError, Identity, Kind, MessageId, RoomId, SignedEnvelope};

fn room() -> RoomId {
    "camp-b12".parse().unwrap()
}

/// Pushes of others' messages (and so push budgets and pieces that go free)
/// are what a busy crowd does, or a node with `live_pull` off; a quiet node
/// fetches them live (tests/live_pull.rs).
fn harness() -> Harness {
    Harness::with_config(1, Config { rooms: vec![RoomId::festival(), room()], live_pull: false, ..Config::default() })
}

/// Bytes that pass for a 100 x 100 JPEG where only the protocol looks at them.
fn jpeg(len: usize) -> Vec<u8> {
    photo::frame_only_jpeg(len, 100, 100)
}

fn signed(author: &Identity, seq: u64, body: &Body) -> SignedEnvelope {
    let draft = Draft { seq, room: room(), kind: body.kind(), created_at: NOW, body: body.encode() };
    SignedEnvelope::sign(author, draft).expect("valid draft")
}

/// `author`'s photo of `len` bytes from `seq`: the header, then the chunks.
fn photo_of(author: &Identity, seq: u64, len: usize) -> Vec<SignedEnvelope> {
    let cut = photo::cut(&jpeg(len), 100, 100, "sunset".into(), jpeg(2000)).unwrap();
    let header = signed(author, seq, &Body::Photo(cut.header));
    let mut all = vec![header.clone()];
    for (i, data) in cut.chunks.into_iter().enumerate() {
        let chunk = PhotoChunkBody { photo: header.id(), index: i as u16, data };
        all.push(signed(author, seq + 1 + i as u64, &Body::PhotoChunk(chunk)));
    }
    all
}

fn pushes_to(h: &Harness, link: u64) -> Vec<Vec<u8>> {
    h.io.sent
        .iter()
        .filter(|(l, _)| l.0 == link)
        .filter_map(|(_, f)| match f {
            Frame::Push(i) => Some(i.envelope.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_photo_is_sent_header_first_and_its_chunks_queue_behind_text() {
    let mut h = harness();
    h.link(1, &identity(2));
    let content = Content::Photo {
        jpeg: jpeg(MAX_PHOTO_BYTES),
        width: 100,
        height: 100,
        caption: "the main stage".into(),
        thumb: jpeg(3000),
    };
    let (id, out) = h.node.send(room(), content, NOW).expect("a photo");
    h.apply(out);
    let n = MAX_PHOTO_BYTES.div_ceil(CHUNK_BYTES);
    let pushed = pushes_to(&h, 1);
    assert_eq!(pushed.len(), 1 + n, "the header and every chunk");
    let envs: Vec<SignedEnvelope> = pushed.iter().map(|b| SignedEnvelope::decode(b).unwrap()).collect();
    assert_eq!(envs[0].id(), id);
    assert_eq!(envs[0].kind(), Kind::Photo);
    assert!(envs[1..].iter().all(|e| e.kind() == Kind::PhotoChunk));
    assert_eq!(photo::assemble(&envs[0], &envs[1..]).unwrap(), jpeg(MAX_PHOTO_BYTES));
    // In a link's send queue the header is one's own new message; the
    // chunks are bulk, behind every text, even a text passed on for others.
    let frame = |e: &SignedEnvelope, hops: u8| Frame::Push(Item { hops, envelope: e.bytes().to_vec() }).encode();
    assert_eq!(Frame::priority(&frame(&envs[0], 1)), Priority::Direct);
    assert!(envs[1..].iter().all(|e| Frame::priority(&frame(e, 1)) == Priority::Bulk));
    let theirs = photo_of(&identity(5), 1, 40_000);
    assert_eq!(Frame::priority(&frame(&theirs[0], 3)), Priority::Room);
    assert_eq!(Frame::priority(&frame(&theirs[1], 3)), Priority::Bulk);
    assert!(Frame::priority(&frame(&text(&identity(5), "camp-b12", 9, "hi"), 3)) < Priority::Bulk);
}

#[test]
fn a_received_photo_is_delivered_header_first_and_passed_on() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    h.link(2, &identity(3));
    let photo = photo_of(&ana, 1, 100_000);
    for env in &photo {
        h.frame(1, push(env));
    }
    let delivered: Vec<MessageId> = h.io.delivered.iter().map(|d| d.0).collect();
    assert_eq!(delivered, photo.iter().map(SignedEnvelope::id).collect::<Vec<_>>());
    assert_eq!(pushes_to(&h, 2).len(), photo.len(), "passed on whole");
}

#[test]
fn a_node_on_low_battery_passes_on_and_serves_no_photo_but_sends_its_own() {
    let (ana, carrier, asker) = (identity(5), identity(2), identity(3));
    let mut h = harness();
    h.feed(Input::Power(PowerState::Battery { percent: 12 }));
    h.link(1, &carrier);
    h.link(2, &asker);
    let photo = photo_of(&ana, 1, 60_000);
    for env in &photo {
        h.frame(1, push(env));
    }
    assert_eq!(h.io.delivered.len(), photo.len(), "kept for its own person");
    assert!(pushes_to(&h, 2).is_empty(), "nothing passed on: {:?}", h.io.sent);
    h.io.sent.clear();
    let want = Want { room: room(), author: ana.peer_id(), from: 1, to: photo.len() as u64 };
    h.frame(2, Frame::Want(want).encode());
    h.feed(Input::Tick);
    assert!(!h.io.sent.iter().any(|(_, f)| matches!(f, Frame::Batch { .. })), "not served: {:?}", h.io.sent);
    // Its own photo still goes.
    let content =
        Content::Photo { jpeg: jpeg(20_000), width: 100, height: 100, caption: String::new(), thumb: jpeg(100) };
    let (_, out) = h.node.send(room(), content, h.now).unwrap();
    h.apply(out);
    assert_eq!(pushes_to(&h, 2).len(), 1 + 2);
}

#[test]
fn a_peer_of_an_older_protocol_is_told_nothing_of_a_photo() {
    let (ana, old, new) = (identity(5), identity(2), identity(3));
    let mut h = harness();
    h.link_speaking(1, &old, LinkKind::Lan, PHOTOS_VERSION - 1);
    h.link(2, &new);
    h.link(3, &identity(4));
    let before = text(&ana, "camp-b12", 1, "look at this");
    let photo = photo_of(&ana, 2, 20_000);
    for env in std::iter::once(&before).chain(&photo) {
        h.frame(2, push(env));
    }
    assert_eq!(pushes_to(&h, 3).len(), 1 + photo.len());
    assert_eq!(pushes_to(&h, 1), vec![before.bytes().to_vec()], "the text only");
    let announced = h.io.sent.iter().any(|(l, f)| {
        l.0 == 1 && matches!(f, Frame::IHave { refs } if refs.iter().any(|r| photo.iter().any(|p| p.id() == r.id)))
    });
    assert!(!announced);
}

#[test]
fn malformed_photos_and_chunks_are_refused_and_counted() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    let good = photo_of(&ana, 1, 20_000);
    let header = match good[0].parsed_body() {
        Body::Photo(p) => p,
        _ => unreachable!(),
    };
    let forge = |kind: Kind, body: Vec<u8>, seq: u64| {
        let forged = festival_core::envelope::Envelope { kind, body, seq, ..good[0].envelope().clone() };
        let mut bytes = postcard::to_stdvec(&forged).unwrap();
        let n = bytes.len() - 64;
        let sig = ana.sign(festival_core::envelope::ENVELOPE_DOMAIN, &bytes[..n]);
        bytes[n..].copy_from_slice(&sig);
        Frame::Push(Item { hops: 1, envelope: bytes }).encode()
    };
    let with = |f: &dyn Fn(&mut PhotoBody)| {
        let mut p = header.clone();
        f(&mut p);
        Body::Photo(p).encode()
    };
    let bad = [
        (Kind::Photo, with(&|p| p.size = MAX_PHOTO_BYTES as u32 + 1)),
        (Kind::Photo, with(&|p| p.width = 4000)),
        (Kind::Photo, with(&|p| p.thumb = b"<svg onload=alert(1)>".to_vec())),
        (Kind::Photo, with(&|p| p.caption = "x".repeat(MAX_CAPTION_BYTES + 1))),
        (Kind::Photo, b"not postcard".to_vec()),
        (Kind::PhotoChunk, Body::PhotoChunk(chunk(good[0].id(), 99, 10)).encode()),
        (Kind::PhotoChunk, Body::PhotoChunk(chunk(good[0].id(), 0, CHUNK_BYTES + 1)).encode()),
    ];
    for (i, (kind, body)) in bad.iter().enumerate() {
        h.frame(1, forge(*kind, body.clone(), 100 + i as u64));
    }
    assert!(h.io.delivered.is_empty());
    assert_eq!(h.rejected_by(&carrier, "envelope_bad_body"), bad.len() as u64);
    // A photo in the DM mailbox is in the wrong room.
    let in_dm =
        Draft { seq: 1, room: RoomId::direct(), kind: Kind::Photo, created_at: NOW, body: good[0].body().to_vec() };
    assert!(matches!(SignedEnvelope::sign(&ana, in_dm), Err(EnvelopeError::WrongRoom { .. })));
    // The link still serves: the real photo goes through.
    for env in &good {
        h.frame(1, push(env));
    }
    assert_eq!(h.io.delivered.len(), good.len());
}

fn chunk(photo: MessageId, index: u16, len: usize) -> PhotoChunkBody {
    PhotoChunkBody { photo, index, data: vec![7; len] }
}

#[test]
fn sending_checks_the_room_the_size_and_the_caption() {
    let mut h = harness();
    let content = |len: usize, caption: &str| Content::Photo {
        jpeg: jpeg(len),
        width: 100,
        height: 100,
        caption: caption.into(),
        thumb: jpeg(100),
    };
    let too_big = h.node.send(room(), content(MAX_PHOTO_BYTES + 1, ""), NOW).unwrap_err();
    assert_eq!(too_big, SendError::Photo(photo::PhotoError::Size));
    let long = "x".repeat(MAX_CAPTION_BYTES + 1);
    assert!(matches!(
        h.node.send(room(), content(100, &long), NOW).unwrap_err(),
        SendError::Photo(photo::PhotoError::Header(BodyError::TextTooLong { .. }))
    ));
    let not_joined = h.node.send("elsewhere".parse().unwrap(), content(100, ""), NOW).unwrap_err();
    assert!(matches!(not_joined, SendError::NotInRoom(_)));
    // Nothing was written for the failed ones: the next photo starts at 1.
    let (_, out) = h.node.send(room(), content(CHUNK_BYTES + 1, ""), NOW).unwrap();
    h.apply(out);
    let mine: Vec<u64> = h.io.stored.keys().filter(|(r, _, _)| *r == room()).map(|(_, _, s)| *s).collect();
    assert_eq!(mine, vec![1, 2, 3]);
}

#[test]
fn a_text_after_a_photo_is_shown_before_the_photos_pieces_come_and_nothing_twice() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    let photo = photo_of(&ana, 1, 100_000);
    let n = photo.len() as u64 - 1;
    let after = text(&ana, "camp-b12", n + 2, "look at that!");
    // The header and the text come; the pieces are still queued behind.
    h.frame(1, push(&photo[0]));
    h.frame(1, push(&after));
    let delivered = |h: &Harness| h.io.delivered.iter().map(|d| d.0).collect::<Vec<_>>();
    assert_eq!(delivered(&h), vec![photo[0].id(), after.id()], "the text is shown at once");
    // The pieces come later, out of order: each is delivered as it comes, once.
    for env in photo[1..].iter().rev() {
        h.frame(1, push(env));
    }
    let all = delivered(&h);
    assert_eq!(all.len(), photo.len() + 1, "each once: {all:?}");
    for env in &photo {
        assert_eq!(all.iter().filter(|id| **id == env.id()).count(), 1);
    }
    assert_eq!(h.node.head(&room(), &ana.peer_id()), (n + 2, n + 2), "the chain is whole");
    // What comes next is delivered as usual.
    let next = text(&ana, "camp-b12", n + 3, "and now?");
    h.frame(1, push(&next));
    assert_eq!(h.io.delivered.last().map(|d| d.0), Some(next.id()));
    assert_eq!(h.io.delivered.len(), photo.len() + 2);
}

#[test]
fn a_gap_that_is_not_a_photos_pieces_still_holds_what_follows() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    let photo = photo_of(&ana, 1, 20_000);
    // Seq 4 (after the header and its 2 pieces) is missing: a text, not a piece.
    let later = text(&ana, "camp-b12", 5, "held until 4 comes");
    h.frame(1, push(&photo[0]));
    h.frame(1, push(&later));
    assert_eq!(h.io.delivered.iter().map(|d| d.0).collect::<Vec<_>>(), vec![photo[0].id()]);
    let missing = text(&ana, "camp-b12", 4, "the one in between");
    h.frame(1, push(&missing));
    let order: Vec<MessageId> = h.io.delivered.iter().map(|d| d.0).collect();
    assert_eq!(order, vec![photo[0].id(), missing.id(), later.id()]);
}

#[test]
fn a_photos_pieces_do_not_spend_their_authors_push_budget_but_forged_ones_do() {
    let (ana, mallory, carrier) = (identity(5), identity(9), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    h.link(2, &identity(3));
    // Ana's photo (19 envelopes, the budget's burst is 10), then her text.
    let photo = photo_of(&ana, 1, 256 * 1024);
    let after = text(&ana, "camp-b12", photo.len() as u64 + 1, "that was the stage");
    for env in photo.iter().chain([&after]) {
        h.frame(1, push(env));
    }
    let pushed = pushes_to(&h, 2);
    assert_eq!(pushed.len(), photo.len() + 1, "all pushed, the text too");
    assert_eq!(h.node.stats().held_back, 0);
    // Mallory's "pieces" name Ana's photo: not its pieces (another author,
    // or not at their places), so they spend Mallory's budget and are held
    // back past it.
    h.io.sent.clear();
    for seq in 1..=15u64 {
        let c = PhotoChunkBody { photo: photo[0].id(), index: (seq % 18) as u16, data: vec![1; 100] };
        h.frame(1, push(&signed(&mallory, seq, &Body::PhotoChunk(c))));
    }
    assert_eq!(pushes_to(&h, 2).len(), 10, "the burst, then held back");
    assert_eq!(h.node.stats().held_back, 5);
}

#[test]
fn pieces_that_come_before_their_header_are_each_delivered_once() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    // A header at 1 with 3 pieces (2..=4), then a text at 5.
    let photo = photo_of(&ana, 1, 2 * CHUNK_BYTES + 10);
    assert_eq!(photo.len(), 4);
    let after = text(&ana, "camp-b12", 5, "after the photo");
    // Piece 3 and the text first, then the header, then the other pieces.
    for env in [&photo[2], &after, &photo[0], &photo[1], &photo[3]] {
        h.frame(1, push(env));
    }
    let delivered: Vec<MessageId> = h.io.delivered.iter().map(|d| d.0).collect();
    for env in photo.iter().chain([&after]) {
        assert_eq!(delivered.iter().filter(|id| **id == env.id()).count(), 1, "{delivered:?}");
    }
    assert_eq!(delivered.len(), 5);
    // The text was shown once the header came, before the last pieces.
    let at = |id: MessageId| delivered.iter().position(|d| *d == id).unwrap();
    assert!(at(after.id()) < at(photo[3].id()));
}

#[test]
fn after_a_restart_what_was_shown_past_a_photos_pieces_is_not_shown_again() {
    use festival_core::sync::{Node, Snapshot, SnapshotHead};
    let (ana, carrier) = (identity(5), identity(2));
    let photo = photo_of(&ana, 1, 2 * CHUNK_BYTES + 10);
    let n = photo.len() as u64 - 1;
    let after = text(&ana, "camp-b12", n + 2, "shown before the restart");
    // The store held the header and the text after it; the pieces were on
    // their way when the device restarted.
    let snapshot = Snapshot {
        heads: vec![SnapshotHead {
            room: room(),
            author: ana.peer_id(),
            contiguous: 1,
            max: n + 2,
            tip: Some(after.id()),
        }],
        held_above: vec![(room(), ana.peer_id(), n + 2, after.id())],
        photos: vec![(room(), ana.peer_id(), 1, n)],
        ..Snapshot::default()
    };
    let mut h = harness();
    let cfg = Config { rooms: vec![RoomId::festival(), room()], live_pull: false, ..Config::default() };
    h.node = Node::new(identity(1), cfg, snapshot, PowerState::Mains, NOW);
    h.link(1, &carrier);
    for env in &photo[1..] {
        h.frame(1, push(env));
    }
    let delivered: Vec<MessageId> = h.io.delivered.iter().map(|d| d.0).collect();
    assert_eq!(delivered, photo[1..].iter().map(SignedEnvelope::id).collect::<Vec<_>>(), "the pieces only");
    assert_eq!(h.node.head(&room(), &ana.peer_id()), (n + 2, n + 2));
}

#[test]
fn a_header_that_was_not_pushed_frees_none_of_its_pieces_and_a_header_costs_more_than_a_text() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    h.link(2, &identity(3));
    // A header at the hop limit is announced, not pushed (and not charged):
    // its pieces that follow at hops 1 are charged as any message.
    let photo = photo_of(&ana, 1, 256 * 1024);
    h.frame(1, Frame::Push(Item { hops: 32, envelope: photo[0].bytes().to_vec() }).encode());
    for env in &photo[1..] {
        h.frame(1, push(env));
    }
    assert_eq!(pushes_to(&h, 2).len(), 10, "the pieces spent the budget's burst, then were held back");
    assert_eq!(h.node.stats().held_back, 8);
    // A header costs one and one per four pieces (18: five): with the
    // burst of 10, two photos' headers go and the third waits.
    let mut h = harness();
    h.link(1, &carrier);
    h.link(2, &identity(3));
    let mut seq = 1;
    for _ in 0..3 {
        let p = photo_of(&identity(6), seq, 256 * 1024);
        seq += p.len() as u64;
        h.frame(1, push(&p[0]));
    }
    assert_eq!(pushes_to(&h, 2).len(), 2);
    assert_eq!(h.node.stats().held_back, 1);
}

#[test]
fn past_the_cap_of_photos_a_chain_goes_past_the_furthest_waits_for_its_pieces() {
    let (ana, carrier) = (identity(5), identity(2));
    let mut h = harness();
    h.link(1, &carrier);
    // A text at 1 still on its way, then five photos of two pieces each
    // (headers at 2, 5, 8, 11, 14), then a text at 17: five runs of pieces
    // ahead of delivery, one more than a chain keeps.
    let first = text(&ana, "camp-b12", 1, "first");
    let photos: Vec<Vec<SignedEnvelope>> = (0..5).map(|i| photo_of(&ana, 2 + 3 * i, CHUNK_BYTES + 10)).collect();
    let last = text(&ana, "camp-b12", 17, "after five photos");
    for p in &photos {
        h.frame(1, push(&p[0]));
    }
    h.frame(1, push(&last));
    assert!(h.io.delivered.is_empty(), "all wait for the text at 1");
    h.frame(1, push(&first));
    let shown: Vec<u64> = h.io.delivered.iter().map(|d| d.2).collect();
    assert_eq!(shown, vec![1, 2, 5, 8, 11, 14], "past four photos' pieces; the fifth's hold the text after it");
    // Its pieces come: they and the text are shown.
    for env in &photos[4][1..] {
        h.frame(1, push(env));
    }
    let shown: Vec<u64> = h.io.delivered.iter().map(|d| d.2).collect();
    assert_eq!(&shown[6..], &[15, 16, 17]);
}
