//! LAN mode: nodes that find each other by discovery and link as their
//! [`Mesh`] decides, as the node's runtime does, instead of on a graph the
//! test draws.
//!
//! What is simulated, in virtual time with the run's seeded RNG:
//! - discovery: a node that starts announces itself to every node that
//!   hears it and hears their records (answers to its query), each after a
//!   random delay up to [`LanCfg::announce_ms`] (mDNS answers at most once a
//!   second) and each lost with [`LanCfg::discovery_loss`]; every node
//!   announces again every [`LanCfg::reannounce_ms`]; a node that leaves
//!   says goodbye (also lossy: a record that is not withdrawn simply stays,
//!   and dials to it fail);
//! - dialing: an offer reaches the peer after one latency of the link; the
//!   peer's mesh accepts or refuses it; the answer comes back after
//!   another; an accepted link opens after two more (ICE, DTLS, SCTP). A dial
//!   to a node that is gone fails after [`LanCfg::dial_timeout_ms`];
//! - links: open links carry the core's frames with the spec's latency,
//!   jitter and loss; a link whose far end went away is noticed after
//!   [`LanCfg::dead_link_ms`] (ICE consent).
//!
//! Which nodes hear each other is [`LanCfg::hears`]: one broadcast domain by
//! default, or nodes placed on a field that hear those within a radius.

use std::collections::BTreeMap;

use festival_core::mesh::{Input as MeshInput, Mesh, Output as MeshOutput, Via};
use festival_core::policy::PowerState;
use festival_core::LinkId;
use rand::Rng;

use crate::{key, Event, LinkSpec, Sim};

/// Who hears whom on the LAN.
#[derive(Clone, Debug)]
pub enum Hearing {
    /// Everyone hears everyone (one Wi-Fi, one mDNS segment).
    All,
    /// Node `i` stands at `positions[i]` and hears nodes within `radius`.
    Field { positions: Vec<(f64, f64)>, radius: f64 },
    /// Each pair hears each other with probability `share`, drawn once per
    /// pair from `salt` (one Wi-Fi whose multicast reaches only part of a
    /// crowd of thousands, and a mDNS cache that keeps only some records).
    Random { share: f64, salt: u64 },
}

#[derive(Clone, Debug)]
pub struct LanCfg {
    /// Each node's peer limit, by index (the last one for nodes beyond).
    pub limits: Vec<usize>,
    pub spec: LinkSpec,
    pub announce_ms: u64,
    pub reannounce_ms: u64,
    pub discovery_loss: f64,
    pub dial_timeout_ms: u64,
    pub dead_link_ms: u64,
    pub hears: Hearing,
}

impl LanCfg {
    /// One Wi-Fi where everyone keeps at most `limit` links.
    pub fn new(limit: usize, spec: LinkSpec) -> LanCfg {
        LanCfg {
            limits: vec![limit],
            spec,
            announce_ms: 1_000,
            reannounce_ms: 20_000,
            discovery_loss: 0.1,
            dial_timeout_ms: 3_000,
            dead_link_ms: 5_000,
            hears: Hearing::All,
        }
    }

    fn limit(&self, i: usize) -> usize {
        self.limits.get(i).or(self.limits.last()).copied().unwrap_or(2)
    }
}

/// One dial, from the offer to the link's end.
struct Conn {
    dialer: usize,
    target: usize,
    dialer_link: LinkId,
    target_link: Option<LinkId>,
    /// The incarnations of both ends when it was made: a restarted node's
    /// new mesh never hears of its old self's dials.
    epochs: [u64; 2],
    open: bool,
}

pub(crate) enum LanEvent {
    Announce {
        to: usize,
        from: usize,
        epoch: u64,
    },
    Goodbye {
        to: usize,
        from: usize,
    },
    Reannounce {
        node: usize,
        epoch: u64,
    },
    Offer {
        conn: u64,
    },
    Answer {
        conn: u64,
        accepted: bool,
        busy: bool,
    },
    Open {
        conn: u64,
    },
    /// The far end of `link` at `node` ended it (or went away).
    Closed {
        node: usize,
        link: LinkId,
        epoch: u64,
    },
    Wake {
        node: usize,
        epoch: u64,
    },
}

