//! One client naming hundreds of rooms cannot make the relay useless: the
//! relay joins a few of them for that identity (its hourly allowance), and
//! its hello to every other node names only that node's rooms, so nobody
//! is cut off, also after the relay restarts with what it joined.

use crate::common;

use common::*;
use festival_core::frame::{Frame, Hello, MAX_HELLO_ROOMS};
use festival_core::sync::PROTOCOL_VERSION;
use festival_core::RoomId;
use festival_node::relay::wire::RelayMsg;

/// The rooms of the relay's first hello to a connection.
async fn relay_hello_rooms(ws: &mut Ws) -> Vec<RoomId> {
    loop {
        match next_msg(ws).await.expect("the link stays up") {
            RelayMsg::Frame(bytes) => {
                if let Ok(Frame::Hello(h)) = Frame::decode(&bytes) {
                    return h.rooms;
                }
            }
            RelayMsg::Refused { .. } | RelayMsg::Stored { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn hello(rooms: Vec<RoomId>) -> Vec<u8> {
    Frame::Hello(Hello { version: PROTOCOL_VERSION, ack: false, rooms, relays: true, powered: true }).encode()
}

#[tokio::test]
async fn a_hello_naming_hundreds_of_rooms_cuts_nobody_off_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let allowance = cfg.rooms_per_identity_per_hour as usize;
    let relay = TestRelay::start(cfg.clone()).await;

    // Mallory names 250 rooms (the most a hello may carry besides two).
    let mallory = identity();
    let mut m = authed(relay.addr, &mallory).await;
    let many: Vec<RoomId> = (0..MAX_HELLO_ROOMS - 6).map(|i| format!("spam-{i}").parse().unwrap()).collect();
    send(&mut m, &RelayMsg::Frame(hello(many.clone()))).await;
    eventually("the relay refuses the rooms past the allowance", || async {
        relay.rejections("room_creation_limit").await as usize == many.len() - allowance
    })
    .await;

    // Ana and Ben chat through the relay in a room of their own.
    let (ana, ben) = (
        TestNode::start(&dir.path().join("ana"), "Ana", &relay.url()).await,
        TestNode::start(&dir.path().join("ben"), "Ben", &relay.url()).await,
    );
    // Each joins the room by writing in it.
    let first = ben.send("camp-b12", "saving us a spot").await;
    let id = ana.send("camp-b12", "tent is up").await;
    eventually("Ben gets Ana's message", || async { ben.has(&id).await }).await;
    eventually("Ana gets Ben's message", || async { ana.has(&first).await }).await;

    // A plain node that names one room hears a hello with only it and the
    // two everyone shares, not Mallory's rooms.
    let mut carl = authed(relay.addr, &identity()).await;
    let camp: RoomId = "camp-b12".parse().unwrap();
    send(&mut carl, &RelayMsg::Frame(hello(vec![RoomId::festival(), RoomId::direct(), camp.clone()]))).await;
    let first = relay_hello_rooms(&mut carl).await;
    assert!(first.len() <= 2, "before Carl's hello, only the common rooms: {first:?}");
    let second = relay_hello_rooms(&mut carl).await;
    assert_eq!(second, vec![camp.clone(), RoomId::direct(), RoomId::festival()]);

    // Mallory's own hello from the relay names its rooms the relay joined,
    // and never more than a hello may carry.
    let mallory_hello = relay_hello_rooms(&mut m).await;
    assert!(mallory_hello.len() <= MAX_HELLO_ROOMS);

    // After a restart with the rooms it joined, the same holds.
    drop((ana, ben, m, carl));
    relay.stop().await;
    let relay = TestRelay::start(cfg).await;
    let mut dora = authed(relay.addr, &identity()).await;
    send(&mut dora, &RelayMsg::Frame(hello(vec![RoomId::festival(), RoomId::direct()]))).await;
    let rooms = relay_hello_rooms(&mut dora).await;
    assert!(rooms.iter().all(|r| *r == RoomId::festival() || r.is_direct()), "{rooms:?}");
    let (eve, fay) = (
        TestNode::start(&dir.path().join("eve"), "Eve", &relay.url()).await,
        TestNode::start(&dir.path().join("fay"), "Fay", &relay.url()).await,
    );
    let id = eve.send("festival", "still works").await;
    eventually("Fay gets Eve's message after the restart", || async { fay.has(&id).await }).await;
    relay.stop().await;
}

/// Fresh keys each have an hourly allowance of new rooms, so a stream of
/// them is held by the relay-wide budget per minute, and what it refused
/// is joined as it refills; one socket's hellos past its budget wait
/// before the hub (the newest is handed on, not lost).
#[tokio::test]
async fn fresh_keys_together_cannot_make_the_relay_join_more_than_its_rooms_per_minute() {
    let dir = tempfile::tempdir().unwrap();
    // Sockets here stay quiet while the test waits on the relay.
    let cfg =
        festival_relay::RelayConfig { rooms_created_per_minute: 20, idle_timeout_secs: 60, ..test_config(dir.path()) };
    let per_key = cfg.rooms_per_identity_per_hour as usize;
    let relay = TestRelay::start(cfg).await;

    // Three fresh keys, each naming its full allowance of new rooms.
    let mut sockets = Vec::new();
    for k in 0..3 {
        let mut s = authed(relay.addr, &identity()).await;
        let rooms: Vec<RoomId> = (0..per_key).map(|i| format!("junk-{k}-{i}").parse().unwrap()).collect();
        send(&mut s, &RelayMsg::Frame(hello(rooms))).await;
        sockets.push(s);
    }
    eventually("the rooms past 20 in this minute are refused", || async {
        relay.rejections("room_creation_limit").await as usize == 3 * per_key - 20
    })
    .await;
    // The relay's budget refills (20 a minute: one every 3 s); a refused
    // room that its node still names is joined then, without a new hello.
    let carried = relay.metric("festival_relay_rooms ").await;
    eventually("a room refused for the relay-wide budget is joined as it refills", || async {
        relay.metric("festival_relay_rooms ").await > carried
    })
    .await;

    // One socket, 20 hellos at once: four pass (its burst), plus at most
    // one a second while they are sent. The last names a room the others
    // did not: it is held, not lost, and reaches the hub when the budget
    // allows, so the relay then forwards that room's messages to it.
    let mut m = authed(relay.addr, &identity()).await;
    let started = std::time::Instant::now();
    let room: RoomId = "junk-0-0".parse().unwrap();
    for i in 0..20 {
        let rooms = if i < 19 { vec![RoomId::festival()] } else { vec![RoomId::festival(), room.clone()] };
        send(&mut m, &RelayMsg::Frame(hello(rooms))).await;
    }
    let passed_at_most = 4 + started.elapsed().as_secs() as usize + 1;
    eventually("hellos past the budget are counted", || async {
        relay.rejections("hello_rate").await as usize >= 20 - passed_at_most
    })
    .await;

    // The relay answers a hello that changes a node's rooms with its own,
    // naming the rooms they now share: the held hello reached the hub.
    tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while !relay_hello_rooms(&mut m).await.contains(&room) {}
    })
    .await
    .expect("the held hello never reached the hub");
    let mut w = authed(relay.addr, &identity()).await;
    send(&mut w, &RelayMsg::Frame(hello(vec![RoomId::festival(), room.clone()]))).await;
    let author = identity();
    let env = festival_core::envelope::SignedEnvelope::sign(
        &author,
        festival_core::envelope::Draft {
            seq: 1,
            room: room.clone(),
            kind: festival_core::envelope::Kind::Text,
            created_at: festival_node::clock::now_ms(),
            body: festival_core::body::Body::Text("in the room the last hello named".into()).encode(),
        },
    )
    .unwrap();
    let push = Frame::Push(festival_core::frame::Item { hops: 0, envelope: env.bytes().to_vec() });
    send(&mut w, &RelayMsg::Frame(push.encode())).await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            let bytes = match next_msg(&mut m).await {
                Some(RelayMsg::Frame(bytes)) => bytes,
                Some(_) => continue,
                None => panic!("the relay closed the socket"),
            };
            let items = match Frame::decode(&bytes) {
                Ok(Frame::Push(item)) => vec![item],
                Ok(Frame::Batch { items }) => items,
                _ => continue,
            };
            if items.iter().any(|i| i.envelope == env.bytes()) {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "the room's message was not forwarded to the node that named it last");
    drop(sockets);
    relay.stop().await;
}
