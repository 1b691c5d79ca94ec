//! A hostile peer on the wire. Mallory signs her own offer (signaling lets
//! anyone with an identity in), opens a data channel to Ana, then sends an
//! oversized frame and a flood. Ana refuses and counts each, drops the
//! misbehaving link (and refuses Mallory's next offer while backing off),
//! and keeps chatting with Bob. Runs inside a private network namespace (scripts/test).

use std::time::{Duration, Instant};

use festival_core::frame::{Frame, Hello, Item, MAX_FRAME_BYTES};
use festival_core::policy::PowerState;
use festival_core::{Identity, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{MessageBody, NodeConfig, NodeEvent, NodeHandle, PowerConfig};
use festival_node::signaling::{read_msg, verify_answer, write_msg, Offer, SignalMsg};
use festival_node::webrtc::driver::{bind_udp, pump, DATAGRAM_BUF};
use festival_node::webrtc::{ConnId, Endpoint, EndpointConfig, EndpointEvent};
use rand_core::OsRng;

const DEADLINE: Duration = Duration::from_secs(20);

async fn node(hub: &MdnsHub, name: &str, dir: &tempfile::TempDir) -> NodeHandle {
    let cfg = NodeConfig {
        name: Some(name.into()),
        mdns: Some(hub.clone()),
        power: PowerConfig::Fixed(PowerState::Mains),
        ..NodeConfig::new(dir.path().to_owned())
    };
    NodeHandle::start(cfg).await.expect("node starts")
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_and_a_flood_are_refused_and_counted_while_others_chat() {
    festival_node::netns::require_private_netns();
    let hub = MdnsHub::new(&[]).unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ana, bob) = (node(&hub, "Ana", &da).await, node(&hub, "Bob", &db).await);
    until("Ana and Bob linked", || async { ana.status().await.unwrap().links == 1 }).await;

    // Mallory: her own identity, endpoint and socket; a signed offer to Ana.
    let mallory = Identity::generate(&mut OsRng);
    let sock = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let cfg = EndpointConfig {
        local_addrs: vec![sock.local_addr().unwrap()],
        // She ignores the limits a well-behaved node keeps.
        max_message_bytes: 4 * MAX_FRAME_BYTES,
        send_buffer_bytes: 4 * MAX_FRAME_BYTES,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg).unwrap();
    let conn = ConnId(1);
    let status = ana.status().await.unwrap();
    let nonce = [9; 16];
    let offer = Offer {
        version: 1,
        festival: status.festival.clone(),
        from: mallory.peer_id(),
        to: ana.peer_id(),
        nonce,
        sent_at: festival_node::clock::now_ms(),
        sdp: ep.create_offer(conn, Instant::now()).unwrap(),
    }
    .sign(&mallory);
    let SignalMsg::Offer { offer: ref sent_offer, .. } = offer else { unreachable!() };
    let offer_sdp = sent_offer.sdp.clone();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", status.signaling_port)).await.unwrap();
    write_msg(&mut tcp, &offer).await.unwrap();
    let SignalMsg::Answer { answer, sig } = read_msg(&mut tcp).await.unwrap() else { panic!("Ana refused the offer") };
    verify_answer(&answer, &sig, &mallory.peer_id(), &ana.peer_id(), &nonce).unwrap();
    ep.accept_answer(conn, &answer.sdp, Instant::now()).unwrap();
    let mut buf = vec![0; DATAGRAM_BUF];
    let start = Instant::now();
    loop {
        let events = pump(&mut ep, &sock, &mut buf, Duration::from_millis(20)).await.unwrap();
        if events.contains(&EndpointEvent::Open(conn)) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "Mallory's channel never opened");
    }

    let hello = Frame::Hello(Hello {
        version: festival_core::sync::PROTOCOL_VERSION,
        ack: false,
        rooms: vec![RoomId::festival(), RoomId::direct()],
        relays: true,
        powered: true,
    });
    ep.send(conn, &hello.encode()).unwrap();
    // A frame above the limit cannot even leave: the channel's
    // max-message-size (the frame limit) is enforced by SCTP at the sender.
    // (A stack that ignores it meets the core's frame_oversized check, which
    // festival-core's bad_input tests cover.)
    assert!(ep.send(conn, &vec![1u8; MAX_FRAME_BYTES + 1000]).is_err());
    // So Mallory wraps an oversized envelope in a frame that fits.
    let fat = Frame::Push(Item { hops: 1, envelope: vec![1u8; 100 * 1024] });
    ep.send(conn, &fat.encode()).unwrap();
    // The flood: tiny frames as fast as the channel takes them, in bursts.
    let mut sent = 0;
    let flood_start = Instant::now();
    while sent < 30_000 && flood_start.elapsed() < Duration::from_secs(10) {
        while ep.can_send(conn, 3) && sent < 30_000 {
            ep.send(conn, &[1, 8, 0]).unwrap();
            sent += 1;
        }
        pump(&mut ep, &sock, &mut buf, Duration::from_millis(1)).await.unwrap();
    }
    // Keep Mallory's side alive while Ana counts.
    let keep = tokio::spawn(async move {
        loop {
            if pump(&mut ep, &sock, &mut buf, Duration::from_millis(20)).await.is_err() {
                break;
            }
        }
    });

    until("the oversized envelope counted", || async {
        let r = ana.status().await.unwrap().rejected;
        r.get("envelope_oversized").is_some_and(|n| *n >= 1)
    })
    .await;
    // A hundred of her own faults within ten seconds make the link
    // misbehaving: Ana drops it; what the flood still sends goes nowhere.
    // Her frames are malformed: each is refused and counted, and the 100th
    // fault (the oversized envelope was the first) drops the link.
    until("the flood refused and the link dropped", || async {
        let s = ana.status().await.unwrap();
        let refused = s.rejected.get("frame_malformed").copied().unwrap_or(0);
        let dropped = s.rejected.get("link_misbehaving").copied().unwrap_or(0);
        refused >= 99 && dropped == 1 && s.links == 1
    })
    .await;

    // Bob and Ana chat on.
    let mut events = ana.events();
    let id = bob.send(RoomId::festival(), "still here?".into()).await.unwrap();
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(NodeEvent::Message(m)) = events.recv().await {
                if m.id == id && m.body == (MessageBody::Text { text: "still here?".into() }) {
                    break;
                }
            }
        }
    })
    .await
    .expect("Bob's message reached Ana despite the flood");

    // Mallory comes straight back with a fresh offer: refused while Ana backs off.
    let again = Offer {
        version: 1,
        festival: status.festival.clone(),
        from: mallory.peer_id(),
        to: ana.peer_id(),
        nonce: [10; 16],
        sent_at: festival_node::clock::now_ms(),
        sdp: offer_sdp,
    }
    .sign(&mallory);
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", status.signaling_port)).await.unwrap();
    write_msg(&mut tcp, &again).await.unwrap();
    let reply = read_msg(&mut tcp).await;
    assert!(matches!(reply, Ok(SignalMsg::Reject { .. })), "a misbehaving peer was let back in at once: {reply:?}");

    keep.abort();
    ana.shutdown().await;
    bob.shutdown().await;
    hub.shutdown().await.unwrap();
}
