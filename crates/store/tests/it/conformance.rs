//! One suite, both stores: the SQLite file a device keeps and the
//! PostgreSQL database a relay cluster shares answer every operation of
//! [`MessageStore`] the same way: ingest outcomes, heads, sync ranges,
//! history pages, receipts, identity and rooms, equivocation proofs, the
//! outbox, budgets and expiry, and two handles (two relay instances, or a
//! second connection to one file) inserting the same envelopes at once.
//!
//! Each case runs on a fresh store: a new file for SQLite, a new database
//! on one private PostgreSQL server ([`TempServer`], started by the test and
//! stopped when it ends, also when a case fails).

use crate::common;

use std::collections::HashSet;

use common::{identity, profile, room, sealed, text};
use festival_core::{Identity, ReceiptStatus, RoomId, SignedEnvelope};
use festival_store::pg::{PgStore, TempServer};
use festival_store::{AnyStore, Budget, Inserted, MessageStore, Store, StoreError, GAP_WAIT_MS};

const T0: u64 = 1_750_000_000_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Where a case's store lives; `open` gives another handle on the same one.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    async fn open(&self) -> AnyStore {
        match self {
            Backend::Sqlite(dir) => AnyStore::Sqlite(Store::open(&dir.path().join("festival.db")).await.unwrap()),
            Backend::Postgres(url) => AnyStore::Postgres(PgStore::connect(url).await.unwrap()),
        }
    }
}

async fn insert<S: MessageStore>(s: &S, env: &SignedEnvelope) -> festival_store::Result<Inserted> {
    s.insert_batch(&[(env.clone(), 1)], T0, false).await.unwrap().pop().unwrap()
}

fn ids(envs: &[SignedEnvelope]) -> Vec<festival_core::MessageId> {
    envs.iter().map(SignedEnvelope::id).collect()
}

async fn ingest_outcomes(b: &Backend) {
    let s = b.open().await;
    let (alice, camp) = (identity(1), room("camp"));
    let one = text(&alice, &camp, 1, T0, "one");
    assert_eq!(insert(&s, &one).await.unwrap(), Inserted::New);
    assert_eq!(insert(&s, &one).await.unwrap(), Inserted::Duplicate);
    let other = text(&alice, &camp, 1, T0, "another one");
    assert!(matches!(insert(&s, &other).await, Err(StoreError::Conflict { seq: 1, .. })));
    // In one batch: the first of two for one position wins, a second copy
    // of an item is a duplicate, and a conflict does not stop the rest.
    let (two, two_b, three) =
        (text(&alice, &camp, 2, T0, "two"), text(&alice, &camp, 2, T0, "two, again"), text(&alice, &camp, 3, T0, "3"));
    let batch = [(two.clone(), 1), (two_b, 1), (two.clone(), 1), (three.clone(), 2), (other, 1)];
    let out = s.insert_batch(&batch, T0, false).await.unwrap();
    assert_eq!(out.len(), 5);
    assert_eq!(out[0].as_ref().unwrap(), &Inserted::New);
    assert!(matches!(out[1], Err(StoreError::Conflict { seq: 2, .. })));
    assert_eq!(out[2].as_ref().unwrap(), &Inserted::Duplicate);
    assert_eq!(out[3].as_ref().unwrap(), &Inserted::New);
    assert!(matches!(out[4], Err(StoreError::Conflict { seq: 1, .. })));
    let got = s.get(&three.id()).await.unwrap().unwrap();
    assert_eq!((got.envelope.bytes(), got.hops, got.received_at), (three.bytes(), 2, T0));
    assert_eq!(s.get_at(&camp, &alice.peer_id(), 2).await.unwrap().unwrap().envelope.id(), two.id());
    assert!(s.get(&text(&alice, &camp, 9, T0, "never").id()).await.unwrap().is_none());
    assert_eq!(s.message_count().await.unwrap(), 3);
    assert!(s.insert_batch(&[], T0, false).await.unwrap().is_empty());
}

