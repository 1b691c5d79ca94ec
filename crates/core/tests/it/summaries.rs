//! Summaries after the first carry only the heads that changed since the
//! last one a link was told: a room of many authors costs a link what
//! changed, not a head per author at every sync. Between protocol 4 nodes
//! the first is not sent at all: the link-up reconciles (`sync::recon`),
//! and costs one fingerprint when the two are in sync.

use crate::common;

use common::Harness;
use festival_core::frame::{Frame, Head, Summary};
use festival_core::sync::{digest_of, Input, LinkKind};
use festival_core::{LinkId, MessageId, PeerId, RoomId};

const MINUTE: u64 = 60_000;

/// The heads of every Summary sent on `link` since `from`, by author, but
/// the node's own: it writes receipts of what it got at its ticks, and
/// its own head changes with them.
fn summarised(h: &Harness, link: u64, room: &RoomId, from: usize) -> Vec<Vec<PeerId>> {
    let me = h.node.peer_id();
    h.sent[from..]
        .iter()
        .filter_map(|(l, f)| match f {
            Frame::Summary(s) if *l == LinkId(link) && s.room == *room => {
                Some(s.heads.iter().map(|h: &Head| h.author).filter(|a| *a != me).collect::<Vec<_>>())
            }
            _ => None,
        })
        .filter(|heads| !heads.is_empty())
        .collect()
}

fn sync_round(h: &mut Harness) -> usize {
    let from = h.sent.len();
    h.now += MINUTE;
    h.feed(Input::Tick);
    from
}

#[test]
fn a_delta_summary_carries_what_changed_since_the_link_was_last_told() {
    let room = RoomId::festival();
    let authors: Vec<_> = (0..5).map(|i| common::identity(100 + i)).collect();
    let (bringer, listener) = (common::identity(1), common::identity(2));
    let mut h = Harness::new(9, vec![]);
    h.link(1, &bringer);
    for a in &authors {
        h.frame(1, common::push(&common::text(a, "festival", 1, "hi")));
    }
    let before = h.sent.len();
    // A protocol 3 peer: it gets every head at link-up, and digests.
    h.link_speaking(2, &listener, LinkKind::Lan, 3);
    let first = summarised(&h, 2, &room, before);
    let all: usize = first.iter().map(Vec::len).sum();
    assert!(all >= authors.len(), "the link-up summary names every author: {first:?}");

    // One author writes again: the next sync tells the listener of it alone.
    h.frame(1, common::push(&common::text(&authors[3], "festival", 2, "again")));
    let from = sync_round(&mut h);
    assert_eq!(summarised(&h, 2, &room, from), vec![vec![authors[3].peer_id()]]);

    // Nothing changed: no summary at all (the digest says "still the same").
    let from = sync_round(&mut h);
    assert_eq!(summarised(&h, 2, &room, from), Vec::<Vec<PeerId>>::new());
    assert!(
        h.sent[from..].iter().any(|(l, f)| *l == LinkId(2) && matches!(f, Frame::Digest { .. })),
        "the digest still goes"
    );

    // Two change: both, in author order, nothing else.
    h.frame(1, common::push(&common::text(&authors[0], "festival", 2, "more")));
    h.frame(1, common::push(&common::text(&authors[4], "festival", 2, "more")));
    let from = sync_round(&mut h);
    let mut both = vec![authors[0].peer_id(), authors[4].peer_id()];
    both.sort();
    assert_eq!(summarised(&h, 2, &room, from), vec![both]);
}

#[test]
fn a_head_that_holds_nothing_is_not_taken_into_the_view() {
    // A head with max 0 says "nothing held": no digest counts it, so a view
    // that kept it would never match the sender's digest, and every sync
    // would ask it for a full summary again.
    let peer = common::identity(1);
    let mut h = Harness::new(9, vec![]);
    h.link(1, &peer);
    let nothing =
        Head { author: common::identity(100).peer_id(), contiguous: 0, max: 0, tip: MessageId::from_bytes([0; 32]) };
    let summary = Summary { room: RoomId::festival(), heads: vec![nothing], reply: false };
    h.frame(1, Frame::Summary(summary).encode());
    let from = h.sent.len();
    h.frame(1, Frame::Digest { room: RoomId::festival(), digest: digest_of(&[]) }.encode());
    let asked = h.sent[from..].iter().any(|(l, f)| *l == LinkId(1) && matches!(f, Frame::Summary(s) if s.reply));
    assert!(!asked, "the view matched the digest of nothing held");
    assert_eq!(h.node.state_sizes().claims, 0);
}

