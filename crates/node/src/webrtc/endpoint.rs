//! `Endpoint`: many str0m `Rtc`s behind one UDP socket, as a state machine.
//!
//! Inputs are method calls that carry `now`; outputs are queued and handed
//! out by [`Endpoint::poll`]. Nothing here reads a clock or a socket, so the
//! same code runs under the tokio driver, in a simulator with virtual time,
//! or in a test that carries datagrams by hand.
//!
//! Every method that touches a connection drains it at once into the queue
//! (see the `conn` module for why); `poll` only fires due timers and hands the
//! queue out.
//!
//! Demultiplexing uses str0m's `Rtc::accepts`: STUN by ICE username, the
//! rest by the peer's socket address. Two live connections to the SAME
//! remote socket address cannot be told apart (DTLS carries no connection
//! id), so the caller keeps one connection per peer and closes the old one
//! before accepting a new offer from it.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::config::Fingerprint;
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Input, Rtc, RtcConfig};
use tracing::{debug, warn};

use super::bundle::{self, HEADER_BYTES};
use super::conn::{admits, guarded, settle, shut_down, tick, PeerConn, Phase};
use super::{CloseReason, ConnId, EndpointConfig, EndpointEvent, RtcError, SendError, CHANNEL_LABEL};

/// Counters of input that was dropped. Input from the network is never a
/// reason to fail loudly, but it should be visible.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams no connection claimed (stale peers, strays, probes).
    pub unknown_datagrams: u64,
    /// Datagrams that are not STUN, DTLS, RTP or RTCP.
    pub malformed_datagrams: u64,
    /// Datagrams a connection claimed but str0m refused.
    pub rejected_datagrams: u64,
    /// Text messages, messages on other channels, extra channels.
    pub dropped_messages: u64,
    /// Panics inside str0m that were contained (the connection was dropped).
    pub panics: u64,
    /// Data-channel messages that were not a valid bundle (dropped whole).
    pub malformed_bundles: u64,
}

/// How often str0m reports a connection's stats (its ICE round trip).
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// A WebRTC endpoint: one UDP socket, many peer connections.
pub struct Endpoint {
    config: EndpointConfig,
    rtc_config: RtcConfig,
    fingerprint: Fingerprint,
    candidates: Vec<Candidate>,
    peers: BTreeMap<ConnId, PeerConn>,
    queue: Vec<EndpointEvent>,
    last_now: Option<Instant>,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint with one DTLS certificate for all its connections, so that
    /// [`Self::local_fingerprint`] is stable for the node's lifetime.
    pub fn new(config: EndpointConfig) -> Result<Self, RtcError> {
        if config.max_message_bytes == 0 || u32::try_from(config.max_message_bytes + HEADER_BYTES).is_err() {
            return Err(RtcError::Config("max_message_bytes must be in 1..=u32::MAX"));
        }
        let mut candidates = Vec::new();
        for addr in &config.local_addrs {
            let candidate = Candidate::host(*addr, "udp").map_err(|_| RtcError::BadLocalAddress(*addr))?;
            candidates.push(candidate);
        }
        if candidates.is_empty() {
            return Err(RtcError::NoLocalAddress);
        }
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto.dtls_provider.generate_certificate().ok_or(RtcError::Certificate)?;
        let fingerprint = Fingerprint {
            hash_func: "sha-256".into(),
            bytes: crypto.sha256_provider.sha256(&cert.certificate).to_vec(),
        };
        let rtc_config = RtcConfig::new()
            .set_crypto_provider(crypto)
            .set_dtls_cert(cert)
            // The default, stated because the identity binding depends on it.
            .set_fingerprint_verification(true)
            .set_ice_lite(false)
            // One message travels as a bundle of one record: the limit
            // plus its length prefix.
            .set_sctp_max_message_size((config.max_message_bytes + HEADER_BYTES) as u32)
            // str0m's write is all or nothing and never takes a message larger
            // than its buffer; our own, smaller limit is applied in `send`.
            .set_sctp_max_buffered_amount(config.send_buffer_bytes.max(config.max_message_bytes + HEADER_BYTES))
            // Peer stats carry the ICE round trip (per path latency in the
            // node's status); one event per connection every few seconds.
            .set_stats_interval(Some(STATS_INTERVAL));
        let mut endpoint = Self {
            config,
            rtc_config,
            fingerprint,
            candidates,
            peers: BTreeMap::new(),
            queue: Vec::new(),
            last_now: None,
            stats: EndpointStats::default(),
        };
        endpoint.set_ice_timing(endpoint.config.ice_keepalive, endpoint.config.ice_max_retransmits);
        Ok(endpoint)
    }

