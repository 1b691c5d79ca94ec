//! Who links to whom, sans IO: `Mesh::handle(input, now) -> outputs`, in the
//! manner of iroh-gossip's `proto/hyparview.rs`. The node's runtime turns
//! the outputs into sockets and WebRTC connections; the simulator turns
//! them into virtual links; both feed back what happened. Time is the
//! monotonic clock (`Now::mono`), randomness comes from a seed.
//!
//! # The rules
//! The lower PeerId dials (no glare), failed or dropped links are retried
//! with exponential backoff and jitter, and no more links are opened than
//! the peer limit allows.
//!
//! With a low peer limit the lower-id rule alone can split a LAN for good:
//! nodes with low ids fill up with each other and nobody with room may dial
//! them. So a node keeps at most `limit - 1` links toward higher ids and
//! keeps the last slot for a lower node's dial. Then every node but the
//! highest links to a higher one (it retries the next higher peer when one
//! is full), and following those links upwards always ends at the highest
//! node: the LAN stays one connected mesh under any limit >= 2.
//!
//! That needs every node but the highest to find a slot upward, and a node
//! whose slots all went to lower nodes' dials has none for its own dial up:
//! the nodes above it are cut off. So a node full of lower links (it had no
//! higher peer when they came) drops the least useful of them when a higher
//! peer appears, and dials it. And a full node that a lower peer dials gives
//! it the place of its farthest lower link when that peer is nearer than
//! every lower link it has (the peer's chain link is to us): a node that
//! dials its nearest higher peer gets in (at a limit of 2 the links settle
//! on the chain of all nodes in id order). The dropped node redials and,
//! finding us full, moves on to the next higher node. Other lower peers
//! wait for a free slot: the links that are not chain links are chords
//! across the crowd, and they stay, but for one: a peer that keeps dialing
//! a full node in vain (see [`ADOPT_AFTER`]) gets a chord's place, and the
//! next such peer takes that same place, so a stream of them (fresh keys
//! too) moves one slot, never more.
//!
//! A node that starts just after its higher neighbour announced may not hear
//! that neighbour for a second (mDNS multicasts a record at most once a
//! second per interface, so the answer to its query waits), while the
//! neighbour hears the newcomer's own announcement at once. So the higher
//! node knocks: [`KNOCK_DELAY`] after a lower peer appears, if that peer
//! has not dialed it, it dials the peer once itself. Slots count links by
//! direction (toward a higher or a lower id), not by who dialed, so a knock
//! takes exactly the slots the lower peer's own dial would have taken, and
//! the argument above holds: the lower peer accepts a knock only while it
//! could still have dialed us itself. One knock at a time, and only while
//! two slots are free, so records anyone can multicast (low ids at dead
//! addresses) never take the last slot from a real lower node's dial.
//!
//! The other slots toward higher ids go to the most useful peers: stable
//! ones (no recent failures) first, then nodes on mains power (venue boxes
//! stay up and relay for others), then in an order each node draws for
//! itself ([`Mesh::rank`]). When a node is full it still improves its
//! links, one move at a time, each strictly better than before so the moves
//! settle: a nearer higher peer takes the place of the least useful link
//! (which restores the chain above), and a powered peer takes the place of
//! an unpowered link other than the one to the nearest higher peer. The
//! least useful link is the unpowered one sharing the fewest rooms with us,
//! the farthest first.
//!
//! A discovery record is a claim anyone on the LAN can make: an open link
//! (DTLS with the key it claims, then a signed handshake) is never dropped
//! for one. A new address is dialed when that link fails; only our own
//! dials still opening start over at the new address.
//!
//! A link holds a slot only if it carries something: a peer that has not
//! said hello [`HELLO_TIMEOUT`] after its link opened (a Sybil that takes
//! links and forwards nothing, its id ground to sort just above or below
//! ours) loses the link and is banned for a while, and a banned peer does
//! not count as the nearest higher one: the chain goes around it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Bound;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::sync::{Millis, Now};
use crate::{LinkId, PeerId};

mod upgrade;
pub use upgrade::{MAX_RETRY, MAX_SEEN, RETRY_MAX, RETRY_MIN, SEEN_FOR, SLOW_RELAY};

/// First retry after a failure; doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Millis = 500;
/// Longest wait between attempts: a peer that comes back is found within this.
pub const BACKOFF_MAX: Millis = 30_000;
/// Retry period for a peer that refused us because it was full.
pub const BUSY_RETRY: Millis = 2_000;
/// How long a peer whose link we dropped for misbehaving is neither dialed
/// nor accepted: long enough that a flood costs it its place, short enough
/// that a buggy but honest device comes back within the hour.
pub const MISBEHAVING_BAN: Millis = 300_000;
/// How long a node waits for a peer with a lower id that just appeared to
/// dial it, before knocking (dialing that peer itself, once). A peer that
/// already knows us dials within a few tens of milliseconds of starting; one
/// that does not would wait ~1 s for our record. Every millisecond here is
/// one on a newcomer's first message in half the starts (`festival-bench
/// lan`: 150 ms gave a median start-to-first-message of ~310 ms, half the
/// runs paying the wait); a knock that crosses the peer's own dial is a
/// glare the lower id wins, one dial wasted.
pub const KNOCK_DELAY: Millis = 50;
/// The shortest time between two knocks on one peer: a record that says
/// goodbye and comes back (anyone can multicast one) cannot have every node
/// knock again and again.
pub const KNOCK_REARM: Millis = 60_000;
/// A link that has not opened this long after its dial or offer is given
/// up and closed: our LAN dial counts as failed (an upgrade dial through
/// the relay does not), and a peer whose offer never opened is banned like
/// one that never said hello. The transport reports a failure or a close
/// in seconds, but a dial whose answer or close got lost would otherwise
/// hold its slot for good, and a knock under way stops all other knocks (a
/// node with no link stayed alone behind one, in the simulator).
pub const DIAL_TIMEOUT: Millis = 20_000;
/// A node with no link at all knocks on its lower peers again this often:
/// the top of the crowd by id (or of the part of it a node hears) has no
/// higher peer to dial, and when no lower peer takes it as the nearest
/// higher one, knocks are its only way in (see [`ADOPT_AFTER`]).
pub const LONELY_REKNOCK: Millis = 5_000;
/// How long an open link may stay silent before its peer's hello: an
/// honest core greets at once and resends its hello on a lossy link, so a
/// peer that says nothing for this long only holds a slot (a Sybil's black
/// hole). Its link closes and the peer is banned like one that misbehaved.
pub const HELLO_TIMEOUT: Millis = 10_000;
/// Peers remembered as banned at once: a node links to a handful of peers,
/// and each ban is earned on a link, so a few hundred is plenty; the oldest
/// is forgotten beyond it.
const MAX_BANNED: usize = 256;
/// A peer refused for a full house this many times, at least
/// [`BUSY_RETRY`] apart, dialing again, has likely found no place elsewhere
/// (a node that hears few nodes near it in id, all of them full with nearer
/// links: at limits 2-4 on a crowd where each hears a few dozen, one in some
/// thousands ended with no link at all). It gets the place of a chord: the
/// link a previous such peer got, if there is one, else a link other than
/// to our successor and predecessor (on the dialer's side of us when it
/// dials from above: a knock takes an upward slot). So adoptions share one
/// slot: a stream of fresh keys dialing in vain rotates that one slot and
/// cannot take a second.
pub const ADOPT_AFTER: u32 = 2;
/// At most one adoption per this long.
pub const ADOPT_GAP: Millis = 10_000;
/// Peers remembered at once. Discovery reports every device in earshot and
/// a lost one is kept (to find it again at once), so over a weekend, or
/// under a stream of records with fresh keys, the table would grow without
/// end. Beyond the cap a new peer takes the place of one without a link:
/// a lost one first, then the one whose dials failed most (a record with an
/// address nobody answers), then the newest (discovery reports a record
/// again only when it changes, so peers known long are the ones a flood of
/// fresh records must not push out: it pushes out its own).
pub const MAX_PEERS: usize = 1024;

/// Why a peer's offer is refused. The wording is what the peer is told;
/// a dialer branches on "peer limit reached" (retry on a short period);
/// every other reason is a failed dial to it (docs/protocol.md, Rejects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its link misbehaved: neither dialed nor accepted for a while.
    Banned,
    /// Both dialed at once and ours wins (we have the lower id).
    Glare,
    /// An offer of its that was sent later is already under way.
    Superseded,
    /// No slot for it.
    Full,
    /// A relayed offer from a peer we do not know: not an upgrade we
    /// started, not heard through the relay lately, never met or verified.
    Stranger,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Banned => "backing off: your link misbehaved",
            Refusal::Glare => "glare: my dial to you is under way",
            Refusal::Superseded => "superseded by a newer offer of yours",
            Refusal::Full => "peer limit reached",
            Refusal::Stranger => "relayed offers are taken only from peers we know",
        }
    }

    /// A label for counters.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Banned => "banned",
            Refusal::Glare => "glare",
            Refusal::Superseded => "superseded",
            Refusal::Full => "peer_limit",
            Refusal::Stranger => "stranger",
        }
    }
}

/// How an offer reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// LAN signaling: TCP to the port our record advertises.
    Lan,
    /// Relayed signaling: anyone on the relay can send one, from as many
    /// keys as it likes and from anywhere. `met`: we linked to the peer
    /// directly before, or verified it (the caller's store knows).
    Relay { met: bool },
}

