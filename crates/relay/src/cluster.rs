//! Several relay instances as one relay: what one instance accepts reaches
//! the nodes of every other at once, and signaling crosses instances.
//! See docs/relay-cluster.md.
//!
//! The instances share one PostgreSQL database (the mailbox, the heads, the
//! rooms and the relay's identity) and, optionally, a Redis server:
//! - **The bus** (Redis Streams). After an instance's commit returned, it
//!   adds each envelope it newly stored to the stream [`ACCEPTED_STREAM`]
//!   (`XADD`, capped at [`STREAM_MAXLEN`] entries). Every instance reads the
//!   stream through a consumer group of its own name: the group remembers
//!   where it is in Redis, so an instance that restarts goes on from there.
//!   Entries are not acknowledged one by one (`NOACK`: no pending list to
//!   keep in Redis, no `XACK` per read): one handed over and lost in a
//!   crash of the instance is in the state it boots from, in the store,
//!   and one whose reply was lost (a read timed out, a connection broke)
//!   comes with the store's tail.
//!   Redis is not trusted: every entry is sealed, with the time it was
//!   sealed, under a key derived from the relay's secret key ([`BusKey`]),
//!   which instances read from the shared store and Redis never holds. An
//!   entry that opens and is fresh ([`ACCEPTED_MAX_AGE_MS`]) was written by
//!   an instance after its commit, so its envelope is one an instance
//!   verified before storing; it is handed to the engine as
//!   `Input::Committed`. One that does not is refused and counted.
//! - **The store's tail**, always running: every instance also reads what
//!   was committed since it started, in the committed order of the shared
//!   database ([`festival_store::pg::CommitCursor`]), every [`TAIL_EVERY`],
//!   or every [`TAIL_EVERY_WITHOUT_BUS`] while the bus is away or absent.
//!   It catches what the bus missed: Redis down, an `XADD` that failed, an
//!   instance killed between its commit and its `XADD`. While the bus runs
//!   it reads where each envelope is, not its bytes, asks the engine which
//!   it does not hold (nearly none: the bus brought them) and fetches
//!   those; otherwise it reads the envelopes, and the engine drops what it
//!   already has.
//! - **Signaling**: an instance keeps "peer P is connected to instance I"
//!   in Redis (`festival:at:<peer>`, refreshed, expiring after
//!   [`PRESENCE_TTL`]). An offer or answer for a peer connected elsewhere is
//!   added to [`SIGNAL_STREAM`] naming that instance, which every instance
//!   reads (sealed as the accepted entries are); one for a peer connected
//!   nowhere is answered `Unreachable`. Without Redis, signaling stays
//!   within an instance.
//!
//! Nothing here acknowledges anything: `Stored` still means committed in
//! PostgreSQL by the instance that sends it.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use festival_core::{Identity, LinkId, PeerId, SignedEnvelope};
use festival_engine::clock::now_ms;
use festival_store::pg::{CommitCursor, PgStore};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamReadReply;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::hub::HubIn;
use crate::metrics::Metrics;

/// The stream of envelopes instances accepted.
pub const ACCEPTED_STREAM: &str = "festival:accepted";
/// The stream of offers and answers between instances.
pub const SIGNAL_STREAM: &str = "festival:signals";
/// Entries the accepted stream keeps (approximately; `MAXLEN ~`). An
/// instance that falls further behind than this loses nothing: the store's
/// tail brings the rest.
pub const STREAM_MAXLEN: usize = 100_000;
/// Entries the signal stream keeps: signals are read within a second or
/// are stale.
const SIGNAL_MAXLEN: usize = 10_000;
/// How long a presence entry lives without a refresh.
pub const PRESENCE_TTL: Duration = Duration::from_secs(120);
/// How often an instance refreshes the presence of its nodes.
const PRESENCE_REFRESH: Duration = Duration::from_secs(40);
/// How often the store's tail is read while the bus runs.
pub const TAIL_EVERY: Duration = Duration::from_secs(1);
/// How often while it does not.
pub const TAIL_EVERY_WITHOUT_BUS: Duration = Duration::from_millis(200);
/// Rows per read of the store's tail.
const TAIL_PAGE: u32 = 512;
/// Entries per read of a stream, and how long a read waits for one.
const READ_COUNT: usize = 256;
const BLOCK_MS: usize = 1_000;
/// Waits between attempts to reach Redis after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// What the hub may queue for the bus before it drops (the tail covers
/// dropped envelopes; a dropped signal is a lost offer, retried by its node).
const OUT_QUEUE: usize = 4_096;
/// Arrivals and departures queued at most: one of each per connection
/// slot of a large relay.
const PRESENCE_QUEUE: usize = 65_536;
/// How often the stream's lag for this instance is read for `/metrics`.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// How old an accepted entry may be (by the clock of the instance that
/// sealed it) and still be believed: an instance reads the stream within
/// milliseconds, or after a restart within minutes, and whatever it drops
/// as stale the store's tail brings (it reads everything committed since
/// the instance started; what was committed before is in the state it
/// booted from). Without it, an entry once sealed could be replayed
/// forever: an envelope long evicted or expired, handed to the engine
/// again as committed. Also the clock skew allowed between instances.
pub const ACCEPTED_MAX_AGE_MS: u64 = 60_000;
/// How old a signal word may be: an offer is stale within seconds anyway,
/// and a `Replaced` word replayed later must not close a newer session.
pub const SIGNAL_MAX_AGE_MS: u64 = 10_000;

