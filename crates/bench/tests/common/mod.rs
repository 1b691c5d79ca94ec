//! Running `festival-bench` from its CI tests: the process, its JSON lines,
//! and their numbers.
#![allow(dead_code)]

use std::process::Command;

use serde_json::Value;

/// Run `festival-bench <args>`; it must succeed. One JSON object per line
/// of its output, in order.
pub fn run(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_festival-bench")).args(args).output().expect("festival-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "festival-bench {} failed\n{stdout}\n{}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

/// [`run`] for a bench that prints one object.
pub fn run_one(args: &[&str]) -> Value {
    let mut lines = run(args);
    assert_eq!(lines.len(), 1, "one JSON object: {lines:?}");
    lines.remove(0)
}

/// The number under `k`; a missing or non-numeric key fails the test.
pub fn number(l: &Value, k: &str) -> f64 {
    l[k].as_f64().unwrap_or_else(|| panic!("{k} is no number in {l}"))
}
