//! Nodes in one process on loopback, inside a private network namespace:
//! real mDNS discovery, real signed signaling, real WebRTC data channels.
//! Run with scripts/test (it wraps the tests in `unshare --net`).

use std::time::Duration;

use festival_core::policy::PowerState;
use festival_core::{MessageId, PeerId, ReceiptStatus, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{DeliveryState, MessageBody, NodeConfig, NodeEvent, NodeHandle, PowerConfig};
use tokio::sync::{broadcast, Mutex};

/// One mDNS daemon per process: these tests take turns.
static TURN: Mutex<()> = Mutex::const_new(());
const DEADLINE: Duration = Duration::from_secs(20);

struct Net {
    hub: MdnsHub,
    nodes: Vec<NodeHandle>,
    dirs: Vec<tempfile::TempDir>,
}

impl Net {
    async fn start(names: &[&str]) -> Net {
        festival_node::netns::require_private_netns();
        let hub = MdnsHub::new(&[]).expect("mDNS hub");
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for name in names {
            let dir = tempfile::tempdir().unwrap();
            let cfg = NodeConfig {
                name: Some((*name).to_owned()),
                mdns: Some(hub.clone()),
                power: PowerConfig::Fixed(PowerState::Mains),
                ..NodeConfig::new(dir.path().to_owned())
            };
            nodes.push(NodeHandle::start(cfg).await.expect("node starts"));
            dirs.push(dir);
        }
        Net { hub, nodes, dirs }
    }

    async fn stop(self) {
        for n in &self.nodes {
            n.shutdown().await;
        }
        self.hub.shutdown().await.expect("hub stops");
    }
}

/// Wait for an event matching `pred`, with a deadline.
async fn wait_for<T>(
    rx: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pred: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(t) = pred(&ev) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended while waiting for {what}: {e}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"))
}

async fn linked_to_all(node: &NodeHandle, others: usize) {
    tokio::time::timeout(DEADLINE, async {
        while (node.status().await.unwrap().links as usize) < others {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("links open");
}

fn text_from(ev: &NodeEvent, author: PeerId, want: &str) -> Option<MessageId> {
    match ev {
        NodeEvent::Message(m) if m.author == author && m.body == MessageBody::Text { text: want.into() } => Some(m.id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_discover_link_and_chat_both_ways_with_receipts_and_a_sealed_dm() {
    let _turn = TURN.lock().await;
    let net = Net::start(&["Ana", "Bob"]).await;
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let (mut ea, mut eb) = (a.events(), b.events());
    linked_to_all(a, 1).await;
    linked_to_all(b, 1).await;

    let id = a.send(RoomId::festival(), "hello from Ana".into()).await.unwrap();
    let got = wait_for(&mut eb, "Ana's message at Bob", |e| text_from(e, a.peer_id(), "hello from Ana")).await;
    assert_eq!(got, id);
    wait_for(&mut ea, "Bob's delivery receipt", |e| match e {
        NodeEvent::Receipt { from, status: ReceiptStatus::Delivered, ids }
            if *from == b.peer_id() && ids.contains(&id) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;

    b.send(RoomId::festival(), "hi Ana".into()).await.unwrap();
    wait_for(&mut ea, "Bob's reply at Ana", |e| text_from(e, b.peer_id(), "hi Ana")).await;

    let dm = b.send_dm(a.peer_id(), "meet at the bar".into()).await.unwrap();
    let body = wait_for(&mut ea, "the DM at Ana", |e| match e {
        NodeEvent::Message(m) if m.id == dm => Some(m.body.clone()),
        _ => None,
    })
    .await;
    assert_eq!(body, MessageBody::Direct { to: a.peer_id(), text: "meet at the bar".into() });
    a.mark_read(RoomId::direct(), vec![dm]).await.unwrap();
    wait_for(&mut eb, "Ana's read receipt", |e| match e {
        NodeEvent::Receipt { from, status: ReceiptStatus::Read, ids } if *from == a.peer_id() && ids.contains(&dm) => {
            Some(())
        }
        _ => None,
    })
    .await;

    // History reads back what was said, oldest first, names resolved; our
    // own messages carry no name (the UI shows "You").
    let h = b.history(&RoomId::festival(), None, 10).await.unwrap();
    let texts: Vec<_> = h.messages.iter().map(|m| (m.sender.name.clone(), m.body.clone())).collect();
    assert_eq!(
        texts,
        vec![
            (Some("Ana".into()), MessageBody::Text { text: "hello from Ana".into() }),
            (None, MessageBody::Text { text: "hi Ana".into() }),
        ]
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_all_link_and_each_message_reaches_the_other_two_once() {
    let _turn = TURN.lock().await;
    let net = Net::start(&["Ana", "Bob", "Cem"]).await;
    for n in &net.nodes {
        linked_to_all(n, 2).await;
    }
    let mut streams: Vec<_> = net.nodes.iter().map(|n| n.events()).collect();
    let mut sent = Vec::new();
    for (i, n) in net.nodes.iter().enumerate() {
        sent.push((n.peer_id(), n.send(RoomId::festival(), format!("from node {i}")).await.unwrap()));
    }
    for (i, rx) in streams.iter_mut().enumerate() {
        let mut seen = std::collections::HashMap::new();
        let expected: Vec<MessageId> =
            sent.iter().filter(|(p, _)| *p != net.nodes[i].peer_id()).map(|(_, id)| *id).collect();
        wait_for(rx, "both other messages", |e| {
            if let NodeEvent::Message(m) = e {
                *seen.entry(m.id).or_insert(0) += 1;
            }
            expected.iter().all(|id| seen.contains_key(id)).then_some(())
        })
        .await;
        assert!(seen.values().all(|&n| n == 1), "node {i} saw a message twice: {seen:?}");
    }
    net.stop().await;
}

/// Wait until `cond` holds, polling, with the deadline.
async fn until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let met = tokio::time::timeout(DEADLINE, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    met.unwrap_or_else(|_| panic!("not within {DEADLINE:?}: {what}"));
}

/// Mallory carries Bob's DM to Ana (every node carries the DM mailbox) and
/// calls it read: her node seals a "Read" receipt to Bob. It reaches Bob,
/// who does not count it (only the DM's recipient can mark it read): no
/// receipt event, the DM still shows as delivered. Then Ana reads it, and
/// Bob sees "Read" from Ana.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_receipt_from_anyone_but_the_recipient_does_not_mark_a_dm_read() {
    let _turn = TURN.lock().await;
    let net = Net::start(&["Ana", "Bob", "Mallory"]).await;
    for n in &net.nodes {
        linked_to_all(n, 2).await;
    }
    let (a, b, m) = (&net.nodes[0], &net.nodes[1], &net.nodes[2]);
    // The test's own look into two nodes' stores (SQLite in WAL: a second
    // connection reads beside the node's).
    let db = |i: usize| net.dirs[i].path().join(festival_node::datadir::DB_FILE);
    let at_bob = festival_store::Store::open(&db(1)).await.expect("Bob's store");
    let at_mallory = festival_store::Store::open(&db(2)).await.expect("Mallory's store");
    let mut eb = b.events();

    let dm = b.send_dm(a.peer_id(), "the code is 4711".into()).await.unwrap();
    until("Mallory carries Bob's DM", async || at_mallory.get(&dm).await.unwrap().is_some()).await;
    assert!(m.message(&dm).await.unwrap().is_none(), "Mallory cannot open a DM to Ana");
    wait_for(&mut eb, "Ana's delivery receipt", |e| match e {
        NodeEvent::Receipt { from, status: ReceiptStatus::Delivered, ids } if ids.contains(&dm) => Some(*from),
        _ => None,
    })
    .await;

    m.mark_read(RoomId::direct(), vec![dm]).await.unwrap();
    let forged = async || at_bob.chain_usage(&RoomId::direct(), &m.peer_id()).await.unwrap().messages > 0;
    until("Mallory's sealed receipt is stored at Bob", forged).await;
    let seen = b.message(&dm).await.unwrap().expect("Bob's own DM");
    let d = seen.delivery.clone().expect("ours");
    assert_eq!(d.state, DeliveryState::Delivered, "Mallory's receipt counted: {seen:?}");
    assert_eq!(d.read_by, 0);
    while let Ok(e) = eb.try_recv() {
        if let NodeEvent::Receipt { from, status, .. } = e {
            assert_ne!((from, status), (m.peer_id(), ReceiptStatus::Read), "a receipt from Mallory was shown");
        }
    }

    a.mark_read(RoomId::direct(), vec![dm]).await.unwrap();
    wait_for(&mut eb, "Ana's read receipt", |e| match e {
        NodeEvent::Receipt { from, status: ReceiptStatus::Read, ids } if *from == a.peer_id() && ids.contains(&dm) => {
            Some(())
        }
        NodeEvent::Receipt { from, .. } if *from == m.peer_id() => panic!("a receipt from Mallory was shown"),
        _ => None,
    })
    .await;
    let seen = b.message(&dm).await.unwrap().expect("Bob's own DM");
    let d = seen.delivery.clone().expect("ours");
    assert_eq!((d.state, d.read_by), (DeliveryState::Read, 1));
    at_bob.close().await;
    at_mallory.close().await;
    net.stop().await;
}

/// Anyone on the LAN can announce a record for Bob's id (his instance name,
/// his id, a port of their own): Ana's open, verified link to Bob is kept,
/// and Bob's next message reaches her over it. (Before, both ends dropped
/// the link and redialled the announced address, at every re-announcement.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_record_for_a_linked_peer_does_not_drop_the_link() {
    use festival_node::discovery::{
        host_name, instance_name, Advert, DiscoveryEvent, SERVICE_TYPE, TXT_FESTIVAL, TXT_ID, TXT_PORT, TXT_VERSION,
    };
    let _turn = TURN.lock().await;
    let net = Net::start(&["Ana", "Bob"]).await;
    for n in &net.nodes {
        linked_to_all(n, 1).await;
    }
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let bob = b.peer_id();
    let mut a_events = a.events();
    // A witness on the same daemon: once it has the spoofed record, so has
    // Ana's discovery (one hub hands every record to all its subscribers).
    let witness_id = festival_core::Identity::generate(&mut rand_core::OsRng).peer_id();
    let festival = festival_node::runtime::NodeConfig::new(net.dirs[0].path().to_owned()).festival;
    let mut witness =
        net.hub.register(Advert { peer: witness_id, festival: festival.clone(), port: 9, powered: false }).unwrap();

    let spoof_port = 9;
    let version = festival_core::sync::PROTOCOL_VERSION.to_string();
    let txt =
        [(TXT_ID, bob.to_hex()), (TXT_VERSION, version), (TXT_FESTIVAL, festival), (TXT_PORT, spoof_port.to_string())];
    let spoof =
        mdns_sd::ServiceInfo::new(SERVICE_TYPE, &instance_name(&bob), &host_name(&bob), (), spoof_port, &txt[..])
            .unwrap()
            .enable_addr_auto();
    net.hub.register_raw(spoof).unwrap();
    tokio::time::timeout(DEADLINE, async {
        loop {
            match witness.recv().await {
                Some(DiscoveryEvent::Found { peer, port, .. } | DiscoveryEvent::Updated { peer, port, .. })
                    if peer == bob && port == spoof_port =>
                {
                    return
                }
                Some(_) => {}
                None => panic!("the witness's discovery ended"),
            }
        }
    })
    .await
    .expect("the spoofed record is heard on the LAN");

    b.send(RoomId::festival(), "still here".into()).await.unwrap();
    let down = wait_for(&mut a_events, "Bob's message after the spoof", |ev| match ev {
        NodeEvent::LinkDown { peer, reason } if *peer == bob => Some(Some(reason.clone())),
        ev => text_from(ev, bob, "still here").map(|_| None),
    })
    .await;
    assert_eq!(down, None, "Ana dropped her link to Bob for a record anyone can announce");
    assert_eq!(a.status().await.unwrap().links, 1);
    drop(witness);
    net.stop().await;
}
