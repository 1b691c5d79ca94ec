use festival_core::{MessageId, PeerId, RoomId};
use festival_node::names::Author;
use festival_node::runtime::{AnnouncementView, MessageBody, MessageView, NodeEvent};

use super::*;

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes([n; 32])
}

fn author(name: &str) -> Author {
    Author {
        name: Some(name.to_owned()),
        short_fingerprint: "3F2A".to_owned(),
        verified: false,
        name_clash: false,
        equivocated: false,
    }
}

fn msg(from: u8, room: &str, body: MessageBody) -> NodeEvent {
    NodeEvent::Message(MessageView {
        id: MessageId::from_bytes([from; 32]),
        room: room.parse().unwrap(),
        author: peer(from),
        sender: author(&format!("P{from}")),
        seq: 1,
        created_at: 0,
        received_at: 0,
        body,
        hops: 1,
        mine: false,
        delivery: None,
    })
}

fn text(from: u8, room: &str, text: &str) -> NodeEvent {
    msg(from, room, MessageBody::Text { text: text.to_owned() })
}

fn dm(from: u8, text: &str) -> NodeEvent {
    msg(from, "dm", MessageBody::Direct { to: peer(0), text: text.to_owned() })
}

fn away() -> Notifier {
    let mut n = Notifier::new();
    n.set_me(peer(0), "Ana");
    n.set_focus(false);
    n
}

#[test]
fn dms_mentions_and_announcements_notify_crowd_messages_only_count() {
    let mut n = away();
    let got = n.on_event(&dm(1, "where are you?"), 1_000).expect("a DM notifies");
    assert_eq!((got.kind, got.conversation.as_str()), (NotifyKind::Direct, format!("dm:{}", peer(1)).as_str()));
    assert_eq!((got.title.as_str(), got.body.as_str()), ("P1 (3F2A)", "where are you?"));

    for i in 0..500u32 {
        assert_eq!(n.on_event(&text(2, "festival", &format!("crowd {i}")), 2_000), None);
    }
    assert_eq!(n.quiet(), 500);

    let got = n.on_event(&text(3, "festival", "@ana the gate is open"), 3_000).expect("a mention notifies");
    assert_eq!((got.kind, got.title.as_str()), (NotifyKind::Mention, "P3 (3F2A) in festival"));

    let a = AnnouncementView {
        id: MessageId::from_bytes([9; 32]),
        text: "Gates close at 23:00".into(),
        created_at: 0,
        until: 1,
    };
    let got = n.on_event(&NodeEvent::Announcement(a), 4_000).expect("an announcement notifies");
    assert_eq!(got.kind, NotifyKind::Announcement);
    // Other events never do.
    assert_eq!(n.on_event(&NodeEvent::Lagged { missed: 3 }, 5_000), None);
}

#[test]
fn mentions_need_the_whole_name_after_an_at_sign() {
    assert!(mentions("hey @Ana!", "Ana"));
    assert!(mentions("@ANA B come here", "Ana B"));
    assert!(mentions("@ana", "Ana"));
    assert!(!mentions("hey Ana", "Ana"));
    assert!(!mentions("@Anabel", "Ana"));
    assert!(!mentions("@Ana1", "Ana"));
    assert!(!mentions("@", ""));
    assert!(!mentions("mail me: x@ana", "Bob"));
}

#[test]
fn nothing_for_my_own_messages_or_the_conversation_on_screen() {
    let mut n = away();
    let NodeEvent::Message(mut mine) = dm(1, "x") else { unreachable!() };
    mine.mine = true;
    assert_eq!(n.on_event(&NodeEvent::Message(mine), 1_000), None);

    let conversation = format!("dm:{}", peer(1));
    n.set_viewing(Some(conversation.clone()));
    n.set_focus(true);
    assert_eq!(n.on_event(&dm(1, "on screen"), 2_000), None);
    // Another conversation still notifies while focused.
    assert!(n.on_event(&dm(2, "elsewhere"), 2_000).is_some());
    // The window went away: the one on screen notifies again.
    n.set_focus(false);
    assert!(n.on_event(&dm(1, "now away"), 3_000).is_some());
}

