//! Network containment guard for tests and benchmarks: mDNS joins multicast
//! on every interface and WebRTC gathers candidates from every interface, so
//! they may only run inside a network namespace the project created.

/// Whether this process lives in a network namespace that one of its
/// ancestors does not: `unshare --net` and `ip netns exec` both leave the
/// shell that started them outside. (init's own namespace is not always
/// readable, so compare with the nearest ancestor that is.)
pub fn in_private_netns() -> bool {
    let netns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let parent = |pid: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        stat.rsplit_once(')')?.1.split_whitespace().nth(1).map(str::to_owned)
    };
    let Some(ours) = netns("self") else { return false };
    let mut pid = "self".to_owned();
    while let Some(up) = parent(&pid).filter(|p| p != "0") {
        if netns(&up).is_some_and(|theirs| theirs != ours) {
            return true;
        }
        pid = up;
    }
    false // every readable ancestor shares our namespace: assume the worst
}

/// Panic with the command to use unless inside a private namespace.
pub fn require_private_netns() {
    assert!(
        in_private_netns(),
        "refusing to open network sockets in the machine's own network namespace: run inside \
         `unshare --net` (scripts/test does: see README)"
    );
}
