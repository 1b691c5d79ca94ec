//! The periodic sync round: every live link once per `sync_interval_ms`,
//! a slice of at most `SYNC_SLICE_LINKS` links per turn, spread over the
//! interval. A relay with a thousand nodes linked must not build a
//! thousand summaries and fingerprints in one turn (everything else it
//! does waits behind them), and a phone with a few links keeps one
//! wake-up per interval.

use std::collections::{BTreeMap, BTreeSet};

use crate::common;

use common::Harness;
use festival_core::frame::Frame;
use festival_core::policy::{limits, PowerState};
use festival_core::sync::{Input, SYNC_SLICE_LINKS};
use festival_core::LinkId;

/// Step the clock by 10 ms for `ms`, a tick each step; per tick that sent
/// any fingerprint (a round's `Recon`, one per room), the links it went to.
fn rounds(h: &mut Harness, ms: u64) -> Vec<BTreeSet<LinkId>> {
    let mut turns = Vec::new();
    for _ in 0..ms / 10 {
        let from = h.sent.len();
        h.now += 10;
        h.feed(Input::Tick);
        let links: BTreeSet<LinkId> =
            h.sent[from..].iter().filter(|(_, f)| matches!(f, Frame::Recon(_))).map(|(l, _)| *l).collect();
        if !links.is_empty() {
            turns.push(links);
        }
    }
    turns
}

fn linked(n: u64) -> Harness {
    let mut h = Harness::new(1, vec![]);
    for i in 0..n {
        h.link(10 + i, &common::identity(1_000 + i));
    }
    h
}

#[test]
fn a_node_with_many_links_syncs_them_a_slice_at_a_time_each_once_an_interval() {
    let links = 3 * SYNC_SLICE_LINKS as u64 + 10;
    let mut h = linked(links);
    let interval = limits(PowerState::Mains).sync_interval_ms;
    let turns = rounds(&mut h, 8 * interval);
    let largest = turns.iter().map(BTreeSet::len).max().unwrap_or(0);
    assert!(largest <= SYNC_SLICE_LINKS, "a turn synced {largest} links at once");
    // Four slices a round: the turns are spread over the interval, not
    // bunched at its start.
    assert!(turns.len() >= 4 * 7, "{} turns in eight intervals", turns.len());
    let mut times: BTreeMap<LinkId, usize> = BTreeMap::new();
    for l in turns.iter().flatten() {
        *times.entry(*l).or_default() += 1;
    }
    assert_eq!(times.len() as u64, links, "every link is synced");
    for (link, n) in &times {
        // Eight intervals (the jitter moves a round by up to 5 %).
        assert!((7..=9).contains(n), "{link:?} synced {n} times in eight intervals");
    }
}

#[test]
fn a_node_with_a_few_links_syncs_them_all_in_one_turn() {
    let mut h = linked(5);
    let interval = limits(PowerState::Mains).sync_interval_ms;
    let turns = rounds(&mut h, 3 * interval);
    assert!(!turns.is_empty());
    for t in &turns {
        assert_eq!(t.len(), 5, "one wake-up syncs every link: {turns:?}");
    }
}
