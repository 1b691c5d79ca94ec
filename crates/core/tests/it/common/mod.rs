//! A one-node harness: feeds inputs, persists into a map at once, records
//! deliveries, frames sent and rejections.
#![allow(dead_code)]

use std::collections::BTreeMap;

use festival_core::frame::{Frame, Item};
use festival_core::policy::PowerState;
use festival_core::sync::{drain_now, Config, Host, Input, LinkKind, Node, Now, Output, PersistError, ToPersist};
use festival_core::{Draft, Identity, Kind, LinkId, MessageId, PeerId, RoomId, SignedEnvelope};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const NOW: u64 = 1_750_000_000_000;

pub fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

pub fn text(author: &Identity, room: &str, seq: u64, text: &str) -> SignedEnvelope {
    SignedEnvelope::sign(
        author,
        Draft { seq, room: room.parse().unwrap(), kind: Kind::Text, created_at: NOW, body: text.as_bytes().to_vec() },
    )
    .unwrap()
}

pub fn push(env: &SignedEnvelope) -> Vec<u8> {
    Frame::Push(Item { hops: 1, envelope: env.bytes().to_vec() }).encode()
}

pub fn batch(envs: &[SignedEnvelope]) -> Vec<u8> {
    Frame::Batch { items: envs.iter().map(|e| Item { hops: 1, envelope: e.bytes().to_vec() }).collect() }.encode()
}

pub struct Harness {
    pub node: Node,
    pub now: u64,
    /// Everything the node's outputs did (fields reached through `Deref`).
    pub io: Io,
}

/// What the harness records of a node's outputs; its store.
#[derive(Default)]
pub struct Io {
    now: u64,
    pub stored: BTreeMap<(RoomId, PeerId, u64), MessageId>,
    pub delivered: Vec<(MessageId, PeerId, u64)>,
    pub sent: Vec<(LinkId, Frame)>,
    pub rejected: Vec<(LinkId, &'static str)>,
    pub persisted: usize,
    /// Every envelope the node had persisted, by id (its "store").
    pub envelopes: BTreeMap<MessageId, SignedEnvelope>,
    pub misbehaving: Vec<LinkId>,
    pub equivocators: Vec<PeerId>,
    pub skipped: Vec<(RoomId, PeerId, u64)>,
    /// Loads carried out (and answered).
    pub loads: usize,
    /// The path of each `Sent` (an own message's first departure).
    pub departures: Vec<(MessageId, LinkKind)>,
    /// When set, loads are kept here unanswered (a slow store).
    pub held_loads: Option<Vec<festival_core::sync::Load>>,
}

impl std::ops::Deref for Harness {
    type Target = Io;
    fn deref(&self) -> &Io {
        &self.io
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Io {
        &mut self.io
    }
}

impl Harness {
    pub fn new(seed: u64, rooms: Vec<RoomId>) -> Self {
        Harness::with_config(seed, Config { rooms, ..Config::default() })
    }

    pub fn with_config(seed: u64, cfg: Config) -> Self {
        Harness {
            node: Node::new(identity(seed), cfg, Default::default(), PowerState::Mains, NOW),
            now: NOW,
            io: Io::default(),
        }
    }

    /// Bring up a link to `peer` and complete the hello exchange.
    pub fn link(&mut self, link: u64, peer: &Identity) {
        self.link_of_kind(link, peer, LinkKind::Lan);
    }

    /// [`Self::link`] for a link of any kind (a relay session, say).
    pub fn link_of_kind(&mut self, link: u64, peer: &Identity, kind: LinkKind) {
        self.link_speaking(link, peer, kind, festival_core::sync::PROTOCOL_VERSION);
    }

    /// [`Self::link_of_kind`] to a peer that says hello in `version`.
    pub fn link_speaking(&mut self, link: u64, peer: &Identity, kind: LinkKind, version: u8) {
        let link = LinkId(link);
        self.feed(Input::LinkUp { link, peer: peer.peer_id(), kind });
        let hello = festival_core::frame::Hello {
            version,
            ack: true,
            rooms: self.node.rooms().cloned().collect(),
            relays: true,
            powered: true,
        };
        self.feed(Input::Frame { link, bytes: Frame::Hello(hello).encode() });
    }