async fn heads_follow_the_rows(b: &Backend) {
    let s = b.open().await;
    let (alice, camp) = (identity(1), room("camp"));
    let msgs: Vec<SignedEnvelope> = (1..=8).map(|seq| text(&alice, &camp, seq, T0 + seq, "m")).collect();
    let head = |s: AnyStore| async move {
        let heads = s.heads().await.unwrap();
        assert_eq!(heads.len(), 1);
        (heads[0].contiguous, heads[0].max)
    };
    for i in [0, 1, 3] {
        insert(&s, &msgs[i]).await.unwrap();
    }
    assert_eq!(head(s.clone()).await, (2, 4));
    let snap = s.snapshot().await.unwrap();
    assert_eq!(snap.held_above, vec![(camp.clone(), alice.peer_id(), 4, msgs[3].id())]);
    assert_eq!(snap.heads[0].tip, Some(msgs[3].id()));
    // Filling the gap climbs over what was held above it.
    insert(&s, &msgs[2]).await.unwrap();
    assert_eq!(head(s.clone()).await, (4, 4));
    // Giving up on 5..=6 counts them as seen; 7 then follows on.
    s.advance_contiguous(&camp, &alice.peer_id(), 6).await.unwrap();
    assert_eq!(head(s.clone()).await, (6, 6));
    insert(&s, &msgs[7]).await.unwrap();
    assert_eq!(head(s.clone()).await, (6, 8));
    insert(&s, &msgs[6]).await.unwrap();
    assert_eq!(head(s.clone()).await, (8, 8));
    // Marks never go down, and a chain that was never written can be
    // given up on too.
    s.advance_contiguous(&camp, &alice.peer_id(), 3).await.unwrap();
    assert_eq!(head(s.clone()).await, (8, 8));
    let bob = identity(2);
    s.advance_contiguous(&camp, &bob.peer_id(), 2).await.unwrap();
    let heads = s.heads().await.unwrap();
    let bobs = heads.iter().find(|h| h.author == bob.peer_id()).unwrap();
    assert_eq!((bobs.contiguous, bobs.max), (2, 2));
    // A second handle (another instance) sees the same.
    let again = b.open().await;
    assert_eq!(again.heads().await.unwrap(), heads);
}

async fn ranges(b: &Backend) {
    let s = b.open().await;
    let (alice, camp) = (identity(1), room("camp"));
    let msgs: Vec<SignedEnvelope> =
        (1..=100).filter(|seq| seq % 10 != 5).map(|seq| text(&alice, &camp, seq, T0 + seq, &"x".repeat(100))).collect();
    let items: Vec<(SignedEnvelope, u8)> = msgs.iter().map(|m| (m.clone(), 3)).collect();
    s.insert_batch(&items, T0, false).await.unwrap();
    let seqs = |r: &[(SignedEnvelope, u8)]| r.iter().map(|(e, _)| e.seq()).collect::<Vec<_>>();
    let all = s.load_range(&camp, &alice.peer_id(), 1, 100, usize::MAX, 0).await.unwrap();
    assert_eq!(seqs(&all), (1..=100).filter(|seq| seq % 10 != 5).collect::<Vec<_>>());
    assert!(all.iter().all(|(_, hops)| *hops == 3));
    let some = s.load_range(&camp, &alice.peer_id(), 3, 20, usize::MAX, 0).await.unwrap();
    assert_eq!(seqs(&some), vec![3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20]);
    // A byte budget stops early, but one message always comes.
    let size = msgs[0].bytes().len();
    let two = s.load_range(&camp, &alice.peer_id(), 1, 100, 2 * size + 1, 0).await.unwrap();
    assert_eq!(seqs(&two), vec![1, 2]);
    let one = s.load_range(&camp, &alice.peer_id(), 1, 100, 1, 0).await.unwrap();
    assert_eq!(seqs(&one), vec![1]);
    // Expired ones are not served.
    let fresh = s.load_range(&camp, &alice.peer_id(), 1, 100, usize::MAX, T0 + 91).await.unwrap();
    assert_eq!(seqs(&fresh), vec![91, 92, 93, 94, 96, 97, 98, 99, 100]);
    assert!(s.load_range(&camp, &identity(2).peer_id(), 1, 100, usize::MAX, 0).await.unwrap().is_empty());
}

