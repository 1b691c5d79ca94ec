//! WebRTC data channels between real endpoints on loopback UDP sockets.
//!
//! These open sockets and gather interface addresses: run them only inside a
//! private network namespace (NETWORK-LAB):
//! `unshare --net bash -c 'ip link set lo up && ip link set lo multicast on &&
//!  ip route add 224.0.0.0/4 dev lo && exec cargo test -p festival-node --offline --test webrtc'`

mod webrtc_lab;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use festival_node::webrtc::bundle::HEADER_BYTES;
use festival_node::webrtc::{
    host_candidates, sdp_fingerprints, CloseReason, ConnId, Endpoint, EndpointConfig, EndpointEvent, InterfaceFilter,
    RtcError, SendError, BULK_BUFFER_BYTES, MAX_MESSAGE_BYTES, SEND_BUFFER_BYTES,
};
use tokio::net::UdpSocket;
use webrtc_lab::{loopback_node, node_on, Lab};

const LINK: ConnId = ConnId(1);
const WAIT: Duration = Duration::from_secs(5);

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// The SDP with the last byte of its DTLS fingerprint flipped, as a
/// man-in-the-middle who swapped certificates would have to present it.
fn tamper_fingerprint(sdp: &str) -> String {
    let mut out = String::new();
    for line in sdp.lines() {
        match line.strip_prefix("a=fingerprint:sha-256 ") {
            Some(hex) => {
                let mut bytes: Vec<u8> = hex.split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
                *bytes.last_mut().unwrap() ^= 0x5a;
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
                out.push_str(&format!("a=fingerprint:sha-256 {}", hex.join(":")));
            }
            None => out.push_str(line),
        }
        out.push_str("\r\n");
    }
    out
}

#[tokio::test]
async fn channel_opens_and_carries_messages_both_ways() {
    let mut lab = Lab::new(2).await;
    lab.open(0, 1, LINK).await;
    lab.nodes[0].ep.send(LINK, b"hello from the offerer").unwrap();
    lab.nodes[1].ep.send(LINK, b"hello from the answerer").unwrap();
    lab.until("both greetings arrive", WAIT, |l| !l.nodes[0].inbox.is_empty() && !l.nodes[1].inbox.is_empty()).await;
    assert_eq!(lab.nodes[1].received_from(LINK), vec![b"hello from the offerer".as_slice()]);
    assert_eq!(lab.nodes[0].received_from(LINK), vec![b"hello from the answerer".as_slice()]);
    assert!(lab.nodes[0].ep.is_open(LINK) && lab.nodes[1].ep.is_open(LINK));
}

#[tokio::test]
async fn a_64_kib_message_and_a_maximal_one_arrive_intact() {
    let mut lab = Lab::new(2).await;
    lab.open(0, 1, LINK).await;
    let big = pattern(64 * 1024, 7);
    let max = pattern(MAX_MESSAGE_BYTES, 9);
    lab.send_all(0, 1, LINK, &[big.clone(), max.clone()], WAIT).await;
    assert_eq!(lab.nodes[1].received_from(LINK), vec![big.as_slice(), max.as_slice()]);
}

#[tokio::test]
async fn a_thousand_messages_arrive_in_order() {
    let mut lab = Lab::new(2).await;
    lab.open(0, 1, LINK).await;
    let messages: Vec<Vec<u8>> = (0u32..1000).map(|i| [&i.to_be_bytes()[..], &[0xab; 196]].concat()).collect();
    lab.send_all(0, 1, LINK, &messages, WAIT * 2).await;
    let got: Vec<u32> =
        lab.nodes[1].received_from(LINK).iter().map(|b| u32::from_be_bytes(b[..4].try_into().unwrap())).collect();
    assert_eq!(got, (0..1000).collect::<Vec<u32>>());
}

