//! The relay's settings: a TOML file, then command-line flags on top.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use festival_core::frame::MAX_FRAME_BYTES;
use serde::{Deserialize, Serialize};

/// Most worker threads a relay's runtime may be given.
const MAX_THREADS: usize = 1_024;

/// Everything the relay can be told. Every field has a default, so a file
/// names only what it changes. `listen` and `stun` are for the binary; the
/// library takes already bound sockets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// HTTP + WebSocket address (`/v1/relay`, `/healthz`, `/metrics`).
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM, the relay's certificate first) and its
    /// private key (PEM): with both, `listen` speaks only TLS (`wss://`,
    /// HTTPS). Neither: plain `ws://` and HTTP (behind a TLS proxy, or on a
    /// trusted network).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// UDP address of the STUN responder; `None`: no STUN.
    pub stun: Option<SocketAddr>,
    /// The relay's store and identity, when `store` is not set: a SQLite
    /// file in this directory.
    pub data_dir: PathBuf,
    /// The store of a cluster of relays: a PostgreSQL URL
    /// (`postgres://user@host/db`, or `?host=/socket/dir`). Every instance
    /// given the same database shares the mailbox and the relay's identity
    /// (see docs/relay-cluster.md). `None`: SQLite in `data_dir`.
    pub store: Option<String>,
    /// The cluster's bus: a Redis URL (`redis://host:6379`, or
    /// `redis+unix:///path/redis.sock`). Needs `store`. Without it the
    /// instances of a cluster still share everything, and learn of each
    /// other's envelopes from the store within a fraction of a second
    /// instead of at once.
    pub bus: Option<String>,
    /// This instance's name in the cluster: its consumer group on the bus
    /// and where its nodes are said to be. Must differ between instances
    /// and stay the same across restarts. Default: the host name and the
    /// port listened on.
    pub instance: Option<String>,
    /// Worker threads of the relay's runtime; 0: one per core. Instances
    /// that share a machine's cores with others (several instances, the
    /// database) take fewer: each idle worker that is woken costs a
    /// context switch.
    pub threads: usize,
    /// Serve only nodes of this festival; `None`: any festival.
    pub festival: Option<String>,
    /// The festival's organiser key (a PeerId, 64 hex digits): the only
    /// author whose announcements the relay stores and passes on. `None`:
    /// it takes none.
    pub organiser: Option<String>,
    /// Open WebSockets at once. At ~100 KiB of buffers and state per idle
    /// node, 20,000 fit in a few GiB.
    pub max_connections: usize,
    /// Open WebSockets from one host: an IPv4 address or an IPv6 /56. A
    /// festival's phones may share a carrier-grade NAT address, so this is
    /// high; it stops one host from taking every slot.
    pub max_connections_per_ip: usize,
    /// WebSockets open at once that have not authenticated yet (they count
    /// in `max_connections` too). Default 1/8 of `max_connections`: a flood
    /// of sockets that never authenticate can hold no more, so 7/8 of the
    /// slots stay for nodes.
    pub max_unauthenticated: usize,
    /// Of those, from one host prefix (an IPv4 address or an IPv6 /56). A
    /// node needs one socket and one round trip to authenticate, so even a
    /// CGNAT address shared by many phones seldom has 16 handshakes in flight
    /// within one `auth_timeout_secs`; one refused (HTTP 429) retries after
    /// its backoff. One host that opens sockets and stays silent holds 16.
    pub max_unauthenticated_per_prefix: usize,
    /// Largest core frame accepted (the protocol's own limit by default).
    pub max_frame_bytes: usize,
    /// Frames per second one identity may send (all its connections
    /// together), and the burst. A node's normal load is a few frames per
    /// message plus a sync exchange every few seconds.
    pub frames_per_sec: u32,
    pub frames_burst: u32,
    /// Bytes per second one identity may send, and the burst (catch-up after
    /// a day offline is a few MiB).
    pub bytes_per_sec: u32,
    pub bytes_burst: u32,
    /// A connection whose identity has this many frames refused in a row for
    /// its rate is closed (`4008`): it is flooding, not bursting.
    pub flood_close_after: u32,
    /// Messages by one author the mailbox keeps (its storage quota); more
    /// are refused as `storage_quota`. Envelopes are at most ~16.5 KiB, so
    /// this also bounds the bytes per author.
    pub max_messages_per_author: u64,
    /// Rooms the relay carries (it joins the rooms its nodes name).
    pub max_rooms: usize,
    /// Seconds without any message (pings count) before a socket is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a new socket has, from its upgrade, to authenticate (and to
    /// read the welcome). A node answers the challenge in one round trip,
    /// so 3 s is plenty even over a congested festival uplink, and a socket
    /// that stays silent frees its unauthenticated slot after that.
    pub auth_timeout_secs: u64,
    /// Messages queued towards one node; a node that does not read them is
    /// closed (`4009`) and syncs again when it reconnects.
    pub outbound_queue: usize,
    /// Commits per second of what nodes send, at most: below it every
    /// commit starts as soon as the one before has ended; above it, what
    /// arrives waits for the next commit (at most 1/this s, or until a
    /// turn's worth of 256 frames waits) and shares it.
    /// Each commit costs the database about what a few more messages in it
    /// would, so under load this bounds its transactions per second (per
    /// instance, in a cluster) whatever the rate of messages. 100: at
    /// 1,500 msgs/s over three instances, PostgreSQL's CPU 42 % lower and
    /// the tier's 18 %, for up to 10 ms of waiting under that load
    /// (docs/benchmarks.md, "Commits shared under load").
    pub commits_per_sec: u32,
    /// New rooms one identity may make the relay join per hour: a person
    /// joins a handful over a festival; a client naming hundreds gets this
    /// many and a `room_creation_limit` refusal for the rest.
    pub rooms_per_identity_per_hour: u32,
    /// New rooms the relay joins per minute, whoever names them: fresh keys
    /// each get `rooms_per_identity_per_hour`, so without this a stream of
    /// them would make the relay join (a store write each) until
    /// `max_rooms`, and every node's traffic would wait behind the joins.
    /// A festival's people make a few rooms a minute at most. In a
    /// cluster both allowances are the cluster's, counted in the shared
    /// store, not each instance's.
    pub rooms_created_per_minute: u32,
    /// Hours after which a room no connected node names and nobody wrote in
    /// is left (its messages go first when the store is over budget).
    pub room_idle_hours: u64,
    /// The store's files (database and WAL) stay under this (MiB). The
    /// relay is a server: 4 GiB by default.
    pub disk_budget_mb: u64,
    /// Bytes kept per author (MiB), all rooms together.
    pub per_author_mb: u64,
    /// Bytes kept per room (MiB).
    pub per_room_mb: u64,
    /// Messages older than this (hours) are expired: not taken, not served,
    /// deleted. The festival's length; a week by default.
    pub message_lifetime_hours: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls_cert: None,
            tls_key: None,
            stun: Some(SocketAddr::from(([127, 0, 0, 1], 3478))),
            data_dir: PathBuf::from("relay-data"),
            store: None,
            bus: None,
            instance: None,
            threads: 0,
            festival: None,
            organiser: None,
            max_connections: 20_000,
            max_connections_per_ip: 512,
            max_unauthenticated: 2_500,
            max_unauthenticated_per_prefix: 16,
            max_frame_bytes: MAX_FRAME_BYTES,
            frames_per_sec: 200,
            frames_burst: 1_000,
            bytes_per_sec: 1 << 20,
            bytes_burst: 8 << 20,
            flood_close_after: 2_000,
            max_messages_per_author: 20_000,
            max_rooms: 4_096,
            idle_timeout_secs: 60,
            auth_timeout_secs: 3,
            outbound_queue: 1_024,
            commits_per_sec: 100,
            rooms_per_identity_per_hour: 16,
            rooms_created_per_minute: 60,
            room_idle_hours: 24,
            disk_budget_mb: 4_096,
            per_author_mb: 16,
            per_room_mb: 2_048,
            message_lifetime_hours: 7 * 24,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("invalid setting: {0}")]
    Invalid(&'static str),
}