async fn history_pages(b: &Backend) {
    let s = b.open().await;
    let (alice, bob, camp) = (identity(1), identity(2), room("camp"));
    // Same created_at for several: order is (created_at, author, seq).
    let mut all = Vec::new();
    for seq in 1..=30 {
        all.push(text(&alice, &camp, seq, T0 + seq / 3, "a"));
        all.push(text(&bob, &camp, seq, T0 + seq / 2, "b"));
    }
    let items: Vec<(SignedEnvelope, u8)> = all.iter().map(|m| (m.clone(), 1)).collect();
    s.insert_batch(&items, now_ms(), false).await.unwrap();
    all.sort_by_key(|m| (m.created_at(), *m.author().as_bytes(), m.seq()));
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = s.history(&camp, before, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        before = Some(page[0].cursor());
        pages.push(page);
    }
    let seen: Vec<_> = pages.into_iter().rev().flatten().map(|m| m.envelope.id()).collect();
    assert_eq!(seen, ids(&all));
    // A message above a gap waits (it arrived just now), unless it arrived
    // longer than GAP_WAIT_MS ago.
    let carol = identity(3);
    insert(&s, &text(&carol, &camp, 1, T0 + 100, "c1")).await.unwrap();
    let late = text(&carol, &camp, 3, T0 + 101, "c3");
    s.insert_batch(&[(late.clone(), 1)], now_ms(), false).await.unwrap();
    let latest = s.history(&camp, None, 2).await.unwrap();
    assert!(latest.iter().all(|m| m.envelope.id() != late.id()));
    let old = text(&carol, &camp, 5, T0 + 102, "c5");
    s.insert_batch(&[(old.clone(), 1)], now_ms() - GAP_WAIT_MS - 1_000, false).await.unwrap();
    let latest = s.history(&camp, None, 1).await.unwrap();
    assert_eq!(latest[0].envelope.id(), old.id());
    assert!(s.history(&room("elsewhere"), None, 10).await.unwrap().is_empty());
}

async fn receipts_and_targets(b: &Backend) {
    let s = b.open().await;
    let (alice, bob, camp) = (identity(1), identity(2), room("camp"));
    let hello = text(&alice, &camp, 1, T0, "hello");
    let dm = sealed(&alice, &bob.peer_id(), 1, T0, "psst");
    insert(&s, &hello).await.unwrap();
    insert(&s, &dm).await.unwrap();
    s.add_receipts(bob.peer_id(), ReceiptStatus::Delivered, &[hello.id(), hello.id(), dm.id()], T0 + 50).await.unwrap();
    s.add_receipts(bob.peer_id(), ReceiptStatus::Delivered, &[hello.id()], T0 + 90).await.unwrap();
    s.add_receipts(bob.peer_id(), ReceiptStatus::Delivered, &[hello.id()], T0 + 10).await.unwrap();
    s.add_receipts(bob.peer_id(), ReceiptStatus::Read, &[hello.id()], T0 + 60).await.unwrap();
    s.add_receipts(alice.peer_id(), ReceiptStatus::Read, &[hello.id()], T0 + 5).await.unwrap();
    let got = s.receipts_for(&hello.id()).await.unwrap();
    assert_eq!(
        got,
        vec![
            (alice.peer_id(), ReceiptStatus::Read, T0 + 5),
            (bob.peer_id(), ReceiptStatus::Delivered, T0 + 10),
            (bob.peer_id(), ReceiptStatus::Read, T0 + 60),
        ]
    );
    let unknown = text(&alice, &camp, 7, T0, "never stored").id();
    let targets = s.receipt_targets(&[hello.id(), dm.id(), unknown]).await.unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!((targets[&hello.id()].room.as_str(), targets[&hello.id()].recipient), ("camp", None));
    assert_eq!(targets[&dm.id()].recipient, Some(bob.peer_id()));
    assert_eq!(targets[&dm.id()].author, alice.peer_id());
    assert!(s.is_member(&alice.peer_id(), &camp).await.unwrap());
    assert!(!s.is_member(&bob.peer_id(), &camp).await.unwrap());
    insert(&s, &profile(&bob, &RoomId::festival(), 1, T0, "bob")).await.unwrap();
    assert!(s.is_member(&bob.peer_id(), &RoomId::festival()).await.unwrap());
}