#[test]
fn muted_rooms_and_people_raise_nothing_but_count() {
    let mut n = away();
    n.set_muted(["stage".parse::<RoomId>().unwrap()], [peer(4)]);
    assert_eq!(n.on_event(&text(3, "stage", "@Ana hi"), 1_000), None);
    assert_eq!(n.on_event(&dm(4, "buy now"), 1_000), None);
    assert_eq!(n.on_event(&text(4, "festival", "@Ana buy now"), 1_000), None);
    assert_eq!(n.quiet(), 3);
    // Unmuted, they notify again.
    n.set_muted([], []);
    assert!(n.on_event(&dm(4, "sorry"), 2_000).is_some());
}

#[test]
fn a_chatty_conversation_raises_one_then_one_summary_per_minute() {
    let mut n = away();
    assert!(n.on_event(&dm(1, "first"), 0).is_some());
    for t in 1..=5u64 {
        assert_eq!(n.on_event(&dm(1, "more"), t * 1_000), None, "held inside the window");
    }
    assert!(n.tick(COALESCE_MS - 1).iter().all(|x| x.kind == NotifyKind::Digest), "window not over");
    let due = n.tick(COALESCE_MS);
    let summary = due.iter().find(|x| x.kind == NotifyKind::Direct).expect("the held ones, raised together");
    assert_eq!((summary.count, summary.body.as_str()), (5, "5 new messages"));
    // Nothing held any more: the next tick raises nothing for it.
    assert!(n.tick(3 * COALESCE_MS).iter().all(|x| x.kind != NotifyKind::Direct));
}

#[test]
fn a_flood_of_fresh_keys_is_capped_per_minute_and_goes_to_the_digest() {
    let mut n = away();
    let mut raised = 0;
    for i in 0..1_000u32 {
        let from = u8::try_from(i % 250).unwrap() + 1;
        if n.on_event(&dm(from, "spam"), 1_000 + u64::from(i)).is_some() {
            raised += 1;
        }
    }
    assert_eq!(raised, MAX_PER_MINUTE);
    assert!(n.tracked() <= MAX_TRACKED);
    assert!(n.quiet() > 900);
    // Nothing more this minute, nor before the digest is due.
    assert!(n.tick(2 * 60_000).iter().all(|x| x.kind != NotifyKind::Digest));
    // The digest: one notification counting them, not one each, DIGEST_MS
    // after the first of them.
    let digest: Vec<_> = n.tick(1_500 + DIGEST_MS).into_iter().filter(|x| x.kind == NotifyKind::Digest).collect();
    assert_eq!(digest.len(), 1);
    assert!(digest[0].count > 900, "{digest:?}");
    assert_eq!(n.quiet(), 0);
    // The next one at most DIGEST_MS after the next quiet message.
    let later = 2_000 + DIGEST_MS;
    n.on_event(&text(2, "festival", "more"), later);
    assert!(n.tick(later + DIGEST_MS - 1).iter().all(|x| x.kind != NotifyKind::Digest));
    assert_eq!(n.tick(later + DIGEST_MS).iter().filter(|x| x.kind == NotifyKind::Digest).count(), 1);
}

#[test]
fn conversations_tracked_are_capped_oldest_first() {
    let mut n = away();
    for i in 0..(MAX_TRACKED as u64 + 50) {
        // Spaced a minute apart: every one is raised and tracked.
        let from = u8::try_from(i % 250).unwrap() + 1;
        let ev = msg(from, "dm", MessageBody::Direct { to: peer(0), text: format!("{i}") });
        let NodeEvent::Message(mut m) = ev else { unreachable!() };
        m.author = PeerId::from_bytes({
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&i.to_be_bytes());
            b[31] = 1;
            b
        });
        assert!(n.on_event(&NodeEvent::Message(m), i * 60_000).is_some());
    }
    assert_eq!(n.tracked(), MAX_TRACKED);
}

#[test]
fn focusing_the_window_clears_the_digest_and_what_was_held() {
    let mut n = away();
    n.on_event(&dm(1, "a"), 0);
    n.on_event(&dm(1, "b"), 1_000);
    n.on_event(&text(2, "festival", "crowd"), 1_000);
    n.set_focus(true);
    assert_eq!(n.quiet(), 0);
    assert!(n.tick(10 * DIGEST_MS).is_empty());
}

