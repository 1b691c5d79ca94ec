//! The simulator's store and the SQLite store agree on every operation sync
//! uses: inserting (new, the same again, another message at a taken
//! position), reading a chain's range within a byte budget and a lifetime,
//! giving up on a run, keeping an equivocation proof, and the snapshot a
//! node starts from (heads, tips, what is held above a gap, equivocators).
//! A simulated run means something for a device only as far as these agree.
//! Fixed cases first, then random sequences of operations (proptest) run
//! against both, answer by answer.

use festival_core::sync::Snapshot;
use festival_core::{Draft, Identity, Kind, MessageId, PeerId, RoomId, SignedEnvelope};
use festival_sim::MemStore;
use festival_store::{Store, StoreError};
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const T0: u64 = 1_750_000_000_000;

/// The operations, as sync uses them (the engine's and the sim host's
/// translation of the core's outputs).
trait SyncStore {
    /// `Ok(())` for a new message or the same one again; `Err(())` for
    /// another message at a taken position.
    fn insert(&mut self, env: &SignedEnvelope, hops: u8) -> Result<(), ()>;
    #[allow(clippy::too_many_arguments)]
    fn range(
        &mut self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max_bytes: usize,
        not_before: u64,
    ) -> Vec<(MessageId, u8)>;
    fn skip(&mut self, room: &RoomId, author: &PeerId, through: u64);
    /// Whether the proof is new.
    fn record_proof(&mut self, a: &SignedEnvelope, b: &SignedEnvelope) -> bool;
    fn snapshot(&mut self) -> Snapshot;
}

struct Mem {
    store: MemStore,
    me: PeerId,
}

impl SyncStore for Mem {
    fn insert(&mut self, env: &SignedEnvelope, hops: u8) -> Result<(), ()> {
        self.store.insert(env.clone(), hops, T0).map_err(|_| ())
    }
    fn range(
        &mut self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max: usize,
        nb: u64,
    ) -> Vec<(MessageId, u8)> {
        self.store.range(room, author, from, to, max, nb).into_iter().map(|(e, h)| (e.id(), h)).collect()
    }
    fn skip(&mut self, room: &RoomId, author: &PeerId, through: u64) {
        self.store.skip(room, author, through);
    }
    fn record_proof(&mut self, a: &SignedEnvelope, b: &SignedEnvelope) -> bool {
        self.store.record_proof(Some(a.clone()), b.clone()).is_some()
    }
    fn snapshot(&mut self) -> Snapshot {
        self.store.snapshot(&self.me)
    }
}

struct Sqlite {
    rt: tokio::runtime::Runtime,
    store: Store,
    /// Kept for the store's lifetime; removed on drop.
    _dir: tempfile::TempDir,
}

impl Sqlite {
    fn open() -> Sqlite {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = rt.block_on(Store::open(&dir.path().join("festival.db"))).expect("open");
        Sqlite { rt, store, _dir: dir }
    }
}

impl SyncStore for Sqlite {
    fn insert(&mut self, env: &SignedEnvelope, hops: u8) -> Result<(), ()> {
        match self.rt.block_on(self.store.insert(env, hops, T0, false)) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(()),
            Err(e) => panic!("insert failed: {e}"),
        }
    }
    fn range(
        &mut self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max: usize,
        nb: u64,
    ) -> Vec<(MessageId, u8)> {
        let rows = self.rt.block_on(self.store.load_range(room, author, from, to, max, nb)).expect("load_range");
        rows.into_iter().map(|(e, h)| (e.id(), h)).collect()
    }
    fn skip(&mut self, room: &RoomId, author: &PeerId, through: u64) {
        self.rt.block_on(self.store.advance_contiguous(room, author, through)).expect("advance_contiguous");
    }
    fn record_proof(&mut self, a: &SignedEnvelope, b: &SignedEnvelope) -> bool {
        self.rt.block_on(self.store.record_equivocation(a, b, T0)).expect("record_equivocation")
    }
    fn snapshot(&mut self) -> Snapshot {
        self.rt.block_on(self.store.snapshot()).expect("snapshot")
    }
}

/// A snapshot in one order, for comparing.
fn normal(mut s: Snapshot) -> String {
    s.heads.sort_by(|a, b| (&a.room, a.author).cmp(&(&b.room, b.author)));
    s.held_above.sort();
    s.equivocators.sort();
    s.unsent.sort();
    format!("{:?} {:?} {:?} {:?}", s.heads, s.held_above, s.equivocators, s.unsent)
}

/// Authors, rooms and envelopes of the cases: `variant` 1 is another
/// message at the same position (an equivocation), `age` dates it older.
struct World {
    authors: Vec<Identity>,
    rooms: Vec<RoomId>,
}

impl World {
    fn new() -> World {
        let authors = (0..3).map(|i| Identity::generate(&mut ChaCha20Rng::seed_from_u64(100 + i))).collect();
        World { authors, rooms: vec![RoomId::festival(), "stage-b".parse().expect("room")] }
    }

    fn env(&self, author: usize, room: usize, seq: u64, variant: u8, age: u64) -> SignedEnvelope {
        let body = format!("{seq} from {author} in {room}, take {variant}").into_bytes();
        let draft =
            Draft { seq, room: self.rooms[room].clone(), kind: Kind::Text, created_at: T0 - age * 60_000 - seq, body };
        SignedEnvelope::sign(&self.authors[author], draft).expect("sign")
    }
}

