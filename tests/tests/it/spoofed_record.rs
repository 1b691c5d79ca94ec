//! A keyless attacker on a third host multicasts mDNS responses that claim
//! Bob's id (his instance name, his id in the TXT, a port of its own on its
//! own address), hand-built and sent raw from port 5353 with the cache-flush
//! bit, as an attacker would (an mDNS library would probe first and rename
//! its record on the conflict), twice, as a re-announcement with a new port
//! would. Ana's
//! open, DTLS-verified link to Bob stays up, Bob's next message reaches her
//! over it, and nobody dials the spoofer's address. (Before, both ends
//! dropped the link and redialled the announced address, again at every
//! re-announcement.) A witness browsing on Ana's host proves each spoofed
//! record reached her LAN segment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use festival_core::PeerId;
use festival_lab::{deadline, phase, Lan, NodeProc};
use festival_node::discovery::{instance_name, SERVICE_TYPE, TXT_FESTIVAL, TXT_ID, TXT_PORT, TXT_VERSION};
use mdns_sd::{ServiceDaemon, ServiceEvent};

const ANA: usize = 0;
const BOB: usize = 1;
const SPOOFER: usize = 2;
/// From a spoofed registration to the witness having it.
const HEARD: Duration = Duration::from_secs(15);

fn linked(n: &NodeProc, peer: &str, by: Instant) {
    n.wait_until(&format!("{} linked with {}", n.name, &peer[..12]), by, |l| l.linked().contains(peer).then_some(()));
}

/// Sets the flag when dropped: the helper threads' signal to end.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

const MDNS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)), 5353);

/// A DNS name in labels (no compression).
fn name(out: &mut Vec<u8>, dotted: &str) {
    for label in dotted.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// One resource record: `class` 0x8001 is IN with the cache-flush bit (a
/// unique record that replaces what a cache holds for the name).
fn record(out: &mut Vec<u8>, owner: &str, rtype: u16, class: u16, rdata: &[u8]) {
    name(out, owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&120u32.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// An unsolicited mDNS response announcing Bob's instance at `ip:port`:
/// PTR, SRV (to a host of the spoofer's), TXT with Bob's id, A.
fn spoof(bob: &PeerId, ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let service = SERVICE_TYPE.trim_end_matches('.');
    let instance = format!("{}.{service}", instance_name(bob));
    let host = "spoofer.local";
    let mut msg = vec![0, 0, 0x84, 0, 0, 0, 0, 4, 0, 0, 0, 0];
    let mut rdata = Vec::new();
    name(&mut rdata, &instance);
    record(&mut msg, service, 12, 0x0001, &rdata);
    let mut rdata = vec![0, 0, 0, 0];
    rdata.extend_from_slice(&port.to_be_bytes());
    name(&mut rdata, host);
    record(&mut msg, &instance, 33, 0x8001, &rdata);
    let version = festival_core::sync::PROTOCOL_VERSION.to_string();
    let festival = festival_node::runtime::config::DEFAULT_FESTIVAL;
    let mut rdata = Vec::new();
    for kv in [
        format!("{TXT_ID}={}", bob.to_hex()),
        format!("{TXT_VERSION}={version}"),
        format!("{TXT_FESTIVAL}={festival}"),
        format!("{TXT_PORT}={port}"),
    ] {
        rdata.push(kv.len() as u8);
        rdata.extend_from_slice(kv.as_bytes());
    }
    record(&mut msg, &instance, 16, 0x8001, &rdata);
    record(&mut msg, host, 1, 0x8001, &ip.octets());
    msg
}

/// A socket on port 5353 of the spoofer's host that multicasts out of its
/// address (the lab hosts have no multicast route).
fn mdns_socket(ip: Ipv4Addr) -> UdpSocket {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 5353)).expect("bind 5353 on the spoofer's host");
    let addr = libc::in_addr { s_addr: u32::from(ip).to_be() };
    // SAFETY: setsockopt(2) on a socket we own, with a value of the size given.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &addr as *const libc::in_addr as *const libc::c_void,
            std::mem::size_of::<libc::in_addr>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "IP_MULTICAST_IF: {}", std::io::Error::last_os_error());
    sock
}