/// Frames from `a`'s link `la` go to `b`'s link `lb` and back, until
/// neither sends more; returns the bytes of the sync frames (summaries,
/// digests, reconciliation) each way.
fn shuttle(a: &mut Harness, la: u64, b: &mut Harness, lb: u64) -> (usize, usize) {
    let (mut at_a, mut at_b, mut bytes) = (0, 0, (0, 0));
    let sync_bytes = |f: &Frame| match f {
        Frame::Summary(_) | Frame::Digest { .. } | Frame::Recon(_) => f.encode().len(),
        _ => 0,
    };
    for _ in 0..100 {
        let from_a: Vec<Frame> =
            a.sent[at_a..].iter().filter(|(l, _)| *l == LinkId(la)).map(|(_, f)| f.clone()).collect();
        let from_b: Vec<Frame> =
            b.sent[at_b..].iter().filter(|(l, _)| *l == LinkId(lb)).map(|(_, f)| f.clone()).collect();
        (at_a, at_b) = (a.sent.len(), b.sent.len());
        if from_a.is_empty() && from_b.is_empty() {
            return bytes;
        }
        for f in from_a {
            bytes.0 += sync_bytes(&f);
            b.frame(lb, f.encode());
        }
        for f in from_b {
            bytes.1 += sync_bytes(&f);
            a.frame(la, f.encode());
        }
    }
    panic!("the two nodes never went quiet");
}

fn linked(a: &mut Harness, b: &mut Harness) -> (usize, usize) {
    let (ia, ib) = (a.node.peer_id(), b.node.peer_id());
    a.feed(Input::LinkUp { link: LinkId(1), peer: ib, kind: LinkKind::Lan });
    b.feed(Input::LinkUp { link: LinkId(1), peer: ia, kind: LinkKind::Lan });
    shuttle(a, 1, b, 1)
}

#[test]
fn protocol_4_nodes_in_sync_link_up_with_one_fingerprint() {
    let authors: Vec<_> = (0..300).map(|i| common::identity(100 + i)).collect();
    let envs: Vec<_> = authors.iter().map(|a| common::text(a, "festival", 1, "hi")).collect();
    let (mut a, mut b) = (Harness::new(1, vec![]), Harness::new(2, vec![]));
    let bringer = common::identity(50);
    for h in [&mut a, &mut b] {
        h.link(9, &bringer);
        for chunk in envs.chunks(100) {
            h.frame(9, common::batch(chunk));
        }
    }
    assert_eq!((a.delivered.len(), b.delivered.len()), (300, 300));
    let (ab, ba) = linked(&mut a, &mut b);
    // 300 heads in summaries would be ~22 KB each way.
    assert!(ab + ba <= 200, "in sync, the link-up cost {ab} + {ba} bytes");
    let recons = |h: &Harness| {
        let festival = |f: &Frame| matches!(f, Frame::Recon(r) if r.room == RoomId::festival());
        h.sent.iter().filter(|(l, f)| *l == LinkId(1) && festival(f)).count()
    };
    assert_eq!(recons(&a) + recons(&b), 1, "one side starts, the other agrees by silence");
}

#[test]
fn protocol_4_nodes_that_differ_reconcile_what_differs() {
    let authors: Vec<_> = (0..300).map(|i| common::identity(100 + i)).collect();
    let (mut a, mut b) = (Harness::new(1, vec![]), Harness::new(2, vec![]));
    let bringer = common::identity(50);
    a.link(9, &bringer);
    b.link(9, &bringer);
    for (i, au) in authors.iter().enumerate() {
        let env = common::text(au, "festival", 1, "hi");
        a.frame(9, common::push(&env));
        // b lacks ten of them, and holds a second message of five others.
        if i % 30 != 0 {
            b.frame(9, common::push(&env));
        }
        if i % 60 == 1 {
            b.frame(9, common::push(&common::text(au, "festival", 2, "again")));
        }
    }
    let (ab, ba) = linked(&mut a, &mut b);
    assert_eq!(a.delivered.len(), 305, "a got b's five second messages");
    assert_eq!(b.delivered.len(), 305, "b got the ten it lacked");
    // Fifteen heads differ: their heads, their messages and the exchange
    // that found them, well below the ~44 KB of 300 heads both ways.
    let summaries: usize = [&a, &b]
        .iter()
        .flat_map(|h| h.sent.iter())
        .filter_map(|(l, f)| match f {
            Frame::Summary(s) if *l == LinkId(1) => Some(s.heads.len()),
            _ => None,
        })
        .sum();
    assert!(summaries <= 2 * 15 + 4, "{summaries} heads in summaries");
    assert!(ab + ba <= 6_000, "{ab} + {ba} bytes");
}

