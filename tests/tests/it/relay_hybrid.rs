//! A LAN with a relay. The relay dies (SIGKILL): the LAN chat goes on over
//! the direct links. A phone that was away (its network reaches only the
//! relay host) comes back and posts while the relay is still down; once the
//! relay is back, its message reaches the LAN through the relay, and what
//! the LAN said meanwhile reaches it the same way.

use std::time::{Duration, Instant};

use festival_lab::{deadline, phase, wait_all, Lan, Log};

const RELAY_PORT: u16 = 8443;

#[test]
fn lan_chat_survives_the_relay_and_an_away_node_catches_up_through_it() {
    let start = Instant::now();
    let lan = Lan::new(4);
    let mut relay = lan.spawn_relay(0, RELAY_PORT);
    lan.isolate(3, &[0]).expect("nftables for the away node's network");
    let url = relay.url();
    let mut a = lan.spawn(1, "ana", &["--relay", &url]);
    let mut b = lan.spawn(2, "ben", &["--relay", &url]);
    let (pa, pb) = (a.peer.clone(), b.peer.clone());
    let by = deadline(30);
    let relay_peer = a.wait_until("the relay link", by, Log::relay_up);
    b.wait_until("the relay link", by, Log::relay_up);
    a.wait_until("the LAN link to ben", by, |l| l.linked().contains(&pb).then_some(()));
    b.wait_until("the LAN link to ana", by, |l| l.linked().contains(&pa).then_some(()));
    phase(start, "LAN and relay up");

    relay.kill();
    a.wait_until("the relay link down", deadline(20), |l| (!l.linked().contains(&relay_peer)).then_some(()));
    phase(start, "relay killed");
    let lan_msgs = vec![a.say("relay is gone, the LAN goes on")];
    b.wait_until("ana's message over the LAN", deadline(15), |l| l.has_all(&lan_msgs).then_some(()));
    let path = a.wait_until("ana's message sent", deadline(10), |l| l.sent_path(&lan_msgs[0]));
    assert_eq!(path, "lan");
    phase(start, "LAN chat went on");

    // The relay stays down: after a few failed reconnects the route's circuit
    // breaker opens and the node stops trying until its half-open trial.
    let breaker_by = deadline(20);
    loop {
        let st = a.status();
        let reason = st["relay"]["reason"].as_str().unwrap_or_default().to_owned();
        if st["relay"]["state"] == "offline" && reason.contains("too many failures") {
            break;
        }
        assert!(Instant::now() < breaker_by, "the relay breaker never opened: {st}\n{}", a.diagnostics());
        std::thread::sleep(Duration::from_millis(250));
    }
    phase(start, "ana's relay breaker is open");

    let mut c = lan.spawn(3, "cleo", &["--relay", &url]);
    let away = vec![c.say("cleo here, my network only reaches the relay")];
    phase(start, "the away node posted while the relay is down");
    relay.restart();
    phase(start, "relay restarted");
    // The LAN nodes may have opened their relay breaker: allow its trial.
    wait_all([&a, &b], "cleo's message through the relay", deadline(45), |l| l.has_all(&away));
    phase(start, "cleo's message reached the LAN");
    c.wait_until("the LAN's message through the relay", deadline(20), |l| l.has_all(&lan_msgs).then_some(()));
    // Ana's breaker was open: its half-open trial finds the relay again.
    a.wait_until("the relay link again, by the breaker's trial", deadline(30), |l| {
        (l.events_now("link_up").filter(|e| e["path"] == "relay").count() >= 2).then_some(())
    });
    assert_eq!(a.status()["relay"]["state"], "connected", "{}", a.diagnostics());
    phase(start, "ana's breaker closed again");
    let path = c.wait_until("cleo's message sent", deadline(5), |l| l.sent_path(&away[0]));
    assert_eq!(path, "relay");
    assert!(!c.log().ever_linked().contains(&pa) && !c.log().ever_linked().contains(&pb), "{}", c.diagnostics());
    for n in [&mut a, &mut b, &mut c] {
        n.quit();
    }
    phase(start, "done");
}