/// The BLAKE3 `derive_key` context of [`BusKey`].
const BUS_KEY_CONTEXT: &str = "festival-relay 2026-12-06 cluster stream entries v1";

/// The key instances seal their stream entries with: derived from the
/// relay's secret key, which every instance of the cluster reads from the
/// shared store (they are one relay, with one identity). Redis holds the
/// entries, never the key, so an entry that opens was written by an
/// instance, and an accepted entry only after its commit: it is believed
/// without asking the store (a round trip to PostgreSQL per batch of
/// entries on every instance, and planning that lookup was most of its
/// cost) and without checking the envelope's signature again. Someone who
/// can write to Redis can replay an entry while it is fresh (an envelope
/// again within a minute of its commit; a signal word within seconds), not
/// make one; someone who can also read the relay's secret key from the
/// database can (see docs/relay-cluster.md).
#[derive(Clone)]
pub struct BusKey([u8; 32]);

/// What a stream entry's `m` field holds: a postcard body, when it was
/// sealed (wall time, ms, by the sealing instance's clock) and the MAC of
/// both.
#[derive(Serialize, Deserialize)]
struct Sealed {
    body: Vec<u8>,
    at: u64,
    mac: [u8; 32],
}

impl BusKey {
    pub fn of(relay: &Identity) -> BusKey {
        BusKey(blake3::derive_key(BUS_KEY_CONTEXT, &relay.secret_bytes()[..]))
    }

    /// Keyed BLAKE3 of the stream's name, the sealing time and the body:
    /// an entry of one stream does not open as one of the other.
    fn mac(&self, stream: &str, at: u64, body: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(stream.as_bytes()).update(&[0]).update(&at.to_be_bytes()).update(body);
        h.finalize()
    }

    fn seal<T: Serialize>(&self, stream: &str, at: u64, value: &T) -> Vec<u8> {
        let body = postcard::to_allocvec(value).expect("an entry encodes");
        let mac = *self.mac(stream, at, &body).as_bytes();
        postcard::to_allocvec(&Sealed { body, at, mac }).expect("an entry encodes")
    }

    /// The value sealed in `bytes` if it was sealed at most `max_age_ms`
    /// from `now` (either way: the sealing instance's clock may be ahead),
    /// or why not (a refusal reason for `/metrics`). `blake3::Hash`
    /// compares in constant time.
    fn open<T: DeserializeOwned>(
        &self,
        stream: &str,
        bytes: &[u8],
        now: u64,
        max_age_ms: u64,
    ) -> Result<T, &'static str> {
        let (sealed, rest): (Sealed, _) = postcard::take_from_bytes(bytes).map_err(|_| "bus_malformed")?;
        if !rest.is_empty() {
            return Err("bus_malformed");
        }
        if self.mac(stream, sealed.at, &sealed.body) != blake3::Hash::from(sealed.mac) {
            return Err("bus_forged");
        }
        if now.abs_diff(sealed.at) > max_age_ms {
            return Err("bus_stale");
        }
        // Sealed by an instance, yet not of this version's shape: another
        // version of festival-relay in the cluster.
        postcard::from_bytes(&sealed.body).map_err(|_| "bus_unreadable")
    }
}

