//! Budgets hold on real files, and eviction takes what matters least first:
//! expired messages, then others' mail for others and rooms I left, then
//! others' messages in rooms I am in, oldest first within each. My own
//! messages, DMs to me and my unsent messages are never taken. The sums the
//! budgets use stay exactly what a scan of the messages says.

use crate::common;

use std::path::Path;

use common::{identity, room, sealed, temp_store, text};
use festival_core::{RoomId, SignedEnvelope};
use festival_store::{Budget, Store, Usage, ROW_OVERHEAD_BYTES};

/// Messages per group of the mix.
const N: u64 = 60;

/// About 1.2 KB envelopes: large enough that the bytes are mostly theirs,
/// small enough that pages hold several (little page waste), so the
/// estimate the budgets use is close to the real file.
fn body(tag: &str, i: u64) -> String {
    format!("{tag} {i} ").repeat(1_000 / (tag.len() + 6))
}

/// Which kind of message, for the assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Expired,
    OthersMail,
    LeftRoom,
    Joined,
    Mine,
    DmToMe,
}

struct Mix {
    dir: tempfile::TempDir,
    store: Store,
    messages: Vec<(Class, SignedEnvelope)>,
}

impl Mix {
    fn of(&self, class: Class) -> Vec<&SignedEnvelope> {
        self.messages.iter().filter(|(c, _)| *c == class).map(|(_, e)| e).collect()
    }

    fn bytes_of(&self, class: Class) -> u64 {
        self.of(class).iter().map(|e| e.bytes().len() as u64 + ROW_OVERHEAD_BYTES).sum()
    }

    async fn present(&self, env: &SignedEnvelope) -> bool {
        self.store.get(&env.id()).await.unwrap().is_some()
    }

    async fn count_present(&self, class: Class) -> usize {
        let mut n = 0;
        for env in self.of(class) {
            n += usize::from(self.present(env).await);
        }
        n
    }

    /// The class's messages gone are exactly its oldest ones.
    async fn gone_oldest_first(&self, class: Class) {
        let mut all: Vec<&SignedEnvelope> = self.of(class);
        all.sort_by_key(|e| (e.created_at(), e.id()));
        let mut seen_present = false;
        for env in all {
            let present = self.present(env).await;
            assert!(present || !seen_present, "{class:?}: a newer message went before an older one");
            seen_present |= present;
        }
    }
}

/// A store holding `N` messages of each class (two groups of `Joined`), by
/// created_at: the expired ones, then mine, then the rest interleaved so
/// "oldest first" has to merge rooms. Everything is by others except
/// `Mine`.
async fn mix() -> Mix {
    let (dir, store) = temp_store().await;
    let me = identity(1);
    store.create_identity(&me, "me", 1).await.unwrap();
    let (ben, cat, dan, eve) = (identity(2), identity(3), identity(4), identity(5));
    let (festival, stage, old_stage) = (room("festival"), room("main-stage"), room("old-stage"));
    store.join_room(&stage, "Main Stage", 1).await.unwrap();
    // "old-stage" holds messages but is not joined: a room I left.

    let mut messages = Vec::new();
    let mut push = |class, env: SignedEnvelope| messages.push((class, env));
    for i in 1..=N {
        push(Class::Expired, text(&eve, &stage, i, i, &body("expired", i)));
    }
    for i in 1..=N {
        let at = 1_000 + i * 10;
        push(Class::OthersMail, sealed(&ben, &cat.peer_id(), i, at, &body("for cat", i)));
        push(Class::LeftRoom, text(&dan, &old_stage, i, at + 1, &body("left", i)));
        push(Class::Joined, text(&ben, &festival, i, at + 2, &body("festival", i)));
        push(Class::Joined, text(&cat, &stage, i, at + 3, &body("stage", i)));
        push(Class::DmToMe, sealed(&dan, &me.peer_id(), i, at + 4, &body("for me", i)));
    }
    let others: Vec<(SignedEnvelope, u8)> = messages.iter().map(|(_, e)| (e.clone(), 1)).collect();
    store.insert_batch(&others, 5_000, false).await.unwrap();

    // Mine, older than everything but the expired ones: half sent, half
    // still waiting in the outbox.
    let mine: Vec<(SignedEnvelope, u8)> =
        (1..=N).map(|i| (text(&me, &festival, i, 100 + i, &body("mine", i)), 0)).collect();
    store.insert_batch(&mine, 5_000, true).await.unwrap();
    let mine: Vec<SignedEnvelope> = mine.into_iter().map(|(e, _)| e).collect();
    for env in &mine[..N as usize / 2] {
        store.mark_sent(&env.id(), "lan", 6_000).await.unwrap();
    }
    messages.extend(mine.into_iter().map(|e| (Class::Mine, e)));
    // The node's lifetime says created_at below 100 has expired; record the
    // cutoff without expiring anything yet.
    assert_eq!(store.expire(100, 0).await.unwrap(), 0);
    assert_eq!(store.expire_before().await.unwrap(), 100);
    Mix { dir, store, messages }
}

