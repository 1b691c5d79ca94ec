//! Hostile nodes: what a device with one key, or with a thousand fresh ones,
//! can send to its neighbours. Used by the adversary tests and by
//! `festival-bench attack`. Each hostile node keeps a real core (its links
//! come up like anyone's) and, every round, injects its attack's frames
//! on its links.

use std::collections::BTreeSet;

use festival_core::body::{seal_dm, seal_receipt, Body, ReceiptBody, ReceiptStatus};
use festival_core::frame::{Frame, Head, Item, MsgRef, Summary, TreeAdvert};
use festival_core::{Draft, Identity, MessageId, PeerId, RoomId, SignedEnvelope};
use rand::Rng;

use crate::Sim;

/// One kind of attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    /// Sealed 4 KB DMs to random honest nodes, each from a fresh key.
    DmFlood,
    /// Summaries of 1,024 invented authors, with `reply=true`.
    InventedSummaries,
    /// Announcements (IHave) of 512 invented messages.
    IHaveFlood,
    /// Claims of 50 messages of every honest author, never served (the node
    /// also drops its own batches and `Gone`s).
    ClaimStall,
    /// "Read" receipts for DMs it carries: sealed to each DM's author, and
    /// in clear in the festival room.
    ForgedReceipts,
    /// Tree adverts for a made-up root that outranks everyone (on mains,
    /// the highest id), one hop away, to draw the festival room's tree
    /// through itself; and it pushes nothing (a black hole in the tree).
    TreeHijack,
}

impl Attack {
    pub const ALL: [Attack; 6] = [
        Attack::DmFlood,
        Attack::InventedSummaries,
        Attack::IHaveFlood,
        Attack::ClaimStall,
        Attack::ForgedReceipts,
        Attack::TreeHijack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::DmFlood => "dm_flood",
            Attack::InventedSummaries => "invented_summaries",
            Attack::IHaveFlood => "ihave_flood",
            Attack::ClaimStall => "claim_stall",
            Attack::ForgedReceipts => "forged_receipts",
            Attack::TreeHijack => "tree_hijack",
        }
    }
}

/// The hostile nodes of a run and their attacks.
pub struct Attacks {
    hostile: Vec<(usize, Attack)>,
    /// Links of each hostile node, looked up once.
    neighbours: Vec<Vec<usize>>,
    forged: BTreeSet<MessageId>,
    round: u64,
    /// Fresh-key DMs per flooding node per round.
    pub flood_per_round: usize,
}

fn push(env: &SignedEnvelope) -> Vec<u8> {
    Frame::Push(Item { hops: 1, envelope: env.bytes().to_vec() }).encode()
}

fn sign(author: &Identity, room: RoomId, seq: u64, body: Body, now: u64) -> SignedEnvelope {
    let draft = Draft { seq, room, kind: body.kind(), created_at: now, body: body.encode() };
    SignedEnvelope::sign(author, draft).expect("valid draft")
}

fn invented(i: u64) -> PeerId {
    let mut b = [0xaa; 32];
    b[..8].copy_from_slice(&i.to_le_bytes());
    PeerId::from_bytes(b)
}

impl Attacks {
    /// `hostile`: (node, attack) pairs; `edges`: the links of the run.
    pub fn new(sim: &mut Sim, hostile: Vec<(usize, Attack)>, edges: &[(usize, usize)]) -> Attacks {
        let neighbours = hostile
            .iter()
            .map(|(h, _)| {
                edges
                    .iter()
                    .filter_map(|&(a, b)| {
                        if a == *h {
                            Some(b)
                        } else if b == *h {
                            Some(a)
                        } else {
                            None
                        }
                    })
                    .collect()
            })
            .collect();
        for (h, a) in &hostile {
            if *a == Attack::ClaimStall {
                sim.nodes[*h].serves = false;
            }
            if *a == Attack::TreeHijack {
                sim.nodes[*h].pushes = false;
            }
        }
        Attacks { hostile, neighbours, forged: BTreeSet::new(), round: 0, flood_per_round: 1 }
    }

