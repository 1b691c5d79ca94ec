//! Blocking between real nodes (mDNS, signed signaling, WebRTC data
//! channels, inside a private network namespace): Ana blocks Ben; his DM to
//! her is not stored, not shown and gets no "delivered" receipt; his room
//! message is kept for others but not shown to her; the block survives a
//! restart of her node; unblocking takes his DMs again, those sent while he
//! was blocked included. (Whether his node pushes a DM or only announces it
//! depends on the room's tree; the drop of a pushed one, and its count, are
//! checked in the core's tests/it/receipts.rs.) Run with scripts/test.

mod common;

use common::{start, until};
use festival_core::RoomId;
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{NodeError, NodeEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_persons_dms_are_not_kept_their_posts_not_shown_and_no_receipt_goes_back() {
    festival_node::netns::require_private_netns();
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let ana = start(&hub, dirs[0].path(), "Ana", None).await;
    let ben = start(&hub, dirs[1].path(), "Ben", None).await;
    for n in [&ana, &ben] {
        until("linked", async || n.status().await.unwrap().links >= 1).await;
    }
    let (a, b) = (ana.peer_id(), ben.peer_id());
    assert!(matches!(ana.block(a, true).await, Err(NodeError::OwnCode)), "not yourself");
    ana.block(b, true).await.expect("block");
    assert!(ana.peers().await.unwrap().iter().any(|p| p.peer == b && p.blocked));
    assert_eq!(
        ana.people_choices().await.unwrap().iter().map(|c| (c.peer, c.blocked)).collect::<Vec<_>>(),
        [(b, true)]
    );
    let mut ana_events = ana.events();
    let mut ben_events = ben.events();

    let dm = ben.send_dm(a, "answer me".into()).await.unwrap();
    let post = ben.send(RoomId::festival(), "free tokens".into()).await.unwrap();
    until("Ben's post stored at Ana's", async || ana.store().get(&post).await.unwrap().is_some()).await;
    assert!(ana.status().await.unwrap().rejected.is_empty(), "dropping his DM is no refusal of Ben's link");
    assert!(ana.store().get(&dm).await.unwrap().is_none(), "a blocked person's DM is not stored");
    assert!(ana.dm_history(&b, None, 50).await.unwrap().messages.is_empty());
    let shown = ana.history(&RoomId::festival(), None, 50).await.unwrap();
    assert!(shown.messages.iter().all(|m| m.author != b), "his post is not shown");
    while let Ok(ev) = ana_events.try_recv() {
        if let NodeEvent::Message(m) = ev {
            assert_ne!(m.author, b, "no event shows what he wrote");
        }
    }
    while let Ok(ev) = ben_events.try_recv() {
        if let NodeEvent::Receipt { from, ids, .. } = ev {
            assert!(!(from == a && ids.contains(&dm)), "no receipt goes to a blocked person");
        }
    }
    assert_eq!(ben.message(&dm).await.unwrap().and_then(|m| m.delivery).map(|d| d.delivered_to), Some(0));

    // Ana's node restarts: the block holds (her core starts from the
    // store's choices), and a second DM is dropped as well.
    ana.shutdown().await;
    let ana = start(&hub, dirs[0].path(), "Ana", None).await;
    until("linked again", async || ana.status().await.unwrap().links >= 1).await;
    let dm2 = ben.send_dm(a, "still there?".into()).await.unwrap();
    let post2 = ben.send(RoomId::festival(), "more free tokens".into()).await.unwrap();
    until("Ben's second post stored at Ana's", async || ana.store().get(&post2).await.unwrap().is_some()).await;
    assert!(ana.people_choices().await.unwrap().iter().any(|c| c.peer == b && c.blocked));
    assert!(ana.store().get(&dm2).await.unwrap().is_none());
    assert!(ana.dm_history(&b, None, 50).await.unwrap().messages.is_empty());

    // Unblocked: his DMs are asked for again, taken and acknowledged.
    ana.block(b, false).await.expect("unblock");
    assert!(ana.people_choices().await.unwrap().is_empty());
    until("the DMs taken once unblocked", async || {
        ana.store().get(&dm).await.unwrap().is_some() && ana.store().get(&dm2).await.unwrap().is_some()
    })
    .await;
    until("the DM delivered", async || {
        ben.message(&dm).await.unwrap().and_then(|m| m.delivery).is_some_and(|d| d.delivered_to >= 1)
    })
    .await;
    assert!(ana.history(&RoomId::festival(), None, 50).await.unwrap().messages.iter().any(|m| m.id == post));
    ana.shutdown().await;
    ben.shutdown().await;
}