    pub fn frame(&mut self, link: u64, bytes: Vec<u8>) {
        self.feed(Input::Frame { link: LinkId(link), bytes });
    }

    pub fn feed(&mut self, input: Input) {
        let out = self.node.handle(input, self.now);
        self.apply(out);
    }

    /// Carry out `out` with the loop every host runs (`drain`).
    pub fn apply(&mut self, out: Vec<Output>) {
        self.io.now = self.now;
        drain_now(&mut self.node, out, &mut self.io);
    }

    pub fn rejected_by(&self, peer: &Identity, code: &str) -> u64 {
        self.node.stats().peers.get(&peer.peer_id()).and_then(|c| c.rejected.get(code)).copied().unwrap_or(0)
    }
}

impl Host for Io {
    fn now(&self) -> Now {
        self.now.into()
    }

    async fn persist(&mut self, _: &Node, batch: Vec<ToPersist>) -> Vec<Result<(), PersistError>> {
        let mut results = Vec::new();
        for ToPersist { envelope, .. } in batch {
            let pos = (envelope.room().clone(), envelope.author(), envelope.seq());
            results.push(match self.stored.get(&pos) {
                Some(id) if *id != envelope.id() => Err(PersistError::Conflict),
                _ => {
                    self.persisted += 1;
                    self.stored.insert(pos, envelope.id());
                    self.envelopes.insert(envelope.id(), envelope);
                    Ok(())
                }
            });
        }
        results
    }

    async fn carry_out(&mut self, _: &Node, o: Output) -> Option<Input> {
        match o {
            Output::Deliver { id, author, seq, .. } => {
                self.delivered.push((id, author, seq));
                None
            }
            Output::Send { link, bytes } => {
                let frame = Frame::decode(&bytes).expect("we only send valid frames");
                // Every peer here joins our node's tree as its child
                // (a protocol-3 neighbour): its links push, as they
                // would for a peer that keeps its advert up to date.
                let answer = match &frame {
                    Frame::Tree(a) => {
                        let child = festival_core::frame::TreeAdvert { depth: a.depth + 1, parent: true, ..a.clone() };
                        Some(Input::Frame { link, bytes: Frame::Tree(child).encode() })
                    }
                    _ => None,
                };
                self.sent.push((link, frame));
                answer
            }
            Output::Load(load) if self.held_loads.is_some() => {
                self.held_loads.as_mut().expect("checked").push(load);
                None
            }
            Output::Load(load) => {
                self.loads += 1;
                let mut items = Vec::new();
                let mut bytes = 0;
                for seq in load.from..=load.to {
                    let pos = (load.room.clone(), load.author, seq);
                    let Some(env) = self.stored.get(&pos).and_then(|id| self.envelopes.get(id)) else { continue };
                    if env.created_at() < load.not_before {
                        continue;
                    }
                    if !items.is_empty() && bytes + env.bytes().len() > load.max_bytes {
                        break;
                    }
                    bytes += env.bytes().len();
                    items.push((env.clone(), 1));
                }
                Some(Input::Loaded { load, items })
            }
            Output::RecordProof { held, other } => {
                let pos = (other.room().clone(), other.author(), other.seq());
                let held = held.or_else(|| self.stored.get(&pos).and_then(|id| self.envelopes.get(id)).cloned());
                held.filter(|h| h.id() != other.id()).map(|a| Input::Proved { a, b: other })
            }
            Output::Sent { id, kind, .. } => {
                self.departures.push((id, kind));
                None
            }
            Output::Misbehaving { link, .. } => {
                self.misbehaving.push(link);
                None
            }
            Output::Equivocator { author } => {
                self.equivocators.push(author);
                None
            }
            Output::Skip { room, author, through } => {
                self.skipped.push((room, author, through));
                None
            }
            Output::Refused { link, report, .. } => {
                for (code, n) in report.counts {
                    self.rejected.extend(std::iter::repeat_n((link, code), n as usize));
                }
                None
            }
            _ => None,
        }
    }
}
