//! Several relay instances as one relay: they share a PostgreSQL store and
//! pass what they accept over a Redis stream (see crate::cluster). Nodes on
//! different instances chat both ways, DMs and receipts included; a message
//! posted through one instance while its addressee is away reaches it
//! through another; an instance killed during a burst loses nothing it
//! acknowledged; without Redis the store's tail carries the fan-out; an
//! instance whose commit waits still delivers what others committed; and
//! signaling crosses instances.

use crate::common;

use common::*;
use festival_core::{Identity, ReceiptStatus};
use festival_node::relay::{RelayClient, RelayClientConfig, RelayEvent};
use festival_node::signaling::SignalMsg;
use festival_relay::testing::TempRedis;
use festival_relay::RelayConfig;
use festival_store::pg::TempServer;

fn instance(dir: &std::path::Path, name: &str, store: &str, bus: Option<&str>) -> RelayConfig {
    RelayConfig {
        store: Some(store.to_owned()),
        bus: bus.map(str::to_owned),
        instance: Some(name.to_owned()),
        ..test_config(dir)
    }
}

/// A cluster's servers, private to one test: PostgreSQL with a database
/// for it, and Redis.
struct Servers {
    pg: TempServer,
    redis: TempRedis,
    store: String,
}

impl Servers {
    async fn start() -> Servers {
        let pg = TempServer::start(false).await.expect("PostgreSQL starts");
        let store = pg.create_database("cluster").await.unwrap();
        let redis = TempRedis::start().await.expect("Redis starts");
        Servers { pg, redis, store }
    }

    /// An instance on them, with `tweak` applied to its settings.
    async fn relay(&self, name: &str, tweak: impl Fn(RelayConfig) -> RelayConfig) -> (tempfile::TempDir, TestRelay) {
        let dir = tempfile::tempdir().unwrap();
        let relay = TestRelay::start(tweak(instance(dir.path(), name, &self.store, Some(&self.redis.url())))).await;
        (dir, relay)
    }
}

