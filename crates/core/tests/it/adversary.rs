//! One hostile link against one node: invented claims, digest and IHave
//! floods, a claim of everything for a real author. Every per-peer map stays
//! under its cap, and an honest link's catch-up still finishes within a
//! fixed number of ticks.

use crate::common;

use common::{Harness, NOW};
use festival_core::frame::{Frame, Head, MsgRef, Summary, Want};
use festival_core::sync::caps::{
    MAX_BACKLOG, MAX_CLAIMS_PER_LINK, MAX_MISSING, MAX_MISSING_PER_LINK, MAX_SERVE_QUEUE, MAX_WANTS, MAX_WANTS_PER_LINK,
};
use festival_core::sync::Input;
use festival_core::{Identity, MessageId, PeerId, RoomId, SignedEnvelope};

const MALLORY: u64 = 1;
const ALICE: u64 = 2;
const TRUDY: u64 = 3;
const BEN: u64 = 4;
const TICK_MS: u64 = 100;
/// The catch-up must end within this many ticks (10 s), attack or not: one
/// want timeout (3 s) per chunk lost to the attacker before it is demoted.
const CATCH_UP_TICKS: usize = 100;

fn festival() -> RoomId {
    RoomId::festival()
}

fn invented(i: u64) -> PeerId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b[31] = 0xee;
    PeerId::from_bytes(b)
}

fn head(author: PeerId, contiguous: u64, max: u64) -> Head {
    Head { author, contiguous, max, tip: MessageId::from_bytes([1; 32]) }
}

/// Alice's own chain of `n` messages.
fn chain(alice: &Identity, n: u64) -> Vec<SignedEnvelope> {
    (1..=n).map(|seq| common::text(alice, "festival", seq, &format!("line {seq}"))).collect()
}

/// Answer the wants the node sent to Alice from her chain; Mallory never
/// answers. Returns how many wants Alice answered.
fn alice_serves(h: &mut Harness, chain: &[SignedEnvelope]) -> usize {
    let wants: Vec<Want> = h
        .sent
        .drain(..)
        .filter_map(|(l, f)| match f {
            Frame::Want(w) if l.0 == ALICE => Some(w),
            _ => None,
        })
        .collect();
    for w in &wants {
        let batch: Vec<SignedEnvelope> =
            chain.iter().filter(|e| e.author() == w.author && (w.from..=w.to).contains(&e.seq())).cloned().collect();
        if !batch.is_empty() {
            h.frame(ALICE, common::batch(&batch));
        }
    }
    wants.len()
}

/// Ticks until the node holds all of Alice's chain.
fn catch_up(h: &mut Harness, alice: &Identity, chain: &[SignedEnvelope]) -> usize {
    let last = chain.len() as u64;
    let summary = Summary { room: festival(), heads: vec![head(alice.peer_id(), last, last)], reply: false };
    // Alice's real tip, so the digest of our view of her is right.
    let mut summary = summary;
    summary.heads[0].tip = chain.last().unwrap().id();
    h.frame(ALICE, Frame::Summary(summary).encode());
    for tick in 0..=CATCH_UP_TICKS {
        alice_serves(h, chain);
        if h.node.head(&festival(), &alice.peer_id()).0 == last {
            return tick;
        }
        h.now += TICK_MS;
        h.feed(Input::Tick);
    }
    panic!(
        "catch-up of {last} messages did not finish in {CATCH_UP_TICKS} ticks: {:?}",
        h.node.head(&festival(), &alice.peer_id())
    );
}

fn assert_under_caps(h: &Harness) {
    let s = h.node.state_sizes();
    assert!(s.claims <= MAX_CLAIMS_PER_LINK, "{s:?}");
    assert!(s.wants <= MAX_WANTS, "{s:?}");
    assert!(s.exhausted <= MAX_CLAIMS_PER_LINK, "{s:?}");
    assert!(s.missing <= MAX_MISSING, "{s:?}");
    assert!(s.backlog <= MAX_BACKLOG, "{s:?}");
    assert!(s.serve_queue <= MAX_SERVE_QUEUE, "{s:?}");
}

#[test]
fn an_honest_catch_up_without_attack_is_quick() {
    let mut h = Harness::new(1, vec![]);
    let alice = common::identity(2);
    h.link(ALICE, &alice);
    let chain = chain(&alice, 500);
    let ticks = catch_up(&mut h, &alice, &chain);
    assert!(ticks <= 2, "took {ticks} ticks");
    assert_eq!(h.delivered.len(), 500);
}

