//! `festival-bench sync` in CI: the targets hold (in sync at most
//! 512 bytes; ten differences among 100,000 authors at most 8 KiB), and
//! each point crossed exactly its differences (the bench checks that).

mod common;

#[test]
fn reconciliation_costs_the_difference_not_the_size() {
    let lines = common::run(&["sync", "--authors", "100,100000", "--differing", "0,1,10"]);
    assert_eq!(lines.len(), 6);
    for l in &lines {
        assert_eq!(l["bench"], "sync");
        let bytes = common::number(l, "bytes");
        if !l["target_bytes"].is_null() {
            assert_eq!(l["within_target"], true, "{l}");
        }
        if l["differing"] == 0 {
            assert_eq!(l["round_trips"], 1, "{l}");
            assert!(bytes <= 512.0, "{l}");
        }
    }
    let at = |n: u64, d: u64| {
        let l = lines.iter().find(|l| l["authors"] == n && l["differing"] == d).expect("point");
        common::number(l, "bytes")
    };
    // A thousand times the room costs a few times the bytes, not a thousand.
    assert!(at(100_000, 1) < 8.0 * at(100, 1), "{} vs {}", at(100_000, 1), at(100, 1));
    assert!(at(100_000, 10) <= 8192.0);
}
