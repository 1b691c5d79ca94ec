//! LAN discovery over mDNS: who else at this festival is on this Wi-Fi.
//!
//! # Shape
//! - [`MdnsHub`]: one per process. It owns the only mdns-sd `ServiceDaemon`
//!   and the only `browse` of [`SERVICE_TYPE`], and fans every record change
//!   out to the local nodes. mdns-sd allows one browse per type per daemon (a
//!   second `browse` silently orphans the first receiver) and one daemon per
//!   process is the rule, yet tests run several nodes in one process: hence a
//!   hub that callers share ([`MdnsHub::new`] and clone it, or the lazily
//!   created process-wide [`MdnsHub::shared`]).
//! - [`Discovery`]: one per node, from [`MdnsHub::register`]. It advertises
//!   the node and yields [`DiscoveryEvent`]s about *other* peers of the *same*
//!   festival: each peer `Found` once, `Updated` when its addresses, port or
//!   version change, `Lost` when it leaves.
//! - `hub`: the daemon, the pump threads and the shared snapshot;
//!   `record`: our TXT keys (`id`, `v`, `fest`, `port`) and a defensive parser;
//!   `table`: the per-node dedup state (pure, unit-tested).
//!
//! # What mdns-sd reports and what we make of it
//! - `ServiceResolved`: sent on first resolution and again whenever a record
//!   of the instance changes. Parsed per node: `Found`, `Updated`, nothing (no
//!   change), or ignored and counted by [`IgnoreReason`].
//! - `ServiceRemoved`: sent for a goodbye (TTL 0, honoured after 1 s) and for
//!   expiry (SRV/A records live 120 s; if refresh queries go unanswered the
//!   instance is removed). Both become `Lost`. [`Discovery::verify`] cuts the
//!   wait when a link to a peer fails (RFC 6762 §10.4).
//! - `DaemonEvent::NameChange` (conflict renaming), `Error`, `IpAdd`/`IpDel`:
//!   logged and counted in [`HubStats`]; they change no peer state, because
//!   peers are keyed by the TXT `id`, not by instance name.
//!
//! # Start-up latency
//! Records go out without RFC 6762 probing (names come from unique PeerIds,
//! see [`MdnsHub::register`]), so every node already listening sees a new
//! one within milliseconds. A node that starts *just after* a peer announced
//! waits longer: mdns-sd multicasts a record at most once a second per
//! interface (RFC 6762 §6), announcements included, so the peer's answer to
//! our first query is held back until its second announcement ~1.1 s after
//! the first. No re-query or re-announce can beat that limit (and a second
//! `browse` is not allowed), so none is sent. Instead the peer, which heard
//! the newcomer's announcement at once, dials it when the newcomer's id is
//! the lower one and no dial came within 50 ms (a knock: see
//! `festival_core::mesh`); when the newcomer's id is the higher, it dials as
//! soon as it hears the peer, and the peer's own query does not wait. The hub
//! browses from the moment it starts, so nodes in one process never hit
//! this.
//!
//! A TXT record is a claim, nothing more: the signed handshake in `signaling`
//! proves who is at the other end.

mod hub;
mod record;
mod table;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use festival_core::PeerId;
use tokio::sync::broadcast;

use hub::HubEvent;
pub use hub::{HubStats, MdnsHub};
pub use record::{
    host_name, instance_name, AddrScope, IgnoreReason, IgnoredCounts, MAX_FESTIVAL_LEN, TXT_FESTIVAL, TXT_ID, TXT_PORT,
    TXT_POWERED, TXT_VERSION,
};

/// The DNS-SD service type every Festival Chat node advertises and browses.
pub const SERVICE_TYPE: &str = "_festival-chat._udp.local.";

/// How long `Discovery::shutdown` waits for the daemon to confirm the goodbye.
/// The daemon answers within a poll cycle; more than this means it is stuck.
const UNREGISTER_DEADLINE: Duration = Duration::from_secs(2);
/// How long a peer has to answer a `verify` before its records are dropped.
/// mdns-sd queries at once and again 1 s later; a live peer on a LAN answers
/// each within milliseconds, so 3 s is ample and forgets a phone that walked
/// away 7 s sooner than RFC 6762's suggested 10 s.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(3);

