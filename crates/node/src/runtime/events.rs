//! What a running node tells the people using it. Serializable: the CLI
//! prints these as JSON lines, the app sends them to its UI (and, with the
//! `ts` feature, ts-rs writes their TypeScript declarations for the UI).

use std::collections::BTreeMap;

use festival_core::body::MeetupAnswer;
use festival_core::policy::{limits, Limits, PowerState};
use festival_core::{MessageId, PeerId, ReceiptStatus, RoomId};
use festival_store::HistoryCursor;
use serde::Serialize;

/// The organiser's announcement, shown pinned until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AnnouncementView {
    pub id: MessageId,
    pub text: String,
    /// Milliseconds since the Unix epoch, by the organiser's clock.
    pub created_at: u64,
    /// When it stops being shown (and carried).
    pub until: u64,
}

impl AnnouncementView {
    pub fn new(env: &festival_core::SignedEnvelope, body: festival_core::body::AnnouncementBody) -> Self {
        AnnouncementView { id: env.id(), text: body.text, created_at: env.created_at(), until: body.until }
    }
}

/// A message as a person sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessageView {
    pub id: MessageId,
    pub room: RoomId,
    pub author: PeerId,
    /// Who the author is, as far as anyone can tell: name, verified mark or
    /// short fingerprint, lookalike and equivocation flags.
    pub sender: crate::names::Author,
    pub seq: u64,
    /// The author's clock, ms since the Unix epoch.
    pub created_at: u64,
    /// Our clock: when it reached this device.
    pub received_at: u64,
    pub body: MessageBody,
    /// Links it crossed to reach us (0: ours).
    pub hops: u8,
    pub mine: bool,
    /// Our own messages only: where it stands (`None` for others').
    pub delivery: Option<Delivery>,
}

/// Where one of our messages stands: the whole state machine, computed by
/// the node from what its store knows (the outbox, the relay's
/// acknowledgement, the receipts that count) at `as_of`. The UI shows it as
/// it is; of two views of one message it keeps the later `as_of` (the
/// store only learns more, so a later view never knows less).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Delivery {
    /// saved -> sent -> at_relay -> delivered -> read; never backwards.
    pub state: DeliveryState,
    /// Once sent: the path it first left by.
    pub path: Option<LinkPath>,
    /// The relay acknowledged it committed it (it waits there for the
    /// recipient and survives the relay's crash); kept once delivered too.
    pub at_relay: bool,
    /// Peers whose receipts count (for a DM, only its recipient): have it,
    /// and have read it.
    pub delivered_to: u32,
    pub read_by: u32,
    /// While saved: why it has not left yet.
    pub waiting: Option<Waiting>,
    /// A DM its recipient has not acknowledged within the delivery timeout
    /// ([`DELIVERY_TIMEOUT_MS`]) of being written (or of the last retry):
    /// why, as far as this device can tell. The UI offers to retry.
    pub not_delivered: Option<NotDelivered>,
    /// A DM not delivered yet whose timeout has not come: when it does (the
    /// node sends a `delivery` event then).
    pub overdue_at: Option<u64>,
    /// When this was computed: the node's wall clock (ms since the Unix
    /// epoch), made strictly increasing within the process
    /// ([`next_as_of`]), so of two views the later is always the one
    /// computed later, also across a clock set back or a node restarted
    /// with new settings.
    pub as_of: u64,
}

/// A stamp for a view computed now: the wall clock, or one more than the
/// last stamp given in this process if that is not earlier (the clock set
/// back, or two views in one millisecond).
pub fn next_as_of(wall: u64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// How long a DM may go unacknowledged by its recipient before it shows
/// "not delivered yet": two minutes.
pub const DELIVERY_TIMEOUT_MS: u64 = 2 * 60_000;

/// Why a DM is not delivered yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum NotDelivered {
    /// It has not left this device (`waiting` says why).
    NotSent,
    /// Handed to devices nearby, which carry it on; its recipient has not
    /// confirmed it (they may be out of reach of everyone who has it).
    HandedOn,
    /// The relay keeps it for the recipient, who has not fetched it yet.
    AtRelay,
}

