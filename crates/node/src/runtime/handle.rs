//! `NodeHandle`: the one API of a running node.

use std::sync::Arc;

use festival_core::sync::{Content, SendError};
use festival_core::{MessageId, PeerId, RoomId};
use festival_store::{HistoryCursor, RoomRecord, Store, StoreError};
use tokio::sync::{broadcast, mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use super::actor::{self, Command};
use super::config::{NodeConfig, StartError};
use super::events::{MessageView, NodeEvent, PeerView, Status};
use crate::engine::EngineError;

/// Commands waiting for the actor. Small: callers wait for their answer.
const INBOX: usize = 64;
/// Events buffered per subscriber; a subscriber that falls further behind
/// misses events (and can re-read history), it never slows the node.
const EVENTS: usize = 4096;

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
    #[error("the node has stopped")]
    Stopped,
}

struct Inner {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    store: Store,
    peer: PeerId,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Cheap to clone; every clone talks to the same node.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

impl NodeHandle {
    /// Open the data dir, bind sockets, announce on the LAN and start the actor.
    pub async fn start(cfg: NodeConfig) -> Result<NodeHandle, StartError> {
        let (tx, rx) = mpsc::channel(INBOX);
        let (events, _) = broadcast::channel(EVENTS);
        let (actor, store, peer) = actor::Actor::build(cfg, rx, events.clone()).await?;
        let task = tokio::spawn(actor.run());
        Ok(NodeHandle { inner: Arc::new(Inner { tx, events, store, peer, task: Mutex::new(Some(task)) }) })
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
        let room = crate::local::parse_room(name)?;
        let name = name.trim().to_owned();
        self.ask(|reply| Command::Join { room, name, reply }).await?
    }

    /// Tell the authors of these messages that we read them.
    pub async fn mark_read(&self, room: RoomId, ids: Vec<MessageId>) -> Result<(), NodeError> {
        self.ask(|reply| Command::MarkRead { room, ids, reply }).await?
    }

    /// A page of a room's history, oldest first; readable messages only.
    pub async fn history(
        &self,
        room: &RoomId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<MessageView>, NodeError> {
        let me = self.inner.store.identity().await?.ok_or(EngineError::NoIdentity)?;
        let page = self.inner.store.history(room, before, limit).await?;
        let mut out = Vec::with_capacity(page.len());
        for m in page {
            if let Some(v) = crate::view::view(&self.inner.store, &me.identity, &m).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    pub async fn rooms(&self) -> Result<Vec<RoomRecord>, NodeError> {
        Ok(self.inner.store.rooms().await?)
    }

    pub async fn peers(&self) -> Result<Vec<PeerView>, NodeError> {
        self.ask(|reply| Command::Peers { reply }).await
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
