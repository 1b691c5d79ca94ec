//! The STUN responder tells a node its address as the relay sees it.

use crate::common;

use std::time::Duration;

use common::*;
use festival_node::relay::stun;
use tokio::net::UdpSocket;

#[tokio::test]
async fn a_binding_request_is_answered_with_the_senders_address() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mapped = stun::query(&socket, relay.stun, Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(mapped, socket.local_addr().unwrap(), "on loopback the reflexive address is the local one");
    assert_eq!(relay.metric("festival_relay_stun_requests_total").await, 1);

    // Garbage gets no answer and is counted; the responder keeps answering.
    socket.send_to(b"not a stun message at all", relay.stun).await.unwrap();
    eventually("the garbage is counted", || async { relay.rejections("stun_malformed").await == 1 }).await;
    let again = stun::query(&socket, relay.stun, Duration::from_secs(5)).await.expect("still answering");
    assert_eq!(again, mapped);
    relay.stop().await;
}