#[tokio::test]
async fn messages_queued_between_polls_travel_bundled() {
    let mut lab = Lab::new(2).await;
    lab.open(0, 1, LINK).await;
    lab.until("nothing in flight", WAIT, |l| l.nodes[0].ep.buffered_amount(LINK) == Some(0)).await;
    let ep = &mut lab.nodes[0].ep;
    assert!(matches!(ep.send(LINK, b""), Err(SendError::Empty)));
    let messages: Vec<Vec<u8>> = (0u32..200).map(|i| [&i.to_be_bytes()[..], &[0x5a; 196]].concat()).collect();
    for m in &messages {
        ep.send(LINK, m).unwrap();
    }
    let before = lab.nodes[0].tx_datagrams;
    lab.until("all arrive", WAIT, |l| l.nodes[1].rx_msgs == 200).await;
    assert_eq!(lab.nodes[1].received_from(LINK), messages.iter().map(Vec::as_slice).collect::<Vec<_>>());
    // 200 x 204 bytes = 40 KiB: three bundles in about 35 full-size
    // datagrams. One SCTP message per message would be 200 datagrams.
    let datagrams = lab.nodes[0].tx_datagrams - before;
    assert!(datagrams <= 60, "{datagrams} datagrams for 200 small messages");
}

#[tokio::test]
async fn one_socket_serves_two_peers() {
    let mut lab = Lab::new(3).await;
    let (to_b, to_c) = (ConnId(10), ConnId(20));
    lab.open(0, 1, to_b).await;
    lab.open(2, 0, to_c).await;
    assert_eq!(lab.nodes[0].ep.local_addrs(), &[lab.nodes[0].addr], "node 0 has one socket");
    assert_eq!(lab.nodes[0].ep.conns().collect::<Vec<_>>(), vec![to_b, to_c]);
    lab.nodes[0].ep.send(to_b, b"for b").unwrap();
    lab.nodes[0].ep.send(to_c, b"for c").unwrap();
    lab.nodes[1].ep.send(to_b, b"from b").unwrap();
    lab.nodes[2].ep.send(to_c, b"from c").unwrap();
    lab.until("all four messages arrive", WAIT, |l| {
        l.nodes[0].inbox.len() == 2 && l.nodes[1].inbox.len() == 1 && l.nodes[2].inbox.len() == 1
    })
    .await;
    assert_eq!(lab.nodes[1].received_from(to_b), vec![b"for b".as_slice()]);
    assert_eq!(lab.nodes[2].received_from(to_c), vec![b"for c".as_slice()]);
    assert_eq!(lab.nodes[0].received_from(to_b), vec![b"from b".as_slice()]);
    assert_eq!(lab.nodes[0].received_from(to_c), vec![b"from c".as_slice()]);
}

#[tokio::test]
async fn garbage_datagrams_and_sdp_give_typed_errors_and_the_channel_keeps_working() {
    let mut lab = Lab::new(2).await;
    let (_, answer) = lab.connect(0, 1, LINK);
    lab.until("open", WAIT, |l| l.nodes[0].is_open(LINK) && l.nodes[1].is_open(LINK)).await;
    let (a_addr, b_addr) = (lab.nodes[0].addr, lab.nodes[1].addr);
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    let dtls_like = [&[23u8, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 40][..], &[0x42; 40]].concat();
    let stun_like = [&[0u8, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42][..], &[7; 20]].concat();
    let rtp_like = [&[0x80u8, 96, 0, 1][..], &[1; 60]].concat();

    // Directly: typed errors, never a panic.
    let now = Instant::now();
    let a = &mut lab.nodes[0].ep;
    assert!(matches!(a.handle_receive(now, stranger_addr, a_addr, &[]), Err(RtcError::Malformed(_))));
    assert!(matches!(a.handle_receive(now, stranger_addr, a_addr, &[0xff; 32]), Err(RtcError::Malformed(_))));
    assert!(matches!(a.handle_receive(now, stranger_addr, a_addr, &dtls_like), Err(RtcError::UnknownPeer)));
    assert!(matches!(a.accept_offer(ConnId(99), "not sdp at all", now), Err(RtcError::Sdp(_))));
    assert!(matches!(a.accept_offer(ConnId(99), "v=0\r\n", now), Err(RtcError::Sdp(_) | RtcError::SdpRejected(_))));
    assert!(matches!(a.accept_answer(LINK, "\u{0}garbage", now), Err(RtcError::Sdp(_))));
    assert!(matches!(a.accept_answer(LINK, &answer, now), Err(RtcError::NoPendingOffer(LINK))));
    assert!(matches!(a.accept_answer(ConnId(98), &answer, now), Err(RtcError::UnknownConn(_))));
    assert!(matches!(a.create_offer(LINK, now), Err(RtcError::DuplicateConn(LINK))));
    assert!(a.conns().eq([LINK]), "failed calls leave no half-made connections");

    // Over the wire, from a stranger and from the peer's own address.
    for junk in [&dtls_like, &stun_like, &rtp_like, &vec![0xff; 100]] {
        stranger.send_to(junk, a_addr).await.unwrap();
        lab.nodes[1].sock.send_to(junk, a_addr).await.unwrap();
        lab.nodes[0].sock.send_to(junk, b_addr).await.unwrap();
    }
    lab.until("the junk is read", WAIT, |l| {
        let s = l.nodes[0].ep.stats();
        s.unknown_datagrams + s.malformed_datagrams >= 4
    })
    .await;

    lab.send_all(0, 1, LINK, &[b"still here".to_vec()], WAIT).await;
    lab.send_all(1, 0, LINK, &[b"me too".to_vec()], WAIT).await;
    assert_eq!(lab.nodes[1].received_from(LINK), vec![b"still here".as_slice()]);
    assert_eq!(lab.nodes[0].received_from(LINK), vec![b"me too".as_slice()]);
    assert!(lab.nodes[0].closed.is_empty() && lab.nodes[1].closed.is_empty());
}