async fn healthz(relay: &TestRelay) -> (u16, String) {
    http_get(&relay.http("/healthz")).await.expect("the relay answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_two_instances_chat_both_ways_with_dms_and_receipts() {
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let (h1, h2) = (healthz(&one).await, healthz(&two).await);
    assert_eq!(h1, (200, "ok\nstore: reachable\nbus: reachable\n".to_owned()));
    assert_eq!(h2.0, 200);

    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path(), "Ana", &one.url()).await;
    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    // One relay to both: the same identity.
    let relay_of = |n: &TestNode| *n.relay_id.lock().unwrap();
    eventually("both nodes are connected", || async { relay_of(&a).is_some() && relay_of(&b).is_some() }).await;
    assert_eq!(relay_of(&a), relay_of(&b));

    let hi = a.send("festival", "hi Ben, from instance one").await;
    eventually("Ben (on instance two) has Ana's message", || b.has(&hi)).await;
    let back = b.send("festival", "hi Ana, from instance two").await;
    eventually("Ana has Ben's message", || a.has(&back)).await;
    let dm = a.dm(b.id, "meet at the gate").await;
    eventually("Ben has Ana's DM", || b.has(&dm)).await;
    let dm_back = b.dm(a.id, "on my way").await;
    eventually("Ana has Ben's DM", || a.has(&dm_back)).await;
    // Ben's device tells Ana it got her DM: a sealed receipt, across.
    let delivered = || async {
        a.store.receipts_for(&dm).await.unwrap().iter().any(|(p, s, _)| *p == b.id && *s == ReceiptStatus::Delivered)
    };
    eventually("Ana sees her DM delivered to Ben", delivered).await;
    // By the bus, not only by the store's tail.
    assert!(two.metric("festival_relay_cluster_bus_received_total").await >= 2);
    assert!(one.metric("festival_relay_cluster_published_total").await >= 2);
    // Fresh messages are stored by the store's one-statement path.
    assert!(one.metric("festival_relay_store_fast_path_total").await >= 1);
    assert!(two.metric("festival_relay_store_fast_path_total").await >= 1);
    a.stop().await;
    b.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_posted_through_one_instance_reaches_a_node_that_connects_to_another_later() {
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Ben exists, but is offline.
    let ben = festival_node::local::LocalNode::open(db.path()).await.unwrap().init("Ben").await.unwrap();
    let a = TestNode::start(da.path(), "Ana", &one.url()).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(a.send("festival", &format!("note {i} for later")).await);
    }
    ids.push(a.dm(ben, "for when you are back").await);
    eventually("instance one acknowledged all of it", || async { ids.iter().all(|id| a.acked(id)) }).await;
    a.stop().await;

    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    for id in &ids {
        let id = *id;
        eventually("Ben got it through instance two", || b.has(&id)).await;
    }
    b.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_shared_store_carries_the_fan_out() {
    let pg = TempServer::start(false).await.expect("PostgreSQL starts");
    let store = pg.create_database("cluster").await.unwrap();
    let mut redis = TempRedis::start().await.expect("Redis starts");
    let (d1, d2, d3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two with a bus that goes away, one that never had one.
    let one = TestRelay::start(instance(d1.path(), "one", &store, Some(&redis.url()))).await;
    let two = TestRelay::start(instance(d2.path(), "two", &store, Some(&redis.url()))).await;
    let three = TestRelay::start(instance(d3.path(), "three", &store, None)).await;
    assert_eq!(healthz(&three).await, (200, "ok\nstore: reachable\nbus: none\n".to_owned()));
    let (da, db, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path(), "Ana", &one.url()).await;
    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    let c = TestNode::start(dc.path(), "Cem", &three.url()).await;

    let first = a.send("festival", "with the bus").await;
    eventually("Ben has it", || b.has(&first)).await;
    eventually("Cem (no bus) has it, from the store", || c.has(&first)).await;

    redis.kill();
    let tail_before = two.metric("festival_relay_cluster_fallback_reads_total").await;
    eventually("instance one says the bus is away", || async {
        healthz(&one).await == (200, "ok\nstore: reachable\nbus: unreachable\n".to_owned())
    })
    .await;
    // A row no instance wrote as it is (its bytes are no envelope), in the
    // committed order before what follows: the tails go past it.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&store).await.unwrap();
        sqlx::query(
            "INSERT INTO messages (id, room, author, seq, kind, created_at, received_at, hops, raw)
             VALUES ($1, 'festival', $2, 1, 0, $3, $3, 1, $4)",
        )
        .bind(&[7u8; 32][..])
        .bind(&[8u8; 32][..])
        .bind(festival_node::clock::now_ms() as i64)
        .bind(&b"not an envelope"[..])
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let second = a.send("festival", "without the bus").await;
    let third = c.send("festival", "from the instance that never had one").await;
    eventually("Ben has Ana's second message", || b.has(&second)).await;
    eventually("Ana and Ben have Cem's", || async { a.has(&third).await && b.has(&third).await }).await;
    eventually("Cem has Ana's second", || c.has(&second)).await;
    // Instance two read them from the store's committed order, past the
    // unreadable row, which it counted.
    assert!(two.metric("festival_relay_cluster_fallback_reads_total").await >= tail_before + 2);
    assert!(two.metric("festival_relay_store_unreadable_rows_total").await >= 1);
    assert!(three.metric("festival_relay_store_unreadable_rows_total").await >= 1);

    redis.restart().await.expect("Redis starts again");
    eventually("the bus is back", || async { healthz(&one).await.1.ends_with("bus: reachable\n") }).await;
    let fourth = b.send("festival", "the bus is back").await;
    eventually("Ana has it", || a.has(&fourth)).await;
    for n in [a, b, c] {
        n.stop().await;
    }
    for r in [one, two, three] {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_during_a_burst_loses_nothing_it_acknowledged() {
    let pg = TempServer::start(false).await.expect("PostgreSQL starts");
    let store = pg.create_database("cluster").await.unwrap();
    let redis = TempRedis::start().await.expect("Redis starts");
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flags = |name: &str| -> Vec<std::ffi::OsString> {
        ["--store", &store, "--bus", &redis.url(), "--instance", name].iter().map(Into::into).collect()
    };
    let f1 = flags("one");
    let f1: Vec<&std::ffi::OsStr> = f1.iter().map(|s| s.as_os_str()).collect();
    let f2 = flags("two");
    let f2: Vec<&std::ffi::OsStr> = f2.iter().map(|s| s.as_os_str()).collect();
    let one = RelayProcess::start_with(d1.path(), &f1, None).await;
    let two = RelayProcess::start_with(d2.path(), &f2, None).await;

    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Ana knows both instances: the first, and the second to fail over to.
    let mut ana = RelayClientConfig::several(&format!("{} {}", one.url(), two.url()), FESTIVAL);
    ana.backoff_min = std::time::Duration::from_millis(50);
    ana.backoff_max = std::time::Duration::from_millis(500);
    ana.keepalive = std::time::Duration::from_millis(500);
    let a = TestNode::start_with(da.path(), "Ana", ana).await;
    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    eventually("Ana is connected", || async { a.relay_id.lock().unwrap().is_some() }).await;

    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(a.send("festival", &format!("burst {i}")).await);
    }
    // Mid-burst, before all of it is acknowledged by instance one.
    one.kill9().await;
    for i in 30..60 {
        ids.push(a.send("festival", &format!("burst {i}")).await);
    }
    // Every message reaches Ben through instance two, those acknowledged
    // before the kill included. (Not every one is acknowledged: one that
    // instance one committed but died before acknowledging is held by the
    // store, so Ana's node never pushes it again and no instance says
    // `Stored` for it; Ana sees it delivered through sync instead.)
    for id in &ids {
        let id = *id;
        eventually("Ben has every message", || b.has(&id)).await;
    }
    // Once each: the shared store holds one row per message.
    let held = festival_store::pg::PgStore::connect(&store).await.unwrap();
    let mine = held.author_usage(&a.id).await.unwrap();
    assert_eq!(mine.messages, 61, "Ana's profile and her 60 messages, each once");
    held.close().await;
    a.stop().await;
    b.stop().await;
    two.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_reaches_a_node_on_another_instance_and_nobody_is_unreachable() {
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let (a, b) = (identity(), identity());
    let (a_id, b_id) = (a.peer_id(), b.peer_id());
    let a_twin = Identity::from_secret_bytes(&a.secret_bytes());
    let (ha, mut ea) = RelayClient::spawn(client_config(&one.url()), a);
    let (_hb, mut eb) = RelayClient::spawn(client_config(&two.url()), b);
    connected(&mut ea).await;
    connected(&mut eb).await;

    // B's presence is written as it connects: wait for it, then offer.
    let bus = redis::Client::open(s.redis.url()).unwrap();
    let key = format!("festival:at:{}", b_id.to_hex());
    eventually("instance two has said where B is", || async {
        let mut c = bus.get_multiplexed_async_connection().await.unwrap();
        // "<instance> <link>": the instance and B's session there.
        let at = redis::cmd("GET").arg(&key).query_async::<Option<String>>(&mut c).await.unwrap();
        at.is_some_and(|v| v.starts_with("two "))
    })
    .await;
    ha.send_signal(b_id, &offer(&a_twin, b_id)).unwrap();
    match next_signal(&mut eb).await {
        RelayEvent::Signal { from, msg: SignalMsg::Offer { offer, .. } } => assert_eq!((from, offer.to), (a_id, b_id)),
        other => panic!("expected A's offer, got {other:?}"),
    }
    assert_eq!(two.metric("festival_relay_cluster_signals_in_total").await, 1);

    let nobody = identity().peer_id();
    ha.send_signal(nobody, &offer(&a_twin, nobody)).unwrap();
    match next_signal(&mut ea).await {
        RelayEvent::Unreachable { peer } => assert_eq!(peer, nobody),
        other => panic!("expected unreachable, got {other:?}"),
    }
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_away_nothing_is_acknowledged_and_all_of_it_arrives_after() {
    let mut s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path(), "Ana", &one.url()).await;
    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    let first = a.send("festival", "before").await;
    eventually("Ben has the first", || b.has(&first)).await;

    s.pg.stop();
    eventually("instance one says the store is away", || async { healthz(&one).await.0 == 503 }).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(a.send("festival", &format!("while the store is away {i}")).await);
    }
    eventually("instance one failed to store them", || async { one.rejections("store_failed").await >= 5 }).await;
    assert!(ids.iter().all(|id| !a.acked(id)), "nothing is acknowledged that is not committed");

    s.pg.resume().await.expect("PostgreSQL starts again");
    eventually("instance one is healthy again", || async { healthz(&one).await.0 == 200 }).await;
    eventually("all of it is acknowledged", || async { ids.iter().all(|id| a.acked(id)) }).await;
    for id in &ids {
        let id = *id;
        eventually("Ben has it", || b.has(&id)).await;
    }
    a.stop().await;
    b.stop().await;
    one.stop().await;
    two.stop().await;
}

/// An instance whose commit waits on PostgreSQL (here: for a row lock the
/// test holds on one author's chain) goes on pushing to its nodes what the
/// other instances committed meanwhile; the waiting message is not
/// acknowledged until it is committed, and then arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_commit_waits_the_instance_delivers_what_others_committed() {
    use sqlx::Connection;
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = TestNode::start(dirs[0].path(), "Ana", &one.url()).await;
    let c = TestNode::start(dirs[1].path(), "Cleo", &one.url()).await;
    let b = TestNode::start(dirs[2].path(), "Ben", &two.url()).await;
    eventually("the bus is up", || async { healthz(&one).await.1.ends_with("bus: reachable\n") }).await;
    let first = c.send("festival", "first").await;
    eventually("Ben has Cleo's first", || b.has(&first)).await;

    // Cleo's chain's head, locked: instance one's next commit of hers waits.
    let (mut lock, held) = lock_chain(&s.store, &c.id).await;
    assert_eq!(held, 1, "Cleo's one chain");
    let mut watch = sqlx::PgConnection::connect(&s.store).await.unwrap();
    let stuck = c.send("festival", "waits for the lock").await;
    until_a_writer_waits(&mut watch).await;

    let across = b.send("festival", "from instance two, meanwhile").await;
    eventually("Ana (on instance one) has Ben's message", || a.has(&across)).await;
    // Before the commit gave up (a batch's deadline is 12 s): it still
    // waits, and has not failed once (a hub that waited for it would have
    // delivered nothing until it failed, and the node's resend then waits
    // again).
    assert_eq!(one.rejections("store_failed").await, 0, "instance one's commit never failed");
    assert_eq!(writers_waiting(&mut watch).await, 1, "instance one's commit still waits");
    assert!(!c.acked(&stuck), "nothing is acknowledged before it is committed");
    assert!(!a.has(&stuck).await);

    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    eventually("Cleo's message is acknowledged", || async { c.acked(&stuck) }).await;
    eventually("Ana has it", || a.has(&stuck)).await;
    eventually("Ben has it", || b.has(&stuck)).await;
    for n in [a, b, c] {
        n.stop().await;
    }
    one.stop().await;
    two.stop().await;
}

/// For raw sockets that say nothing while they wait: no idle closing.
fn patient(c: RelayConfig) -> RelayConfig {
    RelayConfig { idle_timeout_secs: 120, ..c }
}

/// A transaction of the test's that holds the head row of `author`'s
/// chain locked: an instance's next commit of that chain waits for it
/// (until the test rolls it back). Returns it, and the rows it locked.
async fn lock_chain(store: &str, author: &festival_core::PeerId) -> (sqlx::PgConnection, usize) {
    use sqlx::Connection;
    let mut lock = sqlx::PgConnection::connect(store).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut lock).await.unwrap();
    let held = sqlx::query("SELECT 1 FROM heads WHERE author = $1 FOR UPDATE")
        .bind(&author.as_bytes()[..])
        .fetch_all(&mut lock)
        .await
        .unwrap();
    (lock, held.len())
}

/// The store writers (instances' commits) waiting on a lock now.
async fn writers_waiting(watch: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
         AND application_name = 'festival-store writer'",
    )
    .fetch_one(watch)
    .await
    .unwrap()
}

