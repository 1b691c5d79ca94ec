//! Which path traffic takes, counted for `/status`: our messages by the
//! path they first left on, frame bytes sent on LAN links and on the relay,
//! direct dials and how many opened (the P2P success rate), and the relay's
//! round trip for a message (until its `Stored`), which the mesh takes as a
//! sample for deciding on upgrades (`festival_core::mesh`, "upgrade").

use std::collections::HashMap;
use std::time::Duration;

use festival_core::MessageId;
use tokio::time::Instant;

use super::events::PathStats;

/// Our messages on the relay waiting for its `Stored` (their send times).
const MAX_PENDING_ACKS: usize = 1024;

/// The middle value (the upper one of an even count); `None` for none.
pub fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    v.get(v.len() / 2).copied()
}

#[derive(Default)]
pub struct Paths {
    /// Our messages handed to the relay, by when: their `Stored` acks time
    /// the relay's round trip for a message, its commit included.
    acks: HashMap<MessageId, Instant>,
    sent_lan: u64,
    sent_relay: u64,
    bytes_lan: u64,
    bytes_relay: u64,
    dials: u64,
    opened: u64,
    upgrade_dials: u64,
    upgrades: u64,
    /// Our address as the relay's STUN saw it.
    pub reflexive: Option<std::net::SocketAddr>,
}

/// What the mesh knows of the relay path, for the view.
pub struct RelayPath {
    pub rtt: Option<Duration>,
    pub slow: bool,
}

impl Paths {
    pub fn sent_message(&mut self, id: MessageId, relay: bool, now: Instant) {
        if relay {
            self.sent_relay += 1;
            if self.acks.len() >= MAX_PENDING_ACKS {
                // Acks that never came (a session that ended): forget them.
                self.acks.retain(|_, at| now.duration_since(*at) < Duration::from_secs(60));
            }
            if self.acks.len() < MAX_PENDING_ACKS {
                self.acks.insert(id, now);
            }
        } else {
            self.sent_lan += 1;
        }
    }

    /// The relay committed these of our envelopes: the round trip of each
    /// that we timed.
    pub fn stored(&mut self, ids: &[MessageId], now: Instant) -> Vec<Duration> {
        ids.iter().filter_map(|id| self.acks.remove(id)).map(|at| now.duration_since(at)).collect()
    }

    /// The relay session ended: acks will not come.
    pub fn relay_down(&mut self) {
        self.acks.clear();
    }

    pub fn frame_out(&mut self, bytes: usize, relay: bool) {
        if relay {
            self.bytes_relay += bytes as u64;
        } else {
            self.bytes_lan += bytes as u64;
        }
    }

    pub fn dialed(&mut self, upgrade: bool) {
        self.dials += 1;
        self.upgrade_dials += u64::from(upgrade);
    }

    pub fn opened(&mut self, upgrade: bool) {
        self.opened += 1;
        self.upgrades += u64::from(upgrade);
    }

    pub fn view(&self, lan_rtt: Option<Duration>, relay: RelayPath) -> PathStats {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total = self.bytes_lan + self.bytes_relay;
        PathStats {
            sent_lan: self.sent_lan,
            sent_relay: self.sent_relay,
            bytes_lan: self.bytes_lan,
            bytes_relay: self.bytes_relay,
            off_relay_share: (total > 0).then(|| self.bytes_lan as f64 / total as f64),
            p2p_attempts: self.dials,
            p2p_opened: self.opened,
            p2p_success_rate: (self.dials > 0).then(|| self.opened.min(self.dials) as f64 / self.dials as f64),
            upgrade_attempts: self.upgrade_dials,
            upgrades: self.upgrades,
            lan_rtt_ms: lan_rtt.map(ms),
            relay_rtt_ms: relay.rtt.map(ms),
            relay_slow: relay.slow,
            reflexive_addr: self.reflexive.map(|a| a.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> RelayPath {
        RelayPath { rtt: None, slow: false }
    }

    #[test]
    fn stored_acks_time_the_relay() {
        let mut p = Paths::default();
        let t0 = Instant::now();
        let id = MessageId::from_bytes([7; 32]);
        p.sent_message(id, true, t0);
        let rtts = p.stored(&[id, MessageId::from_bytes([8; 32])], t0 + Duration::from_millis(250));
        assert_eq!(rtts, vec![Duration::from_millis(250)]);
        assert!(p.stored(&[id], t0 + Duration::from_secs(9)).is_empty(), "one ack times one send");
        let v = p.view(None, fast());
        assert_eq!((v.sent_relay, v.sent_lan), (1, 0));
        p.sent_message(id, true, t0);
        p.relay_down();
        assert!(p.stored(&[id], t0 + Duration::from_secs(1)).is_empty(), "a session gone takes its acks");
    }

    #[test]
    fn shares_and_rates() {
        let mut p = Paths::default();
        assert_eq!(p.view(None, fast()).off_relay_share, None);
        assert_eq!(p.view(None, fast()).p2p_success_rate, None);
        p.frame_out(300, false);
        p.frame_out(100, true);
        p.dialed(false);
        p.dialed(true);
        p.opened(false);
        let v =
            p.view(Some(Duration::from_micros(500)), RelayPath { rtt: Some(Duration::from_millis(300)), slow: true });
        assert_eq!(v.off_relay_share, Some(0.75));
        assert_eq!(v.p2p_success_rate, Some(0.5));
        assert_eq!((v.upgrade_attempts, v.upgrades), (1, 0));
        assert_eq!(v.lan_rtt_ms, Some(0.5));
        assert_eq!((v.relay_rtt_ms, v.relay_slow), (Some(300.0), true));
    }
}