impl Delivery {
    /// From what the store knows: the outbox marks (`None`: not in the
    /// outbox, from before it; stored, so at least saved), the receipts
    /// that count, whether it is a DM, when it was written, now, and the
    /// delivery timeout.
    pub fn compute(
        marks: Option<&festival_store::OutboxMarks>,
        delivered_to: u32,
        read_by: u32,
        direct: bool,
        created_at: u64,
        now: u64,
        timeout_ms: u64,
    ) -> Delivery {
        let path = marks.and_then(|m| m.sent.as_ref()).and_then(|(_, p)| LinkPath::from_label(p));
        let sent = marks.is_some_and(|m| m.sent.is_some());
        let at_relay = marks.is_some_and(|m| m.relay_stored_at.is_some());
        let state = if read_by > 0 {
            DeliveryState::Read
        } else if delivered_to > 0 {
            DeliveryState::Delivered
        } else if at_relay && sent {
            DeliveryState::AtRelay
        } else if sent {
            DeliveryState::Sent
        } else {
            DeliveryState::Saved
        };
        let (mut not_delivered, mut overdue_at) = (None, None);
        if direct && state < DeliveryState::Delivered {
            // A retry stamped while the clock ran ahead counts from now.
            let retried = marks.and_then(|m| m.retried_at).map_or(0, |r| r.min(now));
            let start = retried.max(created_at);
            let due = start.saturating_add(timeout_ms);
            if now >= due {
                not_delivered = Some(match state {
                    DeliveryState::Saved => NotDelivered::NotSent,
                    DeliveryState::AtRelay => NotDelivered::AtRelay,
                    _ => NotDelivered::HandedOn,
                });
            } else {
                overdue_at = Some(due);
            }
        }
        Delivery { state, path, at_relay, delivered_to, read_by, waiting: None, not_delivered, overdue_at, as_of: now }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageBody {
    Text {
        text: String,
    },
    /// A direct message we can read (to us, or sent by us).
    Direct {
        to: PeerId,
        text: String,
    },
    /// "Meet at `place` at `at`": shown as a card, with who answered,
    /// until `until` (its time plus `festival_core::body::MEETUP_GRACE_MS`).
    Meetup(MeetupView),
    /// A private group's message we can read (`group`: its id, 32 hex
    /// digits).
    Group {
        group: String,
        name: String,
        text: String,
    },
    /// A private group made: who is in it.
    GroupMembers {
        group: String,
        name: String,
        members: Vec<PeerId>,
    },
    /// The author added people to the private group.
    GroupAdded {
        group: String,
        name: String,
        added: Vec<PeerId>,
    },
    /// The author left the private group.
    GroupLeft {
        group: String,
    },
    /// A photo: its thumbnail at once, the photo itself (`photo` command)
    /// once all its chunks are here.
    Photo(PhotoView),
}

/// A photo as a message shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PhotoView {
    /// What the author wrote with it ("" for nothing).
    pub caption: String,
    /// The photo's size in pixels (at most 1600 on the longer side) and
    /// bytes.
    pub width: u16,
    pub height: u16,
    pub bytes: u32,
    /// The thumbnail, a `data:image/jpeg;base64,...` URL.
    pub thumb: String,
    /// All its chunks are here: the photo can be shown.
    pub complete: bool,
}

/// A private group we are (or were) in, as its latest message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GroupView {
    /// 32 hex digits.
    pub id: String,
    pub name: String,
    /// Us first, then by name.
    pub members: Vec<GroupMember>,
    /// We left it: it is read-only.
    pub left: bool,
    /// No notifications from it.
    pub muted: bool,
    /// When its latest message reached us.
    pub last_activity: u64,
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GroupMember {
    pub peer: PeerId,
    pub me: bool,
    pub who: crate::names::Author,
}

/// A meet-up card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MeetupView {
    pub place: String,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// When the card goes.
    pub until: u64,
    /// How many people answer "coming" and "can't" (each person's latest
    /// answer; blocked people left out).
    pub coming: u32,
    pub cant: u32,
    /// Our own answer, if we gave one.
    pub mine: Option<MeetupAnswer>,
    /// Who answered: us first, verified contacts next, at most
    /// [`MAX_MEETUP_PEOPLE`] (the counts above are complete).
    pub people: Vec<MeetupPerson>,
}

/// One person's answer on a card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MeetupPerson {
    pub peer: PeerId,
    /// This is us (shown as "You").
    pub me: bool,
    pub who: crate::names::Author,
    pub answer: MeetupAnswer,
}

/// Most people a card lists by name (a room of thousands answering is
/// counted, not listed).
pub const MAX_MEETUP_PEOPLE: usize = 64;

/// The stages of one of our messages, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Committed on this device; leaves when a path opens.
    Saved,
    /// Left this device (see `path`): handed to a device nearby or to the
    /// relay. Never "delivered": a carrier is not the recipient.
    Sent,
    /// The relay committed it (its `Stored`): it waits there.
    AtRelay,
    /// At least one peer whose receipt counts has it (a DM: its recipient).
    Delivered,
    /// At least one such peer read it.
    Read,
}

