//! `festival-node run`: the venue box. Prints what happens, takes lines from
//! stdin, stops cleanly on SIGINT/SIGTERM or `/quit`. Runs for days: stdin
//! closing (a service with no terminal) does not stop it.

use anyhow::Context;
use festival_core::body::MeetupAnswer;
use festival_core::group::GroupId;
use festival_core::{PeerId, RoomId};
use festival_node::runtime::{MessageBody, NodeConfig, NodeEvent, NodeHandle};
use festival_store::Budget;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};

const HELP: &str =
    "commands: /room NAME (switch, joining if needed), /dm PEER TEXT, /announce UNTIL TEXT (the organiser's node), \
     /announcements, /meetup TIME PLACE (TIME: HH:MM UTC or a span such as 45m), /coming ID, /cant ID, /photo FILE [CAPTION], /savephoto ID FILE, /retry ID (send one of yours again), /held ID (is it stored here), /newgroup NAME PEER..., /group ID TEXT, /leavegroup ID, /groups, /block PEER, /unblock PEER, /blocked, /peers, /status, /storage, /quit; \
     any other line is a message to the current room";

pub async fn run(cfg: NodeConfig, json: bool) -> anyhow::Result<()> {
    let budget = cfg.retention.budget;
    // Subscribed before the actor runs: its first events (a relay link up
    // at once) come after the ready line, never lost.
    let (node, mut events) = NodeHandle::start_subscribed(cfg).await.context("starting the node")?;
    let status = node.status().await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "ready", "peer": status.peer, "fingerprint": status.fingerprint,
                "signaling_port": status.signaling_port, "udp_port": status.udp_port, "festival": status.festival})
        );
    } else {
        println!(
            "festival {} | you are {} ({}) | signaling port {} | {HELP}",
            status.festival, status.fingerprint, status.peer, status.signaling_port
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut room = RoomId::festival();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            ev = events.recv() => match ev {
                Ok(ev) => print_event(&ev, json),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => eprintln!("({n} events skipped)"),
                Err(_) => break,
            },
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    if !command(&node, &budget, &mut room, line.trim(), json).await {
                        break;
                    }
                }
                _ => stdin_open = false,
            },
        }
    }
    node.shutdown().await;
    Ok(())
}

/// A picture file to send, refused before it is read when it is larger
/// than any picture taken.
async fn read_picture(path: &str) -> anyhow::Result<Vec<u8>> {
    let len = tokio::fs::metadata(path).await.with_context(|| format!("reading {path}"))?.len();
    let max = festival_node::photo::MAX_INPUT_BYTES;
    if len > max as u64 {
        anyhow::bail!("{path} is {len} bytes; photos of up to {max} bytes are taken");
    }
    tokio::fs::read(path).await.with_context(|| format!("reading {path}"))
}

