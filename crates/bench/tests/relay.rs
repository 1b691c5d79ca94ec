//! `festival-bench relay` in CI, small: the synthetic nodes must really be
//! served (a protocol change once made the relay refuse their hellos, and
//! the bench went on printing figures for zero deliveries), the connection
//! count must reach its target, and both paths of the race must deliver.
//! Timings move with the machine's load: they are recorded in
//! docs/benchmarks.md, not checked here.

mod common;

#[test]
fn the_relay_bench_delivers_every_fan_out_message_and_holds_its_connections() {
    let l = common::run_one(&[
        "relay",
        "--nodes",
        "40",
        "--room-size",
        "10",
        "--rate",
        "100",
        "--secs",
        "2",
        "--max-conns",
        "300",
        "--race-samples",
        "20",
    ]);
    let f = |k: &str| common::number(&l, k);
    assert_eq!(l["bench"], "relay");
    assert_eq!(f("expected_deliveries"), 200.0 * 9.0, "{l}");
    assert_eq!(f("delivered"), f("expected_deliveries"), "fan-out messages lost: {l}");
    assert_eq!(f("max_connections"), 300.0, "{l}");
    assert!(f("p2p_latency_ms") > 0.0 && f("relay_latency_ms") > 0.0, "{l}");
}
