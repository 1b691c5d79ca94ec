//! `festival-bench sim` in CI, small: every message reaches every node, and
//! the same seed run again gives the same frame trace (`deterministic`).

mod common;

#[test]
fn the_sim_bench_delivers_everything_and_a_seed_gives_one_trace() {
    let l = common::run_one(&["sim", "--nodes", "60", "--messages", "30", "--seed", "3", "--determinism-nodes", "60"]);
    assert_eq!(l["bench"], "sim");
    assert_eq!(l["delivery_ratio"], 1.0, "{l}");
    assert_eq!(l["deterministic"], true, "two runs of one seed differ: {l}");
    assert_eq!(l["determinism_nodes"], 60, "{l}");
    assert_eq!(l["trace_hash"].as_str().map(str::len), Some(64), "{l}");
    assert!(l["peak_rss_mb"].as_f64().is_some_and(|m| m > 0.0), "{l}");
}

/// Issue 11's crowd, small enough for CI: a room of 1,000 authors (people
/// who wrote earlier and are not among the nodes) on 60 devices that
/// arrive, sleep and wake; each device starts lacking 1 % of that history.
/// Everyone ends with everything, and anti-entropy per link opened costs a
/// fraction of one summary of the room's heads (~72 KB each way at
/// protocol 3, at every link-up).
#[test]
fn a_room_of_many_authors_on_a_churning_crowd_reconciles_at_the_cost_of_the_difference() {
    let l = common::run_one(&[
        "sim",
        "--lan",
        "--nodes",
        "60",
        "--authors",
        "1000",
        "--messages",
        "20",
        "--churn",
        "0.1",
        "--seed",
        "5",
        "--determinism-nodes",
        "60",
    ]);
    assert_eq!(l["delivery_ratio"], 1.0, "{l}");
    assert_eq!(l["history_ratio"], 1.0, "{l}");
    assert_eq!(l["deterministic"], true, "{l}");
    assert!(common::number(&l, "slept") > 0.0, "{l}");
    let per_link = common::number(&l, "sync_bytes_per_link");
    assert!(per_link > 0.0 && per_link < 10_000.0, "{l}");
}
