//! What one host or one identity may take: connection slots (in total and
//! per host), slots for sockets that have not authenticated yet (in total
//! and per host prefix, far fewer), and per-identity rates.
//!
//! Both are shared by all connection tasks behind std Mutexes: each use is
//! one map update, never held across an await, so an async lock would only
//! add cost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use festival_core::PeerId;
use tokio::time::Instant;

use crate::config::RelayConfig;

/// Why a connection got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRefusal {
    /// The relay is at `max_connections`.
    Full,
    /// That host is at `max_connections_per_ip`.
    PerIp,
    /// The relay is at `max_unauthenticated` sockets still authenticating.
    Unauthenticated,
    /// That host prefix is at `max_unauthenticated_per_prefix`.
    UnauthenticatedPerPrefix,
}

impl SlotRefusal {
    pub fn label(self) -> &'static str {
        match self {
            SlotRefusal::Full => "too_many_connections",
            SlotRefusal::PerIp => "too_many_from_ip",
            SlotRefusal::Unauthenticated => "too_many_unauthenticated",
            SlotRefusal::UnauthenticatedPerPrefix => "too_many_unauthenticated_from_prefix",
        }
    }

    /// The HTTP status of the refusal: 503 when the relay as a whole is at
    /// its cap, 429 when only that host is.
    pub fn http_status(self) -> u16 {
        match self {
            SlotRefusal::Full | SlotRefusal::Unauthenticated => 503,
            SlotRefusal::PerIp | SlotRefusal::UnauthenticatedPerPrefix => 429,
        }
    }
}

/// A pool of slots: at most `max_total` in all and `max_per_host` per host
/// (see [`host_key`]). The relay has two: every open socket, and the
/// sockets that have not authenticated yet.
pub struct Slots {
    max_total: usize,
    max_per_host: usize,
    /// What to answer when the pool, or one host's share, is full.
    refusals: (SlotRefusal, SlotRefusal),
    state: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A held slot; dropping it frees the slot.
pub struct SlotGuard {
    slots: Arc<Slots>,
    key: IpAddr,
}

impl Slots {
    /// Every open socket: `max_connections`, `max_connections_per_ip`.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Slots> {
        Self::with_refusals(max_total, max_per_ip, (SlotRefusal::Full, SlotRefusal::PerIp))
    }

    /// Sockets not authenticated yet: `max_unauthenticated`,
    /// `max_unauthenticated_per_prefix`.
    pub fn unauthenticated(max_total: usize, max_per_prefix: usize) -> Arc<Slots> {
        let refusals = (SlotRefusal::Unauthenticated, SlotRefusal::UnauthenticatedPerPrefix);
        Self::with_refusals(max_total, max_per_prefix, refusals)
    }

    fn with_refusals(max_total: usize, max_per_host: usize, refusals: (SlotRefusal, SlotRefusal)) -> Arc<Slots> {
        Arc::new(Slots { max_total, max_per_host, refusals, state: Mutex::new((0, HashMap::new())) })
    }

    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<SlotGuard, SlotRefusal> {
        let key = host_key(ip);
        let mut st = self.state.lock().expect("slots lock");
        if st.0 >= self.max_total {
            return Err(self.refusals.0);
        }
        let n = st.1.entry(key).or_default();
        if *n >= self.max_per_host {
            return Err(self.refusals.1);
        }
        *n += 1;
        st.0 += 1;
        Ok(SlotGuard { slots: self.clone(), key })
    }

    pub fn in_use(&self) -> usize {
        self.state.lock().expect("slots lock").0
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut st = self.slots.state.lock().expect("slots lock");
        st.0 -= 1;
        if let Some(n) = st.1.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                st.1.remove(&self.key);
            }
        }
    }
}

/// Bits of an IPv6 address that name one customer: a home line or a cheap
/// VPS is given a /56 (RFC 6177 suggests /56 for homes), and its owner can
/// use any address in it, so counting /64s (or single addresses) would let
/// one customer take 256 shares or more.
pub const IPV6_HOST_PREFIX_BITS: u32 = 56;

/// One host: an IPv4 address (an IPv4-mapped IPv6 address counts as IPv4),
/// or an IPv6 /56 ([`IPV6_HOST_PREFIX_BITS`]).
pub fn host_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX << (128 - IPV6_HOST_PREFIX_BITS);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
    }
}

/// A token bucket: `rate` per second, at most `burst` saved up.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, n: f64, rate: f64, burst: f64, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