/// The bytes an instance adds to [`ACCEPTED_STREAM`] at `now` (wall time,
/// ms) for an envelope it committed (`instance`: its name; `hops`: as it
/// came).
pub fn accepted_entry(key: &BusKey, now: u64, instance: &str, hops: u8, envelope: Vec<u8>) -> Vec<u8> {
    key.seal(ACCEPTED_STREAM, now, &Accepted { instance: instance.to_owned(), hops, envelope })
}

/// One envelope an instance accepted, as it travels in the stream.
#[derive(Serialize, Deserialize)]
struct Accepted {
    instance: String,
    hops: u8,
    envelope: Vec<u8>,
}

/// A word for one instance, on the signal stream.
#[derive(Serialize, Deserialize)]
struct ToInstance {
    instance: String,
    what: Word,
}

#[derive(Serialize, Deserialize)]
enum Word {
    /// An offer or answer for a node connected there.
    Signal { from: PeerId, to: PeerId, msg: Vec<u8> },
    /// A node connected there (its session on `link`) has opened a session
    /// elsewhere: close the old one (one session per identity in the
    /// cluster). Naming the session keeps a late word from closing a newer
    /// one of the same node.
    Replaced { peer: PeerId, link: u64 },
}

/// What the hub hands the cluster.
enum Out {
    Accepted(Vec<(Vec<u8>, u8)>),
    Signal { link: LinkId, from: PeerId, to: PeerId, msg: Vec<u8> },
    Arrived(PeerId, LinkId),
    Left(PeerId, LinkId),
}

/// The hub's handle on the cluster's tasks; they stop when it is dropped.
pub struct Cluster {
    out: Option<mpsc::Sender<Out>>,
    /// Arrivals and departures, apart: a flood of signals must not crowd
    /// them out (a lost departure would claim a node for good).
    presence: Option<mpsc::Sender<Out>>,
    metrics: Arc<Metrics>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The hub's queue for the cluster, held weakly (the hub holds it
/// strongly, and stops when its nodes and server are gone, whatever the
/// cluster's tasks are doing; they are aborted with it).
type Hub = mpsc::WeakSender<HubIn>;

async fn to_hub(hub: &Hub, msg: HubIn) -> bool {
    match hub.upgrade() {
        Some(tx) => tx.send(msg).await.is_ok(),
        None => false,
    }
}

impl Cluster {
    /// Start tailing `store` from `horizon` (taken before the engine read
    /// its state), and, with a Redis URL, the bus and signaling as
    /// `instance`, sealing and opening entries with `key`.
    pub fn start(
        store: PgStore,
        horizon: CommitCursor,
        bus: Option<(String, BusKey)>,
        instance: String,
        hub: &mpsc::Sender<HubIn>,
        metrics: Arc<Metrics>,
    ) -> Result<Cluster, redis::RedisError> {
        // It answered the horizon's query a moment ago.
        metrics.store_up.store(true, Relaxed);
        let _ = metrics.store.set(store.clone());
        let mut tasks = vec![tokio::spawn(tail(store, horizon, hub.downgrade(), metrics.clone()))];
        let (mut out, mut presence) = (None, None);
        if let Some((url, key)) = bus {
            let client = redis::Client::open(url.as_str())?;
            let (tx, rx) = mpsc::channel(OUT_QUEUE);
            let (ptx, prx) = mpsc::channel(PRESENCE_QUEUE);
            (out, presence) = (Some(tx), Some(ptx));
            let ctx = Ctx { client, instance, hub: hub.downgrade(), metrics: metrics.clone(), key };
            tasks.push(tokio::spawn(publish(ctx.clone(), rx, prx)));
            tasks.push(tokio::spawn(read_accepted(ctx.clone())));
            tasks.push(tokio::spawn(read_signals(ctx)));
        }
        Ok(Cluster { out, presence, metrics, tasks })
    }

    fn hand(&self, msg: Out) -> bool {
        let queue = if matches!(msg, Out::Arrived(..) | Out::Left(..)) { &self.presence } else { &self.out };
        match queue {
            Some(out) => match out.try_send(msg) {
                Ok(()) => true,
                Err(_) => {
                    self.metrics.cluster_out_dropped.fetch_add(1, Relaxed);
                    false
                }
            },
            None => false,
        }
    }

