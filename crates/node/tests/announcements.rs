//! The organiser's announcements between real nodes (mDNS, signed
//! signaling, WebRTC data channels, inside a private network namespace): a
//! node given the organiser key shows the organiser's announcement and
//! lists it while it runs; a node given no organiser key takes none; a node
//! that is not the organiser cannot send one. Run with scripts/test.

mod common;

use common::{start, until, DEADLINE};
use festival_core::sync::SendError;
use festival_node::discovery::MdnsHub;
use festival_node::engine::EngineError;
use festival_node::local::LocalNode;
use festival_node::runtime::{NodeError, NodeEvent};

const HOUR: u64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organisers_announcement_reaches_those_who_know_the_key_and_nobody_else_may_send_one() {
    festival_node::netns::require_private_netns();
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // The venue box's key is the organiser's: made first, so that the
    // others can be told it.
    let local = LocalNode::open(dirs[0].path()).await.unwrap();
    let organiser = local.init("Gate Crew").await.unwrap();
    local.store.close().await;

    let boxed = start(&hub, dirs[0].path(), "Gate Crew", Some(organiser)).await;
    let ana = start(&hub, dirs[1].path(), "Ana", Some(organiser)).await;
    let ben = start(&hub, dirs[2].path(), "Ben", None).await;
    let mut ana_events = ana.events();
    let mut ben_events = ben.events();
    for n in [&boxed, &ana, &ben] {
        until("all three linked", async || n.status().await.unwrap().links >= 2).await;
    }

    let now = festival_node::clock::now_ms();
    let id = boxed.announce("The east gate closes at 23:00".into(), now + HOUR).await.expect("the organiser may");
    let shown = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(NodeEvent::Announcement(a)) = ana_events.recv().await {
                return a;
            }
        }
    })
    .await
    .expect("Ana is shown the announcement");
    assert_eq!((shown.id, shown.text.as_str(), shown.until), (id, "The east gate closes at 23:00", now + HOUR));
    let listed = ana.announcements().await.unwrap();
    assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), vec![id]);

    // The organiser's own node shows it too.
    let own = boxed.announcements().await.unwrap();
    assert_eq!(own.iter().map(|a| a.id).collect::<Vec<_>>(), vec![id]);
    // Ben was given no organiser key: he does not carry the room, so nobody
    // sends him any of it, and he shows nothing (checked once the others
    // have had it for a while: Ana's copy went on to every link she has).
    until("Ana has passed it on", async || {
        ana.status().await.unwrap().links >= 2 && !ana.announcements().await.unwrap().is_empty()
    })
    .await;
    assert!(ben.announcements().await.unwrap().is_empty());
    assert!(!ben.status().await.unwrap().rejected.contains_key("room_not_carried"), "nobody offered it to Ben");
    while let Ok(ev) = ben_events.try_recv() {
        assert!(!matches!(ev, NodeEvent::Announcement(_)), "Ben showed {ev:?}");
    }

    // Ana is not the organiser.
    match ana.announce("free beer at stage 2".into(), now + HOUR).await {
        Err(NodeError::Engine(EngineError::Send(SendError::NotOrganiser))) => {}
        other => panic!("expected NotOrganiser, got {other:?}"),
    }
    for n in [boxed, ana, ben] {
        n.shutdown().await;
    }
    hub.shutdown().await.expect("hub stops");
}
