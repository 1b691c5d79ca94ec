//! LAN discovery through real mDNS on loopback.
//!
//! Every test here starts an mdns-sd daemon, which joins multicast on every
//! interface: run them only inside a private network namespace.
//! ```text
//! cargo test -p festival-node --test discovery --no-run
//! unshare --net bash -c 'ip link set lo up && ip link set lo multicast on &&
//!   ip route add 224.0.0.0/4 dev lo && exec cargo test -p festival-node --offline --test discovery'
//! ```
//! Tests take turns (one daemon per process) and shut their hub down at the
//! end; if a test fails first, dropping the last hub handle stops the daemon.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use festival_core::sync::MIN_PROTOCOL_VERSION;
use festival_core::PeerId;
use festival_node::discovery::{
    Advert, Discovery, DiscoveryError, DiscoveryEvent, IgnoreReason, MdnsHub, SERVICE_TYPE, TXT_FESTIVAL, TXT_ID,
    TXT_PORT, TXT_VERSION, VERIFY_TIMEOUT,
};
use mdns_sd::ServiceInfo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::{timeout, timeout_at, Instant};

/// One mdns-sd daemon per process: tests hold this while their hub lives.
static ONE_HUB_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Checks the hard rule before any daemon starts (it joins multicast on every
/// interface), then waits for this test's turn.
async fn take_turn() -> MutexGuard<'static, ()> {
    assert!(
        festival_node::netns::in_private_netns(),
        "refusing to start mDNS in the machine's own network namespace: run these tests inside \
         `unshare --net` (scripts/test does; the command is in this file's docs)"
    );
    ONE_HUB_AT_A_TIME.lock().await
}

/// Discovery takes 1-2 ms on loopback, about 1 s when an announcement is
/// missed; 5 s leaves room for a busy two-core machine.
const DISCOVER_DEADLINE: Duration = Duration::from_secs(5);
/// A goodbye is honoured 1 s after it arrives.
const LOST_DEADLINE: Duration = Duration::from_secs(5);
/// Long enough to see the second announcement (sent ~1.1 s after the first)
/// come and go without producing a duplicate `Found`.
const QUIET_PERIOD: Duration = Duration::from_millis(1800);
/// Threads and sockets of a stopped daemon are gone well within this.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(3);
/// How often a test re-checks a condition that produces no event.
const POLL_SLICE: Duration = Duration::from_millis(20);

const CHILD_PEER_ENV: &str = "FESTIVAL_DISCOVERY_CHILD_PEER";
const CHILD_FEST_ENV: &str = "FESTIVAL_DISCOVERY_CHILD_FEST";
/// Printed by the child once registered (libtest may prefix the line).
const CHILD_READY: &str = "CHILD-NODE-REGISTERED";

fn peer(test: u8, node: u8) -> PeerId {
    let mut bytes = [node; 32];
    bytes[0] = test;
    PeerId::from_bytes(bytes)
}

fn advert(peer: PeerId, festival: &str, port: u16) -> Advert {
    Advert { peer, festival: festival.to_owned(), port, powered: false }
}

/// Receives until `want` holds for an event, with a deadline. Returns the
/// matching event, how long it took, and everything seen on the way.
async fn wait_for(
    node: &mut Discovery,
    within: Duration,
    want: impl Fn(&DiscoveryEvent) -> bool,
) -> (DiscoveryEvent, Duration, Vec<DiscoveryEvent>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        match timeout_at(start + within, node.recv()).await {
            Ok(Some(event)) if want(&event) => return (event, start.elapsed(), seen),
            Ok(Some(event)) => seen.push(event),
            Ok(None) => panic!("{:?}: event stream ended; saw {seen:?}", node.peer()),
            Err(_) => panic!("{:?}: nothing matching within {within:?}; saw {seen:?}", node.peer()),
        }
    }
}

fn found(who: PeerId) -> impl Fn(&DiscoveryEvent) -> bool {
    move |e| matches!(e, DiscoveryEvent::Found { peer, .. } if *peer == who)
}

fn lost(who: PeerId) -> impl Fn(&DiscoveryEvent) -> bool {
    move |e| matches!(e, DiscoveryEvent::Lost { peer } if *peer == who)
}

/// Receives for `period` and returns whatever arrived (nothing, ideally).
async fn drain_for(node: &mut Discovery, period: Duration) -> Vec<DiscoveryEvent> {
    let end = Instant::now() + period;
    let mut seen = Vec::new();
    while let Ok(Some(event)) = timeout_at(end, node.recv()).await {
        seen.push(event);
    }
    seen
}

/// The mDNS threads of this process (mdns-sd's daemon and our pumps).
fn mdns_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| matches!(name.trim(), "mDNS_daemon" | "fc-mdns-events" | "fc-mdns-monitor"))
        .count()
}

