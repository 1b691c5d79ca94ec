//! One peer connection: a str0m `Rtc`, its phase, and the drain that turns
//! str0m's outputs into [`EndpointEvent`]s.
//!
//! str0m's one strict rule: after every mutation of an `Rtc` (input, timer,
//! write, SDP), drain `poll_output` until it returns a timeout before the
//! next mutation. [`settle`] is that drain; the endpoint calls it after
//! everything it does to a connection.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::channel::ChannelId;
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tracing::debug;

use super::bundle::split;
use super::endpoint::EndpointStats;
use super::{CloseReason, ConnId, EndpointEvent, CHANNEL_LABEL};

/// Outputs one drain may produce before we call the connection broken.
/// str0m requires a drain to run until its timer comes up (a partial drain
/// corrupts its state), so this is only a guard against a bug looping
/// forever: a maximal message is about 220 datagrams.
const MAX_OUTPUTS_PER_DRAIN: usize = 100_000;

/// Outputs drained after a connection is shut down: its SCTP shutdown and
/// DTLS close_notify are a handful of datagrams.
const MAX_CLOSE_OUTPUTS: usize = 64;

pub(super) enum Phase {
    /// Our offer is out; its answer is awaited.
    Offering(SdpPendingOffer),
    /// SDP done; ICE, DTLS, SCTP and the channel handshake under way.
    Connecting,
    Open,
}

pub(super) struct PeerConn {
    pub(super) rtc: Rtc,
    pub(super) phase: Phase,
    /// Our channel: known from the start on the offer side, from its
    /// `ChannelOpen` on the answer side.
    pub(super) channel: Option<ChannelId>,
    /// The channel must be open by then.
    pub(super) open_by: Instant,
    /// When str0m wants its next `Input::Timeout`.
    pub(super) wake_at: Instant,
    /// The candidate addresses in the peer's SDP. Its first DTLS flight can
    /// arrive before our own ICE check of that address has succeeded, and
    /// str0m's `accepts` refuses it then; without this the handshake stalls
    /// for DTLS's one-second retransmission.
    pub(super) remote_candidates: Vec<SocketAddr>,
    /// Size of the message last refused as `Full`, and the unacknowledged
    /// bytes it must fit under (the soft limit of its kind of send);
    /// `Writable` once it fits.
    pub(super) blocked: Option<(usize, usize)>,
    /// Messages sent since the last flush, packed as one bundle (see the
    /// `bundle` module); written to the channel at the next poll, or as soon
    /// as the next message would not fit.
    pub(super) outgoing: Vec<u8>,
    /// Largest record accepted in a received bundle.
    pub(super) max_message: usize,
    /// Largest data-channel message the peer takes (its SDP's
    /// `a=max-message-size`): no bundle we send is larger.
    pub(super) peer_max: usize,
    /// Round trip of the latest ICE consent check on the selected pair
    /// (str0m's peer stats, every [`super::endpoint::STATS_INTERVAL`]).
    pub(super) rtt: Option<std::time::Duration>,
}

impl PeerConn {
    pub(super) fn open_channel(&self) -> Option<ChannelId> {
        matches!(self.phase, Phase::Open).then_some(self.channel).flatten()
    }

    /// Bytes not yet acknowledged by the peer: in str0m's buffer or in the
    /// bundle still being packed.
    pub(super) fn buffered(&mut self) -> Option<usize> {
        let cid = self.open_channel()?;
        let in_sctp = guarded(|| self.rtc.channel(cid).map(|mut c| c.buffered_amount())).flatten()?;
        Some(in_sctp + self.outgoing.len())
    }

    /// Writes the bundle being packed to the channel. Our own accounting
    /// keeps str0m's buffer large enough for it, so a refusal is not
    /// expected; the bundle then stays and goes at the next flush. A failed
    /// write means the connection is broken. The caller drains the
    /// connection afterwards.
    pub(super) fn flush(&mut self) -> Result<(), CloseReason> {
        let Some(cid) = self.open_channel() else { return Ok(()) };
        if self.outgoing.is_empty() {
            return Ok(());
        }
        let bundle = &self.outgoing;
        let written = guarded(|| self.rtc.channel(cid).map(|mut c| c.write(true, bundle)));
        match written {
            Some(Some(Ok(true))) => {
                self.outgoing.clear();
                Ok(())
            }
            Some(Some(Ok(false))) | Some(None) => Ok(()),
            Some(Some(Err(e))) => Err(close_reason(e)),
            None => Err(CloseReason::Failed("str0m panicked on write".into())),
        }
    }
}

/// Whether a message of `len` bytes may join `buffered` unacknowledged
/// bytes under the soft limit `high_water`. An empty buffer takes any message
/// (up to the size limit), so frames larger than the soft limit still go.
pub(super) fn admits(buffered: usize, len: usize, high_water: usize) -> bool {
    buffered == 0 || buffered + len <= high_water
}

/// After a mutation: drains the connection and reports `Writable` if a
/// refused message now fits. Returns why the connection ended, if it did.
pub(super) fn settle(
    conn: ConnId,
    peer: &mut PeerConn,
    queue: &mut Vec<EndpointEvent>,
    stats: &mut EndpointStats,
) -> Option<CloseReason> {
    if let Some(reason) = drain(conn, peer, queue, stats) {
        return Some(reason);
    }
    let (wanted, limit) = peer.blocked?;
    let fits = peer.buffered().is_some_and(|buffered| admits(buffered, wanted, limit));
    // Reading the buffered amount goes through str0m's mutable channel handle.
    if let Some(reason) = drain(conn, peer, queue, stats) {
        return Some(reason);
    }
    if fits {
        peer.blocked = None;
        queue.push(EndpointEvent::Writable(conn));
    }
    None
}

