//! The relay route's circuit breaker: when to run the relay client at all.
//!
//! The relay client reconnects by itself with backoff and jitter. On top of
//! that the route has festival-core's [`CircuitBreaker`]: every session that
//! comes up counts as a success, every failed attempt and every session that
//! ends counts as a failure. When the breaker opens, the actor stops the
//! client (no more attempts at all); when the cool-down is over the breaker
//! turns half-open and the actor starts a fresh client, whose first round
//! (every instance once) is the trial: up closes the breaker, a round that
//! fails opens it again.
//!
//! Pure logic with explicit times (ms), so it is unit-tested without sockets.

use festival_core::policy::{BreakerConfig, BreakerState, CircuitBreaker};

/// The relay's breaker: at least 5 failures making half of the outcomes in
/// 30 s open it (about 8 s of failed reconnects with the client's backoff;
/// with several relay instances a failure is a round in which every one
/// failed), and it stays open 15 s before a trial.
pub const RELAY_BREAKER: BreakerConfig =
    BreakerConfig { window_ms: 30_000, failure_ratio: 0.5, min_volume: 5, open_ms: 15_000 };

/// What the actor should do with the relay client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// Leave the client as it is (running, or stopped).
    Keep,
    /// The breaker opened: stop the client.
    Stop,
    /// The breaker allows a trial: start a client.
    Start,
}

#[derive(Clone, Debug)]
pub struct RelayRoute {
    breaker: CircuitBreaker,
    /// A client is running (connecting, connected or waiting to retry).
    running: bool,
    /// Times the breaker opened (for status and tests).
    pub opened: u64,
}

impl RelayRoute {
    /// A route whose client has not been started yet: [`Self::poll`] says
    /// `Start` at once.
    pub fn new(cfg: BreakerConfig) -> Self {
        Self { breaker: CircuitBreaker::new(cfg), running: false, opened: 0 }
    }

    #[cfg(test)]
    pub fn running(&self) -> bool {
        self.running
    }

    /// Whether the breaker is open (or half-open with its trial under way).
    #[cfg(test)]
    pub fn state(&mut self, now: u64) -> BreakerState {
        self.breaker.state(now)
    }

    /// Called on every wake-up: start a client when none runs and the
    /// breaker lets a call through (closed, or half-open for its trial).
    pub fn poll(&mut self, now: u64) -> RouteAction {
        if !self.running && self.breaker.allow(now) {
            self.running = true;
            return RouteAction::Start;
        }
        RouteAction::Keep
    }

    /// A session came up.
    pub fn connected(&mut self, now: u64) {
        self.breaker.record(now, true);
    }

    /// An attempt failed or a session ended.
    pub fn failed(&mut self, now: u64) -> RouteAction {
        self.breaker.record(now, false);
        if self.running && matches!(self.breaker.state(now), BreakerState::Open { .. }) {
            self.running = false;
            self.opened += 1;
            return RouteAction::Stop;
        }
        RouteAction::Keep
    }

    /// When the open breaker allows its trial, if it is open.
    pub fn trial_at(&mut self, now: u64, cfg: &BreakerConfig) -> Option<u64> {
        match self.breaker.state(now) {
            BreakerState::Open { since_ms } if !self.running => Some(since_ms + cfg.open_ms),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_once_and_keeps_running_through_a_few_failures() {
        let mut r = RelayRoute::new(RELAY_BREAKER);
        assert_eq!(r.poll(0), RouteAction::Start);
        assert_eq!(r.poll(1), RouteAction::Keep, "one client at a time");
        r.connected(100);
        for t in [200, 700, 1_700] {
            assert_eq!(r.failed(t), RouteAction::Keep);
        }
        assert!(r.running());
        assert_eq!(r.state(2_000), BreakerState::Closed);
    }

    #[test]
    fn opens_after_failures_then_a_half_open_trial_closes_it() {
        let mut r = RelayRoute::new(RELAY_BREAKER);
        assert_eq!(r.poll(0), RouteAction::Start);
        let mut t = 0;
        let mut action = RouteAction::Keep;
        for i in 0..5 {
            t = i * 1_000;
            action = r.failed(t);
        }
        assert_eq!(action, RouteAction::Stop, "five failures in a row open the breaker");
        assert_eq!(r.opened, 1);
        assert!(!r.running());
        // Open: no attempts until the cool-down is over.
        assert_eq!(r.trial_at(t + 1, &RELAY_BREAKER), Some(t + RELAY_BREAKER.open_ms));
        assert_eq!(r.poll(t + RELAY_BREAKER.open_ms - 1), RouteAction::Keep);
        // Half-open: one trial.
        let trial = t + RELAY_BREAKER.open_ms;
        assert_eq!(r.poll(trial), RouteAction::Start);
        assert_eq!(r.poll(trial + 1), RouteAction::Keep);
        r.connected(trial + 50);
        assert_eq!(r.state(trial + 60), BreakerState::Closed);
        // Closed again: single failures do not stop the client.
        assert_eq!(r.failed(trial + 100), RouteAction::Keep);
        assert!(r.running());
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let mut r = RelayRoute::new(RELAY_BREAKER);
        r.poll(0);
        for t in 0..5 {
            r.failed(t * 100);
        }
        assert!(!r.running());
        let trial = 400 + RELAY_BREAKER.open_ms;
        assert_eq!(r.poll(trial), RouteAction::Start);
        assert_eq!(r.failed(trial + 10), RouteAction::Stop);
        assert_eq!(r.opened, 2);
        assert_eq!(r.poll(trial + 20), RouteAction::Keep);
        assert_eq!(r.poll(trial + 10 + RELAY_BREAKER.open_ms), RouteAction::Start);
    }
}