impl RelayConfig {
    pub fn from_file(path: &Path) -> Result<RelayConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let cfg: RelayConfig =
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |what| Err(ConfigError::Invalid(what));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key go together: give both or neither");
        }
        if self.max_connections == 0
            || self.max_connections_per_ip == 0
            || self.max_unauthenticated == 0
            || self.max_unauthenticated_per_prefix == 0
        {
            return bad("connection caps must be at least 1");
        }
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > MAX_FRAME_BYTES {
            return bad("max_frame_bytes must be between 1024 and the protocol's 262144");
        }
        if self.frames_per_sec == 0 || self.frames_burst == 0 || self.bytes_per_sec == 0 {
            return bad("rates must be at least 1");
        }
        if self.commits_per_sec == 0 {
            return bad("commits_per_sec must be at least 1");
        }
        if self.rooms_per_identity_per_hour == 0 || self.rooms_created_per_minute == 0 {
            // 0 would refuse every room but the festival's own, each with a
            // refusal that blames the node.
            return bad("rooms_per_identity_per_hour and rooms_created_per_minute must be at least 1");
        }
        if (self.bytes_burst as usize) < self.max_frame_bytes {
            return bad("bytes_burst must hold at least one maximal frame");
        }
        if self.idle_timeout_secs < 3 || self.auth_timeout_secs == 0 || self.outbound_queue == 0 {
            return bad("timeouts and queues too small");
        }
        if self.disk_budget_mb < 64 || self.per_author_mb == 0 || self.per_room_mb == 0 {
            return bad("disk_budget_mb must be at least 64, per_author_mb and per_room_mb at least 1");
        }
        if self.threads > MAX_THREADS {
            return bad("threads must be at most 1024 (0: one per core)");
        }
        if self.message_lifetime_hours == 0 {
            return bad("message_lifetime_hours must be at least 1");
        }
        if self.bus.is_some() && self.store.is_none() {
            return bad("bus needs store: the instances of a cluster share a PostgreSQL store");
        }
        if self.instance.as_ref().is_some_and(|i| i.is_empty() || i.len() > 128) {
            return bad("instance must be 1 to 128 bytes");
        }
        if self.organiser.is_some() && self.organiser_key().is_none() {
            return bad("organiser must be a PeerId: 64 hex digits of a public key");
        }
        Ok(())
    }

    /// The organiser's key, when `organiser` names a valid one.
    pub fn organiser_key(&self) -> Option<festival_core::PeerId> {
        let key: festival_core::PeerId = self.organiser.as_deref()?.trim().to_ascii_lowercase().parse().ok()?;
        festival_core::identity::is_valid_key(&key).then_some(key)
    }

    /// The store's budget and lifetime, for festival-node's retention task.
    pub fn retention(&self) -> festival_engine::retention::Retention {
        const MIB: u64 = 1024 * 1024;
        festival_engine::retention::Retention {
            budget: festival_store::Budget {
                disk_bytes: self.disk_budget_mb.saturating_mul(MIB),
                per_author_bytes: self.per_author_mb.saturating_mul(MIB),
                per_room_bytes: self.per_room_mb.saturating_mul(MIB),
            },
            lifetime_ms: self.message_lifetime_hours.saturating_mul(3_600_000),
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_names_only_what_it_changes_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "festival = \"glasto26\"\nmax_connections = 10\nstun = \"127.0.0.1:3479\"\n").unwrap();
        let cfg = RelayConfig::from_file(&path).unwrap();
        assert_eq!(cfg.festival.as_deref(), Some("glasto26"));
        assert_eq!(cfg.max_connections, 10);
        assert_eq!(cfg.stun, Some("127.0.0.1:3479".parse().unwrap()));
        assert_eq!(cfg.frames_per_sec, RelayConfig::default().frames_per_sec);

        std::fs::write(&path, "max_conections = 10\n").unwrap();
        assert!(matches!(RelayConfig::from_file(&path), Err(ConfigError::Parse { .. })));
        std::fs::write(&path, "max_frame_bytes = 10\n").unwrap();
        assert!(matches!(RelayConfig::from_file(&path), Err(ConfigError::Invalid(_))));
        std::fs::write(&path, "tls_cert = \"relay.pem\"\n").unwrap();
        assert!(matches!(RelayConfig::from_file(&path), Err(ConfigError::Invalid(_))));
        std::fs::write(&path, "tls_cert = \"relay.pem\"\ntls_key = \"relay.key\"\n").unwrap();
        assert_eq!(RelayConfig::from_file(&path).unwrap().tls_key, Some(PathBuf::from("relay.key")));
        assert!(RelayConfig::default().check().is_ok());
        std::fs::write(&path, "threads = 1025\n").unwrap();
        assert!(matches!(RelayConfig::from_file(&path), Err(ConfigError::Invalid(_))));
        for zero in ["rooms_per_identity_per_hour = 0\n", "rooms_created_per_minute = 0\n", "commits_per_sec = 0\n"] {
            std::fs::write(&path, zero).unwrap();
            assert!(matches!(RelayConfig::from_file(&path), Err(ConfigError::Invalid(_))), "{zero}");
        }
        std::fs::write(&path, "threads = 1\n").unwrap();
        assert_eq!(RelayConfig::from_file(&path).unwrap().threads, 1);
    }

    #[test]
    fn the_example_file_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("relay.example.toml");
        assert_eq!(RelayConfig::from_file(&path).unwrap(), RelayConfig::default());
    }
}