    pub fn is_hostile(&self, i: usize) -> bool {
        self.hostile.iter().any(|(h, _)| *h == i)
    }

    /// One round of every hostile node's attack. `honest` are the nodes
    /// whose authors are claimed and whom the flood writes to.
    pub fn round(&mut self, sim: &mut Sim, honest: &[usize]) {
        self.round += 1;
        let round = self.round;
        let now = sim.now;
        for k in 0..self.hostile.len() {
            let (h, attack) = self.hostile[k];
            let frames = match attack {
                Attack::DmFlood => (0..self.flood_per_round)
                    .map(|_| {
                        let key = Identity::generate(&mut sim.rng);
                        let pick = sim.rng.gen_range(0..honest.len());
                        let to = sim.peer_id(honest[pick]);
                        let sealed = seal_dm(&key, &to, &"x".repeat(4_000), &mut sim.rng).expect("seals");
                        push(&sign(&key, RoomId::direct(), 1, Body::SealedDm(sealed), now))
                    })
                    .collect(),
                Attack::InventedSummaries => {
                    let heads = (0..1_024)
                        .map(|i| Head {
                            author: invented(round * 1_024 + i),
                            contiguous: 5,
                            max: 5,
                            tip: MessageId::from_bytes([3; 32]),
                        })
                        .collect();
                    vec![Frame::Summary(Summary { room: RoomId::festival(), heads, reply: true }).encode()]
                }
                Attack::IHaveFlood => {
                    let refs = (0..512)
                        .map(|i| MsgRef {
                            room: RoomId::festival(),
                            author: invented(1 << 40 | (round * 512 + i)),
                            seq: 1,
                            id: MessageId::from_bytes([4; 32]),
                        })
                        .collect();
                    vec![Frame::IHave { refs }.encode()]
                }
                Attack::ClaimStall => {
                    let heads = honest
                        .iter()
                        .map(|i| Head {
                            author: sim.peer_id(*i),
                            contiguous: 50,
                            max: 50,
                            tip: MessageId::from_bytes([5; 32]),
                        })
                        .collect();
                    vec![Frame::Summary(Summary { room: RoomId::festival(), heads, reply: false }).encode()]
                }
                Attack::ForgedReceipts => self.forge(sim, h, round, now),
                Attack::TreeHijack => {
                    let advert = TreeAdvert {
                        room: RoomId::festival(),
                        root: PeerId::from_bytes([0xff; 32]),
                        powered: true,
                        epoch: round as u32,
                        depth: 1,
                        parent: false,
                    };
                    vec![Frame::Tree(advert).encode()]
                }
            };
            for n in self.neighbours[k].clone() {
                for f in &frames {
                    sim.inject(h, n, f.clone());
                }
            }
        }
    }

    /// Sealed and clear "read" receipts for up to five DMs node `h` carries
    /// and has not answered yet.
    fn forge(&mut self, sim: &mut Sim, h: usize, round: u64, now: u64) -> Vec<Vec<u8>> {
        let Some(core) = sim.nodes[h].core.as_ref() else { return Vec::new() };
        let me = Identity::from_secret_bytes(&core.identity().secret_bytes());
        let dms: Vec<(MessageId, PeerId)> = sim.nodes[h]
            .delivered
            .iter()
            .filter(|d| d.room.is_direct() && d.author != me.peer_id() && !self.forged.contains(&d.id))
            .map(|d| (d.id, d.author))
            .collect();
        let mut seq = 1_000 + round * 100;
        let mut frames = Vec::new();
        for (id, author) in dms.into_iter().rev().take(5) {
            self.forged.insert(id);
            seq += 1;
            let r = ReceiptBody { status: ReceiptStatus::Read, ids: vec![id] };
            let Ok(sealed) = seal_receipt(&me, &author, r.clone(), &mut sim.rng) else { continue };
            frames.push(push(&sign(&me, RoomId::direct(), seq, Body::SealedReceipt(sealed), now)));
            frames.push(push(&sign(&me, RoomId::festival(), seq, Body::Receipt(r), now)));
        }
        frames
    }
}
