//! Fetching live (`Config::live_pull`, while the crowd is not busy):
//! others' messages are announced to every direct link, tree or not, and
//! fetched from the first announcer at once, from the next one after the
//! graft timeout; a graft's answer on a direct link is pushes (room
//! traffic), not a batch; our own messages go to every link; relay sessions
//! keep their pushes; a busy node pushes along the tree again. The first
//! tests also run the same steps with `live_pull` off, so they fail if the
//! setting stops deciding; the later ones are about hostile announcers,
//! budgets and the edges of the live path.

use crate::common;

use common::Harness;
use festival_core::frame::{Frame, MsgRef};
use festival_core::sync::{Config, Content, Input, LinkKind};
use festival_core::{LinkId, RoomId, SignedEnvelope};

fn festival() -> RoomId {
    "festival".parse().unwrap()
}

fn pulling() -> Harness {
    Harness::with_config(9, Config::default())
}

fn pushing() -> Harness {
    Harness::with_config(9, Config { live_pull: false, ..Config::default() })
}

/// The frames sent on `link` since `from`.
fn to(h: &Harness, link: u64, from: usize) -> Vec<Frame> {
    h.sent[from..].iter().filter(|(l, _)| *l == LinkId(link)).map(|(_, f)| f.clone()).collect()
}

fn pushes(frames: &[Frame]) -> usize {
    frames.iter().filter(|f| matches!(f, Frame::Push(_))).count()
}

fn announced(frames: &[Frame]) -> usize {
    frames.iter().map(|f| if let Frame::IHave { refs } = f { refs.len() } else { 0 }).sum()
}

fn grafted(frames: &[Frame]) -> Vec<MsgRef> {
    frames.iter().flat_map(|f| if let Frame::Graft { refs } = f { refs.clone() } else { vec![] }).collect()
}

fn msg_ref(env: &SignedEnvelope) -> MsgRef {
    MsgRef { room: env.room().clone(), author: env.author(), seq: env.seq(), id: env.id() }
}

/// Three direct links (the harness makes each peer a child in our tree,
/// so all three are tree links) and a relay session.
fn linked(h: &mut Harness) {
    h.link(1, &common::identity(1));
    h.link(2, &common::identity(2));
    h.link(3, &common::identity(3));
    h.link_of_kind(4, &common::identity(4), LinkKind::Relay);
}

#[test]
fn others_messages_are_announced_to_every_direct_link_and_our_own_pushed_to_all() {
    let author = common::identity(10);
    let env = common::text(&author, "festival", 1, "anyone at the main stage?");

    let mut h = pulling();
    linked(&mut h);
    let from = h.sent.len();
    h.frame(1, common::push(&env));
    assert_eq!(h.delivered.len(), 1);
    for link in [2, 3] {
        let f = to(&h, link, from);
        assert_eq!((pushes(&f), announced(&f)), (0, 1), "tree link {link} is told, not pushed");
    }
    assert_eq!(pushes(&to(&h, 4, from)), 1, "the relay session is pushed");
    let back = to(&h, 1, from);
    assert_eq!((pushes(&back), announced(&back)), (0, 0), "nothing goes back to the sender");

    let from = h.sent.len();
    let (_, out) = h.node.send(festival(), Content::Text("at the bar".into()), h.now).unwrap();
    h.apply(out);
    for link in [1, 2, 3, 4] {
        assert_eq!(pushes(&to(&h, link, from)), 1, "our own goes to link {link} at once");
    }

    // The same with live fetching off: the tree's links are pushed.
    let mut h = pushing();
    linked(&mut h);
    let from = h.sent.len();
    h.frame(1, common::push(&env));
    for link in [2, 3] {
        assert_eq!(pushes(&to(&h, link, from)), 1, "with live_pull off, tree link {link} is pushed");
    }
}

