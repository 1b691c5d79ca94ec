//! Meet-ups between real nodes (mDNS, signed signaling, WebRTC data
//! channels, inside a private network namespace): Ana posts one in a room,
//! Ben and Cy answer, Ben changes his mind; Ana's card counts each person's
//! latest answer, live (a `MeetupChanged` event) and in history, with names;
//! a blocked person's answer does not count; bad input is a typed error.
//! Run with scripts/test.

mod common;

use common::{three_linked, until};
use festival_core::body::{MeetupAnswer, MEETUP_GRACE_MS};
use festival_core::sync::SendError;
use festival_core::{MessageId, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::runtime::{MeetupView, MessageBody, NodeError, NodeEvent, NodeHandle};

/// A refusal of the core's send, however the node wraps it.
fn refused(r: &Result<MessageId, NodeError>) -> Option<&SendError> {
    match r {
        Err(NodeError::Send(e)) | Err(NodeError::Engine(festival_node::engine::EngineError::Send(e))) => Some(e),
        _ => None,
    }
}

async fn card(node: &NodeHandle, id: &MessageId) -> Option<MeetupView> {
    match node.message(id).await.unwrap()?.body {
        MessageBody::Meetup(c) => Some(c),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_reach_the_card_each_persons_latest_counting() {
    festival_node::netns::require_private_netns();
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (ana, ben, cy) = three_linked(&hub, &dirs).await;
    let room = RoomId::festival();
    let now = festival_node::clock::now_ms();
    let at = now + 3_600_000;

    // Bad input: a typed error, nothing sent.
    let past = ana.send_meetup(room.clone(), "gate".into(), now - 1).await;
    assert_eq!(refused(&past), Some(&SendError::MeetupTime), "{past:?}");
    let two_lines = ana.send_meetup(room.clone(), "gate\nB".into(), at).await;
    assert!(matches!(refused(&two_lines), Some(SendError::Body(_))), "{two_lines:?}");
    let unknown = ben.answer_meetup(MessageId::from_bytes([9; 32]), MeetupAnswer::Coming).await;
    assert!(matches!(unknown, Err(NodeError::NoSuchMeetup)), "{unknown:?}");

    let mut ana_events = ana.events();
    let id = ana.send_meetup(room.clone(), "the big wheel".into(), at).await.unwrap();
    let mine = card(&ana, &id).await.expect("a card");
    assert_eq!((mine.place.as_str(), mine.at, mine.until), ("the big wheel", at, at + MEETUP_GRACE_MS));
    assert_eq!((mine.coming, mine.cant, mine.mine), (0, 0, None));
    // Answering a text is no answer to a meet-up.
    let text = ana.send(room.clone(), "see you".into()).await.unwrap();
    until("the text at Ben's", async || ben.store().get(&text).await.unwrap().is_some()).await;
    assert!(matches!(ben.answer_meetup(text, MeetupAnswer::Coming).await, Err(NodeError::NoSuchMeetup)));

    for n in [&ben, &cy] {
        until("the card at the others'", async || card(n, &id).await.is_some()).await;
    }
    ben.answer_meetup(id, MeetupAnswer::Coming).await.unwrap();
    cy.answer_meetup(id, MeetupAnswer::Coming).await.unwrap();
    assert_eq!(card(&ben, &id).await.unwrap().mine, Some(MeetupAnswer::Coming), "Ben sees his own answer at once");
    until("two coming at Ana's", async || card(&ana, &id).await.is_some_and(|c| c.coming == 2)).await;
    // Ben changes his mind: his latest answer counts, everywhere.
    ben.answer_meetup(id, MeetupAnswer::Cant).await.unwrap();
    until("Ben can't, at Ana's", async || card(&ana, &id).await.is_some_and(|c| (c.coming, c.cant) == (1, 1))).await;
    until("and at Cy's", async || card(&cy, &id).await.is_some_and(|c| (c.coming, c.cant) == (1, 1))).await;
    let c = card(&ana, &id).await.unwrap();
    let who: Vec<(Option<&str>, MeetupAnswer)> = c.people.iter().map(|p| (p.who.name.as_deref(), p.answer)).collect();
    assert!(
        who.contains(&(Some("Ben"), MeetupAnswer::Cant)) && who.contains(&(Some("Cy"), MeetupAnswer::Coming)),
        "{who:?}"
    );
    // The card changed live: an event carried it.
    let mut live = None;
    while let Ok(ev) = ana_events.try_recv() {
        if let NodeEvent::MeetupChanged(m) = ev {
            live = Some(m);
        }
    }
    let live = live.expect("a MeetupChanged event");
    assert_eq!(live.id, id);
    // History shows the card with its tally.
    let page = ana.history(&room, None, 50).await.unwrap();
    let shown = page.messages.iter().find(|m| m.id == id).expect("the card in history");
    assert!(matches!(&shown.body, MessageBody::Meetup(c) if c.coming == 1 && c.cant == 1));

    // Ana blocks Cy: his answer no longer counts on her card.
    ana.block(cy.peer_id(), true).await.unwrap();
    assert_eq!(card(&ana, &id).await.map(|c| (c.coming, c.cant)), Some((0, 1)));

    ana.shutdown().await;
    ben.shutdown().await;
    cy.shutdown().await;
}
