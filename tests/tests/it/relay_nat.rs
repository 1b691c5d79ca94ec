//! Friends on different networks, each behind a home router that does NAT:
//! neither can be reached from outside, no mDNS crosses, and their private
//! addresses mean nothing to each other. Both reach a relay, over a slow
//! path (150 ms each way). Each learns its public address from the relay's
//! STUN port; their relayed offers carry it as a server-reflexive
//! candidate, the ICE checks punch through both NATs, and new messages
//! leave by the direct channel. Without the server-reflexive candidates
//! there is no path at all: each side offers only a private address.

use std::time::{Duration, Instant};

use festival_lab::{deadline, phase, Lan, Log};

const RELAY_PORT: u16 = 8443;
const SLOW_PORT: u16 = 8444;
const ONE_WAY: Duration = Duration::from_millis(150);

#[test]
fn two_nodes_behind_nats_go_direct_with_server_reflexive_candidates() {
    let start = Instant::now();
    // Host 0: the relay; hosts 1 and 2: home routers on the LAN.
    let mut lan = Lan::new(3);
    let ha = lan.add_behind_nat(1);
    let hb = lan.add_behind_nat(2);
    let _relay = lan.spawn_relay(0, RELAY_PORT);
    let slow = lan.slow_path(0, SLOW_PORT, RELAY_PORT, ONE_WAY);
    let url = format!("ws://{}", slow.addr);
    let mut a = lan.spawn(ha, "ana", &["--relay", &url]);
    let mut b = lan.spawn(hb, "ben", &["--relay", &url]);
    let by = deadline(30);
    a.wait_until("the relay link", by, Log::relay_up);
    b.wait_until("the relay link", by, Log::relay_up);
    phase(start, "both on the relay, each through its NAT");

    // The relay's STUN sees each at its router's address, not its own.
    for (n, router, host) in [(&mut a, 1, ha), (&mut b, 2, hb)] {
        let (public, private) = (lan.ip(router).to_string(), lan.ip(host).to_string());
        let seen = n.wait_status("the STUN answer", deadline(10), |st| {
            st["paths"]["reflexive_addr"].as_str().map(str::to_owned)
        });
        assert!(seen.starts_with(&format!("{public}:")), "{seen} is not behind router {public} (private {private})");
    }
    phase(start, "public addresses learned");

    let first = vec![a.say("hello ben, from behind my router")];
    b.wait_until("ana's message", deadline(20), |l| l.has_all(&first).then_some(()));
    let reply = vec![b.say("hi ana, from behind mine")];
    a.wait_until("ben's message", deadline(20), |l| l.has_all(&reply).then_some(()));
    phase(start, "chatted through the relay");

    let by = deadline(60);
    a.wait_until("a direct link to ben", by, |l| l.linked().contains(&b.peer).then_some(()));
    b.wait_until("a direct link to ana", by, |l| l.linked().contains(&a.peer).then_some(()));
    phase(start, "direct link through both NATs");

    let direct = a.say_until_sent_by("direct yet?", "lan", deadline(10));
    b.wait_until("the direct messages", deadline(20), |l| l.has_all(&direct).then_some(()));
    let upgrades = |s: &serde_json::Value| s["paths"]["upgrades"].as_u64().unwrap_or(0);
    let (sa, sb) = (a.status(), b.status());
    assert!(upgrades(&sa) + upgrades(&sb) >= 1, "{sa}\n{sb}");
    for n in [&mut a, &mut b] {
        n.quit();
    }
    phase(start, "done");
}