#[test]
fn the_first_announcer_is_asked_at_once_and_the_next_one_after_the_graft_timeout() {
    let author = common::identity(10);
    let env = common::text(&author, "festival", 1, "hello");
    let r = msg_ref(&env);
    let timeout = Config::default().graft_timeout_ms;

    let mut h = pulling();
    linked(&mut h);
    let from = h.sent.len();
    h.frame(1, Frame::IHave { refs: vec![r.clone()] }.encode());
    assert_eq!(grafted(&to(&h, 1, from)), vec![r.clone()], "asked at once");
    h.frame(2, Frame::IHave { refs: vec![r.clone()] }.encode());
    h.frame(3, Frame::IHave { refs: vec![r.clone()] }.encode());
    assert!(grafted(&to(&h, 2, from)).is_empty() && grafted(&to(&h, 3, from)).is_empty(), "one ask at a time");

    h.now += timeout - 1;
    h.feed(Input::Tick);
    assert!(grafted(&to(&h, 2, from)).is_empty(), "not before the timeout");
    h.now += 1;
    h.feed(Input::Tick);
    assert_eq!(grafted(&to(&h, 2, from)), vec![r.clone()], "the next announcer after the timeout");

    // Its answer comes; nobody else is asked.
    h.frame(2, common::push(&env));
    assert_eq!(h.delivered.len(), 1);
    h.now += 10 * timeout;
    h.feed(Input::Tick);
    assert!(grafted(&to(&h, 3, from)).is_empty(), "held: the third announcer is not asked");

    // With live fetching off, the first announcer is asked only after the
    // timeout (a push along the tree is waited for first).
    let mut h = pushing();
    linked(&mut h);
    let from = h.sent.len();
    h.frame(1, Frame::IHave { refs: vec![r.clone()] }.encode());
    assert!(grafted(&to(&h, 1, from)).is_empty(), "with live_pull off, a push is waited for");
    h.now += timeout;
    h.feed(Input::Tick);
    assert_eq!(grafted(&to(&h, 1, from)), vec![r]);
}

#[test]
fn an_announcement_on_a_relay_session_waits_for_a_push_as_before() {
    let env = common::text(&common::identity(10), "festival", 1, "hello");
    let mut h = pulling();
    linked(&mut h);
    let from = h.sent.len();
    h.frame(4, Frame::IHave { refs: vec![msg_ref(&env)] }.encode());
    assert!(grafted(&to(&h, 4, from)).is_empty(), "a relay session pushes: no ask at once");
    h.now += Config::default().graft_timeout_ms;
    h.feed(Input::Tick);
    assert_eq!(grafted(&to(&h, 4, from)).len(), 1, "asked after the timeout");
}

#[test]
fn a_graft_on_a_direct_link_is_answered_with_pushes() {
    let author = common::identity(10);
    let envs: Vec<SignedEnvelope> = (1..=2).map(|s| common::text(&author, "festival", s, "hi")).collect();

    for (mut h, live) in [(pulling(), true), (pushing(), false)] {
        linked(&mut h);
        for e in &envs {
            h.frame(1, common::push(e));
        }
        let from = h.sent.len();
        h.frame(2, Frame::Graft { refs: envs.iter().map(msg_ref).collect() }.encode());
        let answer = to(&h, 2, from);
        let batches = answer.iter().filter(|f| matches!(f, Frame::Batch { .. })).count();
        if live {
            assert_eq!((pushes(&answer), batches), (2, 0), "the live path: pushes, room traffic");
            for (f, e) in answer.iter().zip(&envs) {
                let Frame::Push(item) = f else { panic!("a push") };
                assert_eq!(item.envelope, e.bytes(), "oldest first");
            }
        } else {
            assert_eq!((pushes(&answer), batches), (0, 1), "with live_pull off, one batch");
        }
    }
}

/// A full window with more live messages than the busy threshold, from
/// `author` on link 1; then the next window begins (busy).
fn rush(h: &mut Harness, author: &festival_core::Identity) {
    let busy = Config::default().busy_messages_per_sec;
    for seq in 1..=busy + 1 {
        h.frame(1, common::push(&common::text(author, "festival", seq, "rush")));
    }
    h.now += 1_000;
}

#[test]
fn a_busy_node_pushes_along_the_tree_again() {
    let author = common::identity(10);
    let mut h = pulling();
    linked(&mut h);
    rush(&mut h, &author);
    let from = h.sent.len();
    let other = common::identity(11);
    h.frame(1, common::push(&common::text(&other, "festival", 1, "still here")));
    assert_eq!(pushes(&to(&h, 2, from)), 1, "busy: the tree pushes");

    // Quiet again after a window with few: fetching live.
    h.now += 1_000;
    h.frame(1, common::push(&common::text(&other, "festival", 2, "calm")));
    h.now += 1_000;
    let from = h.sent.len();
    h.frame(1, common::push(&common::text(&other, "festival", 3, "calm")));
    let f = to(&h, 2, from);
    assert_eq!((pushes(&f), announced(&f)), (0, 1), "quiet: told, and it asks");
}