/// UDP sockets of this process bound to the mDNS port. Other sockets come
/// and go with the test runtimes running beside us, so only these are counted.
fn mdns_sockets() -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return 0 };
    let inodes: HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| Some(target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned()))
        .collect();
    let mdns_port = format!(":{:04X}", mdns_sd::MDNS_PORT);
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 9 && cols[1].ends_with(&mdns_port) && inodes.contains(cols[9])
        })
        .count()
}

/// Waits (with a deadline) until no mDNS thread or socket of ours is left.
async fn assert_nothing_left() {
    let deadline = Instant::now() + CLEANUP_DEADLINE;
    while mdns_threads() > 0 || mdns_sockets() > 0 {
        assert!(
            Instant::now() < deadline,
            "after shutdown: {} mDNS threads, {} mDNS sockets",
            mdns_threads(),
            mdns_sockets()
        );
        tokio::time::sleep(POLL_SLICE).await;
    }
}

#[tokio::test]
async fn two_nodes_in_one_process_find_each_other_and_see_a_goodbye_as_lost() {
    let _turn = take_turn().await;
    let hub = MdnsHub::new(&[]).expect("hub");
    let (pa, pb) = (peer(1, 0xa), peer(1, 0xb));

    let mut a = hub.register(advert(pa, "fest-1", 7001)).expect("register a");
    let mut b = hub.register(advert(pb, "fest-1", 7002)).expect("register b");

    let (event, a_took, _) = wait_for(&mut a, DISCOVER_DEADLINE, found(pb)).await;
    let DiscoveryEvent::Found { addrs, port, version, .. } = event else { unreachable!() };
    assert_eq!((port, version), (7002, MIN_PROTOCOL_VERSION));
    assert!(!addrs.is_empty());
    let (event, b_took, _) = wait_for(&mut b, DISCOVER_DEADLINE, found(pa)).await;
    assert!(matches!(event, DiscoveryEvent::Found { port: 7001, version: MIN_PROTOCOL_VERSION, .. }));
    println!("time to discover (one process): a found b after {a_took:?}, b found a after {b_took:?}; addrs {addrs:?}");
    assert!(mdns_threads() > 0 && mdns_sockets() > 0, "the cleanup check below would prove nothing");

    // b is plugged in: its record says so, and a hears it.
    let DiscoveryEvent::Found { powered: false, .. } = event else { panic!("a advertised no power: {event:?}") };
    b.set_powered(true).expect("re-announce");
    let plugged_in =
        move |e: &DiscoveryEvent| matches!(e, DiscoveryEvent::Updated { peer, powered: true, .. } if *peer == pb);
    wait_for(&mut a, DISCOVER_DEADLINE, plugged_in).await;

    b.shutdown().await.expect("b shuts down");
    let (_, lost_took, seen) = wait_for(&mut a, LOST_DEADLINE, lost(pb)).await;
    println!("goodbye -> Lost after {lost_took:?}");
    assert!(seen.iter().all(|e| !matches!(e, DiscoveryEvent::Found { .. })), "duplicate Found: {seen:?}");
    assert!(a.peers().is_empty());

    a.shutdown().await.expect("a shuts down");
    assert_eq!(hub.stats().registered, 0);
    hub.shutdown().await.expect("hub shuts down");
    assert_nothing_left().await;
}

#[tokio::test]
async fn three_nodes_each_find_the_other_two_exactly_once() {
    let _turn = take_turn().await;
    // Also exercises interface selection: only loopback.
    let hub = MdnsHub::new(&["lo".to_owned()]).expect("hub on lo");
    let peers = [peer(2, 1), peer(2, 2), peer(2, 3)];
    let start = Instant::now();
    let mut nodes: Vec<Discovery> =
        peers.iter().zip(7101..).map(|(p, port)| hub.register(advert(*p, "fest-2", port)).expect("register")).collect();

    for node in nodes.iter_mut() {
        let me = node.peer();
        let mut found_at: HashMap<PeerId, Duration> = HashMap::new();
        let deadline = start + DISCOVER_DEADLINE;
        while found_at.len() < 2 {
            match timeout_at(deadline, node.recv()).await {
                Ok(Some(DiscoveryEvent::Found { peer, .. })) => {
                    assert!(found_at.insert(peer, start.elapsed()).is_none(), "{me:?} found {peer:?} twice");
                }
                Ok(other) => panic!("{me:?}: unexpected {other:?}"),
                Err(_) => panic!("{me:?} found only {:?} within {DISCOVER_DEADLINE:?}", found_at.keys()),
            }
        }
        assert!(!found_at.contains_key(&me), "{me:?} found itself");
        println!("time to discover (three nodes): {me:?} -> {found_at:?}");
    }
    let [n1, n2, n3] = &mut nodes[..] else { unreachable!() };
    let extra = tokio::join!(drain_for(n1, QUIET_PERIOD), drain_for(n2, QUIET_PERIOD), drain_for(n3, QUIET_PERIOD));
    assert_eq!(extra, (vec![], vec![], vec![]), "no node hears of a peer twice");
    assert!(nodes.iter().all(|n| n.peers().len() == 2));

    for node in nodes {
        node.shutdown().await.expect("node shuts down");
    }
    hub.shutdown().await.expect("hub shuts down");
}