    /// Envelopes this instance newly committed: to the bus.
    pub fn accepted(&self, items: Vec<(Vec<u8>, u8)>) {
        if !items.is_empty() {
            self.hand(Out::Accepted(items));
        }
    }

    /// An offer or answer for a peer not connected here. `false`: there is
    /// no bus (or it is full), answer `Unreachable` now.
    pub fn signal(&self, link: LinkId, from: PeerId, to: PeerId, msg: Vec<u8>) -> bool {
        self.hand(Out::Signal { link, from, to, msg })
    }

    /// A node's session opened here, on `link`.
    pub fn arrived(&self, peer: PeerId, link: LinkId) {
        self.hand(Out::Arrived(peer, link));
    }

    /// That session closed.
    pub fn left(&self, peer: PeerId, link: LinkId) {
        self.hand(Out::Left(peer, link));
    }
}

/// One page of the store's tail after `cursor`: the engine is handed what
/// it may not have. The number of rows the page covered, and the cursor
/// after them; `None`: the hub is gone. While the bus runs, only the
/// envelopes the engine does not hold are read (see the module's doc).
async fn tail_page(
    store: &PgStore,
    cursor: &CommitCursor,
    bus_up: bool,
    hub: &Hub,
    metrics: &Metrics,
) -> festival_store::Result<Option<(usize, CommitCursor)>> {
    let (items, rows, next) = if bus_up {
        let (refs, next) = store.committed_refs_after(cursor, TAIL_PAGE).await?;
        let rows = refs.len();
        let mut items = Vec::new();
        if rows > 0 {
            let (reply, missing) = tokio::sync::oneshot::channel();
            if !to_hub(hub, HubIn::Missing { refs, reply }).await {
                return Ok(None);
            }
            let Ok(missing) = missing.await else { return Ok(None) };
            if !missing.is_empty() {
                items = store.committed_by_id(&missing).await?;
            }
        }
        (items, rows, next)
    } else {
        let (items, next) = store.committed_after(cursor, TAIL_PAGE).await?;
        let rows = items.len();
        (items, rows, next)
    };
    if !items.is_empty() {
        metrics.cluster_tail_read.fetch_add(items.len() as u64, Relaxed);
        if !to_hub(hub, HubIn::Committed { items }).await {
            return Ok(None);
        }
    }
    Ok(Some((rows, next)))
}

/// Read the shared store's committed order and hand the engine what it
/// may not have.
async fn tail(store: PgStore, mut cursor: CommitCursor, hub: Hub, metrics: Arc<Metrics>) {
    loop {
        let bus_up = metrics.bus_up.load(Relaxed);
        tokio::time::sleep(if bus_up { TAIL_EVERY } else { TAIL_EVERY_WITHOUT_BUS }).await;
        loop {
            match tail_page(&store, &cursor, metrics.bus_up.load(Relaxed), &hub, &metrics).await {
                Ok(None) => return,
                Ok(Some((rows, next))) => {
                    if !metrics.store_up.swap(true, Relaxed) {
                        tracing::info!("the shared store answers again");
                    }
                    cursor = next;
                    if rows < TAIL_PAGE as usize {
                        break;
                    }
                }
                Err(e) => {
                    // Said once, when it goes away; /healthz tells the rest.
                    if metrics.store_up.swap(false, Relaxed) {
                        tracing::warn!(%e, "the shared store is unreachable: nothing is acknowledged until it is back");
                    }
                    break;
                }
            }
        }
        if hub.upgrade().is_none() {
            return;
        }
    }
}

#[derive(Clone)]
struct Ctx {
    client: redis::Client,
    instance: String,
    hub: Hub,
    metrics: Arc<Metrics>,
    key: BusKey,
}

impl Ctx {
    /// The value sealed in a stream entry, if it opens and is at most
    /// `max_age_ms` old; a refusal is counted under its reason.
    fn open<T: DeserializeOwned>(&self, stream: &str, bytes: &[u8], max_age_ms: u64) -> Option<T> {
        self.key.open(stream, bytes, now_ms(), max_age_ms).inspect_err(|reason| self.metrics.reject(reason)).ok()
    }

