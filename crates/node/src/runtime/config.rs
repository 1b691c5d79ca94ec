//! How a node is set up.

use std::path::PathBuf;

use festival_core::policy::PowerState;
use festival_core::PeerId;

use crate::discovery::{DiscoveryError, MdnsHub};
use crate::engine::EngineError;
use crate::local::LocalError;
use crate::webrtc::RtcError;

/// Where power readings come from.
#[derive(Clone, Debug, Default)]
pub enum PowerConfig {
    /// Read the battery (desktop); no battery means mains.
    #[default]
    Auto,
    /// A fixed state (`--power`), e.g. a venue box or a test.
    Fixed(PowerState),
}

#[derive(Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// Display name: required on first start (creates the identity), renames
    /// the node if it differs later.
    pub name: Option<String>,
    /// Nodes only link with nodes of the same festival.
    pub festival: String,
    /// Network interfaces for mDNS and WebRTC; empty means all.
    pub interfaces: Vec<String>,
    /// TCP port for signaling (0: any free port; it is advertised via mDNS).
    pub signaling_port: u16,
    /// UDP port for WebRTC (0: any free port).
    pub udp_port: u16,
    /// Overrides the power policy's peer limit.
    pub peer_limit: Option<usize>,
    pub power: PowerConfig,
    /// Share an mDNS hub (several nodes in one process); default: the
    /// process-wide one.
    pub mdns: Option<MdnsHub>,
    /// Offer loopback candidates even when other interfaces exist (tests that
    /// put several nodes on one host).
    pub loopback_candidates: bool,
    /// The relay to use when direct paths fail (`wss://...`); `None`: LAN
    /// only. Several instances of it: their URLs separated by spaces or
    /// commas, tried in turn (see `RelayClientConfig::several`).
    pub relay_url: Option<String>,
    /// A PEM file of CA certificates trusted for the relay's `wss://` on top
    /// of the compiled-in roots (a self-hosted relay's own CA). Read at start.
    pub relay_ca: Option<PathBuf>,
    /// The relay's identity, pinned: a relay that cannot prove this key (its
    /// signed welcome) is refused. `None`: any relay that proves its key.
    pub relay_id: Option<PeerId>,
    /// The festival's organiser key: the only author whose announcements
    /// this node takes, carries and shows. `None`: it takes none.
    pub organiser: Option<PeerId>,
    /// The store's budget and the festival's message lifetime.
    pub retention: crate::retention::Retention,
    /// The core's clocks (see [`crate::clock`]): the system's, or a test's
    /// whose wall clock jumps.
    pub clock: crate::clock::Clock,
    /// How long a DM of ours may go unacknowledged by its recipient before
    /// it shows "not delivered yet" ([`super::DELIVERY_TIMEOUT_MS`]; tests
    /// set a shorter one).
    pub delivery_timeout_ms: u64,
}

impl NodeConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            name: None,
            festival: DEFAULT_FESTIVAL.to_owned(),
            interfaces: Vec::new(),
            signaling_port: 0,
            udp_port: 0,
            peer_limit: None,
            power: PowerConfig::Auto,
            mdns: None,
            loopback_candidates: false,
            relay_url: None,
            relay_ca: None,
            relay_id: None,
            organiser: None,
            retention: crate::retention::Retention::default(),
            clock: crate::clock::Clock::system(),
            delivery_timeout_ms: super::DELIVERY_TIMEOUT_MS,
        }
    }
}

/// The festival id used when none is given.
pub const DEFAULT_FESTIVAL: &str = "festival";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("no identity yet: give a display name (--name) on first start")]
    NeedName,
    #[error("invalid festival id {0:?}: 1 to 32 characters of a-z, 0-9, '-', '_', '.'")]
    BadFestival(String),
    #[error("cannot bind {what}: {source}")]
    Bind { what: &'static str, source: std::io::Error },
    #[error(transparent)]
    Rtc(#[from] RtcError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("cannot use the relay CA certificate file {0}")]
    RelayCa(String),
}

/// Festival ids go into TXT records and signed offers: keep them short and plain.
pub fn check_festival(f: &str) -> Result<(), StartError> {
    let ok = !f.is_empty()
        && f.len() <= 32
        && f.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StartError::BadFestival(f.to_owned()))
    }
}
