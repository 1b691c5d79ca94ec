//! Oversized and malformed input from an authenticated node: refused with a
//! clear close code (or a `Refused` notice for a bad core frame), counted by
//! reason, and nobody else notices.

use crate::common;

use common::*;
use festival_core::frame::MAX_FRAME_BYTES;
use festival_node::relay::wire::{close, RelayMsg};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn an_oversized_message_is_closed_with_1009() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let mut ws = authed(relay.addr, &identity()).await;
    send(&mut ws, &RelayMsg::Frame(vec![1; MAX_FRAME_BYTES + 100])).await;
    assert_eq!(close_code(&mut ws).await, close::TOO_BIG);
    assert_eq!(relay.rejections("frame_oversized").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn undecodable_and_text_messages_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;

    let mut garbage = authed(relay.addr, &identity()).await;
    garbage.send(Message::Binary(vec![0xff, 0xff, 0xff].into())).await.unwrap();
    assert_eq!(close_code(&mut garbage).await, close::MALFORMED);

    // A node may not send what only the relay sends.
    let mut impostor = authed(relay.addr, &identity()).await;
    send(&mut impostor, &RelayMsg::Stored { ids: vec![] }).await;
    assert_eq!(close_code(&mut impostor).await, close::MALFORMED);

    let mut text = authed(relay.addr, &identity()).await;
    text.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(close_code(&mut text).await, close::UNSUPPORTED_DATA);

    assert_eq!(relay.rejections("relay_malformed").await, 2);
    assert_eq!(relay.rejections("unsupported_data").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn a_malformed_core_frame_is_refused_and_the_link_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let mut ws = authed(relay.addr, &identity()).await;
    // Version 1, then bytes that are no Frame.
    send(&mut ws, &RelayMsg::Frame(vec![1, 200, 200, 200])).await;
    // The relay says why, and keeps talking: its hello (sent at link-up) and
    // the notice both arrive, and no close.
    let mut refused = None;
    while refused.is_none() {
        match next_msg(&mut ws).await.expect("the link stays up") {
            RelayMsg::Refused { code } => refused = Some(code),
            RelayMsg::Frame(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused.as_deref(), Some("frame_malformed"));
    assert_eq!(relay.rejections("frame_malformed").await, 1);
    // Still served: a well-formed frame goes through without a close.
    let hello = festival_core::Frame::Prune { room: festival_core::RoomId::festival() }.encode();
    send(&mut ws, &RelayMsg::Frame(hello)).await;
    eventually("the frames are counted", || async {
        relay.metric("festival_relay_frames_total{dir=\"in\"}").await == 2
    })
    .await;
    relay.stop().await;
}