/// Wait until a commit waits on a lock.
async fn until_a_writer_waits(watch: &mut sqlx::PgConnection) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while writers_waiting(watch).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no commit waited");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `e` pushed by a node, as it goes on its socket.
fn push(e: &festival_core::SignedEnvelope) -> festival_node::relay::wire::RelayMsg {
    use festival_core::frame::{Frame, Item};
    festival_node::relay::wire::RelayMsg::Frame(Frame::Push(Item { hops: 0, envelope: e.bytes().to_vec() }).encode())
}

/// A text of `author` in the festival room at `seq`.
fn text_at(author: &festival_core::Identity, seq: u64, text: &str) -> festival_core::SignedEnvelope {
    let draft = festival_core::Draft {
        seq,
        room: festival_core::RoomId::festival(),
        kind: festival_core::Kind::Text,
        created_at: festival_node::clock::now_ms(),
        body: festival_core::body::Body::Text(text.into()).encode(),
    };
    festival_core::SignedEnvelope::sign(author, draft).unwrap()
}

/// Read `ws` until the relay acknowledges `id` (`Stored`) or pushes it.
async fn until_seen(ws: &mut Ws, id: festival_core::MessageId, what: &str) {
    use festival_core::frame::Frame;
    use festival_node::relay::wire::RelayMsg;
    let seen = tokio::time::timeout(DEADLINE, async {
        loop {
            match next_msg(ws).await {
                Some(RelayMsg::Stored { ids }) if ids.contains(&id) => return,
                Some(RelayMsg::Frame(bytes)) => {
                    let items = match Frame::decode(&bytes) {
                        Ok(Frame::Push(item)) => vec![item],
                        Ok(Frame::Batch { items }) => items,
                        _ => continue,
                    };
                    if items.iter().any(|i| festival_core::SignedEnvelope::id_of(&i.envelope) == id) {
                        return;
                    }
                }
                Some(_) => {}
                None => panic!("the relay closed the socket ({what})"),
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "timed out waiting until {what}");
}

/// An envelope another instance committed at a position this instance's
/// own commit holds pending reaches this instance's nodes when that commit
/// fails: the bus's copy is kept aside until the commit ends and taken
/// then (the core would take the position as held while it is pending),
/// and the store's tail, which cannot read past the open transaction,
/// asks for it after and finds it missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_siblings_copy_reaches_this_instances_nodes_when_the_commit_here_failed() {
    use festival_core::frame::{Frame, Item};
    use festival_node::relay::wire::RelayMsg;
    use sqlx::Connection;
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", patient).await;
    let (_d2, two) = s.relay("two", patient).await;
    for r in [&one, &two] {
        eventually("the bus is up", || async { healthz(r).await.1.ends_with("bus: reachable\n") }).await;
    }
    let mut listener = authed(one.addr, &identity()).await;
    send(&mut listener, &hello(&["festival"])).await;
    let (mut p, mut q) = (authed(one.addr, &identity()).await, authed(two.addr, &identity()).await);
    send(&mut p, &hello(&["festival"])).await;
    send(&mut q, &hello(&["festival"])).await;
    // Ben's key sorts first: instance one's commit locks chains' heads in
    // that order, so it waits on Ben's before it writes Ana's (which would
    // hold instance two's commit of Ana's first behind it).
    let (ana, ben) = loop {
        let (a, b) = (identity(), identity());
        if b.peer_id().as_bytes() < a.peer_id().as_bytes() {
            break (a, b);
        }
    };
    let b1 = text_at(&ben, 1, "Ben's first");
    send(&mut p, &push(&b1)).await;
    until_seen(&mut p, b1.id(), "instance one stored Ben's first").await;

    // Ben's chain locked: instance one's commit of Ana's first with Ben's
    // second waits.
    let (mut lock, _) = lock_chain(&s.store, &ben.peer_id()).await;
    let a1 = text_at(&ana, 1, "Ana's first, through both");
    let b2 = text_at(&ben, 2, "Ben's second");
    let batch = Frame::Batch { items: [&a1, &b2].map(|e| Item { hops: 0, envelope: e.bytes().to_vec() }).to_vec() };
    send(&mut p, &RelayMsg::Frame(batch.encode())).await;
    let mut watch = sqlx::PgConnection::connect(&s.store).await.unwrap();
    let writer_waiting = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
         AND wait_event_type = 'Lock' AND application_name = 'festival-store writer'";
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let pid: i32 = loop {
        if let Some(pid) = sqlx::query_scalar(writer_waiting).fetch_optional(&mut watch).await.unwrap() {
            break pid;
        }
        assert!(tokio::time::Instant::now() < deadline, "instance one's commit never waited");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    // Instance two commits Ana's first meanwhile; instance one hears of it
    // on the bus while its own commit of it still waits.
    let heard = one.metric("festival_relay_cluster_bus_received_total").await;
    send(&mut q, &push(&a1)).await;
    until_seen(&mut q, a1.id(), "instance two stored Ana's first").await;
    eventually("instance one heard of it on the bus", || async {
        one.metric("festival_relay_cluster_bus_received_total").await > heard
    })
    .await;
    assert!(sqlx::query_scalar::<_, i32>(writer_waiting).fetch_optional(&mut watch).await.unwrap().is_some());
    // Instance one's commit fails (cancelled), the lock goes.
    sqlx::query("SELECT pg_cancel_backend($1)").bind(pid).execute(&mut watch).await.unwrap();
    eventually("instance one's commit failed", || async { one.rejections("store_failed").await >= 2 }).await;
    // Before the lock goes: the store's tail cannot read past the test's
    // open transaction, so only the kept copy can bring it now.
    until_seen(&mut listener, a1.id(), "instance one's node got Ana's first, as instance two committed it").await;
    assert!(one.metric("festival_relay_cluster_kept_total").await >= 1, "the bus's copy was kept aside");
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    one.stop().await;
    two.stop().await;
}

/// A node that comes back on a new socket while frames of its old one
/// wait for a commit in flight: the old session's frames are committed
/// before the new one replaces it, not dropped with the old link. (Their
/// acknowledgement goes to the old socket, closed as replaced, and may not
/// reach it: the node sends what its outbox holds again on the new one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_waits_after_the_frames_its_old_one_left_waiting() {
    use sqlx::Connection;
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", patient).await;
    let (ben, ana) = (identity(), identity());
    let mut p = authed(one.addr, &ben).await;
    send(&mut p, &hello(&["festival"])).await;
    let b1 = text_at(&ben, 1, "Ben's first");
    send(&mut p, &push(&b1)).await;
    until_seen(&mut p, b1.id(), "Ben's first stored").await;

    // Ben's chain locked: the commit of his second waits, in flight.
    let (mut lock, _) = lock_chain(&s.store, &ben.peer_id()).await;
    send(&mut p, &push(&text_at(&ben, 2, "Ben's second"))).await;
    let mut watch = sqlx::PgConnection::connect(&s.store).await.unwrap();
    until_a_writer_waits(&mut watch).await;

    // Ana's first, on her old socket, waits behind that commit (the hub
    // has it once it counts the frame).
    let mut old = authed(one.addr, &ana).await;
    send(&mut old, &hello(&["festival"])).await;
    let a1 = text_at(&ana, 1, "Ana's first, on her old socket");
    let frames = one.metric("festival_relay_frames_total{dir=\"in\"}").await;
    send(&mut old, &push(&a1)).await;
    eventually("the hub has Ana's first", || async {
        one.metric("festival_relay_frames_total{dir=\"in\"}").await > frames
    })
    .await;
    // She comes back on a new socket meanwhile (its opening reaches the hub
    // after her frame, and waits after it).
    let _new = authed(one.addr, &ana).await;
    assert_eq!(writers_waiting(&mut watch).await, 1, "the commit still waits");

    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    // Committed (a hub that let the new session in first dropped the frame
    // with the old link, uncommitted and unanswered).
    let stored = "SELECT count(*) FROM messages WHERE id = $1";
    let id = a1.id().as_bytes().to_vec();
    eventually("Ana's first, from her old socket, is committed", || async {
        let mut c = sqlx::PgConnection::connect(&s.store).await.unwrap();
        sqlx::query_scalar::<_, i64>(stored).bind(&id[..]).fetch_one(&mut c).await.unwrap() == 1
    })
    .await;
    one.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_during_a_burst_loses_nothing_and_the_stream_resumes() {
    let mut s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path(), "Ana", &one.url()).await;
    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    let mut ids = Vec::new();
    for i in 0..45 {
        if i == 15 {
            s.redis.kill();
        }
        if i == 30 {
            s.redis.restart().await.expect("Redis starts again");
        }
        ids.push(a.send("festival", &format!("burst {i}")).await);
    }
    for id in &ids {
        let id = *id;
        eventually("Ben has every message of the burst", || b.has(&id)).await;
    }
    // The stream carries again: a message after the burst comes by it.
    eventually("the bus is back", || async { healthz(&one).await.1.ends_with("bus: reachable\n") }).await;
    let before = two.metric("festival_relay_cluster_bus_received_total").await;
    let after = a.send("festival", "after the burst").await;
    eventually("Ben has it", || b.has(&after)).await;
    eventually("it came by the stream", || async {
        two.metric("festival_relay_cluster_bus_received_total").await > before
    })
    .await;
    a.stop().await;
    b.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_quota_and_the_one_session_rule_hold_across_instances() {
    let s = Servers::start().await;
    let quota = |cfg: RelayConfig| RelayConfig { max_messages_per_author: 5, ..cfg };
    let (_d1, one) = s.relay("one", quota).await;
    let (_d2, two) = s.relay("two", quota).await;

    // Ana stores her profile and two notes through one, then moves to two.
    let da = tempfile::tempdir().unwrap();
    let a = TestNode::start(da.path(), "Ana", &one.url()).await;
    let early = [a.send("festival", "one").await, a.send("festival", "two").await];
    eventually("instance one acknowledged them", || async { early.iter().all(|id| a.acked(id)) }).await;
    a.stop().await;
    let a = TestNode::start(da.path(), "Ana", &two.url()).await;
    for i in 0..6 {
        a.send("festival", &format!("more {i}")).await;
    }
    eventually("instance two refuses what is over the relay's quota", || async {
        two.rejections("storage_quota").await >= 1
    })
    .await;
    let held = festival_store::pg::PgStore::connect(&s.store).await.unwrap();
    eventually("no more than the quota is stored, whichever instance took it", || async {
        held.author_usage(&a.id).await.unwrap().messages == 5
    })
    .await;
    held.close().await;
    a.stop().await;

    // One session per identity in the cluster: a second one at another
    // instance closes the first.
    let me = identity();
    let mut first = authed(one.addr, &me).await;
    let _second = authed(two.addr, &me).await;
    assert_eq!(close_code(&mut first).await, festival_node::relay::wire::close::REPLACED);
    one.stop().await;
    two.stop().await;
}

/// A text by a fresh author in the festival room, signed and valid: what
/// someone who can write to Redis could make without the relay's key.
fn stranger_text(text: &str) -> festival_core::SignedEnvelope {
    let draft = festival_core::Draft {
        seq: 1,
        room: festival_core::RoomId::festival(),
        kind: festival_core::Kind::Text,
        created_at: festival_node::clock::now_ms(),
        body: festival_core::body::Body::Text(text.into()).encode(),
    };
    festival_core::SignedEnvelope::sign(&identity(), draft).unwrap()
}

/// While the bus runs, the store's tail reads where each committed envelope
/// is and fetches only what the instance does not hold: what the bus missed
/// (an instance that committed and died before its `XADD`: here, a row
/// written straight to the store) arrives, and what the bus brought is not
/// read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_bus_runs_the_tail_fetches_only_what_the_bus_missed() {
    const FALLBACK: &str = "festival_relay_cluster_fallback_reads_total";
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path(), "Ana", &one.url()).await;
    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    eventually("the bus is up", || async { healthz(&two).await.1.ends_with("bus: reachable\n") }).await;
    let first = a.send("festival", "before").await;
    eventually("Ben has Ana's first", || b.has(&first)).await;
    let before = two.metric(FALLBACK).await;
    // One at a time, each in a commit of its own: the tail may look at a
    // commit in the moment before the bus has handed it over (and fetch
    // it), but not at most of twenty such moments.
    for i in 0..20 {
        let id = a.send("festival", &format!("by the bus {i}")).await;
        eventually("Ben has it, by the bus", || b.has(&id)).await;
    }
    // Committed, never added to the stream.
    let missed = stranger_text("committed by an instance that died before its XADD");
    let store = festival_store::pg::PgStore::connect(&s.store).await.unwrap();
    store.insert_batch(&[(missed.clone(), 0)], festival_node::clock::now_ms(), false).await.unwrap();
    store.close().await;
    let missed_id = missed.id();
    eventually("Ben has the missed one, from the store's tail", || b.has(&missed_id)).await;
    // The tail reads in commit order: it went past the twenty before the
    // missed one, and fetched that one (and any the bus had not handed
    // over yet when the tail asked), not all of them (the full re-read it
    // replaced counted at least 21).
    let fetched = two.metric(FALLBACK).await - before;
    assert!((1..=10).contains(&fetched), "{fetched} envelopes fetched by the tail");
    a.stop().await;
    b.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_entry_not_sealed_with_the_relays_key_is_refused() {
    use festival_relay::cluster::{accepted_entry, BusKey, ACCEPTED_STREAM};
    let s = Servers::start().await;
    let (_d1, one) = s.relay("one", |c| c).await;
    let (_d2, two) = s.relay("two", |c| c).await;
    let db = tempfile::tempdir().unwrap();
    let b = TestNode::start(db.path(), "Ben", &two.url()).await;
    eventually("Ben is connected", || async { b.relay_id.lock().unwrap().is_some() }).await;
    let mut redis = redis::Client::open(s.redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let xadd_to = |stream: &str, bytes: Vec<u8>| {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream).arg("*").arg("m").arg(bytes);
        cmd
    };
    let xadd = |bytes: Vec<u8>| xadd_to(ACCEPTED_STREAM, bytes);

    // Sealed with a key that is not the relay's: refused by both instances.
    let forged = stranger_text("free drinks at the north gate");
    let wrong = BusKey::of(&identity());
    let now = festival_node::clock::now_ms();
    let entry = xadd(accepted_entry(&wrong, now, "one", 0, forged.bytes().to_vec()));
    let _: String = entry.query_async(&mut redis).await.unwrap();
    eventually("instance two refused the forged entry", || async { two.rejections("bus_forged").await >= 1 }).await;
    eventually("instance one too", || async { one.rejections("bus_forged").await >= 1 }).await;

    // The control: the same kind of entry sealed with the relay's key (the
    // instances read it from the shared store) is believed and pushed, so
    // what kept the first one out was its seal.
    let relay = festival_store::pg::PgStore::connect(&s.store).await.unwrap();
    let key = BusKey::of(&relay.identity().await.unwrap().expect("the relay's identity").identity);
    relay.close().await;
    let sealed = stranger_text("sealed by an instance");
    let entry = xadd(accepted_entry(&key, festival_node::clock::now_ms(), "one", 0, sealed.bytes().to_vec()));
    let _: String = entry.query_async(&mut redis).await.unwrap();
    let sealed_id = sealed.id();
    eventually("Ben has the sealed entry's message", || b.has(&sealed_id)).await;
    // The stream is read in order: the forged entry was read before it.
    assert!(!b.has(&forged.id()).await, "a forged entry reached a node");
    assert_eq!(two.rejections("bus_forged").await, 1);

    // An entry sealed with the relay's key two minutes ago (a replay) is
    // refused as stale: what was committed then, the store's tail brings.
    let old = stranger_text("an entry replayed from two minutes ago");
    let then = festival_node::clock::now_ms() - 120_000;
    let entry = xadd(accepted_entry(&key, then, "one", 0, old.bytes().to_vec()));
    let _: String = entry.query_async(&mut redis).await.unwrap();
    eventually("instance two refused the replay", || async { two.rejections("bus_stale").await >= 1 }).await;
    let after = stranger_text("sealed after the replay");
    let entry = xadd(accepted_entry(&key, festival_node::clock::now_ms(), "one", 0, after.bytes().to_vec()));
    let _: String = entry.query_async(&mut redis).await.unwrap();
    let after_id = after.id();
    eventually("Ben has the message sealed after the replay", || b.has(&after_id)).await;
    assert!(!b.has(&old.id()).await, "a replayed entry reached a node");

    // The signal stream is sealed too: a word not sealed with the relay's
    // key is refused by every instance that reads it.
    let forged_word = accepted_entry(&wrong, festival_node::clock::now_ms(), "two", 0, vec![0; 8]);
    let entry = xadd_to(festival_relay::cluster::SIGNAL_STREAM, forged_word);
    let _: String = entry.query_async(&mut redis).await.unwrap();
    eventually("instance two refused the forged signal", || async { two.rejections("bus_forged").await == 2 }).await;
    b.stop().await;
    one.stop().await;
    two.stop().await;
}

fn hello(rooms: &[&str]) -> festival_node::relay::wire::RelayMsg {
    use festival_core::frame::{Frame, Hello};
    let rooms = rooms.iter().map(|r| r.parse().unwrap()).collect();
    let hello =
        Hello { version: festival_core::sync::PROTOCOL_VERSION, ack: false, rooms, relays: true, powered: true };
    festival_node::relay::wire::RelayMsg::Frame(Frame::Hello(hello).encode())
}

/// Room creation allowances are the cluster's: an identity that moves to
/// another instance finds its hour spent there too, and fresh keys spread
/// over the instances share one relay-wide budget per minute. (Each
/// instance counted its own before: N instances, N allowances.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_creation_allowances_hold_across_instances() {
    let s = Servers::start().await;
    // 3 rooms per identity an hour; 4 in all a minute (one more every 15
    // s, longer than this test's steps take).
    let limits = |c: RelayConfig| RelayConfig {
        rooms_per_identity_per_hour: 3,
        rooms_created_per_minute: 4,
        idle_timeout_secs: 60,
        ..c
    };
    let (_d1, one) = s.relay("one", limits).await;
    let (_d2, two) = s.relay("two", limits).await;
    const LIMIT: &str = "room_creation_limit";

    // Mallory names four new rooms at instance one: three are joined.
    let mallory = identity();
    let mut m = authed(one.addr, &mallory).await;
    send(&mut m, &hello(&["m-1", "m-2", "m-3", "m-4"])).await;
    eventually("one refuses her fourth room", || async { one.rejections(LIMIT).await == 1 }).await;
    // At instance two her hour is spent as well; a room the cluster
    // carries already (m-1, joined by one) costs nothing and is joined.
    let mut m2 = authed(two.addr, &mallory).await;
    send(&mut m2, &hello(&["m-1", "m-5"])).await;
    eventually("two refuses her new room, not the carried one", || async { two.rejections(LIMIT).await == 1 }).await;

    // The relay's budget: three of its four went to Mallory; a fresh key
    // at instance two naming three rooms gets the fourth (and a fifth only
    // if the test ran past the next token, 15 s on): at least one waits.
    // Each instance counting its own budget would give it all three.
    let mut k = authed(two.addr, &identity()).await;
    send(&mut k, &hello(&["k-1", "k-2", "k-3"])).await;
    eventually("two refuses a room past the cluster's budget", || async { two.rejections(LIMIT).await >= 2 }).await;
    drop((m, m2, k));
    one.stop().await;
    two.stop().await;
}