/// Why a saved message has not left yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Waiting {
    /// No other device found on this network (and no relay).
    NoOneNearby,
    /// Devices found, no link open yet.
    Connecting,
    /// A link is open: it goes out with the next exchange.
    Sending,
}

impl Waiting {
    pub fn from_reach(links: usize, discovered: usize) -> Self {
        match (links, discovered) {
            (0, 0) => Waiting::NoOneNearby,
            (0, _) => Waiting::Connecting,
            _ => Waiting::Sending,
        }
    }
}

/// The kind of link something travelled over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LinkPath {
    /// A direct WebRTC data channel on the local network.
    Lan,
    /// Through the relay server.
    Relay,
}

impl LinkPath {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPath::Lan => "lan",
            LinkPath::Relay => "relay",
        }
    }
    /// The label the store keeps in the outbox (see `Store::mark_sent`).
    pub fn from_label(s: &str) -> Option<Self> {
        match s {
            "lan" => Some(LinkPath::Lan),
            "relay" => Some(LinkPath::Relay),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A message is stored here and ready to show (per-author order).
    Message(MessageView),
    /// A meet-up's answers changed: the card as it stands now (replaces
    /// the message of the same id).
    MeetupChanged(MessageView),
    /// All of a photo's chunks came: the message as it stands now, the
    /// photo complete (replaces the message of the same id).
    PhotoReady(MessageView),
    /// The organiser's announcement arrived (or was sent by this node, the
    /// organiser's): show it pinned until its end.
    Announcement(AnnouncementView),
    /// One of our messages left the device.
    Sent {
        id: MessageId,
        path: LinkPath,
    },
    /// One of our messages stands somewhere new (it left, the relay
    /// stored it, a receipt counted, it became "not delivered yet", it
    /// was retried): its whole state, which replaces what was shown.
    Delivery {
        id: MessageId,
        delivery: Delivery,
    },
    Receipt {
        from: PeerId,
        status: ReceiptStatus,
        ids: Vec<MessageId>,
    },
    PeerName {
        peer: PeerId,
        name: String,
    },
    Discovered {
        peer: PeerId,
    },
    Lost {
        peer: PeerId,
    },
    LinkUp {
        peer: PeerId,
        path: LinkPath,
    },
    LinkDown {
        peer: PeerId,
        reason: String,
    },
    /// What a peer sent that was refused (and counted): at most one event
    /// a second per link, `count` refusals, `code` the first one's reason.
    Rejected {
        peer: Option<PeerId>,
        code: String,
        count: u64,
    },
    /// An author was found to have signed two different messages for one
    /// position; the proof is kept and passed on.
    Equivocation {
        peer: PeerId,
    },
    Power {
        mode: PowerMode,
    },
    /// Not sent by the node: a subscriber that fell behind missed `missed`
    /// events and should re-read what it shows (history, peers, status).
    Lagged {
        missed: u64,
    },
}

/// How a peer can be reached now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PeerPath {
    /// A direct data channel on the local network is open.
    Lan,
    /// Through the relay.
    Relay,
    /// No link of ours: messages reach it carried by other devices.
    ViaOthers,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PeerView {
    pub peer: PeerId,
    pub fingerprint: String,
    pub name: Option<String>,
    pub verified: bool,
    /// The name looks like mine, a verified contact's or another peer's.
    pub name_clash: bool,
    /// Proven to have signed two messages for one position.
    pub equivocated: bool,
    pub path: PeerPath,
    /// A data channel is open to it now.
    pub linked: bool,
    /// Seen on the LAN via mDNS.
    pub discovered: bool,
    pub last_seen: Option<u64>,
    /// No notifications for their messages.
    pub muted: bool,
    /// Their messages are hidden, their DMs not carried, no receipts.
    pub blocked: bool,
}

/// Someone muted or blocked here, for the list that undoes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PersonChoiceView {
    pub peer: PeerId,
    pub sender: crate::names::Author,
    pub muted: bool,
    pub blocked: bool,
    /// When it was chosen (ms since the Unix epoch).
    pub since: u64,
}

/// The relay connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RelayState {
    NotConfigured,
    Connecting { url: String },
    Connected { url: String },
    Offline { url: String, reason: String },
}

