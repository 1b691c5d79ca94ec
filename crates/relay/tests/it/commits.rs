//! The commit budget (`commits_per_sec`): messages arriving faster than it
//! wait for the next commit and share it; every one is committed and
//! acknowledged, and the commits stay within the budget.

use crate::common;

use common::*;
use festival_core::frame::{Frame, Hello, Item};
use festival_core::sync::PROTOCOL_VERSION;
use festival_core::{MessageId, RoomId};
use festival_node::relay::wire::RelayMsg;
use festival_relay::RelayConfig;
use std::collections::HashSet;

const COMMITS: &str = "festival_relay_commits_total";

/// `n` texts of one author in the festival room, each pushed in a frame of
/// its own, one every 50 ms (20 a second: frames that arrive together
/// would share a commit anyway), to a relay with `budget` commits a
/// second: how many commits stored them, and in how long.
async fn burst(budget: u32, n: u64) -> (u64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(RelayConfig { commits_per_sec: budget, ..test_config(dir.path()) }).await;
    let mut ws = authed(relay.addr, &identity()).await;
    let hello =
        Hello { version: PROTOCOL_VERSION, ack: false, rooms: vec![RoomId::festival()], relays: false, powered: false };
    send(&mut ws, &RelayMsg::Frame(Frame::Hello(hello).encode())).await;
    let author = identity();
    let started = std::time::Instant::now();
    let before = relay.metric(COMMITS).await;
    let mut waiting: HashSet<MessageId> = HashSet::new();
    let mut pace = tokio::time::interval(std::time::Duration::from_millis(50));
    // A late tick is not made up for by two at once (they would share).
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1..=n {
        pace.tick().await;
        let env = festival_core::envelope::SignedEnvelope::sign(
            &author,
            festival_core::envelope::Draft {
                seq,
                room: RoomId::festival(),
                kind: festival_core::envelope::Kind::Text,
                created_at: festival_node::clock::now_ms(),
                body: festival_core::body::Body::Text(format!("burst {seq}")).encode(),
            },
        )
        .unwrap();
        waiting.insert(env.id());
        let push = Frame::Push(Item { hops: 0, envelope: env.bytes().to_vec() });
        send(&mut ws, &RelayMsg::Frame(push.encode())).await;
    }
    tokio::time::timeout(DEADLINE, async {
        while !waiting.is_empty() {
            match next_msg(&mut ws).await {
                Some(RelayMsg::Stored { ids }) => ids.iter().for_each(|id| {
                    waiting.remove(id);
                }),
                Some(_) => {}
                None => panic!("the relay closed the socket"),
            }
        }
    })
    .await
    .expect("every message is acknowledged");
    let secs = started.elapsed().as_secs_f64();
    let commits = relay.metric(COMMITS).await - before;
    relay.stop().await;
    (commits, secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_the_budget_messages_share_commits_and_every_one_is_acknowledged() {
    let (commits, secs) = burst(2, 30).await;
    assert!(secs >= 1.4, "the frames took their 1.45 s");
    // One commit at once (a tenth of a second's worth, at least one), then
    // two a second.
    let most = 1 + (2.0 * secs).ceil() as u64;
    assert!((1..=most).contains(&commits), "{commits} commits in {secs:.2} s, at most {most}");
}

/// Without the budget binding, the same frames take many more commits:
/// each arrives alone (the one above is not batched by chance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_budget_frames_are_committed_as_they_come() {
    let (commits, secs) = burst(1_000_000, 30).await;
    assert!(commits > 1 + (2.0 * secs).ceil() as u64, "{commits} commits in {secs:.2} s");
}