#[tokio::test]
async fn the_sdp_carries_the_endpoint_fingerprint() {
    let mut lab = Lab::new(2).await;
    let (offer, answer) = lab.connect(0, 1, LINK);
    assert_eq!(sdp_fingerprints(&offer), vec![lab.nodes[0].ep.local_fingerprint().clone()]);
    assert_eq!(sdp_fingerprints(&answer), vec![lab.nodes[1].ep.local_fingerprint().clone()]);
    assert_ne!(lab.nodes[0].ep.local_fingerprint(), lab.nodes[1].ep.local_fingerprint());
    assert_ne!(sdp_fingerprints(&tamper_fingerprint(&answer)), sdp_fingerprints(&answer));
}

#[tokio::test]
async fn a_tampered_fingerprint_in_the_answer_keeps_the_channel_shut() {
    let mut lab = Lab::with_config(2, |c| c.connect_timeout = Duration::from_millis(1500)).await;
    let now = Instant::now();
    let offer = lab.nodes[0].ep.create_offer(LINK, now).unwrap();
    let answer = lab.nodes[1].ep.accept_offer(LINK, &offer, now).unwrap();
    lab.nodes[0].ep.accept_answer(LINK, &tamper_fingerprint(&answer), now).unwrap();
    lab.until("both sides give up", WAIT, |l| !l.nodes[0].closed.is_empty() && !l.nodes[1].closed.is_empty()).await;
    assert!(lab.nodes[0].opened.is_empty() && lab.nodes[1].opened.is_empty(), "no channel may open");
    assert!(matches!(&lab.nodes[0].closed[0], (LINK, CloseReason::Authentication(_))), "{:?}", lab.nodes[0].closed);
}

#[tokio::test]
async fn a_tampered_fingerprint_in_the_offer_keeps_the_channel_shut() {
    let mut lab = Lab::with_config(2, |c| c.connect_timeout = Duration::from_millis(1500)).await;
    let now = Instant::now();
    let offer = lab.nodes[0].ep.create_offer(LINK, now).unwrap();
    let answer = lab.nodes[1].ep.accept_offer(LINK, &tamper_fingerprint(&offer), now).unwrap();
    lab.nodes[0].ep.accept_answer(LINK, &answer, now).unwrap();
    lab.until("both sides give up", WAIT, |l| !l.nodes[0].closed.is_empty() && !l.nodes[1].closed.is_empty()).await;
    assert!(lab.nodes[0].opened.is_empty() && lab.nodes[1].opened.is_empty(), "no channel may open");
    assert!(matches!(&lab.nodes[1].closed[0], (LINK, CloseReason::Authentication(_))), "{:?}", lab.nodes[1].closed);
}