/// What the node holds back to save power (compared with running on mains).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Saving {
    /// Fewer links open at once.
    FewerLinks { max: u32 },
    /// Compares notes with neighbours less often.
    SlowerSync { every_s: u32 },
    /// Stops carrying other people's messages.
    NoRelayForOthers,
    /// Stops syncing in the background.
    NoBackgroundSync,
}

/// The power situation as a person reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PowerMode {
    /// Battery percentage when running on battery; `None` on mains or while
    /// charging.
    pub battery: Option<u8>,
    /// At or below the low-battery mark.
    pub low: bool,
    pub limits: Limits,
    pub saving: Vec<Saving>,
}

impl PowerMode {
    pub fn new(state: PowerState, limits: Limits) -> Self {
        let full = festival_core::policy::limits(PowerState::Mains);
        let mut saving = Vec::new();
        if limits.max_peers < full.max_peers {
            saving.push(Saving::FewerLinks { max: u32::try_from(limits.max_peers).unwrap_or(u32::MAX) });
        }
        if limits.sync_interval_ms > full.sync_interval_ms {
            saving.push(Saving::SlowerSync {
                every_s: u32::try_from(limits.sync_interval_ms / 1000).unwrap_or(u32::MAX),
            });
        }
        if !limits.relay_for_others {
            saving.push(Saving::NoRelayForOthers);
        }
        if !limits.background_sync {
            saving.push(Saving::NoBackgroundSync);
        }
        let battery = match state {
            PowerState::Battery { percent } => Some(percent),
            PowerState::Mains => None,
        };
        PowerMode { battery, low: state.is_low(), limits, saving }
    }

    /// The mode the power policy gives a state.
    pub fn from_state(state: PowerState) -> Self {
        Self::new(state, limits(state))
    }
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Status {
    pub peer: PeerId,
    pub fingerprint: String,
    /// Our display name.
    pub name: String,
    pub festival: String,
    /// Peer-to-peer is running: LAN discovery and WebRTC are up.
    pub p2p: bool,
    /// Data channels open now.
    pub links: u32,
    /// Devices of this festival found on the LAN.
    pub discovered: u32,
    pub relay: RelayState,
    pub power: PowerMode,
    /// Peer limit in force (policy or override).
    pub peer_limit: u32,
    pub signaling_port: u16,
    pub udp_port: u16,
    /// Refused inputs by reason: signaling, frames and envelopes.
    pub rejected: BTreeMap<String, u64>,
    /// DMs of people blocked here dropped unstored since the node started
    /// (not refusals: whoever carried them did nothing wrong).
    pub blocked_dropped: u64,
    /// Which paths traffic took since the node started.
    pub paths: PathStats,
}

/// Traffic per path since the node started (see `runtime/paths.rs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PathStats {
    /// Our messages by the path they first left on.
    pub sent_lan: u64,
    pub sent_relay: u64,
    /// Frame bytes sent on direct data channels and through the relay.
    pub bytes_lan: u64,
    pub bytes_relay: u64,
    /// Share of the bytes sent that stayed off the relay; `None` before
    /// anything was sent.
    pub off_relay_share: Option<f64>,
    /// Data channels we tried to open, and how many opened.
    pub p2p_attempts: u64,
    pub p2p_opened: u64,
    pub p2p_success_rate: Option<f64>,
    /// Of the attempts, those signaled through the relay (upgrades from
    /// the relay to a direct path), and how many opened.
    pub upgrade_attempts: u64,
    pub upgrades: u64,
    /// Round trip per path, median of recent samples: ICE checks on the
    /// data channels, and the relay's ping and `Stored` acknowledgements.
    pub lan_rtt_ms: Option<f64>,
    pub relay_rtt_ms: Option<f64>,
    /// The relay's round trip is above 200 ms: direct links are sought.
    pub relay_slow: bool,
    /// Our address as the relay's STUN server saw it (a candidate for
    /// direct links across a NAT), once known.
    pub reflexive_addr: Option<String>,
}

/// A joined room, for the room list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomView {
    pub id: RoomId,
    pub name: String,
    /// Messages by others received since the room was last read.
    pub unread: u64,
    /// When the latest message (text or DM) reached us, if any.
    pub last_activity: Option<u64>,
    pub joined_at: u64,
    /// No notifications from it, mentions of me included.
    pub muted: bool,
}

/// What a search found: messages a person can read, newest first, each
/// with its conversation (`room`, and for a DM its `body.to` or author).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchResults {
    pub messages: Vec<MessageView>,
    /// Messages stored but not indexed yet (they are found once they are).
    pub pending: u64,
}

