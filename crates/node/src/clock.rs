//! Wall-clock time in milliseconds since the Unix epoch.
//!
//! The core is given the time with every input; envelopes carry it as
//! `created_at`. A clock set before 1970 reads as 0 rather than panicking.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
