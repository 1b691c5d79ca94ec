//! `App`: what each command of the desktop app does, as plain async methods.
//! It owns the settings and the running node (none before onboarding, a new
//! one after a settings change that needs a restart) and an event bus that
//! outlives node restarts, so a UI subscribes once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use festival_core::body::{MeetupAnswer, MAX_TEXT_BYTES};
use festival_core::group::GroupId;
use festival_core::{MessageId, PeerId, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::local::{parse_joinable_room, LocalNode};
use festival_node::runtime::{
    AnnouncementView, GroupView, HistoryPage, MessageView, NodeConfig, NodeEvent, NodeHandle, PeerView,
    PersonChoiceView, PowerConfig, RoomView, SearchResults, Status,
};
use festival_store::HistoryCursor;
use serde::Serialize;
use tokio::sync::{broadcast, Mutex};
use tokio::task::JoinHandle;

use crate::contact::{my_code, parse_contact_code, MyCode};
use crate::error::{AppError, ErrorCode};
use crate::notify::{Notification, Notifier};
use crate::settings::{check_name, Settings};

/// Events buffered for the UI; past this a slow UI gets `lagged` and
/// re-reads, the node never waits for it.
const BUS: usize = 4096;
/// How often held notifications and the digest are looked at.
const NOTIFY_TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything the UI needs on start: show onboarding or the chat.
#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct AppState {
    /// An identity exists (a name was picked).
    pub onboarded: bool,
    /// The running node's status; `None` before onboarding or if it could
    /// not start (see `error`).
    pub status: Option<Status>,
    pub settings: Settings,
    /// Why the node is not running, if it should be.
    pub error: Option<AppError>,
}

/// How the app runs its node. The defaults are the app's; tests and the lab
/// change them.
#[derive(Clone, Default)]
pub struct AppOptions {
    pub power: PowerConfig,
    /// Share an mDNS hub (several apps in one process, in tests).
    pub mdns: Option<MdnsHub>,
    /// Offer loopback addresses to peers (several nodes on one host).
    pub loopback_candidates: bool,
}

struct Running {
    node: NodeHandle,
    forward: JoinHandle<()>,
}

struct State {
    settings: Settings,
    running: Option<Running>,
    error: Option<AppError>,
}

struct Shared {
    data_dir: PathBuf,
    options: AppOptions,
    state: Mutex<State>,
    bus: broadcast::Sender<NodeEvent>,
    /// Which events become desktop notifications (`notify`).
    notifier: std::sync::Mutex<Notifier>,
    /// The notifier's clock: monotonic, so a wall clock set back cannot
    /// hold notifications back.
    started: std::time::Instant,
}

/// Cheap to clone; every clone is the same app.
#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
}

fn not_onboarded() -> AppError {
    AppError::new(ErrorCode::NotOnboarded, "Pick a name first.")
}

fn check_text(text: &str) -> Result<(), AppError> {
    if text.trim().is_empty() {
        return Err(AppError::new(ErrorCode::EmptyMessage, "Type something first."));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(AppError::new(
            ErrorCode::MessageTooLong,
            format!("Messages are at most {MAX_TEXT_BYTES} bytes; this one is {}. Split it up.", text.len()),
        ));
    }
    Ok(())
}

/// A node told to use an interface this machine lacks would start, cut off
/// from everyone: refuse the name instead, and say which ones exist.
fn check_interfaces_exist(wanted: &[String]) -> Result<(), AppError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let mut have: Vec<String> = if_addrs::get_if_addrs()
        .map_err(|e| AppError::new(ErrorCode::Network, format!("cannot list network interfaces: {e}")))?
        .into_iter()
        .map(|i| i.name)
        .collect();
    have.sort();
    have.dedup();
    match wanted.iter().find(|w| !have.contains(w)) {
        None => Ok(()),
        Some(missing) => Err(AppError::new(
            ErrorCode::InvalidInterface,
            format!("This device has no network interface {missing:?} (it has: {}).", have.join(", ")),
        )),
    }
}

fn parse_room_id(room: &str) -> Result<RoomId, AppError> {
    room.parse::<RoomId>().map_err(|e| AppError::new(ErrorCode::InvalidRoom, format!("{room:?}: {e}")))
}