/// A room of many people who each said one thing (or a DM mailbox of many
/// senders) is one want per author, and a link takes 64 at a time. Each
/// answered want makes room for the next author at once: the catch-up does
/// not wait for the next sync (5 s on mains) for every 64 authors.
#[test]
fn a_catch_up_of_many_one_message_authors_does_not_wait_for_the_next_sync() {
    const PEOPLE: u64 = 1_000;
    let mut h = Harness::new(1, vec![]);
    let alice = common::identity(2);
    h.link(ALICE, &alice);
    let said: Vec<SignedEnvelope> =
        (0..PEOPLE).map(|i| common::text(&common::identity(1_000 + i), "festival", 1, "hello")).collect();
    let heads = said.iter().map(|e| Head { author: e.author(), contiguous: 1, max: 1, tip: e.id() }).collect();
    h.frame(ALICE, Frame::Summary(Summary { room: festival(), heads, reply: false }).encode());
    let mut ticks = 0;
    loop {
        // Alice answers every want as soon as it is sent.
        while alice_serves(&mut h, &said) > 0 {}
        if said.iter().all(|e| h.node.head(&festival(), &e.author()).0 == 1) {
            break;
        }
        ticks += 1;
        let held = said.iter().filter(|e| h.node.head(&festival(), &e.author()).0 == 1).count();
        assert!(ticks <= 10, "after {ticks} ticks of {TICK_MS} ms, {held} of {PEOPLE} authors caught up");
        h.now += TICK_MS;
        h.feed(Input::Tick);
    }
    assert_eq!(h.delivered.len() as u64, PEOPLE);
}

#[test]
fn a_hostile_link_cannot_grow_state_past_its_caps_nor_stall_an_honest_catch_up() {
    let mut h = Harness::new(1, vec![]);
    let (mallory, alice) = (common::identity(66), common::identity(2));
    h.link(MALLORY, &mallory);
    h.link(ALICE, &alice);

    // 2,000 summaries of 1,024 invented authors each, at the allowed rate.
    for s in 0..2_000u64 {
        let heads = (0..1_024).map(|i| head(invented(s * 1_024 + i), 0, 10)).collect();
        h.frame(MALLORY, Frame::Summary(Summary { room: festival(), heads, reply: true }).encode());
        h.now += 1;
    }
    assert_under_caps(&h);
    let sizes = h.node.state_sizes();
    assert_eq!(sizes.claims, MAX_CLAIMS_PER_LINK, "claims stop at the cap");
    assert!(sizes.wants <= MAX_WANTS_PER_LINK, "wants to one link are capped: {sizes:?}");
    assert!(h.rejected_by(&mallory, "claims_over_cap") > 0);

    // 10,000 digests that never match.
    for i in 0..10_000u64 {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&i.to_le_bytes());
        h.frame(MALLORY, Frame::Digest { room: festival(), digest }.encode());
        h.now += 1;
    }
    // Summary requests (reply=true) are answered with a full summary once
    // per half sync interval, not once per request.
    let full_answers = h
        .sent
        .iter()
        .filter(|(l, f)| l.0 == MALLORY && matches!(f, Frame::Summary(s) if !s.heads.is_empty() || !s.reply))
        .count();
    assert!(full_answers <= 10, "{full_answers} full summaries sent to the asker");

    // An IHave flood of invented references.
    for i in 0..200u64 {
        let refs = (0..512)
            .map(|j| MsgRef {
                room: festival(),
                author: invented(9_000_000 + i * 512 + j),
                seq: 1,
                id: MessageId::from_bytes([7; 32]),
            })
            .collect();
        h.frame(MALLORY, Frame::IHave { refs }.encode());
        h.now += 1;
    }
    assert_under_caps(&h);
    assert!(h.node.state_sizes().missing <= MAX_MISSING_PER_LINK);

    // A claim of max = 2^63 for a real author is refused outright (nothing
    // above i64::MAX can be held); 2^63 - 1 is taken as a claim, and
    // Mallory never serves it.
    let absurd = Summary { room: festival(), heads: vec![head(alice.peer_id(), 0, 1 << 63)], reply: false };
    h.frame(MALLORY, Frame::Summary(absurd).encode());
    assert_eq!(h.rejected_by(&mallory, "frame_out_of_range"), 1);
    let huge = Summary { room: festival(), heads: vec![head(alice.peer_id(), 0, (1 << 63) - 1)], reply: false };
    h.frame(MALLORY, Frame::Summary(huge).encode());
    assert!(h.misbehaving.is_empty(), "claims alone are no misbehaviour: {:?}", h.misbehaving);
    // A second hostile link, with all its request slots free, claims
    // Alice's whole chain and never serves it: it may be asked first, but
    // its timeouts demote it.
    let trudy = common::identity(67);
    h.link(TRUDY, &trudy);
    let stall = Summary { room: festival(), heads: vec![head(alice.peer_id(), 500, 500)], reply: false };
    h.frame(TRUDY, Frame::Summary(stall).encode());

    let chain = chain(&alice, 500);
    h.sent.clear();
    let ticks = catch_up(&mut h, &alice, &chain);
    assert_under_caps(&h);
    assert_eq!(h.delivered.iter().filter(|d| d.1 == alice.peer_id()).count(), 500);
    eprintln!("catch-up under attack: {ticks} ticks");
    assert!(ticks <= CATCH_UP_TICKS, "took {ticks} ticks");
    assert_eq!(h.node.stats().peers[&alice.peer_id()].rejected_total(), 0, "Alice was never blamed");
}