#[tokio::test]
async fn closing_one_side_closes_the_other_at_once() {
    let mut lab = Lab::new(2).await;
    lab.open(0, 1, LINK).await;
    lab.nodes[0].ep.close(LINK).unwrap();
    assert!(!lab.nodes[0].ep.is_open(LINK));
    assert!(matches!(lab.nodes[0].ep.send(LINK, b"late"), Err(SendError::UnknownConn(LINK))));
    // Well under the ICE timeout: the goodbye datagrams carry the news.
    lab.until("the peer sees the close", Duration::from_secs(1), |l| !l.nodes[1].closed.is_empty()).await;
    let (conn, why) = &lab.nodes[1].closed[0];
    assert_eq!(*conn, LINK);
    assert!(matches!(why, CloseReason::RemoteClosed | CloseReason::ChannelClosed), "{why:?}");
    assert_eq!(lab.nodes[1].ep.conns().count(), 0);

    // Both sides forgot the link, so the same id and sockets can link again.
    lab.nodes[1].inbox.clear();
    lab.open(1, 0, LINK).await;
    lab.send_all(0, 1, LINK, &[b"back again".to_vec()], WAIT).await;
    assert_eq!(lab.nodes[1].received_from(LINK), vec![b"back again".as_slice()]);
}

#[tokio::test]
async fn a_peer_that_vanishes_is_closed_by_the_ice_keepalive() {
    let mut lab = Lab::with_config(2, |c| {
        c.ice_keepalive = Duration::from_millis(200);
        c.ice_max_retransmits = 3;
    })
    .await;
    lab.open(0, 1, LINK).await;
    drop(lab.nodes.remove(0)); // no goodbye: the process died or walked away
                               // str0m keeps a pair alive for 15 s after the peer's last binding
                               // request (is-0.12 `RECENT_BINDING_REQUEST`), whatever our keepalive.
    lab.until("the survivor notices", Duration::from_secs(25), |l| !l.nodes[0].closed.is_empty()).await;
    assert_eq!(lab.nodes[0].closed[0], (LINK, CloseReason::IceDisconnected));
}

#[tokio::test]
async fn an_unanswered_offer_times_out() {
    let mut lab = Lab::with_config(1, |c| c.connect_timeout = Duration::from_millis(300)).await;
    lab.nodes[0].ep.create_offer(LINK, Instant::now()).unwrap();
    assert!(matches!(lab.nodes[0].ep.send(LINK, b"early"), Err(SendError::NotOpen(LINK))));
    lab.until("the offer gives up", WAIT, |l| !l.nodes[0].closed.is_empty()).await;
    assert_eq!(lab.nodes[0].closed, vec![(LINK, CloseReason::ConnectTimeout)]);
}

#[tokio::test]
async fn a_full_send_buffer_refuses_then_reports_writable() {
    let mut lab = Lab::new(2).await;
    lab.open(0, 1, LINK).await;
    // 64 KiB on the wire with its bundle record header.
    let message = pattern(64 * 1024 - HEADER_BYTES, 3);
    // The channel handshake may still be unacknowledged (SCTP delays acks).
    lab.until("nothing in flight", WAIT, |l| l.nodes[0].ep.buffered_amount(LINK) == Some(0)).await;
    let ep = &mut lab.nodes[0].ep;
    assert!(matches!(ep.send(LINK, &vec![0; MAX_MESSAGE_BYTES + 1]), Err(SendError::TooLarge { .. })));
    assert!(matches!(ep.send(ConnId(77), b"x"), Err(SendError::UnknownConn(_))));
    let mut accepted = 0;
    while ep.send(LINK, &message).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, SEND_BUFFER_BYTES / (message.len() + HEADER_BYTES), "the buffer takes two 64 KiB messages");
    assert!(!ep.can_send(LINK, message.len()));
    lab.until("writable again", WAIT, |l| l.nodes[0].writable.contains(&LINK)).await;
    assert!(lab.nodes[0].ep.can_send(LINK, message.len()));
    lab.send_all(0, 1, LINK, std::slice::from_ref(&message), WAIT).await;
    lab.until("all arrive", WAIT, |l| l.nodes[1].inbox.len() == accepted + 1).await;
    assert!(lab.nodes[1].received_from(LINK).iter().all(|m| *m == message.as_slice()));
}