fn parse_peer(peer: &str) -> Result<PeerId, AppError> {
    parse_contact_code(peer).map_err(|_| AppError::new(ErrorCode::InvalidPeer, format!("{peer:?} is not a peer id.")))
}

/// A conversation as the UI keys it: `dm:<peer>` or a room id.
enum Conversation {
    Direct(PeerId),
    Room(RoomId),
}

fn parse_conversation(key: &str) -> Result<Conversation, AppError> {
    match key.strip_prefix("dm:") {
        Some(peer) => Ok(Conversation::Direct(parse_peer(peer)?)),
        None => Ok(Conversation::Room(parse_room_id(key)?)),
    }
}

fn parse_group(id: &str) -> Result<GroupId, AppError> {
    GroupId::from_hex(id).ok_or_else(|| AppError::new(ErrorCode::NotInGroup, format!("{id:?} is not a group id.")))
}

fn parse_people(people: &[String]) -> Result<Vec<PeerId>, AppError> {
    people.iter().map(|p| parse_peer(p)).collect()
}

fn not_yourself(me: PeerId, peer: PeerId) -> Result<(), AppError> {
    if me == peer {
        return Err(AppError::new(ErrorCode::InvalidPeer, "You cannot mute or block yourself."));
    }
    Ok(())
}