/// A page of history, oldest first. `next` continues with older messages;
/// `None` means the start of the room was reached. A page can hold fewer
/// than the asked number of messages and still have a `next` (a stretch of
/// the DM mailbox that is other people's mail): keep going while it is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryPage {
    pub messages: Vec<MessageView>,
    pub next: Option<HistoryCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use festival_store::OutboxMarks;

    const T: u64 = 1_750_000_000_000;
    const TIMEOUT: u64 = DELIVERY_TIMEOUT_MS;

    fn marks(sent: bool, relay: bool, retried: Option<u64>) -> OutboxMarks {
        OutboxMarks {
            queued_at: T,
            sent: sent.then(|| (T + 10, "lan".to_owned())),
            relay_stored_at: relay.then_some(T + 20),
            retried_at: retried,
        }
    }

    #[test]
    fn the_stages_follow_what_the_store_knows() {
        let state = |m: Option<OutboxMarks>, got: u32, read: u32| {
            Delivery::compute(m.as_ref(), got, read, false, T, T + 1, TIMEOUT).state
        };
        assert_eq!(state(Some(marks(false, false, None)), 0, 0), DeliveryState::Saved);
        assert_eq!(state(None, 0, 0), DeliveryState::Saved, "stored before the outbox: at least saved");
        // Handed to a device nearby is sent, not delivered: only a receipt
        // that counts (for a DM, its recipient's) is.
        assert_eq!(state(Some(marks(true, false, None)), 0, 0), DeliveryState::Sent);
        assert_eq!(state(Some(marks(true, true, None)), 0, 0), DeliveryState::AtRelay);
        assert_eq!(state(Some(marks(true, true, None)), 1, 0), DeliveryState::Delivered);
        assert_eq!(state(Some(marks(true, false, None)), 1, 1), DeliveryState::Read);
        // A receipt proves it left, even with the outbox's mark lost.
        assert_eq!(state(Some(marks(false, false, None)), 1, 0), DeliveryState::Delivered);
        // A relay's word alone does not make an unsent message stored.
        assert_eq!(state(Some(marks(false, true, None)), 0, 0), DeliveryState::Saved);
        let d = Delivery::compute(Some(&marks(true, true, None)), 1, 0, false, T, T + 1, TIMEOUT);
        assert_eq!((d.path, d.at_relay, d.as_of), (Some(LinkPath::Lan), true, T + 1), "the relay's mark stays");
    }

    #[test]
    fn a_dm_not_acknowledged_in_time_is_not_delivered_yet_with_the_reason() {
        let dm = |m: OutboxMarks, got: u32, now: u64| Delivery::compute(Some(&m), got, 0, true, T, now, TIMEOUT);
        let early = dm(marks(true, false, None), 0, T + TIMEOUT - 1);
        assert_eq!((early.not_delivered, early.overdue_at), (None, Some(T + TIMEOUT)));
        let due = T + TIMEOUT;
        assert_eq!(dm(marks(false, false, None), 0, due).not_delivered, Some(NotDelivered::NotSent));
        assert_eq!(dm(marks(true, false, None), 0, due).not_delivered, Some(NotDelivered::HandedOn));
        assert_eq!(dm(marks(true, true, None), 0, due).not_delivered, Some(NotDelivered::AtRelay));
        assert_eq!(dm(marks(true, true, None), 0, due).overdue_at, None);
        // Delivered: no clock at all.
        let done = dm(marks(true, false, None), 1, due + 1);
        assert_eq!((done.not_delivered, done.overdue_at), (None, None));
        // A retry starts the clock again.
        let retried = dm(marks(true, false, Some(due + 5)), 0, due + 10);
        assert_eq!((retried.not_delivered, retried.overdue_at), (None, Some(due + 5 + TIMEOUT)));
        // A retry stamped while the clock ran ahead starts the clock from now.
        let ahead = dm(marks(true, false, Some(due + 3_600_000)), 0, due + 10);
        assert_eq!(ahead.overdue_at, Some(due + 10 + TIMEOUT));
        // A room message has no such clock (receipts come only from small rooms).
        let room = Delivery::compute(Some(&marks(true, false, None)), 0, 0, false, T, due * 2, TIMEOUT);
        assert_eq!((room.not_delivered, room.overdue_at), (None, None));
    }

    #[test]
    fn stamps_only_go_up_even_when_the_clock_goes_back() {
        let a = next_as_of(T + 1_000);
        let b = next_as_of(T);
        let c = next_as_of(T);
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