    /// A connection that reconnects by itself; `blocking` ones wait on
    /// `BLOCK` reads, so they have no response timeout.
    async fn connect(&self, blocking: bool) -> ConnectionManager {
        let mut wait = BACKOFF_MIN;
        loop {
            let mut config = ConnectionManagerConfig::new().set_connection_timeout(Some(Duration::from_secs(2)));
            // A blocking read waits up to BLOCK_MS for entries; past that
            // and a margin the connection is taken for dead (a silent
            // partition), and remade.
            let timeout = if blocking { Duration::from_millis(BLOCK_MS as u64) } else { Duration::ZERO };
            config = config.set_response_timeout(Some(timeout + Duration::from_secs(2)));
            match self.client.get_connection_manager_with_config(config).await {
                Ok(c) => return c,
                Err(e) => {
                    self.down(&e);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// After a failed read: say the bus is down, wait (longer each time)
    /// and make a new blocking connection.
    async fn recover(&self, e: &redis::RedisError, wait: &mut Duration) -> ConnectionManager {
        self.down(e);
        tokio::time::sleep(*wait).await;
        *wait = (*wait * 2).min(BACKOFF_MAX);
        self.connect(true).await
    }

    fn down(&self, e: &redis::RedisError) {
        if self.metrics.bus_up.swap(false, Relaxed) {
            tracing::warn!(%e, "the cluster's bus is unreachable: fan-out by the store's tail");
        }
    }

    fn up(&self) {
        if !self.metrics.bus_up.swap(true, Relaxed) {
            tracing::info!(instance = %self.instance, "the cluster's bus is up");
        }
    }
}

fn presence_key(peer: &PeerId) -> String {
    format!("festival:at:{}", peer.to_hex())
}

/// A presence entry's value: the instance and the session's link there.
fn presence_value(instance: &str, link: LinkId) -> String {
    format!("{instance} {}", link.0)
}

/// (instance, link) of a presence value.
fn parse_presence(value: &str) -> Option<(&str, u64)> {
    let (instance, link) = value.rsplit_once(' ')?;
    Some((instance, link.parse().ok()?))
}

/// Extend a presence entry only while it is still this session's (another
/// instance may have taken the node since); write it again if it expired.
const REFRESH: &str = "local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if not v then return redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 0";

/// Remove a presence entry only if it is still this session's.
const FORGET: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// Add what the hub hands over to Redis: accepted envelopes, signals,
/// presence.
async fn publish(ctx: Ctx, mut rx: mpsc::Receiver<Out>, mut presence: mpsc::Receiver<Out>) {
    let mut conn = ctx.connect(false).await;
    let mut present: HashMap<PeerId, LinkId> = HashMap::new();
    let mut refresh = tokio::time::interval(PRESENCE_REFRESH);
    loop {
        let msg = tokio::select! {
            biased;
            m = presence.recv() => match m { Some(m) => m, None => return },
            m = rx.recv() => match m { Some(m) => m, None => return },
            _ = refresh.tick() => {
                if present.is_empty() {
                    continue;
                }
                let mut pipe = redis::pipe();
                for (peer, link) in &present {
                    pipe.cmd("EVAL")
                        .arg(REFRESH)
                        .arg(1)
                        .arg(presence_key(peer))
                        .arg(presence_value(&ctx.instance, *link))
                        .arg(PRESENCE_TTL.as_secs())
                        .ignore();
                }
                match pipe.query_async::<()>(&mut conn).await {
                    Ok(()) => ctx.up(),
                    Err(e) => ctx.down(&e),
                }
                continue;
            }
        };
        match msg {
            Out::Accepted(items) => {
                let mut pipe = redis::pipe();
                let now = now_ms();
                for (envelope, hops) in &items {
                    let bytes = accepted_entry(&ctx.key, now, &ctx.instance, *hops, envelope.clone());
                    pipe.cmd("XADD")
                        .arg(ACCEPTED_STREAM)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(STREAM_MAXLEN)
                        .arg("*")
                        .arg("m")
                        .arg(bytes)
                        .ignore();
                }
                match pipe.query_async::<()>(&mut conn).await {
                    Ok(()) => {
                        ctx.up();
                        ctx.metrics.cluster_published.fetch_add(items.len() as u64, Relaxed);
                    }
                    Err(e) => {
                        ctx.down(&e);
                        ctx.metrics.cluster_publish_failed.fetch_add(items.len() as u64, Relaxed);
                    }
                }
            }
            Out::Signal { link, from, to, msg } => {
                let at: redis::RedisResult<Option<String>> =
                    redis::cmd("GET").arg(presence_key(&to)).query_async(&mut conn).await;
                let there = at.as_ref().ok().and_then(|v| v.as_deref()).and_then(parse_presence);
                let sent = match (there, &at) {
                    (Some((instance, _)), _) if instance != ctx.instance => {
                        let word = ToInstance { instance: instance.to_owned(), what: Word::Signal { from, to, msg } };
                        tell(&ctx, &mut conn, &word).await
                    }
                    (_, Ok(_)) => false,
                    (_, Err(e)) => {
                        ctx.down(e);
                        false
                    }
                };
                if sent {
                    ctx.metrics.cluster_signals_out.fetch_add(1, Relaxed);
                } else if !to_hub(&ctx.hub, HubIn::Unreachable { link, to }).await {
                    return;
                }
            }
            Out::Arrived(peer, link) => {
                present.insert(peer, link);
                // SET .. GET: where it was before, if anywhere.
                let before: redis::RedisResult<Option<String>> = redis::cmd("SET")
                    .arg(presence_key(&peer))
                    .arg(presence_value(&ctx.instance, link))
                    .arg("EX")
                    .arg(PRESENCE_TTL.as_secs())
                    .arg("GET")
                    .query_async(&mut conn)
                    .await;
                match before {
                    Ok(Some(value)) => match parse_presence(&value) {
                        Some((instance, old)) if instance != ctx.instance => {
                            let word =
                                ToInstance { instance: instance.to_owned(), what: Word::Replaced { peer, link: old } };
                            tell(&ctx, &mut conn, &word).await;
                        }
                        _ => {}
                    },
                    Ok(None) => {}
                    Err(e) => ctx.down(&e),
                }
            }
            Out::Left(peer, link) => {
                if present.get(&peer) == Some(&link) {
                    present.remove(&peer);
                }
                let forgot: redis::RedisResult<i64> = redis::cmd("EVAL")
                    .arg(FORGET)
                    .arg(1)
                    .arg(presence_key(&peer))
                    .arg(presence_value(&ctx.instance, link))
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = forgot {
                    ctx.down(&e);
                }
            }
        }
    }
}

/// Add a word for another instance to the signal stream; whether it went.
async fn tell(ctx: &Ctx, conn: &mut ConnectionManager, word: &ToInstance) -> bool {
    let bytes = ctx.key.seal(SIGNAL_STREAM, now_ms(), word);
    let added: redis::RedisResult<String> = redis::cmd("XADD")
        .arg(SIGNAL_STREAM)
        .arg("MAXLEN")
        .arg("~")
        .arg(SIGNAL_MAXLEN)
        .arg("*")
        .arg("m")
        .arg(bytes)
        .query_async(conn)
        .await;
    added.inspect_err(|e| ctx.down(e)).is_ok()
}

/// `XREAD` (or, with a group and consumer, `XREADGROUP .. NOACK`) of one
/// stream from `from`, blocking up to [`BLOCK_MS`].
fn read_cmd(group: Option<(&str, &str)>, stream: &str, from: &str) -> redis::Cmd {
    let mut cmd = match group {
        Some((group, consumer)) => {
            let mut c = redis::cmd("XREADGROUP");
            c.arg("GROUP").arg(group).arg(consumer);
            c
        }
        None => redis::cmd("XREAD"),
    };
    cmd.arg("COUNT").arg(READ_COUNT).arg("BLOCK").arg(BLOCK_MS);
    if group.is_some() {
        cmd.arg("NOACK");
    }
    cmd.arg("STREAMS").arg(stream).arg(from);
    cmd
}

/// Entries of one stream read: (entry id, the `m` field's bytes).
fn entries(reply: Option<StreamReadReply>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for key in reply.map(|r| r.keys).unwrap_or_default() {
        for entry in key.ids {
            let bytes = match entry.map.get("m") {
                Some(redis::Value::BulkString(b)) => b.clone(),
                _ => Vec::new(),
            };
            out.push((entry.id, bytes));
        }
    }
    out
}

/// Read the accepted stream through this instance's consumer group and
/// hand the engine what other instances accepted.
async fn read_accepted(ctx: Ctx) {
    let group = ctx.instance.clone();
    let mut wait = BACKOFF_MIN;
    let mut conn = ctx.connect(true).await;
    'connected: loop {
        // The group starts at the stream's end the first time ("$"); after
        // that it keeps its place in Redis across our restarts.
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(ACCEPTED_STREAM)
            .arg(&group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                ctx.down(&e);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF_MAX);
                continue;
            }
        }
        ctx.up();
        wait = BACKOFF_MIN;
        let mut lag_at = tokio::time::Instant::now();
        loop {
            let read = read_cmd(Some((&group, &ctx.instance)), ACCEPTED_STREAM, ">").query_async(&mut conn).await;
            let got = match read {
                Ok(reply) => entries(reply),
                Err(e) => {
                    // NOGROUP (Redis lost the stream), Redis away or a
                    // connection gone silent: a new connection, and the
                    // group made again once Redis answers.
                    conn = ctx.recover(&e, &mut wait).await;
                    continue 'connected;
                }
            };
            ctx.up();
            let mut items = Vec::new();
            for (_, bytes) in got {
                // Sealed by an instance after its commit (see `BusKey`):
                // its bytes are those an instance verified before storing
                // them, so they are not verified again, which would cost
                // every instance a signature check for every message of
                // the cluster. One that does not open is no proof of
                // anything (the store's tail brings what was committed).
                let Some(entry) = ctx.open::<Accepted>(ACCEPTED_STREAM, &bytes, ACCEPTED_MAX_AGE_MS) else { continue };
                if entry.instance == ctx.instance {
                    continue;
                }
                match SignedEnvelope::from_stored(&entry.envelope) {
                    Ok(env) => items.push((env, entry.hops)),
                    Err(_) => ctx.metrics.reject("bus_invalid_envelope"),
                }
            }
            ctx.metrics.cluster_bus_received.fetch_add(items.len() as u64, Relaxed);
            if !items.is_empty() && !to_hub(&ctx.hub, HubIn::Committed { items }).await {
                return;
            }
            if lag_at.elapsed() >= LAG_EVERY {
                lag_at = tokio::time::Instant::now();
                if let Some(lag) = group_lag(&mut conn, &group).await {
                    ctx.metrics.cluster_stream_lag.store(lag, Relaxed);
                }
            }
        }
    }
}

/// Entries of the accepted stream this instance's group has not read yet
/// (`XINFO GROUPS`' `lag`, Redis 7).
async fn group_lag(conn: &mut ConnectionManager, group: &str) -> Option<i64> {
    let groups: Vec<std::collections::HashMap<String, redis::Value>> =
        redis::cmd("XINFO").arg("GROUPS").arg(ACCEPTED_STREAM).query_async(conn).await.ok()?;
    let ours = groups
        .into_iter()
        .find(|g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == group.as_bytes()))?;
    match ours.get("lag") {
        Some(redis::Value::Int(n)) => Some(*n),
        _ => None,
    }
}

/// Read the signal stream from its end and hand over what names this
/// instance.
async fn read_signals(ctx: Ctx) {
    let mut conn = ctx.connect(true).await;
    let mut wait = BACKOFF_MIN;
    // From the last entry now there ("$" in every read would miss what is
    // added between two reads).
    let mut from = loop {
        let last: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XREVRANGE")
            .arg(SIGNAL_STREAM)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await;
        match last {
            Ok(r) => break r.ids.first().map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
            Err(e) => {
                ctx.down(&e);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF_MAX);
            }
        }
    };
    loop {
        let got = match read_cmd(None, SIGNAL_STREAM, &from).query_async(&mut conn).await {
            Ok(reply) => entries(reply),
            Err(e) => {
                conn = ctx.recover(&e, &mut wait).await;
                continue;
            }
        };
        wait = BACKOFF_MIN;
        for (id, bytes) in got {
            from = id;
            let Some(word) = ctx.open::<ToInstance>(SIGNAL_STREAM, &bytes, SIGNAL_MAX_AGE_MS) else { continue };
            if word.instance != ctx.instance {
                continue;
            }
            let msg = match word.what {
                Word::Signal { from, to, msg } => {
                    ctx.metrics.cluster_signals_in.fetch_add(1, Relaxed);
                    HubIn::RemoteSignal { from, to, msg }
                }
                Word::Replaced { peer, link } => HubIn::Replaced { peer, link: LinkId(link) },
            };
            if !to_hub(&ctx.hub, msg).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BusKey {
        BusKey::of(&Identity::generate(&mut rand_core::OsRng))
    }

    fn entry(instance: &str) -> Accepted {
        Accepted { instance: instance.to_owned(), hops: 3, envelope: vec![7; 40] }
    }

    const NOW: u64 = 1_790_000_000_000;

    fn open(k: &BusKey, stream: &str, bytes: &[u8]) -> Result<Accepted, &'static str> {
        k.open(stream, bytes, NOW, ACCEPTED_MAX_AGE_MS)
    }

    #[test]
    fn an_entry_opens_with_the_key_it_was_sealed_with_and_no_other() {
        let (k, other) = (key(), key());
        let bytes = k.seal(ACCEPTED_STREAM, NOW, &entry("one"));
        let opened = open(&k, ACCEPTED_STREAM, &bytes).expect("opens");
        assert_eq!((opened.instance.as_str(), opened.hops, opened.envelope), ("one", 3, vec![7; 40]));
        assert_eq!(open(&other, ACCEPTED_STREAM, &bytes).err(), Some("bus_forged"));
        // Not as an entry of the other stream either.
        assert_eq!(open(&k, SIGNAL_STREAM, &bytes).err(), Some("bus_forged"));
        // The same relay's key on another instance: the same key.
        let relay = Identity::generate(&mut rand_core::OsRng);
        let again = Identity::from_secret_bytes(&relay.secret_bytes());
        let sealed = accepted_entry(&BusKey::of(&relay), NOW, "two", 0, vec![1, 2, 3]);
        assert!(open(&BusKey::of(&again), ACCEPTED_STREAM, &sealed).is_ok());
    }

    #[test]
    fn a_changed_byte_anywhere_is_refused() {
        let k = key();
        let bytes = k.seal(ACCEPTED_STREAM, NOW, &entry("one"));
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            let refused = open(&k, ACCEPTED_STREAM, &changed).err();
            assert!(matches!(refused, Some("bus_forged" | "bus_malformed")), "byte {i}: {refused:?}");
        }
        // A byte added at the end.
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(open(&k, ACCEPTED_STREAM, &longer).err(), Some("bus_malformed"));
        // An entry written without a seal (the format before it).
        let plain = postcard::to_allocvec(&entry("one")).unwrap();
        assert!(open(&k, ACCEPTED_STREAM, &plain).is_err());
        assert_eq!(open(&k, ACCEPTED_STREAM, b"").err(), Some("bus_malformed"));
        // Sealed by an instance but not an entry of this shape.
        let other_shape = k.seal(ACCEPTED_STREAM, NOW, &(1u8,));
        assert_eq!(open(&k, ACCEPTED_STREAM, &other_shape).err(), Some("bus_unreadable"));
    }