async fn identity_rooms_and_proofs(b: &Backend) {
    let s = b.open().await;
    assert!(s.identity().await.unwrap().is_none());
    let me = identity(9);
    s.create_identity(&me, "relay", T0).await.unwrap();
    assert!(matches!(s.create_identity(&identity(8), "other", T0).await, Err(StoreError::AlreadyInitialised)));
    assert!(matches!(s.create_identity(&identity(8), "\u{202e}evil", T0).await, Err(StoreError::BadName(_))));
    let got = b.open().await.identity().await.unwrap().unwrap();
    assert_eq!((got.identity.peer_id(), got.name.as_str(), got.created_at), (me.peer_id(), "relay", T0));

    let (camp, stage) = (room("camp"), room("stage"));
    assert!(s.join_room(&camp, "Camp", T0).await.unwrap());
    assert!(!s.join_room(&camp, "Camp", T0 + 1).await.unwrap());
    assert!(s.join_room(&stage, "Stage", T0 + 1).await.unwrap());
    let alice = identity(1);
    s.insert_batch(&[(text(&alice, &camp, 1, T0, "hi"), 1), (text(&me, &camp, 1, T0, "mine"), 0)], T0 + 5, false)
        .await
        .unwrap();
    let rooms = s.rooms().await.unwrap();
    let names: Vec<_> = rooms.iter().map(|r| (r.room.as_str(), r.unread, r.last_activity)).collect();
    assert_eq!(names, vec![("camp", 1, Some(T0 + 5)), ("stage", 0, None)]);
    assert!(s.leave_room(&camp).await.unwrap());
    assert!(!s.leave_room(&camp).await.unwrap());
    assert_eq!(s.rooms().await.unwrap().len(), 1);

    let (a, b2) = (text(&alice, &stage, 4, T0, "one"), text(&alice, &stage, 4, T0, "two"));
    assert!(matches!(
        s.record_equivocation(&a, &text(&alice, &stage, 5, T0, "x"), T0).await,
        Err(StoreError::NotAnEquivocation)
    ));
    assert!(s.record_equivocation(&a, &b2, T0).await.unwrap());
    assert!(!s.record_equivocation(&b2, &a, T0).await.unwrap());
    assert_eq!(s.snapshot().await.unwrap().equivocators, vec![alice.peer_id()]);
    s.set_peer_name(&alice.peer_id(), "alice").await.unwrap();
}

async fn outbox(b: &Backend) {
    let s = b.open().await;
    let me = identity(9);
    s.create_identity(&me, "me", T0).await.unwrap();
    let mine = text(&me, &room("camp"), 1, T0, "mine");
    s.insert_batch(&[(mine.clone(), 0)], T0, true).await.unwrap();
    assert_eq!(s.snapshot().await.unwrap().unsent, vec![mine.id()]);
    assert!(s.mark_sent(&mine.id(), "lan", T0 + 1).await.unwrap());
    assert!(!s.mark_sent(&mine.id(), "relay", T0 + 2).await.unwrap());
    assert!(s.snapshot().await.unwrap().unsent.is_empty());
    let never = text(&me, &room("camp"), 2, T0, "never").id();
    assert!(matches!(s.mark_sent(&never, "lan", T0).await, Err(StoreError::NotInOutbox(_))));
}

