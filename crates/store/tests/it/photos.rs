//! Photos in the store: a history page shows the photo, never its chunks;
//! the photo counts once as unread; its caption (and a meet-up's place) is
//! found by search; chunks are counted and read back in order; and the
//! budgets hold with photos: an author over their budget loses their
//! oldest photos' pieces first, never anyone else's.

use crate::common;

use common::{identity, room, sign, temp_store, text};
use festival_core::body::{Body, MeetupBody};
use festival_core::photo::{self, PhotoChunkBody, MAX_PHOTO_BYTES};
use festival_core::{Identity, Kind, RoomId, SignedEnvelope};
use festival_store::{Budget, ROW_OVERHEAD_BYTES};

const T: u64 = 1_750_000_000_000;

/// An 800 x 600 JPEG as far as the protocol looks, its filler salted.
fn jpeg(len: usize, salt: usize) -> Vec<u8> {
    let mut v = photo::frame_only_jpeg(len, 800, 600);
    for (i, b) in v.iter_mut().enumerate().skip(32) {
        *b = ((i + salt) * 13 % 251) as u8;
    }
    v
}

/// A photo from `seq`: its header, then its chunks.
fn photo(author: &Identity, room: &RoomId, seq: u64, at: u64, len: usize, caption: &str) -> Vec<SignedEnvelope> {
    let cut =
        photo::cut(&jpeg(len, seq as usize), 800, 600, caption.into(), photo::frame_only_jpeg(900, 200, 150)).unwrap();
    let header = sign(author, room, seq, Kind::Photo, at, Body::Photo(cut.header).encode());
    let mut all = vec![header.clone()];
    for (i, data) in cut.chunks.into_iter().enumerate() {
        let chunk = PhotoChunkBody { photo: header.id(), index: i as u16, data };
        let s = seq + 1 + i as u64;
        all.push(sign(author, room, s, Kind::PhotoChunk, at, Body::PhotoChunk(chunk).encode()));
    }
    all
}

fn batch(envs: &[SignedEnvelope]) -> Vec<(SignedEnvelope, u8)> {
    envs.iter().map(|e| (e.clone(), 1)).collect()
}

#[tokio::test]
async fn history_shows_the_photo_not_its_chunks_and_it_counts_once_as_unread() {
    let (_dir, store) = temp_store().await;
    let camp = room("camp-b12");
    store.join_room(&camp, "Camp B12", 0).await.unwrap();
    let ana = identity(1);
    let before = text(&ana, &camp, 1, T, "look");
    let pic = photo(&ana, &camp, 2, T + 1, MAX_PHOTO_BYTES, "the stage at night");
    let after = text(&ana, &camp, pic.len() as u64 + 2, T + 2, "wow");
    store
        .insert_batch(&batch(&[vec![before.clone()], pic.clone(), vec![after.clone()]].concat()), T, false)
        .await
        .unwrap();
    let page = store.history(&camp, None, 3).await.unwrap();
    let ids: Vec<_> = page.iter().map(|m| m.envelope.id()).collect();
    assert_eq!(ids, vec![before.id(), pic[0].id(), after.id()], "a page of three holds the three messages");
    let unread = store.rooms().await.unwrap().into_iter().find(|r| r.room == camp).unwrap().unread;
    assert_eq!(unread, 3, "the photo once, and the two texts");
    // Its chunks, counted and read back in order, put it together.
    let n = pic.len() as u64 - 1;
    assert_eq!(store.count_range(&camp, &ana.peer_id(), 3, 2 + n).await.unwrap(), n);
    let chunks: Vec<_> = store
        .load_range(&camp, &ana.peer_id(), 3, 2 + n, usize::MAX, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(photo::assemble(&pic[0], &chunks).unwrap(), jpeg(MAX_PHOTO_BYTES, 2));
}

#[tokio::test]
async fn captions_and_meetup_places_are_found_by_search() {
    let (_dir, store) = temp_store().await;
    let me = identity(100);
    store.create_identity(&me, "me", 1).await.unwrap();
    let camp = room("camp-b12");
    let ana = identity(1);
    let pic = photo(&ana, &camp, 1, T, 2_000, "sunrise over the lake");
    let quiet = photo(&ana, &camp, 3, T + 1, 2_000, "");
    let at = T + 3_600_000;
    let card = Body::Meetup(MeetupBody { place: "the lakeside bar".into(), at });
    let meetup = sign(&ana, &camp, 5, Kind::Meetup, T + 2, card.encode());
    store.insert_batch(&batch(&[pic.clone(), quiet, vec![meetup.clone()]].concat()), T, false).await.unwrap();
    store.index_pending(&me, 1_000).await.unwrap();
    let found = |typed: &'static str| {
        let store = store.clone();
        async move { store.search(typed, 10).await.unwrap().into_iter().map(|m| m.envelope.id()).collect::<Vec<_>>() }
    };
    assert_eq!(found("sunrise").await, vec![pic[0].id()]);
    assert_eq!(found("lake").await, vec![meetup.id(), pic[0].id()], "newest first, prefixes too");
}

#[tokio::test]
async fn an_author_over_the_budget_loses_their_oldest_photos_pieces_first() {
    let (_dir, store) = temp_store().await;
    let me = identity(100);
    store.create_identity(&me, "me", 1).await.unwrap();
    let camp = room("camp-b12");
    let (ben, cat) = (identity(2), identity(3));
    // Ben sends eight big photos; Cat a few texts.
    let mut bens = Vec::new();
    for i in 0..8u64 {
        let seq = 1 + bens.len() as u64;
        bens.extend(photo(&ben, &camp, seq, T + i, MAX_PHOTO_BYTES, ""));
    }
    let cats: Vec<_> = (1..=5).map(|i| text(&cat, &camp, i, T + i, "hello")).collect();
    store.insert_batch(&batch(&[bens.clone(), cats.clone()].concat()), T, false).await.unwrap();
    let cost = |e: &SignedEnvelope| e.bytes().len() as u64 + ROW_OVERHEAD_BYTES;
    // Room for three photos.
    let per_photo: u64 = bens[..bens.len() / 8].iter().map(cost).sum();
    let budget = Budget { disk_bytes: u64::MAX, per_author_bytes: 3 * per_photo, per_room_bytes: u64::MAX };
    store.evict(&budget, T).await.unwrap();
    let ben_after = store.author_usage(&ben.peer_id()).await.unwrap();
    assert!(ben_after.bytes <= budget.per_author_bytes, "{ben_after:?}");
    let mut kept = Vec::new();
    for env in &bens {
        kept.push(store.get(&env.id()).await.unwrap().is_some());
    }
    let first_kept = kept.iter().position(|k| *k).unwrap();
    assert!(kept[first_kept..].iter().all(|k| *k), "the oldest went, the newest stay whole");
    assert!(first_kept >= 5 * bens.len() / 8, "five photos' worth went");
    for env in &cats {
        assert!(store.get(&env.id()).await.unwrap().is_some(), "nobody else's");
    }
}