    /// The SHA-256 fingerprint of this endpoint's DTLS certificate, exactly
    /// as it appears in our SDP (`a=fingerprint:sha-256 AB:CD:...`).
    pub fn local_fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Adds a server-reflexive candidate, our address as a STUN server saw
    /// it, to connections created from now on (its base is the host address
    /// of the same family). False when it adds nothing: an address already
    /// known (no NAT in between: it is a host candidate) or invalid.
    pub fn add_reflexive(&mut self, addr: SocketAddr) -> bool {
        if self.candidates.iter().any(|c| c.addr() == addr) {
            return false;
        }
        let Some(base) = self.config.local_addrs.iter().find(|a| a.is_ipv4() == addr.is_ipv4()).copied() else {
            return false;
        };
        match Candidate::server_reflexive(addr, base, "udp") {
            Ok(c) => {
                self.candidates.push(c);
                true
            }
            Err(_) => false,
        }
    }

    /// The configured local addresses (one host candidate each).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.config.local_addrs
    }

    /// Sets the ICE keepalive and give-up count for connections created from
    /// now on (str0m fixes them when a connection is built). The power policy
    /// lengthens the keepalive on battery.
    pub fn set_ice_timing(&mut self, keepalive: Duration, max_retransmits: usize) {
        self.config.ice_keepalive = keepalive;
        self.config.ice_max_retransmits = max_retransmits;
        self.rtc_config.set_max_stun_rto(keepalive);
        self.rtc_config.set_max_stun_retransmits(max_retransmits);
    }

    /// Starts connection `conn` as the offerer and returns the SDP offer.
    pub fn create_offer(&mut self, conn: ConnId, now: Instant) -> Result<String, RtcError> {
        self.check_new(conn, now)?;
        let mut rtc = self.new_rtc(now)?;
        let made = guarded(|| {
            let mut change = rtc.sdp_api();
            let channel = change.add_channel_with_config(ChannelConfig {
                label: CHANNEL_LABEL.into(),
                ordered: true,
                reliability: Reliability::Reliable,
                ..Default::default()
            });
            change.apply().map(|(offer, pending)| (channel, offer.to_sdp_string(), pending))
        });
        let Some(Some((channel, sdp, pending))) = made else {
            return Err(RtcError::Internal("str0m made no offer for a new data channel"));
        };
        self.insert(conn, rtc, Phase::Offering(pending), Some(channel), now);
        self.settle(conn);
        Ok(sdp)
    }

    /// Applies the peer's answer to our offer on `conn`. A garbled answer
    /// leaves the offer waiting; one that str0m rejects drops the connection.
    pub fn accept_answer(&mut self, conn: ConnId, answer_sdp: &str, now: Instant) -> Result<(), RtcError> {
        self.touch(now);
        let answer = SdpAnswer::from_sdp_string(answer_sdp).map_err(RtcError::Sdp)?;
        let peer = self.peers.get_mut(&conn).ok_or(RtcError::UnknownConn(conn))?;
        let pending = match std::mem::replace(&mut peer.phase, Phase::Connecting) {
            Phase::Offering(pending) => pending,
            other => {
                peer.phase = other;
                return Err(RtcError::NoPendingOffer(conn));
            }
        };
        match guarded(|| peer.rtc.sdp_api().accept_answer(pending, answer)) {
            Some(Ok(())) => {
                peer.remote_candidates = sdp_candidates(answer_sdp);
                peer.peer_max = bundle::sdp_max_message_size(answer_sdp);
                self.start_checks(conn, now);
                self.settle(conn);
                Ok(())
            }
            Some(Err(e)) => {
                self.peers.remove(&conn);
                Err(RtcError::SdpRejected(e))
            }
            None => {
                self.stats.panics += 1;
                self.peers.remove(&conn);
                Err(RtcError::Panicked(conn))
            }
        }
    }

    /// Starts connection `conn` as the answerer and returns the SDP answer.
    pub fn accept_offer(&mut self, conn: ConnId, offer_sdp: &str, now: Instant) -> Result<String, RtcError> {
        self.check_new(conn, now)?;
        let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(RtcError::Sdp)?;
        let mut rtc = self.new_rtc(now)?;
        let answer = match guarded(|| rtc.sdp_api().accept_offer(offer)) {
            Some(Ok(answer)) => answer.to_sdp_string(),
            Some(Err(e)) => return Err(RtcError::SdpRejected(e)),
            None => {
                self.stats.panics += 1;
                return Err(RtcError::Panicked(conn));
            }
        };
        self.insert(conn, rtc, Phase::Connecting, None, now);
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.remote_candidates = sdp_candidates(offer_sdp);
            peer.peer_max = bundle::sdp_max_message_size(offer_sdp);
        }
        self.start_checks(conn, now);
        self.settle(conn);
        Ok(answer)
    }

    /// Hands one received datagram to the connection it belongs to. A
    /// datagram that no connection claims, or that is not WebRTC at all, is
    /// counted and dropped. `destination` may be the wildcard address when
    /// the socket is bound to it; the matching local address is then inferred
    /// from `source`.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), RtcError> {
        self.touch(now);
        let contents = match DatagramRecv::try_from(bytes) {
            Ok(contents) => contents,
            Err(e) => {
                self.stats.malformed_datagrams += 1;
                return Err(RtcError::Malformed(e));
            }
        };
        let destination = self.local_destination(source, destination);
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination, contents });
        let claimed = match self.peers.iter().find(|(_, p)| guarded(|| p.rtc.accepts(&input)).unwrap_or(false)) {
            Some((&conn, _)) => Some(conn),
            None if is_dtls(bytes) => self
                .peers
                .iter()
                .find(|(_, p)| !matches!(p.phase, Phase::Open) && p.remote_candidates.contains(&source))
                .map(|(&conn, _)| conn),
            None => None,
        };
        let Some((conn, peer)) = claimed.and_then(|conn| self.peers.get_mut(&conn).map(|peer| (conn, peer))) else {
            self.stats.unknown_datagrams += 1;
            return Err(RtcError::UnknownPeer);
        };
        match guarded(|| peer.rtc.handle_input(input)) {
            Some(Ok(())) => {
                self.settle(conn);
                Ok(())
            }
            // str0m disconnects the Rtc itself when the error is fatal, and
            // the drain notices. Anything else was one bad datagram.
            Some(Err(source)) => {
                self.stats.rejected_datagrams += 1;
                self.settle(conn);
                Err(RtcError::Input { conn, source })
            }
            None => {
                self.stats.panics += 1;
                self.end(conn, CloseReason::Failed("str0m panicked on input".into()));
                Err(RtcError::Panicked(conn))
            }
        }
    }

    /// Fires the timers that are due and returns everything that happened
    /// since the last poll, datagrams to send in the order str0m produced
    /// them. Call it after any other call and when [`Self::next_timeout`]
    /// comes up.
    pub fn poll(&mut self, now: Instant) -> Vec<EndpointEvent> {
        self.touch(now);
        let mut ended = Vec::new();
        for (&conn, peer) in self.peers.iter_mut() {
            if !peer.outgoing.is_empty() {
                let flushed = peer.flush().err().or_else(|| settle(conn, peer, &mut self.queue, &mut self.stats));
                if let Some(reason) = flushed {
                    ended.push((conn, reason));
                    continue;
                }
            }
            if !matches!(peer.phase, Phase::Open) && now >= peer.open_by {
                ended.push((conn, CloseReason::ConnectTimeout));
                continue;
            }
            if now < peer.wake_at {
                continue;
            }
            let reason = match tick(peer, now, &mut self.stats) {
                Ok(()) => settle(conn, peer, &mut self.queue, &mut self.stats),
                Err(reason) => Some(reason),
            };
            if let Some(reason) = reason {
                ended.push((conn, reason));
            }
        }
        for (conn, reason) in ended {
            self.end(conn, reason);
        }
        std::mem::take(&mut self.queue)
    }

    /// When [`Self::poll`] should be called next, if nothing arrives before.
    /// `None` when there are no connections and nothing is queued.
    pub fn next_timeout(&self) -> Option<Instant> {
        if !self.queue.is_empty() || self.peers.values().any(|p| !p.outgoing.is_empty()) {
            return self.last_now;
        }
        self.peers
            .values()
            .map(|p| match p.phase {
                Phase::Open => p.wake_at,
                _ => p.wake_at.min(p.open_by),
            })
            .min()
    }

    /// Queues `bytes` as one binary message on `conn`. Messages queued
    /// between two polls travel together in one bundle (see `bundle`);
    /// datagrams follow on the next poll. When the send buffer is full this
    /// returns [`SendError::Full`] and keeps nothing; a later
    /// [`EndpointEvent::Writable`] says the message now fits.
    pub fn send(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), SendError> {
        self.send_under(conn, bytes, self.config.send_buffer_bytes)
    }

    /// [`Self::send`] for bulk traffic (sync batches, photos' pieces): taken
    /// only while at most [`super::BULK_BUFFER_BYTES`] are unacknowledged
    /// (or the buffer is empty), so a message sent after it waits behind
    /// that much at most, not behind the whole send buffer.
    pub fn send_bulk(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), SendError> {
        self.send_under(conn, bytes, self.bulk_limit())
    }

    fn bulk_limit(&self) -> usize {
        super::BULK_BUFFER_BYTES.min(self.config.send_buffer_bytes)
    }

    fn send_under(&mut self, conn: ConnId, bytes: &[u8], high_water: usize) -> Result<(), SendError> {
        let max = self.message_limit(conn);
        let peer = self.peers.get_mut(&conn).ok_or(SendError::UnknownConn(conn))?;
        let buffered = peer.buffered().ok_or(SendError::NotOpen(conn))?;
        if bytes.len() > max {
            return Err(SendError::TooLarge { len: bytes.len(), max });
        }
        if bytes.is_empty() {
            return Err(SendError::Empty);
        }
        if !admits(buffered, bytes.len() + HEADER_BYTES, high_water) {
            peer.blocked = Some((bytes.len() + HEADER_BYTES, high_water));
            self.settle(conn);
            return Err(SendError::Full(conn));
        }
        if !bundle::fits(peer.outgoing.len(), bytes.len(), peer.peer_max) {
            if let Err(reason) = peer.flush() {
                self.end(conn, reason);
                return Err(SendError::NotOpen(conn));
            }
        }
        bundle::push(&mut peer.outgoing, bytes);
        self.settle(conn);
        Ok(())
    }

    /// The largest message `conn` takes: ours, or what the peer takes in a
    /// bundle of one (its SDP `max-message-size` less the record header);
    /// 0 for an unknown connection.
    fn message_limit(&self, conn: ConnId) -> usize {
        let peer_max = self.peers.get(&conn).map_or(0, |p| p.peer_max.saturating_sub(HEADER_BYTES));
        self.config.max_message_bytes.min(peer_max)
    }

    /// Bytes written to `conn` and not yet acknowledged by the peer; `None`
    /// when the channel is not open.
    pub fn buffered_amount(&mut self, conn: ConnId) -> Option<usize> {
        let amount = self.peers.get_mut(&conn)?.buffered();
        // Reading it goes through str0m's mutable channel handle.
        self.settle(conn);
        amount
    }

    /// Whether a message of `len` bytes would be accepted by [`Self::send`]
    /// now.
    pub fn can_send(&mut self, conn: ConnId, len: usize) -> bool {
        self.can_send_under(conn, len, self.config.send_buffer_bytes)
    }

    /// Whether [`Self::send_bulk`] would take a message of `len` bytes now.
    pub fn can_send_bulk(&mut self, conn: ConnId, len: usize) -> bool {
        self.can_send_under(conn, len, self.bulk_limit())
    }

    fn can_send_under(&mut self, conn: ConnId, len: usize, high_water: usize) -> bool {
        (1..=self.message_limit(conn)).contains(&len)
            && self.buffered_amount(conn).is_some_and(|buffered| admits(buffered, len + HEADER_BYTES, high_water))
    }

    /// Shuts `conn` down and forgets it. Its goodbye datagrams (SCTP
    /// shutdown, DTLS close_notify) come out of the next poll, so that the
    /// peer learns at once instead of by ICE timeout. No `Closed` event is
    /// emitted for a connection closed here.
    pub fn close(&mut self, conn: ConnId) -> Result<(), RtcError> {
        let mut peer = self.peers.remove(&conn).ok_or(RtcError::UnknownConn(conn))?;
        // What was sent before the goodbye goes first.
        let _ = peer.flush();
        shut_down(&mut peer, &mut self.queue);
        debug!(%conn, "connection closed locally");
        Ok(())
    }

    /// Whether the data channel of `conn` is open.
    /// The round trip of an open connection's selected ICE pair, once str0m
    /// measured one.
    pub fn rtt(&self, conn: ConnId) -> Option<Duration> {
        self.peers.get(&conn).and_then(|p| p.rtt)
    }

    pub fn is_open(&self, conn: ConnId) -> bool {
        self.peers.get(&conn).is_some_and(|p| p.open_channel().is_some())
    }

    /// Every connection, open or still connecting, in id order.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.peers.keys().copied()
    }

    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    fn touch(&mut self, now: Instant) {
        self.last_now = Some(self.last_now.map_or(now, |last| last.max(now)));
    }

    fn check_new(&mut self, conn: ConnId, now: Instant) -> Result<(), RtcError> {
        self.touch(now);
        if self.peers.contains_key(&conn) {
            return Err(RtcError::DuplicateConn(conn));
        }
        Ok(())
    }

    fn new_rtc(&self, now: Instant) -> Result<Rtc, RtcError> {
        let mut rtc = self.rtc_config.clone().build(now);
        let added = self.candidates.iter().filter(|c| rtc.add_local_candidate((*c).clone()).is_some()).count();
        if added == 0 {
            return Err(RtcError::NoLocalAddress);
        }
        Ok(rtc)
    }

    fn insert(&mut self, conn: ConnId, rtc: Rtc, phase: Phase, channel: Option<ChannelId>, now: Instant) {
        let peer = PeerConn {
            rtc,
            phase,
            channel,
            open_by: now + self.config.connect_timeout,
            wake_at: now,
            remote_candidates: Vec::new(),
            blocked: None,
            outgoing: Vec::new(),
            max_message: self.config.max_message_bytes,
            peer_max: 0,
            rtt: None,
        };
        self.peers.insert(conn, peer);
    }

    /// Drains `conn` after a mutation, and forgets it if it died.
    /// Gives str0m the time once the remote candidates are known, so that
    /// its ICE agent starts its own connectivity checks at once. Without it
    /// the agent of the side that answered waits for the first check to
    /// arrive, which is enough on a LAN; behind a NAT that check only gets
    /// through after this side's own check opened the NAT (hole punching).
    fn start_checks(&mut self, conn: ConnId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&conn) else { return };
        if let Err(reason) = tick(peer, now, &mut self.stats) {
            self.end(conn, reason);
        }
    }

    fn settle(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.get_mut(&conn) else { return };
        if let Some(reason) = settle(conn, peer, &mut self.queue, &mut self.stats) {
            self.end(conn, reason);
        }
    }

    /// Removes a connection that ended by itself and reports why.
    fn end(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(mut peer) = self.peers.remove(&conn) {
            shut_down(&mut peer, &mut self.queue);
            match &reason {
                CloseReason::Authentication(why) => warn!(%conn, %why, "peer failed DTLS authentication"),
                _ => debug!(%conn, ?reason, "connection ended"),
            }
            self.queue.push(EndpointEvent::Closed(conn, reason));
        }
    }

    /// The local address a datagram was sent to. A socket bound to the
    /// wildcard address cannot tell, so pick the configured address most
    /// likely on the sender's network: the sender's own address (two nodes on
    /// one host), loopback for loopback, else the longest common prefix.
    fn local_destination(&self, source: SocketAddr, destination: SocketAddr) -> SocketAddr {
        if !destination.ip().is_unspecified() {
            return destination;
        }
        self.config
            .local_addrs
            .iter()
            .filter(|a| destination.port() == 0 || a.port() == destination.port())
            .min_by_key(|a| Reverse(affinity(source.ip(), a.ip())))
            .copied()
            .unwrap_or(destination)
    }
}

