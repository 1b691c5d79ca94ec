//! Signaling through the relay: a signed offer addressed to another node's
//! PeerId reaches it with the authenticated sender, and the answer comes
//! back; a node that is not connected is reported unreachable; an offer
//! signed by someone else than the sender is refused. A node refuses
//! relayed offers from strangers.

use crate::common;

use common::*;
use festival_core::policy::PowerState;
use festival_core::Identity;
use festival_node::discovery::MdnsHub;
use festival_node::relay::wire::RelayMsg;
use festival_node::relay::{RelayClient, RelayEvent};
use festival_node::runtime::{NodeConfig, NodeHandle, PowerConfig, RelayState};
use festival_node::signaling::{verify_answer, Answer, OfferCheck, SignalMsg};

#[tokio::test]
async fn relay_clients_exchange_signals_and_learn_of_unreachable_peers() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let (a, b) = (identity(), identity());
    let (a_id, b_id) = (a.peer_id(), b.peer_id());
    // The clients own their keys; twins sign the offers here.
    let a_twin = Identity::from_secret_bytes(&a.secret_bytes());
    let (ha, mut ea) = RelayClient::spawn(client_config(&relay.url()), a);
    let (_hb, mut eb) = RelayClient::spawn(client_config(&relay.url()), b);
    connected(&mut ea).await;
    connected(&mut eb).await;

    ha.send_signal(b_id, &offer(&a_twin, b_id)).unwrap();
    match next_signal(&mut eb).await {
        RelayEvent::Signal { from, msg: SignalMsg::Offer { offer, .. } } => {
            assert_eq!(from, a_id);
            assert_eq!(offer.to, b_id);
        }
        other => panic!("expected A's offer, got {other:?}"),
    }

    // An offer signed by someone else than the sender is refused as spoofed.
    ha.send_signal(b_id, &offer(&identity(), b_id)).unwrap();
    eventually("the spoofed offer is counted", || async { relay.rejections("signal_spoofed").await == 1 }).await;

    // A node that is not connected: unreachable.
    let nobody = identity().peer_id();
    ha.send_signal(nobody, &offer(&a_twin, nobody)).unwrap();
    match next_signal(&mut ea).await {
        RelayEvent::Unreachable { peer } => assert_eq!(peer, nobody),
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert_eq!(relay.metric("festival_relay_signals_total").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn a_signed_offer_reaches_its_addressee_with_the_authenticated_sender() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let (a, b) = (identity(), identity());
    let (a_id, b_id) = (a.peer_id(), b.peer_id());
    let mut wa = authed(relay.addr, &a).await;
    let mut wb = authed(relay.addr, &b).await;

    let msg = postcard::to_stdvec(&offer(&a, b_id)).unwrap();
    send(&mut wa, &RelayMsg::Signal { peer: b_id, msg }).await;
    let (from, got) = loop {
        match next_msg(&mut wb).await.expect("B stays connected") {
            RelayMsg::Signal { peer, msg } => break (peer, postcard::from_bytes::<SignalMsg>(&msg).unwrap()),
            _ => continue,
        }
    };
    assert_eq!(from, a_id, "the relay names the authenticated sender");
    let SignalMsg::Offer { offer: o, sig } = got else { panic!("an offer") };
    OfferCheck::new(b_id, FESTIVAL.into()).verify(&o, &sig, festival_node::clock::now_ms()).expect("a valid offer");

    let answer = Answer { version: 1, from: b_id, to: a_id, nonce: o.nonce, sdp: "v=0 answer".into() }.sign(&b);
    send(&mut wb, &RelayMsg::Signal { peer: a_id, msg: postcard::to_stdvec(&answer).unwrap() }).await;
    let got = loop {
        match next_msg(&mut wa).await.expect("A stays connected") {
            RelayMsg::Signal { peer, msg } if peer == b_id => break postcard::from_bytes::<SignalMsg>(&msg).unwrap(),
            _ => continue,
        }
    };
    let SignalMsg::Answer { answer, sig } = got else { panic!("an answer") };
    verify_answer(&answer, &sig, &a_id, &b_id, &o.nonce).expect("a valid answer");
    assert_eq!(relay.metric("festival_relay_signals_total").await, 2);
    relay.stop().await;
}

/// A node takes a relayed offer only for an upgrade of its own under way or
/// from someone it knows: anyone on the relay can offer from fresh keys, and
/// each offer it took would cost a slot (the eclipse the mesh guards the
/// LAN against). A stranger is refused, told why, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_relayed_offers_from_strangers_and_counts_them() {
    // A whole node: mDNS and WebRTC sockets too, so only in a private namespace.
    festival_node::netns::require_private_netns();
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let ben_dir = tempfile::tempdir().unwrap();
    let ben = NodeHandle::start(NodeConfig {
        name: Some("Ben".into()),
        festival: FESTIVAL.into(),
        mdns: Some(hub.clone()),
        power: PowerConfig::Fixed(PowerState::Mains),
        relay_url: Some(relay.url()),
        ..NodeConfig::new(ben_dir.path().to_owned())
    })
    .await
    .expect("node starts");
    let ben_id = ben.status().await.unwrap().peer;
    eventually("Ben is on the relay", || async {
        matches!(ben.status().await.unwrap().relay, RelayState::Connected { .. })
    })
    .await;

    let stranger = identity();
    let twin = Identity::from_secret_bytes(&stranger.secret_bytes());
    let (hs, mut es) = RelayClient::spawn(client_config(&relay.url()), stranger);
    connected(&mut es).await;
    hs.send_signal(ben_id, &offer(&twin, ben_id)).unwrap();
    match next_signal(&mut es).await {
        RelayEvent::Signal { from, msg: SignalMsg::Reject { reason } } => {
            assert_eq!(from, ben_id);
            assert!(reason.contains("only from peers we know"), "says why: {reason}");
        }
        other => panic!("expected Ben's refusal, got {other:?}"),
    }
    let counted = || async { ben.status().await.unwrap().rejected.get("signaling_stranger").copied() == Some(1) };
    eventually("the stranger's offer is counted", counted).await;
    ben.shutdown().await;
    relay.stop().await;
}