/// The store's files as the file system sees them.
fn files_on_disk(dir: &Path) -> u64 {
    ["festival.db", "festival.db-wal", "festival.db-shm"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
        .sum()
}

/// A budget with room per author and per room: only the disk binds.
fn disk_only(disk_bytes: u64) -> Budget {
    Budget { disk_bytes, per_author_bytes: u64::MAX, per_room_bytes: u64::MAX }
}

/// Usage as a scan of every message computes it, straight from the file.
async fn scanned(dir: &Path) -> Usage {
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("festival.db"));
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await.unwrap();
    let (messages, raw): (i64, i64) = sqlx::query_as("SELECT count(*), coalesce(sum(length(raw)), 0) FROM messages")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    Usage { bytes: raw as u64 + messages as u64 * ROW_OVERHEAD_BYTES, messages: messages as u64 }
}

#[tokio::test]
async fn eviction_takes_expired_then_others_mail_and_left_rooms_then_joined_rooms_oldest_first() {
    let m = mix().await;
    let before = m.store.usage().await.unwrap();
    assert_eq!(before, scanned(m.dir.path()).await, "accounting agrees with the rows");
    assert_eq!(before.messages, m.messages.len() as u64);
    let full = files_on_disk(m.dir.path());

    // Shrink the disk budget step by step, from a bit over the database
    // (the WAL holds about as much again) down to nothing. Whatever each step takes (the estimate and the real
    // file differ at this size, so steps take uneven amounts), the classes
    // must go in order, each oldest first.
    const STEPS: u64 = 30;
    let mut seen_class1_partly_gone = false;
    for step in 1..=STEPS {
        let budget = disk_only(full * 7 / 10 * (STEPS - step) / STEPS);
        m.store.evict(&budget, 10_000).await.unwrap();

        let expired = m.count_present(Class::Expired).await as u64;
        let class1 = (m.count_present(Class::OthersMail).await + m.count_present(Class::LeftRoom).await) as u64;
        let class2 = m.count_present(Class::Joined).await as u64;
        if class1 < 2 * N {
            assert_eq!(expired, 0, "step {step}: class 1 went before every expired message did");
        }
        if class2 < 2 * N {
            assert_eq!(expired + class1, 0, "step {step}: a room I am in lost messages before class 1 was gone");
        }
        seen_class1_partly_gone |= (1..2 * N).contains(&class1) && class2 == 2 * N;
        for class in [Class::Expired, Class::OthersMail, Class::LeftRoom, Class::Joined] {
            m.gone_oldest_first(class).await;
        }
        // Oldest first across both rooms of class 1, too.
        let mut class1: Vec<&SignedEnvelope> = m.of(Class::OthersMail);
        class1.extend(m.of(Class::LeftRoom));
        class1.sort_by_key(|e| e.created_at());
        let mut seen_present = false;
        for env in class1 {
            let present = m.present(env).await;
            assert!(present || !seen_present, "step {step}: class 1 merged oldest first across rooms");
            seen_present |= present;
        }
        assert_eq!(m.count_present(Class::Mine).await as u64, N, "my messages, sent or not, are never evicted");
        assert_eq!(m.count_present(Class::DmToMe).await as u64, N, "DMs to me are never evicted");
        if class2 > 0 {
            // While something evictable is left, the budget holds.
            assert!(files_on_disk(m.dir.path()) <= budget.disk_bytes, "step {step}: the files fit the budget");
        }
        assert_eq!(m.store.usage().await.unwrap(), scanned(m.dir.path()).await, "step {step}");
    }
    assert!(seen_class1_partly_gone, "some step stopped inside class 1");
    assert_eq!(m.count_present(Class::Joined).await, 0, "a budget of nothing leaves nothing evictable");
    assert_eq!(m.store.unsent().await.unwrap().len() as u64, N / 2, "unsent stay queued");
    assert_eq!(m.store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn one_author_over_the_per_author_budget_loses_their_oldest_in_every_room() {
    let (dir, store) = temp_store().await;
    let (me, ben, cat) = (identity(1), identity(2), identity(3));
    store.create_identity(&me, "me", 1).await.unwrap();
    let (a, b) = (room("stage-a"), room("stage-b"));
    // Ben floods two rooms, alternately, and sends me DMs; Cat and I talk.
    let mut bens = Vec::new();
    for i in 1..=40u64 {
        bens.push(text(&ben, &a, i, 100 + 2 * i, &body("ben a", i)));
        bens.push(text(&ben, &b, i, 101 + 2 * i, &body("ben b", i)));
    }
    let to_me: Vec<SignedEnvelope> = (1..=10).map(|i| sealed(&ben, &me.peer_id(), i, 50 + i, &body("hi", i))).collect();
    let cats: Vec<SignedEnvelope> = (1..=20).map(|i| text(&cat, &a, i, 100 + i, &body("cat", i))).collect();
    let all: Vec<(SignedEnvelope, u8)> = bens.iter().chain(&to_me).chain(&cats).map(|e| (e.clone(), 1)).collect();
    store.insert_batch(&all, 1, false).await.unwrap();
    let mine: Vec<(SignedEnvelope, u8)> = (1..=50).map(|i| (text(&me, &a, i, 10 + i, &body("me", i)), 0)).collect();
    store.insert_batch(&mine, 1, true).await.unwrap();

    let cost = |e: &SignedEnvelope| e.bytes().len() as u64 + ROW_OVERHEAD_BYTES;
    let per_author = to_me.iter().chain(&bens[55..]).map(cost).sum::<u64>();
    let me_before = store.author_usage(&me.peer_id()).await.unwrap();
    let cat_before = store.author_usage(&cat.peer_id()).await.unwrap();
    assert!(me_before.bytes > per_author && cat_before.bytes < per_author);
    let budget = Budget { disk_bytes: u64::MAX, per_author_bytes: per_author, per_room_bytes: u64::MAX };
    let evicted = store.evict(&budget, 10_000).await.unwrap();

    let ben_after = store.author_usage(&ben.peer_id()).await.unwrap();
    assert!(ben_after.bytes <= per_author && ben_after.bytes + 2_000 > per_author, "down to the budget: {ben_after:?}");
    assert_eq!(evicted.messages, 55, "his oldest 55 went, down to exactly the budget");
    // Ben's oldest went, whichever room they were in; his DMs to me stayed.
    let mut present = Vec::new();
    for env in &bens {
        present.push(store.get(&env.id()).await.unwrap().is_some());
    }
    assert_eq!(present, [vec![false; 55], vec![true; 25]].concat(), "oldest first across both rooms");
    for env in &to_me {
        assert!(store.get(&env.id()).await.unwrap().is_some(), "DMs to me stay");
    }
    assert_eq!(store.author_usage(&me.peer_id()).await.unwrap(), me_before, "never mine");
    assert_eq!(store.author_usage(&cat.peer_id()).await.unwrap(), cat_before, "others are untouched");
    assert_eq!(store.usage().await.unwrap(), scanned(dir.path()).await);
}

#[tokio::test]
async fn a_room_over_its_budget_loses_its_oldest_and_the_dm_room_keeps_my_mail() {
    let m = mix().await;
    let dm = RoomId::direct();
    let dm_before = m.store.room_usage(&dm).await.unwrap();
    let budget = Budget { disk_bytes: u64::MAX, per_author_bytes: u64::MAX, per_room_bytes: dm_before.bytes / 4 };
    m.store.evict(&budget, 10_000).await.unwrap();

    // Half of the DM room is mail to me: only others' mail could go, and
    // all of it had to.
    assert_eq!(m.count_present(Class::OthersMail).await, 0, "others' mail goes");
    assert_eq!(m.count_present(Class::DmToMe).await as u64, N, "mail to me stays");
    // Every other room was over a quarter of the DM room's size too, and
    // lost its oldest down to the budget.
    for name in ["main-stage", "old-stage"] {
        let usage = m.store.room_usage(&room(name)).await.unwrap();
        assert!(usage.bytes <= budget.per_room_bytes, "{name}: {usage:?}");
        assert!(usage.bytes + 2_000 > budget.per_room_bytes, "{name} lost only what it had to");
    }
    assert_eq!(m.count_present(Class::Expired).await, 0, "in main-stage, the expired were the oldest");
    m.gone_oldest_first(Class::LeftRoom).await;
    assert_eq!(m.count_present(Class::Mine).await as u64, N);
    // The festival room holds my messages: never below them.
    assert!(m.store.room_usage(&room("festival")).await.unwrap().bytes >= m.bytes_of(Class::Mine));
    assert_eq!(m.store.usage().await.unwrap(), scanned(m.dir.path()).await);
}

#[tokio::test]
async fn eviction_gives_the_space_back_to_the_file_system() {
    let (dir, store) = temp_store().await;
    let ben = identity(2);
    let stage = room("stage-a");
    let items: Vec<(SignedEnvelope, u8)> =
        (1..=800u64).map(|i| (text(&ben, &stage, i, 1_000 + i, &body("filler", i)), 1)).collect();
    store.insert_batch(&items, 1, false).await.unwrap();
    let full = files_on_disk(dir.path());
    assert!(full > 1_000_000, "a megabyte of messages: {full}");

    let budget = disk_only(full / 3);
    let evicted = store.evict(&budget, 10_000).await.unwrap();
    let after = files_on_disk(dir.path());
    assert!(after <= budget.disk_bytes, "{after} on disk, budget {}", budget.disk_bytes);
    assert_eq!(store.disk_usage().await.unwrap().total(), after);
    assert!(evicted.messages > 200 && evicted.messages < 800, "{evicted:?}");
    // The newest stayed.
    assert!(store.get(&items[799].0.id()).await.unwrap().is_some());
    assert!(store.get(&items[0].0.id()).await.unwrap().is_none());
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

/// Small transactions (a node storing messages as they come in) grow the
/// WAL by several times their rows; eviction keeps it within its share of
/// the budget, so the files stay near the budget even while a checkpoint
/// copies the WAL into the database (the two briefly take both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_kept_within_its_share_so_the_files_stay_near_the_budget_throughout() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    let (dir, store) = temp_store().await;
    let budget = disk_only(8 * 1024 * 1024);
    let wal_share = budget.disk_bytes - budget.data_bytes();
    // The files' size, every millisecond, from another thread.
    let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let watcher = {
        let (stop, peak, dir) = (stop.clone(), peak.clone(), dir.path().to_owned());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                peak.fetch_max(files_on_disk(&dir), Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let stage = room("stage-a");
    let mut seq = 0;
    for _ in 0..100 {
        for _ in 0..10 {
            let items: Vec<(SignedEnvelope, u8)> = (0..3)
                .map(|_| {
                    seq += 1;
                    (text(&identity(1_000 + seq), &stage, 1, 1_000 + seq, &"y".repeat(3_990)), 1)
                })
                .collect();
            store.insert_batch(&items, 1, false).await.unwrap();
        }
        store.evict(&budget, 10_000_000).await.unwrap();
        let files = store.disk_usage().await.unwrap();
        assert!(files.total() <= budget.disk_bytes, "{files:?} after eviction");
        assert!(files.wal_bytes <= wal_share, "WAL {} after eviction, its share {wal_share}", files.wal_bytes);
    }
    stop.store(true, Relaxed);
    watcher.join().unwrap();
    let peak = peak.load(Relaxed);
    // While a checkpoint copies the WAL (its share, and what came in since
    // the last eviction: ~125 KB of messages, several times that in WAL)
    // into the database, the two take its pages twice.
    eprintln!("the files reached {peak} bytes, budget {}", budget.disk_bytes);
    assert!(peak <= budget.disk_bytes + wal_share, "the files reached {peak}, budget {}", budget.disk_bytes);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn usage_follows_inserts_and_evictions_per_room_author_and_chain() {
    let (_dir, store) = temp_store().await;
    let (ana, ben) = (identity(1), identity(2));
    let (a, b) = (room("stage-a"), room("stage-b"));
    let envs = [text(&ana, &a, 1, 1, "one"), text(&ana, &b, 1, 2, "two"), text(&ben, &a, 1, 3, "three")];
    let items: Vec<(SignedEnvelope, u8)> = envs.iter().map(|e| (e.clone(), 0)).collect();
    store.insert_batch(&items, 1, false).await.unwrap();
    // A duplicate adds nothing.
    store.insert(&envs[0], 0, 2, false).await.unwrap();
    let cost = |e: &SignedEnvelope| e.bytes().len() as u64 + ROW_OVERHEAD_BYTES;
    assert_eq!(store.usage().await.unwrap(), Usage { bytes: envs.iter().map(cost).sum(), messages: 3 });
    assert_eq!(store.room_usage(&a).await.unwrap(), Usage { bytes: cost(&envs[0]) + cost(&envs[2]), messages: 2 });
    assert_eq!(
        store.author_usage(&ana.peer_id()).await.unwrap(),
        Usage { bytes: cost(&envs[0]) + cost(&envs[1]), messages: 2 }
    );
    assert_eq!(store.chain_usage(&b, &ana.peer_id()).await.unwrap(), Usage { bytes: cost(&envs[1]), messages: 1 });
    assert_eq!(store.room_usage(&room("nowhere")).await.unwrap(), Usage::default());

    let per_room = Budget { disk_bytes: u64::MAX, per_author_bytes: u64::MAX, per_room_bytes: cost(&envs[2]) };
    let evicted = store.evict(&per_room, 10).await.unwrap();
    assert_eq!((evicted.messages, evicted.bytes), (1, cost(&envs[0])), "stage-a's oldest");
    assert_eq!(store.usage().await.unwrap(), Usage { bytes: cost(&envs[1]) + cost(&envs[2]), messages: 2 });
    assert_eq!(store.chain_usage(&a, &ana.peer_id()).await.unwrap(), Usage::default());
}

/// A node stores batch after batch and evicts after each: more arrives than
/// the budget holds, and the files (database, WAL and its index, as the
/// file system counts them) never pass the disk budget, just after a batch
/// as well as after eviction.
#[tokio::test]
async fn the_files_stay_within_the_disk_budget_while_more_arrives_than_fits() {
    const MIB: u64 = 1024 * 1024;
    let (dir, store) = temp_store().await;
    let authors: Vec<_> = (0..100).map(identity).collect();
    let stage = room("main-stage");
    let budget = disk_only(16 * MIB);
    let (mut evicted, mut peak) = (0, 0);
    // ~40,000 small messages: twice what 16 MiB holds.
    for batch in 0..80u64 {
        let items: Vec<(SignedEnvelope, u8)> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                let author = &authors[(n % 100) as usize];
                (text(author, &stage, n / 100 + 1, 1_000 + n, &format!("message {n}: see you at the stage")), 1)
            })
            .collect();
        store.insert_batch(&items, 1, false).await.unwrap();
        peak = peak.max(files_on_disk(dir.path()));
        evicted += store.evict(&budget, 100_000).await.unwrap().messages;
        let after = files_on_disk(dir.path());
        assert!(after <= budget.disk_bytes, "batch {batch}: {after} bytes on disk after eviction");
        peak = peak.max(after);
    }
    assert!(evicted > 5_000, "the budget overflowed: {evicted} evicted");
    assert!(peak <= budget.disk_bytes, "peak {peak} bytes on disk, budget {}", budget.disk_bytes);
    assert!(peak > budget.disk_bytes * 2 / 3, "the budget was used: peak {peak}");
    assert_eq!(store.usage().await.unwrap(), scanned(dir.path()).await);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}