#[test]
fn a_peer_that_only_asks_gets_its_budget_and_a_bounded_queue() {
    let mut h = Harness::new(1, vec![]);
    let mallory = common::identity(66);
    h.link(MALLORY, &mallory);
    // A store that answers slowly: reads pile up unless they are bounded.
    h.held_loads = Some(Vec::new());
    let me = common::identity(1).peer_id();
    // The same want 1,000 times, and 1,000 different ones, in one instant.
    for _ in 0..1_000 {
        h.frame(MALLORY, Frame::Want(Want { room: festival(), author: me, from: 1, to: 256 }).encode());
    }
    assert_eq!(h.held_loads.as_ref().unwrap().len(), 1, "a repeated request is read once");
    for i in 0..1_000u64 {
        h.frame(MALLORY, Frame::Want(Want { room: festival(), author: invented(i), from: 1, to: 1 }).encode());
    }
    assert_under_caps(&h);
    let loads = h.held_loads.take().unwrap();
    assert_eq!(loads.len(), festival_core::sync::caps::MAX_LOADS_PER_LINK, "reads in flight are capped");
    assert_eq!(h.node.state_sizes().serve_queue, MAX_SERVE_QUEUE);
    assert!(h.rejected_by(&mallory, "serve_queue_full") > 0);
    // As reads complete (nothing held), the queue drains, four at a time.
    let mut pending = loads;
    let mut answered = 0;
    while !pending.is_empty() {
        h.held_loads = Some(Vec::new());
        for load in pending {
            h.feed(Input::Loaded { load, items: vec![] });
            answered += 1;
        }
        pending = h.held_loads.take().unwrap();
        assert!(pending.len() <= festival_core::sync::caps::MAX_LOADS_PER_LINK);
    }
    assert_eq!(answered, festival_core::sync::caps::MAX_LOADS_PER_LINK + MAX_SERVE_QUEUE);
    assert_eq!(h.node.state_sizes().serve_queue, 0);
    let _ = NOW;
}

/// An honest asker gives a request up after its timeout (3 s) and asks
/// for something else, while a busy server still holds the old request
/// queued: its queue overflows though the asker never had more than its
/// share in flight. The excess is refused and counted, but it is no
/// misbehaviour: the link stays.
#[test]
fn an_asker_whose_requests_timed_out_is_not_dropped_for_asking_again() {
    let mut h = Harness::new(1, vec![]);
    let ben = common::identity(3);
    h.link(BEN, &ben);
    // A store too busy to answer within the asker's timeout.
    h.held_loads = Some(Vec::new());
    for round in 0..4u64 {
        for i in 0..MAX_WANTS_PER_LINK as u64 {
            let author = invented(round * 1_000 + i);
            h.frame(BEN, Frame::Want(Want { room: festival(), author, from: 1, to: 1 }).encode());
        }
        h.now += 3_000;
        h.feed(Input::Tick);
    }
    assert_under_caps(&h);
    assert!(h.rejected_by(&ben, "serve_queue_full") >= 100, "the excess is refused and counted");
    assert!(h.misbehaving.is_empty(), "an asker that only re-asked is dropped: {:?}", h.misbehaving);
}