pub(crate) struct LanState {
    pub cfg: LanCfg,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    /// (node, its mesh's link) -> conn.
    by_link: BTreeMap<(usize, LinkId), u64>,
    /// The conn that carries each pair's core link while it is open.
    open_pair: BTreeMap<(usize, usize), u64>,
    /// Per node: its mesh (while online), its incarnation, its next wake-up.
    meshes: Vec<Option<Mesh>>,
    epochs: Vec<u64>,
    wakes: Vec<Option<u64>>,
    /// Links opened and closed so far (for reports).
    pub opened: u64,
    pub closed: u64,
}

impl LanState {
    pub(crate) fn new(cfg: LanCfg) -> LanState {
        LanState {
            cfg,
            conns: BTreeMap::new(),
            next_conn: 1,
            by_link: BTreeMap::new(),
            open_pair: BTreeMap::new(),
            meshes: Vec::new(),
            epochs: Vec::new(),
            wakes: Vec::new(),
            opened: 0,
            closed: 0,
        }
    }

    fn grow(&mut self, n: usize) {
        while self.meshes.len() < n {
            self.meshes.push(None);
            self.epochs.push(0);
            self.wakes.push(None);
        }
    }

    fn hears(&self, a: usize, b: usize) -> bool {
        match &self.cfg.hears {
            Hearing::All => true,
            Hearing::Field { positions, radius } => {
                let (pa, pb) = (positions[a], positions[b]);
                (pa.0 - pb.0).hypot(pa.1 - pb.1) <= *radius
            }
            Hearing::Random { share, salt } => {
                // splitmix64 of the pair: the same answer both ways, every run.
                let mut z = salt ^ ((a.min(b) as u64) << 32 | a.max(b) as u64);
                z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                (z >> 11) as f64 / (1u64 << 53) as f64 <= *share
            }
        }
    }
}

impl Sim {
    /// Switch to LAN mode: from now on nodes link by discovery and their
    /// meshes (see the module docs), not by [`Sim::connect`]. Nodes online
    /// now start announcing.
    pub fn enable_lan(&mut self, cfg: LanCfg) {
        self.lan = Some(LanState::new(cfg));
        for i in 0..self.nodes.len() {
            if self.nodes[i].online() {
                self.lan_start(i);
            }
        }
    }

    /// Node `i`'s mesh, while it is online in LAN mode.
    pub fn mesh(&self, i: usize) -> Option<&Mesh> {
        self.lan.as_ref().and_then(|l| l.meshes.get(i)).and_then(Option::as_ref)
    }

    /// A record for node `victim`'s id at another address, as anyone on
    /// the LAN can multicast, heard by node `to` now.
    pub fn lan_spoof_record(&mut self, to: usize, victim: usize, port: u16) {
        let peer = self.nodes[victim].peer;
        let addrs = vec![std::net::IpAddr::from([192, 0, 2, 66])];
        self.mesh_feed(to, MeshInput::Discovered { peer, addrs, port, powered: true });
    }

    /// Links opened and closed so far in LAN mode.
    pub fn lan_link_churn(&self) -> (u64, u64) {
        self.lan.as_ref().map_or((0, 0), |l| (l.opened, l.closed))
    }

    /// The pairs with an open link now.
    pub fn open_pairs(&self) -> Vec<(usize, usize)> {
        self.links.iter().filter(|(&(a, b), l)| l.enabled && self.link_up(a, b)).map(|(k, _)| *k).collect()
    }

    /// The fewest open links from node `from` to each node (`usize::MAX`
    /// for one it does not reach).
    pub fn hops_from(&self, from: usize) -> Vec<usize> {
        hops_over(&self.adjacency(), from)
    }

