//! `Effect::Stored`: after a commit the engine says which envelopes are in
//! the store, and which of them this commit put there. A relay acknowledges
//! from it and counts only what it stored; an envelope another writer of a
//! shared store put there first is in the store, not new.

use festival_core::body::Body;
use festival_core::envelope::{Draft, Kind, SignedEnvelope};
use festival_core::frame::{Frame, Hello, Item};
use festival_core::policy::PowerState;
use festival_core::sync::{Config, Input, LinkKind, PROTOCOL_VERSION};
use festival_core::{Identity, LinkId, MessageId, RoomId};
use festival_engine::clock::now_ms;
use festival_engine::engine::{Effect, Engine};
use festival_store::Store;

fn text(author: &Identity, seq: u64) -> SignedEnvelope {
    let draft = Draft {
        seq,
        room: RoomId::festival(),
        kind: Kind::Text,
        created_at: now_ms(),
        body: Body::Text(format!("message {seq}")).encode(),
    };
    SignedEnvelope::sign(author, draft).unwrap()
}

fn stored(effects: &[Effect]) -> Vec<(MessageId, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Stored { id, new } => Some((*id, *new)),
            _ => None,
        })
        .collect()
}

/// An engine on a fresh store, with a peer linked (`LinkId(1)`) that said
/// hello for the festival room.
async fn linked() -> (tempfile::TempDir, Store, Engine, Identity, LinkId) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("festival.db")).await.unwrap();
    let me = Identity::generate(&mut rand_core::OsRng);
    store.create_identity(&me, "me", now_ms()).await.unwrap();
    let mut engine = Engine::boot(store.clone(), Config::default(), PowerState::Mains).await.unwrap();
    let peer = Identity::generate(&mut rand_core::OsRng);
    let link = LinkId(1);
    engine.handle(Input::LinkUp { link, peer: peer.peer_id(), kind: LinkKind::Relay }).await;
    let hello =
        Hello { version: PROTOCOL_VERSION, ack: true, rooms: vec![RoomId::festival()], relays: true, powered: true };
    engine.handle(Input::Frame { link, bytes: Frame::Hello(hello).encode() }).await;
    (dir, store, engine, peer, link)
}

#[tokio::test]
async fn a_commit_says_what_it_stored_and_what_another_writer_had_stored() {
    let (_dir, store, mut engine, peer, link) = linked().await;

    let (first, second, third) = (text(&peer, 1), text(&peer, 2), text(&peer, 3));
    // Another writer of the store puts the second in, behind the engine's back.
    store.insert_batch(&[(second.clone(), 1)], now_ms(), false).await.unwrap();

    let items = [&first, &second, &third].map(|e| Item { hops: 0, envelope: e.bytes().to_vec() }).to_vec();
    let effects = engine.handle(Input::Frame { link, bytes: Frame::Batch { items }.encode() }).await;
    let mut got = stored(&effects);
    got.sort();
    let mut want = vec![(first.id(), true), (second.id(), false), (third.id(), true)];
    want.sort();
    assert_eq!(got, want, "{effects:?}");

    // The same frame again: the core holds all three and commits nothing.
    let items = [&first, &second, &third].map(|e| Item { hops: 0, envelope: e.bytes().to_vec() }).to_vec();
    let effects = engine.handle(Input::Frame { link, bytes: Frame::Batch { items }.encode() }).await;
    assert!(stored(&effects).is_empty(), "{effects:?}");
}

/// A commit left to the caller (`handle_many_deferred`): nothing is stored
/// or said to be until the caller runs it and hands its outcome back; the
/// engine serves other inputs meanwhile, and a copy of a pending envelope
/// arriving then is not committed again. A commit whose outcome is lost is
/// answered as failed, and the envelope is taken again when it comes again.
#[tokio::test]
async fn a_deferred_commit_is_stored_when_its_outcome_comes_back_and_a_lost_one_is_taken_again() {
    let (_dir, store, mut engine, peer, link) = linked().await;
    let push = |e: &SignedEnvelope| Input::Frame {
        link,
        bytes: Frame::Push(Item { hops: 0, envelope: e.bytes().to_vec() }).encode(),
    };

    let first = text(&peer, 1);
    let (effects, commit) = engine.handle_many_deferred([push(&first)]).await;
    assert!(stored(&effects).is_empty(), "{effects:?}");
    let commit = commit.expect("the envelope is to be committed");
    assert_eq!(commit.ids(), vec![first.id()]);
    assert!(store.get(&first.id()).await.unwrap().is_none(), "not committed by the engine");
    // Meanwhile the same envelope again: pending, not committed twice.
    let (_, again) = engine.handle_many_deferred([push(&first)]).await;
    assert!(again.is_none(), "a pending envelope is not taken again");
    let effects = engine.committed(commit.run().await).await;
    assert_eq!(stored(&effects), vec![(first.id(), true)], "{effects:?}");
    assert!(store.get(&first.id()).await.unwrap().is_some());
    assert_eq!(engine.node().head(&RoomId::festival(), &peer.peer_id()), (1, 1));

    // A commit that never gives an outcome: answered as failed, nothing
    // held, and the next copy is committed.
    let second = text(&peer, 2);
    let (_, lost) = engine.handle_many_deferred([push(&second)]).await;
    let lost = lost.expect("to be committed");
    let effects = engine.commit_lost(&lost.ids(), "the task died").await;
    drop(lost);
    assert!(effects.iter().any(|e| matches!(e, Effect::StoreFailed { id, .. } if *id == second.id())), "{effects:?}");
    assert_eq!(engine.node().head(&RoomId::festival(), &peer.peer_id()), (1, 1), "not held");
    let (_, retry) = engine.handle_many_deferred([push(&second)]).await;
    let effects = engine.committed(retry.expect("taken again").run().await).await;
    assert_eq!(stored(&effects), vec![(second.id(), true)], "{effects:?}");
    assert_eq!(engine.node().head(&RoomId::festival(), &peer.peer_id()), (2, 2));
}