/// Per author, per room, then the total by class; never mine or my DMs.
async fn budgets(b: &Backend) {
    let s = b.open().await;
    let me = identity(9);
    s.create_identity(&me, "me", T0).await.unwrap();
    let (camp, left) = (room("camp"), room("left"));
    s.join_room(&camp, "Camp", T0).await.unwrap();
    let body = "x".repeat(1_000);
    let mut batch = Vec::new();
    // A flooder: 60 messages in camp. Me: 60 too (exempt from everything).
    for seq in 1..=60 {
        batch.push((text(&identity(1), &camp, seq, T0 + seq, &body), 1));
        batch.push((text(&me, &camp, seq, T0 + seq, &body), 0));
    }
    // Others' mail and a room I left: 20 each from 20 authors.
    for a in 0..20u64 {
        let author = identity(100 + a);
        batch.push((sealed(&author, &identity(7).peer_id(), 1, T0 + 200 + a, &body), 1));
        batch.push((text(&author, &left, 1, T0 + 300 + a, &body), 1));
        batch.push((text(&author, &camp, 1, T0 + 400 + a, &body), 1));
    }
    // A DM to me from someone else: mine to keep.
    let to_me = sealed(&identity(5), &me.peer_id(), 1, T0, &body);
    batch.push((to_me.clone(), 1));
    s.insert_batch(&batch, T0, false).await.unwrap();
    let flooder = s.author_usage(&identity(1).peer_id()).await.unwrap();
    let mine = s.author_usage(&me.peer_id()).await.unwrap();
    assert_eq!(flooder.messages, 60);

    // Per author: the flooder goes down to 20 messages' worth, oldest first;
    // I am not touched however much I hold.
    let per_msg = flooder.bytes / 60;
    let budget = Budget { disk_bytes: u64::MAX / 4, per_author_bytes: 20 * per_msg, per_room_bytes: u64::MAX / 4 };
    let done = s.evict(&budget, T0).await.unwrap();
    assert_eq!(done.messages, 40);
    assert_eq!(s.author_usage(&identity(1).peer_id()).await.unwrap().messages, 20);
    assert!(s.get_at(&camp, &identity(1).peer_id(), 40).await.unwrap().is_none());
    assert!(s.get_at(&camp, &identity(1).peer_id(), 41).await.unwrap().is_some());
    assert_eq!(s.author_usage(&me.peer_id()).await.unwrap(), mine);

    // Per room: camp over its budget loses others' oldest, never mine.
    let camp_now = s.room_usage(&camp).await.unwrap();
    let budget = Budget { per_author_bytes: u64::MAX / 4, per_room_bytes: camp_now.bytes - 10 * per_msg, ..budget };
    let done = s.evict(&budget, T0).await.unwrap();
    assert_eq!(done.messages, 10);
    assert_eq!(s.author_usage(&me.peer_id()).await.unwrap(), mine);
    assert!(s.get_at(&camp, &identity(1).peer_id(), 50).await.unwrap().is_none());

    // The total: over by 30 messages, less than the 40 of others' mail and
    // the room I left: those go (DMs for others are older), camp stays.
    let total = s.usage().await.unwrap();
    let camp_before = s.room_usage(&camp).await.unwrap();
    let disk = (total.bytes - 25 * per_msg) * 32 / 31;
    let budget = Budget { disk_bytes: disk, per_author_bytes: u64::MAX / 4, per_room_bytes: u64::MAX / 4 };
    if matches!(s, AnyStore::Postgres(_)) {
        // The SQLite store measures its files, not this sum; see the
        // SQLite store's own eviction tests.
        assert!(s.over_budget(&budget).await.unwrap());
        let done = s.evict(&budget, T0).await.unwrap();
        assert!(done.messages >= 25 && done.messages <= 40, "{done:?}");
        assert_eq!(s.room_usage(&camp).await.unwrap(), camp_before);
        assert!(s.usage().await.unwrap().bytes <= disk - disk / 32);
        assert!(!s.over_budget(&budget).await.unwrap());
    }
    assert!(s.get(&to_me.id()).await.unwrap().is_some());
    assert_eq!(s.author_usage(&me.peer_id()).await.unwrap(), mine);
    assert_eq!(s.message_count().await.unwrap(), s.usage().await.unwrap().messages);
}