/// What the mesh learns.
#[derive(Clone, Debug)]
pub enum Input {
    /// A discovery record for `peer` (new, or again with the same or new
    /// addresses or power).
    Discovered { peer: PeerId, addrs: Vec<IpAddr>, port: u16, powered: bool },
    /// The record said goodbye or expired.
    Lost { peer: PeerId },
    /// A verified offer from `peer` (signature and freshness checked by the
    /// caller), sent at `sent_at` by the peer's clock, come `via` LAN or
    /// relay signaling. Answered with [`Output::Accept`] or
    /// [`Output::Refuse`].
    Offer { peer: PeerId, sent_at: u64, via: Via },
    /// The peer answered our dial on `link`; the connection is opening.
    Answered { link: LinkId },
    /// Our dial on `link` failed: refused because the peer is full (`busy`),
    /// or anything else.
    DialFailed { link: LinkId, busy: bool },
    /// `link` is open (the data channel works).
    Opened { link: LinkId },
    /// `link` ended by itself (not by an [`Output::Close`]).
    Closed { link: LinkId },
    /// The peer on `link` kept sending what no honest peer sends.
    Misbehaved { link: LinkId },
    /// A relay session is up, with the relay `relay` (see [`upgrade`]).
    RelayUp { relay: PeerId },
    /// The relay session ended.
    RelayDown,
    /// One round trip of the relay (a ping, or a message until its
    /// `Stored`), in milliseconds.
    RelayRoundTrip { ms: Millis },
    /// Messages of these authors reached us through the relay: peers we
    /// could link to directly.
    HeardViaRelay { authors: Vec<PeerId> },
    /// The most links at once (power policy or a flag).
    SetLimit(usize),
    /// Time passed (a wake-up).
    Tick,
}

/// What the mesh asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Offer `peer` a link, numbered `link`: at `addrs`/`port` on the LAN,
    /// or through the relay when `upgrade`.
    Dial {
        link: LinkId,
        peer: PeerId,
        addrs: Vec<IpAddr>,
        port: u16,
        upgrade: bool,
    },
    /// The answer to an [`Input::Offer`]: accept it as `link` (older links
    /// to the same peer come as [`Output::Close`] before it).
    Accept {
        link: LinkId,
        peer: PeerId,
    },
    Refuse {
        peer: PeerId,
        why: Refusal,
    },
    /// Close `link` (ours to end): tell the peer, and the sync layer if it
    /// was open.
    Close {
        link: LinkId,
        peer: PeerId,
        was_open: bool,
        why: &'static str,
    },
    /// Call again with [`Input::Tick`] at this time.
    WakeAt(Millis),
}

#[derive(Clone, Debug)]
pub struct Peer {
    pub addrs: Vec<IpAddr>,
    pub port: u16,
    /// Still announced.
    pub discovered: bool,
    /// Our link to it, dialing or open (ours or its dial to us).
    pub link: Option<LinkId>,
    /// Dials that failed (unreachable, or the link dropped) since it last
    /// opened.
    pub failures: u32,
    /// Dials it refused because it was full, since it last opened.
    pub refusals: u32,
    pub next_attempt: Millis,
    /// Claims mains power in its record.
    pub powered: bool,
    /// For a lower peer that just appeared: when to knock if it has not
    /// dialed us by then. Cleared by the knock and by a link opening.
    knock_at: Option<Millis>,
    /// When we last knocked on it (see [`KNOCK_REARM`]).
    knocked_at: Option<Millis>,
    /// Its place in our order of preference among equals: a keyed hash of
    /// its id (see [`Mesh::rank`]).
    rank: u64,
    /// When its record was last reported (see [`MAX_PEERS`]).
    seen_at: Millis,
    /// Its dials we refused for a full house, at least [`BUSY_RETRY`]
    /// apart, since a link with it last opened or it was last lost (see
    /// [`ADOPT_AFTER`]), and when the last of them was.
    turned_away: u32,
    turned_away_at: Millis,
}

impl Peer {
    /// When a node with no link may knock on this lower peer again (its
    /// first knock comes [`KNOCK_DELAY`] after it appeared, as for all):
    /// [`LONELY_REKNOCK`] after the last knock, doubled for each failed or
    /// refused dial since it last linked (up to 8 times), so a lonely node
    /// does not dial without pause.
    fn lonely_due(&self) -> Option<Millis> {
        let backoff = (self.failures + self.refusals).min(3);
        self.knocked_at.map(|t| t + (LONELY_REKNOCK << backoff))
    }

    /// Knock after [`KNOCK_DELAY`], unless we knocked within [`KNOCK_REARM`].
    fn arm_knock(&mut self, now: Millis) {
        if self.knocked_at.is_none_or(|at| now.saturating_sub(at) >= KNOCK_REARM) {
            self.knock_at = Some(now + KNOCK_DELAY);
        }
    }
}

#[derive(Clone, Debug)]
pub struct Link {
    pub peer: PeerId,
    /// We dialed it.
    pub outbound: bool,
    /// Signaled through the relay.
    pub upgrade: bool,
    /// A move (see [`Mesh::kept`]): the link this one replaces once open,
    /// and why.
    pub replaces: Option<(LinkId, &'static str)>,
    /// Our dial, waiting for the answer.
    pub awaiting_answer: bool,
    /// For a link the peer dialed: its offer's `sent_at`. Two offers from
    /// one peer can arrive out of order (a redial while the first was in
    /// flight); the older one must not replace the newer.
    pub offered_at: Option<u64>,
    pub open: bool,
    /// The peer's hello arrived (see [`Mesh::set_value`]); until then, the
    /// time it opened.
    pub greeted: bool,
    pub opened_at: Millis,
    /// When the dial or the offer began (see [`DIAL_TIMEOUT`]).
    pub started_at: Millis,
    /// Accepted in a chord's place (see [`ADOPT_AFTER`]).
    pub adopted: bool,
    /// From its hello (see [`Mesh::set_value`]).
    pub powered: bool,
    pub shared_rooms: usize,
}

pub struct Mesh {
    me: PeerId,
    limit: usize,
    peers: BTreeMap<PeerId, Peer>,
    links: BTreeMap<LinkId, Link>,
    /// Peers dropped for misbehaving, until when.
    banned: BTreeMap<PeerId, Millis>,
    next_link: u64,
    rng: ChaCha8Rng,
    /// Key of [`Mesh::rank`], from the seed.
    salt: [u8; 32],
    wake: Option<Millis>,
    /// Peers forgotten to keep the table within [`MAX_PEERS`], and new ones
    /// not taken because every place held a link.
    forgotten: u64,
    /// When we last gave a chord's place to a peer that found none.
    adopted_at: Option<Millis>,
    /// The relay path and the upgrades from it.
    upgrades: upgrade::Upgrades,
}

impl Mesh {
    /// A mesh for node `me`, at most `limit` links, jitter from `seed`.
    pub fn new(me: PeerId, limit: usize, seed: [u8; 32]) -> Mesh {
        let mut rng = ChaCha8Rng::from_seed(seed);
        let mut salt = [0; 32];
        rng.fill_bytes(&mut salt);
        Mesh {
            me,
            limit,
            peers: BTreeMap::new(),
            links: BTreeMap::new(),
            banned: BTreeMap::new(),
            next_link: 1,
            rng,
            salt,
            wake: None,
            forgotten: 0,
            adopted_at: None,
            upgrades: upgrade::Upgrades::default(),
        }
    }

    /// A peer's place in this node's order of preference among otherwise
    /// equal peers: a hash of its id keyed by our seed, so each node ranks
    /// the crowd in its own random order. By id, every node's extra dials
    /// went first to its next few ids, and every phone's move to a powered
    /// peer to the same venue box, the lowest, which refused all but a few.
    fn rank(&self, peer: &PeerId) -> u64 {
        let h = blake3::keyed_hash(&self.salt, peer.as_bytes());
        u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn peers(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.iter()
    }

    pub fn peer(&self, peer: &PeerId) -> Option<&Peer> {
        self.peers.get(peer)
    }

    pub fn links(&self) -> impl Iterator<Item = (&LinkId, &Link)> {
        self.links.iter()
    }

    pub fn link(&self, link: LinkId) -> Option<&Link> {
        self.links.get(&link)
    }

    /// Peers forgotten for [`MAX_PEERS`] (or not taken, every place holding
    /// a link).
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Make room for a new peer when the table is full: forget the least
    /// worth keeping of those without a link. False when every place holds
    /// a link.
    fn make_room(&mut self) -> bool {
        if self.peers.len() < MAX_PEERS {
            return true;
        }
        self.forgotten += 1;
        let victim = self
            .peers
            .iter()
            .filter(|(id, p)| p.link.is_none() && !self.links.values().any(|l| l.peer == **id))
            .min_by_key(|(id, p)| (p.discovered, std::cmp::Reverse(p.failures), std::cmp::Reverse(p.seen_at), **id))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.peers.remove(&id);
                true
            }
            None => false,
        }
    }

    /// Peers announced now.
    pub fn discovered(&self) -> usize {
        self.peers.values().filter(|p| p.discovered).count()
    }