impl App {
    /// Load the settings of `data_dir`; the node starts with [`App::start`]
    /// (or [`App::onboard`] on a first start).
    pub fn new(data_dir: &Path, options: AppOptions) -> Result<App, AppError> {
        // Owner-only: it holds the identity key (the store) and the settings.
        festival_node::datadir::create_private_dir(data_dir)?;
        let settings = Settings::load(data_dir)?;
        let (bus, _) = broadcast::channel(BUS);
        Ok(App {
            shared: Arc::new(Shared {
                data_dir: data_dir.to_owned(),
                options,
                state: Mutex::new(State { settings, running: None, error: None }),
                bus,
                notifier: std::sync::Mutex::new(Notifier::new()),
                started: std::time::Instant::now(),
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    /// Start the node if this device has an identity. Returns whether it
    /// runs. A failure is kept for [`App::app_state`] and returned.
    pub async fn start(&self) -> Result<bool, AppError> {
        let mut st = self.shared.state.lock().await;
        if st.running.is_some() {
            return Ok(true);
        }
        if !self.has_identity().await? {
            return Ok(false);
        }
        self.launch(&mut st, None).await?;
        Ok(true)
    }

    async fn has_identity(&self) -> Result<bool, AppError> {
        let local = LocalNode::open(&self.shared.data_dir)
            .await
            .map_err(|e| AppError::new(ErrorCode::Storage, e.to_string()))?;
        let me = local.store.identity().await.map_err(|e| AppError::new(ErrorCode::Storage, e.to_string()));
        local.store.close().await;
        Ok(me?.is_some())
    }

    fn config(&self, settings: &Settings, name: Option<String>) -> NodeConfig {
        let o = &self.shared.options;
        let mut cfg = NodeConfig::new(self.shared.data_dir.clone());
        cfg.name = name;
        cfg.festival = settings.festival.clone();
        cfg.interfaces = settings.interfaces.clone();
        cfg.peer_limit = settings.peer_limit.map(|n| n as usize);
        cfg.relay_url = settings.relay_url.clone();
        cfg.relay_id = settings.relay_peer_id();
        cfg.organiser = settings.organiser_peer_id();
        cfg.retention = settings.retention();
        cfg.power = o.power.clone();
        cfg.mdns = o.mdns.clone();
        cfg.loopback_candidates = o.loopback_candidates;
        cfg
    }

    /// Start a node with the current settings and forward its events.
    async fn launch(&self, st: &mut State, name: Option<String>) -> Result<(), AppError> {
        let cfg = self.config(&st.settings, name);
        // Subscribed before the node's actor runs: none of its first events
        // (the relay link up, a peer found at once) is lost.
        match NodeHandle::start_subscribed(cfg).await {
            Ok((node, mut rx)) => {
                let bus = self.shared.bus.clone();
                let forward = tokio::spawn(async move {
                    loop {
                        let ev = match rx.recv().await {
                            Ok(ev) => ev,
                            Err(broadcast::error::RecvError::Lagged(missed)) => NodeEvent::Lagged { missed },
                            Err(broadcast::error::RecvError::Closed) => break,
                        };
                        // No subscriber yet is fine: the UI reads state when it comes.
                        let _ = bus.send(ev);
                    }
                });
                if st.settings.name.is_empty() {
                    // Data from before settings were kept: the name is the identity's.
                    st.settings.name = node.status().await?.name;
                }
                if let Err(e) = self.refresh_notifier(&node).await {
                    tracing::warn!(code = ?e.code, error = %e.message, "notification settings not loaded");
                }
                st.running = Some(Running { node, forward });
                st.error = None;
                Ok(())
            }
            Err(e) => {
                let e = AppError::from(e);
                tracing::error!(code = ?e.code, error = %e.message, "the node could not start");
                st.error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn stop_node(st: &mut State) {
        if let Some(r) = st.running.take() {
            r.node.shutdown().await;
            r.forward.abort();
        }
    }

    /// Stop the node cleanly (mDNS goodbye, store closed). The app can start
    /// again afterwards.
    pub async fn shutdown(&self) {
        Self::stop_node(&mut *self.shared.state.lock().await).await;
    }

    async fn node(&self) -> Result<NodeHandle, AppError> {
        let st = self.shared.state.lock().await;
        match &st.running {
            Some(r) => Ok(r.node.clone()),
            None => Err(match &st.error {
                Some(e) => {
                    AppError::new(ErrorCode::NodeStopped, format!("Festival Chat is not running: {}", e.message))
                }
                None if st.settings.name.is_empty() => not_onboarded(),
                None => AppError::new(ErrorCode::NodeStopped, "Festival Chat is not running right now."),
            }),
        }
    }

    pub async fn app_state(&self) -> Result<AppState, AppError> {
        let (node, settings, error) = {
            let st = self.shared.state.lock().await;
            (st.running.as_ref().map(|r| r.node.clone()), st.settings.clone(), st.error.clone())
        };
        let status = match &node {
            Some(n) => Some(n.status().await?),
            None => None,
        };
        let onboarded = node.is_some() || self.has_identity().await?;
        Ok(AppState { onboarded, status, settings, error })
    }

    /// First start: make the identity with this name, join the festival room
    /// and start the node.
    pub async fn onboard(&self, name: &str) -> Result<Status, AppError> {
        let name = check_name(name)?;
        let mut st = self.shared.state.lock().await;
        if st.running.is_some() || self.has_identity().await? {
            return Err(AppError::new(ErrorCode::AlreadyOnboarded, "This device already has an identity."));
        }
        self.launch(&mut st, Some(name.clone())).await?;
        st.settings.name = name;
        st.settings.save(&self.shared.data_dir)?;
        let node = st.running.as_ref().map(|r| r.node.clone()).ok_or_else(not_onboarded)?;
        drop(st);
        Ok(node.status().await?)
    }

    pub async fn my_code(&self) -> Result<MyCode, AppError> {
        let status = self.node().await?.status().await?;
        my_code(&status.peer, &status.name)
    }

    pub async fn rooms(&self) -> Result<Vec<RoomView>, AppError> {
        Ok(self.node().await?.rooms().await?)
    }

    /// Join (or create) a room by its name ("Main Stage") or id ("main-stage").
    pub async fn join_room(&self, name: &str) -> Result<RoomView, AppError> {
        let node = self.node().await?;
        parse_joinable_room(name)
            .map_err(|e| AppError::new(ErrorCode::InvalidRoom, format!("{:?}: {e}", name.trim())))?;
        let id = node.join_room(name).await?;
        node.rooms()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| AppError::new(ErrorCode::Internal, "joined room missing from the room list"))
    }

    pub async fn history(
        &self,
        room: &str,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, AppError> {
        let room = parse_room_id(room)?;
        Ok(self.node().await?.history(&room, before, limit).await?)
    }

    pub async fn dm_history(
        &self,
        peer: &str,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, AppError> {
        let peer = parse_peer(peer)?;
        Ok(self.node().await?.dm_history(&peer, before, limit).await?)
    }

    async fn saved(node: &NodeHandle, id: MessageId) -> Result<MessageView, AppError> {
        node.message(&id)
            .await?
            .ok_or_else(|| AppError::new(ErrorCode::Storage, "the message was saved but cannot be read back"))
    }

    /// Post to a room; returns the message as saved (state `saved` or later).
    pub async fn send(&self, room: &str, text: &str) -> Result<MessageView, AppError> {
        check_text(text)?;
        let room = parse_room_id(room)?;
        let node = self.node().await?;
        let id = node.send(room, text.to_owned()).await?;
        Self::saved(&node, id).await
    }

    /// Send a direct message, sealed to `to` (a peer id or contact code).
    pub async fn send_dm(&self, to: &str, text: &str) -> Result<MessageView, AppError> {
        check_text(text)?;
        let to = parse_peer(to)?;
        let node = self.node().await?;
        if to == node.peer_id() {
            return Err(AppError::new(ErrorCode::InvalidPeer, "You cannot message yourself."));
        }
        let id = node.send_dm(to, text.to_owned()).await?;
        Self::saved(&node, id).await
    }

    /// Post a meet-up to a room: "meet at `place` at `at`" (ms since the
    /// Unix epoch). Returns its card as saved.
    pub async fn send_meetup(&self, room: &str, place: &str, at: u64) -> Result<MessageView, AppError> {
        let room = parse_room_id(room)?;
        let node = self.node().await?;
        let id = node.send_meetup(room, place.trim().to_owned(), at).await?;
        Self::saved(&node, id).await
    }

    /// Send a photo to a room: `bytes` as picked (JPEG, PNG, WebP or GIF,
    /// made to fit by `festival_node::photo::prepare`), with `caption`
    /// ("" for none). Returns the message as saved, the photo complete.
    pub async fn send_photo(&self, room: &str, bytes: Vec<u8>, caption: &str) -> Result<MessageView, AppError> {
        let room = parse_room_id(room)?;
        let node = self.node().await?;
        let id = node.send_photo(room, bytes, caption).await?;
        Self::saved(&node, id).await
    }

    /// A photo stored here, as JPEG bytes (its pieces checked against its
    /// hash); `photo_incomplete` while some are on their way.
    pub async fn photo(&self, id: MessageId) -> Result<Vec<u8>, AppError> {
        Ok(self.node().await?.photo(&id).await?)
    }

    /// Answer a meet-up ("coming" / "can't"); returns its card with the
    /// answer counted.
    pub async fn answer_meetup(&self, meetup: MessageId, answer: MeetupAnswer) -> Result<MessageView, AppError> {
        let node = self.node().await?;
        node.answer_meetup(meetup, answer).await?;
        Self::saved(&node, meetup).await
    }

    /// Send one of your messages again ("not delivered yet": retry);
    /// returns it with its delivery as it stands.
    pub async fn retry(&self, id: MessageId) -> Result<MessageView, AppError> {
        Ok(self.node().await?.retry(id).await?)
    }

    pub async fn mark_read(&self, room: &str, ids: Vec<MessageId>) -> Result<(), AppError> {
        let room = parse_room_id(room)?;
        Ok(self.node().await?.mark_read(room, ids).await?)
    }

    /// The organiser's announcements still running, newest first.
    pub async fn announcements(&self) -> Result<Vec<AnnouncementView>, AppError> {
        Ok(self.node().await?.announcements().await?)
    }

    pub async fn peers(&self) -> Result<Vec<PeerView>, AppError> {
        Ok(self.node().await?.peers().await?)
    }

    /// Mute a conversation (`dm:<peer>` mutes the person, in rooms too) or
    /// undo it: no notifications from it; its messages still show.
    pub async fn mute(&self, conversation: &str, muted: bool) -> Result<(), AppError> {
        let node = self.node().await?;
        if let Some(g) = conversation.strip_prefix("group:") {
            node.mute_group(&parse_group(g)?, muted).await?;
            return self.refresh_notifier(&node).await;
        }
        match parse_conversation(conversation)? {
            Conversation::Direct(peer) => {
                not_yourself(node.peer_id(), peer)?;
                node.mute_person(peer, muted).await?;
            }
            Conversation::Room(room) => node.mute_room(&room, muted).await?,
        }
        self.refresh_notifier(&node).await
    }

    /// Block a person (or undo it): their messages are hidden, their DMs
    /// not kept, and they get no receipts from me.
    pub async fn block(&self, peer: &str, blocked: bool) -> Result<(), AppError> {
        let node = self.node().await?;
        let peer = parse_peer(peer)?;
        not_yourself(node.peer_id(), peer)?;
        Ok(node.block(peer, blocked).await?)
    }

    /// Make a private group of me and `members` (peer ids or contact
    /// codes); returns it.
    pub async fn create_group(&self, name: &str, members: &[String]) -> Result<GroupView, AppError> {
        let node = self.node().await?;
        let people = parse_people(members)?;
        if people.iter().all(|p| *p == node.peer_id()) {
            return Err(AppError::new(ErrorCode::InvalidGroupMembers, "Add at least one person besides you."));
        }
        let id = node.create_group(name, people).await?;
        Self::group_of(&node, &id).await
    }

    async fn group_of(node: &NodeHandle, id: &GroupId) -> Result<GroupView, AppError> {
        node.group(id)
            .await?
            .ok_or_else(|| AppError::new(ErrorCode::Storage, "the group was saved but cannot be read back"))
    }

    /// The private groups I am (or was) in, the latest active first.
    pub async fn groups(&self) -> Result<Vec<GroupView>, AppError> {
        Ok(self.node().await?.groups().await?)
    }

    /// Post to a private group; returns the message as saved.
    pub async fn send_group(&self, group: &str, text: &str) -> Result<MessageView, AppError> {
        check_text(text)?;
        let group = parse_group(group)?;
        let node = self.node().await?;
        let id = node.send_group(group, text.to_owned()).await?;
        Self::saved(&node, id).await
    }

    /// Add people (peer ids or contact codes) to a private group I am in.
    pub async fn invite_to_group(&self, group: &str, members: &[String]) -> Result<GroupView, AppError> {
        let group = parse_group(group)?;
        let node = self.node().await?;
        node.invite_to_group(group, parse_people(members)?).await?;
        Self::group_of(&node, &group).await
    }

    /// Leave a private group; it stays, read-only.
    pub async fn leave_group(&self, group: &str) -> Result<GroupView, AppError> {
        let group = parse_group(group)?;
        let node = self.node().await?;
        node.leave_group(group).await?;
        Self::group_of(&node, &group).await
    }

    /// A page of a private group's history, as `history`.
    pub async fn group_history(
        &self,
        group: &str,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<HistoryPage, AppError> {
        let group = parse_group(group)?;
        Ok(self.node().await?.group_history(&group, before, limit).await?)
    }

    /// Search what I can read here (rooms, my DMs), newest first.
    pub async fn search(&self, query: &str, limit: u32) -> Result<SearchResults, AppError> {
        Ok(self.node().await?.search(query, limit).await?)
    }

    /// Everyone muted or blocked, the latest first: the list to undo it.
    pub async fn people_choices(&self) -> Result<Vec<PersonChoiceView>, AppError> {
        Ok(self.node().await?.people_choices().await?)
    }

    /// The conversation on screen (`None`: none): it raises no
    /// notification while the window has the focus.
    pub fn viewing(&self, conversation: Option<&str>) -> Result<(), AppError> {
        if let Some(c) = conversation {
            // A private group's conversation (`group:<id>`), or one `mute` takes.
            if let Some(g) = c.strip_prefix("group:") {
                parse_group(g)?;
            } else {
                parse_conversation(c)?;
            }
        }
        self.notifier().set_viewing(conversation.map(str::to_owned));
        Ok(())
    }

    /// The window gained or lost the focus (the desktop shell tells).
    pub fn set_focus(&self, focused: bool) {
        self.notifier().set_focus(focused);
    }

    fn mono_ms(&self) -> u64 {
        u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn notifier(&self) -> std::sync::MutexGuard<'_, Notifier> {
        // A panic while holding it leaves plain data behind: go on with it.
        self.shared.notifier.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Who I am and what is muted, for the notifier.
    async fn refresh_notifier(&self, node: &NodeHandle) -> Result<(), AppError> {
        let name = node.status().await?.name;
        let muted_rooms: Vec<RoomId> = node.rooms().await?.into_iter().filter(|r| r.muted).map(|r| r.id).collect();
        // The store's list: the names `NodeHandle::people_choices` adds are not needed here.
        let choices = node.store().people_choices().await.map_err(festival_node::runtime::NodeError::from)?;
        let groups = node.store().groups().await.map_err(festival_node::runtime::NodeError::from)?;
        let mut n = self.notifier();
        n.set_me(node.peer_id(), &name);
        n.set_muted(muted_rooms, choices.into_iter().filter(|c| c.muted).map(|c| c.peer));
        n.set_muted_groups(groups.into_iter().filter(|g| g.muted).map(|g| g.id.to_hex()));
        Ok(())
    }

    /// Hand every notification due to `sink` (the desktop shell shows it),
    /// from node events across restarts and from a timer for held ones and
    /// the digest.
    pub fn notifications(&self, sink: impl Fn(Notification) + Send + 'static) -> JoinHandle<()> {
        let mut rx = self.shared.bus.subscribe();
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(NOTIFY_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let due = tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(ev) => app.notifier().on_event(&ev, app.mono_ms()).into_iter().collect::<Vec<_>>(),
                        // Missed events are not worth a late notification.
                        Err(broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = tick.tick() => app.notifier().tick(app.mono_ms()),
                };
                for n in due {
                    sink(n);
                }
            }
        })
    }

    /// Mark the owner of this contact code verified.
    pub async fn verify(&self, code: &str) -> Result<PeerView, AppError> {
        let peer = parse_contact_code(code)?;
        Ok(self.node().await?.verify(peer).await?)
    }

    pub async fn status(&self) -> Result<Status, AppError> {
        Ok(self.node().await?.status().await?)
    }

    pub async fn settings(&self) -> Settings {
        self.shared.state.lock().await.settings.clone()
    }

    /// Check, keep and apply new settings: a new name is announced; a new
    /// festival, relay, peer limit or interface list restarts the node.
    /// Nothing is kept or changed if any field is invalid.
    pub async fn save_settings(&self, new: Settings) -> Result<Settings, AppError> {
        let mut new = new.validated()?;
        check_interfaces_exist(&new.interfaces)?;
        let mut st = self.shared.state.lock().await;
        let old = st.settings.clone();
        let onboarded = st.running.is_some() || !old.name.is_empty();
        if new.name.is_empty() {
            // Clearing the name is not a way to become nobody.
            new.name = old.name.clone();
        }
        if onboarded && new.name != old.name {
            if let Some(r) = &st.running {
                r.node.set_name(new.name.clone()).await?;
                self.notifier().set_me(r.node.peer_id(), &new.name);
            }
        }
        if !onboarded {
            // The name is picked by onboarding, which makes the identity.
            new.name = String::new();
        }
        new.save(&self.shared.data_dir)?;
        st.settings = new.clone();
        // A node that failed to start gets another try with every save.
        if onboarded && (st.running.is_none() || old.needs_restart(&new)) {
            tracing::info!("settings changed: restarting the node");
            Self::stop_node(&mut st).await;
            if let Err(e) = self.launch(&mut st, None).await {
                // Keep what worked: the old settings come back (the UI still
                // holds what was typed), and the node runs with them again.
                tracing::warn!(code = ?e.code, "the node does not start with the new settings; keeping the old ones");
                old.save(&self.shared.data_dir)?;
                st.settings = old;
                if self.launch(&mut st, None).await.is_ok() {
                    st.error = None;
                }
                return Err(e);
            }
        }
        Ok(new)
    }

    /// Receive every node event from now on, across node restarts, until
    /// `sink` returns false (the UI went away).
    pub fn subscribe(&self, sink: impl Fn(NodeEvent) -> bool + Send + 'static) -> JoinHandle<()> {
        let mut rx = self.shared.bus.subscribe();
        tokio::spawn(async move {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(missed)) => NodeEvent::Lagged { missed },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if !sink(ev) {
                    return;
                }
            }
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_data_dir_is_made_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("share/chat.festival.desktop");
        let app = App::new(&dir, AppOptions::default()).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        // Opening the store (without starting the node) keeps it so.
        assert!(!app.has_identity().await.unwrap());
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
