//! Private groups as a member's store keeps them: made by the first message
//! heard; later ones heard only from a current member (one who left, or was
//! never in it, is not heard, whatever list it claims); `Added` adds, `Left`
//! takes its author out, a text changes no one's place; at most MAX_GROUPS,
//! forgetting the group longest quiet that we never wrote in; what we can
//! read is kept like our DMs (not expired or evicted).

use crate::common;

use common::{identity, sign, temp_store};
use festival_core::body::Body;
use festival_core::group::{self, GroupContent, GroupId};
use festival_core::{Identity, Kind, PeerId, RoomId, SignedEnvelope};
use festival_store::{Store, MAX_GROUPS};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const T: u64 = 1_750_000_000_000;

fn message(
    author: &Identity,
    seq: u64,
    at: u64,
    id: GroupId,
    members: &[PeerId],
    content: GroupContent,
) -> SignedEnvelope {
    let list = group::member_list(&author.peer_id(), members).unwrap();
    let sealed =
        group::seal(author, id, "Camp crew", list, content, &mut ChaCha20Rng::seed_from_u64(seq + at)).unwrap();
    sign(author, &RoomId::direct(), seq, Kind::GroupMessage, at, Body::SealedGroup(sealed).encode())
}

async fn members(store: &Store, id: &GroupId) -> Vec<PeerId> {
    store.group(id).await.unwrap().expect("the group").members
}

#[tokio::test]
async fn only_members_are_heard_and_only_joins_and_leaves_change_the_group() {
    let (_dir, store) = temp_store().await;
    let me = identity(1);
    store.create_identity(&me, "Me", T).await.unwrap();
    let (ana, ben, dee, mallory) = (identity(2), identity(3), identity(4), identity(9));
    let (m, a, b, d, x) = (me.peer_id(), ana.peer_id(), ben.peer_id(), dee.peer_id(), mallory.peer_id());
    let id = GroupId([7; 16]);
    let made = message(&ana, 1, T, id, &[m, b], GroupContent::Members);
    store.insert(&made, 1, T, false).await.unwrap();
    store.index_groups(&me, 100).await.unwrap();
    let mut all = vec![m, a, b];
    all.sort();
    assert_eq!(members(&store, &id).await, all);
    assert_eq!(store.group_of_message(&made.id()).await.unwrap(), Some(id));

    // Mallory knows the id and seals to us with herself in the list: not
    // heard, not shown, the group unchanged.
    let forged = message(&mallory, 1, T + 1, id, &[m, a, b], GroupContent::Added(vec![x]));
    store.insert(&forged, 1, T + 1, false).await.unwrap();
    store.index_groups(&me, 100).await.unwrap();
    assert_eq!(store.group_of_message(&forged.id()).await.unwrap(), None);
    assert_eq!(members(&store, &id).await, all);

    // Ben leaves; then he speaks again with himself in the list: not heard.
    store.insert(&message(&ben, 1, T + 2, id, &[m, a], GroupContent::Left), 1, T + 2, false).await.unwrap();
    let back = message(&ben, 2, T + 3, id, &[m, a], GroupContent::Text("I'm back".into()));
    store.insert(&back, 1, T + 3, false).await.unwrap();
    store.index_groups(&me, 100).await.unwrap();
    let mut two = vec![m, a];
    two.sort();
    assert_eq!(members(&store, &id).await, two);
    assert_eq!(store.group_of_message(&back.id()).await.unwrap(), None);

    // Ana adds Dee; a text of Ana's sealed to fewer changes no one's place.
    store.insert(&message(&ana, 2, T + 4, id, &[m, d], GroupContent::Added(vec![d])), 1, T + 4, false).await.unwrap();
    let text = message(&ana, 3, T + 5, id, &[m], GroupContent::Text("just you".into()));
    store.insert(&text, 1, T + 5, false).await.unwrap();
    store.index_groups(&me, 100).await.unwrap();
    let mut three = vec![m, a, d];
    three.sort();
    assert_eq!(members(&store, &id).await, three);
    assert_eq!(store.group_of_message(&text.id()).await.unwrap(), Some(id));

    // We leave: read-only; Ana adds us again: back in.
    store.insert(&message(&me, 1, T + 6, id, &[a, d], GroupContent::Left), 0, T + 6, true).await.unwrap();
    store.index_groups(&me, 100).await.unwrap();
    assert!(store.group(&id).await.unwrap().unwrap().left);
    store.insert(&message(&ana, 4, T + 7, id, &[d, m], GroupContent::Added(vec![m])), 1, T + 7, false).await.unwrap();
    store.index_groups(&me, 100).await.unwrap();
    assert!(!store.group(&id).await.unwrap().unwrap().left);
    // Muted, and back: the choice stays through later messages.
    assert!(store.set_group_muted(&id, true).await.unwrap());
    assert!(!store.set_group_muted(&GroupId([9; 16]), true).await.unwrap(), "no such group");
    store
        .insert(&message(&ana, 5, T + 8, id, &[m, d], GroupContent::Text("still muted?".into())), 1, T + 8, false)
        .await
        .unwrap();
    store.index_groups(&me, 100).await.unwrap();
    assert!(store.group(&id).await.unwrap().unwrap().muted);
    // The history: what was heard, oldest first.
    let page = store.group_history(&id, None, 50).await.unwrap();
    assert_eq!(page.len(), 7, "made, Ben left, Dee added, Ana's text, ours, we added, a text");

    // Kept like our DMs: expiry does not take what we can read. Others'
    // group mail waits in the queue until opened, and leaves it with its
    // message.
    let others = message(&mallory, 2, T + 9, GroupId([8; 16]), &[a], GroupContent::Text("not for you".into()));
    store.insert(&others, 1, T + 9, false).await.unwrap();
    assert_eq!(store.group_pending().await.unwrap(), 1);
    store.expire(T + 100, 1_000).await.unwrap();
    assert_eq!(store.group_pending().await.unwrap(), 0, "no queue row outlives its message");
    assert!(store.get(&made.id()).await.unwrap().is_some(), "a group message to us stays");
    assert!(store.get(&forged.id()).await.unwrap().is_none(), "others' group mail expires");
}

