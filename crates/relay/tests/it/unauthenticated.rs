//! Sockets that have not authenticated yet: a host prefix (an IPv4 address
//! here; an IPv6 /56, unit-tested in `limits`) holds at most its share of
//! them, the relay at most its total; silent ones are closed at the auth
//! deadline and their slots come back. Other hosts, and authenticated
//! sockets, are not held up. 127.0.0.2.. play other hosts over loopback.

use crate::common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use festival_node::relay::wire::close;
use festival_node::relay::RelayConnection;
use festival_relay::RelayConfig;

const PER_PREFIX: &str = "too_many_unauthenticated_from_prefix";
const OPEN_NOW: &str = "festival_relay_unauthenticated ";

fn host(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_from_one_prefix_take_only_their_share_until_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig { max_unauthenticated_per_prefix: 4, auth_timeout_secs: 3, ..test_config(dir.path()) };
    let relay = TestRelay::start(cfg).await;
    let mallory = host(2);

    let opened = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(raw_from(relay.addr, mallory).await.expect("within the prefix's share").0);
    }
    assert_eq!(raw_from(relay.addr, mallory).await.err(), Some(429), "a fifth from the same prefix");
    assert_eq!(relay.rejections(PER_PREFIX).await, 1);
    assert_eq!(relay.metric(OPEN_NOW).await, 4);

    // A node elsewhere is not held up by them.
    let node = RelayConnection::connect(&client_config(&relay.url()), &identity()).await.expect("another host");
    node.close().await;

    // The deadline closes every silent socket, not before it.
    for ws in &mut silent {
        assert_eq!(close_code(ws).await, close::AUTH_REQUIRED);
    }
    assert!(opened.elapsed() >= Duration::from_secs(2), "closed at the deadline, not before: {:?}", opened.elapsed());
    eventually("the unauthenticated slots are free", || async { relay.metric(OPEN_NOW).await == 0 }).await;

    // Then the same prefix connects again; an authenticated socket holds no
    // unauthenticated slot, so more nodes than the share fit behind it.
    let mut nodes = Vec::new();
    for _ in 0..6 {
        nodes.push(authed_from(relay.addr, mallory, &identity()).await.expect("authenticated from the prefix"));
    }
    eventually("six nodes connected", || async { relay.metric("festival_relay_connections ").await == 6 }).await;
    assert_eq!(relay.metric(OPEN_NOW).await, 0);
    assert_eq!(relay.rejections(PER_PREFIX).await, 1, "no more refusals");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_holds_few_unauthenticated_sockets_in_all() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig { max_unauthenticated: 3, auth_timeout_secs: 3, ..test_config(dir.path()) };
    let relay = TestRelay::start(cfg).await;
    let mut silent = Vec::new();
    for n in 2..5 {
        silent.push(raw_from(relay.addr, host(n)).await.expect("under the total").0);
    }
    assert_eq!(raw_from(relay.addr, host(5)).await.err(), Some(503), "the relay is at its total");
    assert_eq!(relay.rejections("too_many_unauthenticated").await, 1);
    // Authenticated sockets were never part of that total: after the
    // deadline the slots are back and nodes connect.
    for ws in &mut silent {
        assert_eq!(close_code(ws).await, close::AUTH_REQUIRED);
    }
    eventually("a node connects once the silent sockets are gone", || async {
        RelayConnection::connect(&client_config(&relay.url()), &identity()).await.is_ok()
    })
    .await;
    relay.stop().await;
}