    pub fn is_discovered(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.discovered)
    }

    /// Links dialing, opening or open.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Links kept: all but a move's new link while the link it replaces is
    /// still there. The peer limit bounds this; a move holds one link more
    /// for as long as its dial takes.
    pub fn kept(&self) -> usize {
        let moving = self.links.values().filter_map(|l| l.replaces).filter(|(old, _)| self.links.contains_key(old));
        self.links.len() - moving.count()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// On mains power by its record or its hello.
    pub fn is_powered(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.powered) || self.links.values().any(|l| l.peer == *peer && l.powered)
    }

    /// What the sync layer knows of an open link's peer once its hello
    /// arrived, for choosing which link to give up: its hello's power, and
    /// rooms shared with us. Set it before each input (a link never set
    /// within [`HELLO_TIMEOUT`] of opening is closed).
    pub fn set_value(&mut self, link: LinkId, powered: bool, shared_rooms: usize) {
        if let Some(l) = self.links.get_mut(&link) {
            l.greeted = true;
            l.powered = powered;
            l.shared_rooms = shared_rooms;
        }
    }

    /// When the next dial or knock falls due (as the last
    /// [`Output::WakeAt`] said).
    pub fn next_wake(&self) -> Option<Millis> {
        self.wake
    }

    pub fn is_banned(&self, peer: &PeerId, now: Millis) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    /// Feed one input at `now`; returns what to do, in order.
    pub fn handle(&mut self, input: Input, now: impl Into<Now>) -> Vec<Output> {
        let now = now.into().mono;
        let mut out = Vec::new();
        match input {
            Input::Discovered { peer, addrs, port, powered } => self.found(peer, addrs, port, powered, now, &mut out),
            Input::Lost { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.discovered = false;
                    p.turned_away = 0;
                }
            }
            Input::Offer { peer, sent_at, via } => self.offer(peer, sent_at, via, now, &mut out),
            Input::Answered { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.awaiting_answer = false;
                }
            }
            Input::DialFailed { link, busy } => {
                if let Some(l) = self.links.remove(&link) {
                    if l.upgrade {
                        self.upgrade_failed(l.peer, now);
                    } else if busy {
                        self.busy(&l.peer, now);
                    } else {
                        self.failed(&l.peer, now);
                    }
                }
            }
            Input::Opened { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.open = true;
                    l.opened_at = now;
                    l.awaiting_answer = false;
                    let replaced = l.replaces.take();
                    if let Some(p) = self.peers.get_mut(&l.peer) {
                        p.failures = 0;
                        p.refusals = 0;
                        p.knock_at = None;
                        p.turned_away = 0;
                    }
                    if let Some((old, why)) = replaced {
                        self.close(old, why, &mut out);
                    }
                }
            }
            Input::Closed { link } => {
                if let Some(l) = self.links.remove(&link) {
                    if l.upgrade && (!l.open || now < l.opened_at + upgrade::RETRY_MIN) {
                        // The ICE checks found no direct path, or the peer
                        // closed it soon after (its peer limit, say): wait
                        // before the next offer, longer each time, or a peer
                        // that takes and drops the link is redialed without
                        // end.
                        self.upgrade_failed(l.peer, now);
                    } else if l.upgrade {
                        // It served a while: the backoff is forgotten, and
                        // the next offer may go at once.
                        self.upgrades.opened(&l.peer);
                    }
                    if self.peers.get(&l.peer).is_some_and(|p| p.link == Some(link)) {
                        self.failed(&l.peer, now);
                    }
                }
            }
            Input::Misbehaved { link } => {
                if let Some(peer) = self.links.get(&link).map(|l| l.peer) {
                    self.ban(peer, now);
                    self.close(link, "dropped: it kept sending what no honest peer sends", &mut out);
                }
            }
            Input::RelayUp { relay } => self.upgrades.relay = Some(relay),
            Input::RelayDown => self.upgrades.relay_down(),
            Input::RelayRoundTrip { ms } => self.upgrades.round_trip(ms),
            Input::HeardViaRelay { authors } => self.upgrades.heard(authors, now),
            Input::SetLimit(limit) => self.limit = limit,
            Input::Tick => {}
        }
        self.close_silent(now, &mut out);
        self.dial_upward(now, &mut out);
        self.knock(now, &mut out);
        self.upgrade(now, &mut out);
        let wake = self.next_attempt(now);
        if let Some(at) = wake.filter(|_| wake != self.wake) {
            out.push(Output::WakeAt(at));
        }
        self.wake = wake;
        out
    }

    fn found(
        &mut self,
        peer: PeerId,
        addrs: Vec<IpAddr>,
        port: u16,
        powered: bool,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        if peer == self.me {
            return;
        }
        if !self.peers.contains_key(&peer) && !self.make_room() {
            return;
        }
        let rank = self.rank(&peer);
        let p = self.peers.entry(peer).or_insert_with(|| Peer {
            addrs: Vec::new(),
            port,
            discovered: true,
            link: None,
            failures: 0,
            refusals: 0,
            next_attempt: now,
            powered,
            knock_at: Some(now + KNOCK_DELAY),
            knocked_at: None,
            rank,
            seen_at: now,
            turned_away: 0,
            turned_away_at: 0,
        });
        p.powered = powered;
        p.seen_at = now;
        // Moved or restarted: a new port, or an address gone. A record that
        // only gains addresses (a node just started announces them one by
        // one) leaves a dial under way alone.
        let moved = p.port != port || !p.addrs.iter().all(|a| addrs.contains(a));
        p.addrs = addrs;
        p.port = port;
        if moved && p.link.is_none() {
            // Restarted without saying goodbye: a new appearance.
            p.arm_knock(now);
        }
        if !p.discovered {
            // Back after being lost: try at once.
            p.discovered = true;
            p.failures = 0;
            p.next_attempt = now;
            p.arm_knock(now);
        }
        if !moved {
            return;
        }
        // Never drop an open, verified link for a record; our own dials
        // still opening start over at the new address.
        let mut ours: Vec<(LinkId, bool, bool)> =
            self.links.iter().filter(|(_, l)| l.peer == peer).map(|(id, l)| (*id, l.open, l.outbound)).collect();
        ours.sort_unstable_by_key(|(id, ..)| id.0);
        if ours.iter().any(|(_, open, _)| *open) {
            return;
        }
        for (link, _, outbound) in ours {
            if outbound {
                self.close(link, "peer moved or restarted", out);
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.next_attempt = now;
        }
    }

    fn offer(&mut self, peer: PeerId, sent_at: u64, via: Via, now: Millis, out: &mut Vec<Output>) {
        let refuse = |why| Output::Refuse { peer, why };
        if self.is_banned(&peer, now) {
            out.push(refuse(Refusal::Banned));
            return;
        }
        // A slot through the relay only for an upgrade we started (both
        // saw the relay slow), someone whose messages reach us through it
        // (we talk with them there), or someone met or verified: fresh keys
        // on the relay cannot fill our slots from afar.
        if let Via::Relay { met } = via {
            let ours = self.links.values().any(|l| l.peer == peer && l.upgrade && l.awaiting_answer);
            if !(met || ours || self.upgrades.heard_lately(&peer, now)) {
                out.push(refuse(Refusal::Stranger));
                return;
            }
        }
        // Both sides dialing at once (a peer that broke the lower-dials
        // rule, or a knock that crossed our dial): the lower id's dial wins,
        // also when ours was answered or is open.
        let dialing = self.links.values().any(|l| l.peer == peer && (l.awaiting_answer || (l.outbound && !l.upgrade)));
        if dialing && self.me < peer {
            out.push(refuse(Refusal::Glare));
            return;
        }
        // A verified offer from a peer we are linked to means it restarted
        // or lost the link: the new link replaces the old one.
        let old: Vec<LinkId> = self.links.iter().filter(|(_, l)| l.peer == peer).map(|(id, _)| *id).collect();
        if old.iter().any(|id| self.links[id].offered_at.is_some_and(|at| at >= sent_at)) {
            out.push(refuse(Refusal::Superseded));
            return;
        }
        if old.is_empty() && peer < self.me && self.links.len() >= self.limit {
            // Full, and a lower peer dials that is nearer than every lower
            // link we have: it is our predecessor in the chain, and takes
            // the place of the farthest lower link. Any other lower peer
            // waits for a free slot, so the chords that came while we had
            // room stay (preferring every nearer dial would settle all
            // links on neighbours by id: a ring, as wide as the crowd).
            let below = self.open_links(|p| p < self.me);
            if below.iter().all(|(_, p)| *p < peer) {
                if let Some((link, _)) = below.into_iter().min_by_key(|(_, p)| *p) {
                    self.close(link, "replaced by a nearer peer", out);
                }
            }
        }
        let mut adopted = false;
        if old.is_empty() {
            // A higher peer's dial (a knock) is a link we could have dialed
            // ourselves: only while we still could.
            let full = |m: &Mesh| m.links.len() >= m.limit || (peer > m.me && m.upward_links() >= m.upward_cap());
            if full(self) && self.may_adopt(&peer, now) {
                adopted = self.adopt(peer, now, out);
            }
            if full(self) {
                if let Some(p) =
                    self.peers.get_mut(&peer).filter(|p| p.turned_away == 0 || now >= p.turned_away_at + BUSY_RETRY)
                {
                    p.turned_away = p.turned_away.saturating_add(1);
                    p.turned_away_at = now;
                }
                out.push(refuse(Refusal::Full));
                return;
            }
        }
        // A redial that replaces a link that never opened keeps its start:
        // offers again and again do not hold a slot past DIAL_TIMEOUT.
        let started_at = old
            .iter()
            .filter_map(|id| self.links.get(id))
            .filter(|l| !l.open)
            .map(|l| l.started_at)
            .min()
            .unwrap_or(now);
        for link in old {
            self.close(link, "replaced by a new connection", out);
        }
        let link = self.new_link();
        self.links.insert(
            link,
            Link {
                peer,
                outbound: false,
                upgrade: false,
                replaces: None,
                awaiting_answer: false,
                offered_at: Some(sent_at),
                open: false,
                greeted: false,
                opened_at: 0,
                started_at,
                adopted,
                powered: false,
                shared_rooms: 0,
            },
        );
        if let Some(p) = self.peers.get_mut(&peer) {
            p.link = Some(link);
        }
        out.push(Output::Accept { link, peer });
    }

    /// Whether `peer`, refused for a full house [`ADOPT_AFTER`] times, may
    /// have a chord's place now.
    fn may_adopt(&self, peer: &PeerId, now: Millis) -> bool {
        // One close must make the room: not while a move holds a link more,
        // nor above a lowered limit.
        let one_close_fits = self.links.len() <= self.limit
            && (*peer < self.me || self.upward_links() <= self.upward_cap())
            && !self.links.values().any(|l| l.replaces.is_some());
        self.peers.get(peer).is_some_and(|p| p.discovered && p.turned_away >= ADOPT_AFTER)
            && self.adopted_at.is_none_or(|t| now >= t + ADOPT_GAP)
            && one_close_fits
    }

    /// Close a chord for `peer`: the least useful open link other than our
    /// successor's and our predecessor's, on `peer`'s side of us when it
    /// dials from above (a knock takes an upward slot).
    fn adopt(&mut self, peer: PeerId, now: Millis, out: &mut Vec<Output>) -> bool {
        let above = self.open_links(|p| p > self.me);
        let below = self.open_links(|p| p < self.me);
        let successor = above.iter().map(|(_, p)| *p).min();
        let predecessor = below.iter().map(|(_, p)| *p).max();
        let side = if peer > self.me { above } else { above.into_iter().chain(below).collect() };
        let chords: Vec<(LinkId, PeerId)> =
            side.into_iter().filter(|(_, p)| Some(*p) != successor && Some(*p) != predecessor).collect();
        // The slot of the last adoption first; else the chord sharing the
        // fewest rooms, farthest in id (not by claimed power: anyone can
        // claim it).
        let victim = chords
            .iter()
            .find(|(l, _)| self.links.get(l).is_some_and(|l| l.adopted))
            .or_else(|| chords.iter().min_by_key(|(l, p)| self.worth(*l, *p)));
        let Some(&(link, _)) = victim else { return false };
        self.adopted_at = Some(now);
        self.close(link, "making room for a peer that found no place", out);
        true
    }

    fn new_link(&mut self) -> LinkId {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        link
    }

    /// Dial `peer`; a move when `replaces` names the link the new one
    /// replaces once open.
    fn dial(
        &mut self,
        peer: PeerId,
        upgrade: bool,
        replaces: Option<(LinkId, &'static str)>,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        let link = self.new_link();
        self.links.insert(
            link,
            Link {
                peer,
                outbound: true,
                upgrade,
                replaces,
                awaiting_answer: true,
                offered_at: None,
                open: false,
                greeted: false,
                opened_at: 0,
                started_at: now,
                adopted: false,
                powered: false,
                shared_rooms: 0,
            },
        );
        let (addrs, port) = match self.peers.get_mut(&peer) {
            Some(p) if !upgrade => {
                p.link = Some(link);
                (p.addrs.clone(), p.port)
            }
            _ => (Vec::new(), 0),
        };
        out.push(Output::Dial { link, peer, addrs, port, upgrade });
    }

    /// End `link` ourselves.
    fn close(&mut self, link: LinkId, why: &'static str, out: &mut Vec<Output>) {
        let Some(l) = self.links.remove(&link) else { return };
        if let Some(p) = self.peers.get_mut(&l.peer) {
            if p.link == Some(link) {
                p.link = None;
            }
        }
        out.push(Output::Close { link, peer: l.peer, was_open: l.open, why });
    }

    /// Links toward higher ids, whoever dialed: ours, and a higher peer's
    /// knock.
    fn upward_links(&self) -> usize {
        self.links.values().filter(|l| l.peer > self.me).count()
    }

    /// Links toward higher ids we may have: all but the last slot, kept for
    /// a lower node's dial.
    fn upward_cap(&self) -> usize {
        self.limit.saturating_sub(1).max(1)
    }

    fn dial_upward(&mut self, now: Millis, out: &mut Vec<Output>) {
        let cap = self.upward_cap();
        let up = self.upward_links();
        let room = self.limit.saturating_sub(self.links.len()).min(cap.saturating_sub(up));
        if room == 0 {
            self.improve(now, up, cap, out);
            return;
        }
        for peer in self.due(now, room) {
            // Linked already through its dial to us.
            if let Some(id) = self.links.iter().find(|(_, l)| l.peer == peer).map(|(id, _)| *id) {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.link = Some(id);
                }
                continue;
            }
            self.dial(peer, false, None, now, out);
        }
    }

    /// Full: improve one link at a time, make before break (the new link
    /// opens first, then the one it replaces closes; a refusal costs
    /// nothing). A nearer higher peer that never failed takes the place of
    /// the least useful link upward, or, with no link upward, of the least
    /// useful link below (which restores the chain above); else, with every
    /// upward slot taken, a powered peer takes an unpowered link's place,
    /// never the successor's.
    fn improve(&mut self, now: Millis, up: usize, cap: usize, out: &mut Vec<Output>) {
        if self.links.values().any(|l| l.replaces.is_some()) {
            return;
        }
        let above = self.open_links(|p| p > self.me);
        let (next, victim, why) = if let Some(next) = self.nearest_due(now) {
            if up == 0 {
                let below = self.open_links(|p| p < self.me);
                (next, self.least_useful(&below, None), "making room for a link to a higher peer")
            } else {
                (next, self.least_useful(&above, None), "moving to a nearer peer")
            }
        } else if let Some(next) = self.powered_due(now) {
            // With every upward slot taken, an upward link other than the
            // successor's gives its place; else (lower peers' dials filled
            // the node) a lower link other than the predecessor's, whose
            // peer has nearer higher ones than us for its own chain link.
            let victim = if up >= cap {
                let successor = above.iter().map(|(_, p)| *p).min();
                self.least_useful(&above, successor)
            } else {
                let below = self.open_links(|p| p < self.me);
                let predecessor = below.iter().map(|(_, p)| *p).max();
                self.least_useful(&below, predecessor)
            };
            let victim = victim.filter(|v| !self.links.get(v).is_some_and(|l| self.is_powered(&l.peer)));
            (next, victim, "moving to a powered peer")
        } else {
            return;
        };
        if let Some(victim) = victim {
            self.dial(next, false, Some((victim, why)), now, out);
        }
    }

    /// Close open links whose peer never said hello (see [`HELLO_TIMEOUT`])
    /// and ban the peer: neither dialed nor accepted for a while, so a
    /// silent Sybil cannot take the slot again at once.
    fn close_silent(&mut self, now: Millis, out: &mut Vec<Output>) {
        let silent: Vec<(LinkId, PeerId)> = self
            .links
            .iter()
            .filter(|(_, l)| l.open && !l.greeted && now >= l.opened_at + HELLO_TIMEOUT)
            .map(|(id, l)| (*id, l.peer))
            .collect();
        for (link, peer) in silent {
            self.ban(peer, now);
            self.close(link, "it never said hello", out);
        }
        let stuck: Vec<(LinkId, PeerId, bool, bool)> = self
            .links
            .iter()
            .filter(|(_, l)| !l.open && now >= l.started_at + DIAL_TIMEOUT)
            .map(|(id, l)| (*id, l.peer, l.outbound, l.upgrade))
            .collect();
        for (link, peer, outbound, upgrade) in stuck {
            self.close(link, "it did not open in time", out);
            if !outbound {
                // Its offer took a slot and it never opened the channel
                // (again and again: see the offer's start carried over).
                self.ban(peer, now);
            } else if upgrade {
                self.upgrade_failed(peer, now);
            } else {
                self.failed(&peer, now);
            }
        }
    }

    /// Knock on lower peers that appeared and have not dialed us: one at a
    /// time, and only while two slots are free.
    fn knock(&mut self, now: Millis, out: &mut Vec<Output>) {
        let me = self.me;
        if self.links.is_empty() {
            // No link at all: knock again on the lower peers, each at most
            // once per its lonely period (see `Peer::lonely_due`).
            for (_, p) in self.peers.range_mut(..me) {
                if p.discovered && p.lonely_due().is_some_and(|t| now >= t) {
                    p.knock_at = Some(now);
                }
            }
        }
        for peer in self.knock_due(now) {
            let knocking = self.links.values().any(|l| l.outbound && !l.upgrade && !l.open && l.peer < me);
            if knocking || self.links.len() + 2 > self.limit {
                return;
            }
            if let Some(p) = self.peers.get_mut(&peer) {
                p.knock_at = None;
                p.knocked_at = Some(now);
            }
            if self.is_banned(&peer, now) || self.links.values().any(|l| l.peer == peer) {
                continue;
            }
            self.dial(peer, false, None, now, out);
        }
    }

    /// Open links whose peer passes `side`.
    fn open_links(&self, side: impl Fn(PeerId) -> bool) -> Vec<(LinkId, PeerId)> {
        self.links.iter().filter(|(_, l)| l.open && side(l.peer)).map(|(id, l)| (*id, l.peer)).collect()
    }

    /// The open link least worth keeping, other than the one to `keep`: an
    /// unpowered peer before a powered one, then the fewest rooms shared
    /// with us, then the farthest id (the highest above us, the lowest
    /// below).
    fn least_useful(&self, open: &[(LinkId, PeerId)], keep: Option<PeerId>) -> Option<LinkId> {
        open.iter()
            .filter(|(_, peer)| Some(*peer) != keep)
            .min_by_key(|(link, peer)| (self.is_powered(peer), self.worth(*link, *peer)))
            .map(|(link, _)| *link)
    }

    /// What a link is worth apart from power, least first: the rooms it
    /// shares with us, then how near its peer is (below us, the lowest
    /// comes first; then above us, the highest).
    fn worth(&self, link: LinkId, peer: PeerId) -> (usize, Option<std::cmp::Reverse<PeerId>>, Option<PeerId>) {
        let rooms = self.links.get(&link).map_or(0, |l| l.shared_rooms);
        let above = peer > self.me;
        (rooms, above.then_some(std::cmp::Reverse(peer)), (!above).then_some(peer))
    }

    /// Peers to dial now, best first, at most `room` of them: the nearest
    /// higher peer while we have no link to it, then stable peers, powered
    /// ones first, then by [`Mesh::rank`].
    fn due(&self, now: Millis, room: usize) -> Vec<PeerId> {
        let mut due: Vec<(&PeerId, &Peer)> = self
            .higher()
            .filter(|(_, e)| e.discovered && e.link.is_none() && e.next_attempt <= now)
            .filter(|(p, _)| !self.is_banned(p, now))
            .collect();
        due.sort_by_key(|(p, e)| (e.failures, e.refusals, !e.powered, e.rank, **p));
        if let Some(next) = self.nearest_due(now) {
            if let Some(i) = due.iter().position(|(p, _)| **p == next) {
                let first = due.remove(i);
                due.insert(0, first);
            }
        }
        due.into_iter().take(room).map(|(p, _)| *p).collect()
    }

    /// The nearest higher peer (banned ones do not count), if it is due and
    /// no dial to it failed (a refusal only waits for its retry), and no
    /// nearer one is linked: the link that keeps the chain unbroken.
    fn nearest_due(&self, now: Millis) -> Option<PeerId> {
        let (peer, e) = self.higher().find(|(p, e)| (e.discovered || e.link.is_some()) && !self.is_banned(p, now))?;
        (e.link.is_none() && e.discovered && e.failures == 0 && e.next_attempt <= now).then_some(*peer)
    }

    /// The best due peer that is powered and never refused us, if any. One
    /// whose dial failed is tried again after its backoff: a move opens the
    /// new link before it closes the old one, so a failed try costs only the
    /// dial (and a box that did not answer once, busy starting, say, is not
    /// given up on for good).
    fn powered_due(&self, now: Millis) -> Option<PeerId> {
        self.higher()
            .filter(|(_, e)| e.discovered && e.link.is_none() && e.next_attempt <= now && e.refusals == 0 && e.powered)
            .min_by_key(|(p, e)| (e.rank, **p))
            .map(|(p, _)| *p)
    }

    /// Lower peers to knock on now, by id: they appeared at least
    /// [`KNOCK_DELAY`] ago, are still announced, have not linked to us, and
    /// no dial to them failed.
    fn knock_due(&self, now: Millis) -> Vec<PeerId> {
        // Alone, a peer whose dials failed is knocked on too, after its
        // longer lonely period; the least recently knocked first, so one
        // that fails slowly cannot keep the others waiting.
        let lonely = self.links.is_empty();
        let mut due: Vec<(&PeerId, &Peer)> = self
            .lower()
            .filter(|(_, e)| e.discovered && e.link.is_none() && (e.failures == 0 || lonely))
            .filter(|(_, e)| e.knock_at.is_some_and(|t| t <= now))
            .collect();
        due.sort_by_key(|(p, e)| (e.knocked_at, **p));
        due.into_iter().map(|(p, _)| *p).collect()
    }

    /// Known peers with a higher id than ours, nearest first (the map's
    /// order: no comparison with our id per peer).
    fn higher(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.range((Bound::Excluded(self.me), Bound::Unbounded))
    }

    /// Known peers with a lower id than ours, lowest first.
    fn lower(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.range(..self.me)
    }

    fn jitter(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn failed(&mut self, peer: &PeerId, now: Millis) {
        let jitter = self.jitter();
        if let Some(e) = self.peers.get_mut(peer) {
            e.link = None;
            e.failures = e.failures.saturating_add(1);
            e.next_attempt = now + backoff(e.failures, jitter);
        }
    }

    /// The peer refused us because it is full: its room depends on other
    /// links changing, so retry from a short period ([`BUSY_RETRY`],
    /// doubling up to [`BACKOFF_MAX`]), trying peers that never refused
    /// first.
    fn busy(&mut self, peer: &PeerId, now: Millis) {
        let jitter = self.jitter();
        if let Some(e) = self.peers.get_mut(peer) {
            e.link = None;
            e.refusals = e.refusals.saturating_add(1);
            let wait = BUSY_RETRY.saturating_mul(1 << e.refusals.saturating_sub(1).min(16)).min(BACKOFF_MAX);
            e.next_attempt = now + spread(wait, jitter);
        }
    }

    fn ban(&mut self, peer: PeerId, now: Millis) {
        self.banned.retain(|_, until| *until > now);
        if self.banned.len() >= MAX_BANNED {
            if let Some(oldest) = self.banned.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                self.banned.remove(&oldest);
            }
        }
        self.banned.insert(peer, now + MISBEHAVING_BAN);
        if let Some(e) = self.peers.get_mut(&peer) {
            e.next_attempt = now + MISBEHAVING_BAN;
        }
    }

    /// While the relay is slow, offer a direct link through relayed
    /// signaling to peers whose messages reach us through it, as far as
    /// free slots allow: not the relay itself, nobody linked or being
    /// dialed, and nobody on the LAN (the LAN dial takes care of those).
    fn upgrade(&mut self, now: Millis, out: &mut Vec<Output>) {
        let Some(relay) = self.upgrades.relay.filter(|_| self.upgrades.slow()) else { return };
        let room = self.limit.saturating_sub(self.links.len());
        if room == 0 {
            return;
        }
        let candidates = self.upgrades.candidates(now, |p| {
            *p == self.me
                || *p == relay
                || self.links.values().any(|l| l.peer == *p)
                || self.is_discovered(p)
                || self.is_banned(p, now)
        });
        for peer in candidates.into_iter().take(room) {
            self.dial(peer, true, None, now, out);
        }
    }

    /// An upgrade to `peer` failed (unreachable, refused, no direct path,
    /// not open in time): it waits out a backoff.
    fn upgrade_failed(&mut self, peer: PeerId, now: Millis) {
        let jitter = self.jitter();
        self.upgrades.failed(peer, now, jitter);
    }

    /// The relay's median round trip, while a session is up.
    pub fn relay_rtt(&self) -> Option<Millis> {
        self.upgrades.relay_rtt()
    }

    /// The relay is slow: direct links are sought (see [`SLOW_RELAY`]).
    pub fn relay_slow(&self) -> bool {
        self.upgrades.slow()
    }

    /// Messages of `peer` reached us through the relay within [`SEEN_FOR`]:
    /// someone we talk with there (its relayed offer may have a slot).
    pub fn heard_via_relay(&self, peer: &PeerId, now: impl Into<Now>) -> bool {
        self.upgrades.heard_lately(peer, now.into().mono)
    }

    /// When the next dial, knock or upgrade retry falls due, after `now`. One already due
    /// is left out: what had room was dialed, and the rest waits for a slot
    /// to free (an input), not a timer that would fire at once, again and
    /// again.
    fn next_attempt(&self, now: Millis) -> Option<Millis> {
        let dial = self.higher().filter(|(_, e)| e.discovered && e.link.is_none()).map(|(_, e)| e.next_attempt);
        let knock = self.lower().filter(|(_, e)| e.discovered && e.link.is_none()).filter_map(|(_, e)| e.knock_at);
        let lonely = self.links.is_empty();
        let reknock = self.lower().filter(|(_, e)| lonely && e.discovered).filter_map(|(_, e)| e.lonely_due());
        let silent = self.links.values().filter(|l| l.open && !l.greeted).map(|l| l.opened_at + HELLO_TIMEOUT);
        let stuck = self.links.values().filter(|l| !l.open).map(|l| l.started_at + DIAL_TIMEOUT);
        let upgrade = self.upgrades.next_retry(now);
        dial.chain(knock).chain(reknock).chain(silent).chain(stuck).chain(upgrade).filter(|t| *t > now).min()
    }
}