    /// A replay is refused once the entry is older than its stream allows,
    /// by either clock; a fresh one is not.
    #[test]
    fn an_entry_is_believed_only_while_it_is_fresh() {
        let k = key();
        let at = |t| k.seal(ACCEPTED_STREAM, t, &entry("one"));
        assert!(open(&k, ACCEPTED_STREAM, &at(NOW - ACCEPTED_MAX_AGE_MS)).is_ok());
        assert_eq!(open(&k, ACCEPTED_STREAM, &at(NOW - ACCEPTED_MAX_AGE_MS - 1)).err(), Some("bus_stale"));
        assert_eq!(open(&k, ACCEPTED_STREAM, &at(NOW + ACCEPTED_MAX_AGE_MS + 1)).err(), Some("bus_stale"));
        let word =
            ToInstance { instance: "two".into(), what: Word::Replaced { peer: PeerId::from_bytes([1; 32]), link: 9 } };
        let sealed = k.seal(SIGNAL_STREAM, NOW - SIGNAL_MAX_AGE_MS - 1, &word);
        assert_eq!(k.open::<ToInstance>(SIGNAL_STREAM, &sealed, NOW, SIGNAL_MAX_AGE_MS).err(), Some("bus_stale"));
        // The time is under the seal: changing it is a forgery.
        let mut moved: Sealed = postcard::from_bytes(&sealed).unwrap();
        moved.at = NOW;
        let moved = postcard::to_allocvec(&moved).unwrap();
        assert_eq!(k.open::<ToInstance>(SIGNAL_STREAM, &moved, NOW, SIGNAL_MAX_AGE_MS).err(), Some("bus_forged"));
    }
}