struct IdentityRate {
    frames: Bucket,
    bytes: Bucket,
    refused_in_row: u32,
    last: Instant,
}

/// What to do with one message from an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over its rate: drop it.
    No,
    /// Over its rate for `flood_close_after` messages since it last backed
    /// off (both its buckets half full again): close it.
    Flood,
}

/// Per-identity rates, shared by all of an identity's connections, so a
/// reconnect does not buy a fresh allowance.
pub struct Rates {
    frames: (f64, f64),
    bytes: (f64, f64),
    flood_after: u32,
    /// Entries idle this long are full again and can be forgotten.
    forget_after: Duration,
    map: Mutex<HashMap<PeerId, IdentityRate>>,
}

/// Identities remembered before idle ones are swept.
const RATES_SWEEP_AT: usize = 50_000;

impl Rates {
    pub fn new(cfg: &RelayConfig) -> Rates {
        let refill = |burst: f64, rate: f64| burst / rate;
        let forget = refill(cfg.frames_burst as f64, cfg.frames_per_sec as f64)
            .max(refill(cfg.bytes_burst as f64, cfg.bytes_per_sec as f64));
        Rates {
            frames: (cfg.frames_per_sec as f64, cfg.frames_burst as f64),
            bytes: (cfg.bytes_per_sec as f64, cfg.bytes_burst as f64),
            flood_after: cfg.flood_close_after,
            forget_after: Duration::from_secs_f64(forget.ceil() + 1.0),
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn admit(&self, peer: PeerId, bytes: usize, now: Instant) -> Admit {
        let mut map = self.map.lock().expect("rates lock");
        if map.len() >= RATES_SWEEP_AT {
            let forget = self.forget_after;
            map.retain(|_, r| now.saturating_duration_since(r.last) < forget);
        }
        // A new identity starts with one second's worth, not the whole
        // burst: keys are free, and each fresh one would otherwise bring
        // a burst of its own (1,000 frames, 8 MiB) to the hub. Its bucket
        // fills to the burst at its rate like any other.
        let r = map.entry(peer).or_insert_with(|| IdentityRate {
            frames: Bucket { tokens: self.frames.1.min(self.frames.0), at: now },
            bytes: Bucket { tokens: self.bytes.1.min(self.bytes.0), at: now },
            refused_in_row: 0,
            last: now,
        });
        r.last = now;
        // Check both before taking either, so a refused message costs nothing.
        let mut frames = r.frames;
        let mut bytes_b = r.bytes;
        let ok = frames.take(1.0, self.frames.0, self.frames.1, now)
            && bytes_b.take(bytes as f64, self.bytes.0, self.bytes.1, now);
        if ok {
            r.frames = frames;
            r.bytes = bytes_b;
            // Refusals are forgiven once the sender has backed off (both
            // its buckets half full again), not by any one frame that
            // passes: a sender held to the rate by the relay reading
            // slowly (see `conn`) still floods, and is still closed.
            if frames.tokens >= self.frames.1 / 2.0 && bytes_b.tokens >= self.bytes.1 / 2.0 {
                r.refused_in_row = 0;
            }
            Admit::Yes
        } else {
            r.refused_in_row = r.refused_in_row.saturating_add(1);
            if r.refused_in_row >= self.flood_after {
                Admit::Flood
            } else {
                Admit::No
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cap_total_and_per_host_and_free_on_drop() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = slots.try_acquire(a).unwrap();
        let _g2 = slots.try_acquire(a).unwrap();
        assert_eq!(slots.try_acquire(a).err(), Some(SlotRefusal::PerIp));
        let _g3 = slots.try_acquire(b).unwrap();
        assert_eq!(slots.try_acquire(b).err(), Some(SlotRefusal::Full));
        drop(g1);
        assert!(slots.try_acquire(a).is_ok());
        // One IPv6 /56 is one host: other /64s of it too.
        let slots = Slots::new(10, 1);
        let _x = slots.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(slots.try_acquire("2001:db8::2".parse().unwrap()).err(), Some(SlotRefusal::PerIp));
        assert_eq!(slots.try_acquire("2001:db8:0:ff::1".parse().unwrap()).err(), Some(SlotRefusal::PerIp));
        assert!(slots.try_acquire("2001:db8:0:100::1".parse().unwrap()).is_ok(), "the next /56");
        // An IPv4-mapped address is that IPv4 host.
        let _v4 = slots.try_acquire("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(slots.try_acquire("::ffff:192.0.2.1".parse().unwrap()).err(), Some(SlotRefusal::PerIp));
    }

    #[test]
    fn unauthenticated_slots_are_named_apart_and_counted_per_prefix() {
        let pending = Slots::unauthenticated(3, 2);
        let v6 = |s: &str| -> IpAddr { s.parse().unwrap() };
        let _a = pending.try_acquire(v6("2001:db8:1:1::1")).unwrap();
        let _b = pending.try_acquire(v6("2001:db8:1:2::9")).unwrap();
        let refused = pending.try_acquire(v6("2001:db8:1:3::1")).err().unwrap();
        assert_eq!(refused, SlotRefusal::UnauthenticatedPerPrefix);
        assert_eq!((refused.label(), refused.http_status()), ("too_many_unauthenticated_from_prefix", 429));
        let _c = pending.try_acquire(v6("2001:db8:2::1")).unwrap();
        let full = pending.try_acquire("10.0.0.1".parse().unwrap()).err().unwrap();
        assert_eq!((full, full.http_status()), (SlotRefusal::Unauthenticated, 503));
        assert_eq!(pending.in_use(), 3);
        assert_eq!(host_key(v6("2001:db8:1:ff:1:2:3:4")), v6("2001:db8:1::"));
    }

    #[test]
    fn a_new_identity_gets_a_seconds_worth_then_its_rate_up_to_its_burst_and_a_flood_is_named() {
        let cfg = RelayConfig {
            frames_per_sec: 10,
            frames_burst: 20,
            bytes_per_sec: 1_000_000,
            bytes_burst: 1_000_000,
            flood_close_after: 5,
            ..RelayConfig::default()
        };
        let rates = Rates::new(&cfg);
        let (p, q) = (PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32]));
        let t0 = Instant::now();
        // A new identity: one second's worth (10), not the burst (20).
        assert!((0..10).all(|_| rates.admit(p, 10, t0) == Admit::Yes));
        assert_eq!(rates.admit(p, 10, t0), Admit::No);
        assert_eq!(rates.admit(q, 10, t0), Admit::Yes, "another identity is not affected");
        // Quiet for three seconds: the bucket fills to the burst, no more.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!((0..25).filter(|_| rates.admit(p, 10, t1) == Admit::Yes).count(), 20);
        // Held at the rate without backing off: five refusals close it.
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!((0..14).filter(|_| rates.admit(p, 10, t2) == Admit::Yes).count(), 10);
        assert_eq!(rates.admit(p, 10, t2), Admit::Flood, "refused five times without backing off");
        // Bytes bind too: one message larger than the byte burst never passes.
        assert_eq!(rates.admit(q, 2_000_000, t1), Admit::No);
    }

    /// A sender held at its rate (one frame passes per refill, the rest are
    /// refused) is still flooding: a frame that passes does not forgive
    /// the refusals before it. One that backs off until its buckets are
    /// half full again is forgiven.
    #[test]
    fn refusals_are_forgiven_only_after_the_sender_backs_off() {
        let cfg = RelayConfig {
            frames_per_sec: 10,
            frames_burst: 20,
            bytes_per_sec: 1_000_000,
            bytes_burst: 1_000_000,
            flood_close_after: 6,
            ..RelayConfig::default()
        };
        let rates = Rates::new(&cfg);
        let p = PeerId::from_bytes([3; 32]);
        let mut t = Instant::now();
        while rates.admit(p, 10, t) == Admit::Yes {}
        // Every 100 ms one token: one frame passes, two are refused.
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            t += Duration::from_millis(100);
            outcomes.extend((0..3).map(|_| rates.admit(p, 10, t)));
        }
        assert!(outcomes.contains(&Admit::Flood), "held at the rate and never closed: {outcomes:?}");

        let q = PeerId::from_bytes([4; 32]);
        let mut t = Instant::now();
        while rates.admit(q, 10, t) == Admit::Yes {}
        assert_eq!((0..4).map(|_| rates.admit(q, 10, t)).filter(|a| *a == Admit::No).count(), 4);
        // Quiet for two seconds: the bucket is full again; the next
        // refusals count from zero.
        t += Duration::from_secs(2);
        assert_eq!(rates.admit(q, 10, t), Admit::Yes);
        while rates.admit(q, 10, t) == Admit::Yes {}
        assert_eq!((0..4).map(|_| rates.admit(q, 10, t)).filter(|a| *a == Admit::No).count(), 4, "forgiven");
    }
}
