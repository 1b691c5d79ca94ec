//! Power state to limits. Radios and wake-ups are what drain a phone: fewer
//! links, rarer syncs and longer keepalives on battery; a venue box on mains
//! serves everyone.

use serde::{Deserialize, Serialize};

/// At or below this, a phone stops working for others.
pub const LOW_BATTERY_PERCENT: u8 = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum PowerState {
    /// No battery, or a battery that is charging.
    Mains,
    Battery {
        percent: u8,
    },
}

impl PowerState {
    /// Build from a battery reading; "no battery" is mains.
    pub fn from_battery(percent: Option<u8>, charging: bool) -> Self {
        match percent {
            Some(p) if !charging => PowerState::Battery { percent: p.min(100) },
            _ => PowerState::Mains,
        }
    }
    pub fn is_low(self) -> bool {
        matches!(self, PowerState::Battery { percent } if percent <= LOW_BATTERY_PERCENT)
    }
}

/// What the node may do. Times in milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Limits {
    /// Most links kept open at once.
    pub max_peers: usize,
    /// How often summaries are compared with each link.
    pub sync_interval_ms: u64,
    /// Forward and serve other people's messages.
    pub relay_for_others: bool,
    /// Keep syncing while the app is in the background.
    pub background_sync: bool,
    /// Transport keepalive (ICE consent, relay ping) interval.
    pub keepalive_ms: u64,
}

pub fn limits(power: PowerState) -> Limits {
    match power {
        PowerState::Mains => Limits {
            max_peers: 8,
            sync_interval_ms: 5_000,
            relay_for_others: true,
            background_sync: true,
            keepalive_ms: 2_000,
        },
        PowerState::Battery { percent } if percent > 50 => Limits {
            max_peers: 6,
            sync_interval_ms: 10_000,
            relay_for_others: true,
            background_sync: true,
            keepalive_ms: 5_000,
        },
        PowerState::Battery { percent } if percent > LOW_BATTERY_PERCENT => Limits {
            max_peers: 4,
            sync_interval_ms: 15_000,
            relay_for_others: true,
            background_sync: true,
            keepalive_ms: 10_000,
        },
        PowerState::Battery { .. } => Limits {
            max_peers: 3,
            sync_interval_ms: 30_000,
            relay_for_others: false,
            background_sync: false,
            keepalive_ms: 15_000,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn battery_levels_map_to_documented_limits() {
        let mains = limits(PowerState::Mains);
        assert!(mains.relay_for_others && mains.background_sync);
        for p in [21u8, 50, 51, 100] {
            let l = limits(PowerState::Battery { percent: p });
            assert!((3..=6).contains(&l.max_peers), "{p}%: {l:?}");
            assert!(l.relay_for_others && l.background_sync);
            assert!(l.keepalive_ms > mains.keepalive_ms);
        }
        for p in [0u8, 5, 20] {
            let l = limits(PowerState::Battery { percent: p });
            assert_eq!(l.sync_interval_ms, 30_000);
            assert_eq!(l.max_peers, 3);
            assert!(!l.relay_for_others && !l.background_sync);
        }
        assert_eq!(PowerState::from_battery(None, false), PowerState::Mains);
        assert_eq!(PowerState::from_battery(Some(10), true), PowerState::Mains);
        assert!(PowerState::from_battery(Some(10), false).is_low());
    }
}
