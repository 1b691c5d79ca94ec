//! Private groups between real nodes (mDNS, signed signaling, WebRTC data
//! channels, inside a private network namespace): Ana makes a group of
//! three with Ben and Cy; Dee, linked too, carries its messages but cannot
//! read them and learns no group; members read each other, and their sealed
//! receipts mark Ana's message delivered and read; Cy leaves, and Ana's
//! group no longer counts Cy; Ana adds Dee, who then reads what follows;
//! someone not in a group cannot post to it. Run with scripts/test.

mod common;

use common::{start, until};
use festival_core::group::GroupId;
use festival_core::{MessageId, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{DeliveryState, MessageBody, NodeError, NodeHandle};

async fn text_of(node: &NodeHandle, group: &GroupId, id: &MessageId) -> Option<String> {
    let page = node.group_history(group, None, 50).await.unwrap();
    page.messages.into_iter().find(|m| m.id == *id).and_then(|m| match m.body {
        MessageBody::Group { text, .. } => Some(text),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_reads_what_a_fourth_carries_unread() {
    festival_node::netns::require_private_netns();
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let ana = start(&hub, dirs[0].path(), "Ana", None).await;
    let ben = start(&hub, dirs[1].path(), "Ben", None).await;
    let cy = start(&hub, dirs[2].path(), "Cy", None).await;
    let dee = start(&hub, dirs[3].path(), "Dee", None).await;
    for n in [&ana, &ben, &cy, &dee] {
        until("linked", async || n.status().await.unwrap().links >= 1).await;
    }

    let group = ana.create_group("Camp crew", vec![ben.peer_id(), cy.peer_id()]).await.unwrap();
    let made = ana.group(&group).await.unwrap().expect("Ana's group");
    assert_eq!((made.name.as_str(), made.members.len(), made.left), ("Camp crew", 3, false));
    assert!(made.members[0].me, "us first");
    for n in [&ben, &cy] {
        until("the group at a member's", async || n.group(&group).await.unwrap().is_some()).await;
    }

    let hello = ana.send_group(group, "tent is up, bring the lamp".into()).await.unwrap();
    for n in [&ben, &cy] {
        until("the message read by a member", async || text_of(n, &group, &hello).await.is_some()).await;
    }
    assert_eq!(text_of(&ben, &group, &hello).await.as_deref(), Some("tent is up, bring the lamp"));

    // Dee carries it (every node carries the DM mailbox) and reads nothing.
    until("Dee carries it", async || dee.store().get(&hello).await.unwrap().is_some()).await;
    assert!(dee.groups().await.unwrap().is_empty(), "Dee learns no group");
    assert_eq!(dee.message(&hello).await.unwrap(), None, "nothing of it is shown to Dee");
    assert!(matches!(dee.send_group(group, "let me in".into()).await, Err(NodeError::NotInGroup)));
    assert!(dee.group_history(&group, None, 50).await.unwrap().messages.is_empty());

    // The members' sealed receipts: delivered, then read.
    until("delivered to the members", async || {
        ana.message(&hello).await.unwrap().and_then(|m| m.delivery).is_some_and(|d| d.delivered_to >= 2)
    })
    .await;
    ben.mark_read(RoomId::direct(), vec![hello]).await.unwrap();
    until("read by Ben", async || {
        ana.message(&hello).await.unwrap().and_then(|m| m.delivery).is_some_and(|d| d.state == DeliveryState::Read)
    })
    .await;

    // Cy leaves: the group goes on without Cy, read-only for Cy.
    cy.leave_group(group).await.unwrap();
    assert!(cy.group(&group).await.unwrap().is_some_and(|g| g.left));
    assert!(matches!(cy.send_group(group, "still here?".into()).await, Err(NodeError::NotInGroup)));
    until("Ana sees Cy gone", async || {
        ana.group(&group)
            .await
            .unwrap()
            .is_some_and(|g| g.members.len() == 2 && g.members.iter().all(|m| m.peer != cy.peer_id()))
    })
    .await;

    // Ana adds Dee: Dee is in, and reads what follows.
    ana.invite_to_group(group, vec![dee.peer_id()]).await.unwrap();
    until("Dee is in", async || dee.group(&group).await.unwrap().is_some_and(|g| !g.left)).await;
    // Ben writes once the invite reached him (his group is what its latest
    // message says).
    until("Ben sees Dee in", async || {
        ben.group(&group).await.unwrap().is_some_and(|g| g.members.iter().any(|m| m.peer == dee.peer_id()))
    })
    .await;
    let next = ben.send_group(group, "welcome Dee".into()).await.unwrap();
    until("Dee reads it", async || text_of(&dee, &group, &next).await.is_some()).await;
    // Cy, out, carries it but cannot read it.
    until("Cy carries it", async || cy.store().get(&next).await.unwrap().is_some()).await;
    assert_eq!(cy.message(&next).await.unwrap(), None);

    for n in [ana, ben, cy, dee] {
        n.shutdown().await;
    }
}