async fn expiry(b: &Backend) {
    let s = b.open().await;
    let me = identity(9);
    s.create_identity(&me, "me", T0).await.unwrap();
    let camp = room("camp");
    let mut batch = Vec::new();
    for seq in 1..=50 {
        batch.push((text(&identity(1), &camp, seq, T0 + seq, "old"), 1));
    }
    let to_me = sealed(&identity(2), &me.peer_id(), 1, T0, "keep");
    batch.push((to_me.clone(), 1));
    s.insert_batch(&batch, T0, false).await.unwrap();
    let mine = text(&me, &camp, 1, T0, "my own, unsent");
    s.insert_batch(&[(mine.clone(), 0)], T0, true).await.unwrap();
    assert_eq!(s.expire_before().await.unwrap(), 0);
    // Bounded per call, oldest first.
    assert_eq!(s.expire(T0 + 31, 10).await.unwrap(), 10);
    assert!(s.get_at(&camp, &identity(1).peer_id(), 10).await.unwrap().is_none());
    assert!(s.get_at(&camp, &identity(1).peer_id(), 11).await.unwrap().is_some());
    assert_eq!(s.expire(T0 + 31, 100).await.unwrap(), 20);
    assert_eq!(s.expire(T0 + 31, 100).await.unwrap(), 0);
    assert_eq!(s.expire_before().await.unwrap(), T0 + 31);
    // The cutoff only rises.
    s.expire(T0, 100).await.unwrap();
    assert_eq!(s.expire_before().await.unwrap(), T0 + 31);
    assert!(s.get(&to_me.id()).await.unwrap().is_some());
    assert!(s.get(&mine.id()).await.unwrap().is_some());
    assert_eq!(s.author_usage(&identity(1).peer_id()).await.unwrap().messages, 20);
    // Heads do not go down: sync must not fetch what expired again.
    let heads = s.heads().await.unwrap();
    let h = heads.iter().find(|h| h.author == identity(1).peer_id()).unwrap();
    assert_eq!((h.contiguous, h.max), (50, 50));
}

/// Two handles (two relay instances) store the same envelopes at the same
/// moment: each is stored once, exactly one of them says `New` for it, and
/// the heads and counts add up.
async fn two_instances_at_once(b: &Backend) {
    let (one, two) = (b.open().await, b.open().await);
    let authors: Vec<Identity> = (0..8).map(|i| identity(40 + i)).collect();
    let camp = room("camp");
    for round in 0..10u64 {
        let batch: Vec<(SignedEnvelope, u8)> = authors
            .iter()
            .flat_map(|a| (1..=5).map(move |k| (round * 5 + k, a)))
            .map(|(seq, a)| (text(a, &camp, seq, T0 + seq, "same"), 1))
            .collect();
        let mut reversed = batch.clone();
        reversed.reverse();
        let (x, y) = tokio::join!(one.insert_batch(&batch, T0, false), two.insert_batch(&reversed, T0, false));
        let (x, mut y) = (x.unwrap(), y.unwrap());
        y.reverse();
        for (a, b) in x.iter().zip(&y) {
            let new = [a, b].iter().filter(|o| matches!(o, Ok(Inserted::New))).count();
            let dup = [a, b].iter().filter(|o| matches!(o, Ok(Inserted::Duplicate))).count();
            assert_eq!((new, dup), (1, 1), "{a:?} {b:?}");
        }
    }
    assert_eq!(one.message_count().await.unwrap(), 8 * 50);
    let heads = two.heads().await.unwrap();
    assert_eq!(heads.len(), 8);
    assert!(heads.iter().all(|h| (h.contiguous, h.max) == (50, 50)), "{heads:?}");
    let seen: HashSet<_> = authors.iter().map(|a| a.peer_id()).collect();
    for a in &seen {
        assert_eq!(one.author_usage(a).await.unwrap().messages, 50);
    }
    assert_eq!(one.history(&camp, None, 1_000).await.unwrap().len(), 400);
}

/// Every case, by name.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::Backend::Sqlite(tempfile::tempdir().unwrap())).await;
                }
            )*
        }

        /// All cases on one private server, each on a database of its own.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres() {
            let server = TempServer::start(false).await.expect("start PostgreSQL");
            $(
                eprintln!("postgres: {}", stringify!($case));
                let url = server.create_database(stringify!($case)).await.unwrap();
                $case(&Backend::Postgres(url)).await;
            )*
        }
    };
}

cases!(
    ingest_outcomes,
    heads_follow_the_rows,
    ranges,
    history_pages,
    receipts_and_targets,
    identity_rooms_and_proofs,
    outbox,
    budgets,
    expiry,
    two_instances_at_once,
);