/// Takes str0m's outputs for one connection into `queue`, until it only has
/// a timer left. Returns why the connection ended, if it did.
pub(super) fn drain(
    conn: ConnId,
    peer: &mut PeerConn,
    queue: &mut Vec<EndpointEvent>,
    stats: &mut EndpointStats,
) -> Option<CloseReason> {
    for _ in 0..MAX_OUTPUTS_PER_DRAIN {
        let output = match guarded(|| peer.rtc.poll_output()) {
            Some(Ok(output)) => output,
            Some(Err(e)) => return Some(close_reason(e)),
            None => {
                stats.panics += 1;
                return Some(CloseReason::Failed("str0m panicked while polling".into()));
            }
        };
        match output {
            Output::Timeout(at) => {
                peer.wake_at = at;
                return (!peer.rtc.is_alive()).then(|| CloseReason::Failed("connection no longer alive".into()));
            }
            Output::Transmit(t) => queue.push(EndpointEvent::Transmit {
                source: t.source,
                destination: t.destination,
                bytes: t.contents.into(),
            }),
            Output::Event(event) => {
                if let Some(reason) = on_event(conn, peer, event, queue, stats) {
                    return Some(reason);
                }
            }
        }
    }
    Some(CloseReason::Failed("str0m produced endless output".into()))
}

fn on_event(
    conn: ConnId,
    peer: &mut PeerConn,
    event: Event,
    queue: &mut Vec<EndpointEvent>,
    stats: &mut EndpointStats,
) -> Option<CloseReason> {
    match event {
        Event::ChannelOpen(cid, label) => {
            let ours = label == CHANNEL_LABEL && peer.channel.is_none_or(|c| c == cid);
            if ours && !matches!(peer.phase, Phase::Open) {
                peer.channel = Some(cid);
                peer.phase = Phase::Open;
                debug!(%conn, "data channel open");
                queue.push(EndpointEvent::Open(conn));
            } else {
                // One channel per link: a second one is either a bug or a
                // peer probing for buffers we do not account for.
                stats.dropped_messages += 1;
                guarded(|| peer.rtc.direct_api().close_data_channel(cid));
            }
        }
        Event::ChannelData(data) => {
            if Some(data.id) == peer.channel && data.binary {
                match split(&data.data, peer.max_message) {
                    Ok(records) => queue.extend(records.into_iter().map(|r| EndpointEvent::Data(conn, r))),
                    Err(e) => {
                        stats.malformed_bundles += 1;
                        debug!(%conn, error = %e, "malformed bundle dropped");
                    }
                }
            } else {
                stats.dropped_messages += 1;
            }
        }
        Event::ChannelClose(cid) if Some(cid) == peer.channel => return Some(CloseReason::ChannelClosed),
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => return Some(CloseReason::IceDisconnected),
        Event::Closed => return Some(CloseReason::RemoteClosed),
        Event::PeerStats(st) => {
            if let Some(rtt) = st.selected_candidate_pair.and_then(|p| p.current_round_trip_time).or(st.rtt) {
                peer.rtt = Some(rtt);
            }
        }
        _ => {}
    }
    None
}

/// Starts str0m's shutdown and queues the datagrams it produces.
pub(super) fn shut_down(peer: &mut PeerConn, queue: &mut Vec<EndpointEvent>) {
    guarded(|| {
        if peer.rtc.close().is_err() {
            return;
        }
        for _ in 0..MAX_CLOSE_OUTPUTS {
            match peer.rtc.poll_output() {
                Ok(Output::Transmit(t)) => queue.push(EndpointEvent::Transmit {
                    source: t.source,
                    destination: t.destination,
                    bytes: t.contents.into(),
                }),
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    });
}

/// A failure str0m reports while running a connection. `RemoteSdp` then
/// only comes from the DTLS certificate check against the SDP fingerprint.
pub(super) fn close_reason(e: str0m::RtcError) -> CloseReason {
    match e {
        str0m::RtcError::RemoteSdp(why) => CloseReason::Authentication(why),
        other => CloseReason::Failed(other.to_string()),
    }
}

/// Runs `f`, turning a panic into `None`. str0m parses everything a peer
/// sends; a bug there must cost one connection, not the node.
/// Gives str0m the time (its timers fire); why the connection must end if
/// that failed.
pub(super) fn tick(peer: &mut PeerConn, now: Instant, stats: &mut EndpointStats) -> Result<(), CloseReason> {
    match guarded(|| peer.rtc.handle_input(Input::Timeout(now))) {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(close_reason(e)),
        None => {
            stats.panics += 1;
            Err(CloseReason::Failed("str0m panicked on a timer".into()))
        }
    }
}

pub(super) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

#[cfg(test)]
mod tests {
    use super::admits;

    #[test]
    fn the_soft_limit_holds_small_messages_but_lets_one_large_frame_through() {
        let high_water = 128 * 1024;
        assert!(admits(0, 256 * 1024, high_water), "an empty buffer takes a maximal frame");
        assert!(admits(64 * 1024, 64 * 1024, high_water));
        assert!(!admits(64 * 1024 + 1, 64 * 1024, high_water));
        assert!(!admits(1, 256 * 1024, high_water), "a large frame waits for an empty buffer");
    }
}