#[test]
fn a_push_at_the_hop_limit_is_announced_on_every_link_even_to_a_relay_session() {
    let author = common::identity(10);
    let env = common::text(&author, "festival", 1, "far travelled");
    let mut h = pulling();
    linked(&mut h);
    let from = h.sent.len();
    h.frame(1, Frame::Push(festival_core::frame::Item { hops: 32, envelope: env.bytes().to_vec() }).encode());
    assert_eq!(h.delivered.len(), 1);
    for link in [2, 3, 4] {
        let f = to(&h, link, from);
        assert_eq!((pushes(&f), announced(&f)), (0, 1), "link {link}: no push beyond 32 hops, an announcement");
    }
}

#[test]
fn an_announcer_that_leaves_its_asks_unanswered_is_no_longer_asked_first() {
    use festival_core::sync::caps::{ANNOUNCER_STRIKES, STRIKE_MEMORY_MS};
    let author = common::identity(10);
    let timeout = Config::default().graft_timeout_ms;
    let mut h = pulling();
    linked(&mut h);
    // Link 1 announces first and never answers; link 2 announces each too.
    // Returns the grafts to link 1 at once, to link 2 at once, and to link
    // 2 after the timeout.
    let mut seq = 0;
    let mut round = |h: &mut Harness| -> (usize, usize, usize) {
        seq += 1;
        let env = common::text(&author, "festival", seq, "real");
        let r = msg_ref(&env);
        let from = h.sent.len();
        h.frame(1, Frame::IHave { refs: vec![r.clone()] }.encode());
        h.frame(2, Frame::IHave { refs: vec![r.clone()] }.encode());
        let (first, second_at_once) = (grafted(&to(h, 1, from)).len(), grafted(&to(h, 2, from)).len());
        if second_at_once > 0 {
            h.frame(2, common::push(&env));
        }
        h.now += timeout;
        h.feed(Input::Tick);
        let second_later = grafted(&to(h, 2, from)).len() - second_at_once;
        if second_at_once == 0 {
            h.frame(2, common::push(&env));
        }
        (first, second_at_once, second_later)
    };
    for k in 0..ANNOUNCER_STRIKES {
        assert_eq!(round(&mut h), (1, 0, 1), "ask {k}: the first announcer at once, the next after the timeout");
    }
    assert_eq!(round(&mut h), (0, 1, 0), "struck out: not asked, and the next announcer is asked at once");
    // Something it pushes unasked does not clear its strikes...
    h.frame(1, common::push(&common::text(&common::identity(11), "festival", 1, "hi")));
    assert_eq!(round(&mut h).0, 0, "an unasked push clears nothing");
    // ...a minute without strikes does.
    h.now += STRIKE_MEMORY_MS;
    assert_eq!(round(&mut h).0, 1, "strikes fade");
}

