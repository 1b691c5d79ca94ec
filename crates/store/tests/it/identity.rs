//! The device identity is created once, survives restarts, and comes back
//! as a working signing identity (never as raw secret bytes).

use crate::common;

use common::{identity, room, text};
use festival_core::SignedEnvelope;
use festival_store::{Store, StoreError};

#[tokio::test]
async fn an_identity_is_created_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    let store = Store::open(&path).await.unwrap();
    assert!(store.identity().await.unwrap().is_none());
    assert!(matches!(store.set_name("Ana").await, Err(StoreError::NoIdentity)));

    let me = identity(42);
    store.create_identity(&me, "Ana", 1_000).await.unwrap();
    let err = store.create_identity(&identity(43), "Impostor", 2_000).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyInitialised));
    store.set_name("Ana B.").await.unwrap();
    assert!(matches!(store.set_name("   ").await, Err(StoreError::BadName(_))));
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    let loaded = store.identity().await.unwrap().expect("identity kept");
    assert_eq!(loaded.identity.peer_id(), me.peer_id());
    assert_eq!((loaded.name.as_str(), loaded.created_at), ("Ana B.", 1_000));
    // What comes back can sign, and others can verify it as us.
    let env = text(&loaded.identity, &room("festival"), 1, 5, "still me");
    assert_eq!(SignedEnvelope::decode(env.bytes()).unwrap().author(), me.peer_id());
}

#[tokio::test]
async fn a_bad_name_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("festival.db")).await.unwrap();
    let err = store.create_identity(&identity(1), &"x".repeat(49), 1).await.unwrap_err();
    assert!(matches!(err, StoreError::BadName(_)));
    assert!(store.identity().await.unwrap().is_none());
}
