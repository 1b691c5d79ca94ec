//! `festival-bench lan`: the LAN transport and real nodes, measured inside
//! network namespaces this benchmark creates (it re-runs itself under
//! `unshare --net`; needs root).
//!
//! - data channel (two str0m endpoints on loopback, in one process): setup
//!   time (offer to open on both sides), one-hop latency (half the round trip
//!   of 200-byte messages), throughput for 200-byte and 64 KiB messages;
//!   an announcement's latency through a channel busy with room traffic; a
//!   256 KiB photo's one-hop transfer and the latency of texts sent while
//!   photos are in flight;
//! - `festival-node run` processes: start of a process to its first message
//!   delivered on a 2-host LAN (ip netns hosts on a bridge); CPU and RSS of
//!   idle nodes with 5 peers each.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use festival_node::runtime::sendq::{Admit, SendQueue};
use festival_node::webrtc::driver::{receive_ready, send_transmits, DATAGRAM_BUF};
use festival_node::webrtc::{ConnId, Endpoint, EndpointConfig, EndpointEvent};
use serde_json::{json, Value};
use tokio::net::UdpSocket;

use crate::netlab;
use crate::procstat::{cpu_ticks, percentile, rss_mb, TICKS_PER_SEC};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 20)]
    setups: usize,
    #[arg(long, default_value_t = 5_000)]
    rtt_samples: usize,
    #[arg(long, default_value_t = 200_000)]
    small_messages: usize,
    #[arg(long, default_value_t = 2_000)]
    large_messages: usize,
    /// Room messages a second offered on the busy channel an announcement
    /// crosses (`announce_p99_ms_under_load`).
    #[arg(long, default_value_t = 10_000)]
    busy_rate: u32,
    #[arg(long, default_value_t = 5)]
    busy_secs: u64,
    /// Photos of `--photo-bytes` sent one after another, each as soon as
    /// the last came whole, while texts go every `--photo-text-every-ms`
    /// (`photo_ms`, `text_p99_ms_during_photo`).
    #[arg(long, default_value_t = 30)]
    photos: usize,
    #[arg(long, default_value_t = festival_core::photo::MAX_PHOTO_BYTES)]
    photo_bytes: usize,
    #[arg(long, default_value_t = 1)]
    photo_text_every_ms: u64,
    #[arg(long, default_value_t = 5)]
    start_runs: usize,
    #[arg(long, default_value_t = 5)]
    idle_peers: usize,
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
}

