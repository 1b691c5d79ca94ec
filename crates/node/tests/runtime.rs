//! Nodes in one process on loopback, inside a private network namespace:
//! real mDNS discovery, real signed signaling, real WebRTC data channels.
//! Run with scripts/test (it wraps the tests in `unshare --net`).

use std::time::Duration;

use festival_core::policy::PowerState;
use festival_core::{MessageId, PeerId, ReceiptStatus, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{MessageBody, NodeConfig, NodeEvent, NodeHandle, PowerConfig};
use tokio::sync::{broadcast, Mutex};

/// One mDNS daemon per process: these tests take turns.
static TURN: Mutex<()> = Mutex::const_new(());
const DEADLINE: Duration = Duration::from_secs(20);

struct Net {
    hub: MdnsHub,
    nodes: Vec<NodeHandle>,
    _dirs: Vec<tempfile::TempDir>,
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
        Net { hub, nodes, _dirs: dirs }
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

    // History reads back what was said, oldest first, names resolved.
    let h = b.history(&RoomId::festival(), None, 10).await.unwrap();
    let texts: Vec<_> = h.messages.iter().map(|m| (m.sender.name.clone(), m.body.clone())).collect();
    assert_eq!(
        texts,
        vec![
            (Some("Ana".into()), MessageBody::Text { text: "hello from Ana".into() }),
            (Some("Bob".into()), MessageBody::Text { text: "hi Ana".into() }),
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
