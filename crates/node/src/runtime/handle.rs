//! `NodeHandle`: the one API of a running node.

use std::collections::BTreeMap;
use std::sync::Arc;

use festival_core::sync::{Content, SendError};
use festival_core::{MessageId, PeerId, RoomId};
use festival_store::{HistoryCursor, PersonChoice, Store, StoreError, StoredMessage};
use tokio::sync::{broadcast, mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use super::actor::{self, Command};
use super::config::{NodeConfig, StartError};
use super::events::{
    AnnouncementView, DeliveryState, GroupView, HistoryPage, MessageView, NodeEvent, PeerView, PersonChoiceView,
    RoomView, SearchResults, Status, Waiting,
};
use crate::engine::EngineError;
use festival_core::body::{Body, MeetupAnswer};
use festival_core::group::{GroupContent, GroupId};

/// Commands waiting for the actor. Small: callers wait for their answer.
const INBOX: usize = 64;
/// Events buffered per subscriber; a subscriber that falls further behind
/// misses events (and can re-read history), it never slows the node.
const EVENTS: usize = 4096;
/// Most announcements shown at once (the newest).
pub const MAX_ANNOUNCEMENTS: usize = 8;
/// The latest stored announcements looked at for those.
const ANNOUNCEMENTS_SCAN: u32 = 64;
/// Most messages in one history page: a screenful or two; the UI pages on.
pub const MAX_HISTORY_PAGE: u32 = 200;
/// Stored messages looked at for one page, per message asked for: bounds the
/// work when a stretch holds little to show (receipts, other people's mail).
const HISTORY_SCAN_FACTOR: u32 = 8;

/// Messages indexed for search before one search runs: what arrived since
/// the last one, bounded so the indexing one search does is bounded too
/// (docs/benchmarks.md has the indexing rate: 14,000-19,000 messages/s on
/// the project's machine).
pub const SEARCH_INDEX_BUDGET: u32 = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid room name: {0}")]
    Room(#[from] festival_core::IdError),
    #[error("that is your own code")]
    OwnCode,
    #[error("no meet-up with that id is stored here")]
    NoSuchMeetup,
    #[error("that is not one of your direct messages stored here")]
    NotOurs,
    #[error("you are not in that group (or you left it)")]
    NotInGroup,
    #[error("sent again a moment ago: give it a little time")]
    RetryTooSoon,
    #[error("no one is in reach to send it to: it goes out on its own when someone is")]
    NoOneInReach,
    #[error("the node has stopped")]
    Stopped,
    /// The picked file cannot be sent as a photo.
    #[error(transparent)]
    Photo(#[from] crate::photo::PhotoError),
    #[error("no photo with that id is stored here")]
    NoSuchPhoto,
    #[error("the photo has not all come yet")]
    PhotoIncomplete,
    #[error("the photo's pieces do not fit together")]
    PhotoDamaged,
}

struct Inner {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    store: Store,
    peer: PeerId,
    /// The festival's organiser key, whose announcements are shown.
    organiser: Option<PeerId>,
    clock: crate::clock::Clock,
    /// See [`NodeConfig::delivery_timeout_ms`].
    delivery_timeout_ms: u64,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Group messages opened before a group is read (what arrived since; the
/// actor opens them as they come, so this is a catch-up's worth).
pub const GROUP_INDEX_BUDGET: u32 = 20_000;

/// Retries of one message closer than this send nothing again (a button
/// pressed twice).
pub const RETRY_MIN_GAP_MS: u64 = 10_000;

/// Cheap to clone; every clone talks to the same node.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

impl NodeHandle {
    /// Open the data dir, bind sockets, announce on the LAN and start the actor.
    pub async fn start(cfg: NodeConfig) -> Result<NodeHandle, StartError> {
        Ok(NodeHandle::start_subscribed(cfg).await?.0)
    }

    /// [`NodeHandle::start`], with a subscription to events made before the
    /// actor runs: [`NodeHandle::events`] called after `start` misses what
    /// the actor emits first (a relay link can be up within a millisecond).
    pub async fn start_subscribed(cfg: NodeConfig) -> Result<(NodeHandle, broadcast::Receiver<NodeEvent>), StartError> {
        let (tx, rx) = mpsc::channel(INBOX);
        let (events, first) = broadcast::channel(EVENTS);
        let (organiser, clock, delivery_timeout_ms) = (cfg.organiser, cfg.clock.clone(), cfg.delivery_timeout_ms);
        let (actor, store, peer) = actor::Actor::build(cfg, rx, events.clone()).await?;
        let task = tokio::spawn(actor.run());
        let task = Mutex::new(Some(task));
        let node = NodeHandle {
            inner: Arc::new(Inner { tx, events, store, peer, organiser, clock, delivery_timeout_ms, task }),
        };
        Ok((node, first))
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.peer
    }

    /// Subscribe to events from now on.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.inner.tx.send(make(reply)).await.map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Post a text to a room. Returns once it is committed ("saved").
    pub async fn send(&self, room: RoomId, text: String) -> Result<MessageId, NodeError> {
        self.ask(|reply| Command::Send { room, content: Content::Text(text), reply }).await?
    }

    /// Send a direct message, sealed so only `to` can read it.
    pub async fn send_dm(&self, to: PeerId, text: String) -> Result<MessageId, NodeError> {
        self.ask(|reply| Command::Send { room: RoomId::direct(), content: Content::Direct { to, text }, reply }).await?
    }

    /// Join (or create) a room by name; returns its id.
    pub async fn join_room(&self, name: &str) -> Result<RoomId, NodeError> {
        let room = crate::local::parse_joinable_room(name)?;
        let name = name.trim().to_owned();
        self.ask(|reply| Command::Join { room, name, reply }).await?
    }

    /// Send the organiser's announcement to everyone, shown until `until`
    /// (milliseconds since the Unix epoch, within the festival's message
    /// lifetime). Only a node whose own key is the organiser's may.
    pub async fn announce(&self, text: String, until: u64) -> Result<MessageId, NodeError> {
        let content = Content::Announcement { text, until };
        self.ask(|reply| Command::Send { room: RoomId::announcements(), content, reply }).await?
    }

    /// Post a meet-up to a room: "meet at `place` at `at`" (milliseconds
    /// since the Unix epoch, ahead of now and within the festival's message
    /// lifetime). Shown as a card until half an hour after `at`.
    pub async fn send_meetup(&self, room: RoomId, place: String, at: u64) -> Result<MessageId, NodeError> {
        self.ask(|reply| Command::Send { room, content: Content::Meetup { place, at }, reply }).await?
    }

    /// Send a photo to a room: `bytes` as picked (JPEG, PNG, WebP or GIF),
    /// made to fit by [`crate::photo::prepare`] on a blocking thread, with
    /// `caption` ("" for none). Returns its id; the photo's chunks follow it.
    pub async fn send_photo(&self, room: RoomId, bytes: Vec<u8>, caption: &str) -> Result<MessageId, NodeError> {
        let caption = caption.trim().to_owned();
        // Checked before the picture is worked on.
        if !caption.is_empty() {
            festival_core::body::check_text(&caption).map_err(SendError::from)?;
            if caption.len() > festival_core::photo::MAX_CAPTION_BYTES {
                let max = festival_core::photo::MAX_CAPTION_BYTES;
                return Err(SendError::Body(festival_core::BodyError::TextTooLong { len: caption.len(), max }).into());
            }
        }
        // One at a time: each may take a few hundred MB while it works
        // (see `festival_photo::MAX_DECODE_ALLOC`).
        static PREPARING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
        let _turn = PREPARING.acquire().await.map_err(|_| NodeError::Stopped)?;
        let p = tokio::task::spawn_blocking(move || crate::photo::prepare(&bytes))
            .await
            .map_err(|_| NodeError::Photo(crate::photo::PhotoError::Damaged("the decoder failed".into())))??;
        let content = Content::Photo { jpeg: p.jpeg, width: p.width, height: p.height, caption, thumb: p.thumb };
        self.ask(|reply| Command::Send { room, content, reply }).await?
    }

    /// A photo stored here, as a JPEG: its chunks put together and checked
    /// against its header (`PhotoIncomplete` while some are on their way).
    pub async fn photo(&self, id: &MessageId) -> Result<Vec<u8>, NodeError> {
        let store = &self.inner.store;
        let Some(m) = store.get(id).await? else { return Err(NodeError::NoSuchPhoto) };
        let env = m.envelope;
        let Body::Photo(p) = env.parsed_body() else { return Err(NodeError::NoSuchPhoto) };
        let n = p.chunks() as u64;
        let items = store.load_range(env.room(), &env.author(), env.seq() + 1, env.seq() + n, usize::MAX, 0).await?;
        // Sorted by seq within the range: all there when there are `n`.
        if (items.len() as u64) < n {
            return Err(NodeError::PhotoIncomplete);
        }
        let chunks: Vec<_> = items.into_iter().map(|(e, _)| e).collect();
        festival_core::photo::assemble(&env, &chunks).map_err(|_| NodeError::PhotoDamaged)
    }

    /// Answer a meet-up stored here ("coming" / "can't"), in its room; a
    /// later answer replaces an earlier one on every card.
    pub async fn answer_meetup(&self, meetup: MessageId, answer: MeetupAnswer) -> Result<MessageId, NodeError> {
        let found = self.inner.store.get(&meetup).await?;
        let Some(m) = found else { return Err(NodeError::NoSuchMeetup) };
        let Body::Meetup(body) = m.envelope.parsed_body() else { return Err(NodeError::NoSuchMeetup) };
        if body.end() <= self.inner.clock.wall() {
            return Err(NodeError::Send(SendError::MeetupOver));
        }
        let room = m.envelope.room().clone();
        let content = Content::MeetupReply { meetup, answer, until: body.end() };
        self.ask(|reply| Command::Send { room, content, reply }).await?
    }

    /// Make a private group named `name` of us and `members` (up to 31
    /// others: [`festival_core::group::MAX_GROUP_MEMBERS`] in all): its
    /// first message, sealed to each, tells them. Returns the group's id.
    pub async fn create_group(&self, name: &str, members: Vec<PeerId>) -> Result<GroupId, NodeError> {
        let group = GroupId::generate(&mut rand_core::OsRng);
        let members = festival_core::group::member_list(&self.inner.peer, &members).map_err(SendError::from)?;
        let content = Content::Group { group, name: name.trim().to_owned(), members, content: GroupContent::Members };
        self.ask(|reply| Command::Send { room: RoomId::direct(), content, reply }).await??;
        Ok(group)
    }

    /// A group we are in, as its latest message says (`NotInGroup` if we
    /// are not, or left it).
    async fn my_group(&self, group: &GroupId) -> Result<festival_store::GroupRecord, NodeError> {
        let store = &self.inner.store;
        let me = store.identity().await?.ok_or(EngineError::NoIdentity)?;
        store.index_groups(&me.identity, GROUP_INDEX_BUDGET).await?;
        match store.group(group).await? {
            Some(g) if !g.left && g.members.contains(&self.inner.peer) => Ok(g),
            _ => Err(NodeError::NotInGroup),
        }
    }

    /// Post to a private group we are in: sealed to each of its members.
    pub async fn send_group(&self, group: GroupId, text: String) -> Result<MessageId, NodeError> {
        let g = self.my_group(&group).await?;
        let content = Content::Group { group, name: g.name, members: g.members, content: GroupContent::Text(text) };
        self.ask(|reply| Command::Send { room: RoomId::direct(), content, reply }).await?
    }

    /// Add people to a private group we are in: a message naming them,
    /// sealed to all the members (the new ones learn the group from it).
    /// `BadMembers` when all are in it already, or past 32.
    pub async fn invite_to_group(&self, group: GroupId, people: Vec<PeerId>) -> Result<MessageId, NodeError> {
        let g = self.my_group(&group).await?;
        let mut added: Vec<PeerId> = people.into_iter().filter(|p| !g.members.contains(p)).collect();
        added.sort();
        added.dedup();
        if added.is_empty() {
            return Err(NodeError::Send(SendError::Group(festival_core::group::GroupError::BadMembers)));
        }
        let all: Vec<PeerId> = g.members.iter().chain(added.iter()).copied().collect();
        let members = festival_core::group::member_list(&self.inner.peer, &all).map_err(SendError::from)?;
        let content = Content::Group { group, name: g.name, members, content: GroupContent::Added(added) };
        self.ask(|reply| Command::Send { room: RoomId::direct(), content, reply }).await?
    }

    /// Leave a private group: a last message tells its members, and the
    /// group stays here, read-only.
    pub async fn leave_group(&self, group: GroupId) -> Result<MessageId, NodeError> {
        let g = self.my_group(&group).await?;
        let content = Content::Group { group, name: g.name, members: g.members, content: GroupContent::Left };
        self.ask(|reply| Command::Send { room: RoomId::direct(), content, reply }).await?
    }

    /// Mute a private group we are (or were) in, or undo it: no
    /// notifications from it.
    pub async fn mute_group(&self, group: &GroupId, muted: bool) -> Result<(), NodeError> {
        if self.inner.store.set_group_muted(group, muted).await? {
            Ok(())
        } else {
            Err(NodeError::NotInGroup)
        }
    }

    /// The private groups we are (or were) in, the latest active first.
    pub async fn groups(&self) -> Result<Vec<GroupView>, NodeError> {
        let store = &self.inner.store;
        let me = store.identity().await?.ok_or(EngineError::NoIdentity)?;
        store.index_groups(&me.identity, GROUP_INDEX_BUDGET).await?;
        let names = crate::names::Names::load(store, me.identity.peer_id(), &me.name).await?;
        let my_id = me.identity.peer_id();
        Ok(store.groups().await?.into_iter().map(|g| crate::view::group_view(g, &my_id, &names)).collect())
    }

    /// One private group we are (or were) in.
    pub async fn group(&self, group: &GroupId) -> Result<Option<GroupView>, NodeError> {
        let store = &self.inner.store;
        let me = store.identity().await?.ok_or(EngineError::NoIdentity)?;
        store.index_groups(&me.identity, GROUP_INDEX_BUDGET).await?;
        let Some(record) = store.group(group).await? else { return Ok(None) };
        let names = crate::names::Names::load(store, me.identity.peer_id(), &me.name).await?;
        Ok(Some(crate::view::group_view(record, &me.identity.peer_id(), &names)))
    }

    /// A page of a private group's history, oldest first, as [`Self::history`].
    pub async fn group_history(
        &self,
        group: &GroupId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, NodeError> {
        let store = &self.inner.store;
        let me = store.identity().await?.ok_or(EngineError::NoIdentity)?;
        store.index_groups(&me.identity, GROUP_INDEX_BUDGET).await?;
        self.page(before, limit, |cursor, n| store.group_history(group, cursor, n)).await
    }

    /// The organiser's announcements still running, newest first (at most
    /// [`MAX_ANNOUNCEMENTS`]).
    pub async fn announcements(&self) -> Result<Vec<AnnouncementView>, NodeError> {
        let Some(organiser) = self.inner.organiser else { return Ok(Vec::new()) };
        let now = self.inner.clock.wall();
        let stored = self.inner.store.history(&RoomId::announcements(), None, ANNOUNCEMENTS_SCAN).await?;
        let mut running: Vec<AnnouncementView> = stored
            .iter()
            .rev()
            .filter(|m| m.envelope.author() == organiser)
            .filter_map(|m| match m.envelope.parsed_body() {
                Body::Announcement(a) if a.until > now => Some(AnnouncementView::new(&m.envelope, a)),
                _ => None,
            })
            .collect();
        running.truncate(MAX_ANNOUNCEMENTS);
        Ok(running)
    }

    /// Tell the authors of these messages that we read them.
    pub async fn mark_read(&self, room: RoomId, ids: Vec<MessageId>) -> Result<(), NodeError> {
        self.ask(|reply| Command::MarkRead { room, ids, reply }).await?
    }

    /// A page of a room's history, oldest first: the latest `limit` readable
    /// messages before `before` (at most [`MAX_HISTORY_PAGE`]).
    pub async fn history(
        &self,
        room: &RoomId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, NodeError> {
        let store = &self.inner.store;
        self.page(before, limit, |cursor, n| store.history(room, cursor, n)).await
    }

    /// A page of the direct messages between us and `with`, as [`Self::history`].
    pub async fn dm_history(
        &self,
        with: &PeerId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, NodeError> {
        let (store, me) = (&self.inner.store, self.inner.peer);
        self.page(before, limit, |cursor, n| store.dm_history(&me, with, cursor, n)).await
    }

    /// Walk back from `before` in stored pages, keeping what a person reads,
    /// until `limit` messages are found, the start is reached, or the scan
    /// budget is spent (then the page is short but `next` goes on).
    async fn page<F, Fut>(&self, before: Option<HistoryCursor>, limit: u32, fetch: F) -> Result<HistoryPage, NodeError>
    where
        F: Fn(Option<HistoryCursor>, u32) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<StoredMessage>, StoreError>>,
    {
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        let me = self.inner.store.identity().await?.ok_or(EngineError::NoIdentity)?;
        let names = crate::names::Names::load(&self.inner.store, me.identity.peer_id(), &me.name).await?;
        let mut budget = limit.saturating_mul(HISTORY_SCAN_FACTOR);
        let mut cursor = before;
        // Newest first while collecting.
        let mut found: Vec<MessageView> = Vec::new();
        let mut next = None;
        loop {
            let chunk = limit.min(budget);
            let stored = fetch(cursor, chunk).await?;
            budget -= u32::try_from(stored.len()).unwrap_or(chunk).min(budget);
            let exhausted = stored.len() < chunk as usize;
            for m in stored.iter().rev() {
                cursor = Some(m.cursor());
                if let Some(v) = crate::view::view(
                    &self.inner.store,
                    &me.identity,
                    &names,
                    m,
                    self.inner.clock.wall(),
                    self.inner.delivery_timeout_ms,
                )
                .await?
                {
                    found.push(v);
                    if found.len() == limit as usize {
                        break;
                    }
                }
            }
            if found.len() == limit as usize || (!exhausted && budget == 0) {
                // There may be more before the last message looked at.
                next = cursor;
                break;
            }
            if exhausted {
                break;
            }
        }
        found.reverse();
        self.explain_waiting(&mut found).await;
        Ok(HistoryPage { messages: found, next })
    }

    /// Search the messages a person can read here (room texts, DMs to or
    /// from us) for every word of `query`, the last one as a prefix; newest
    /// first, at most `limit` (up to [`festival_store::MAX_SEARCH_RESULTS`]).
    /// What arrived since the last search is indexed first, up to
    /// [`SEARCH_INDEX_BUDGET`] messages (`pending` says how many wait).
    pub async fn search(&self, query: &str, limit: u32) -> Result<SearchResults, NodeError> {
        let store = &self.inner.store;
        let me = store.identity().await?.ok_or(EngineError::NoIdentity)?;
        store.index_pending(&me.identity, SEARCH_INDEX_BUDGET).await?;
        let found = store.search(query, limit).await?;
        let names = crate::names::Names::load(store, me.identity.peer_id(), &me.name).await?;
        let mut messages = Vec::with_capacity(found.len());
        for m in &found {
            if let Some(v) = crate::view::view(
                store,
                &me.identity,
                &names,
                m,
                self.inner.clock.wall(),
                self.inner.delivery_timeout_ms,
            )
            .await?
            {
                messages.push(v);
            }
        }
        self.explain_waiting(&mut messages).await;
        Ok(SearchResults { messages, pending: store.search_pending().await? })
    }

    /// One stored message as a person sees it (`None`: not stored, or not
    /// for us to read).
    pub async fn message(&self, id: &MessageId) -> Result<Option<MessageView>, NodeError> {
        let me = self.inner.store.identity().await?.ok_or(EngineError::NoIdentity)?;
        let Some(m) = self.inner.store.get(id).await? else { return Ok(None) };
        let names = crate::names::Names::load(&self.inner.store, me.identity.peer_id(), &me.name).await?;
        let Some(v) = crate::view::view(
            &self.inner.store,
            &me.identity,
            &names,
            &m,
            self.inner.clock.wall(),
            self.inner.delivery_timeout_ms,
        )
        .await?
        else {
            return Ok(None);
        };
        let mut one = [v];
        self.explain_waiting(&mut one).await;
        let [v] = one;
        Ok(Some(v))
    }

    /// Say why our saved messages wait, from who is in reach now.
    async fn explain_waiting(&self, messages: &mut [MessageView]) {
        let saved = |m: &MessageView| m.delivery.as_ref().is_some_and(|d| d.state == DeliveryState::Saved);
        if !messages.iter().any(saved) {
            return;
        }
        let why = match self.status().await {
            Ok(s) => Waiting::from_reach(s.links as usize, s.discovered as usize),
            Err(_) => Waiting::NoOneNearby,
        };
        for m in messages.iter_mut() {
            if let Some(d) = m.delivery.as_mut().filter(|d| d.state == DeliveryState::Saved) {
                d.waiting = Some(why);
            }
        }
    }

    /// Send one of our DMs again ("not delivered yet": retry): it is pushed
    /// at once to the relay and the DM room's tree links in reach, and
    /// announced to the others; its "not delivered yet" clock starts again.
    /// Returns it with its delivery as it then stands (a DM delivered
    /// already is left as it is). `NotOurs` for anything but one of our
    /// DMs; `RetryTooSoon` within [`RETRY_MIN_GAP_MS`] of its last retry,
    /// or past 10 retries a minute in all; `NoOneInReach` when no link is
    /// up (nothing was sent, the clock goes on).
    pub async fn retry(&self, id: MessageId) -> Result<MessageView, NodeError> {
        self.ask(|reply| Command::Retry { id, reply }).await??;
        self.message(&id).await?.ok_or(NodeError::NotOurs)
    }

    /// Joined rooms in the order they were joined, with unread counts.
    pub async fn rooms(&self) -> Result<Vec<RoomView>, NodeError> {
        Ok(self
            .inner
            .store
            .rooms()
            .await?
            .into_iter()
            .map(|r| RoomView {
                id: r.room,
                name: r.name,
                unread: r.unread,
                last_activity: r.last_activity,
                joined_at: r.joined_at,
                muted: r.muted,
            })
            .collect())
    }

    pub async fn peers(&self) -> Result<Vec<PeerView>, NodeError> {
        let mut peers = self.ask(|reply| Command::Peers { reply }).await?;
        let choices: BTreeMap<PeerId, PersonChoice> =
            self.inner.store.people_choices().await?.into_iter().map(|c| (c.peer, c)).collect();
        for p in &mut peers {
            if let Some(c) = choices.get(&p.peer) {
                (p.muted, p.blocked) = (c.muted, c.blocked);
            }
        }
        Ok(peers)
    }

    /// Mute `peer` (or undo it): the app raises no notification for what
    /// they write. Nothing else changes.
    pub async fn mute_person(&self, peer: PeerId, muted: bool) -> Result<(), NodeError> {
        if peer == self.inner.peer {
            return Err(NodeError::OwnCode);
        }
        let now = self.inner.clock.wall();
        Ok(self.inner.store.set_person_muted(&peer, muted, now).await?)
    }

    /// Block `peer` (or undo it): what they write is not shown, their DMs
    /// are no longer stored or carried here, and they get no receipts from
    /// us. Undoing shows again what was kept.
    pub async fn block(&self, peer: PeerId, blocked: bool) -> Result<(), NodeError> {
        if peer == self.inner.peer {
            return Err(NodeError::OwnCode);
        }
        self.ask(|reply| Command::Block { peer, blocked, reply }).await?
    }

    /// Mute a joined room (or undo it): no notifications from it.
    pub async fn mute_room(&self, room: &RoomId, muted: bool) -> Result<(), NodeError> {
        Ok(self.inner.store.set_room_muted(room, muted).await?)
    }

    /// Everyone muted or blocked here, the latest first.
    pub async fn people_choices(&self) -> Result<Vec<PersonChoiceView>, NodeError> {
        let me = self.inner.store.identity().await?.ok_or(EngineError::NoIdentity)?;
        let names = crate::names::Names::load(&self.inner.store, me.identity.peer_id(), &me.name).await?;
        let choices = self.inner.store.people_choices().await?;
        Ok(choices
            .into_iter()
            .map(|c| PersonChoiceView {
                peer: c.peer,
                sender: names.author(&c.peer),
                muted: c.muted,
                blocked: c.blocked,
                since: c.since,
            })
            .collect())
    }

    /// One peer as [`Self::peers`] shows it, if known.
    pub async fn peer(&self, peer: PeerId) -> Result<Option<PeerView>, NodeError> {
        Ok(self.peers().await?.into_iter().find(|p| p.peer == peer))
    }

    /// We compared codes in person: mark `peer` verified (it need not have
    /// been seen yet). Returns it as [`Self::peers`] shows it.
    pub async fn verify(&self, peer: PeerId) -> Result<PeerView, NodeError> {
        if peer == self.inner.peer {
            return Err(NodeError::OwnCode);
        }
        self.inner.store.set_peer_verified(&peer, true).await?;
        // The record exists now, so the peer is in the list.
        self.peer(peer).await?.ok_or(NodeError::Stopped)
    }

    /// Change our display name and tell the festival.
    pub async fn set_name(&self, name: String) -> Result<(), NodeError> {
        self.ask(|reply| Command::Rename { name, reply }).await?
    }

    pub async fn status(&self) -> Result<Status, NodeError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Stop the node: say goodbye on mDNS, close every channel, wait for the
    /// actor and its tasks to end. Idempotent.
    pub async fn shutdown(&self) {
        let task = self.inner.task.lock().await.take();
        if let Some(task) = task {
            let _ = self.inner.tx.send(Command::Shutdown).await;
            let _ = task.await;
        }
    }
}
