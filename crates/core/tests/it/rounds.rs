//! The periodic sync round: every live link once per `sync_interval_ms`,
//! in slices of at most `SYNC_SLICE_LINKS` links spread evenly over the
//! interval. A relay with a thousand nodes linked must not build a
//! thousand summaries and fingerprints in one turn (everything else it
//! does waits behind them), and a phone with a few links keeps one
//! wake-up per interval.

use std::collections::{BTreeMap, BTreeSet};

use crate::common;

use common::Harness;
use festival_core::frame::Frame;
use festival_core::policy::{limits, PowerState};
use festival_core::sync::{Input, LinkKind, Output, SYNC_SLICE_LINKS};
use festival_core::LinkId;

const STEP: u64 = 10;

/// Per tick that sent any fingerprint (a round's `Recon`, one per room):
/// when, and the links it went to.
type Turns = Vec<(u64, BTreeSet<LinkId>)>;

/// Step the clock by [`STEP`] for `ms`, a tick each step, calling `each`
/// before every tick (to bring links up or down).
fn run(h: &mut Harness, ms: u64, mut each: impl FnMut(&mut Harness, u64)) -> Turns {
    let mut turns = Vec::new();
    for step in 0..ms / STEP {
        each(h, step);
        let from = h.sent.len();
        h.now += STEP;
        h.feed(Input::Tick);
        let links: BTreeSet<LinkId> =
            h.sent[from..].iter().filter(|(_, f)| matches!(f, Frame::Recon(_))).map(|(l, _)| *l).collect();
        if !links.is_empty() {
            turns.push((h.now, links));
        }
    }
    turns
}

fn interval() -> u64 {
    limits(PowerState::Mains).sync_interval_ms
}

fn up(h: &mut Harness, link: u64) {
    h.link(link, &common::identity(1_000 + link));
}

/// A link that never says hello: not live, never synced.
fn up_silent(h: &mut Harness, link: u64) {
    h.feed(Input::LinkUp { link: LinkId(link), peer: common::identity(1_000 + link).peer_id(), kind: LinkKind::Lan });
}

fn linked(n: u64) -> Harness {
    let mut h = Harness::new(1, vec![]);
    for i in 0..n {
        up(&mut h, 10 + i);
    }
    h
}

/// When each link was synced.
fn times(turns: &Turns) -> BTreeMap<LinkId, Vec<u64>> {
    let mut t: BTreeMap<LinkId, Vec<u64>> = BTreeMap::new();
    for (at, links) in turns {
        for l in links {
            t.entry(*l).or_default().push(*at);
        }
    }
    t
}

/// Each link's syncs are an interval apart (within the 5 % jitter and a
/// step either side).
fn assert_once_an_interval(at: &[u64], link: LinkId) {
    let i = interval();
    for w in at.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap + 2 * STEP >= i * 19 / 20 && gap <= i * 21 / 20 + 2 * STEP,
            "{link:?} synced {gap} ms apart: {at:?}"
        );
    }
}

#[test]
fn a_node_with_many_links_syncs_them_a_slice_at_a_time_each_once_an_interval() {
    let links = 3 * SYNC_SLICE_LINKS as u64 + 10;
    let mut h = linked(links);
    let turns = run(&mut h, 8 * interval(), |_, _| {});
    // Four slices a round, of equal size (202 links: 51, 51, 51, 49).
    for (at, t) in &turns {
        assert!(t.len() <= SYNC_SLICE_LINKS && t.len() >= 45, "{} links at {at}", t.len());
    }
    // Spread over the interval, not bunched at its start.
    for w in turns.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap + 2 * STEP >= interval() / 4 - interval() / 20, "turns {gap} ms apart");
    }
    let t = times(&turns);
    assert_eq!(t.len() as u64, links, "every link is synced");
    for (link, at) in &t {
        assert!(at.len() >= 7, "{link:?} synced {} times in eight intervals", at.len());
        assert_once_an_interval(at, *link);
    }
}

#[test]
fn a_node_with_a_few_links_syncs_them_all_in_one_turn_an_interval() {
    let mut h = linked(5);
    let turns = run(&mut h, 3 * interval(), |_, _| {});
    assert!((2..=3).contains(&turns.len()), "one wake-up an interval: {turns:?}");
    for (_, t) in &turns {
        assert_eq!(t.len(), 5, "one wake-up syncs every link: {turns:?}");
    }
}

#[test]
fn links_coming_and_going_mid_round_leave_none_waiting_past_its_interval() {
    // 70 live links (two slices of 35), ten that never said hello between
    // them; then links drop past the round's cursor (the count falls under
    // one slice), new ones come up, silent ones too.
    let mut h = Harness::new(1, vec![]);
    for i in 0..80u64 {
        if i % 8 == 3 {
            up_silent(&mut h, 10 + i);
        } else {
            up(&mut h, 10 + i);
        }
    }
    let stay: Vec<LinkId> = (10..40).filter(|i| (i - 10) % 8 != 3).map(LinkId).collect();
    let mut next = 200u64;
    let turns = run(&mut h, 10 * interval(), |h, step| {
        let t = step * STEP;
        if t == interval() + interval() / 4 {
            // Mid-round (after the first slice): the upper links go.
            for i in 50..90u64 {
                h.feed(Input::LinkDown { link: LinkId(i) });
            }
        }
        if t.is_multiple_of(700) {
            up(h, next);
            up_silent(h, next + 1);
            next += 2;
        }
        if t.is_multiple_of(1_300) && next > 210 {
            h.feed(Input::LinkDown { link: LinkId(next - 10) });
        }
    });
    for (at, t) in &turns {
        assert!(t.len() <= SYNC_SLICE_LINKS, "{} links at {at}", t.len());
    }
    let t = times(&turns);
    for link in &stay {
        let at = t.get(link).unwrap_or_else(|| panic!("{link:?} never synced"));
        assert!(at.len() >= 9, "{link:?} synced {} times in ten intervals", at.len());
        assert_once_an_interval(at, *link);
    }
    // Silent links are never synced.
    assert!(t.keys().all(|l| (l.0 < 200 && (l.0 - 10) % 8 != 3) || (l.0 >= 200 && l.0 % 2 == 0)), "{:?}", t.keys());
}

#[test]
fn a_round_stopped_by_the_background_leaves_no_fast_wake_ups() {
    // Mid-round (after its first slice), the app goes to the background
    // at low battery, where nothing syncs in the background.
    let mut h = linked(3 * SYNC_SLICE_LINKS as u64);
    let turns = run(&mut h, interval() + interval() / 8, |_, _| {});
    assert_eq!(turns.len(), 1, "one slice of the round went: {turns:?}");
    h.feed(Input::Power(PowerState::Battery { percent: 5 }));
    h.feed(Input::Foreground(false));
    // Tick at each wake-up the node asks for, for two low-battery intervals.
    let until = h.now + 2 * limits(PowerState::Battery { percent: 5 }).sync_interval_ms;
    let mut ticks = 0;
    while h.now < until {
        let out = h.node.handle(Input::Tick, h.now);
        let wake = out.iter().find_map(|o| match o {
            Output::WakeAt(t) => Some(*t),
            _ => None,
        });
        h.apply(out);
        ticks += 1;
        h.now = wake.expect("a node always has a next wake-up").max(h.now + 1);
    }
    assert!(ticks < 60, "{ticks} wake-ups in a minute with nothing to sync");
}
