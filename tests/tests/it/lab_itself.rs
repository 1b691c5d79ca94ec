//! The lab itself, before any scenario trusts it: hosts reach each other over
//! the bridge and have no way anywhere else, a cut link cuts and heals, netem
//! applies, and dropping the LAN leaves no namespace behind.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use festival_lab::sys::ip;
use festival_lab::Lan;

fn connects(lan: &Lan, from: usize, to: SocketAddr) -> bool {
    lan.in_host(from, || TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok())
}

#[test]
fn hosts_reach_each_other_only_over_the_bridge_and_leave_nothing_behind() {
    let lan = Lan::new(2);
    let names = [lan.ns(0).to_owned(), lan.ns(1).to_owned()];
    let bind = SocketAddr::from((lan.ip(1), 0));
    // Made on host 1 and kept open here: a socket stays in its namespace.
    let listener = lan.in_host(1, || TcpListener::bind(bind).expect("bind on host 1"));
    let to = listener.local_addr().unwrap();
    assert!(connects(&lan, 0, to), "host 0 reaches host 1 over the bridge");

    for ns in &names {
        let routes = ip(&["-n", ns, "route", "show"]);
        assert!(!routes.contains("default"), "{ns} must have no default route: {routes}");
    }

    lan.link_down(1);
    assert!(!connects(&lan, 0, to), "a cut host is unreachable");
    lan.link_up(1);
    // The link comes back at once; ARP may take a moment.
    let by = Instant::now() + Duration::from_secs(10);
    while !connects(&lan, 0, to) {
        assert!(Instant::now() < by, "host 1 reachable again after link up");
    }

    // Impairments: each either applies or says what is missing.
    let qdisc = || ip(&["netns", "exec", lan.ns(0), "tc", "qdisc", "show", "dev", "veth0"]);
    match lan.netem(0, "delay 20ms") {
        Ok(()) => assert!(qdisc().contains("netem"), "{}", qdisc()),
        Err(e) => eprintln!("note: no netem here: {e}"),
    }
    lan.rate(0, "1mbit").expect("tbf is in every kernel the lab runs on");
    assert!(qdisc().contains("tbf"), "{}", qdisc());
    match lan.loss(0, 100) {
        Ok(()) => assert!(!connects(&lan, 0, to), "100 % loss cuts host 0 off"),
        Err(e) => eprintln!("note: no loss emulation here: {e}"),
    }
    lan.clear_impairments(0);
    assert!(connects(&lan, 0, to), "host 0 reachable again without impairments");
    assert!(!qdisc().contains("tbf"), "{}", qdisc());

    drop(listener);
    drop(lan);
    let left = ip(&["netns", "list"]);
    for ns in &names {
        assert!(!left.lines().any(|l| l.split_whitespace().next() == Some(ns)), "{ns} left behind");
    }
}
