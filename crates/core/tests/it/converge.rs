//! Frames delivered in any order, with duplicates, converge to the same
//! holdings, and the user sees each message once, in per-author order.

use crate::common;

use std::collections::BTreeMap;

use common::Harness;
use festival_core::{PeerId, SignedEnvelope};
use proptest::prelude::*;

fn corpus(authors: usize, per_author: u64) -> Vec<SignedEnvelope> {
    let mut out = Vec::new();
    for a in 0..authors {
        let who = common::identity(100 + a as u64);
        for seq in 1..=per_author {
            out.push(common::text(&who, "festival", seq, &format!("{a}/{seq}")));
        }
    }
    out
}

/// A node with two links, fed `msgs` in `order` then `dups` again, each as
/// a push or (per `as_batch`) a batch of one, the links taking turns.
fn fed(msgs: &[SignedEnvelope], order: &[usize], dups: &[usize], as_batch: &[bool]) -> Harness {
    let peers = [common::identity(1), common::identity(2)];
    let mut h = Harness::new(9, vec![]);
    h.link(1, &peers[0]);
    h.link(2, &peers[1]);
    for (k, &i) in order.iter().chain(dups).enumerate() {
        let bytes = if as_batch[k % as_batch.len()] { common::batch(&msgs[i..=i]) } else { common::push(&msgs[i]) };
        h.frame(1 + (k % 2) as u64, bytes);
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_order_with_duplicates_converges(
        order in Just((0..24usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in prop::collection::vec(0..24usize, 0..10),
        as_batch in prop::collection::vec(any::<bool>(), 34),
    ) {
        let msgs = corpus(3, 8);
        let h = fed(&msgs, &order, &dups, &as_batch);
        // Each message exactly once, in per-author order, none missing.
        prop_assert_eq!(h.delivered.len(), msgs.len());
        let mut last: BTreeMap<PeerId, u64> = BTreeMap::new();
        for (_, author, seq) in &h.delivered {
            let prev = last.insert(*author, *seq).unwrap_or(0);
            prop_assert_eq!(*seq, prev + 1);
        }
        for m in &msgs {
            prop_assert_eq!(h.node.head(m.room(), &m.author()), (8, 8));
        }
        prop_assert!(h.rejected.is_empty(), "{:?}", h.rejected);
    }
}

/// Per author: a text, a photo of 3 pieces, a text, a photo of 2 pieces,
/// a text (seqs 1..=10).
fn corpus_with_photos(authors: usize) -> Vec<SignedEnvelope> {
    use festival_core::body::Body;
    use festival_core::photo::{cut, frame_only_jpeg, PhotoChunkBody, CHUNK_BYTES};
    use festival_core::{Draft, RoomId};
    let mut out = Vec::new();
    for a in 0..authors {
        let who = common::identity(100 + a as u64);
        let sign = |seq: u64, body: Body| {
            let draft = Draft {
                seq,
                room: RoomId::festival(),
                kind: body.kind(),
                created_at: common::NOW,
                body: body.encode(),
            };
            SignedEnvelope::sign(&who, draft).unwrap()
        };
        let mut seq = 1;
        for pieces in [3usize, 2] {
            out.push(common::text(&who, "festival", seq, &format!("{a}/{seq}")));
            seq += 1;
            let c = cut(
                &frame_only_jpeg((pieces - 1) * CHUNK_BYTES + 7, 64, 48),
                64,
                48,
                String::new(),
                frame_only_jpeg(300, 32, 24),
            )
            .unwrap();
            let header = sign(seq, Body::Photo(c.header));
            let id = header.id();
            out.push(header);
            seq += 1;
            for (i, data) in c.chunks.into_iter().enumerate() {
                out.push(sign(seq, Body::PhotoChunk(PhotoChunkBody { photo: id, index: i as u16, data })));
                seq += 1;
            }
        }
        out.push(common::text(&who, "festival", seq, &format!("{a}/{seq}")));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// With photos, whose pieces delivery may go past: still each message
    /// exactly once, texts and photos in per-author order, every piece
    /// after its photo, and every chain whole.
    #[test]
    fn photos_in_any_order_with_duplicates_are_each_delivered_once(
        order in Just((0..20usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in prop::collection::vec(0..20usize, 0..10),
        as_batch in prop::collection::vec(any::<bool>(), 30),
    ) {
        use festival_core::Kind;
        let msgs = corpus_with_photos(2);
        prop_assert_eq!(msgs.len(), 20);
        let h = fed(&msgs, &order, &dups, &as_batch);
        prop_assert_eq!(h.delivered.len(), msgs.len());
        let kind: BTreeMap<_, _> = msgs.iter().map(|m| (m.id(), m.kind())).collect();
        let header_of: BTreeMap<_, _> = msgs
            .iter()
            .filter_map(|m| match m.parsed_body() {
                festival_core::Body::PhotoChunk(c) => Some((m.id(), c.photo)),
                _ => None,
            })
            .collect();
        let mut last_shown: BTreeMap<PeerId, u64> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for (id, author, seq) in &h.delivered {
            prop_assert!(seen.insert(*id), "delivered twice");
            if kind[id] == Kind::PhotoChunk {
                prop_assert!(seen.contains(&header_of[id]), "a piece before its photo");
            } else {
                let prev = last_shown.insert(*author, *seq).unwrap_or(0);
                prop_assert!(*seq > prev, "out of order");
            }
        }
        for m in &msgs {
            prop_assert_eq!(h.node.head(m.room(), &m.author()), (10, 10));
        }
        prop_assert!(h.rejected.is_empty(), "{:?}", h.rejected);
    }
}