#[tokio::test]
async fn bulk_enters_only_under_its_lower_limit_and_the_rest_still_goes() {
    let mut lab = Lab::new(2).await;
    lab.open(0, 1, LINK).await;
    // 15 KiB on the wire with its record header: a photo's piece.
    let piece = pattern(15 * 1024 - HEADER_BYTES, 5);
    lab.until("nothing in flight", WAIT, |l| l.nodes[0].ep.buffered_amount(LINK) == Some(0)).await;
    let ep = &mut lab.nodes[0].ep;
    let mut bulk = 0;
    while ep.send_bulk(LINK, &piece).is_ok() {
        bulk += 1;
    }
    assert_eq!(bulk, BULK_BUFFER_BYTES / (piece.len() + HEADER_BYTES), "two pieces under 32 KiB");
    assert!(!ep.can_send_bulk(LINK, piece.len()));
    // A text still goes: it has the whole send buffer.
    assert!(ep.can_send(LINK, 200));
    ep.send(LINK, &pattern(200, 6)).unwrap();
    lab.until("bulk writable again", WAIT, |l| l.nodes[0].writable.contains(&LINK)).await;
    assert!(lab.nodes[0].ep.can_send_bulk(LINK, piece.len()));
    lab.until("all arrive", WAIT, |l| l.nodes[1].inbox.len() == bulk + 1).await;
}