#[tokio::test]
async fn a_node_that_joins_later_finds_those_already_present() {
    let _turn = take_turn().await;
    let hub = MdnsHub::new(&[]).expect("hub");
    let (pa, pb, pc) = (peer(3, 1), peer(3, 2), peer(3, 3));
    let mut a = hub.register(advert(pa, "fest-3", 7201)).expect("a");
    let b = hub.register(advert(pb, "fest-3", 7202)).expect("b");
    wait_for(&mut a, DISCOVER_DEADLINE, found(pb)).await;

    // The shared browse has long reported a and b; c must still hear of them.
    let mut c = hub.register(advert(pc, "fest-3", 7203)).expect("c");
    let start = Instant::now();
    let mut found_at = HashMap::new();
    while found_at.len() < 2 {
        match timeout_at(start + DISCOVER_DEADLINE, c.recv()).await {
            Ok(Some(DiscoveryEvent::Found { peer, .. })) => assert!(found_at.insert(peer, start.elapsed()).is_none()),
            other => panic!("c: unexpected {other:?} after finding {found_at:?}"),
        }
    }
    assert!(found_at.contains_key(&pa) && found_at.contains_key(&pb));
    println!("time to discover (late joiner, from the hub's snapshot): {found_at:?}");
    wait_for(&mut a, DISCOVER_DEADLINE, found(pc)).await;

    for node in [a, b, c] {
        node.shutdown().await.expect("node shuts down");
    }
    hub.shutdown().await.expect("hub shuts down");
}

#[tokio::test]
async fn other_festivals_and_malformed_records_are_ignored_and_counted() {
    let _turn = take_turn().await;
    let hub = MdnsHub::new(&[]).expect("hub");
    let (pa, pb, stranger) = (peer(4, 1), peer(4, 2), peer(4, 3));
    let mut a = hub.register(advert(pa, "fest-4", 7301)).expect("a");
    let mut elsewhere = hub.register(advert(stranger, "another-festival", 7302)).expect("stranger");

    let bad_txt = [(TXT_ID, "not-a-peer-id"), (TXT_VERSION, "1"), (TXT_FESTIVAL, "fest-4"), (TXT_PORT, "7303")];
    let bad = ServiceInfo::new(SERVICE_TYPE, "fc-malformed", "fc-malformed.local.", (), 7303, &bad_txt[..])
        .expect("raw record")
        .enable_addr_auto();
    let bad_fullname = bad.get_fullname().to_owned();
    hub.register_raw(bad).expect("raw register");
    let b = hub.register(advert(pb, "fest-4", 7304)).expect("b");

    // Wait until a has found b and counted both kinds of bad record. Ignored
    // records produce no event, so receive in short slices and re-check.
    let deadline = Instant::now() + DISCOVER_DEADLINE;
    let mut seen = Vec::new();
    while !(a.peers().contains(&pb)
        && a.ignored().get(IgnoreReason::BadId) >= 1
        && a.ignored().get(IgnoreReason::OtherFestival) >= 1)
    {
        assert!(Instant::now() < deadline, "a saw {seen:?}, ignored {:?}", a.ignored());
        match timeout(POLL_SLICE, a.recv()).await {
            Ok(Some(event)) => seen.push(event),
            Ok(None) => panic!("a's stream ended"),
            Err(_) => {} // nothing to report yet: check the counters again
        }
    }
    assert_eq!(seen.iter().map(DiscoveryEvent::peer).collect::<Vec<_>>(), vec![pb], "only b is reported: {seen:?}");
    assert_eq!(a.ignored().get(IgnoreReason::BadId), 1, "counted once, not per announcement");
    println!("ignored by a: {:?}", a.ignored().iter().filter(|(_, n)| *n > 0).collect::<Vec<_>>());

    // The other festival's node sees nobody from ours (the malformed record
    // fails on its id before its festival is even looked at).
    let extra = drain_for(&mut elsewhere, QUIET_PERIOD).await;
    assert!(extra.is_empty(), "a node of another festival saw {extra:?}");
    assert_eq!(elsewhere.ignored().get(IgnoreReason::OtherFestival), 2);
    assert_eq!(elsewhere.ignored().get(IgnoreReason::BadId), 1);

    hub.unregister_raw(&bad_fullname).await.expect("raw unregister");
    for node in [a, b, elsewhere] {
        node.shutdown().await.expect("node shuts down");
    }
    hub.shutdown().await.expect("hub shuts down");
}

