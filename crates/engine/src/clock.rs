//! Time, on the two clocks the core takes (see `festival_core::sync::Now`):
//! a monotonic one for every timer, the wall clock for dates only.
//!
//! The monotonic clock is tokio's, so a test that pauses tokio's time
//! (`tokio::time::pause`) moves the core's timers with it. It starts at the
//! wall clock's reading when the [`Clock`] is made and counts on from there,
//! so in a run where nobody touches the system clock both read the same.
//! A clock set before 1970 reads as 0 rather than panicking.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use festival_core::sync::{Millis, Now};

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Where the wall clock is read: the system's, or a test's.
pub type WallClock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// Both clocks of a node. Cheap to clone; clones count from the same origin.
#[derive(Clone)]
pub struct Clock {
    origin: tokio::time::Instant,
    /// The monotonic reading at `origin`.
    origin_ms: Millis,
    wall: WallClock,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock").field("now", &self.now()).finish()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

impl Clock {
    /// The system's wall clock, and tokio's monotonic one.
    pub fn system() -> Clock {
        Clock::with_wall(Arc::new(now_ms))
    }

    /// Dates from `wall` (a test's clock that jumps, say); timers on tokio's
    /// monotonic clock, starting at `wall`'s reading now.
    pub fn with_wall(wall: WallClock) -> Clock {
        Clock { origin: tokio::time::Instant::now(), origin_ms: wall(), wall }
    }

    /// The monotonic clock: for timers. Never goes back.
    pub fn mono(&self) -> Millis {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.origin_ms.saturating_add(elapsed)
    }

    /// The wall clock: for dates. May jump either way.
    pub fn wall(&self) -> Millis {
        (self.wall)()
    }

    pub fn now(&self) -> Now {
        Now { mono: self.mono(), wall: self.wall() }
    }
}
