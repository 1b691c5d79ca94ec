//! Relay pinning from the node's settings (`festival-node run --relay-id`,
//! `NodeConfig::relay_id`): a node pinned to the relay's identity connects;
//! a node pinned to another identity refuses this relay before it sends a
//! proof, and says why in its status.

use crate::common;

use std::time::Duration;

use common::*;
use festival_core::policy::PowerState;
use festival_node::discovery::MdnsHub;
use festival_node::relay::RelayConnection;
use festival_node::runtime::{NodeConfig, NodeHandle, PowerConfig, RelayState};

/// The node's relay state once `done` accepts it (panics after the deadline).
async fn relay_state(node: &NodeHandle, done: impl Fn(&RelayState) -> bool) -> RelayState {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let state = node.status().await.unwrap().relay;
        if done(&state) {
            return state;
        }
        assert!(tokio::time::Instant::now() < deadline, "relay state stuck at {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_connects_only_to_the_relay_it_pinned() {
    // Whole nodes: mDNS and WebRTC sockets too, so only in a private namespace.
    festival_node::netns::require_private_netns();
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    // The relay's id, as an operator reads it from its log or a QR code.
    let relay_id = RelayConnection::connect(&client_config(&relay.url()), &identity()).await.unwrap().relay;
    let before = relay.metric("festival_relay_authenticated_total").await;
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let node_config = |dir: &tempfile::TempDir, name: &str| NodeConfig {
        name: Some(name.into()),
        festival: FESTIVAL.into(),
        mdns: Some(hub.clone()),
        power: PowerConfig::Fixed(PowerState::Mains),
        relay_url: Some(relay.url()),
        ..NodeConfig::new(dir.path().to_owned())
    };

    // Pinned to someone else's key: this relay is refused.
    let impostor_id = identity().peer_id();
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong = NodeHandle::start(NodeConfig { relay_id: Some(impostor_id), ..node_config(&wrong_dir, "Ana") })
        .await
        .expect("node starts");
    let state = relay_state(&wrong, |s| matches!(s, RelayState::Offline { .. })).await;
    let RelayState::Offline { reason, .. } = state else { unreachable!() };
    assert!(reason.contains("expected"), "says the relay is not the pinned one: {reason}");
    assert!(reason.contains(&impostor_id.short()), "{reason}");

    // Pinned to the relay's own key: connected.
    let right_dir = tempfile::tempdir().unwrap();
    let right = NodeHandle::start(NodeConfig { relay_id: Some(relay_id), ..node_config(&right_dir, "Ben") })
        .await
        .expect("node starts");
    relay_state(&right, |s| matches!(s, RelayState::Connected { .. })).await;

    // The refused node never authenticated: only the pinned one did.
    assert_eq!(relay.metric("festival_relay_authenticated_total").await, before + 1);
    assert!(matches!(wrong.status().await.unwrap().relay, RelayState::Offline { .. }), "still refused");
    wrong.shutdown().await;
    right.shutdown().await;
    relay.stop().await;
}
