//! `festival-bench relay` in CI, small: the synthetic nodes must really be
//! served (a protocol change once made the relay refuse their hellos, and
//! the bench went on printing figures for zero deliveries), the connection
//! count must reach its target, and both paths of the race must deliver.
//! Timings move with the machine's load: they are recorded in
//! docs/benchmarks.md, not checked here.

use std::process::Command;

#[test]
fn the_relay_bench_delivers_every_fan_out_message_and_holds_its_connections() {
    let out = Command::new(env!("CARGO_BIN_EXE_festival-bench"))
        .args(["relay", "--nodes", "40", "--room-size", "10", "--rate", "100", "--secs", "2"])
        .args(["--max-conns", "300", "--race-samples", "20"])
        .output()
        .expect("festival-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "festival-bench relay failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let l: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let f = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k} is no number in {l}"));
    assert_eq!(l["bench"], "relay");
    assert_eq!(f("expected_deliveries"), 200.0 * 9.0, "{l}");
    assert_eq!(f("delivered"), f("expected_deliveries"), "fan-out messages lost: {l}");
    assert_eq!(f("max_connections"), 300.0, "{l}");
    assert!(f("p2p_latency_ms") > 0.0 && f("relay_latency_ms") > 0.0, "{l}");
}
