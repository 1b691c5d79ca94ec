//! Reconciliation of heads (protocol 4): any two sets end up known to both
//! sides, every difference is sent once and nothing the other side holds
//! is sent at all, and the cost follows the difference, not the size.

use std::collections::{BTreeMap, BTreeSet};

use festival_core::frame::Head;
use festival_core::sync::recon::{self, exchange, HeadSet, Node, Part};
use festival_core::{MessageId, PeerId, RoomId};
use proptest::prelude::*;

type Set = BTreeMap<PeerId, Head>;

/// Author `i`: spread over the id space, or (`clustered`) sharing their
/// first six bytes, so that the trie goes deep.
fn author(i: u32, clustered: bool) -> PeerId {
    let mut b = *blake3::hash(&i.to_le_bytes()).as_bytes();
    if clustered {
        b[..6].fill(0x5a);
    }
    PeerId::from_bytes(b)
}

fn head(author: PeerId, max: u64, tip: u8) -> Head {
    Head { author, contiguous: max.saturating_sub(1), max, tip: MessageId::from_bytes([tip; 32]) }
}

/// Checks one exchange of `a` with `b`: afterwards each side knows, for
/// every author, both sides' heads; each head crossed at most once and
/// only when the receiver did not hold it as it is.
fn check(a: &Set, b: &Set) -> Result<recon::Exchange, TestCaseError> {
    let x = exchange(&RoomId::festival(), a, b);
    for (sent, from, to) in [(&x.to_a, b, a), (&x.to_b, a, b)] {
        let unique: BTreeSet<PeerId> = sent.iter().map(|h| h.author).collect();
        prop_assert_eq!(unique.len(), sent.len(), "a head sent twice");
        for h in sent {
            prop_assert_eq!(from.get(&h.author), Some(h), "sent a head it does not hold");
            prop_assert_ne!(to.get(&h.author), Some(h), "sent a head the receiver holds");
        }
        // Every head of `from` that `to` lacks as it is, got there.
        let differing: BTreeSet<PeerId> =
            from.iter().filter(|(k, h)| to.get(*k) != Some(*h)).map(|(k, _)| *k).collect();
        prop_assert_eq!(unique, differing);
    }
    Ok(x)
}

fn sets() -> impl Strategy<Value = (Set, Set)> {
    // Authors 0..n; each side holds each author or not, at some position.
    (1u32..400, any::<bool>(), prop::collection::vec((0u8..4, 0u8..4), 400)).prop_map(|(n, clustered, marks)| {
        let (mut a, mut b) = (Set::new(), Set::new());
        for i in 0..n {
            let id = author(i, clustered && i % 2 == 0);
            let (ma, mb) = marks[i as usize];
            // 0: not held; 1..=3: held at that seq. Mostly equal.
            if ma > 0 {
                a.insert(id, head(id, ma as u64, ma));
            }
            if mb > 0 && (i % 7 != 0) {
                b.insert(id, head(id, ma.max(1) as u64, ma.max(1)));
            } else if mb > 0 {
                b.insert(id, head(id, mb as u64, mb + 10));
            }
        }
        (a, b)
    })
}

proptest! {
    #[test]
    fn any_two_sets_reconcile_and_each_difference_is_sent_once((a, b) in sets()) {
        check(&a, &b)?;
        check(&b, &a)?;
    }

    #[test]
    fn sets_in_sync_exchange_one_fingerprint((a, _) in sets()) {
        let x = check(&a, &a.clone())?;
        prop_assert_eq!(x.frames, 1);
        prop_assert!(x.bytes < 64, "{} bytes", x.bytes);
    }

    /// The stateless answer never grows what it sends beyond the bounds the
    /// frame decoder checks, whatever the sender claims.
    #[test]
    fn answers_keep_the_frame_bounds((a, _) in sets(), depth in 0u8..=16, path in any::<u64>(), fps in prop::collection::vec(any::<[u8; 8]>(), 0..=16), kind in 0u8..4) {
        let path = if depth == 16 { path } else { path & ((1u64 << (4 * depth)) - 1) };
        let node = Node { depth, path };
        let present = (1u32 << fps.len()).wrapping_sub(1) as u16;
        let part = match (kind, depth < 16) {
            (0, _) => Part::Fingerprint { node, fp: fps.first().copied().unwrap_or_default() },
            (1, _) => Part::Hashes { node, hashes: fps.clone() },
            (2, _) | (3, false) => Part::Need { node, hashes: fps.clone() },
            _ => Part::Split { node, present, fps },
        };
        let ans = recon::answer(&a, &[part]);
        for f in recon::frames(&RoomId::festival(), &ans) {
            let bytes = f.encode();
            prop_assert!(festival_core::frame::Frame::decode(&bytes).is_ok());
        }
        prop_assert!(ans.read <= 3 * a.len(), "read {} of {}", ans.read, a.len());
    }
}

/// The cost of d differences grows with d and with log n, not with n: the
/// benchmark's targets (docs/benchmarks.md), here at sizes a test can
/// build quickly.
#[test]
fn cost_follows_the_difference() {
    let room = RoomId::festival();
    let n = 20_000;
    let full: Set = (0..n).map(|i| author(i, false)).map(|id| (id, head(id, 5, 1))).collect();
    let in_sync = exchange(&room, &full, &full.clone());
    assert!(in_sync.bytes <= 512, "in sync: {} bytes", in_sync.bytes);
    let mut behind = full.clone();
    for i in (0..n).step_by((n / 10) as usize) {
        let id = author(i, false);
        behind.insert(id, head(id, 4, 2));
    }
    let x = exchange(&room, &full, &behind);
    assert_eq!((x.to_a.len(), x.to_b.len()), (10, 10));
    assert!(x.bytes <= 8 * 1024, "10 differences in {n}: {} bytes", x.bytes);
    // A side that holds nothing gets everything from one answer.
    let fresh = exchange(&room, &Set::new(), &full);
    assert_eq!((fresh.to_a.len(), fresh.flights), (n as usize, 2));
    assert_eq!(full.under(Node::ROOT).len(), n as usize);
}
