//! Peers: seen times only widen, names and verification can be set before a
//! peer is ever met, and per-room sync times only move forward.

use crate::common;

use common::{identity, room, temp_store};
use festival_store::PeerRecord;

#[tokio::test]
async fn seen_times_widen_and_details_stick() {
    let (_dir, store) = temp_store().await;
    let (ana, ben) = (identity(1).peer_id(), identity(2).peer_id());

    store.peer_seen(&ana, 1_000).await.unwrap();
    store.peer_seen(&ana, 3_000).await.unwrap();
    store.peer_seen(&ana, 2_000).await.unwrap();
    store.peer_seen(&ana, 500).await.unwrap();
    store.set_peer_name(&ana, "Ana").await.unwrap();
    store.set_peer_verified(&ana, true).await.unwrap();
    // Known by name from a relayed profile, never met.
    store.set_peer_name(&ben, "Ben").await.unwrap();

    let ana_record = PeerRecord {
        peer: ana,
        name: Some("Ana".into()),
        verified: true,
        first_seen: Some(500),
        last_seen: Some(3_000),
    };
    assert_eq!(store.peer(&ana).await.unwrap(), Some(ana_record.clone()));
    let ben_record =
        PeerRecord { peer: ben, name: Some("Ben".into()), verified: false, first_seen: None, last_seen: None };
    assert_eq!(store.peers().await.unwrap(), vec![ana_record, ben_record.clone()]);

    store.peer_seen(&ben, 4_000).await.unwrap();
    store.set_peer_verified(&ana, false).await.unwrap();
    let peers = store.peers().await.unwrap();
    assert_eq!(peers[0].peer, ben, "most recently seen first");
    assert_eq!((peers[0].first_seen, peers[0].name.as_deref()), (Some(4_000), Some("Ben")));
    assert!(!peers[1].verified);
    assert_eq!(store.peer(&identity(3).peer_id()).await.unwrap(), None);
}

#[tokio::test]
async fn sync_times_are_per_peer_and_room_and_only_move_forward() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1).peer_id();
    let (a, b) = (room("stage-a"), room("stage-b"));
    assert_eq!(store.last_synced(&ana, &a).await.unwrap(), None);
    store.record_sync(&ana, &a, 2_000).await.unwrap();
    store.record_sync(&ana, &a, 1_000).await.unwrap();
    store.record_sync(&ana, &b, 1_500).await.unwrap();
    assert_eq!(store.last_synced(&ana, &a).await.unwrap(), Some(2_000));
    assert_eq!(store.last_synced(&ana, &b).await.unwrap(), Some(1_500));
}
