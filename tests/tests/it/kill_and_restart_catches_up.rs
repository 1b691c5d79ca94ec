//! A phone dies (SIGKILL: no goodbye, no clean close) while the others keep
//! chatting. While it is off, its owner writes a message (the offline `send`
//! command on its data dir). When it comes back on the same data dir it gets
//! every message it missed, shows each once, shows nothing it had already
//! shown again, and its offline message reaches everyone once.
//!
//! The node killed is the one with the highest PeerId: the lower id dials,
//! so this is the case where the restarted node cannot dial anyone itself
//! and must wait for the others to notice (the slow path).

use std::time::{Duration, Instant};

use festival_lab::{assert_each_once, deadline, phase, settle, wait_all, Lan, NodeProc};

/// Messages each of the two others sends while the third is dead.
const MISSED_EACH: usize = 5;
/// From restart to having every missed message. The others only re-dial
/// once ICE has given up on the dead link (about 16 s here).
const CATCH_UP: Duration = Duration::from_secs(40);

#[test]
fn a_killed_node_restarts_and_gets_every_missed_message_once() {
    let start = Instant::now();
    let lan = Lan::new(3);
    let mut nodes: Vec<NodeProc> =
        ["ana", "ben", "cleo"].iter().enumerate().map(|(h, n)| lan.spawn(h, n, &[])).collect();
    nodes.sort_by(|x, y| x.peer.cmp(&y.peer));
    let [a, b, c] = &mut nodes[..] else { unreachable!() };
    let (pa, pb, pc) = (a.peer.clone(), b.peer.clone(), c.peer.clone());
    let by = deadline(30);
    a.wait_until("links with both others", by, |l| {
        (l.linked().contains(&pb) && l.linked().contains(&pc)).then_some(())
    });
    b.wait_until("links with both others", by, |l| {
        (l.linked().contains(&pa) && l.linked().contains(&pc)).then_some(())
    });
    phase(start, &format!("mesh linked; {} (highest PeerId) will be killed", c.name));

    let before = vec![a.say("before the crash, from a"), c.say("before the crash, from c")];
    wait_all([&*a, &*b, &*c], "the messages sent before the crash", deadline(15), |l| l.has_all(&before));

    c.kill();
    phase(start, "killed");
    let mut missed = Vec::new();
    for i in 0..MISSED_EACH {
        missed.push(a.say(&format!("a #{i} while c is away")));
        missed.push(b.say(&format!("b #{i} while c is away")));
    }
    wait_all([&*a, &*b], "the messages sent while c is dead", deadline(15), |l| l.has_all(&missed));
    phase(start, "the others traded messages");

    let saved = c.offline(&["send", "written while the phone was off"]);
    let offline = vec![saved.trim().strip_prefix("saved ").expect("`saved ID`").to_owned()];

    c.restart();
    let restarted = Instant::now();
    phase(start, "restarted on the same data dir");
    c.wait_for("every missed message", CATCH_UP, |l| l.has_all(&missed).then_some(()));
    phase(start, &format!("caught up {:.1} s after the restart", restarted.elapsed().as_secs_f64()));
    wait_all([&*a, &*b], "the message written offline", deadline(15), |l| l.has_all(&offline));
    phase(start, "the offline message reached both others");

    let after = vec![c.say("back again")];
    wait_all([&*a, &*b], "the message sent after the restart", deadline(15), |l| l.has_all(&after));

    // A late duplicate (a push racing the catch-up) would show within a sync
    // round; give it that time before counting.
    settle(Duration::from_secs(3));
    assert_each_once([&*a, &*b, &*c], &[before, missed, after].concat());
    // Written offline: the CLI said `saved`; the others show it once.
    assert_each_once([&*a, &*b], &offline);
    assert!(
        c.log().events_now("message").all(|m| m["body"]["text"] != "before the crash, from a"),
        "a message shown before the crash was shown again after the restart\n{}",
        c.diagnostics()
    );
    for n in [a, b, c] {
        n.quit();
    }
    phase(start, "done");
}
