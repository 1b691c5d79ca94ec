//! Connection caps and idle timeouts: refused with an HTTP status or a close
//! code, counted, and the slots come back.

use crate::common;

use common::*;
use festival_node::relay::wire::close;
use festival_node::relay::{RelayConnection, RelayError};
use festival_relay::RelayConfig;

#[tokio::test]
async fn connections_over_the_caps_are_refused_with_429_or_503() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(RelayConfig { max_connections_per_ip: 2, ..test_config(dir.path()) }).await;
    let cfg = client_config(&relay.url());
    let first = RelayConnection::connect(&cfg, &identity()).await.unwrap();
    let _second = RelayConnection::connect(&cfg, &identity()).await.unwrap();
    let third = RelayConnection::connect(&cfg, &identity()).await.err().expect("a third from one address");
    assert_eq!(third, RelayError::Http(429));
    assert_eq!(relay.rejections("too_many_from_ip").await, 1);
    // A slot comes back when a node leaves.
    first.close().await;
    eventually("the slot is free again", || async { RelayConnection::connect(&cfg, &identity()).await.is_ok() }).await;
    relay.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(RelayConfig { max_connections: 1, ..test_config(dir.path()) }).await;
    let cfg = client_config(&relay.url());
    let _only = RelayConnection::connect(&cfg, &identity()).await.unwrap();
    let full = RelayConnection::connect(&cfg, &identity()).await.err().expect("the relay is full");
    assert_eq!(full, RelayError::Http(503));
    assert_eq!(relay.rejections("too_many_connections").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn a_silent_node_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let mut ws = authed(relay.addr, &identity()).await;
    // Read without ever sending (tungstenite answers pings only when it
    // writes, and we never write): after 3 s the relay gives up on us.
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut ws).await, close::IDLE);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "not before the timeout");
    assert_eq!(relay.rejections("idle").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn a_second_socket_of_one_identity_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let me = identity();
    let mut old = authed(relay.addr, &me).await;
    let _new = authed(relay.addr, &me).await;
    assert_eq!(close_code(&mut old).await, close::REPLACED);
    eventually("one connection remains", || async { relay.metric("festival_relay_connections ").await == 1 }).await;
    relay.stop().await;
}