#[test]
fn an_announcer_that_answers_anything_after_the_ask_gets_no_strike_and_one_that_leaves_gets_none_twice() {
    use festival_core::sync::caps::ANNOUNCER_STRIKES;
    let author = common::identity(10);
    let timeout = Config::default().graft_timeout_ms;
    let mut h = pulling();
    linked(&mut h);
    // Link 1 is asked and answers slowly (a push of something else comes
    // from it before the timeout): never a strike, however often.
    for seq in 1..=u64::from(ANNOUNCER_STRIKES) + 1 {
        let env = common::text(&author, "festival", seq, "slow");
        let r = msg_ref(&env);
        let from = h.sent.len();
        h.frame(1, Frame::IHave { refs: vec![r.clone()] }.encode());
        h.frame(2, Frame::IHave { refs: vec![r.clone()] }.encode());
        assert_eq!(grafted(&to(&h, 1, from)).len(), 1, "round {seq}: still asked first");
        h.frame(1, common::push(&common::text(&common::identity(20 + seq), "festival", 1, "busy here")));
        h.now += timeout;
        h.feed(Input::Tick);
        h.frame(2, common::push(&env));
    }
    // Link 3 announces and is asked; the second announcer (link 2) is asked
    // after the timeout and goes away: link 3 is not struck a second time.
    let mut h = pulling();
    linked(&mut h);
    for seq in 1..u64::from(ANNOUNCER_STRIKES) {
        let env = common::text(&author, "festival", seq, "x");
        let r = msg_ref(&env);
        h.frame(3, Frame::IHave { refs: vec![r.clone()] }.encode());
        h.frame(2, Frame::IHave { refs: vec![r.clone()] }.encode());
        h.now += timeout;
        h.feed(Input::Tick);
        if seq + 1 == u64::from(ANNOUNCER_STRIKES) {
            h.feed(Input::LinkDown { link: LinkId(2) });
            h.feed(Input::Tick);
        } else {
            h.frame(2, common::push(&env));
        }
    }
    let env = common::text(&author, "festival", 50, "next");
    let from = h.sent.len();
    h.frame(3, Frame::IHave { refs: vec![msg_ref(&env)] }.encode());
    assert_eq!(grafted(&to(&h, 3, from)).len(), 1, "one strike per unanswered ask: still trusted");
}

#[test]
fn announcements_made_up_to_fill_the_awaited_map_do_not_stop_the_live_path() {
    use festival_core::sync::caps::{MAX_MISSING, MAX_MISSING_PER_LINK};
    let mut h = pulling();
    linked(&mut h);
    // Four more links fill what the node awaits with made-up positions.
    let per = MAX_MISSING_PER_LINK as u64;
    for k in 0..(MAX_MISSING as u64 / per) {
        let link = 10 + k;
        h.link(link, &common::identity(100 + k));
        let fake = common::identity(200 + k);
        let refs: Vec<MsgRef> = (1..=per).map(|s| msg_ref(&common::text(&fake, "festival", s, "never sent"))).collect();
        for chunk in refs.chunks(512) {
            h.frame(link, Frame::IHave { refs: chunk.to_vec() }.encode());
        }
    }
    assert_eq!(h.node.state_sizes().missing, MAX_MISSING, "the awaited map is full");
    let env = common::text(&common::identity(10), "festival", 1, "real");
    let from = h.sent.len();
    h.frame(2, Frame::IHave { refs: vec![msg_ref(&env)] }.encode());
    assert_eq!(grafted(&to(&h, 2, from)), vec![msg_ref(&env)], "asked at once all the same");
    h.frame(3, Frame::IHave { refs: vec![msg_ref(&env)] }.encode());
    assert!(grafted(&to(&h, 3, from)).is_empty(), "not asked of a second announcer as well");
    h.frame(2, common::push(&env));
    assert!(h.delivered.iter().any(|d| d.0 == env.id()));
}

#[test]
fn a_ref_far_beyond_what_we_hold_is_not_asked_for() {
    let max_ahead = Config::default().max_seq_ahead;
    let author = common::identity(10);
    let mut h = pulling();
    linked(&mut h);
    let from = h.sent.len();
    let far = msg_ref(&common::text(&author, "festival", max_ahead + 1, "made up"));
    let near = msg_ref(&common::text(&author, "festival", max_ahead, "maybe"));
    h.frame(1, Frame::IHave { refs: vec![far, near.clone()] }.encode());
    assert_eq!(grafted(&to(&h, 1, from)), vec![near]);
}

#[test]
fn a_peer_of_an_older_protocol_keeps_its_pushes_and_is_not_asked_at_once() {
    use festival_core::sync::LIVE_FETCH_VERSION;
    let author = common::identity(10);
    let env = common::text(&author, "festival", 1, "hello");
    let mut h = pulling();
    h.link(1, &common::identity(1));
    h.link_speaking(2, &common::identity(2), LinkKind::Lan, LIVE_FETCH_VERSION - 1);
    h.link(3, &common::identity(3));
    let from = h.sent.len();
    h.frame(1, common::push(&env));
    assert_eq!(pushes(&to(&h, 2, from)), 1, "the older peer (a tree child) is pushed");
    let f = to(&h, 3, from);
    assert_eq!((pushes(&f), announced(&f)), (0, 1), "the newer one is told");
    // Its announcement waits for a push, as it expects.
    let other = common::text(&author, "festival", 2, "again");
    let from = h.sent.len();
    h.frame(2, Frame::IHave { refs: vec![msg_ref(&other)] }.encode());
    assert!(grafted(&to(&h, 2, from)).is_empty());
}