pub fn run(a: Args) -> anyhow::Result<Value> {
    if !festival_node::netns::in_private_netns() {
        return Ok(serde_json::from_str(&netlab::rerun_in_private_netns(netlab::LAN_SETUP)?)?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let transport = rt.block_on(transport(&a))?;
    let node = node_binary()?;
    let (start, start_max) = start_to_first_message(&node, a.start_runs)?;
    let (cpu, rss) = idle(&node, a.idle_peers, a.idle_secs)?;
    let mut out = transport;
    out["start_to_first_msg_ms"] = json!(start);
    out["start_to_first_msg_max_ms"] = json!(start_max);
    out["start_runs"] = json!(a.start_runs);
    out["idle_cpu_pct"] = json!((cpu * 1000.0).round() / 1000.0);
    out["idle_rss_mb"] = json!((rss * 10.0).round() / 10.0);
    out["idle_peers"] = json!(a.idle_peers);
    out["idle_secs"] = json!(a.idle_secs);
    Ok(out)
}

pub(crate) struct Side {
    pub(crate) ep: Endpoint,
    sock: UdpSocket,
    buf: Vec<u8>,
}

pub(crate) async fn side() -> anyhow::Result<Side> {
    let sock = festival_node::webrtc::driver::bind_udp("127.0.0.1:0".parse()?)?;
    let ep = Endpoint::new(EndpointConfig { local_addrs: vec![sock.local_addr()?], ..EndpointConfig::default() })?;
    Ok(Side { ep, sock, buf: vec![0; DATAGRAM_BUF] })
}

/// Move datagrams both ways once (waiting at most `wait` for any); returns
/// each side's events.
pub(crate) async fn step(
    x: &mut Side,
    y: &mut Side,
    wait: Duration,
) -> anyhow::Result<(Vec<EndpointEvent>, Vec<EndpointEvent>)> {
    let mut ex = send_transmits(&x.sock, x.ep.poll(Instant::now())).await;
    let mut ey = send_transmits(&y.sock, y.ep.poll(Instant::now())).await;
    if ex.is_empty() && ey.is_empty() {
        let now = Instant::now();
        let due = [x.ep.next_timeout(), y.ep.next_timeout()].into_iter().flatten().min().unwrap_or(now + wait);
        let until = due.min(now + wait);
        tokio::select! {
            _ = x.sock.readable() => {}
            _ = y.sock.readable() => {}
            _ = tokio::time::sleep_until(until.into()) => {}
        }
    }
    receive_ready(&mut x.ep, &x.sock, &mut x.buf)?;
    receive_ready(&mut y.ep, &y.sock, &mut y.buf)?;
    ex.extend(send_transmits(&x.sock, x.ep.poll(Instant::now())).await);
    ey.extend(send_transmits(&y.sock, y.ep.poll(Instant::now())).await);
    Ok((ex, ey))
}

/// Offer, answer, and datagrams both ways until the data channel `conn` is
/// open on both sides; returns how long that took.
pub(crate) async fn open_channel(x: &mut Side, y: &mut Side, conn: ConnId) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let offer = x.ep.create_offer(conn, Instant::now())?;
    let answer = y.ep.accept_offer(conn, &offer, Instant::now())?;
    x.ep.accept_answer(conn, &answer, Instant::now())?;
    let (mut ox, mut oy) = (false, false);
    while !(ox && oy) {
        ensure!(t.elapsed() < Duration::from_secs(10), "channel did not open");
        let (ex, ey) = step(x, y, Duration::from_millis(50)).await?;
        ox |= ex.contains(&EndpointEvent::Open(conn));
        oy |= ey.contains(&EndpointEvent::Open(conn));
    }
    Ok(t.elapsed())
}

async fn transport(a: &Args) -> anyhow::Result<Value> {
    let (mut x, mut y) = (side().await?, side().await?);
    let mut setups = Vec::new();
    let mut conn = ConnId(0);
    for i in 0..a.setups.max(1) {
        conn = ConnId(i as u64 + 1);
        setups.push(open_channel(&mut x, &mut y, conn).await?.as_secs_f64() * 1000.0);
        if i + 1 < a.setups {
            x.ep.close(conn)?;
            y.ep.close(conn)?;
        }
    }

    // Round trips of 200-byte messages: y echoes what it gets.
    let msg = vec![7u8; 200];
    let mut rtts = Vec::with_capacity(a.rtt_samples);
    for _ in 0..a.rtt_samples {
        let t = Instant::now();
        x.ep.send(conn, &msg)?;
        'wait: loop {
            let (ex, ey) = step(&mut x, &mut y, Duration::from_millis(50)).await?;
            for e in ey {
                if let EndpointEvent::Data(c, d) = e {
                    y.ep.send(c, &d)?;
                }
            }
            if ex.iter().any(|e| matches!(e, EndpointEvent::Data(..))) {
                break 'wait;
            }
            ensure!(t.elapsed() < Duration::from_secs(5), "echo lost");
        }
        rtts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut one_way: Vec<f64> = rtts.iter().map(|r| r / 2.0).collect();

    let (msgs_per_s, x, y) = throughput(x, y, conn, 200, a.small_messages).await?;
    let (large_per_s, x, y) = throughput(x, y, conn, 64 * 1024, a.large_messages).await?;
    let busy = announce_under_load(x, y, conn, a.busy_rate, a.busy_secs).await?;
    let photos = photos_and_texts(a).await?;
    let mut out = json!({
        "bench": "lan",
        "setup_ms": percentile(&mut setups, 0.5),
        "setup_p99_ms": percentile(&mut setups, 0.99),
        "latency_p50_ms": percentile(&mut one_way, 0.5),
        "latency_p99_ms": percentile(&mut one_way, 0.99),
        "rtt_p50_ms": percentile(&mut rtts, 0.5),
        "rtt_p99_ms": percentile(&mut rtts, 0.99),
        "msgs_per_s": msgs_per_s.round(),
        "mb_per_s": (large_per_s * 65_536.0 / 1e6 * 10.0).round() / 10.0,
    });
    for (k, v) in busy.as_object().into_iter().chain(photos.as_object()).flatten() {
        out[k] = v.clone();
    }
    Ok(out)
}

/// How often the organiser's node has an announcement to send, in the busy
/// channel measurement.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(20);

/// An announcement's latency across a data channel busy with room traffic:
/// the sender offers `rate` room pushes a second (another author's message
/// passed on, priority `Room`) for `secs`, and an announcement push (the
/// organiser's, priority `Control`) every [`ANNOUNCE_EVERY`], all through
/// the send queue a node's direct link uses (`runtime::sendq`): what waits
/// for the channel goes most urgent first, and a full class drops (sync
/// repairs it). Latency runs from the offer to the receiver's event (one
/// process, one clock); the room traffic's own delivery rate and drops are
/// reported beside it.
async fn announce_under_load(x: Side, y: Side, conn: ConnId, rate: u32, secs: u64) -> anyhow::Result<Value> {
    use festival_core::body::{AnnouncementBody, Body};
    use festival_core::envelope::{Draft, Kind, SignedEnvelope};
    use festival_core::frame::{Frame, Item, Priority};
    use festival_core::{Identity, RoomId};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let now_ms = festival_node::clock::now_ms();
    let (crowd, organiser) = (Identity::generate(&mut rand::rngs::OsRng), Identity::generate(&mut rand::rngs::OsRng));
    let text = Body::Text(format!("the crowd talks: {}", "x".repeat(200)));
    let draft =
        Draft { seq: 1, room: "main-stage".parse()?, kind: Kind::Text, created_at: now_ms, body: text.encode() };
    let room_env = SignedEnvelope::sign(&crowd, draft)?;
    let room_frame = Frame::Push(Item { hops: 3, envelope: room_env.bytes().to_vec() }).encode();
    let total = (Duration::from_secs(secs).as_millis() / ANNOUNCE_EVERY.as_millis()).max(1) as usize;
    let mut announcements = Vec::with_capacity(total);
    for i in 0..total {
        let body = Body::Announcement(AnnouncementBody { text: format!("notice {i}"), until: now_ms + 3_600_000 });
        let draft = Draft {
            seq: i as u64 + 1,
            room: RoomId::announcements(),
            kind: Kind::Announcement,
            created_at: now_ms,
            body: body.encode(),
        };
        let env = SignedEnvelope::sign(&organiser, draft)?;
        announcements.push(Frame::Push(Item { hops: 1, envelope: env.bytes().to_vec() }).encode());
    }
    ensure!(Frame::priority(&announcements[0]) == Priority::Control && Frame::priority(&room_frame) == Priority::Room);
    let offered: Arc<Mutex<HashMap<Vec<u8>, Instant>>> = Arc::default();
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let drops = dropped.clone();

    let t0 = Instant::now();
    let seen = offered.clone();
    let receiver = tokio::spawn(async move {
        let (mut latencies, mut room) = (Vec::with_capacity(total), 0u64);
        let y = drive(y, |_, e| {
            if let EndpointEvent::Data(_, d) = e {
                if Frame::priority(&d) == Priority::Control {
                    if let Some(at) = seen.lock().expect("offers").get(&d[..]) {
                        latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                    }
                } else {
                    room += 1;
                }
            }
            latencies.len() >= total
        })
        .await?;
        anyhow::Ok((y, latencies, room, t0.elapsed()))
    });
    let sender = tokio::spawn(async move {
        let mut x = x;
        let mut q = SendQueue::default();
        let (mut room_offered, mut next) = (0u64, 0usize);
        let busy = Duration::from_secs(secs);
        loop {
            let elapsed = t0.elapsed();
            if elapsed < busy {
                let due = (elapsed.as_secs_f64() * f64::from(rate)) as u64;
                while room_offered < due {
                    room_offered += 1;
                    if !offer(&mut x, &mut q, conn, room_frame.clone())? {
                        drops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            let due = ((elapsed.as_millis() / ANNOUNCE_EVERY.as_millis()) as usize + 1).min(total);
            while next < due {
                offered.lock().expect("offers").insert(announcements[next].clone(), Instant::now());
                ensure!(offer(&mut x, &mut q, conn, announcements[next].clone())?, "an announcement was dropped");
                next += 1;
            }
            while q.front().is_some_and(|f| room_for(&mut x.ep, conn, f)) {
                let f = q.pop_front().expect("a front");
                x.ep.send(conn, &f)?;
            }
            let _ = send_transmits(&x.sock, x.ep.poll(Instant::now())).await;
            if next >= total && elapsed >= busy && q.front().is_none() {
                // Keep the channel served until the receiver has all.
                if elapsed > busy + Duration::from_secs(30) {
                    return anyhow::Ok(x);
                }
            }
            wait_and_receive(&mut x, Duration::from_millis(1)).await?;
        }
    });
    let (_y, mut latencies, room, elapsed) =
        tokio::time::timeout(Duration::from_secs(secs + 60), receiver).await.context("announcements stalled")???;
    sender.abort();
    let _ = sender.await;
    let offered_room = u64::from(rate) * secs;
    Ok(json!({
        "announce_p50_ms_under_load": percentile(&mut latencies, 0.5),
        "announce_p99_ms_under_load": percentile(&mut latencies, 0.99),
        "announcements_under_load": latencies.len(),
        "busy_room_msgs_per_s_offered": rate,
        "busy_room_msgs_per_s_delivered": (room as f64 / elapsed.as_secs_f64()).round(),
        "busy_room_msgs_offered": offered_room,
        "busy_room_msgs_dropped": dropped.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

/// Bytes of the stand-in thumbnail a photo's header carries (a real one,
/// 200 px on its longest side, is a few KiB; at most 12).
const THUMB_BYTES: usize = 8 * 1024;

/// A photo's transfer and the latency of text beside it, one hop between two
/// nodes on loopback: a fresh data channel, the sender one node's direct
/// link (its send queue, `runtime::sendq`, in front of the endpoint, as in
/// [`announce_under_load`]). The sender sends `--photos` photos of
/// `--photo-bytes` one after another, each as soon as the receiver holds the
/// last whole, while it sends a text of its own every
/// `--photo-text-every-ms`; then, on another fresh channel, as many texts
/// without photos (the baseline).
async fn photos_and_texts(a: &Args) -> anyhow::Result<Value> {
    let every = Duration::from_millis(a.photo_text_every_ms.max(1));
    let mut with = photo_run(a.photos.max(1), a.photo_bytes, every, None).await?;
    let mut without = photo_run(0, a.photo_bytes, every, Some(with.texts)).await?;
    without.during.append(&mut without.outside);
    Ok(json!({
        "photos": with.photo_ms.len(),
        "photo_bytes": a.photo_bytes,
        "photo_ms": percentile(&mut with.photo_ms, 0.5),
        "photo_max_ms": percentile(&mut with.photo_ms, 1.0),
        "texts_during_photo": with.during.len(),
        "text_p50_ms_during_photo": percentile(&mut with.during, 0.5),
        "text_p99_ms_during_photo": percentile(&mut with.during, 0.99),
        "texts_no_photo": without.during.len(),
        "text_p50_ms_no_photo": percentile(&mut without.during, 0.5),
        "text_p99_ms_no_photo": percentile(&mut without.during, 0.99),
    }))
}

/// What one run of [`photo_run`] measured, in ms.
struct PhotoRun {
    /// Per photo: from the send (signing its header and chunks included) to
    /// the receiver holding the whole JPEG (verified, put together, hash
    /// checked).
    photo_ms: Vec<f64>,
    /// One-hop latencies of the texts offered while a photo was in flight
    /// (sent, not yet whole at the receiver), and of the others.
    during: Vec<f64>,
    outside: Vec<f64>,
    /// Texts sent.
    texts: usize,
}

/// A text offered: when, and whether a photo was in flight then.
struct Offered {
    at: Instant,
    during_photo: bool,
}

/// `photos` photos one after another beside a text every `every` (and one
/// right behind each photo), until the last photo is whole (or, with no
/// photos, `texts` texts). The receiver decodes and verifies every
/// envelope, as a node does before it stores one, and puts each photo
/// together with [`festival_core::photo::assemble`].
async fn photo_run(
    photos: usize,
    photo_bytes: usize,
    every: Duration,
    texts: Option<usize>,
) -> anyhow::Result<PhotoRun> {
    use festival_core::body::Body;
    use festival_core::envelope::{Draft, Kind, SignedEnvelope};
    use festival_core::frame::{Frame, Item, Priority};
    use festival_core::photo::{self, PhotoChunkBody, MAX_PHOTO_BYTES};
    use festival_core::{Identity, RoomId};
    use std::collections::{BTreeMap, HashMap};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};

    ensure!((64..=MAX_PHOTO_BYTES).contains(&photo_bytes), "--photo-bytes: 64 to {MAX_PHOTO_BYTES}");
    let (mut x, mut y) = (side().await?, side().await?);
    let conn = ConnId(1);
    open_channel(&mut x, &mut y, conn).await?;

    let (jpeg, thumb) = (stand_in_jpeg(photo_bytes, 1600, 1200), stand_in_jpeg(THUMB_BYTES, 200, 150));
    let me = Identity::generate(&mut rand::rngs::OsRng);
    let room: RoomId = "main-stage".parse()?;
    let sign = move |seq: u64, body: Body| -> anyhow::Result<SignedEnvelope> {
        let created_at = festival_node::clock::now_ms();
        Ok(SignedEnvelope::sign(
            &me,
            Draft { seq, room: room.clone(), kind: body.kind(), created_at, body: body.encode() },
        )?)
    };
    // Our own message's push: hops 1.
    let push = |env: &SignedEnvelope| Frame::Push(Item { hops: 1, envelope: env.bytes().to_vec() }).encode();

    let offered: Arc<Mutex<HashMap<u64, Offered>>> = Arc::default();
    let started: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let (completed, texts_offered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // `done`: the last text is offered; `over`: the receiver has stopped.
    let (done, over) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));

    let receiver = {
        let (offered, started, completed, texts_offered, done, over) =
            (offered.clone(), started.clone(), completed.clone(), texts_offered.clone(), done.clone(), over.clone());
        tokio::spawn(async move {
            let mut run = PhotoRun { photo_ms: Vec::new(), during: Vec::new(), outside: Vec::new(), texts: 0 };
            let (mut headers, mut chunks) = (Vec::<SignedEnvelope>::new(), BTreeMap::<u64, SignedEnvelope>::new());
            let mut failure = None;
            let mut take = |d: &[u8], run: &mut PhotoRun| -> anyhow::Result<()> {
                let Frame::Push(item) = Frame::decode(d)? else { bail!("not a push") };
                let env = SignedEnvelope::decode(&item.envelope)?;
                match env.kind() {
                    Kind::Text => {
                        let o = offered.lock().expect("offers").remove(&env.seq()).context("a text not offered")?;
                        let ms = o.at.elapsed().as_secs_f64() * 1000.0;
                        if o.during_photo {
                            run.during.push(ms)
                        } else {
                            run.outside.push(ms)
                        }
                        run.texts += 1;
                        return Ok(());
                    }
                    Kind::Photo => headers.push(env),
                    Kind::PhotoChunk => {
                        chunks.insert(env.seq(), env);
                    }
                    k => bail!("unexpected {k:?}"),
                }
                // A photo is whole once the chunks at the seqs after its
                // header are all here.
                let mut i = 0;
                while i < headers.len() {
                    let h = &headers[i];
                    let Body::Photo(p) = h.parsed_body() else { bail!("a header") };
                    let range = h.seq() + 1..=h.seq() + p.chunks() as u64;
                    if !range.clone().all(|s| chunks.contains_key(&s)) {
                        i += 1;
                        continue;
                    }
                    let following: Vec<SignedEnvelope> = range.map(|s| chunks.remove(&s).expect("a chunk")).collect();
                    let whole = photo::assemble(h, &following)?;
                    ensure!(whole.len() == p.size as usize);
                    let at = started.lock().expect("starts").remove(&h.seq()).context("a photo not sent")?;
                    run.photo_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                    completed.fetch_add(1, SeqCst);
                    headers.swap_remove(i);
                }
                Ok(())
            };
            let y = drive(y, |_, e| {
                if let EndpointEvent::Data(_, d) = e {
                    if let Err(e) = take(&d, &mut run) {
                        failure = Some(e);
                        return true;
                    }
                }
                // `done` is set before the last text is offered: its
                // arrival (or a later one) ends the run.
                done.load(SeqCst) && run.texts == texts_offered.load(SeqCst) && completed.load(SeqCst) >= photos
            })
            .await;
            over.store(true, SeqCst);
            if let Some(e) = failure {
                return Err(e);
            }
            anyhow::Ok((y?, run))
        })
    };
    let sender = tokio::spawn(async move {
        let mut x = x;
        let mut q = SendQueue::default();
        let (mut seq, mut sent, mut photos_sent) = (0u64, 0usize, 0usize);
        let t0 = Instant::now();
        while !over.load(SeqCst) {
            if !done.load(SeqCst) {
                // The next photo once the last is whole, and a text right
                // behind it (so that every photo has one, however fast).
                let mut behind = false;
                if photos_sent < photos && photos_sent == completed.load(SeqCst) {
                    let t = Instant::now();
                    let cut = photo::cut(&jpeg, 1600, 1200, "the main stage at dusk".into(), thumb.clone())?;
                    let header_seq = seq + 1;
                    let header = sign(header_seq, Body::Photo(cut.header))?;
                    let mut frames = vec![push(&header)];
                    for (i, data) in cut.chunks.into_iter().enumerate() {
                        let chunk = PhotoChunkBody { photo: header.id(), index: i as u16, data };
                        frames.push(push(&sign(header_seq + 1 + i as u64, Body::PhotoChunk(chunk))?));
                    }
                    ensure!(frames[1..].iter().all(|f| Frame::priority(f) == Priority::Bulk));
                    seq += frames.len() as u64;
                    started.lock().expect("starts").insert(header_seq, t);
                    for f in frames {
                        ensure!(offer(&mut x, &mut q, conn, f)?, "a photo's frame was dropped");
                    }
                    photos_sent += 1;
                    behind = true;
                }
                let due = (t0.elapsed().as_nanos() / every.as_nanos()) as usize + 1;
                while sent < due || behind {
                    behind = false;
                    let last = match texts {
                        Some(n) => sent + 1 >= n,
                        None => completed.load(SeqCst) >= photos,
                    };
                    if last {
                        done.store(true, SeqCst);
                    }
                    seq += 1;
                    let frame = push(&sign(seq, Body::Text(format!("text {sent}: {}", "x".repeat(180))))?);
                    ensure!(Frame::priority(&frame) == Priority::Direct);
                    let during_photo = photos_sent > completed.load(SeqCst);
                    offered.lock().expect("offers").insert(seq, Offered { at: Instant::now(), during_photo });
                    texts_offered.fetch_add(1, SeqCst);
                    ensure!(offer(&mut x, &mut q, conn, frame)?, "a text was dropped");
                    sent += 1;
                    if last {
                        break;
                    }
                }
            }
            while q.front().is_some_and(|f| room_for(&mut x.ep, conn, f)) {
                let f = q.pop_front().expect("a front");
                x.ep.send(conn, &f)?;
            }
            let _ = send_transmits(&x.sock, x.ep.poll(Instant::now())).await;
            wait_and_receive(&mut x, Duration::from_millis(1)).await?;
        }
        anyhow::Ok(())
    });
    let joined = async { tokio::try_join!(joined(receiver), joined(sender)) };
    let ((_y, run), ()) = tokio::time::timeout(Duration::from_secs(120), joined).await.context("photos stalled")??;
    Ok(run)
}

/// A task's outcome, its panic or cancellation an error.
async fn joined<T>(task: tokio::task::JoinHandle<anyhow::Result<T>>) -> anyhow::Result<T> {
    task.await?
}

/// A stand-in JPEG of `len` bytes: start of image, a baseline frame header
/// saying `width` x `height`, then noise (a camera's JPEG is as
/// incompressible). It passes what the protocol checks of a photo and its
/// thumbnail; no decoder could show it: picture preparation
/// (festival-photo) is not what the lan bench measures.
fn stand_in_jpeg(len: usize, width: u16, height: u16) -> Vec<u8> {
    use rand::RngCore;
    let mut v = festival_core::photo::frame_only_jpeg(len, width, height);
    // Its frame header is the first 21 bytes; the filler becomes noise.
    rand::rngs::OsRng.fill_bytes(&mut v[21..]);
    v
}

/// Whether the channel takes frame `f` now, as a node's does: bulk (sync
/// batches, photos' pieces) only under the lower soft limit
/// (`webrtc::BULK_BUFFER_BYTES`).
fn room_for(ep: &mut Endpoint, conn: ConnId, f: &[u8]) -> bool {
    if festival_core::Frame::priority(f) == festival_core::frame::Priority::Bulk {
        ep.can_send_bulk(conn, f.len())
    } else {
        ep.can_send(conn, f.len())
    }
}

/// Offer `bytes` to a direct link as a node does (`runtime::sendq`): at once
/// when nothing as urgent waits and the channel has room, else queued by
/// priority. False when its class is full and it was dropped.
fn offer(x: &mut Side, q: &mut SendQueue, conn: ConnId, bytes: Vec<u8>) -> anyhow::Result<bool> {
    Ok(match q.admit(&bytes) {
        Admit::SendNow if room_for(&mut x.ep, conn, &bytes) => {
            x.ep.send(conn, &bytes)?;
            true
        }
        Admit::SendNow => q.enqueue(bytes) != Admit::Dropped,
        Admit::Queued => true,
        Admit::Dropped => false,
    })
}

/// Drive one side on its own until `done` says stop: what two nodes do,
/// each on its own thread. Returns the side and the events it saw.
async fn drive(mut me: Side, mut on_event: impl FnMut(&mut Endpoint, EndpointEvent) -> bool) -> anyhow::Result<Side> {
    loop {
        for e in send_transmits(&me.sock, me.ep.poll(Instant::now())).await {
            if on_event(&mut me.ep, e) {
                return Ok(me);
            }
        }
        let now = Instant::now();
        let until = me.ep.next_timeout().unwrap_or(now + Duration::from_millis(5)).min(now + Duration::from_millis(5));
        tokio::select! {
            _ = me.sock.readable() => {}
            _ = tokio::time::sleep_until(until.into()) => {}
        }
        receive_ready(&mut me.ep, &me.sock, &mut me.buf)?;
    }
}

/// Messages per second for `n` messages of `size` bytes, x to y, keeping the
/// send buffer full; sender and receiver run as separate tasks.
async fn throughput(x: Side, y: Side, conn: ConnId, size: usize, n: usize) -> anyhow::Result<(f64, Side, Side)> {
    let t = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut got = 0usize;
        let y = drive(y, |_, e| {
            got += usize::from(matches!(e, EndpointEvent::Data(..)));
            got >= n
        })
        .await?;
        anyhow::Ok((y, t.elapsed()))
    });
    let msg = vec![1u8; size];
    let mut sent = 0usize;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn(async move {
        let mut x = x;
        loop {
            while sent < n && x.ep.can_send(conn, size) {
                x.ep.send(conn, &msg)?;
                sent += 1;
            }
            let _ = send_transmits(&x.sock, x.ep.poll(Instant::now())).await;
            if stop_rx.try_recv().is_ok() {
                return anyhow::Ok(x);
            }
            wait_and_receive(&mut x, Duration::from_millis(2)).await?;
        }
    });
    let (y, elapsed) =
        tokio::time::timeout(Duration::from_secs(120), receiver).await.context("throughput stalled")???;
    let _ = stop_tx.send(());
    let x = sender.await??;
    Ok((n as f64 / elapsed.as_secs_f64(), x, y))
}

/// Wait for a datagram or the endpoint's next timeout (at most `cap`), then
/// take in what arrived.
async fn wait_and_receive(x: &mut Side, cap: Duration) -> anyhow::Result<()> {
    let now = Instant::now();
    let until = x.ep.next_timeout().unwrap_or(now + cap).min(now + cap);
    tokio::select! {
        _ = x.sock.readable() => {}
        _ = tokio::time::sleep_until(until.into()) => {}
    }
    receive_ready(&mut x.ep, &x.sock, &mut x.buf)?;
    Ok(())
}

fn node_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let node = exe.with_file_name("festival-node");
    ensure!(node.exists(), "{} not found: build it first (cargo build --release -p festival-node)", node.display());
    Ok(node)
}

/// A `festival-node run --json` process and its stdout lines.
struct NodeProc {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    _dir: tempfile::TempDir,
}

impl NodeProc {
    fn spawn(node: &PathBuf, netns: Option<&str>, name: &str, extra: &[&str]) -> anyhow::Result<NodeProc> {
        let dir = tempfile::tempdir()?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(node);
                c
            }
            None => Command::new(node),
        };
        cmd.arg("--data-dir").arg(dir.path()).args(["run", "--name", name, "--json", "--power", "mains"]).args(extra);
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(NodeProc { child, stdin, lines, _dir: dir })
    }

    fn wait(&self, deadline: Instant, mut pred: impl FnMut(&Value) -> bool) -> anyhow::Result<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return Ok(v),
                Ok(_) => {}
                Err(_) => bail!("timed out waiting for an event"),
            }
        }
    }

    fn say(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{line}")?;
        Ok(self.stdin.flush()?)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(v: &Value, name: &str) -> bool {
    v["event"] == name
}

/// Median and maximum over runs of: spawn a node on host 2 (a new identity
/// each run, so its id sorts below the other's about half the time), have
/// it say something at once, until the node on host 1 shows that message.
fn start_to_first_message(node: &PathBuf, runs: usize) -> anyhow::Result<(f64, f64)> {
    let lan = netlab::Lan::new(2)?;
    let a = NodeProc::spawn(node, Some(&lan.hosts[0]), "stage-box", &[])?;
    a.wait(Instant::now() + Duration::from_secs(20), |v| event(v, "ready"))?;
    let mut times = Vec::new();
    for run in 0..runs.max(1) {
        let text = format!("first message {run}");
        let t = Instant::now();
        let mut b = NodeProc::spawn(node, Some(&lan.hosts[1]), "newcomer", &[])?;
        b.say(&text)?;
        a.wait(Instant::now() + Duration::from_secs(30), |v| event(v, "message") && v["body"]["text"] == text)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        eprintln!("start to first message, run {run}: {:.0} ms", times[run]);
        b.say("/quit")?;
        let _ = b.child.wait();
    }
    let median = percentile(&mut times, 0.5).context("no runs")?.round();
    Ok((median, percentile(&mut times, 1.0).context("no runs")?.round()))
}

/// `peers + 1` nodes in this namespace, all linked to each other; mean CPU %
/// and RSS of one node over `secs` once they are idle.
fn idle(node: &PathBuf, peers: usize, secs: u64) -> anyhow::Result<(f64, f64)> {
    let mut nodes = Vec::new();
    for i in 0..=peers {
        nodes.push(NodeProc::spawn(node, None, &format!("node{i}"), &["--loopback"])?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in &nodes {
        let mut up = 0;
        n.wait(deadline, |v| {
            up += usize::from(event(v, "link_up"));
            up >= peers
        })?;
    }
    // Let start-up work (profiles, first syncs) finish before measuring.
    std::thread::sleep(Duration::from_secs(5));
    let before: Vec<u64> = nodes.iter().map(|n| cpu_ticks(n.child.id())).collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_secs(secs));
    let after: Vec<u64> = nodes.iter().map(|n| cpu_ticks(n.child.id())).collect::<Result<_, _>>()?;
    let rss: Vec<f64> = nodes.iter().map(|n| rss_mb(n.child.id())).collect::<Result<_, _>>()?;
    let cpu: f64 =
        before.iter().zip(&after).map(|(b, a)| (a - b) as f64 / TICKS_PER_SEC / secs as f64 * 100.0).sum::<f64>()
            / nodes.len() as f64;
    Ok((cpu, rss.iter().sum::<f64>() / rss.len() as f64))
}
