//! `festival-bench attack` in CI, on a smaller festival than the recorded
//! run (docs/benchmarks.md): every attack, its JSON keys, and its targets.
//! The relay attacks run the real `festival-relay` (built beside the bench
//! binary, as `cargo test --workspace` does) in this private namespace.
//! Delivery and latency are counted in the simulator's virtual time, so the
//! figures are the same on a busy machine and a quiet one (a seeded run is
//! deterministic); peak memory is the victim process's own, from the kernel.

mod common;

const KEYS: [&str; 8] = [
    "bench",
    "attack",
    "honest_delivery_ratio",
    "honest_p99_ms",
    "baseline_p99_ms",
    "victim_peak_rss_mb",
    "victim_disk_mb",
    "disk_budget_mb",
];

#[test]
fn every_attack_leaves_honest_delivery_complete_latency_within_twice_and_the_victim_within_budget() {
    let lines = common::run(&[
        "attack",
        "--nodes",
        "60",
        "--hostile",
        "6",
        "--messages",
        "24",
        "--seed",
        "7",
        "--budget-mb",
        "1",
        "--flood",
        "4",
    ]);
    let names: Vec<&str> = lines.iter().map(|l| l["attack"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "dm_flood",
            "invented_summaries",
            "ihave_flood",
            "claim_stall",
            "forged_receipts",
            "tree_hijack",
            "relay_room_flood",
            "relay_dm_flood"
        ]
    );
    let (sim, relay) = lines.split_at(6);
    // On the real relay: latency is wall time on a shared machine, so its
    // target is checked in the bench's recorded runs, not here.
    for l in relay {
        for k in KEYS {
            assert!(l.get(k).is_some(), "{k} missing in {l}");
        }
        let f = |k: &str| common::number(l, k);
        assert_eq!(l["target"], "relay");
        assert_eq!(f("baseline_delivery_ratio"), 1.0, "{l}");
        assert_eq!(f("honest_delivery_ratio"), 1.0, "honest messages lost under attack on the relay: {l}");
        assert!(f("victim_disk_mb") <= f("disk_budget_mb"), "{l}");
        assert!(f("victim_peak_rss_mb") <= f("victim_memory_budget_mb"), "{l}");
        assert!(f("hostile_frames_sent") > 0.0, "the attack did not run: {l}");
    }
    for l in sim {
        for k in KEYS {
            assert!(l.get(k).is_some(), "{k} missing in {l}");
        }
        let f = |k: &str| common::number(l, k);
        assert_eq!(l["bench"], "attack");
        assert_eq!(f("baseline_delivery_ratio"), 1.0, "{l}");
        assert_eq!(f("honest_delivery_ratio"), 1.0, "honest messages lost under attack: {l}");
        // The tree hijack too, since live fetch (a quiet crowd's messages do
        // not follow the tree; it was 3-5 times when they did).
        assert!(f("honest_p99_ms") <= 2.0 * f("baseline_p99_ms"), "p99 under attack more than twice: {l}");
        assert!(f("victim_disk_mb") <= f("disk_budget_mb"), "{l}");
        assert!(f("honest_peak_disk_mb") <= f("disk_budget_mb"), "{l}");
        assert!(f("victim_peak_rss_mb") <= f("victim_memory_budget_mb"), "{l}");
        assert_eq!(l["missing"], serde_json::json!([]), "{l}");
    }
    let flood = &lines[0];
    assert!(
        flood["victim_disk_mb"].as_f64().unwrap() > 0.5 * flood["disk_budget_mb"].as_f64().unwrap(),
        "the flood should press the victim's store towards its budget: {flood}"
    );
}
