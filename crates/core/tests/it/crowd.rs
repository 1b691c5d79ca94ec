//! A crowd that floods: one author's messages beyond its push budget are
//! announced, not pushed, while everyone else's (and our own) still are;
//! a busy node announces each message to few links, batched.
//!
//! Pushes of others' messages are what a busy crowd does (and a node with
//! `Config::live_pull` off); a quiet node fetches them live instead
//! (tests/live_pull.rs), so these run with `live_pull` off.

use crate::common;

use common::Harness;
use festival_core::frame::Frame;
use festival_core::sync::{Config, Input};
use festival_core::LinkId;

fn pushing() -> Harness {
    Harness::with_config(9, Config { live_pull: false, ..Config::default() })
}

fn pushes_and_refs(h: &Harness, link: u64, from: usize) -> (usize, usize) {
    let mut pushes = 0;
    let mut refs = 0;
    for (l, f) in &h.sent[from..] {
        match f {
            Frame::Push(_) if *l == LinkId(link) => pushes += 1,
            Frame::IHave { refs: r } if *l == LinkId(link) => refs += r.len(),
            _ => {}
        }
    }
    (pushes, refs)
}

#[test]
fn an_author_over_its_push_budget_is_announced_not_pushed() {
    let (source, listener) = (common::identity(1), common::identity(2));
    let (flooder, other) = (common::identity(10), common::identity(11));
    let mut h = pushing();
    h.link(1, &source);
    h.link(2, &listener);
    // One message first: the listener is pushed to (else this proves nothing).
    let from = h.sent.len();
    h.frame(1, common::push(&common::text(&other, "festival", 1, "hello")));
    assert_eq!(pushes_and_refs(&h, 2, from), (1, 0), "the listener is an eager link");

    let from = h.sent.len();
    for seq in 1..=30 {
        h.frame(1, common::push(&common::text(&flooder, "festival", seq, "spam")));
    }
    let (rate, burst) = festival_core::sync::Config::default().author_push_rate;
    assert_eq!((rate, burst), (2, 10));
    let (pushes, refs) = pushes_and_refs(&h, 2, from);
    assert_eq!(pushes, 10, "the burst of the flooder's budget");
    assert_eq!(refs, 20, "the rest announced");
    assert_eq!(h.node.stats().held_back, 20);
    assert_eq!(h.delivered.len(), 31, "all of it stored and delivered all the same");

    // Someone else's next message is pushed at once, and so is our own.
    let from = h.sent.len();
    h.frame(1, common::push(&common::text(&other, "festival", 2, "still here")));
    let out = h.node.send("festival".parse().unwrap(), festival_core::sync::Content::Text("mine".into()), h.now);
    let (_, out) = out.unwrap();
    h.apply(out);
    assert_eq!(pushes_and_refs(&h, 2, from).0, 2, "others' and own messages still pushed");

    // A second later the flooder has its rate's two more pushes, no more.
    h.now += 1_000;
    h.feed(Input::Tick);
    let from = h.sent.len();
    for seq in 31..=40 {
        h.frame(1, common::push(&common::text(&flooder, "festival", seq, "spam")));
    }
    assert_eq!(pushes_and_refs(&h, 2, from).0, 2);
}

#[test]
fn a_push_that_came_with_hops_0_goes_on_as_room_traffic_not_as_our_own() {
    let (source, listener, author) = (common::identity(1), common::identity(2), common::identity(10));
    let mut h = pushing();
    h.link(1, &source);
    h.link(2, &listener);
    let env = common::text(&author, "festival", 1, "hops zero");
    let from = h.sent.len();
    h.frame(1, Frame::Push(festival_core::frame::Item { hops: 0, envelope: env.bytes().to_vec() }).encode());
    let hops: Vec<u8> = h.sent[from..]
        .iter()
        .filter_map(|(l, f)| match f {
            Frame::Push(i) if *l == LinkId(2) => Some(i.hops),
            _ => None,
        })
        .collect();
    assert_eq!(hops, vec![2], "forwarded as if it had crossed one link");
}
