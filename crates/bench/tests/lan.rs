//! `festival-bench lan` in CI, small: real `festival-node` processes on a
//! 2-host namespace LAN must deliver a newcomer's first message in every
//! run (the bench fails otherwise), and the figures it reports must be
//! there and consistent. Timings move with the machine's load: they are
//! recorded in docs/benchmarks.md, not checked here.
//!
//! Needs root (the bench makes its own network namespaces) and the
//! `festival-node` binary beside `festival-bench` (built by the workspace's
//! test run).

mod common;

#[test]
fn the_lan_bench_delivers_a_newcomers_first_message_in_every_run() {
    let l = common::run_one(&[
        "lan",
        "--setups",
        "2",
        "--rtt-samples",
        "50",
        "--small-messages",
        "500",
        "--large-messages",
        "5",
        "--start-runs",
        "4",
        "--idle-peers",
        "1",
        "--idle-secs",
        "1",
        "--busy-rate",
        "2000",
        "--busy-secs",
        "1",
        "--photos",
        "3",
    ]);
    let f = |k: &str| common::number(&l, k);
    assert_eq!(l["bench"], "lan");
    assert_eq!(f("start_runs"), 4.0, "{l}");
    assert!(f("start_to_first_msg_ms") > 0.0, "{l}");
    assert!(f("start_to_first_msg_max_ms") >= f("start_to_first_msg_ms"), "{l}");
    assert!(f("setup_ms") > 0.0 && f("msgs_per_s") > 0.0 && f("idle_rss_mb") > 0.0, "{l}");
    // Every announcement crossed the busy channel (the bench fails if one is
    // dropped), one each 20 ms of the busy second.
    assert_eq!(f("announcements_under_load"), 50.0, "{l}");
    assert!(f("announce_p99_ms_under_load") >= f("announce_p50_ms_under_load"), "{l}");
    // Every photo came whole (verified, put together, hash checked: the
    // bench fails otherwise), one after another, texts crossing beside them.
    assert_eq!(f("photos"), 3.0, "{l}");
    assert_eq!(f("photo_bytes"), 262_144.0, "{l}");
    assert!(f("photo_max_ms") >= f("photo_ms") && f("photo_ms") > 0.0, "{l}");
    assert!(f("texts_during_photo") >= 1.0 && f("texts_no_photo") >= f("texts_during_photo"), "{l}");
    assert!(f("text_p99_ms_during_photo") >= f("text_p50_ms_during_photo"), "{l}");
    assert!(f("text_p99_ms_no_photo") >= f("text_p50_ms_no_photo"), "{l}");
}
