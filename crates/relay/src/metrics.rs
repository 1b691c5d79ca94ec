//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Plain atomics and one small map: every connection task and the hub bump
//! them, `/metrics` reads them. The refusal map is behind a std Mutex: it is
//! touched only on refusals and held for one map update, never across an
//! await.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use festival_store::pg::PgStore;

#[derive(Default)]
pub struct Metrics {
    /// Authenticated WebSockets open now.
    pub connections: AtomicI64,
    /// WebSockets open now that have not authenticated yet (read from the
    /// relay's slots when `/metrics` is asked).
    pub unauthenticated: AtomicI64,
    /// WebSockets accepted (upgraded), authenticated or not.
    pub connections_total: AtomicU64,
    pub authenticated_total: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Envelopes the relay acknowledged as committed (`Stored`).
    pub stored_acks: AtomicU64,
    /// Commits of what nodes' frames brought (see `commits_per_sec`).
    pub commits: AtomicU64,
    /// Envelopes other instances committed at a position this instance's
    /// own commit held pending: kept aside until that commit ended.
    pub cluster_kept: AtomicU64,
    pub signals_forwarded: AtomicU64,
    pub stun_requests: AtomicU64,
    /// Messages in the mailbox (the relay's store).
    pub mailbox_messages: AtomicU64,
    /// Rooms the relay carries.
    pub rooms: AtomicU64,
    /// The hub (engine + store) is running.
    pub hub_up: AtomicBool,
    /// Authors with an equivocation proof (two messages for one position).
    pub equivocators: AtomicU64,
    /// This relay is one instance of a cluster (PostgreSQL store); the
    /// counters below are rendered only then. See `crate::cluster`.
    pub clustered: AtomicBool,
    /// The shared store answered the last read of its committed order.
    pub store_up: AtomicBool,
    /// Redis answered the last command (false without a bus).
    pub bus_up: AtomicBool,
    /// Envelopes added to the bus, and those whose `XADD` failed.
    pub cluster_published: AtomicU64,
    pub cluster_publish_failed: AtomicU64,
    /// Envelopes other instances accepted, read from the bus.
    pub cluster_bus_received: AtomicU64,
    /// Envelopes read from the shared store's committed order (the
    /// fallback: while the bus runs, those the engine did not hold when the
    /// tail asked: what the bus missed or had not handed over yet, and
    /// envelopes of rooms this instance does not carry; while it does not,
    /// everything, also what the engine holds).
    pub cluster_tail_read: AtomicU64,
    /// Signals sent to, and received from, other instances.
    pub cluster_signals_out: AtomicU64,
    pub cluster_signals_in: AtomicU64,
    /// Work for the bus dropped because its queue was full.
    pub cluster_out_dropped: AtomicU64,
    /// Entries of the bus this instance has not read yet.
    pub cluster_stream_lag: AtomicI64,
    /// The shared store (set when the cluster starts), for its counts of
    /// how batches were stored.
    pub store: OnceLock<PgStore>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Count one refusal under a stable label.
    pub fn reject(&self, reason: &'static str) {
        *self.rejections.lock().expect("metrics lock").entry(reason).or_default() += 1;
    }

    /// Count `n` refusals under one label (the core reports them per second).
    pub fn reject_n(&self, reason: &'static str, n: u64) {
        *self.rejections.lock().expect("metrics lock").entry(reason).or_default() += n;
    }