#[test]
fn long_texts_are_clipped_to_one_line() {
    let mut n = away();
    let long = format!("line one\nline two {}", "x".repeat(500));
    let got = n.on_event(&dm(1, &long), 0).unwrap();
    assert!(got.body.starts_with("line one line two"));
    assert_eq!(got.body.chars().count(), MAX_BODY_CHARS);
    assert!(got.body.ends_with('…'));
}

#[test]
fn nothing_counts_into_the_digest_while_the_window_has_the_focus() {
    let mut n = away();
    n.set_focus(true);
    n.on_event(&text(2, "festival", "crowd"), 1_000);
    assert_eq!(n.quiet(), 0, "the person sees the unread counts");
    n.set_focus(false);
    assert!(n.tick(1_000 + 2 * DIGEST_MS).is_empty(), "no digest of what was seen");
}

#[test]
fn held_messages_go_with_the_next_one_when_it_comes_before_the_tick() {
    let mut n = away();
    assert!(n.on_event(&dm(1, "first"), 0).is_some());
    n.on_event(&dm(1, "second"), 1_000);
    n.on_event(&dm(1, "third"), 2_000);
    // The window is over and the tick has not run yet: the next message
    // raises one notification for all three.
    let got = n.on_event(&dm(1, "fourth"), COALESCE_MS + 1).expect("raised");
    assert_eq!((got.count, got.body.as_str()), (3, "+2 more · fourth"));
    assert!(n.tick(COALESCE_MS + 2).iter().all(|x| x.kind != NotifyKind::Direct), "nothing left held");
}

#[test]
fn announcements_always_go_out_but_a_burst_of_them_is_one_then_a_summary() {
    let mut n = away();
    // The per-minute cap is full of DMs.
    for from in 1..=MAX_PER_MINUTE as u8 {
        assert!(n.on_event(&dm(from, "hi"), 0).is_some());
    }
    let a = |i: u8| {
        NodeEvent::Announcement(AnnouncementView {
            id: MessageId::from_bytes([i; 32]),
            text: format!("news {i}"),
            created_at: 0,
            until: 1,
        })
    };
    assert!(n.on_event(&a(1), 1).is_some(), "past the cap");
    for i in 2..=8 {
        assert_eq!(n.on_event(&a(i), 2), None, "a device catching up on eight: one, then one summary");
    }
    let due = n.tick(COALESCE_MS + 1);
    let summary = due.iter().find(|x| x.kind == NotifyKind::Announcement).expect("the rest, summed up");
    assert_eq!((summary.count, summary.body.as_str()), (7, "7 new announcements"));
}

fn group_msg(from: u8, body: MessageBody) -> NodeEvent {
    msg(from, "dm", body)
}

#[test]
fn group_messages_and_being_added_notify_unless_the_group_is_muted() {
    let mut n = away();
    let g = "ab".repeat(16);
    let said = |t: &str| MessageBody::Group { group: g.clone(), name: "Camp crew".into(), text: t.into() };
    let got = n.on_event(&group_msg(1, said("tent is up")), 1_000).expect("a group message notifies");
    assert_eq!((got.kind, got.conversation.as_str()), (NotifyKind::Group, format!("group:{g}").as_str()));
    assert_eq!(got.title, "P1 (3F2A) in Camp crew");
    // Others added: said in the group, no notification; us added: one.
    let others = MessageBody::GroupAdded { group: g.clone(), name: "Camp crew".into(), added: vec![peer(7)] };
    assert_eq!(n.on_event(&group_msg(2, others), 100_000), None);
    let us = MessageBody::GroupAdded { group: g.clone(), name: "Camp crew".into(), added: vec![peer(0)] };
    let added = n.on_event(&group_msg(2, us), 200_000).expect("being added notifies");
    assert_eq!(added.title, "P2 (3F2A) added you to Camp crew");
    // Muted: quiet, counted in the digest.
    n.set_muted_groups([g.clone()]);
    assert_eq!(n.on_event(&group_msg(3, said("spam")), 400_000), None);
    assert_eq!(n.on_event(&group_msg(3, said("more spam")), 500_000), None);
}
