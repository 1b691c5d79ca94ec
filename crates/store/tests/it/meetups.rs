//! Meet-ups' answers as the store tallies them: each person's latest answer
//! counts (whatever order they arrive in), only answers of the meet-up's own
//! room (one from elsewhere neither replaces nor blocks it), blocked people
//! left out, names listed up to a limit and counts complete, and a tally row
//! goes with its message.
//! A meet-up counts as unread like a text.

use crate::common;

use common::{identity, room, sign, temp_store};
use festival_core::body::{Body, MeetupAnswer, MeetupBody, MeetupReplyBody};
use festival_core::{Identity, Kind, MessageId, PeerId, RoomId, SignedEnvelope};
use festival_store::{MeetupTally, Store};

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

/// Everyone's answers (up to 64), as (peer, answer), sorted.
async fn replies(store: &Store, meetup: &MessageId, room: &RoomId) -> Vec<(PeerId, MeetupAnswer)> {
    let me = identity(100).peer_id();
    let mut people = store.meetup_tally(meetup, room, &me, 64).await.unwrap().people;
    people.sort();
    people
}

#[tokio::test]
async fn each_persons_latest_answer_counts_whatever_order_they_arrive_in() {
    let (_dir, store) = temp_store().await;
    let camp = room("camp-b12");
    let (ana, ben, cy) = (identity(1), identity(2), identity(3));
    let card = meetup(&ana, &camp, 1);
    store.insert(&card, 1, T, false).await.unwrap();
    assert_eq!(store.meetup_tally(&card.id(), &camp, &ana.peer_id(), 64).await.unwrap(), MeetupTally::default());

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

    let mut want = vec![(ben.peer_id(), MeetupAnswer::Cant), (cy.peer_id(), MeetupAnswer::Coming)];
    want.sort();
    assert_eq!(replies(&store, &card.id(), &camp).await, want);
    // As Cy sees it: the counts, Cy's own answer, Cy listed first; and the
    // names listed stop at the number asked, the counts do not.
    let as_cy = store.meetup_tally(&card.id(), &camp, &cy.peer_id(), 1).await.unwrap();
    assert_eq!((as_cy.coming, as_cy.cant, as_cy.mine), (1, 1, Some(MeetupAnswer::Coming)));
    assert_eq!(as_cy.people, vec![(cy.peer_id(), MeetupAnswer::Coming)]);
}

#[tokio::test]
async fn answers_from_another_room_and_blocked_people_do_not_count() {
    let (_dir, store) = temp_store().await;
    let (camp, other) = (room("camp-b12"), room("elsewhere"));
    let (ana, ben, mallory) = (identity(1), identity(2), identity(9));
    let card = meetup(&ana, &camp, 1);
    store.insert(&card, 1, T, false).await.unwrap();
    // Ben answers "can't" in the room, then posts a "coming" with a far
    // higher seq of another room's chain: it neither replaces nor blocks
    // his answer in the room.
    store.insert(&answer(&ben, &camp, 1, card.id(), MeetupAnswer::Cant), 1, T, false).await.unwrap();
    store.insert(&answer(&ben, &other, 50, card.id(), MeetupAnswer::Coming), 1, T, false).await.unwrap();
    assert_eq!(replies(&store, &card.id(), &camp).await, vec![(ben.peer_id(), MeetupAnswer::Cant)]);
    store.insert(&answer(&ben, &camp, 2, card.id(), MeetupAnswer::Coming), 1, T, false).await.unwrap();
    assert_eq!(replies(&store, &card.id(), &camp).await, vec![(ben.peer_id(), MeetupAnswer::Coming)]);
    store.insert(&answer(&mallory, &camp, 1, card.id(), MeetupAnswer::Coming), 1, T, false).await.unwrap();
    assert_eq!(replies(&store, &card.id(), &camp).await.len(), 2);
    store.set_person_blocked(&mallory.peer_id(), true, T).await.unwrap();
    let tally = store.meetup_tally(&card.id(), &camp, &ana.peer_id(), 64).await.unwrap();
    assert_eq!((tally.coming, tally.people.len()), (1, 1), "the blocked person is neither counted nor listed");
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
    // Cy's answer is created later than the cutoff below (T + 5).
    let cy = identity(3);
    store.insert(&answer(&cy, &camp, 5, card.id(), MeetupAnswer::Cant), 1, T, false).await.unwrap();
    let unread = |rooms: Vec<festival_store::RoomRecord>| rooms.into_iter().find(|r| r.room == camp).unwrap().unread;
    assert_eq!(unread(store.rooms().await.unwrap()), 1, "the card, not the answers");
    assert_eq!(replies(&store, &card.id(), &camp).await.len(), 2);
    assert_eq!(store.meetup_reply_rows().await.unwrap(), 2);
    // What was created before the cutoff goes: the card (T) and Ben's
    // answer (T + 1), not Cy's (T + 5). Ben's row goes with his answer.
    store.expire(T + 2, 100).await.unwrap();
    assert!(store.get(&card.id()).await.unwrap().is_none());
    assert_eq!(store.meetup_reply_rows().await.unwrap(), 1, "no row outlives its answer, and only its own goes");
}