#[tokio::test]
async fn a_wildcard_socket_works_with_host_candidates_from_the_interfaces() {
    let sock = UdpSocket::bind("0.0.0.0:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let addrs = host_candidates(port, &InterfaceFilter::default()).unwrap();
    // The test namespace has only loopback, so it is used though not asked for.
    assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    let wildcard = node_on(sock, EndpointConfig { local_addrs: addrs, ..Default::default() });
    let mut lab = Lab::of(vec![wildcard, loopback_node(&|_| {}).await, loopback_node(&|_| {}).await]);
    lab.open(0, 1, ConnId(1)).await;
    lab.open(2, 0, ConnId(2)).await;
    lab.send_all(0, 1, ConnId(1), &[b"out".to_vec()], WAIT).await;
    lab.send_all(2, 0, ConnId(2), &[b"in".to_vec()], WAIT).await;
    assert_eq!(lab.nodes[1].received_from(ConnId(1)), vec![b"out".as_slice()]);
    assert_eq!(lab.nodes[0].received_from(ConnId(2)), vec![b"in".as_slice()]);
}

#[test]
fn endpoints_connect_in_memory_on_virtual_time() {
    webrtc_lab::init_log();
    let a_addr: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b_addr: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let mut a = Endpoint::new(EndpointConfig { local_addrs: vec![a_addr], ..Default::default() }).unwrap();
    let mut b = Endpoint::new(EndpointConfig { local_addrs: vec![b_addr], ..Default::default() }).unwrap();
    let start = Instant::now();
    let mut now = start;
    let offer = a.create_offer(LINK, now).unwrap();
    let answer = b.accept_offer(LINK, &offer, now).unwrap();
    a.accept_answer(LINK, &answer, now).unwrap();
    let mut received = None;
    for _ in 0..10_000 {
        let mut moved = false;
        for (from, to) in [(0, 1), (1, 0)] {
            let events = [&mut a, &mut b][from].poll(now);
            for event in events {
                match event {
                    EndpointEvent::Transmit { source, destination, bytes } => {
                        moved = true;
                        let _ = [&mut a, &mut b][to].handle_receive(now, source, destination, &bytes);
                    }
                    EndpointEvent::Open(conn) if from == 0 => a.send(conn, b"no sockets here").unwrap(),
                    EndpointEvent::Data(_, bytes) => received = Some(bytes),
                    _ => {}
                }
            }
        }
        if received.is_some() {
            break;
        }
        if !moved {
            now = [a.next_timeout(), b.next_timeout()].into_iter().flatten().min().unwrap().max(now);
        }
    }
    assert_eq!(received.as_deref(), Some(b"no sockets here".as_slice()));
    // No timer had to fire: in particular the first DTLS flight, which can
    // overtake the answerer's own ICE check, was not dropped (that costs a
    // one-second DTLS retransmission).
    assert!(now - start < Duration::from_millis(100), "virtual time used: {:?}", now - start);
}

/// Figures for docs/benchmarks.md. Release build, inside the namespace:
/// `cargo test --release -p festival-node --offline --test webrtc -- --ignored --nocapture measure`
#[tokio::test]
#[ignore = "measurement, prints figures"]
async fn measure_open_rtt_and_throughput() {
    for kib in [32, 64, 128, 256] {
        let label = format!("send buffer {kib} KiB");
        let mut lab = Lab::with_config(2, |c| c.send_buffer_bytes = kib * 1024).await;
        lab.nodes[1].keep_data = false;
        lab.nodes[0].keep_data = false;

        let mut opens = Vec::new();
        for i in 0..20 {
            let conn = ConnId(100 + i);
            let start = Instant::now();
            lab.open(0, 1, conn).await;
            opens.push(start.elapsed());
            lab.nodes[0].ep.close(conn).unwrap();
            lab.nodes[1].ep.close(conn).unwrap();
        }
        opens.sort();

        lab.open(0, 1, LINK).await;
        let ping = vec![0x5a; 200];
        let mut rtts = Vec::new();
        for _ in 0..2000 {
            let (a_before, b_before) = (lab.nodes[0].rx_msgs, lab.nodes[1].rx_msgs);
            let start = Instant::now();
            lab.nodes[0].ep.send(LINK, &ping).unwrap();
            lab.until("ping", WAIT, |l| l.nodes[1].rx_msgs > b_before).await;
            lab.nodes[1].ep.send(LINK, &ping).unwrap();
            lab.until("pong", WAIT, |l| l.nodes[0].rx_msgs > a_before).await;
            rtts.push(start.elapsed());
        }
        rtts.sort();

        let small = flood(&mut lab, 200, Duration::from_secs(2)).await;
        let large = flood(&mut lab, 64 * 1024, Duration::from_secs(2)).await;
        println!(
            "{label}: open p50 {:?} (min {:?}, max {:?}); RTT 200 B p50 {:?} p99 {:?}; \
             200 B {:.0} msg/s; 64 KiB {:.1} MB/s",
            opens[opens.len() / 2],
            opens[0],
            opens[opens.len() - 1],
            rtts[rtts.len() / 2],
            rtts[rtts.len() * 99 / 100],
            small.0,
            large.1 / 1e6,
        );
    }
}

/// Sends `size`-byte messages from node 0 to node 1 as fast as backpressure
/// allows for `span`; returns (messages/s, bytes/s) received.
async fn flood(lab: &mut Lab, size: usize, span: Duration) -> (f64, f64) {
    let message = vec![0xa5; size];
    let (msgs0, bytes0) = (lab.nodes[1].rx_msgs, lab.nodes[1].rx_bytes);
    let start = Instant::now();
    while start.elapsed() < span {
        while lab.nodes[0].ep.send(LINK, &message).is_ok() {}
        lab.step().await;
    }
    let secs = start.elapsed().as_secs_f64();
    let msgs = (lab.nodes[1].rx_msgs - msgs0) as f64;
    let bytes = (lab.nodes[1].rx_bytes - bytes0) as f64;
    // Let the backlog drain so the next measurement starts clean.
    lab.until("backlog drains", WAIT * 4, |l| l.nodes[0].ep.buffered_amount(LINK) == Some(0)).await;
    (msgs / secs, bytes / secs)
}

/// Behind a NAT a check only gets in once this side's own check has opened
/// the NAT, so the answering side must start checking as soon as it has
/// the offer, not when the offerer's first check reaches it.
#[test]
fn the_answerer_starts_its_checks_before_hearing_from_the_offerer() {
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let cfg = |port| EndpointConfig { local_addrs: vec![addr(port)], ..EndpointConfig::default() };
    let (mut x, mut y) = (Endpoint::new(cfg(40001)).unwrap(), Endpoint::new(cfg(40002)).unwrap());
    let now = Instant::now();
    let offer = x.create_offer(LINK, now).unwrap();
    y.accept_offer(LINK, &offer, now).unwrap();
    // Nothing of x's reaches y: its polls alone must send a check to x.
    let checks = (0..10)
        .flat_map(|i| y.poll(now + Duration::from_millis(50 * i)))
        .filter(|e| matches!(e, EndpointEvent::Transmit { destination, .. } if *destination == addr(40001)))
        .count();
    assert!(checks > 0, "the answerer sent no connectivity check of its own");
}