#[test]
fn a_graft_for_a_flooding_authors_message_is_served_as_a_batch() {
    let flooder = common::identity(10);
    let mut h = pulling();
    linked(&mut h);
    let (_, burst) = Config::default().author_push_rate;
    let envs: Vec<SignedEnvelope> =
        (1..=u64::from(burst) + 1).map(|s| common::text(&flooder, "festival", s, "spam")).collect();
    for e in &envs {
        h.frame(1, common::push(e));
    }
    assert_eq!(h.node.stats().held_back, 1, "the burst, then over its budget");
    // The one that took the budget's last token went on as any: live.
    let from = h.sent.len();
    h.frame(2, Frame::Graft { refs: vec![msg_ref(&envs[envs.len() - 2])] }.encode());
    assert_eq!(pushes(&to(&h, 2, from)), 1, "within the budget when it went on: a push");
    let from = h.sent.len();
    h.frame(2, Frame::Graft { refs: vec![msg_ref(envs.last().unwrap())] }.encode());
    let answer = to(&h, 2, from);
    assert!(
        matches!(answer.as_slice(), [Frame::Batch { items }] if items.len() == 1),
        "held back: a batch behind catch-up, not a push: {answer:?}"
    );
}

#[test]
fn when_the_asked_announcer_goes_away_the_next_is_asked_at_once() {
    let env = common::text(&common::identity(10), "festival", 1, "hello");
    let r = msg_ref(&env);
    let mut h = pulling();
    linked(&mut h);
    h.frame(1, Frame::IHave { refs: vec![r.clone()] }.encode());
    h.frame(2, Frame::IHave { refs: vec![r.clone()] }.encode());
    let from = h.sent.len();
    h.feed(Input::LinkDown { link: LinkId(1) });
    h.feed(Input::Tick);
    assert_eq!(grafted(&to(&h, 2, from)), vec![r], "no graft timeout to wait out");
}

#[test]
fn after_a_busy_spell_and_silence_the_node_fetches_live_again() {
    let author = common::identity(10);
    let mut h = pulling();
    linked(&mut h);
    rush(&mut h, &author);
    h.frame(1, common::push(&common::text(&common::identity(11), "festival", 1, "busy")));
    // Silence, then an announcement: asked at once (not judged busy by a
    // window long gone).
    h.now += 5_000;
    let env = common::text(&common::identity(12), "festival", 1, "after the rush");
    let from = h.sent.len();
    h.frame(2, Frame::IHave { refs: vec![msg_ref(&env)] }.encode());
    assert_eq!(grafted(&to(&h, 2, from)).len(), 1);
}

#[test]
fn a_graft_for_a_longer_run_is_answered_with_a_batch_and_anothers_message_never_goes_on_with_hops_1() {
    let author = common::identity(10);
    let mut h = pulling();
    linked(&mut h);
    let envs: Vec<SignedEnvelope> = (1..=5).map(|s| common::text(&author, "festival", s, "run")).collect();
    for e in &envs {
        h.frame(1, common::push(e));
    }
    let from = h.sent.len();
    h.frame(2, Frame::Graft { refs: envs.iter().map(msg_ref).collect() }.encode());
    let answer = to(&h, 2, from);
    assert!(
        matches!(answer.as_slice(), [Frame::Batch { items }] if items.len() == 5),
        "a run of five: one batch: {answer:?}"
    );
    // A message the store holds with hops 0 (a peer sent it so) goes on
    // with 2, not 1 ("the author's own").
    h.held_loads = Some(Vec::new());
    let from = h.sent.len();
    h.frame(3, Frame::Graft { refs: vec![msg_ref(&envs[0])] }.encode());
    let load = h.held_loads.take().unwrap().remove(0);
    h.feed(Input::Loaded { load, items: vec![(envs[0].clone(), 0)] });
    let hops: Vec<u8> =
        to(&h, 3, from).iter().filter_map(|f| if let Frame::Push(i) = f { Some(i.hops) } else { None }).collect();
    assert_eq!(hops, vec![2]);
}