#[test]
fn a_spoofed_record_from_another_host_drops_no_verified_link() {
    let start = Instant::now();
    let lan = Lan::new(3);
    let ana = lan.spawn(ANA, "ana", &[]);
    let mut bob = lan.spawn(BOB, "bob", &[]);
    let by = deadline(30);
    linked(&ana, &bob.peer, by);
    linked(&bob, &ana.peer, by);
    phase(start, "Ana and Bob linked");
    let bob_id: PeerId = bob.peer.parse().expect("Bob's id");
    let spoofer_v4 = lan.ip(SPOOFER);
    let spoofer_ip = IpAddr::V4(spoofer_v4);

    // Every connection the spoofer's ports get (a dial to the fake address).
    let dialed = AtomicU32::new(0);
    let done = AtomicBool::new(false);
    // Ports announced so far, for the witness.
    let announced: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let heard: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

    std::thread::scope(|s| {
        // The helpers stop when this scope's body ends, also by a panic.
        let _stop = StopOnDrop(&done);
        // The witness: a browser in Ana's namespace, on her segment.
        s.spawn(|| {
            lan.in_host(ANA, || {
                let daemon = ServiceDaemon::new().expect("witness daemon");
                let rx = daemon.browse(SERVICE_TYPE).expect("browse");
                while !done.load(Ordering::Relaxed) {
                    if let Ok(ServiceEvent::ServiceResolved(info)) = rx.recv_timeout(Duration::from_millis(200)) {
                        let claims_bob = info.get_property_val_str(TXT_ID) == Some(bob_id.to_hex().as_str());
                        if claims_bob && info.get_addresses().iter().any(|a| a.to_ip_addr() == spoofer_ip) {
                            heard.lock().expect("heard").push(info.get_port());
                        }
                    }
                }
                let _ = daemon.shutdown();
            })
        });
        // The spoofer: raw responses from its own host, two records in turn,
        // each repeated until the witness has it.
        s.spawn(|| {
            lan.in_host(SPOOFER, || {
                let listeners: Vec<TcpListener> =
                    (0..2).map(|_| TcpListener::bind((spoofer_ip, 0)).expect("spoof port")).collect();
                for l in &listeners {
                    l.set_nonblocking(true).expect("nonblocking");
                }
                let sock = mdns_socket(spoofer_v4);
                for l in &listeners {
                    let port = l.local_addr().expect("addr").port();
                    announced.lock().expect("announced").push(port);
                    let packet = spoof(&bob_id, spoofer_v4, port);
                    let until = Instant::now() + HEARD;
                    while !heard.lock().expect("heard").contains(&port) && Instant::now() < until {
                        sock.send_to(&packet, MDNS).expect("multicast the spoof");
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
                while !done.load(Ordering::Relaxed) {
                    for l in &listeners {
                        if l.accept().is_ok() {
                            dialed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        });

        // Both spoofed records heard on Ana's segment.
        let until = Instant::now() + 2 * HEARD + Duration::from_secs(5);
        loop {
            let (a, h) = (announced.lock().expect("a").clone(), heard.lock().expect("h").clone());
            if a.len() == 2 && a.iter().all(|p| h.contains(p)) {
                break;
            }
            if Instant::now() > until {
                panic!("the spoofed records were not heard on Ana's host: announced {a:?}, heard {h:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        phase(start, "both spoofed records heard on Ana's host");

        let id = bob.say("still here after the spoof");
        ana.wait_until("Bob's message after the spoof", deadline(20), |l| l.has_message(&id).then_some(()));
    });

    let dropped = |n: &NodeProc, peer: &str| n.log().events("link_down").filter(|e| e["peer"] == peer).count();
    assert_eq!(
        dropped(&ana, &bob.peer),
        0,
        "Ana dropped her verified link to Bob for a spoofed record\n{}",
        ana.diagnostics()
    );
    assert_eq!(dropped(&bob, &ana.peer), 0, "Bob dropped his link to Ana\n{}", bob.diagnostics());
    assert!(ana.log().linked().contains(&bob.peer));
    assert_eq!(dialed.load(Ordering::Relaxed), 0, "someone dialed the spoofer's address");
    phase(start, "done");
}
