//! Venue Wi-Fi with client isolation: two phones on the same network that
//! cannot reach each other at all (no multicast, no unicast between them:
//! nftables in each host lets only the relay host through) but both reach
//! a festival-relay. They chat both ways through the relay, and each says
//! its messages left by the relay and wait stored at the relay.

use std::time::Instant;

use festival_lab::{deadline, phase, Lan, Log};

const RELAY_PORT: u16 = 8443;

#[test]
fn isolated_clients_chat_both_ways_through_the_relay() {
    let start = Instant::now();
    let lan = Lan::new(3);
    let relay = lan.spawn_relay(0, RELAY_PORT);
    for h in [1, 2] {
        lan.isolate(h, &[0]).expect("nftables for client isolation");
    }
    let url = relay.url();
    let mut a = lan.spawn(1, "ana", &["--relay", &url]);
    let mut b = lan.spawn(2, "ben", &["--relay", &url]);
    let by = deadline(20);
    let ra = a.wait_until("the relay link", by, Log::relay_up);
    let rb = b.wait_until("the relay link", by, Log::relay_up);
    assert_eq!(ra, rb, "one relay");
    phase(start, "both on the relay");
    assert_eq!(a.status()["relay"]["state"], "connected", "{}", a.diagnostics());

    let to_b = vec![a.say("hello ben, via the relay")];
    b.wait_until("ana's message", deadline(20), |l| l.has_all(&to_b).then_some(()));
    let to_a = vec![b.say("hi ana, same way back")];
    a.wait_until("ben's message", deadline(20), |l| l.has_all(&to_a).then_some(()));
    phase(start, "chatted both ways");

    let pa = a.wait_until("ana's message sent", deadline(10), |l| l.sent_path(&to_b[0]));
    let pb = b.wait_until("ben's message sent", deadline(10), |l| l.sent_path(&to_a[0]));
    assert_eq!((pa.as_str(), pb.as_str()), ("relay", "relay"));
    // The relay committed it (its `Stored` came back): shown as waiting at
    // the relay, a state of its own, kept once delivered too.
    let at_relay = |id: &str| {
        let id = id.to_owned();
        move |l: &festival_lab::Log| {
            l.events("delivery").find(|e| e["id"] == id.as_str() && e["delivery"]["at_relay"] == true).map(|_| ())
        }
    };
    a.wait_until("ana's message stored at the relay", deadline(10), at_relay(&to_b[0]));
    b.wait_until("ben's message stored at the relay", deadline(10), at_relay(&to_a[0]));
    // They never had a direct link: isolation held.
    assert!(!a.log().ever_linked().contains(&b.peer), "{}", a.diagnostics());
    assert!(!b.log().ever_linked().contains(&a.peer), "{}", b.diagnostics());
    for n in [&mut a, &mut b] {
        n.quit();
    }
    phase(start, "done");
}