/// Something changed about a peer of our festival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A peer appeared. Reported once until it is `Lost`.
    Found { peer: PeerId, addrs: Vec<IpAddr>, port: u16, version: u8, powered: bool },
    /// A known peer's addresses (or port, version or power) changed.
    Updated { peer: PeerId, addrs: Vec<IpAddr>, port: u16, version: u8, powered: bool },
    /// The peer said goodbye, or its records expired.
    Lost { peer: PeerId },
}

impl DiscoveryEvent {
    pub fn peer(&self) -> PeerId {
        match self {
            Self::Found { peer, .. } | Self::Updated { peer, .. } | Self::Lost { peer } => *peer,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("could not start the mDNS daemon")]
    Start(#[source] mdns_sd::Error),
    #[error("could not start an mDNS event thread")]
    Thread(#[source] std::io::Error),
    #[error("could not select the network interfaces for mDNS")]
    Interfaces(#[source] mdns_sd::Error),
    #[error("an interface name is empty")]
    EmptyInterfaceName,
    #[error("could not browse for {SERVICE_TYPE}")]
    Browse(#[source] mdns_sd::Error),
    #[error("the shared mDNS hub runs on interfaces {running:?}, not {requested:?}")]
    HubConfigMismatch { running: Vec<String>, requested: Vec<String> },
    #[error("the mDNS hub has been shut down")]
    HubStopped,
    #[error("festival id {festival:?} cannot be advertised: {reason}")]
    InvalidFestival { festival: String, reason: &'static str },
    #[error("the signaling port must not be 0")]
    InvalidPort,
    #[error("peer {0:?} is already registered on this hub")]
    AlreadyRegistered(PeerId),
    #[error("could not register the mDNS service")]
    Register(#[source] mdns_sd::Error),
    #[error("could not unregister the mDNS service")]
    Unregister(#[source] mdns_sd::Error),
    #[error("no record is known for peer {0:?}")]
    UnknownPeer(PeerId),
    #[error("could not ask mDNS to verify a peer")]
    Verify(#[source] mdns_sd::Error),
    #[error("{what} did not finish within {after:?}")]
    Timeout { what: &'static str, after: Duration },
}

/// How often the addresses we dial are re-read from our interfaces, at most
/// (once per received record, when this much has passed).
const SCOPE_REFRESH: Duration = Duration::from_secs(5);

/// The addresses we would dial on `interfaces` (empty: all); loopback mode
/// if they cannot be read, which refuses every LAN address rather than
/// dialing any.
fn local_scope(interfaces: &[String]) -> record::AddrScope {
    record::AddrScope::local(interfaces).unwrap_or_else(|e| {
        tracing::warn!(%e, "could not read the interfaces' addresses; dialing loopback only");
        record::AddrScope::loopback()
    })
}

/// What a node advertises about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub peer: PeerId,
    pub festival: String,
    /// TCP port of this node's signaling endpoint.
    pub port: u16,
    /// On mains power (TXT `pw`); see [`Discovery::set_powered`].
    pub powered: bool,
}

/// One node's presence on the LAN and its view of the other peers.
///
/// Dropping it withdraws the record without waiting; [`Discovery::shutdown`]
/// waits for the daemon to confirm.
pub struct Discovery {
    hub: MdnsHub,
    me: PeerId,
    advert: Advert,
    fullname: String,
    table: table::PeerTable,
    /// When the table's [`record::AddrScope`] was last read from our
    /// interfaces (a phone joins the Wi-Fi after the app started).
    scope_at: std::time::Instant,
    events: Option<broadcast::Receiver<HubEvent>>,
    pending: VecDeque<DiscoveryEvent>,
    closed: bool,
}

impl Discovery {
    pub fn peer(&self) -> PeerId {
        self.me
    }

    /// Our instance's full DNS-SD name (`fc-<16 hex>._festival-chat._udp.local.`).
    pub fn instance(&self) -> &str {
        &self.fullname
    }

    pub fn hub(&self) -> &MdnsHub {
        &self.hub
    }

    /// Records ignored so far, by reason.
    pub fn ignored(&self) -> &IgnoredCounts {
        self.table.ignored()
    }

    /// The peers currently present (found and not lost).
    pub fn peers(&self) -> Vec<PeerId> {
        self.table.peers().collect()
    }

    /// The next change, or `None` once the hub has stopped. Cancel-safe: use
    /// it in `select!`.
    pub async fn recv(&mut self) -> Option<DiscoveryEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let events = self.events.as_mut()?;
            let received = tokio::select! {
                r = events.recv() => Some(r),
                // Our interfaces are looked at even when no record comes.
                _ = tokio::time::sleep(SCOPE_REFRESH) => None,
            };
            if self.scope_at.elapsed() >= SCOPE_REFRESH {
                self.refresh_scope();
            }
            match received {
                None => {}
                Some(Ok(HubEvent::Resolved(service))) => self.pending.extend(self.table.resolved(&service)),
                Some(Ok(HubEvent::Removed(fullname))) => self.pending.extend(self.table.removed(&fullname)),
                Some(Err(broadcast::error::RecvError::Lagged(missed))) => {
                    tracing::warn!(node = ?self.me, missed, "discovery fell behind; resyncing");
                    self.resync();
                }
                Some(Err(broadcast::error::RecvError::Closed)) => self.events = None,
            }
        }
    }

    /// Re-read the addresses we would dial from our interfaces; when they
    /// changed (the phone joined the Wi-Fi after the app started, or moved
    /// to another network), read every record again: mdns-sd reports a
    /// record only when it changes, so one refused under the old scope
    /// would otherwise stay refused.
    fn refresh_scope(&mut self) {
        self.scope_at = std::time::Instant::now();
        let scope = local_scope(self.hub.interfaces());
        if self.table.set_scope(scope) {
            tracing::info!(node = ?self.me, "network addresses changed; reading the peers' records again");
            self.resync();
        }
    }

    /// Start over from the hub's snapshot of every record.
    fn resync(&mut self) {
        match self.hub.subscribe() {
            Some((events, snapshot)) => {
                self.events = Some(events);
                self.pending.extend(self.table.sync(&snapshot));
            }
            None => self.events = None,
        }
    }

    /// Re-announces our record with a new `pw` (power) value when it
    /// changed, so peers can prefer powered nodes for their links.
    pub fn set_powered(&mut self, powered: bool) -> Result<(), DiscoveryError> {
        if self.advert.powered == powered || self.closed {
            return Ok(());
        }
        self.advert.powered = powered;
        let info = hub::service_info(&self.advert)?;
        self.hub.daemon().register(info).map_err(DiscoveryError::Register)
    }

    /// Asks the LAN whether `peer` is still there (RFC 6762 §10.4): call it
    /// when a link to the peer fails. If nobody answers within
    /// [`VERIFY_TIMEOUT`], its records are dropped and `Lost` follows, instead
    /// of after the 120 s record lifetime.
    pub fn verify(&self, peer: &PeerId) -> Result<(), DiscoveryError> {
        let fullname = self.table.instance_of(peer).ok_or(DiscoveryError::UnknownPeer(*peer))?;
        self.hub.daemon().verify(fullname.to_owned(), VERIFY_TIMEOUT).map_err(DiscoveryError::Verify)
    }

    /// Withdraws our record (a goodbye, so peers report `Lost` within about a
    /// second) and waits for the daemon to confirm.
    pub async fn shutdown(mut self) -> Result<(), DiscoveryError> {
        self.closed = true;
        self.events = None;
        let result = hub::unregister(self.hub.daemon(), &self.fullname).await;
        self.hub.release(&self.me);
        tracing::debug!(node = ?self.me, "unregistered from mDNS");
        result
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.hub.daemon().unregister(&self.fullname);
            self.hub.release(&self.me);
        }
    }
}