    /// The longest of the shortest paths, in links, between online nodes
    /// that reach each other over open links (the mesh's diameter).
    pub fn diameter(&self) -> usize {
        let adj = self.adjacency();
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].online())
            .flat_map(|s| hops_over(&adj, s).into_iter().filter(|d| *d != usize::MAX))
            .max()
            .unwrap_or(0)
    }

    /// Each node's neighbours over open links.
    fn adjacency(&self) -> Vec<Vec<usize>> {
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (a, b) in self.open_pairs() {
            adj[a].push(b);
            adj[b].push(a);
        }
        adj
    }

    /// The online nodes in groups that reach each other over open links,
    /// largest first.
    pub fn components(&self) -> Vec<Vec<usize>> {
        let n = self.nodes.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn root(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for (a, b) in self.open_pairs() {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in (0..n).filter(|&i| self.nodes[i].online()) {
            let r = root(&mut parent, i);
            groups.entry(r).or_default().push(i);
        }
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        groups
    }

    /// A node came online in LAN mode: a fresh mesh, its announcement, and
    /// the records of those it hears.
    pub(crate) fn lan_start(&mut self, i: usize) {
        let n = self.nodes.len();
        let Some(lan) = self.lan.as_mut() else { return };
        lan.grow(n);
        lan.epochs[i] += 1;
        lan.wakes[i] = None;
        let limit = lan.cfg.limit(i);
        let seed: [u8; 32] = self.rng.gen();
        let mesh = Mesh::new(self.nodes[i].peer, limit, seed);
        let lan = self.lan.as_mut().expect("lan mode");
        lan.meshes[i] = Some(mesh);
        let epoch = lan.epochs[i];
        let (announce_ms, reannounce_ms) = (lan.cfg.announce_ms, lan.cfg.reannounce_ms);
        for j in 0..n {
            if j == i || !self.nodes[j].online() || !self.lan.as_ref().expect("lan mode").hears(i, j) {
                continue;
            }
            let ej = self.lan.as_ref().expect("lan mode").epochs[j];
            // Our announcement to j, and j's record to us (its answer to
            // our query).
            for (to, from, ep) in [(j, i, epoch), (i, j, ej)] {
                let loss = self.lan.as_ref().expect("lan mode").cfg.discovery_loss;
                if loss > 0.0 && self.rng.gen_bool(loss) {
                    continue;
                }
                let at = self.now + self.rng.gen_range(0..=announce_ms);
                self.schedule(at, Event::Lan(LanEvent::Announce { to, from, epoch: ep }));
            }
        }
        let at = self.now + self.rng.gen_range(reannounce_ms / 2..=reannounce_ms);
        self.schedule(at, Event::Lan(LanEvent::Reannounce { node: i, epoch }));
    }

    /// A node went offline in LAN mode: its goodbyes, and the far ends of
    /// its links notice after a while.
    pub(crate) fn lan_stop(&mut self, i: usize) {
        let n = self.nodes.len();
        let Some(lan) = self.lan.as_mut() else { return };
        lan.meshes[i] = None;
        lan.wakes[i] = None;
        let (dead_ms, loss) = (lan.cfg.dead_link_ms, lan.cfg.discovery_loss);
        let mine: Vec<u64> =
            lan.conns.iter().filter(|(_, c)| c.dialer == i || c.target == i).map(|(id, _)| *id).collect();
        for id in mine {
            let c = self.forget_conn(id).expect("listed");
            let lan = self.lan.as_mut().expect("lan mode");
            if lan.open_pair.get(&key(c.dialer, c.target)) == Some(&id) {
                lan.open_pair.remove(&key(c.dialer, c.target));
            }
            let (other, link, side) =
                if c.dialer == i { (c.target, c.target_link, 1) } else { (c.dialer, Some(c.dialer_link), 0) };
            if let Some(link) = link {
                let epoch = c.epochs[side];
                self.schedule(self.now + dead_ms, Event::Lan(LanEvent::Closed { node: other, link, epoch }));
            }
        }
        for j in 0..n {
            if j != i && self.nodes[j].online() && self.lan.as_ref().expect("lan mode").hears(i, j) {
                if loss > 0.0 && self.rng.gen_bool(loss) {
                    continue;
                }
                self.schedule(self.now + 1, Event::Lan(LanEvent::Goodbye { to: j, from: i }));
            }
        }
    }

    pub(crate) fn on_lan(&mut self, ev: LanEvent) {
        let Some(lan) = self.lan.as_ref() else { return };
        match ev {
            LanEvent::Announce { to, from, epoch } => {
                if lan.epochs[from] != epoch || !self.nodes[from].online() {
                    return;
                }
                let peer = self.nodes[from].peer;
                let powered = matches!(self.nodes[from].power, PowerState::Mains);
                // One address per node; the port tells incarnations apart.
                let addrs = vec![std::net::IpAddr::from([10, (from >> 16) as u8, (from >> 8) as u8, from as u8])];
                let port = (epoch % 60_000) as u16 + 1;
                self.mesh_feed(to, MeshInput::Discovered { peer, addrs, port, powered });
            }
            LanEvent::Goodbye { to, from } => {
                let peer = self.nodes[from].peer;
                self.mesh_feed(to, MeshInput::Lost { peer });
            }
            LanEvent::Reannounce { node, epoch } => {
                if lan.epochs[node] != epoch || !self.nodes[node].online() {
                    return;
                }
                let (reannounce_ms, loss) = (lan.cfg.reannounce_ms, lan.cfg.discovery_loss);
                for j in 0..self.nodes.len() {
                    let lan = self.lan.as_ref().expect("lan mode");
                    if j == node || !self.nodes[j].online() || !lan.hears(node, j) {
                        continue;
                    }
                    if loss > 0.0 && self.rng.gen_bool(loss) {
                        continue;
                    }
                    self.schedule(self.now + 1, Event::Lan(LanEvent::Announce { to: j, from: node, epoch }));
                }
                self.schedule(self.now + reannounce_ms, Event::Lan(LanEvent::Reannounce { node, epoch }));
            }
            LanEvent::Offer { conn } => {
                let Some(c) = lan.conns.get(&conn) else { return };
                let (dialer, target) = (c.dialer, c.target);
                if !self.nodes[target].online() || lan.epochs[target] != c.epochs[1] {
                    // Nobody answers: the dial times out.
                    let at = self.now + lan.cfg.dial_timeout_ms;
                    self.schedule(at, Event::Lan(LanEvent::Answer { conn, accepted: false, busy: false }));
                    return;
                }
                let peer = self.nodes[dialer].peer;
                let sent_at = self.now;
                let out = self.mesh_handle(target, MeshInput::Offer { peer, sent_at, via: Via::Lan });
                let mut answer = (false, false);
                for o in &out {
                    match o {
                        MeshOutput::Accept { link, .. } => {
                            let lan = self.lan.as_mut().expect("lan mode");
                            if let Some(c) = lan.conns.get_mut(&conn) {
                                c.target_link = Some(*link);
                                lan.by_link.insert((target, *link), conn);
                            }
                            answer = (true, false);
                        }
                        MeshOutput::Refuse { why, .. } => {
                            answer = (false, *why == festival_core::mesh::Refusal::Full);
                        }
                        _ => {}
                    }
                }
                self.mesh_outputs(target, out);
                let at = self.now + self.lan_latency();
                self.schedule(at, Event::Lan(LanEvent::Answer { conn, accepted: answer.0, busy: answer.1 }));
            }
            LanEvent::Answer { conn, accepted, busy } => {
                let Some(c) = lan.conns.get(&conn) else { return };
                let (dialer, link) = (c.dialer, c.dialer_link);
                if accepted {
                    self.mesh_feed(dialer, MeshInput::Answered { link });
                    let at = self.now + 2 * self.lan_latency();
                    self.schedule(at, Event::Lan(LanEvent::Open { conn }));
                } else {
                    self.forget_conn(conn);
                    self.mesh_feed(dialer, MeshInput::DialFailed { link, busy });
                }
            }
            LanEvent::Open { conn } => {
                let Some(c) = lan.conns.get(&conn) else { return };
                let (a, b, la, lb) = (c.dialer, c.target, c.dialer_link, c.target_link);
                let Some(lb) = lb else { return };
                if let Some(old) = lan.open_pair.get(&key(a, b)).copied() {
                    // A new link replaces an old one both ends still hold.
                    self.close_conn(old, None);
                }
                let lan = self.lan.as_mut().expect("lan mode");
                if let Some(c) = lan.conns.get_mut(&conn) {
                    c.open = true;
                }
                lan.open_pair.insert(key(a, b), conn);
                lan.opened += 1;
                let spec = lan.cfg.spec;
                self.trace_link(b"open", a, b);
                self.connect(a, b, spec);
                self.mesh_feed(a, MeshInput::Opened { link: la });
                self.mesh_feed(b, MeshInput::Opened { link: lb });
            }
            LanEvent::Closed { node, link, epoch } => {
                if lan.epochs[node] != epoch {
                    return;
                }
                if let Some(conn) = lan.by_link.get(&(node, link)).copied() {
                    self.close_conn(conn, Some(node));
                }
                self.mesh_feed(node, MeshInput::Closed { link });
            }
            LanEvent::Wake { node, epoch } => {
                if lan.epochs[node] != epoch || lan.wakes[node] != Some(self.now) {
                    return;
                }
                self.lan.as_mut().expect("lan mode").wakes[node] = None;
                self.mesh_feed(node, MeshInput::Tick);
            }
        }
    }

    fn trace_link(&mut self, what: &[u8], a: usize, b: usize) {
        self.trace.update(what);
        for n in [self.now, a as u64, b as u64] {
            self.trace.update(&n.to_le_bytes());
        }
    }

    fn lan_latency(&mut self) -> u64 {
        let spec = self.lan.as_ref().expect("lan mode").cfg.spec;
        spec.latency_ms + if spec.jitter_ms > 0 { self.rng.gen_range(0..=spec.jitter_ms) } else { 0 }
    }

    /// Feed node `i`'s mesh and carry out what it asks.
    fn mesh_feed(&mut self, i: usize, input: MeshInput) {
        let out = self.mesh_handle(i, input);
        self.mesh_outputs(i, out);
    }

    fn mesh_handle(&mut self, i: usize, input: MeshInput) -> Vec<MeshOutput> {
        let now = self.now;
        let values: Vec<(LinkId, bool, usize)> = {
            let Some(mesh) = self.mesh(i) else { return Vec::new() };
            let core = self.nodes[i].core.as_ref();
            let lan = self.lan.as_ref().expect("lan mode");
            mesh.links()
                .filter(|(_, l)| l.open)
                .filter_map(|(link, _)| {
                    let conn = lan.conns.get(lan.by_link.get(&(i, *link))?)?;
                    let other = if conn.dialer == i { conn.target } else { conn.dialer };
                    let v = core?.link_value(LinkId(other as u64))?;
                    Some((*link, v.powered, v.shared_rooms))
                })
                .collect()
        };
        let mesh = self.lan.as_mut().and_then(|l| l.meshes[i].as_mut()).expect("online");
        for (link, powered, shared_rooms) in values {
            mesh.set_value(link, powered, shared_rooms);
        }
        mesh.handle(input, now)
    }

    fn mesh_outputs(&mut self, i: usize, out: Vec<MeshOutput>) {
        for o in out {
            match o {
                MeshOutput::Dial { link, peer, upgrade: false, .. } => {
                    let Some(target) = self.nodes.iter().position(|n| n.peer == peer) else { continue };
                    let lan = self.lan.as_mut().expect("lan mode");
                    let conn = lan.next_conn;
                    lan.next_conn += 1;
                    let epochs = [lan.epochs[i], lan.epochs[target]];
                    lan.conns.insert(
                        conn,
                        Conn { dialer: i, target, dialer_link: link, target_link: None, epochs, open: false },
                    );
                    lan.by_link.insert((i, link), conn);
                    let at = self.now + self.lan_latency();
                    self.schedule(at, Event::Lan(LanEvent::Offer { conn }));
                }
                MeshOutput::Close { link, .. } => {
                    if let Some(conn) = self.lan.as_ref().expect("lan mode").by_link.get(&(i, link)).copied() {
                        self.close_conn(conn, Some(i));
                    }
                }
                MeshOutput::WakeAt(t) => {
                    let lan = self.lan.as_mut().expect("lan mode");
                    lan.wakes[i] = Some(t);
                    let epoch = lan.epochs[i];
                    self.schedule(t.max(self.now), Event::Lan(LanEvent::Wake { node: i, epoch }));
                }
                // Upgrades go through a relay; LAN mode has none.
                MeshOutput::Dial { .. } | MeshOutput::Accept { .. } | MeshOutput::Refuse { .. } => {}
            }
        }
    }

    /// Forget a conn without telling anyone (a refused dial); returns it.
    fn forget_conn(&mut self, conn: u64) -> Option<Conn> {
        let lan = self.lan.as_mut().expect("lan mode");
        let c = lan.conns.remove(&conn)?;
        lan.by_link.remove(&(c.dialer, c.dialer_link));
        if let Some(t) = c.target_link {
            lan.by_link.remove(&(c.target, t));
        }
        Some(c)
    }

    /// End `conn`: `by` (if any) closed it; the other end hears of it one
    /// latency later. If it was open, the core link between the pair drops.
    fn close_conn(&mut self, conn: u64, by: Option<usize>) {
        let Some(c) = self.forget_conn(conn) else { return };
        let (a, b, la, lb, epochs, open) = (c.dialer, c.target, c.dialer_link, c.target_link, c.epochs, c.open);
        let lan = self.lan.as_mut().expect("lan mode");
        if open && lan.open_pair.get(&key(a, b)) == Some(&conn) {
            lan.open_pair.remove(&key(a, b));
            lan.closed += 1;
            self.trace_link(b"close", a, b);
            self.disconnect(a, b);
            self.links.remove(&key(a, b));
        }
        let latency = self.lan_latency();
        for (node, link, epoch) in [(a, Some(la), epochs[0]), (b, lb, epochs[1])] {
            if Some(node) == by {
                continue;
            }
            if let Some(link) = link {
                self.schedule(self.now + latency, Event::Lan(LanEvent::Closed { node, link, epoch }));
            }
        }
    }
}

/// Breadth first from `from` over `adj`.
fn hops_over(adj: &[Vec<usize>], from: usize) -> Vec<usize> {
    let mut dist = vec![usize::MAX; adj.len()];
    dist[from] = 0;
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(x) = queue.pop_front() {
        for &y in &adj[x] {
            if dist[y] == usize::MAX {
                dist[y] = dist[x] + 1;
                queue.push_back(y);
            }
        }
    }
    dist
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hearing_is_mutual_stable_and_near_its_share() {
        let mut cfg = LanCfg::new(3, LinkSpec::lan());
        cfg.hears = Hearing::Random { share: 0.1, salt: 42 };
        let lan = LanState::new(cfg);
        let mut heard = 0;
        for a in 0..200 {
            for b in 0..200 {
                assert_eq!(lan.hears(a, b), lan.hears(b, a), "{a} and {b}");
                assert_eq!(lan.hears(a, b), lan.hears(a, b));
                heard += usize::from(a < b && lan.hears(a, b));
            }
        }
        let share = heard as f64 / (200.0 * 199.0 / 2.0);
        assert!((0.08..0.12).contains(&share), "share {share}");
    }
}
