//! The engine on a test's clocks: tokio's paused time drives the core's
//! timers, and a wall clock that jumps changes dates only (see
//! `festival_node::clock`). Time is paused only around steps that do not
//! touch SQLite: sqlx's pool counts its acquire timeout on tokio's clock,
//! which a paused runtime moves ahead while it waits for SQLite's thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use festival_core::frame::Frame;
use festival_core::policy::PowerState;
use festival_core::sync::{Config, Content, Input, LinkKind};
use festival_core::{Identity, LinkId, RoomId};
use festival_node::clock::Clock;
use festival_node::{Effect, Engine, LocalNode};

const T0: u64 = 1_750_000_000_000;
const HOUR: u64 = 3_600_000;

fn hellos(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Send { bytes, .. } if matches!(Frame::decode(bytes), Ok(Frame::Hello(_)))))
        .count()
}

fn wake(effects: &[Effect]) -> Option<u64> {
    effects.iter().rev().find_map(|e| if let Effect::WakeAt(t) = e { Some(*t) } else { None })
}

async fn engine(dir: &std::path::Path, wall: Arc<AtomicU64>) -> Engine {
    let local = LocalNode::open(dir).await.expect("store");
    local.init("clock-test").await.expect("identity");
    let clock = Clock::with_wall(Arc::new(move || wall.load(Ordering::Relaxed)));
    Engine::boot_with_clock(local.store.clone(), Config::default(), PowerState::Mains, clock).await.expect("engine")
}

#[tokio::test]
async fn timers_follow_tokio_time_and_dates_follow_the_wall_clock_when_it_jumps() {
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(T0));
    let mut e = engine(dir.path(), wall.clone()).await;
    // Booting took real time since the clock was made.
    let mono = e.clock().mono();
    assert!((T0..T0 + 60_000).contains(&mono), "the monotonic clock starts at the wall clock's reading: {mono}");

    // A link whose peer never answers: the hello is retried on the
    // monotonic clock, though the wall clock is set back an hour.
    tokio::time::pause();
    let peer = Identity::generate(&mut rand_core::OsRng).peer_id();
    let fx = e.handle(Input::LinkUp { link: LinkId(1), peer, kind: LinkKind::Lan }).await;
    assert_eq!(hellos(&fx), 1);
    let retry_at = wake(&fx).expect("a wake for the hello retry");
    wall.store(T0 - HOUR, Ordering::Relaxed);
    tokio::time::advance(Duration::from_millis(retry_at - e.clock().mono())).await;
    assert!(e.clock().mono() >= retry_at);
    let fx = e.handle(Input::Tick).await;
    assert_eq!(hellos(&fx), 1, "the retry fired with the wall clock an hour back");
    tokio::time::resume();

    // Dates: by the wall clock (back only when set back far), and the store's
    // received_at too.
    let festival = RoomId::festival();
    wall.store(T0 + 5_000, Ordering::Relaxed);
    let (a, _) = e.send(festival.clone(), Content::Text("one".into())).await.expect("sent");
    wall.store(T0 - HOUR, Ordering::Relaxed);
    let (b, _) = e.send(festival.clone(), Content::Text("two".into())).await.expect("sent");
    wall.store(T0 + 2 * HOUR, Ordering::Relaxed);
    let (c, _) = e.send(festival, Content::Text("three".into())).await.expect("sent");
    let store = e.store().clone();
    let get = |id| {
        let store = store.clone();
        async move { store.get(&id).await.unwrap().expect("stored") }
    };
    let (a, b, c) = (get(a).await, get(b).await, get(c).await);
    assert_eq!(a.envelope.created_at(), T0 + 5_000);
    assert_eq!(b.envelope.created_at(), T0 - HOUR, "set back by more than half the skew: the wall again");
    assert_eq!(c.envelope.created_at(), T0 + 2 * HOUR);
    assert_eq!((a.received_at, b.received_at, c.received_at), (T0 + 5_000, T0 - HOUR, T0 + 2 * HOUR));
}