#[tokio::test]
async fn fresh_keys_cannot_crowd_out_a_group_we_write_in() {
    let (_dir, store) = temp_store().await;
    let me = identity(1);
    store.create_identity(&me, "Me", T).await.unwrap();
    let friend = identity(2);
    let ours = GroupId([1; 16]);
    store.insert(&message(&friend, 1, T, ours, &[me.peer_id()], GroupContent::Members), 1, T, false).await.unwrap();
    store
        .insert(&message(&me, 1, T + 1, ours, &[friend.peer_id()], GroupContent::Text("hi".into())), 0, T + 1, true)
        .await
        .unwrap();
    // MAX_GROUPS groups from fresh keys, the first one the longest quiet.
    let mut batch = Vec::new();
    for i in 0..MAX_GROUPS {
        let k = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1_000 + i));
        let mut g = [0u8; 16];
        g[..8].copy_from_slice(&(i + 10).to_be_bytes());
        batch.push((message(&k, 1, T + 10 + i, GroupId(g), &[me.peer_id()], GroupContent::Members), 1u8));
    }
    for chunk in batch.chunks(200) {
        store.insert_batch(chunk, T + 10, false).await.unwrap();
        store.index_groups(&me, 1_000).await.unwrap();
    }
    let groups = store.groups().await.unwrap();
    assert_eq!(groups.len() as u64, MAX_GROUPS, "capped");
    assert!(groups.iter().any(|g| g.id == ours), "the group we write in stays");
    let mut first = [0u8; 16];
    first[..8].copy_from_slice(&10u64.to_be_bytes());
    assert!(!groups.iter().any(|g| g.id == GroupId(first)), "the longest quiet went");
}
