//! Honest delivery states between real nodes (mDNS, signed signaling,
//! WebRTC data channels, inside a private network namespace), with a short
//! delivery timeout: a DM handed to a device nearby that is not its
//! recipient stays "sent" and turns "not delivered yet" (handed on) when
//! the timeout passes, by an event; a retry sends it again and starts the
//! clock again, and a second one at once is refused; only DMs of ours can
//! be retried; a DM to a person in reach is delivered and read, with no
//! "not delivered" clock at all. (That a receipt from someone else than
//! the recipient never counts is checked in tests/runtime.rs.) Run with
//! scripts/test.

mod common;

use std::time::Duration;

use common::{start_with, until};
use festival_core::{Identity, MessageId, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{Delivery, DeliveryState, NodeError, NodeEvent, NotDelivered};
use tokio::sync::broadcast::Receiver;

const TIMEOUT_MS: u64 = 1_500;

/// The next `delivery` event of `id` that `pick` accepts.
async fn delivery_event(events: &mut Receiver<NodeEvent>, id: MessageId, pick: impl Fn(&Delivery) -> bool) -> Delivery {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::Delivery { id: got, delivery }) if got == id && pick(&delivery) => return delivery,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await;
    found.expect("the delivery event within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_handed_on_turns_not_delivered_yet_and_a_retry_starts_again() {
    festival_node::netns::require_private_netns();
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let short = |cfg| festival_node::runtime::NodeConfig { delivery_timeout_ms: TIMEOUT_MS, ..cfg };
    let ana = start_with(&hub, dirs[0].path(), "Ana", short).await;
    let ben = start_with(&hub, dirs[1].path(), "Ben", short).await;
    for n in [&ana, &ben] {
        until("linked", async || n.status().await.unwrap().links >= 1).await;
    }
    let mut events = ana.events();

    // To someone nowhere near: Ben carries it, nobody acknowledges it.
    let away = Identity::generate(&mut rand_core::OsRng).peer_id();
    let dm = ana.send_dm(away, "are you at the gate?".into()).await.unwrap();
    let sent = delivery_event(&mut events, dm, |d| d.state >= DeliveryState::Sent).await;
    assert_eq!(sent.state, DeliveryState::Sent, "a carrier is not the recipient: {sent:?}");
    assert!(sent.not_delivered.is_none() && sent.overdue_at.is_some(), "{sent:?}");
    until("Ben carries it", async || ben.store().get(&dm).await.unwrap().is_some()).await;
    let late = delivery_event(&mut events, dm, |d| d.not_delivered.is_some()).await;
    assert_eq!((late.state, late.not_delivered), (DeliveryState::Sent, Some(NotDelivered::HandedOn)));
    assert!(late.as_of >= sent.as_of);

    // Retry: sent again (to Ben, the one link), the clock starts again,
    // then runs out again.
    let again = ana.retry(dm).await.unwrap().delivery.expect("ours");
    assert!(again.not_delivered.is_none(), "{again:?}");
    let due = again.overdue_at.expect("a new moment");
    assert!(due > sent.overdue_at.unwrap(), "a later moment: {again:?} after {sent:?}");
    assert!(again.as_of > late.as_of, "a later view has a later stamp");
    // At once again: refused, nothing more is sent, the clock is not moved.
    assert!(matches!(ana.retry(dm).await, Err(NodeError::RetryTooSoon)));
    let same = ana.message(&dm).await.unwrap().and_then(|m| m.delivery).expect("ours");
    assert_eq!(same.overdue_at, Some(due));
    let late = delivery_event(&mut events, dm, |d| d.not_delivered.is_some()).await;
    assert_eq!(late.not_delivered, Some(NotDelivered::HandedOn));
    // Not a DM of ours, or not stored: a typed error.
    assert!(matches!(ben.retry(dm).await, Err(NodeError::NotOurs)));
    assert!(matches!(ana.retry(MessageId::from_bytes([7; 32])).await, Err(NodeError::NotOurs)));
    let post = ana.send(RoomId::festival(), "a room message".into()).await.unwrap();
    assert!(matches!(ana.retry(post).await, Err(NodeError::NotOurs)), "a room message has no retry");

    // To Ben, who is in reach: delivered, then read, never "not delivered".
    let to_ben = ana.send_dm(ben.peer_id(), "see you at the bar".into()).await.unwrap();
    let got = delivery_event(&mut events, to_ben, |d| d.state == DeliveryState::Delivered).await;
    assert_eq!((got.delivered_to, got.not_delivered, got.overdue_at), (1, None, None));
    ben.mark_read(RoomId::direct(), vec![to_ben]).await.unwrap();
    let read = delivery_event(&mut events, to_ben, |d| d.state == DeliveryState::Read).await;
    assert_eq!(read.read_by, 1);
    let now = ana.message(&to_ben).await.unwrap().and_then(|m| m.delivery).expect("ours");
    assert_eq!(
        (now.state, now.not_delivered, now.overdue_at),
        (DeliveryState::Read, None, None),
        "no clock once delivered"
    );

    ana.shutdown().await;
    ben.shutdown().await;
}