/// Handle one input line; false means quit.
async fn command(node: &NodeHandle, budget: &Budget, room: &mut RoomId, line: &str, json: bool) -> bool {
    let result: anyhow::Result<()> = async {
        match line.split_once(' ').unwrap_or((line, "")) {
            ("", _) => {}
            ("/quit", _) => return Ok(()),
            ("/help", _) => println!("{HELP}"),
            ("/room", name) => {
                *room = node.join_room(name).await?;
                println!("now in #{room}");
            }
            ("/dm", rest) => {
                let (to, text) = rest.split_once(' ').context("usage: /dm PEER TEXT")?;
                let to = find_peer(node, to).await?;
                let id = node.send_dm(to, text.to_owned()).await?;
                report_saved(id, json);
            }
            ("/peers", _) => {
                for p in node.peers().await? {
                    println!("{}", serde_json::to_string(&p)?);
                }
            }
            ("/announce", rest) => {
                let (until, text) = rest.split_once(' ').context("usage: /announce UNTIL TEXT")?;
                let until = parse_until(until, festival_node::clock::now_ms())?;
                let id = node.announce(text.to_owned(), until).await?;
                report_saved(id, json);
            }
            ("/meetup", rest) => {
                let (at, place) = rest.split_once(' ').context("usage: /meetup TIME PLACE")?;
                let at = parse_until(at, festival_node::clock::now_ms())?;
                let id = node.send_meetup(room.clone(), place.trim().to_owned(), at).await?;
                report_saved(id, json);
            }
            ("/photo", rest) => {
                let (path, caption) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
                anyhow::ensure!(!path.is_empty(), "usage: /photo FILE [CAPTION]");
                let bytes = read_picture(path).await?;
                let id = node.send_photo(room.clone(), bytes, caption).await?;
                report_saved(id, json);
            }
            ("/savephoto", rest) => {
                let (id, path) = rest.trim().split_once(' ').context("usage: /savephoto PHOTO-ID FILE")?;
                let id: festival_core::MessageId =
                    id.parse().map_err(|_| anyhow::anyhow!("usage: /savephoto PHOTO-ID (the id in full) FILE"))?;
                let jpeg = node.photo(&id).await?;
                tokio::fs::write(path.trim(), &jpeg).await.with_context(|| format!("writing {path}"))?;
                println!("saved {} bytes of JPEG to {}", jpeg.len(), path.trim());
            }
            (cmd @ ("/coming" | "/cant"), id) => {
                let id: festival_core::MessageId =
                    id.trim().parse().map_err(|_| anyhow::anyhow!("usage: {cmd} MEETUP-ID (the id in full)"))?;
                let answer = if cmd == "/coming" { MeetupAnswer::Coming } else { MeetupAnswer::Cant };
                let id = node.answer_meetup(id, answer).await?;
                report_saved(id, json);
            }
            ("/held", id) => {
                // Whether a message is stored here, readable or not (a box
                // that carries others' sealed mail holds what it cannot open).
                let id: festival_core::MessageId =
                    id.trim().parse().map_err(|_| anyhow::anyhow!("usage: /held MESSAGE-ID (the id in full)"))?;
                let held = node.store().get(&id).await?;
                let kind = held.as_ref().map(|m| format!("{:?}", m.envelope.kind()));
                println!("{}", serde_json::json!({ "held": held.is_some(), "id": id, "kind": kind }));
            }
            ("/retry", id) => {
                let id: festival_core::MessageId =
                    id.trim().parse().map_err(|_| anyhow::anyhow!("usage: /retry MESSAGE-ID (the id in full)"))?;
                let m = node.retry(id).await?;
                println!("{}", serde_json::to_string(&m.delivery)?);
            }
            ("/newgroup", rest) => {
                let (name, people) = rest.split_once(' ').context("usage: /newgroup NAME PEER [PEER ...]")?;
                let mut members = Vec::new();
                for p in people.split_whitespace() {
                    members.push(find_peer(node, p).await?);
                }
                let group = node.create_group(name, members).await?;
                println!("group {}", group.to_hex());
            }
            ("/group", rest) => {
                let (id, text) = rest.split_once(' ').context("usage: /group GROUP-ID TEXT")?;
                let group = GroupId::from_hex(id).context("a group id is 32 hex digits")?;
                let id = node.send_group(group, text.to_owned()).await?;
                report_saved(id, json);
            }
            ("/leavegroup", id) => {
                let group = GroupId::from_hex(id).context("usage: /leavegroup GROUP-ID")?;
                let id = node.leave_group(group).await?;
                report_saved(id, json);
            }
            ("/groups", _) => {
                for g in node.groups().await? {
                    println!("{}", serde_json::to_string(&g)?);
                }
            }
            ("/announcements", _) => {
                for a in node.announcements().await? {
                    println!("{}", serde_json::to_string(&a)?);
                }
            }
            (cmd @ ("/block" | "/unblock"), who) => {
                let peer = find_peer(node, who).await?;
                let blocked = cmd == "/block";
                node.block(peer, blocked).await?;
                if json {
                    println!("{}", serde_json::json!({"event": "blocked", "peer": peer, "blocked": blocked}));
                } else {
                    println!("{} {}", if blocked { "blocked" } else { "unblocked" }, peer);
                }
            }
            ("/blocked", _) => {
                for c in node.people_choices().await?.into_iter().filter(|c| c.blocked) {
                    println!("{}", serde_json::to_string(&c)?);
                }
            }
            ("/status", _) => println!("{}", serde_json::to_string(&node.status().await?)?),
            ("/storage", _) => println!("{}", storage(node.store(), budget).await?),
            _ => {
                let id = node.send(room.clone(), line.to_owned()).await?;
                report_saved(id, json);
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if json {
            println!("{}", serde_json::json!({"event": "error", "message": e.to_string()}));
        } else {
            eprintln!("error: {e}");
        }
    }
    line != "/quit"
}

/// What the store holds against its budget, as one JSON line: the files
/// on disk (what the disk budget bounds), the messages and their bytes as
/// the budgets count them, and per room the messages held now and the
/// authors ever seen there (heads stay when messages are evicted, so
/// `authors - messages` is, for rooms of one message per author, what
/// eviction took).
async fn storage(store: &festival_store::Store, budget: &Budget) -> anyhow::Result<serde_json::Value> {
    let files = store.disk_usage().await?;
    let usage = store.usage().await?;
    let mut rooms = serde_json::Map::new();
    let mut authors: std::collections::BTreeMap<RoomId, u64> = Default::default();
    for h in store.heads().await? {
        *authors.entry(h.room).or_default() += 1;
    }
    for (room, authors) in authors {
        let u = store.room_usage(&room).await?;
        rooms.insert(
            room.to_string(),
            serde_json::json!({"messages": u.messages, "bytes": u.bytes, "authors": authors}),
        );
    }
    Ok(serde_json::json!({"storage": {
        "files": {"db": files.db_bytes, "wal": files.wal_bytes, "shm": files.shm_bytes,
                  "free": files.free_bytes, "total": files.total()},
        "budget": {"disk": budget.disk_bytes, "data": budget.data_bytes(),
                   "per_author": budget.per_author_bytes, "per_room": budget.per_room_bytes},
        "messages": usage.messages, "bytes": usage.bytes, "rooms": rooms,
    }}))
}

/// When an announcement ends, from `HH:MM` (UTC, the next such time after
/// `now`) or a span from now (`90s`, `45m`, `2h`, `1d`); in milliseconds
/// since the Unix epoch.
pub fn parse_until(s: &str, now: u64) -> anyhow::Result<u64> {
    const DAY: u64 = 86_400_000;
    let s = s.trim().trim_start_matches('+');
    let bad = || anyhow::anyhow!("{s:?} is not an end time: give HH:MM (UTC) or a span such as 45m, 2h, 1d");
    if let Some((h, m)) = s.split_once(':') {
        let (h, m): (u64, u64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        anyhow::ensure!(h < 24 && m < 60, bad());
        let at = now - now % DAY + (h * 60 + m) * 60_000;
        return Ok(if at > now { at } else { at + DAY });
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = s[..split].parse().map_err(|_| bad())?;
    let unit = match &s[split..] {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => DAY,
        _ => return Err(bad()),
    };
    anyhow::ensure!(n > 0, bad());
    Ok(now.saturating_add(n.saturating_mul(unit)))
}

fn report_saved(id: festival_core::MessageId, json: bool) {
    if json {
        println!("{}", serde_json::json!({"event": "saved", "id": id}));
    } else {
        println!("saved {}", id.short());
    }
}

/// A peer by full id, or by a unique prefix of its id or fingerprint.
async fn find_peer(node: &NodeHandle, s: &str) -> anyhow::Result<PeerId> {
    if let Ok(p) = s.parse() {
        return Ok(p);
    }
    let needle = s.to_lowercase().replace('-', "");
    let matches: Vec<PeerId> = node
        .peers()
        .await?
        .into_iter()
        .filter(|p| {
            p.peer.to_hex().starts_with(&needle) || p.fingerprint.to_lowercase().replace('-', "").starts_with(&needle)
        })
        .map(|p| p.peer)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => anyhow::bail!("no known peer matches {s:?}"),
        _ => anyhow::bail!("{s:?} matches several peers; give more characters"),
    }
}

fn print_event(ev: &NodeEvent, json: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(ev) {
            println!("{s}");
        }
        return;
    }
    match ev {
        NodeEvent::Message(m) => {
            let who = if m.mine { "you".to_owned() } else { m.sender.label() };
            let via = if m.mine {
                String::new()
            } else {
                format!("  [{} hop{}]", m.hops, if m.hops == 1 { "" } else { "s" })
            };
            match &m.body {
                MessageBody::Text { text } => println!("#{} {who}: {text}{via}", m.room),
                MessageBody::Direct { to, text } => println!("(dm to {}) {who}: {text}{via}", to.fingerprint()),
                MessageBody::Group { group, name, text } => println!("[{name} {}] {who}: {text}{via}", &group[..8]),
                MessageBody::GroupMembers { group, name, members } => {
                    println!(
                        "[group {}] {who} made \"{name}\" ({} members): /group {group} TEXT",
                        &group[..8],
                        members.len()
                    )
                }
                MessageBody::GroupAdded { group, name, added } => {
                    println!("[{name} {}] {who} added {} people", &group[..8], added.len())
                }
                MessageBody::GroupLeft { group } => println!("[group {}] {who} left", &group[..8]),
                MessageBody::Photo(p) => println!(
                    "#{} {who}: [photo {}x{}, {} KiB{}] {}{via}",
                    m.room,
                    p.width,
                    p.height,
                    p.bytes.div_ceil(1024),
                    if p.complete { "" } else { ", on its way" },
                    p.caption
                ),
                MessageBody::Meetup(c) => {
                    let at = &crate::format_time(c.at)[..5];
                    println!("#{} {who}: meet at {} at {at} UTC [meet-up {}]{via}", m.room, c.place, m.id)
                }
            }
        }
        NodeEvent::PhotoReady(m) => println!("* the photo {} has come: /savephoto {} FILE", m.id.short(), m.id),
        NodeEvent::MeetupChanged(m) => {
            if let MessageBody::Meetup(c) = &m.body {
                println!("* meet-up at {}: {} coming, {} can't", c.place, c.coming, c.cant)
            }
        }
        NodeEvent::Announcement(a) => {
            println!("[ANNOUNCEMENT until {} UTC] {}", &crate::format_time(a.until)[..5], a.text)
        }
        NodeEvent::LinkUp { peer, path } => println!("* linked with {} via {}", peer.fingerprint(), path.as_str()),
        NodeEvent::LinkDown { peer, .. } => println!("* link to {} closed", peer.fingerprint()),
        NodeEvent::PeerName { peer, name } => println!("* {} is {name}", peer.fingerprint()),
        NodeEvent::Rejected { peer, code, count } => {
            let from = peer.map_or("unknown".into(), |p| p.fingerprint());
            println!("! refused {count} input(s) ({code}, ...) from {from}")
        }
        NodeEvent::Equivocation { peer } => {
            println!("! {} signed two different messages for one place in its history", peer.fingerprint())
        }
        NodeEvent::Delivery { id, delivery } => {
            if let Some(why) = delivery.not_delivered {
                println!("! {} not delivered yet ({why:?}): /retry {id}", id.short())
            }
        }
        NodeEvent::Receipt { .. } | NodeEvent::Sent { .. } | NodeEvent::Discovered { .. } | NodeEvent::Lost { .. } => {}
        NodeEvent::Power { mode } => match mode.battery {
            Some(p) => println!("* on battery ({p}%): up to {} links", mode.limits.max_peers),
            None => println!("* on mains: up to {} links", mode.limits.max_peers),
        },
        NodeEvent::Lagged { missed } => eprintln!("({missed} events skipped)"),
    }
}
