//! Meet-ups' answers as the store tallies them: each person's latest answer
//! counts (whatever order they arrive in), only answers of the meet-up's own
//! room, blocked people left out, and a tally row goes with its message.
//! A meet-up counts as unread like a text.

mod common;

use common::{identity, room, sign, temp_store, text};
use festival_core::body::{Body, MeetupAnswer, MeetupBody, MeetupReplyBody};
use festival_core::{Identity, Kind, MessageId, RoomId, SignedEnvelope};

const T: u64 = 1_750_000_000_000;
const HOUR: u64 = 3_600_000;

fn meetup(author: &Identity, room: &RoomId, seq: u64) -> SignedEnvelope {
    let body = Body::Meetup(MeetupBody { place: "the big wheel".into(), at: T + HOUR });
    sign(author, room, seq, Kind::Meetup, T, body.encode())
}

fn answer(author: &Identity, room: &RoomId, seq: u64, meetup: MessageId, answer: MeetupAnswer) -> SignedEnvelope {
    let body = Body::MeetupReply(MeetupReplyBody { meetup, answer, until: T + 2 * HOUR });
    sign(author, room, seq, Kind::MeetupReply, T + seq, body.encode())
}

#[tokio::test]
async fn each_persons_latest_answer_counts_whatever_order_they_arrive_in() {
    let (_dir, store) = temp_store().await;
    let camp = room("camp-b12");
    let (ana, ben, cy) = (identity(1), identity(2), identity(3));
    let card = meetup(&ana, &camp, 1);
    store.insert(&card, 1, T, false).await.unwrap();
    assert!(store.meetup_replies(&card.id()).await.unwrap().is_empty());

    // Ben says coming, then can't; the later answer arrives first.
    let later = answer(&ben, &camp, 2, card.id(), MeetupAnswer::Cant);
    let earlier = answer(&ben, &camp, 1, card.id(), MeetupAnswer::Coming);
    store.insert(&later, 1, T, false).await.unwrap();
    store.insert(&earlier, 1, T, false).await.unwrap();
    // Cy answers in one batch with another answer of its own: the higher
    // seq wins within a batch too.
    let cy1 = answer(&cy, &camp, 1, card.id(), MeetupAnswer::Cant);
    let cy2 = answer(&cy, &camp, 2, card.id(), MeetupAnswer::Coming);
    store.insert_batch(&[(cy2, 1), (cy1, 1)], T, false).await.unwrap();

    let mut got = store.meetup_replies(&card.id()).await.unwrap();
    got.sort();
    let mut want = vec![(ben.peer_id(), MeetupAnswer::Cant), (cy.peer_id(), MeetupAnswer::Coming)];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn answers_from_another_room_and_blocked_people_do_not_count() {
    let (_dir, store) = temp_store().await;
    let (camp, other) = (room("camp-b12"), room("elsewhere"));
    let (ana, ben, mallory) = (identity(1), identity(2), identity(9));
    let card = meetup(&ana, &camp, 1);
    store.insert(&card, 1, T, false).await.unwrap();
    store.insert(&answer(&ben, &other, 1, card.id(), MeetupAnswer::Coming), 1, T, false).await.unwrap();
    assert!(store.meetup_replies(&card.id()).await.unwrap().is_empty(), "named from another room");
    store.insert(&answer(&mallory, &camp, 1, card.id(), MeetupAnswer::Coming), 1, T, false).await.unwrap();
    assert_eq!(store.meetup_replies(&card.id()).await.unwrap().len(), 1);
    store.set_person_blocked(&mallory.peer_id(), true, T).await.unwrap();
    assert!(store.meetup_replies(&card.id()).await.unwrap().is_empty());
    // An answer to a text is no answer to a meet-up.
    let hello = text(&ana, &camp, 2, T, "hello");
    store.insert(&hello, 1, T, false).await.unwrap();
    store.insert(&answer(&ben, &camp, 1, hello.id(), MeetupAnswer::Coming), 1, T, false).await.unwrap();
    assert!(store.meetup_replies(&hello.id()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_tally_row_goes_with_its_answer_and_a_meetup_counts_as_unread() {
    let (_dir, store) = temp_store().await;
    let camp = room("camp-b12");
    store.join_room(&camp, "Camp B12", 0).await.unwrap();
    let (ana, ben) = (identity(1), identity(2));
    let card = meetup(&ana, &camp, 1);
    store.insert(&card, 1, T, false).await.unwrap();
    store.insert(&answer(&ben, &camp, 1, card.id(), MeetupAnswer::Coming), 1, T, false).await.unwrap();
    let unread = |rooms: Vec<festival_store::RoomRecord>| rooms.into_iter().find(|r| r.room == camp).unwrap().unread;
    assert_eq!(unread(store.rooms().await.unwrap()), 1, "the card, not the answer");
    assert_eq!(store.meetup_replies(&card.id()).await.unwrap().len(), 1);
    assert_eq!(store.meetup_reply_rows().await.unwrap(), 1);
    // Everything created before the cutoff goes (T + 1 is Ben's answer).
    store.expire(T + 2, 100).await.unwrap();
    assert!(store.get(&card.id()).await.unwrap().is_none());
    assert_eq!(store.meetup_reply_rows().await.unwrap(), 0, "no row outlives its answer");
}