/// `BACKOFF_MIN * 2^(failures-1)`, capped, spread by `jitter` in [0, 1) over
/// +-20 % so peers that failed together do not retry together.
pub fn backoff(failures: u32, jitter: f64) -> Millis {
    let base = BACKOFF_MIN.saturating_mul(1u64 << failures.saturating_sub(1).min(16)).min(BACKOFF_MAX);
    spread(base, jitter)
}

fn spread(base: Millis, jitter: f64) -> Millis {
    (base as f64 * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as Millis
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn id(b: u8) -> PeerId {
        PeerId::from_bytes([b; 32])
    }

    fn mesh(me: u8, limit: usize) -> Mesh {
        Mesh::new(id(me), limit, [7; 32])
    }

    fn found(m: &mut Mesh, peer: u8, now: Millis) -> Vec<Output> {
        m.handle(Input::Discovered { peer: id(peer), addrs: vec![], port: 1, powered: false }, now)
    }

    fn dials(out: &[Output]) -> Vec<PeerId> {
        out.iter().filter_map(|o| if let Output::Dial { peer, .. } = o { Some(*peer) } else { None }).collect()
    }

    fn closes(out: &[Output]) -> Vec<PeerId> {
        out.iter().filter_map(|o| if let Output::Close { peer, .. } = o { Some(*peer) } else { None }).collect()
    }

    fn link_to(m: &Mesh, peer: u8) -> LinkId {
        m.links().find(|(_, l)| l.peer == id(peer)).map(|(id, _)| *id).expect("a link")
    }

    /// An offer from `peer`, accepted and opened; returns the link.
    fn linked_by(m: &mut Mesh, peer: u8, now: Millis) -> LinkId {
        let out = m.handle(Input::Offer { peer: id(peer), sent_at: now, via: Via::Lan }, now);
        let link = out
            .iter()
            .find_map(|o| if let Output::Accept { link, .. } = o { Some(*link) } else { None })
            .unwrap_or_else(|| panic!("offer from {peer} refused: {out:?}"));
        m.handle(Input::Opened { link }, now);
        link
    }

    fn refusal(out: &[Output]) -> Option<Refusal> {
        out.iter().find_map(|o| if let Output::Refuse { why, .. } = o { Some(*why) } else { None })
    }

    /// A distinct id for each of many peers (`id` has 256).
    fn many(i: usize) -> PeerId {
        let mut b = [0xff; 32];
        b[..8].copy_from_slice(&(i as u64).to_be_bytes());
        PeerId::from_bytes(b)
    }

    fn discover(m: &mut Mesh, peer: PeerId, now: Millis) -> Vec<Output> {
        m.handle(Input::Discovered { peer, addrs: vec![], port: 1, powered: false }, now)
    }

    #[test]
    fn the_peer_table_is_bounded_and_forgets_the_least_worth_keeping() {
        let mut m = mesh(0, 2);
        for i in 0..MAX_PEERS {
            for o in discover(&mut m, many(i), i as Millis) {
                if let Output::Dial { link, .. } = o {
                    m.handle(Input::Opened { link }, i as Millis);
                }
            }
        }
        let linked: BTreeSet<PeerId> = m.links().map(|(_, l)| l.peer).collect();
        assert_eq!((m.peers().count(), m.forgotten()), (MAX_PEERS, 0));
        assert!(!linked.is_empty());
        let mut now = MAX_PEERS as Millis;
        let arrive = |m: &mut Mesh, now: &mut Millis, i: usize| {
            *now += 1;
            discover(m, many(i), *now);
            assert_eq!(m.peers().count(), MAX_PEERS, "the table stays at its cap");
            assert!(m.peer(&many(i)).is_some(), "the new peer is taken");
        };
        // A lost peer goes first, however recently it was seen.
        m.handle(Input::Lost { peer: many(900) }, now);
        arrive(&mut m, &mut now, MAX_PEERS);
        assert!(m.peer(&many(900)).is_none());
        // Then the one whose dials failed most.
        m.peers.get_mut(&many(700)).expect("known").failures = 3;
        m.peers.get_mut(&many(800)).expect("known").failures = 1;
        arrive(&mut m, &mut now, MAX_PEERS + 1);
        assert!(m.peer(&many(700)).is_none() && m.peer(&many(800)).is_some());
        arrive(&mut m, &mut now, MAX_PEERS + 2);
        assert!(m.peer(&many(800)).is_none());
        // Then the newest: a flood of fresh records pushes out its own, and
        // every peer known from before stays; a peer with a link never goes.
        let newest = MAX_PEERS + 2;
        arrive(&mut m, &mut now, MAX_PEERS + 3);
        assert!(m.peer(&many(newest)).is_none(), "the newest before it went");
        for _ in 0..MAX_PEERS {
            let i = MAX_PEERS + 4 + m.forgotten() as usize;
            arrive(&mut m, &mut now, i);
        }
        assert!(linked.iter().all(|p| m.peer(p).is_some()), "linked peers are kept");
        let before = (0..MAX_PEERS).filter(|&i| ![700, 800, 900].contains(&i)).all(|i| m.peer(&many(i)).is_some());
        assert!(before, "the flood pushed out a peer known from before it");
        assert_eq!(m.forgotten(), 4 + MAX_PEERS as u64);
    }

    #[test]
    fn with_every_place_linked_a_new_peer_is_not_taken() {
        let mut m = mesh(0, 2);
        for i in 0..MAX_PEERS {
            discover(&mut m, many(i), 0);
        }
        for p in m.peers.values_mut() {
            p.link = Some(LinkId(1));
        }
        discover(&mut m, many(MAX_PEERS), 1);
        assert!(m.peer(&many(MAX_PEERS)).is_none());
        assert_eq!((m.peers().count(), m.forgotten()), (MAX_PEERS, 1));
    }

    fn upgrade_dials(out: &[Output]) -> Vec<PeerId> {
        out.iter()
            .filter_map(|o| if let Output::Dial { peer, upgrade: true, .. } = o { Some(*peer) } else { None })
            .collect()
    }

    /// A relay session up with a slow relay (its round trips 400 ms).
    fn slow_relay(m: &mut Mesh, now: Millis) {
        m.handle(Input::RelayUp { relay: id(9) }, now);
        for _ in 0..3 {
            m.handle(Input::RelayRoundTrip { ms: 400 }, now);
        }
        assert!(m.relay_slow());
    }

    #[test]
    fn while_the_relay_is_slow_authors_heard_through_it_are_offered_a_direct_link() {
        let mut m = mesh(5, 3);
        // A fast relay: nobody is offered anything.
        m.handle(Input::RelayUp { relay: id(9) }, 0);
        m.handle(Input::RelayRoundTrip { ms: 40 }, 0);
        let out = m.handle(Input::HeardViaRelay { authors: vec![id(1), id(2)] }, 0);
        assert!(upgrade_dials(&out).is_empty() && !m.relay_slow());
        // Slow: the authors, latest heard first; not the relay, not us,
        // not a peer on the LAN (the LAN dial is for those).
        found(&mut m, 3, 10);
        m.handle(Input::HeardViaRelay { authors: vec![id(9), id(5), id(3)] }, 20);
        let mut out = Vec::new();
        for _ in 0..3 {
            out.extend(m.handle(Input::RelayRoundTrip { ms: 400 }, 30));
        }
        let mut offered = upgrade_dials(&out);
        offered.sort();
        assert_eq!(offered, vec![id(1), id(2)]);
        assert!(m.heard_via_relay(&id(1), 30) && !m.heard_via_relay(&id(7), 30));
        // Nobody twice while a dial is under way.
        assert!(upgrade_dials(&m.handle(Input::Tick, 40)).is_empty());
        // The relay went away: no more offers, and its samples are gone.
        m.handle(Input::RelayDown, 50);
        assert_eq!(m.relay_rtt(), None);
        m.handle(Input::HeardViaRelay { authors: vec![id(4)] }, 60);
        assert!(upgrade_dials(&m.handle(Input::Tick, 70)).is_empty());
    }

    #[test]
    fn an_upgrade_that_fails_is_tried_again_after_a_backoff_that_doubles() {
        let mut m = mesh(5, 3);
        slow_relay(&mut m, 0);
        let out = m.handle(Input::HeardViaRelay { authors: vec![id(1)] }, 0);
        assert_eq!(upgrade_dials(&out), vec![id(1)]);
        let link = link_to(&m, 1);
        // No direct path: the ICE checks gave up before it opened.
        let out = m.handle(Input::Closed { link }, 1000);
        assert!(upgrade_dials(&out).is_empty(), "not at once");
        let retry = out.iter().find_map(|o| if let Output::WakeAt(t) = o { Some(*t) } else { None });
        let retry = retry.expect("a wake for the retry");
        assert!((1000 + RETRY_MIN / 2..=1000 + RETRY_MIN).contains(&retry), "{retry}");
        assert!(upgrade_dials(&m.handle(Input::Tick, retry - 1)).is_empty());
        assert_eq!(upgrade_dials(&m.handle(Input::Tick, retry)), vec![id(1)]);
        // Refused this time: the next wait is longer.
        let out = m.handle(Input::DialFailed { link: link_to(&m, 1), busy: true }, retry);
        let again = out.iter().find_map(|o| if let Output::WakeAt(t) = o { Some(*t) } else { None }).expect("wake");
        assert!(again - retry > retry - 1000, "the wait doubles");
        // It opens at last, and the peer closes it at once (its peer
        // limit): not redialed at once, and the wait keeps doubling.
        m.handle(Input::Tick, again);
        let link = link_to(&m, 1);
        m.handle(Input::Opened { link }, again + 10);
        let out = m.handle(Input::Closed { link }, again + 20);
        assert!(upgrade_dials(&out).is_empty(), "a link dropped at once is no success");
        let third = out.iter().find_map(|o| if let Output::WakeAt(t) = o { Some(*t) } else { None }).expect("wake");
        assert!(third - again > again - retry, "the wait doubles again");
        // One that served longer than the first wait: the backoff is
        // forgotten, and the peer (still heard through the slow relay) is
        // offered a new link at once when it ends.
        m.handle(Input::Tick, third);
        let link = link_to(&m, 1);
        m.handle(Input::Opened { link }, third + 10);
        let out = m.handle(Input::Closed { link }, third + 10 + RETRY_MIN);
        assert_eq!(upgrade_dials(&out), vec![id(1)], "no backoff after a success");
    }

    #[test]
    fn a_relayed_offer_gets_a_slot_only_from_someone_we_know() {
        let mut m = mesh(5, 4);
        let relayed = |peer: u8, met: bool| Input::Offer { peer: id(peer), sent_at: 1, via: Via::Relay { met } };
        // Fresh keys on the relay: refused, whatever their id.
        for stranger in [1, 7, 200] {
            assert_eq!(refusal(&m.handle(relayed(stranger, false), 1)), Some(Refusal::Stranger));
        }
        assert!(m.links().next().is_none(), "no slot taken");
        // Met on a direct link before, or verified: taken.
        assert_eq!(refusal(&m.handle(relayed(1, true), 2)), None);
        // Heard through the relay lately: someone we talk with there.
        m.handle(Input::RelayUp { relay: id(9) }, 3);
        m.handle(Input::HeardViaRelay { authors: vec![id(7)] }, 3);
        assert_eq!(refusal(&m.handle(relayed(7, false), 4)), None);
        assert_eq!(refusal(&m.handle(relayed(7, false), 4 + SEEN_FOR + 1)), Some(Refusal::Stranger), "not for ever");
        // On the LAN anyone may offer.
        assert_eq!(refusal(&m.handle(Input::Offer { peer: id(2), sent_at: 3, via: Via::Lan }, 20)), None);

        // An upgrade of ours under way counts, even once the author was
        // last heard longer ago than that (heard while the relay was fast,
        // dialed when it turned slow).
        let mut m = mesh(5, 4);
        m.handle(Input::RelayUp { relay: id(9) }, 0);
        m.handle(Input::HeardViaRelay { authors: vec![id(8)] }, 0);
        slow_relay(&mut m, SEEN_FOR - 5_000);
        assert!(m.links().any(|(_, l)| l.peer == id(8) && l.upgrade && l.awaiting_answer));
        let out = m.handle(relayed(8, false), SEEN_FOR + 1);
        assert_ne!(refusal(&out), Some(Refusal::Stranger), "{out:?}");
    }

    #[test]
    fn upgrades_take_only_free_slots() {
        let mut m = mesh(5, 2);
        linked_by(&mut m, 1, 0);
        slow_relay(&mut m, 0);
        let out = m.handle(Input::HeardViaRelay { authors: vec![id(20), id(21), id(22)] }, 10);
        assert_eq!(upgrade_dials(&out).len(), 1, "one slot left, one offer");
        assert!(upgrade_dials(&m.handle(Input::Tick, 20)).is_empty());
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        assert_eq!(backoff(1, 0.5), BACKOFF_MIN);
        assert_eq!(backoff(2, 0.5), BACKOFF_MIN * 2);
        assert_eq!(backoff(30, 0.5), BACKOFF_MAX);
        assert!(backoff(3, 0.0) < backoff(3, 0.99));
    }

    #[test]
    fn only_the_lower_id_dials_nearest_first_and_the_last_slot_stays_free() {
        let mut m = mesh(5, 3);
        assert_eq!(dials(&found(&mut m, 1, 0)), vec![], "a lower peer is never dialed at once");
        assert_eq!(dials(&found(&mut m, 9, 0)), vec![id(9)]);
        assert_eq!(dials(&found(&mut m, 7, 0)), vec![id(7)]);
        assert_eq!(dials(&found(&mut m, 6, 0)), vec![], "two of three slots upward: the last is a lower node's");
        assert_eq!(m.len(), 2);
        // 9 refuses: 6 takes its place, and 9 is retried after BUSY_RETRY.
        let out = m.handle(Input::DialFailed { link: link_to(&m, 9), busy: true }, 10);
        assert_eq!(dials(&out), vec![id(6)]);
        let retry = m.peer(&id(9)).expect("known").next_attempt;
        assert!((10 + BUSY_RETRY * 8 / 10..=10 + BUSY_RETRY * 12 / 10).contains(&retry), "{retry}");
    }

    #[test]
    fn a_failed_dial_backs_off_and_a_peer_back_from_lost_is_dialed_at_once() {
        let mut m = mesh(5, 4);
        found(&mut m, 9, 0);
        let out = m.handle(Input::DialFailed { link: link_to(&m, 9), busy: false }, 0);
        assert_eq!(dials(&out), vec![]);
        let retry = m.peer(&id(9)).expect("known").next_attempt;
        assert!((BACKOFF_MIN * 8 / 10..=BACKOFF_MIN * 12 / 10).contains(&retry), "{retry}");
        assert_eq!(m.next_wake(), Some(retry));
        assert_eq!(dials(&m.handle(Input::Tick, retry - 1)), vec![]);
        assert_eq!(dials(&m.handle(Input::Tick, retry)), vec![id(9)]);
        m.handle(Input::DialFailed { link: link_to(&m, 9), busy: false }, retry);
        m.handle(Input::Lost { peer: id(9) }, retry + 1);
        assert_eq!(dials(&found(&mut m, 9, retry + 2)), vec![id(9)], "back: at once");
    }

    #[test]
    fn offers_are_refused_for_glare_limit_ban_and_an_older_offer() {
        let mut m = mesh(5, 2);
        found(&mut m, 9, 0);
        assert_eq!(
            refusal(&m.handle(Input::Offer { peer: id(9), sent_at: 1, via: Via::Lan }, 1)),
            Some(Refusal::Glare)
        );
        linked_by(&mut m, 1, 2);
        assert_eq!(refusal(&m.handle(Input::Offer { peer: id(0), sent_at: 3, via: Via::Lan }, 3)), Some(Refusal::Full));
        // 1 redials (it restarted): the newer offer replaces the link, an
        // older one that arrives late does not.
        let out = m.handle(Input::Offer { peer: id(1), sent_at: 10, via: Via::Lan }, 10);
        assert_eq!(closes(&out), vec![id(1)]);
        assert!(matches!(out.last(), Some(Output::Accept { .. }) | Some(Output::WakeAt(_))));
        assert_eq!(
            refusal(&m.handle(Input::Offer { peer: id(1), sent_at: 9, via: Via::Lan }, 11)),
            Some(Refusal::Superseded)
        );
        let link = link_to(&m, 1);
        let out = m.handle(Input::Misbehaved { link }, 12);
        assert_eq!(closes(&out), vec![id(1)]);
        assert_eq!(
            refusal(&m.handle(Input::Offer { peer: id(1), sent_at: 13, via: Via::Lan }, 13)),
            Some(Refusal::Banned)
        );
        assert_eq!(
            refusal(&m.handle(Input::Offer { peer: id(1), sent_at: 14, via: Via::Lan }, 13 + MISBEHAVING_BAN)),
            None,
            "the ban ends"
        );
    }

    #[test]
    fn a_lower_peer_is_knocked_on_once_unless_it_links_first() {
        let mut m = mesh(5, 4);
        found(&mut m, 1, 0);
        found(&mut m, 2, 0);
        assert_eq!(m.next_wake(), Some(KNOCK_DELAY));
        // Linked to 2 (greeted, so the link stays): not lonely, see
        // LONELY_REKNOCK for a node with no link.
        let to_2 = linked_by(&mut m, 2, KNOCK_DELAY / 2);
        m.set_value(to_2, false, 0);
        let out = m.handle(Input::Tick, KNOCK_DELAY);
        assert_eq!(dials(&out), vec![id(1)], "never one linked");
        assert_eq!(dials(&m.handle(Input::DialFailed { link: link_to(&m, 1), busy: false }, 200)), vec![]);
        assert_eq!(dials(&m.handle(Input::Tick, 10_000)), vec![], "once, and never after a failure");
        // Says goodbye and comes back at once: no knock storm.
        m.handle(Input::Lost { peer: id(1) }, 10_000);
        found(&mut m, 1, 10_001);
        assert_eq!(dials(&m.handle(Input::Tick, 20_000)), vec![], "not again within KNOCK_REARM");
        m.handle(Input::Lost { peer: id(1) }, 20_000);
        let back = KNOCK_DELAY + KNOCK_REARM;
        found(&mut m, 1, back);
        assert_eq!(dials(&m.handle(Input::Tick, back + KNOCK_DELAY)), vec![id(1)], "a new appearance");
    }

    #[test]
    fn a_peer_that_found_no_place_gets_a_chords_place_never_the_chains() {
        // Full at 4: predecessor 4, a lower chord 1, successor 6, an upper
        // chord 9.
        let mut m = mesh(5, 4);
        for p in [4, 1, 6, 9] {
            found(&mut m, p, 0);
        }
        for p in [4, 1] {
            let l = linked_by(&mut m, p, 0);
            m.set_value(l, false, 0);
        }
        for p in [6, 9] {
            let l = m.links().find(|(_, l)| l.peer == id(p)).map(|(l, _)| *l);
            if let Some(l) = l {
                m.handle(Input::Opened { link: l }, 0);
                m.set_value(l, false, 0);
            }
        }
        assert_eq!(m.kept(), 4, "{:?}", m.links().collect::<Vec<_>>());
        // 2 dials: not nearer than our predecessor 4, so refused; again,
        // refused; the third time it has a chord's place.
        found(&mut m, 2, 0);
        assert_eq!(refusal(&m.handle(Input::Offer { peer: id(2), sent_at: 1, via: Via::Lan }, 1)), Some(Refusal::Full));
        // Dials closer together than BUSY_RETRY count once.
        assert_eq!(refusal(&m.handle(Input::Offer { peer: id(2), sent_at: 2, via: Via::Lan }, 2)), Some(Refusal::Full));
        let t = 1 + BUSY_RETRY;
        assert_eq!(refusal(&m.handle(Input::Offer { peer: id(2), sent_at: t, via: Via::Lan }, t)), Some(Refusal::Full));
        let out = m.handle(Input::Offer { peer: id(2), sent_at: t + 1, via: Via::Lan }, t + 1);
        assert_eq!(refusal(&out), None, "{out:?}");
        let closed = closes(&out);
        assert_eq!(closed.len(), 1);
        assert!([id(1), id(9)].contains(&closed[0]), "a chord went, not the chain: {closed:?}");
        let adopted = link_to(&m, 2);
        m.handle(Input::Opened { link: adopted }, t + 2);
        m.set_value(adopted, false, 0);
        // Another one right after: one adoption per ADOPT_GAP, and it takes
        // the adopted one's place, not a second chord.
        found(&mut m, 3, t);
        for k in 0..3 {
            let at = t + 3 + k * BUSY_RETRY;
            assert_eq!(
                refusal(&m.handle(Input::Offer { peer: id(3), sent_at: at, via: Via::Lan }, at)),
                Some(Refusal::Full)
            );
        }
        let at = t + 1 + ADOPT_GAP;
        let out = m.handle(Input::Offer { peer: id(3), sent_at: at, via: Via::Lan }, at);
        assert_eq!(refusal(&out), None, "after the gap: {out:?}");
        assert_eq!(closes(&out), vec![id(2)], "the adopted slot rotates");
    }

    #[test]
    fn a_dial_that_never_opens_is_given_up_after_the_dial_timeout() {
        let mut m = mesh(1, 4);
        let out = found(&mut m, 9, 0);
        assert_eq!(dials(&out), vec![id(9)]);
        m.handle(Input::Answered { link: link_to(&m, 9) }, 10);
        // Neither Opened nor Closed ever comes (lost on the way).
        assert!(m.next_wake().is_some_and(|t| t <= DIAL_TIMEOUT), "{:?}", m.next_wake());
        assert!(closes(&m.handle(Input::Tick, DIAL_TIMEOUT - 1)).is_empty());
        let out = m.handle(Input::Tick, DIAL_TIMEOUT);
        assert_eq!(closes(&out), vec![id(9)], "{out:?}");
        assert_eq!(m.peer(&id(9)).expect("known").failures, 1, "counted as a failed dial");
        assert!(m.is_empty());
    }

    #[test]
    fn an_offer_that_never_opens_costs_its_peer_a_ban_and_a_redial_keeps_its_start() {
        let mut m = mesh(5, 4);
        let out = m.handle(Input::Offer { peer: id(1), sent_at: 0, via: Via::Lan }, 0);
        assert!(out.iter().any(|o| matches!(o, Output::Accept { .. })));
        // Offering again and again does not restart the clock.
        let out = m.handle(Input::Offer { peer: id(1), sent_at: DIAL_TIMEOUT / 2, via: Via::Lan }, DIAL_TIMEOUT / 2);
        assert!(out.iter().any(|o| matches!(o, Output::Accept { .. })));
        let out = m.handle(Input::Tick, DIAL_TIMEOUT);
        assert_eq!(closes(&out), vec![id(1)], "{out:?}");
        let again = m.handle(Input::Offer { peer: id(1), sent_at: DIAL_TIMEOUT + 1, via: Via::Lan }, DIAL_TIMEOUT + 1);
        assert_eq!(refusal(&again), Some(Refusal::Banned));
    }

    #[test]
    fn a_node_with_no_link_knocks_again_on_its_lower_peers() {
        // The top node by id: nobody higher to dial.
        let mut m = mesh(9, 4);
        found(&mut m, 3, 0);
        let out = m.handle(Input::Tick, KNOCK_DELAY);
        assert_eq!(dials(&out), vec![id(3)]);
        m.handle(Input::DialFailed { link: link_to(&m, 3), busy: true }, KNOCK_DELAY + 1);
        assert_eq!(dials(&m.handle(Input::Tick, KNOCK_DELAY + 2)), vec![], "not at once");
        // Refused once: twice the period.
        let again = KNOCK_DELAY + 2 * LONELY_REKNOCK;
        assert_eq!(m.next_wake(), Some(again));
        assert_eq!(dials(&m.handle(Input::Tick, again - 1)), vec![]);
        assert_eq!(dials(&m.handle(Input::Tick, again)), vec![id(3)], "again after its lonely period");
        // Linked (to 3's dial, say): no more knocks.
        m.handle(Input::DialFailed { link: link_to(&m, 3), busy: true }, again + 1);
        let l = linked_by(&mut m, 3, again + 2);
        m.set_value(l, false, 0);
        assert_eq!(dials(&m.handle(Input::Tick, again + 3 * LONELY_REKNOCK)), vec![]);
    }

    #[test]
    fn knocks_leave_the_last_slot_alone_and_go_one_at_a_time() {
        let mut m = mesh(5, 3);
        found(&mut m, 1, 0);
        found(&mut m, 2, 0);
        let out = m.handle(Input::Tick, KNOCK_DELAY);
        assert_eq!(dials(&out), vec![id(1)], "one at a time");
        m.handle(Input::DialFailed { link: link_to(&m, 1), busy: true }, KNOCK_DELAY + 1);
        linked_by(&mut m, 3, KNOCK_DELAY + 2);
        assert_eq!(dials(&m.handle(Input::Tick, KNOCK_DELAY + 3)), vec![], "two slots must be free");
    }

    #[test]
    fn a_node_full_of_lower_links_makes_room_when_a_higher_peer_appears() {
        let mut m = mesh(5, 2);
        linked_by(&mut m, 1, 0);
        linked_by(&mut m, 3, 0);
        let out = found(&mut m, 9, 10);
        assert_eq!((closes(&out), dials(&out)), (vec![], vec![id(9)]), "make before break");
        assert_eq!(m.kept(), 2);
        let out = m.handle(Input::Opened { link: link_to(&m, 9) }, 11);
        assert_eq!(closes(&out), vec![id(1)], "the farthest lower link goes");
        assert_eq!(
            refusal(&m.handle(Input::Offer { peer: id(1), sent_at: 12, via: Via::Lan }, 12)),
            Some(Refusal::Full)
        );
        // A nearer lower peer's dial takes a farther one's place.
        let out = m.handle(Input::Offer { peer: id(4), sent_at: 13, via: Via::Lan }, 13);
        assert_eq!((closes(&out), refusal(&out)), (vec![id(3)], None));
    }

    #[test]
    fn a_full_node_moves_to_a_nearer_peer_then_to_a_powered_one_never_dropping_its_successor() {
        let mut m = mesh(5, 2);
        found(&mut m, 9, 0);
        m.handle(Input::Opened { link: link_to(&m, 9) }, 1);
        let out = found(&mut m, 7, 2);
        assert_eq!((closes(&out), dials(&out)), (vec![], vec![id(7)]), "the nearer peer is dialed first");
        // 7 refuses: nothing lost, tried again after a while.
        let out = m.handle(Input::DialFailed { link: link_to(&m, 7), busy: true }, 3);
        assert_eq!((closes(&out), dials(&out)), (vec![], vec![]));
        let retry = m.peer(&id(7)).expect("known").next_attempt;
        let out = m.handle(Input::Tick, retry);
        assert_eq!(dials(&out), vec![id(7)]);
        let out = m.handle(Input::Opened { link: link_to(&m, 7) }, retry + 1);
        assert_eq!(closes(&out), vec![id(9)], "the nearer peer takes 9's place once open");
        assert!(dials(&m.handle(Input::Tick, 5_000)).is_empty(), "settled: 9 is farther than 7");
        // A powered peer does not take the successor's place.
        let out = m.handle(Input::Discovered { peer: id(8), addrs: vec![], port: 1, powered: true }, 5_001);
        assert_eq!(closes(&out), vec![]);
    }

    #[test]
    fn a_move_to_a_powered_peer_whose_dial_failed_is_tried_again_after_its_backoff() {
        let mut m = mesh(5, 3);
        found(&mut m, 6, 0);
        found(&mut m, 9, 0);
        for p in [6, 9] {
            m.handle(Input::Opened { link: link_to(&m, p) }, 1);
        }
        let out = m.handle(Input::Discovered { peer: id(8), addrs: vec![], port: 1, powered: true }, 2);
        assert_eq!((closes(&out), dials(&out)), (vec![], vec![id(8)]), "a move to the powered peer");
        // The box did not answer: nothing lost, and the move is tried again.
        let out = m.handle(Input::DialFailed { link: link_to(&m, 8), busy: false }, 3);
        assert_eq!((closes(&out), dials(&out)), (vec![], vec![]));
        let retry = m.peer(&id(8)).expect("known").next_attempt;
        assert!(retry > 3);
        let out = m.handle(Input::Tick, retry);
        assert_eq!(dials(&out), vec![id(8)]);
        let out = m.handle(Input::Opened { link: link_to(&m, 8) }, retry + 1);
        assert_eq!(closes(&out), vec![id(9)], "the unpowered link gives its place, never the successor's");
    }

    #[test]
    fn a_node_full_of_lower_links_gives_one_but_its_predecessors_to_a_powered_peer() {
        let mut m = mesh(5, 3);
        found(&mut m, 9, 0);
        m.handle(Input::Opened { link: link_to(&m, 9) }, 1);
        linked_by(&mut m, 1, 2);
        linked_by(&mut m, 3, 3);
        let out = m.handle(Input::Discovered { peer: id(12), addrs: vec![], port: 1, powered: true }, 4);
        assert_eq!(dials(&out), vec![id(12)], "full of lower links, it still moves to the box");
        let out = m.handle(Input::Opened { link: link_to(&m, 12) }, 5);
        assert_eq!(closes(&out), vec![id(1)], "the farther lower link goes, never the predecessor's");
        assert_eq!(m.kept(), 3);
        // Settled: both upward slots taken, the predecessor kept.
        assert!(dials(&m.handle(Input::Tick, 5_000)).is_empty());
    }

    #[test]
    fn a_link_whose_peer_never_says_hello_is_closed_and_the_peer_banned() {
        let mut m = mesh(5, 3);
        found(&mut m, 6, 0);
        let link = link_to(&m, 6);
        m.handle(Input::Opened { link }, 10);
        assert!(closes(&m.handle(Input::Tick, 10 + HELLO_TIMEOUT - 1)).is_empty());
        assert_eq!(m.next_wake(), Some(10 + HELLO_TIMEOUT), "a wake-up for the deadline");
        let out = m.handle(Input::Tick, 10 + HELLO_TIMEOUT);
        assert_eq!(closes(&out), vec![id(6)]);
        assert!(m.is_banned(&id(6), 10 + HELLO_TIMEOUT));
        let out = m.handle(Input::Offer { peer: id(6), sent_at: 1, via: Via::Lan }, 20 + HELLO_TIMEOUT);
        assert_eq!(refusal(&out), Some(Refusal::Banned));
        // A peer that greets keeps its link.
        let mut m = mesh(5, 3);
        found(&mut m, 7, 0);
        let link = link_to(&m, 7);
        m.handle(Input::Opened { link }, 10);
        m.set_value(link, false, 0);
        assert!(closes(&m.handle(Input::Tick, 10 * HELLO_TIMEOUT)).is_empty());
    }

    #[test]
    fn a_record_never_drops_an_open_link_but_restarts_our_opening_dial() {
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let mut m = mesh(5, 4);
        m.handle(Input::Discovered { peer: id(9), addrs: vec![a], port: 7000, powered: false }, 0);
        let first = link_to(&m, 9);
        let out = m.handle(Input::Discovered { peer: id(9), addrs: vec![a, b], port: 7000, powered: false }, 1);
        assert!(closes(&out).is_empty(), "an added address is no move");
        let out = m.handle(Input::Discovered { peer: id(9), addrs: vec![b], port: 7001, powered: false }, 2);
        assert_eq!(closes(&out), vec![id(9)], "our dial still opening starts over");
        assert!(matches!(&out[1], Output::Dial { peer, addrs, port: 7001, .. } if *peer == id(9) && addrs == &vec![b]));
        let second = link_to(&m, 9);
        assert_ne!(first, second);
        m.handle(Input::Opened { link: second }, 3);
        let out = m.handle(Input::Discovered { peer: id(9), addrs: vec![a], port: 6666, powered: false }, 4);
        assert!(closes(&out).is_empty() && dials(&out).is_empty(), "a spoofed record leaves the open link alone");
        // The link fails: the new address is dialed after the backoff.
        m.handle(Input::Closed { link: second }, 5);
        let retry = m.peer(&id(9)).expect("known").next_attempt;
        let out = m.handle(Input::Tick, retry);
        assert!(matches!(&out[0], Output::Dial { port: 6666, .. }));
    }

    #[test]
    fn the_same_seed_gives_the_same_jitter() {
        let run = || {
            let mut m = mesh(5, 4);
            found(&mut m, 9, 0);
            m.handle(Input::DialFailed { link: link_to(&m, 9), busy: false }, 0);
            m.peer(&id(9)).expect("known").next_attempt
        };
        assert_eq!(run(), run());
        let mut other = Mesh::new(id(5), 4, [8; 32]);
        found(&mut other, 9, 0);
        other.handle(Input::DialFailed { link: link_to(&other, 9), busy: false }, 0);
        assert_ne!(other.peer(&id(9)).expect("known").next_attempt, run(), "another seed, another jitter");
    }

    #[test]
    fn links_beyond_the_chain_go_in_each_nodes_own_order() {
        let second = |seed: u8| {
            let mut m = Mesh::new(id(1), 3, [seed; 32]);
            m.handle(Input::SetLimit(0), 0);
            for p in 2..=40 {
                found(&mut m, p, 0);
            }
            let out = m.handle(Input::SetLimit(3), 0);
            let d = dials(&out);
            assert_eq!(d.len(), 2, "{out:?}");
            assert_eq!(d[0], id(2), "the chain link first");
            d[1]
        };
        assert_eq!(second(1), second(1), "the same seed, the same choice");
        let chosen: BTreeSet<PeerId> = (1..=8).map(second).collect();
        assert!(chosen.len() >= 4, "eight seeds chose only {chosen:?}");
    }

    #[test]
    fn a_full_node_gives_a_lower_peers_dial_a_place_only_when_it_is_the_nearest() {
        let mut m = mesh(10, 2);
        linked_by(&mut m, 5, 0);
        linked_by(&mut m, 3, 0);
        // Nearer than 3, not than 5: a chord, which waits for a free slot.
        let out = m.handle(Input::Offer { peer: id(4), sent_at: 1, via: Via::Lan }, 1);
        assert_eq!(refusal(&out), Some(Refusal::Full), "{out:?}");
        assert!(closes(&out).is_empty());
        // Nearer than every lower link: our predecessor takes 3's place.
        let out = m.handle(Input::Offer { peer: id(7), sent_at: 2, via: Via::Lan }, 2);
        assert_eq!(closes(&out), vec![id(3)]);
        assert!(out.iter().any(|o| matches!(o, Output::Accept { peer, .. } if *peer == id(7))), "{out:?}");
    }
}
