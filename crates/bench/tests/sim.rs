//! `festival-bench sim` in CI, small: every message reaches every node, and
//! the same seed run again gives the same frame trace (`deterministic`).

use std::process::Command;

#[test]
fn the_sim_bench_delivers_everything_and_a_seed_gives_one_trace() {
    let out = Command::new(env!("CARGO_BIN_EXE_festival-bench"))
        .args(["sim", "--nodes", "60", "--messages", "30", "--seed", "3", "--determinism-nodes", "60"])
        .output()
        .expect("festival-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "festival-bench sim failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let l: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(l["bench"], "sim");
    assert_eq!(l["delivery_ratio"], 1.0, "{l}");
    assert_eq!(l["deterministic"], true, "two runs of one seed differ: {l}");
    assert_eq!(l["determinism_nodes"], 60, "{l}");
    assert_eq!(l["trace_hash"].as_str().map(str::len), Some(64), "{l}");
    assert!(l["peak_rss_mb"].as_f64().is_some_and(|m| m > 0.0), "{l}");
}