/// A graft repairs the live path (an announced message that did not come):
/// it is served before the catch-up that link has queued with us, even when
/// that queue is full.
#[test]
fn a_graft_goes_ahead_of_queued_wants() {
    use festival_core::sync::caps::MAX_LOADS_PER_LINK;
    use festival_core::sync::{Content, Load};
    let mut h = Harness::new(1, vec![]);
    let me = common::identity(1).peer_id();
    let ben = common::identity(3);
    h.link(BEN, &ben);
    let (id, out) = h.node.send(festival(), Content::Text("see you at the bar".into()), h.now).unwrap();
    h.apply(out);
    h.sent.clear();
    // Ben's catch-up fills every read slot and its queue: a slow store.
    h.held_loads = Some(Vec::new());
    for i in 0..(MAX_LOADS_PER_LINK + MAX_SERVE_QUEUE) as u64 {
        h.frame(BEN, Frame::Want(Want { room: festival(), author: invented(i), from: 1, to: 1 }).encode());
    }
    let graft = MsgRef { room: festival(), author: me, seq: 1, id };
    h.frame(BEN, Frame::Graft { refs: vec![graft] }.encode());
    assert_eq!(h.rejected_by(&ben, "serve_queue_full"), 1, "the oldest queued want made room for the graft");
    // One read finishes: the next to start is the graft's.
    let mut loads = h.held_loads.replace(Vec::new()).unwrap();
    let first = loads.remove(0);
    h.feed(Input::Loaded { load: first, items: vec![] });
    let started: Vec<Load> = h.held_loads.replace(Vec::new()).unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].author, me, "the graft is read before the wants queued earlier");
    let env = h.envelopes[&id].clone();
    h.feed(Input::Loaded { load: started[0].clone(), items: vec![(env, 0)] });
    let answers: Vec<&Frame> = h.sent.iter().filter(|(l, _)| l.0 == BEN).map(|(_, f)| f).collect();
    // On a direct link while fetching live, the answer is the live path:
    // a push (tests/live_pull.rs).
    assert!(
        matches!(answers.as_slice(), [Frame::Push(item)] if SignedEnvelope::decode(&item.envelope).unwrap().id() == id),
        "the graft is answered: {answers:?}"
    );
}

#[test]
fn per_peer_counters_stay_under_their_cap_and_the_totals_stay_whole() {
    use festival_core::sync::caps::MAX_PEER_COUNTERS;
    let mut h = Harness::new(1, vec![festival()]);
    let alice = common::identity(2);
    h.link(ALICE, &alice);
    h.frame(ALICE, vec![9, 9]);
    // A stream of fresh keys, each linking once, sending one refused frame
    // and going.
    let fresh = MAX_PEER_COUNTERS as u64 + 100;
    for i in 0..fresh {
        let link = 100 + i;
        h.link(link, &common::identity(1_000 + i));
        h.frame(link, vec![9, 9]);
        h.feed(Input::LinkDown { link: festival_core::LinkId(link) });
    }
    let s = h.node.stats();
    assert!(s.peers.len() <= MAX_PEER_COUNTERS, "{} peers with counters", s.peers.len());
    assert_eq!(s.rejected_total(), fresh + 1, "every refusal still counted");
    assert!(s.departed.rejected_total() >= 100, "the departed were folded");
    assert_eq!(s.peers[&alice.peer_id()].rejected_total(), 1, "a linked peer keeps its own counters");
}

/// More linked peers than counters (a relay with thousands of nodes): the
/// ones beyond the cap count into `departed`, and once a link goes down the
/// next new peer takes the freed place. (The node remembers that every
/// counted peer is linked until a link goes down, so it does not walk its
/// links for every frame of a peer beyond the cap.)
#[test]
fn beyond_the_counter_cap_linked_peers_count_together_until_a_link_goes_down() {
    use festival_core::sync::caps::MAX_PEER_COUNTERS;
    let mut h = Harness::new(1, vec![festival()]);
    let linked = MAX_PEER_COUNTERS as u64 + 10;
    for i in 0..linked {
        h.link(100 + i, &common::identity(1_000 + i));
        h.frame(100 + i, vec![9, 9]);
    }
    let s = h.node.stats();
    assert_eq!(s.peers.len(), MAX_PEER_COUNTERS);
    assert_eq!(s.departed.rejected_total(), 10, "the peers beyond the cap count together");
    assert_eq!(s.rejected_total(), linked);

    // One counted peer's link goes down; a peer new to the node gets the place.
    h.feed(Input::LinkDown { link: festival_core::LinkId(100) });
    let late = common::identity(9_999);
    h.link(50, &late);
    h.frame(50, vec![9, 9]);
    let s = h.node.stats();
    assert_eq!(s.peers.len(), MAX_PEER_COUNTERS);
    assert_eq!(s.peers[&late.peer_id()].rejected_total(), 1, "the freed place is taken");
    assert!(!s.peers.contains_key(&common::identity(1_000).peer_id()));
    assert_eq!(s.rejected_total(), linked + 1, "every refusal still counted");
}
