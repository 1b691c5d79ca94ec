//! A circuit breaker per route (direct link, relay). Closed: calls flow and
//! outcomes are counted over a sliding window. Open: calls are refused until a
//! cool-down passes. Half-open: one trial call decides between the two.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    pub window_ms: u64,
    /// Open when failures / calls in the window reach this ratio ...
    pub failure_ratio: f64,
    /// ... and the window holds at least this many calls (no opening on 1 of 1).
    pub min_volume: usize,
    /// Time open before a half-open trial.
    pub open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { window_ms: 10_000, failure_ratio: 0.5, min_volume: 5, open_ms: 30_000 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { since_ms: u64 },
    HalfOpen { trial_in_flight: bool },
}

#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    cfg: BreakerConfig,
    state: BreakerState,
    /// (time, failed) per call in the window, oldest first.
    window: VecDeque<(u64, bool)>,
}

impl CircuitBreaker {
    pub fn new(cfg: BreakerConfig) -> Self {
        Self { cfg, state: BreakerState::Closed, window: VecDeque::new() }
    }

    /// The state at `now` (an open breaker turns half-open once the cool-down is over).
    pub fn state(&mut self, now: u64) -> BreakerState {
        if let BreakerState::Open { since_ms } = self.state {
            if now >= since_ms + self.cfg.open_ms {
                self.state = BreakerState::HalfOpen { trial_in_flight: false };
            }
        }
        self.state
    }

    /// May a call go this way now? In half-open, only one trial at a time.
    pub fn allow(&mut self, now: u64) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { trial_in_flight: true } => false,
            BreakerState::HalfOpen { trial_in_flight: false } => {
                self.state = BreakerState::HalfOpen { trial_in_flight: true };
                true
            }
        }
    }

    pub fn record(&mut self, now: u64, success: bool) {
        match self.state(now) {
            BreakerState::HalfOpen { .. } => {
                self.window.clear();
                self.state = if success { BreakerState::Closed } else { BreakerState::Open { since_ms: now } };
            }
            BreakerState::Open { .. } => {}
            BreakerState::Closed => {
                self.window.push_back((now, !success));
                while self.window.front().is_some_and(|&(t, _)| t + self.cfg.window_ms <= now) {
                    self.window.pop_front();
                }
                let failures = self.window.iter().filter(|&&(_, f)| f).count();
                let calls = self.window.len();
                if calls >= self.cfg.min_volume && failures as f64 >= self.cfg.failure_ratio * calls as f64 {
                    self.state = BreakerState::Open { since_ms: now };
                    self.window.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_half_failures_then_half_open_trial_closes_it() {
        let mut b = CircuitBreaker::new(BreakerConfig::default());
        // Below the minimum volume nothing opens, however bad.
        for t in 0..4 {
            b.record(t, false);
        }
        assert_eq!(b.state(4), BreakerState::Closed);
        b.record(5, true); // 4 failures of 5 calls
        assert_eq!(b.state(5), BreakerState::Open { since_ms: 5 });
        assert!(!b.allow(5 + 29_999));
        assert!(b.allow(5 + 30_000), "half-open admits one trial");
        assert!(!b.allow(5 + 30_001), "and only one");
        b.record(5 + 30_002, true);
        assert_eq!(b.state(5 + 30_002), BreakerState::Closed);
        assert!(b.allow(5 + 30_003));
    }

    #[test]
    fn failed_trial_reopens_and_old_failures_age_out() {
        let mut b = CircuitBreaker::new(BreakerConfig::default());
        for t in 0..5 {
            b.record(t, false);
        }
        assert!(b.allow(30_010));
        b.record(30_011, false);
        assert_eq!(b.state(30_011), BreakerState::Open { since_ms: 30_011 });

        let mut c = CircuitBreaker::new(BreakerConfig::default());
        for t in 0..4 {
            c.record(t, false);
        }
        // Ten seconds later those failures have left the window.
        for t in 0..6 {
            c.record(20_000 + t, true);
        }
        c.record(20_010, false);
        assert_eq!(c.state(20_010), BreakerState::Closed);
    }
}
