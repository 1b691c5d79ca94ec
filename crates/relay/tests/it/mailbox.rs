//! The relay as a node: a path between nodes that cannot reach each other,
//! and a mailbox for whoever is offline, which survives a SIGKILL.

use crate::common;

use common::*;
use festival_relay::RelayConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_chat_through_the_relay_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path(), "Ana", &relay.url()).await;
    let b = TestNode::start(db.path(), "Ben", &relay.url()).await;

    let hi = a.send("festival", "hi Ben").await;
    eventually("Ben has Ana's message", || b.has(&hi)).await;
    let back = b.dm(a.id, "hi Ana, privately").await;
    eventually("Ana has Ben's DM", || a.has(&back)).await;
    // A room the relay did not carry before: it joins the rooms its nodes name.
    let stage = a.send("main-stage", "at the main stage").await;
    // Ben is not in main-stage; the relay keeps it for whoever joins.
    eventually("the relay acknowledged the main-stage message", || async { a.acked(&stage) }).await;
    assert!(relay.metric("festival_relay_mailbox_messages").await >= 3);
    a.stop().await;
    b.stop().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_acked_before_a_sigkill_reaches_a_node_that_connects_after_the_restart() {
    let relay_dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(relay_dir.path()).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Ben exists (Ana knows his id from his contact code) but is offline.
    let ben = festival_node::local::LocalNode::open(db.path()).await.unwrap().init("Ben").await.unwrap();
    let a = TestNode::start(da.path(), "Ana", &relay.url()).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(a.send("festival", &format!("message {i} for whoever comes later")).await);
    }
    ids.push(a.dm(ben, "see you at the gate at nine").await);
    eventually("the relay acknowledged all of Ana's messages", || async { ids.iter().all(|id| a.acked(id)) }).await;
    a.stop().await;

    // No shutdown path: the acknowledged messages must be on disk already.
    relay.kill9().await;
    let relay = RelayProcess::start(relay_dir.path()).await;

    let b = TestNode::start(db.path(), "Ben", &relay.url()).await;
    for id in &ids {
        let id = *id;
        eventually("Ben got every acknowledged message from the restarted relay", || b.has(&id)).await;
    }
    b.stop().await;
    relay.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_over_the_storage_quota_is_refused_and_others_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(RelayConfig { max_messages_per_author: 5, ..test_config(dir.path()) }).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Ana's first message is her profile (written at init): it counts too.
    let a = TestNode::start(da.path(), "Ana", &relay.url()).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(a.send("festival", &format!("note {i}")).await);
    }
    eventually("the relay refused what is over the quota", || async { relay.rejections("storage_quota").await >= 1 })
        .await;
    let b = TestNode::start(db.path(), "Ben", &relay.url()).await;
    let from_ben = b.send("festival", "I still get through").await;
    eventually("Ben's message is stored", || async { b.acked(&from_ben) }).await;
    // Five of Ana's messages fit: her profile and notes, or notes only,
    // depending on whether live pushes or the sync batch arrived first.
    let acked = || ids.iter().filter(|id| a.acked(id)).count();
    eventually("four or five of Ana's notes are acknowledged", || async { acked() >= 4 }).await;
    assert!(acked() <= 5, "over the quota: not acknowledged ({} were)", acked());
    a.stop().await;
    b.stop().await;
    relay.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_relays_data_dir_is_its_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("srv/festival-relay");
    let relay = TestRelay::start(test_config(&dir)).await;
    // It holds the relay's identity key, which nodes pin.
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    relay.stop().await;
}