    pub fn rejections(&self, reason: &str) -> u64 {
        self.rejections.lock().expect("metrics lock").get(reason).copied().unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut gauge = |name: &str, help: &str, v: i64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge("festival_relay_connections", "Authenticated WebSockets open now.", self.connections.load(Relaxed));
        gauge(
            "festival_relay_unauthenticated",
            "WebSockets open now that have not authenticated yet.",
            self.unauthenticated.load(Relaxed),
        );
        gauge("festival_relay_mailbox_messages", "Messages held in the relay's store.", to_i64(&self.mailbox_messages));
        gauge("festival_relay_rooms", "Rooms the relay carries.", to_i64(&self.rooms));
        gauge("festival_relay_up", "1 while the relay's engine and store run.", self.hub_up.load(Relaxed) as i64);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter("festival_relay_connections_total", "WebSockets accepted.", self.connections_total.load(Relaxed));
        counter(
            "festival_relay_authenticated_total",
            "WebSockets authenticated.",
            self.authenticated_total.load(Relaxed),
        );
        counter(
            "festival_relay_stored_acks_total",
            "Envelopes acknowledged as committed.",
            self.stored_acks.load(Relaxed),
        );
        counter(
            "festival_relay_commits_total",
            "Commits of what nodes' frames brought, each a store transaction (see commits_per_sec).",
            self.commits.load(Relaxed),
        );
        counter("festival_relay_signals_total", "Signaling messages forwarded.", self.signals_forwarded.load(Relaxed));
        counter(
            "festival_relay_stun_requests_total",
            "STUN binding requests answered.",
            self.stun_requests.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP festival_relay_frames_total Core frames carried.\n# TYPE festival_relay_frames_total counter\n\
             festival_relay_frames_total{{dir=\"in\"}} {}\nfestival_relay_frames_total{{dir=\"out\"}} {}",
            self.frames_in.load(Relaxed),
            self.frames_out.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP festival_relay_bytes_total WebSocket payload bytes.\n# TYPE festival_relay_bytes_total counter\n\
             festival_relay_bytes_total{{dir=\"in\"}} {}\nfestival_relay_bytes_total{{dir=\"out\"}} {}",
            self.bytes_in.load(Relaxed),
            self.bytes_out.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP festival_relay_rejections_total Refused connections, messages and frames, by reason.\n\
             # TYPE festival_relay_rejections_total counter"
        );
        for (reason, n) in self.rejections.lock().expect("metrics lock").iter() {
            let _ = writeln!(s, "festival_relay_rejections_total{{reason=\"{reason}\"}} {n}");
        }
        if self.clustered.load(Relaxed) {
            self.render_cluster(&mut s);
        }
        s
    }

    /// The cluster's gauges and counters (see `crate::cluster`).
    fn render_cluster(&self, s: &mut String) {
        let mut gauge = |name: &str, help: &str, v: i64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "festival_relay_store_up",
            "1 while the shared PostgreSQL store answers.",
            self.store_up.load(Relaxed) as i64,
        );
        gauge("festival_relay_bus_up", "1 while the Redis bus answers.", self.bus_up.load(Relaxed) as i64);
        gauge(
            "festival_relay_cluster_stream_lag",
            "Entries of the bus this instance has not read yet.",
            self.cluster_stream_lag.load(Relaxed),
        );
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "festival_relay_cluster_published_total",
            "Envelopes this instance added to the bus (fan-out).",
            self.cluster_published.load(Relaxed),
        );
        counter(
            "festival_relay_cluster_publish_failed_total",
            "Envelopes whose XADD failed (the store's tail carries them).",
            self.cluster_publish_failed.load(Relaxed),
        );
        counter(
            "festival_relay_cluster_bus_received_total",
            "Envelopes other instances accepted, read from the bus (fan-in).",
            self.cluster_bus_received.load(Relaxed),
        );
        counter(
            "festival_relay_cluster_fallback_reads_total",
            "Envelopes read from the shared store's committed order.",
            self.cluster_tail_read.load(Relaxed),
        );
        counter(
            "festival_relay_cluster_signals_out_total",
            "Signals sent to other instances.",
            self.cluster_signals_out.load(Relaxed),
        );
        counter(
            "festival_relay_cluster_signals_in_total",
            "Signals received from other instances.",
            self.cluster_signals_in.load(Relaxed),
        );
        counter(
            "festival_relay_cluster_kept_total",
            "Envelopes from other instances kept aside while this instance's own commit of their position was pending.",
            self.cluster_kept.load(Relaxed),
        );
        counter(
            "festival_relay_cluster_dropped_total",
            "Work for the bus dropped on a full queue.",
            self.cluster_out_dropped.load(Relaxed),
        );
        if let Some(store) = self.store.get() {
            let (fast, refused) = store.fast_path_counts();
            counter(
                "festival_relay_store_fast_path_total",
                "Batches of envelopes stored by the one-statement fast path.",
                fast,
            );
            counter(
                "festival_relay_store_fast_path_refused_total",
                "Batches the fast path refused (seqs seen before, a gap, a conflict), stored by the transaction.",
                refused,
            );
            counter(
                "festival_relay_store_unreadable_rows_total",
                "Rows of the shared store's messages the tail could not read and went past.",
                store.unreadable_rows(),
            );
        }
    }
}

fn to_i64(v: &AtomicU64) -> i64 {
    i64::try_from(v.load(Relaxed)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_render_per_reason() {
        let m = Metrics::default();
        m.reject("bad_signature");
        m.reject("bad_signature");
        m.reject("rate_limited");
        m.frames_in.fetch_add(3, Relaxed);
        let text = m.render();
        assert!(text.contains("festival_relay_rejections_total{reason=\"bad_signature\"} 2"), "{text}");
        assert!(text.contains("festival_relay_rejections_total{reason=\"rate_limited\"} 1"));
        assert!(text.contains("festival_relay_frames_total{dir=\"in\"} 3"));
        assert_eq!(m.rejections("bad_signature"), 2);
        assert_eq!(m.rejections("nothing"), 0);
    }
}