/// Whether a datagram is a DTLS record (first byte 20..=63, RFC 7983).
fn is_dtls(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| (20..=63).contains(b))
}

/// The addresses of the `a=candidate` lines of an SDP.
fn sdp_candidates(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|line| line.trim_end().strip_prefix("a="))
        .filter(|attr| attr.starts_with("candidate:"))
        .filter_map(|attr| Candidate::from_sdp_string(attr).ok())
        .map(|c| c.addr())
        .collect()
}

/// How well local address `local` suits a datagram from `remote`.
fn affinity(remote: IpAddr, local: IpAddr) -> u32 {
    match (remote, local) {
        _ if remote == local => 1000,
        _ if remote.is_loopback() && local.is_loopback() => 500,
        (IpAddr::V4(r), IpAddr::V4(l)) => (u32::from(r) ^ u32::from(l)).leading_zeros(),
        (IpAddr::V6(r), IpAddr::V6(l)) => (u128::from(r) ^ u128::from(l)).leading_zeros(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(addrs: &[&str]) -> Endpoint {
        let local_addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
        Endpoint::new(EndpointConfig { local_addrs, ..Default::default() }).unwrap()
    }

    #[test]
    fn a_wildcard_destination_becomes_the_address_on_the_senders_network() {
        let ep = endpoint(&["192.168.1.20:5000", "10.99.0.1:5000", "127.0.0.1:5000"]);
        let wildcard: SocketAddr = "0.0.0.0:5000".parse().unwrap();
        let from = |a: &str| ep.local_destination(a.parse().unwrap(), wildcard);
        assert_eq!(from("10.99.0.7:4000"), "10.99.0.1:5000".parse().unwrap());
        assert_eq!(from("192.168.1.3:4000"), "192.168.1.20:5000".parse().unwrap());
        assert_eq!(from("127.0.0.1:4000"), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(from("192.168.1.20:4000"), "192.168.1.20:5000".parse().unwrap(), "two nodes on one host");
        let exact: SocketAddr = "10.99.0.1:5000".parse().unwrap();
        assert_eq!(ep.local_destination("192.168.1.3:1".parse().unwrap(), exact), exact, "a known one is kept");
    }

    #[test]
    fn unusable_local_addresses_are_refused_up_front() {
        let bad = EndpointConfig { local_addrs: vec!["0.0.0.0:5000".parse().unwrap()], ..Default::default() };
        assert!(matches!(Endpoint::new(bad), Err(RtcError::BadLocalAddress(_))));
        assert!(matches!(Endpoint::new(EndpointConfig::default()), Err(RtcError::NoLocalAddress)));
    }

    #[test]
    fn candidates_and_dtls_records_are_recognised() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706175 10.0.0.2 2000 typ host\r\na=candidate:junk\r\n";
        assert_eq!(sdp_candidates(sdp), vec!["10.0.0.2:2000".parse::<SocketAddr>().unwrap()]);
        assert!(is_dtls(&[22, 0xfe, 0xfd]) && !is_dtls(&[0, 1]) && !is_dtls(&[0x80]) && !is_dtls(&[]));
    }
}
