//! TLS termination in the relay (`tls_cert`, `tls_key`) and `wss://` in the
//! node's client: a node that trusts the relay's CA chats over `wss://`; one
//! that does not gets a typed, permanent TLS error; garbage on the TLS port
//! is counted and bothers nobody. Certificates come from a CA made here
//! (rcgen) for 127.0.0.1; nothing leaves loopback.

use crate::common;

use std::time::Duration;

use common::*;
use festival_node::relay::{RelayClient, RelayClientConfig, RelayConnection, RelayError, RelayEvent};
use festival_relay::RelayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HANDSHAKE: &str = "festival_relay_rejections_total{reason=\"tls_handshake\"}";

/// A client of the TLS relay that trusts our CA, as `--relay-ca` makes it.
fn trusting(relay: &TestRelay, ca: &TestCa) -> RelayClientConfig {
    RelayClientConfig { extra_roots: vec![ca.ca_der.clone()], ..client_config(&relay.url()) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_trust_the_relays_ca_chat_over_wss() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    // start_tls waits for /healthz over HTTPS.
    let relay = TestRelay::start_tls(ca.relay_config(test_config(dir.path())), &ca).await;
    assert!(relay.url().starts_with("wss://127.0.0.1:"), "{}", relay.url());

    let me = identity();
    let conn = RelayConnection::connect(&trusting(&relay, &ca), &me).await.expect("authenticated over wss");
    assert_eq!(conn.welcome.peer, me.peer_id());
    conn.close().await;

    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start_with(da.path(), "Ana", trusting(&relay, &ca)).await;
    let b = TestNode::start_with(db.path(), "Ben", trusting(&relay, &ca)).await;
    let hi = a.send("festival", "hi Ben, over TLS").await;
    eventually("Ben has Ana's message", || b.has(&hi)).await;
    let back = b.dm(a.id, "hi Ana, sealed and in TLS").await;
    eventually("Ana has Ben's DM", || a.has(&back)).await;
    eventually("the relay acknowledged Ana's message", || async { a.acked(&hi) }).await;
    // /metrics answers over HTTPS too, and every handshake went through.
    assert!(relay.metric("festival_relay_authenticated_total").await >= 3);
    assert_eq!(relay.metric(HANDSHAKE).await, 0);
    a.stop().await;
    b.stop().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_node_without_the_ca_gets_a_permanent_tls_error() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start_tls(ca.relay_config(test_config(dir.path())), &ca).await;

    let err = RelayConnection::connect(&client_config(&relay.url()), &identity()).await.err().expect("refused");
    assert!(matches!(&err, RelayError::Tls(why) if why.contains("UnknownIssuer") || why.contains("issuer")), "{err}");
    assert!(err.is_permanent(), "a certificate does not fix itself: {err:?}");
    assert_eq!(err.code(), "tls");
    // Our client aborted the handshake; the relay counts that as well.
    eventually("the relay counted the failed handshake", || async { relay.metric(HANDSHAKE).await == 1 }).await;

    // The client task reports it and waits its longest backoff.
    let cfg = client_config(&relay.url());
    let backoff_max = cfg.backoff_max;
    let (handle, mut events) = RelayClient::spawn(cfg, identity());
    let ev = tokio::time::timeout(DEADLINE, events.recv()).await.expect("an event in time").expect("client runs");
    match ev {
        RelayEvent::Disconnected { session: None, error: RelayError::Tls(_), retry_in, .. } => {
            assert_eq!(retry_in, Some(backoff_max));
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    handle.shutdown().await;

    // wss:// to a relay that speaks plain ws:// is a TLS error too, not a hang.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = TestRelay::start(test_config(plain_dir.path())).await;
    let url = format!("wss://{}", plain.addr);
    let err = RelayConnection::connect(&client_config(&url), &identity()).await.err().expect("refused");
    assert!(matches!(err, RelayError::Tls(_)) && err.is_permanent(), "{err:?}");
    plain.stop().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_tls_port_is_counted_and_disturbs_no_one() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    // A handshake deadline well past the test: a stalled client stays
    // pending while others connect, rather than being timed out first.
    let cfg = RelayConfig { auth_timeout_secs: 60, ..ca.relay_config(test_config(dir.path())) };
    let relay = TestRelay::start_tls(cfg, &ca).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start_with(da.path(), "Ana", trusting(&relay, &ca)).await;
    eventually("Ana is connected", || async { *a.connected.lock().unwrap() == 1 }).await;

    // Plain HTTP to the TLS port: no /healthz for it, the handshake fails.
    let answer = http_get(&relay.http("/healthz")).await;
    assert!(!matches!(answer, Some((200, _))), "no /healthz without TLS: {answer:?}");
    // Bytes that are no TLS record at all; the relay hangs up.
    let mut junk = TcpStream::connect(relay.addr).await.unwrap();
    junk.write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7]).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, junk.read_to_end(&mut rest)).await.expect("the relay hangs up");
    assert!(read.is_err() || !rest.starts_with(b"HTTP"), "no HTTP answer without TLS: {rest:?}");
    // A plain ws:// client gets no WebSocket either.
    let err = RelayConnection::connect(&client_config(&format!("ws://{}", relay.addr)), &identity()).await.err();
    assert!(err.is_some_and(|e| !matches!(e, RelayError::Tls(_))), "plain ws is refused as a connection failure");
    eventually("three failed handshakes are counted", || async { relay.metric(HANDSHAKE).await == 3 }).await;

    // A client that opens TCP and says nothing: it holds one pending
    // handshake, and Ben connects and chats all the same.
    let stalled = TcpStream::connect(relay.addr).await.unwrap();
    let b = TestNode::start_with(db.path(), "Ben", trusting(&relay, &ca)).await;
    let hi = a.send("festival", "still here?").await;
    eventually("Ben has Ana's message", || b.has(&hi)).await;
    let back = b.send("festival", "yes, through the noise").await;
    eventually("Ana has Ben's message", || a.has(&back)).await;
    assert_eq!(relay.metric(HANDSHAKE).await, 3, "the stalled client is still pending");
    drop(stalled);
    eventually("the stalled handshake is counted once it hangs up", || async { relay.metric(HANDSHAKE).await == 4 })
        .await;

    // Ana's session was never interrupted.
    assert_eq!(*a.connected.lock().unwrap(), 1, "Ana kept her first session");
    assert_eq!(relay.metric("festival_relay_connections ").await, 2);
    a.stop().await;
    b.stop().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_stalled_handshake_is_dropped_at_the_deadline() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    // test_config: one second to authenticate, and as long for TLS.
    let relay = TestRelay::start_tls(ca.relay_config(test_config(dir.path())), &ca).await;
    let mut stalled = TcpStream::connect(relay.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(DEADLINE, stalled.read(&mut buf)).await.expect("the relay hangs up in time");
    assert!(matches!(n, Ok(0) | Err(_)), "closed, not answered: {n:?}");
    eventually("the timed-out handshake is counted", || async { relay.metric(HANDSHAKE).await == 1 }).await;
    relay.stop().await;
}

#[tokio::test]
async fn the_binary_serves_tls_from_its_flags() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--tls-cert".as_ref(), ca.cert.as_os_str(), "--tls-key".as_ref(), ca.key.as_os_str()];
    // start_with checks the printed `"tls":true` and waits for HTTPS /healthz.
    let relay = RelayProcess::start_with(dir.path(), &flags, Some(ca.client_config())).await;
    let cfg =
        RelayClientConfig { extra_roots: vec![ca.ca_der.clone()], ..client_config(&format!("wss://{}", relay.addr)) };
    RelayConnection::connect(&cfg, &identity()).await.expect("authenticated over wss");
    relay.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn festival_node_run_with_a_relay_ca_file_connects_over_wss() {
    use festival_core::policy::PowerState;
    use festival_node::discovery::MdnsHub;
    use festival_node::runtime::{NodeConfig, NodeHandle, PowerConfig, RelayState, StartError};
    // A whole node: mDNS and WebRTC sockets too, so only in a private namespace.
    festival_node::netns::require_private_netns();
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start_tls(ca.relay_config(test_config(dir.path())), &ca).await;
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let node_dir = tempfile::tempdir().unwrap();
    let cfg = NodeConfig {
        name: Some("Ana".into()),
        festival: FESTIVAL.into(),
        mdns: Some(hub.clone()),
        power: PowerConfig::Fixed(PowerState::Mains),
        relay_url: Some(relay.url()),
        relay_ca: Some(ca.ca_pem.clone()),
        ..NodeConfig::new(node_dir.path().to_owned())
    };

    let missing = NodeConfig { relay_ca: Some(node_dir.path().join("no-such-ca.pem")), ..cfg.clone() };
    let err = NodeHandle::start(missing).await.err().expect("an unreadable CA file stops the start");
    assert!(matches!(err, StartError::RelayCa(_)), "{err}");

    let node = NodeHandle::start(cfg).await.expect("node starts");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match node.status().await.unwrap().relay {
            RelayState::Connected { url } => break assert_eq!(url, relay.url()),
            other => assert!(tokio::time::Instant::now() < deadline, "not connected over wss: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.shutdown().await;
    relay.stop().await;
}
