//! What the node tests of several real nodes on one mDNS hub share.
#![allow(dead_code)] // each test binary uses a part of it

use std::time::Duration;

use festival_core::policy::PowerState;
use festival_core::PeerId;
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{NodeConfig, NodeHandle, PowerConfig};

/// How long a condition may take: links come up over mDNS and WebRTC.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A node on mains power in `dir`, on `hub`, named `name`, given the
/// festival's organiser key (or none).
pub async fn start(hub: &MdnsHub, dir: &std::path::Path, name: &str, organiser: Option<PeerId>) -> NodeHandle {
    start_with(hub, dir, name, |cfg| NodeConfig { organiser, ..cfg }).await
}

/// [`start`], with the config changed by `change`.
pub async fn start_with(
    hub: &MdnsHub,
    dir: &std::path::Path,
    name: &str,
    change: impl FnOnce(NodeConfig) -> NodeConfig,
) -> NodeHandle {
    let cfg = NodeConfig {
        name: Some(name.to_owned()),
        mdns: Some(hub.clone()),
        power: PowerConfig::Fixed(PowerState::Mains),
        ..NodeConfig::new(dir.to_owned())
    };
    NodeHandle::start(change(cfg)).await.expect("node starts")
}

/// Waits until `cond` holds, checking every 20 ms; fails after [`DEADLINE`].
pub async fn until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let ok = tokio::time::timeout(DEADLINE, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "{what} within {DEADLINE:?}");
}

/// Ana, Ben and Cy on `hub`, in `dirs` (three, kept by the caller), once
/// each has a link.
pub async fn three_linked(hub: &MdnsHub, dirs: &[tempfile::TempDir]) -> (NodeHandle, NodeHandle, NodeHandle) {
    let ana = start(hub, dirs[0].path(), "Ana", None).await;
    let ben = start(hub, dirs[1].path(), "Ben", None).await;
    let cy = start(hub, dirs[2].path(), "Cy", None).await;
    for n in [&ana, &ben, &cy] {
        until("linked", async || n.status().await.unwrap().links >= 1).await;
    }
    (ana, ben, cy)
}
