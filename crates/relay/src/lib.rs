//! festival-relay: the relay server of Festival Chat.
//!
//! A relay is a node like any other (festival-core's sync `Node` over its own
//! festival-store SQLite file, driven by festival-node's `Engine`) that
//! nodes reach over a WebSocket instead of a data channel. So it is a
//! mailbox for whoever is offline, a path between nodes that cannot reach
//! each other, a relay for their signaling (so they can try a direct data
//! channel) and a STUN responder (so they learn their server-reflexive
//! address). The wire protocol is in docs/protocol.md, "Relay"; its types
//! are in `festival_engine::wire::relay`, shared with the node-side client.
//!
//! # Layout
//! - [`run`]: the server: takes a bound TCP listener (and optionally a bound
//!   UDP socket for STUN) and a shutdown future, so tests bind port 0 and
//!   run it in-process; the binary (`main.rs`) only parses flags and calls it.
//! - [`config`]: `RelayConfig`, from a TOML file and flags.
//! - [`http`]: the axum router: `/v1/relay`, `/healthz`, `/metrics`;
//!   connection caps before the upgrade.
//! - [`conn`]: one node's socket: authentication, per-identity rate limits,
//!   idle timeout, close codes.
//! - [`hub`]: the task that owns the engine: links, rooms, storage quota,
//!   `Stored` acknowledgements after commit, signaling between nodes.
//! - [`limits`]: connection slots (total, per host; and for sockets not
//!   authenticated yet, total and per host prefix) and per-identity rates.
//! - [`metrics`]: counters and their Prometheus text.
//! - [`stun`]: the RFC 5389 binding responder.
//! - [`tls`]: optional TLS termination (`tls_cert`, `tls_key`): a listener
//!   that hands axum connections already past their TLS handshake.

pub mod cluster;
pub mod config;
mod conn;
mod http;
mod hub;
pub mod limits;
pub mod metrics;
mod stun;
pub mod testing;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use festival_core::{Identity, PeerId};
use festival_engine::wire::relay::MSG_OVERHEAD;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

pub use config::{ConfigError, RelayConfig};
use hub::{Hub, HubIn};
use limits::{Rates, Slots};
use metrics::Metrics;

/// Frames and signals waiting for the hub. Connection tasks wait when it is
/// full, which slows their sockets (TCP backpressure) rather than dropping
/// frames; per-identity rates keep one node from filling it.
const HUB_QUEUE: usize = 4_096;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("relay store: {0}")]
    Store(String),
    #[error("relay I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("relay TLS setup: {0}")]
    Tls(String),
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub cfg: RelayConfig,
    pub metrics: Arc<Metrics>,
    pub slots: Arc<Slots>,
    /// Slots of sockets that have not authenticated yet (also in `slots`).
    pub unauthenticated: Arc<Slots>,
    pub rates: Rates,
    pub hub: mpsc::Sender<HubIn>,
    pub identity: Identity,
    pub relay_id: PeerId,
    pub shutdown: watch::Receiver<bool>,
    /// Largest WebSocket message accepted: one maximal frame in a `RelayMsg`.
    pub max_message: usize,
    /// The STUN port, told to nodes in the welcome.
    pub stun_port: Option<u16>,
}

/// Run the relay on `listener` (and answer STUN on `stun`) until `shutdown`
/// completes; then close every socket (1001, going away), let the hub finish
/// what it has and close the store. Its identity and mailbox live in
/// `cfg.data_dir`. With `cfg.tls_cert` and `cfg.tls_key` the listener speaks
/// TLS only (`wss://`, `https://.../healthz`); they are read before anything
/// else, so a bad certificate stops the relay before it opens its store.
pub async fn run<F>(
    listener: TcpListener,
    stun: Option<UdpSocket>,
    cfg: RelayConfig,
    shutdown: F,
) -> Result<(), RelayError>
where
    F: Future<Output = ()> + Send + 'static,
{
    cfg.check()?;
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key).map_err(RelayError::Tls)?),
        _ => None,
    };
    let metrics = Arc::new(Metrics::default());
    let (hub_tx, hub_rx) = mpsc::channel(HUB_QUEUE);
    let port = listener.local_addr()?.port();
    let instance = cfg.instance.clone().unwrap_or_else(|| default_instance(port));
    let (hub, identity) = Hub::open(&cfg, metrics.clone(), instance).await?;
    let hub_task = tokio::spawn(hub.run(hub_rx));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stun_port = stun.as_ref().and_then(|s| s.local_addr().ok()).map(|a| a.port());
    let stun_task = stun.map(|s| tokio::spawn(stun::serve(s, metrics.clone(), stop_rx.clone())));
    let shared = Arc::new(Shared {
        slots: Slots::new(cfg.max_connections, cfg.max_connections_per_ip),
        unauthenticated: Slots::unauthenticated(cfg.max_unauthenticated, cfg.max_unauthenticated_per_prefix),
        rates: Rates::new(&cfg),
        max_message: cfg.max_frame_bytes + MSG_OVERHEAD,
        stun_port,
        relay_id: identity.peer_id(),
        identity,
        hub: hub_tx,
        shutdown: stop_rx.clone(),
        metrics,
        cfg,
    });
    let handshake_deadline = shared.cfg.auth_timeout();
    tracing::info!(addr = ?listener.local_addr().ok(), tls = tls.is_some(), relay = %shared.relay_id, "relay listening");
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let app = http::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut stop_signal = stop_rx;
    let graceful = async move { stopped(&mut stop_signal).await };
    let served = match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(graceful).await,
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls, shared.metrics.clone(), handshake_deadline)?;
            // `tap_io` only so that axum's `ConnectInfo<SocketAddr>` applies:
            // axum implements it for its own listeners and for tapped ones.
            axum::serve(listener.tap_io(|_| {}), app).with_graceful_shutdown(graceful).await
        }
    };
    // Connection tasks see the same signal, close their sockets and drop
    // their share of the hub's inbox; the hub then drains it and closes the store.
    drop(shared);
    if let Some(t) = stun_task {
        let _ = t.await;
    }
    let _ = hub_task.await;
    served?;
    Ok(())
}

/// Resolves once the relay is shutting down (or the signal is gone).
/// An instance's name when none is given: the host name and the port.
fn default_instance(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "relay".to_owned());
    format!("{host}:{port}")
}

pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it before any other await.
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}
