//! A flood from one identity is limited (its excess dropped, then its socket
//! closed with 4008) while other nodes chat through the relay as usual.

use crate::common;

use common::*;
use festival_core::{Frame, RoomId};
use festival_node::relay::wire::{close, RelayMsg};
use festival_relay::RelayConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_identity_is_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig { frames_per_sec: 50, frames_burst: 100, flood_close_after: 300, ..test_config(dir.path()) };
    let relay = TestRelay::start(cfg).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path(), "Ana", &relay.url()).await;
    let b = TestNode::start(db.path(), "Ben", &relay.url()).await;
    eventually("both nodes are linked", || async { relay.metric("festival_relay_connections ").await == 2 }).await;

    let flooder = identity();
    let mut ws = authed(relay.addr, &flooder).await;
    let flood = tokio::spawn(async move {
        let prune = RelayMsg::Frame(Frame::Prune { room: RoomId::festival() }.encode());
        for _ in 0..1_500 {
            use futures_util::SinkExt;
            let bytes = prune.encode();
            if ws.send(tokio_tungstenite::tungstenite::Message::Binary(bytes.into())).await.is_err() {
                break;
            }
        }
        close_code(&mut ws).await
    });

    // During the flood, Ana's message reaches Ben through the relay.
    let id = a.send("festival", "the flood does not stop us").await;
    eventually("Ben has Ana's message", || b.has(&id)).await;
    eventually("the relay acknowledged it to Ana", || async { a.acked(&id) }).await;

    assert_eq!(flood.await.unwrap(), close::RATE_LIMITED, "the flooder is closed with 4008");
    assert!(relay.rejections("rate_limited").await >= 300, "each dropped frame is counted");
    assert_eq!(*a.connected.lock().unwrap(), 1, "Ana was never disconnected");
    assert_eq!(*b.connected.lock().unwrap(), 1, "nor was Ben");
    assert_eq!(relay.metric("festival_relay_connections ").await, 2);
    a.stop().await;
    b.stop().await;
    relay.stop().await;
}
