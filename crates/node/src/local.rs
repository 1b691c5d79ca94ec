//! A node's data dir used without the network: first-run set-up and the
//! commands that need only the store.

use std::path::{Path, PathBuf};

use festival_core::policy::PowerState;
use festival_core::sync::{Config, Content};
use festival_core::{Identity, MessageId, PeerId, RoomId};
use festival_store::{OpenError, Store, StoreError};

use crate::clock::now_ms;
use crate::datadir::DB_FILE;
use crate::engine::{Engine, EngineError};
use crate::runtime::events::MessageView;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot make the data dir {dir} private to this user: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("cannot open the store in {dir}: {source}")]
    Open { dir: PathBuf, source: OpenError },
    #[error("already set up as {name} ({peer}); your identity is kept")]
    AlreadyInitialised { name: String, peer: PeerId },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("invalid room: {0}")]
    Room(#[from] festival_core::IdError),
}

pub struct LocalNode {
    pub dir: PathBuf,
    pub store: Store,
}

impl LocalNode {
    /// Open (or make) the data dir, owner-only (see
    /// [`crate::datadir::create_private_dir`]), and its store.
    pub async fn open(dir: &Path) -> Result<LocalNode, LocalError> {
        crate::datadir::create_private_dir(dir).map_err(|source| LocalError::Dir { dir: dir.to_owned(), source })?;
        let store =
            Store::open(&dir.join(DB_FILE)).await.map_err(|source| LocalError::Open { dir: dir.to_owned(), source })?;
        Ok(LocalNode { dir: dir.to_owned(), store })
    }

    /// Make this device's identity, join the festival room and announce the
    /// name. Refuses to replace an existing identity.
    pub async fn init(&self, name: &str) -> Result<PeerId, LocalError> {
        if let Some(me) = self.store.identity().await? {
            return Err(LocalError::AlreadyInitialised { name: me.name, peer: me.identity.peer_id() });
        }
        let identity = Identity::generate(&mut rand_core::OsRng);
        let peer = identity.peer_id();
        self.store.create_identity(&identity, name, now_ms()).await?;
        self.store.join_room(&RoomId::festival(), "Festival", now_ms()).await?;
        let mut engine = self.engine().await?;
        engine.send(RoomId::festival(), Content::Profile(name.to_owned())).await?;
        Ok(peer)
    }

    pub async fn engine(&self) -> Result<Engine, LocalError> {
        self.engine_with(Config::default()).await
    }

    async fn engine_with(&self, cfg: Config) -> Result<Engine, LocalError> {
        Ok(Engine::boot(self.store.clone(), cfg, PowerState::Mains).await?)
    }

    /// Save a text message in `room` (joining it first if needed). It leaves
    /// the device when a peer is reachable.
    pub async fn send(&self, room: &str, text: &str) -> Result<MessageId, LocalError> {
        let room = parse_joinable_room(room)?;
        if !self.store.rooms().await?.iter().any(|r| r.room == room) {
            self.store.join_room(&room, room.as_str(), now_ms()).await?;
        }
        let mut engine = self.engine().await?;
        let (id, _) = engine.send(room, Content::Text(text.to_owned())).await?;
        Ok(id)
    }

    /// Save the organiser's announcement, shown until `until` (ms since the
    /// Unix epoch; within the festival's message lifetime, `lifetime_ms`). This node's own key is the organiser's: the one that
    /// may (`festival-node run --organiser self` carries it).
    pub async fn announce(&self, text: &str, until: u64, lifetime_ms: u64) -> Result<MessageId, LocalError> {
        let me = self.store.identity().await?.ok_or(EngineError::NoIdentity)?.identity.peer_id();
        let cfg = Config { organiser: Some(me), message_lifetime_ms: lifetime_ms, ..Config::default() };
        let mut engine = self.engine_with(cfg).await?;
        let (id, _) =
            engine.send(RoomId::announcements(), Content::Announcement { text: text.to_owned(), until }).await?;
        Ok(id)
    }

    /// The latest `limit` readable messages of a room, oldest first.
    pub async fn history(&self, room: &str, limit: u32) -> Result<Vec<MessageView>, LocalError> {
        let room = parse_room(room)?;
        let me = self.store.identity().await?.ok_or(EngineError::NoIdentity)?;
        let names = crate::names::Names::load(&self.store, me.identity.peer_id(), &me.name).await?;
        let mut out = Vec::new();
        for m in self.store.history(&room, None, limit).await? {
            if let Some(v) =
                crate::view::view(&self.store, &me.identity, &names, &m, now_ms(), crate::runtime::DELIVERY_TIMEOUT_MS)
                    .await?
            {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// Accept a room id ("main-stage") or a display name ("Main Stage").
pub fn parse_room(s: &str) -> Result<RoomId, festival_core::IdError> {
    s.parse::<RoomId>().or_else(|_| RoomId::from_display_name(s))
}

/// A room a person may join and post to: [`parse_room`], but not the DM
/// mailbox nor the announcements (reserved: never joined by name or id).
pub fn parse_joinable_room(s: &str) -> Result<RoomId, festival_core::IdError> {
    let room = parse_room(s)?;
    if room.is_everyones() && room != RoomId::festival() {
        return Err(festival_core::IdError::ReservedRoom(room.as_str().to_owned()));
    }
    Ok(room)
}