#[test]
fn reconciliation_that_asks_faster_than_we_answer_is_refused_but_is_no_fault() {
    use festival_core::frame::Recon;
    use festival_core::sync::recon::{self, Node, Part};
    let authors: Vec<_> = (0..500).map(|i| common::identity(1_000 + i)).collect();
    let envs: Vec<_> = authors.iter().map(|a| common::text(a, "festival", 1, "hi")).collect();
    let (bringer, greedy) = (common::identity(50), common::identity(51));
    let mut h = Harness::new(1, vec![]);
    h.link(9, &bringer);
    for chunk in envs.chunks(100) {
        h.frame(9, common::batch(chunk));
    }
    h.link(2, &greedy);
    // "I hold nothing": the answer is every head (~36 KB). Again and again.
    let everything = Frame::Recon(Recon {
        room: RoomId::festival(),
        parts: vec![Part::Fingerprint { node: Node::ROOT, fp: recon::empty() }],
    })
    .encode();
    let from = h.sent.len();
    for _ in 0..400 {
        h.frame(2, everything.clone());
    }
    let sent: usize =
        h.sent[from..].iter().filter(|(l, _)| *l == LinkId(2)).map(|(_, f)| f.encode().len()).sum::<usize>();
    let burst = festival_core::sync::caps::SERVE_BYTES_BURST as usize;
    assert!(sent > burst / 2 && sent < burst + 64 * 1024, "answered {sent} bytes against a burst of {burst}");
    assert!(h.rejected_by(&greedy, "recon_busy") > 0);
    assert!(!h.misbehaving.contains(&LinkId(2)), "an eager asker is not dropped for it");
    // A second later the budget has refilled enough for another answer.
    h.now += 1_000;
    let from = h.sent.len();
    h.frame(2, everything);
    assert!(h.sent[from..].iter().any(|(l, f)| *l == LinkId(2) && matches!(f, Frame::Summary(_))));
}

#[test]
fn a_head_whose_tip_we_no_longer_know_takes_the_peers_and_then_agrees() {
    use festival_core::policy::PowerState;
    use festival_core::sync::{Config, Node, Snapshot, SnapshotHead};
    let author = common::identity(100).peer_id();
    let tip = MessageId::from_bytes([7; 32]);
    // Restarted after evicting the author's last message: marks, no tip.
    let snapshot = Snapshot {
        heads: vec![SnapshotHead { room: RoomId::festival(), author, contiguous: 4, max: 4, tip: None }],
        ..Snapshot::default()
    };
    let mut h = Harness::new(1, vec![]);
    h.node = Node::new(common::identity(1), Config::default(), snapshot, PowerState::Mains, common::NOW);
    let peer = common::identity(2);
    h.link(1, &peer);
    let head = Head { author, contiguous: 4, max: 4, tip };
    h.frame(1, Frame::Summary(Summary { room: RoomId::festival(), heads: vec![head], reply: false }).encode());
    // Our next delta tells the peer's tip back: our heads now agree.
    h.link(2, &common::identity(3));
    let from = sync_round(&mut h);
    let told: Vec<Head> = h.sent[from..]
        .iter()
        .filter_map(|(l, f)| match f {
            Frame::Summary(s) if *l == LinkId(1) => Some(s.heads.clone()),
            _ => None,
        })
        .flatten()
        .filter(|h| h.author == author)
        .collect();
    assert_eq!(told, vec![head]);
}

/// A peer that holds a blocked person's DMs keeps claiming them. The claim
/// goes into our view of the peer (so its digest still matches and no full
/// summary is asked for at every sync), but nothing of it is asked for.
#[test]
fn a_blocked_persons_dm_heads_match_the_view_but_are_not_asked_for() {
    let (peer, blocked) = (common::identity(1), common::identity(2));
    let mut h = Harness::new(9, vec![]);
    h.link(1, &peer);
    h.feed(Input::Block { peer: blocked.peer_id(), blocked: true });
    let theirs = Head { author: blocked.peer_id(), contiguous: 3, max: 3, tip: MessageId::from_bytes([7; 32]) };
    let from = h.sent.len();
    h.frame(1, Frame::Summary(Summary { room: RoomId::direct(), heads: vec![theirs], reply: false }).encode());
    let wanted = h.sent[from..].iter().any(|(_, f)| matches!(f, Frame::Want(w) if w.author == blocked.peer_id()));
    assert!(!wanted, "nothing of a blocked person's DMs is asked for");
    let from = h.sent.len();
    h.frame(1, Frame::Digest { room: RoomId::direct(), digest: digest_of(&[theirs]) }.encode());
    let asked = h.sent[from..].iter().any(|(l, f)| *l == LinkId(1) && matches!(f, Frame::Summary(s) if s.reply));
    assert!(!asked, "the view matched the peer's digest");
    // Unblocked: the claim already in the view is asked for at once.
    let from = h.sent.len();
    h.feed(Input::Block { peer: blocked.peer_id(), blocked: false });
    assert!(h.sent[from..].iter().any(|(_, f)| matches!(f, Frame::Want(w) if w.author == blocked.peer_id())));
}