#[tokio::test]
async fn registration_mistakes_are_typed_errors_and_the_shared_hub_is_one_hub() {
    let _turn = take_turn().await;
    let hub = MdnsHub::shared(&[]).expect("shared hub");
    assert!(hub.same_hub(&MdnsHub::shared(&[]).expect("again")));
    assert!(matches!(MdnsHub::shared(&["lo".to_owned()]), Err(DiscoveryError::HubConfigMismatch { .. })));

    let p = peer(5, 1);
    let mut node = hub.register(advert(p, "fest-5", 7401)).expect("register");
    assert!(matches!(hub.register(advert(p, "fest-5", 7401)), Err(DiscoveryError::AlreadyRegistered(_))));
    assert!(matches!(hub.register(advert(peer(5, 2), "bad fest", 1)), Err(DiscoveryError::InvalidFestival { .. })));
    assert!(matches!(hub.register(advert(peer(5, 2), "fest-5", 0)), Err(DiscoveryError::InvalidPort)));
    assert!(matches!(node.verify(&peer(5, 9)), Err(DiscoveryError::UnknownPeer(_))));

    // Stopping the hub ends every node's stream, refuses new nodes and
    // leaves no thread or socket behind.
    hub.shutdown().await.expect("hub shuts down");
    assert_eq!(timeout(LOST_DEADLINE, node.recv()).await.expect("stream ends"), None);
    assert!(matches!(hub.register(advert(peer(5, 3), "fest-5", 7402)), Err(DiscoveryError::HubStopped)));
    node.shutdown().await.expect("a node of a stopped hub shuts down quietly");
    assert_nothing_left().await;

    let fresh = MdnsHub::shared(&[]).expect("a new shared hub");
    assert!(!fresh.same_hub(&hub));
    drop(fresh); // the last handle: its drop stops the daemon
    assert_nothing_left().await;
}

/// Helper run as a child process by the test below: one node in its own
/// process (with its own daemon), until stdin closes or it is killed.
#[tokio::test]
#[ignore = "helper: run in a child process by a_peer_that_vanishes_silently_is_lost_after_verify"]
async fn child_node() {
    let (Ok(id), Ok(festival)) = (std::env::var(CHILD_PEER_ENV), std::env::var(CHILD_FEST_ENV)) else { return };
    assert!(festival_node::netns::in_private_netns(), "the child node must share its parent's private namespace");
    let hub = MdnsHub::new(&[]).expect("child hub");
    let node = hub.register(advert(id.parse().expect("peer id"), &festival, 7501)).expect("child register");
    println!("{CHILD_READY}");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = stdin.next_line().await {}
    node.shutdown().await.expect("child node shuts down");
    hub.shutdown().await.expect("child hub shuts down");
}

#[tokio::test]
async fn a_peer_that_vanishes_silently_is_lost_after_verify() {
    let _turn = take_turn().await;
    let (pa, pchild) = (peer(6, 1), peer(6, 2));

    // The other process registers first, so its announcement is over before
    // we listen: the slow case, where we depend on its answer to our query.
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_node", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_PEER_ENV, pchild.to_hex())
        .env(CHILD_FEST_ENV, "fest-6")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true) // the guard: a failing test still ends the child
        .spawn()
        .expect("spawn child node");
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let ready = async {
        while let Some(line) = lines.next_line().await.expect("child output") {
            if line.contains(CHILD_READY) {
                return;
            }
        }
        panic!("child exited before registering");
    };
    timeout(DISCOVER_DEADLINE, ready).await.expect("child registers");

    let hub = MdnsHub::new(&[]).expect("hub");
    let mut a = hub.register(advert(pa, "fest-6", 7500)).expect("a");
    let (event, took, _) = wait_for(&mut a, DISCOVER_DEADLINE, found(pchild)).await;
    println!("time to discover (a peer in another process, registered before we started): {took:?}");
    let DiscoveryEvent::Found { port, addrs, .. } = event else { unreachable!() };
    assert_eq!(port, 7501);
    assert!(addrs.iter().any(IpAddr::is_loopback));

    // SIGKILL: no goodbye. Without a hint its records would live 120 s.
    child.kill().await.expect("kill child");
    a.verify(&pchild).expect("verify");
    let (_, lost_took, _) = wait_for(&mut a, VERIFY_TIMEOUT + LOST_DEADLINE, lost(pchild)).await;
    println!("silent departure -> Lost {lost_took:?} after verify");

    a.shutdown().await.expect("a shuts down");
    hub.shutdown().await.expect("hub shuts down");
}
