//! A slow relay and a network that drops multicast: two phones on a venue
//! network with no mDNS between them (multicast dropped both ways), but
//! unicast routed, and a relay they reach only over a slow path (150 ms each
//! way). They start out chatting through the relay; the relay's round trip
//! is over 200 ms, so each offers the other a data channel through relayed
//! signaling, the ICE checks find the direct path, and new messages leave by
//! it. Their status says so: relay slow, an upgrade made, traffic direct.

use std::time::{Duration, Instant};

use festival_lab::{deadline, phase, Lan, Log};

const RELAY_PORT: u16 = 8443;
const SLOW_PORT: u16 = 8444;
const ONE_WAY: Duration = Duration::from_millis(150);

#[test]
fn a_slow_relay_path_is_upgraded_to_a_direct_data_channel() {
    let start = Instant::now();
    let lan = Lan::new(3);
    let _relay = lan.spawn_relay(0, RELAY_PORT);
    let slow = lan.slow_path(0, SLOW_PORT, RELAY_PORT, ONE_WAY);
    for h in [1, 2] {
        lan.block_multicast(h).expect("nftables to drop multicast");
    }
    let url = format!("ws://{}", slow.addr);
    let mut a = lan.spawn(1, "ana", &["--relay", &url]);
    let mut b = lan.spawn(2, "ben", &["--relay", &url]);
    let by = deadline(30);
    a.wait_until("the relay link", by, Log::relay_up);
    b.wait_until("the relay link", by, Log::relay_up);
    phase(start, "both on the slow relay");
    // Each learned its address as the relay's STUN port saw it, asked from
    // its WebRTC socket: no NAT here, so its LAN address and UDP port.
    for (n, host) in [(&mut a, 1), (&mut b, 2)] {
        let want = format!("{}:{}", lan.ip(host), n.status()["udp_port"]);
        n.wait_status(&format!("the STUN answer {want}"), deadline(10), |st| {
            (st["paths"]["reflexive_addr"] == want.as_str()).then_some(())
        });
    }

    // Each learns of the other from a message that came through the relay.
    let first = vec![a.say("hello ben, the relay is slow today")];
    b.wait_until("ana's message", deadline(20), |l| l.has_all(&first).then_some(()));
    let reply = vec![b.say("hi ana, it is")];
    a.wait_until("ben's message", deadline(20), |l| l.has_all(&reply).then_some(()));
    assert!(!a.log().discovered().contains(&b.peer), "mDNS must not cross: {}", a.diagnostics());
    phase(start, "chatted through the relay");

    // The upgrade: a data channel between them, signaled through the relay.
    let by = deadline(60);
    a.wait_until("a direct link to ben", by, |l| l.linked().contains(&b.peer).then_some(()));
    b.wait_until("a direct link to ana", by, |l| l.linked().contains(&a.peer).then_some(()));
    phase(start, "direct link up");
    let direct = a.log().events_now("link_up").find(|e| e["peer"] == b.peer.as_str()).cloned().expect("link_up");
    assert_eq!(direct["path"], "lan", "a data channel, not the relay: {direct}");

    // New messages leave by the direct link, once the two nodes' cores have
    // said hello over it (just after link up): from then on, every one.
    let mut direct = a.say_until_sent_by("direct now?", "lan", deadline(10));
    for i in 0..3 {
        let id = a.say(&format!("this one goes direct too {i}"));
        let path = a.wait_until("the message sent", deadline(10), |l| l.sent_path(&id));
        assert_eq!(path, "lan", "{}", a.diagnostics());
        direct.push(id);
    }
    b.wait_until("the direct messages", deadline(20), |l| l.has_all(&direct).then_some(()));

    let (sa, sb) = (a.status(), b.status());
    for (who, s) in [("ana", &sa), ("ben", &sb)] {
        let p = &s["paths"];
        assert_eq!(p["relay_slow"], true, "{who}: {p}");
        assert!(p["relay_rtt_ms"].as_f64().is_some_and(|ms| ms > 200.0), "{who}: {p}");
        assert!(p["bytes_lan"].as_u64().is_some_and(|b| b > 0), "{who}: {p}");
    }
    // One side's offer opened the link (the other's may have lost the glare).
    let upgrades = |s: &serde_json::Value| s["paths"]["upgrades"].as_u64().unwrap_or(0);
    assert!(upgrades(&sa) + upgrades(&sb) >= 1, "{sa}\n{sb}");
    assert!(sa["paths"]["sent_lan"].as_u64().is_some_and(|n| n >= 1), "{sa}");
    for n in [&mut a, &mut b] {
        n.quit();
    }
    phase(start, "done");
}
