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