fn both() -> (Mem, Sqlite) {
    (Mem { store: MemStore::default(), me: PeerId::from_bytes([0; 32]) }, Sqlite::open())
}

#[test]
fn fixed_cases_agree_and_are_what_sync_expects() {
    let w = World::new();
    let (mut mem, mut sql) = both();
    let stores: [&mut dyn SyncStore; 2] = [&mut mem, &mut sql];
    let mut snapshots = Vec::new();
    for s in stores {
        let (room, author) = (&w.rooms[0], w.authors[0].peer_id());
        // 1..=10 but 5; 8 and 9 a day older (expired for a short lifetime).
        for seq in (1..=10).filter(|s| *s != 5) {
            let age = if seq == 8 || seq == 9 { 24 * 60 } else { 0 };
            assert_eq!(s.insert(&w.env(0, 0, seq, 0, age), seq as u8), Ok(()));
        }
        // The same message again is fine; another at a taken position is not.
        assert_eq!(s.insert(&w.env(0, 0, 3, 0, 0), 9), Ok(()));
        assert_eq!(s.insert(&w.env(0, 0, 3, 1, 0), 1), Err(()));
        let all: Vec<u64> = s.range(room, &author, 1, 10, 1 << 20, 0).iter().map(|(_, h)| *h as u64).collect();
        assert_eq!(all, vec![1, 2, 3, 4, 6, 7, 8, 9, 10], "hops as first stored, in seq order, the gap skipped");
        assert_eq!(s.range(room, &author, 1, 10, 1, 0).len(), 1, "at least one, however small the budget");
        let fresh = s.range(room, &author, 6, 10, 1 << 20, T0 - 60 * 60_000);
        assert_eq!(fresh.iter().map(|(_, h)| *h).collect::<Vec<_>>(), vec![6, 7, 10], "expired ones not served");
        let snap = s.snapshot();
        let head = snap.heads.iter().find(|h| h.room == *room && h.author == author).expect("a head");
        assert_eq!((head.contiguous, head.max, head.tip), (4, 10, Some(w.env(0, 0, 10, 0, 0).id())));
        assert_eq!(snap.held_above.len(), 5, "6..=10 held above the gap");
        // Given up on through 5: contiguous climbs over what is held.
        s.skip(room, &author, 5);
        let snap = s.snapshot();
        let head = snap.heads.iter().find(|h| h.room == *room && h.author == author).expect("a head");
        assert_eq!((head.contiguous, head.max), (10, 10));
        // A proof is kept once per author.
        let (a, b) = (w.env(1, 1, 1, 0, 0), w.env(1, 1, 1, 1, 0));
        assert!(s.record_proof(&a, &b));
        assert!(!s.record_proof(&b, &a));
        assert_eq!(s.snapshot().equivocators, vec![w.authors[1].peer_id()]);
        snapshots.push(normal(s.snapshot()));
    }
    assert_eq!(snapshots[0], snapshots[1]);
}

#[derive(Clone, Debug)]
enum Op {
    Insert { author: usize, room: usize, seq: u64, variant: u8, age: u64, hops: u8 },
    Range { author: usize, room: usize, from: u64, span: u64, max_bytes: usize, min_age: u64 },
    Skip { author: usize, room: usize, through: u64 },
    Proof { author: usize, room: usize, seq: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..2usize, 1..12u64, 0..2u8, 0..3u64, 0..8u8)
            .prop_map(|(author, room, seq, variant, age, hops)| Op::Insert { author, room, seq, variant, age, hops }),
        2 => (0..3usize, 0..2usize, 1..12u64, 0..12u64, prop::sample::select(vec![1usize, 400, 1 << 20]), 0..3u64)
            .prop_map(|(author, room, from, span, max_bytes, min_age)| Op::Range { author, room, from, span, max_bytes, min_age }),
        1 => (0..3usize, 0..2usize, 0..14u64).prop_map(|(author, room, through)| Op::Skip { author, room, through }),
        1 => (0..3usize, 0..2usize, 1..12u64).prop_map(|(author, room, seq)| Op::Proof { author, room, seq }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_get_the_same_answers_from_both(ops in prop::collection::vec(op(), 1..40)) {
        let w = World::new();
        let (mut mem, mut sql) = both();
        for (i, op) in ops.iter().enumerate() {
            let answers: Vec<String> = [&mut mem as &mut dyn SyncStore, &mut sql].into_iter().map(|s| match *op {
                Op::Insert { author, room, seq, variant, age, hops } => {
                    format!("{:?}", s.insert(&w.env(author, room, seq, variant, age), hops))
                }
                Op::Range { author, room, from, span, max_bytes, min_age } => {
                    let not_before = if min_age == 0 { 0 } else { T0 - min_age * 60_000 };
                    let a = w.authors[author].peer_id();
                    format!("{:?}", s.range(&w.rooms[room], &a, from, from + span, max_bytes, not_before))
                }
                Op::Skip { author, room, through } => {
                    s.skip(&w.rooms[room], &w.authors[author].peer_id(), through);
                    String::new()
                }
                Op::Proof { author, room, seq } => {
                    format!("{}", s.record_proof(&w.env(author, room, seq, 0, 0), &w.env(author, room, seq, 1, 0)))
                }
            }).collect();
            prop_assert_eq!(&answers[0], &answers[1], "op {} ({:?}) answered differently", i, op);
            prop_assert_eq!(normal(mem.snapshot()), normal(sql.snapshot()), "snapshots differ after op {} ({:?})", i, op);
        }
    }
}
