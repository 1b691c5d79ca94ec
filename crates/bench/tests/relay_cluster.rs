//! `festival-bench relay-cluster` in CI, small: two instances on their own
//! PostgreSQL and Redis must deliver every fan-out message, most of them
//! across instances, and so must the run on one SQLite instance and the
//! Socket.IO servers of the comparison (scripts/test installs them with
//! `npm ci` before entering the test namespace). Timings move
//! with the machine's load: they are recorded in docs/benchmarks.md, not
//! checked here.

mod common;

#[test]
fn the_cluster_bench_delivers_every_message_across_instances() {
    let l = common::run_one(&[
        "relay-cluster",
        "--instances",
        "2",
        "--nodes",
        "40",
        "--room-size",
        "10",
        "--rate",
        "100",
        "--secs",
        "2",
    ]);
    let f = |k: &str| common::number(&l, k);
    assert_eq!(l["bench"], "relay-cluster");
    assert_eq!(f("expected_deliveries"), 200.0 * 9.0, "{l}");
    assert_eq!(f("delivered"), f("expected_deliveries"), "fan-out messages lost: {l}");
    // Members alternate between the two instances: 5 of 9 sit on the
    // other one.
    assert_eq!(f("cross_instance_deliveries"), 200.0 * 5.0, "{l}");
    assert!(f("cross_fanout_p99_ms") > 0.0, "{l}");
    assert_eq!(f("single_sqlite_delivered"), f("expected_deliveries"), "{l}");
    assert_eq!(f("socketio_delivered"), f("expected_deliveries"), "Socket.IO lost messages: {l}");
    assert!(f("socketio_cpu_pct_per_1k_msgs") > 0.0 && f("cpu_pct_per_1k_msgs") > 0.0, "{l}");
    assert!(f("rss_per_idle_conn_kb").is_finite(), "{l}");
}
