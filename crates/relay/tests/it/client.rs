//! The node-side client keeps its link: after the relay goes away it
//! reports the loss and reconnects by itself, as a new session, once the
//! relay is back.

use crate::common;

use common::*;
use festival_node::relay::{RelayClient, RelayEvent};
use festival_relay::RelayConfig;
use tokio::net::TcpListener;

#[tokio::test]
async fn the_client_reconnects_with_a_new_session_after_the_relay_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let addr = relay.addr;
    let (handle, mut events) = RelayClient::spawn(client_config(&relay.url()), identity());
    let first = loop {
        if let RelayEvent::Connected { session, .. } = next(&mut events).await {
            break session;
        }
    };
    relay.stop().await;
    loop {
        if let RelayEvent::Disconnected { session, retry_in, .. } = next(&mut events).await {
            assert_eq!(session, Some(first));
            assert!(retry_in.is_some(), "it will retry");
            break;
        }
    }
    // The relay comes back on the same address and data dir.
    let listener = TcpListener::bind(addr).await.expect("the port is free again");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = RelayConfig { ..test_config(dir.path()) };
    let task = tokio::spawn(festival_relay::run(listener, None, cfg, async move {
        let _ = rx.await;
    }));
    let second = loop {
        if let RelayEvent::Connected { session, .. } = next(&mut events).await {
            break session;
        }
    };
    assert!(second > first, "a new session, so the core sees a new link");
    handle.shutdown().await;
    loop {
        if let RelayEvent::Disconnected { retry_in: None, .. } = next(&mut events).await {
            break;
        }
    }
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

async fn next(events: &mut tokio::sync::mpsc::Receiver<RelayEvent>) -> RelayEvent {
    tokio::time::timeout(DEADLINE, events.recv()).await.expect("an event in time").expect("client runs")
}

#[tokio::test]
async fn pongs_keep_a_quiet_link_up() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let mut cfg = client_config(&relay.url());
    // Silence is judged after three keepalives (0.3 s): only the relay's
    // pongs arrive that often (its own frames come once a second at most).
    cfg.keepalive = std::time::Duration::from_millis(100);
    let (handle, mut events) = RelayClient::spawn(cfg, identity());
    loop {
        if let RelayEvent::Connected { .. } = next(&mut events).await {
            break;
        }
    }
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        loop {
            if let RelayEvent::Disconnected { error, .. } = next(&mut events).await {
                return error;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "the link dropped: {:?}", quiet.ok());
    handle.shutdown().await;
    relay.stop().await;
}

/// Issue 12's "nodes know several relays": given two instances, the
/// client keeps one session, says which, and moves to the other when its
/// instance dies; an instance that is down at the start is passed over.
#[tokio::test]
async fn the_client_fails_over_to_another_instance_and_says_which() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestRelay::start(test_config(dir_a.path())).await;
    let b = TestRelay::start(test_config(dir_b.path())).await;
    // Nothing listens here: the first place in the list is down.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("ws://{}", gone.local_addr().unwrap());
    drop(gone);
    let mut cfg = client_config(&down);
    cfg.fallbacks = vec![a.url(), b.url()];
    let (a_url, b_url) = (a.url(), b.url());
    let (handle, mut events) = RelayClient::spawn(cfg, identity());
    let connected = |ev| if let RelayEvent::Connected { session, via, .. } = ev { Some((session, via)) } else { None };
    let (first, via) = loop {
        match next(&mut events).await {
            RelayEvent::Disconnected { round_over, via, .. } => {
                // The dead one: moving on is not a failed round (the
                // node's circuit breaker counts rounds).
                assert!(!round_over && via == down, "{via}");
            }
            ev => {
                if let Some(c) = connected(ev) {
                    break c;
                }
            }
        }
    };
    assert_eq!(via, a_url, "the first instance that is up");
    a.stop().await;
    let (second, via) = loop {
        if let Some(c) = connected(next(&mut events).await) {
            break c;
        }
    };
    assert!(second > first);
    assert_eq!(via, b_url, "the next instance, while the first is down");
    handle.shutdown().await;
    b.stop().await;
}

#[test]
fn several_relay_urls_are_one_list_in_order_each_once() {
    use festival_node::relay::RelayClientConfig;
    let cfg = RelayClientConfig::several(" wss://a.example, wss://b.example wss://a.example\twss://c.example ", "f");
    assert_eq!(cfg.url, "wss://a.example");
    assert_eq!(cfg.urls(), vec!["wss://a.example", "wss://b.example", "wss://c.example"]);
}
