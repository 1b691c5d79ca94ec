//! Which node events raise a desktop notification, and how few.
//!
//! A festival room can carry hundreds of messages a minute; a phone that
//! buzzed for each would be switched off. So:
//! - a notification is raised for a DM to me, a message that mentions me
//!   (`@` and my name) and the organiser's announcement; never for the
//!   crowd's room messages, which only count into the quiet digest;
//! - a muted room or person raises nothing (their messages count into the
//!   digest); the organiser's announcements cannot be muted;
//! - nothing is raised for the conversation on screen while the window has
//!   the focus;
//! - one conversation (the announcements too) raises at most one
//!   notification per [`COALESCE_MS`]: what arrives meanwhile is held, and
//!   raised as one ("3 new messages") when the window ends, or with the
//!   next message of it;
//! - at most [`MAX_PER_MINUTE`] notifications a minute in all (an
//!   announcement always goes out); past that, a message of a conversation
//!   raised before is held for it, others count into the digest;
//! - the digest: while the window is away, what raised nothing is counted
//!   (with the focus, nothing is: the person sees the unread counts)
//!   and summed up in one notification ("42 new messages") [`DIGEST_MS`]
//!   after the first of them, so at most one per [`DIGEST_MS`]. Focusing the
//!   window clears it.
//!
//! Pure: events and times in, notifications out; the desktop shell shows
//! them with the Tauri notification plugin. Times are monotonic (the app
//! passes milliseconds since it started), so a wall clock set back cannot
//! silence it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use festival_core::{PeerId, RoomId};
use festival_node::runtime::{AnnouncementView, MessageBody, MessageView, NodeEvent};
use serde::Serialize;

/// One notification per conversation per minute at most.
pub const COALESCE_MS: u64 = 60_000;
/// Notifications a minute, across all conversations.
pub const MAX_PER_MINUTE: usize = 4;
/// The quiet digest: at most one per quarter of an hour.
pub const DIGEST_MS: u64 = 15 * 60_000;
/// Conversations whose last notification is remembered for coalescing; the
/// oldest is forgotten first (a thousand fresh keys each sending one DM
/// cannot grow this).
pub const MAX_TRACKED: usize = 256;
/// Text shown in a notification, in characters.
pub const MAX_BODY_CHARS: usize = 140;

/// Why a notification was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    Direct,
    /// A private group's message, or being added to a group.
    Group,
    Mention,
    Announcement,
    Digest,
}

/// A desktop notification to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct Notification {
    pub kind: NotifyKind,
    /// The conversation it is about: a room id, `dm:<peer>`,
    /// `announcements`, or empty for the digest.
    pub conversation: String,
    pub title: String,
    pub body: String,
    /// Messages it stands for (more than one when held ones are raised
    /// together, or for the digest).
    pub count: u32,
}

/// The text of the notification of being added to a group.
const ADDED_TEXT: &str = "A private group: only its members can read it.";

/// The conversation a message belongs to, as the UI keys it
/// (ui/src/logic/conversation.ts): a room id, or `dm:<peer>` per person.
pub fn conversation_of(m: &MessageView) -> String {
    match &m.body {
        MessageBody::Direct { to, .. } => format!("dm:{}", if m.mine { *to } else { m.author }),
        MessageBody::Text { .. } | MessageBody::Meetup(_) | MessageBody::Photo(_) => m.room.as_str().to_owned(),
        MessageBody::Group { group, .. }
        | MessageBody::GroupMembers { group, .. }
        | MessageBody::GroupAdded { group, .. }
        | MessageBody::GroupLeft { group } => format!("group:{group}"),
    }
}

/// Whether `text` mentions `name`: `@` then the name (letter case aside),
/// not followed by a letter or digit ("@Ana" mentions Ana, "@Anabel" does
/// not). An empty name is never mentioned.
pub fn mentions(text: &str, name: &str) -> bool {
    let name = name.trim();
    if name.is_empty() {
        return false;
    }
    let (text, name) = (text.to_lowercase(), name.to_lowercase());
    text.match_indices('@').any(|(at, _)| {
        let rest = &text[at + 1..];
        rest.starts_with(&name) && !rest[name.len()..].chars().next().is_some_and(char::is_alphanumeric)
    })
}

fn clip(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_BODY_CHARS {
        return one_line;
    }
    let mut s: String = one_line.chars().take(MAX_BODY_CHARS - 1).collect();
    s.push('…');
    s
}

/// "1 new message", "3 new announcements".
fn count_text(count: u32, what: &str) -> String {
    if count == 1 {
        format!("1 new {what}")
    } else {
        format!("{count} new {what}s")
    }
}

#[derive(Clone, Debug)]
struct Slot {
    last_at: u64,
    held: u32,
    kind: NotifyKind,
    title: String,
}

/// What decides, per event, whether to notify. See the module docs.
#[derive(Debug)]
pub struct Notifier {
    me: Option<PeerId>,
    name: String,
    muted_rooms: BTreeSet<RoomId>,
    muted_people: BTreeSet<PeerId>,
    /// Private groups muted, by id (hex).
    muted_groups: BTreeSet<String>,
    focused: bool,
    viewing: Option<String>,
    slots: BTreeMap<String, Slot>,
    raised: VecDeque<u64>,
    quiet: u64,
    /// When the first message of the current digest arrived.
    quiet_since: Option<u64>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

impl Notifier {
    pub fn new() -> Self {
        Notifier {
            me: None,
            name: String::new(),
            muted_rooms: BTreeSet::new(),
            muted_people: BTreeSet::new(),
            muted_groups: BTreeSet::new(),
            focused: true,
            viewing: None,
            slots: BTreeMap::new(),
            raised: VecDeque::new(),
            quiet: 0,
            quiet_since: None,
        }
    }

    /// Who I am: my key and the name mentions are matched against.
    pub fn set_me(&mut self, me: PeerId, name: &str) {
        self.me = Some(me);
        self.name = name.to_owned();
    }

    pub fn set_muted(&mut self, rooms: impl IntoIterator<Item = RoomId>, people: impl IntoIterator<Item = PeerId>) {
        self.muted_rooms = rooms.into_iter().collect();
        self.muted_people = people.into_iter().collect();
    }

    /// Private groups muted (their ids, hex).
    pub fn set_muted_groups(&mut self, groups: impl IntoIterator<Item = String>) {
        self.muted_groups = groups.into_iter().collect();
    }

    /// The window gained or lost the focus. Gaining it clears the digest
    /// and what was held: the person is looking.
    pub fn set_focus(&mut self, focused: bool) {
        self.focused = focused;
        if focused {
            self.quiet = 0;
            self.quiet_since = None;
            for s in self.slots.values_mut() {
                s.held = 0;
            }
        }
    }

    /// The conversation on screen (`None`: none, e.g. settings).
    pub fn set_viewing(&mut self, conversation: Option<String>) {
        self.viewing = conversation;
    }

    /// Messages that raised nothing since the window last had the focus.
    pub fn quiet(&self) -> u64 {
        self.quiet
    }

    pub fn on_event(&mut self, ev: &NodeEvent, now: u64) -> Option<Notification> {
        match ev {
            NodeEvent::Message(m) => self.on_message(m, now),
            NodeEvent::Announcement(a) => self.on_announcement(a, now),
            _ => None,
        }
    }

    /// Always raised (past the per-minute cap), but coalesced like a
    /// conversation: a device that catches up on several at once shows one,
    /// then one for the rest.
    fn on_announcement(&mut self, a: &AnnouncementView, now: u64) -> Option<Notification> {
        let conversation = RoomId::ANNOUNCEMENTS.to_owned();
        let earlier = self.hold_in_window(&conversation, now)?;
        let title = "Announcement from the organisers".to_owned();
        Some(self.raise(NotifyKind::Announcement, conversation, title, &a.text, earlier, now))
    }

    /// A conversation's coalescing window: `None` when this message is held
    /// in it (it is open), else how many were held in the one that ended
    /// and not raised yet (they go with this one).
    fn hold_in_window(&mut self, conversation: &str, now: u64) -> Option<u32> {
        match self.slots.get_mut(conversation) {
            Some(slot) if now < slot.last_at.saturating_add(COALESCE_MS) => {
                slot.held += 1;
                None
            }
            Some(slot) => Some(slot.held),
            None => Some(0),
        }
    }

    /// Raise one for `text` and the `earlier` ones held, and open a new
    /// window for its conversation.
    fn raise(
        &mut self,
        kind: NotifyKind,
        conversation: String,
        title: String,
        text: &str,
        earlier: u32,
        now: u64,
    ) -> Notification {
        self.note_raised(now);
        self.track(conversation.clone(), Slot { last_at: now, held: 0, kind, title: title.clone() });
        let body = if earlier == 0 { clip(text) } else { clip(&format!("+{earlier} more · {text}")) };
        Notification { kind, conversation, title, body, count: earlier + 1 }
    }

    fn on_message(&mut self, m: &MessageView, now: u64) -> Option<Notification> {
        if m.mine || Some(m.author) == self.me {
            return None;
        }
        let conversation = conversation_of(m);
        if self.focused && self.viewing.as_deref() == Some(conversation.as_str()) {
            return None;
        }
        // The sender as every name is shown: verified mark or short
        // fingerprint, and the lookalike warning (a notification is where an
        // impostor would be believed).
        let (kind, title, text) = match &m.body {
            MessageBody::Direct { text, .. } => (NotifyKind::Direct, m.sender.label(), text),
            MessageBody::Text { text } if mentions(text, &self.name) && !self.muted_rooms.contains(&m.room) => {
                (NotifyKind::Mention, format!("{} in {}", m.sender.label(), m.room.as_str()), text)
            }
            MessageBody::Photo(p) if mentions(&p.caption, &self.name) && !self.muted_rooms.contains(&m.room) => {
                let title = format!("{} in {}", m.sender.label(), m.room.as_str());
                (NotifyKind::Mention, title, &format!("Photo: {}", p.caption))
            }
            MessageBody::Group { group, .. }
            | MessageBody::GroupMembers { group, .. }
            | MessageBody::GroupAdded { group, .. }
                if self.muted_groups.contains(group) =>
            {
                self.count_quiet(now);
                return None;
            }
            MessageBody::Group { name, text, .. } => {
                (NotifyKind::Group, format!("{} in {name}", m.sender.label()), text)
            }
            // Made with us in it, or us added: once, to say so.
            MessageBody::GroupMembers { name, .. } => {
                (NotifyKind::Group, format!("{} added you to {name}", m.sender.label()), &ADDED_TEXT.to_owned())
            }
            MessageBody::GroupAdded { name, added, .. } if self.me.is_some_and(|me| added.contains(&me)) => {
                (NotifyKind::Group, format!("{} added you to {name}", m.sender.label()), &ADDED_TEXT.to_owned())
            }
            // A meet-up is room traffic: on its card, counted in the digest;
            // others joining or leaving a group is said in the group.
            MessageBody::Text { .. }
            | MessageBody::Meetup(_)
            | MessageBody::Photo(_)
            | MessageBody::GroupAdded { .. }
            | MessageBody::GroupLeft { .. } => {
                self.count_quiet(now);
                return None;
            }
        };
        if self.muted_people.contains(&m.author) {
            self.count_quiet(now);
            return None;
        }
        let earlier = self.hold_in_window(&conversation, now)?;
        if !self.room_for_one(now) {
            // Kept for the tick (the window is over, so it raises them as
            // soon as there is room), not lost.
            match self.slots.get_mut(&conversation) {
                Some(slot) => slot.held += 1,
                None => self.count_quiet(now),
            }
            return None;
        }
        Some(self.raise(kind, conversation, title, text, earlier, now))
    }

    /// Raise what is due: held messages whose conversation's window ended
    /// (one notification each), and the digest.
    pub fn tick(&mut self, now: u64) -> Vec<Notification> {
        let mut out = Vec::new();
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.held > 0 && now >= s.last_at.saturating_add(COALESCE_MS))
            .map(|(c, _)| c.clone())
            .collect();
        for conversation in due {
            let announcement = self.slots.get(&conversation).is_some_and(|s| s.kind == NotifyKind::Announcement);
            if !announcement && !self.room_for_one(now) {
                continue;
            }
            let Some(slot) = self.slots.get_mut(&conversation) else { continue };
            let count = std::mem::take(&mut slot.held);
            slot.last_at = now;
            let what = if slot.kind == NotifyKind::Announcement { "announcement" } else { "message" };
            let n = Notification {
                kind: slot.kind,
                title: slot.title.clone(),
                body: count_text(count, what),
                conversation,
                count,
            };
            self.note_raised(now);
            out.push(n);
        }
        let digest_due = self.quiet_since.is_some_and(|at| now >= at.saturating_add(DIGEST_MS));
        if !self.focused && digest_due && self.room_for_one(now) {
            self.quiet_since = None;
            let count = u32::try_from(self.quiet).unwrap_or(u32::MAX);
            self.quiet = 0;
            self.note_raised(now);
            out.push(Notification {
                kind: NotifyKind::Digest,
                conversation: String::new(),
                title: "Festival Chat".to_owned(),
                body: count_text(count, "message"),
                count,
            });
        }
        out
    }

    /// A message that raised nothing: counted for the digest while the
    /// window is away (with the focus, the person sees the unread counts).
    fn count_quiet(&mut self, now: u64) {
        if self.focused {
            return;
        }
        self.quiet += 1;
        self.quiet_since.get_or_insert(now);
    }

    fn room_for_one(&mut self, now: u64) -> bool {
        while self.raised.front().is_some_and(|&t| t.saturating_add(60_000) <= now) {
            self.raised.pop_front();
        }
        self.raised.len() < MAX_PER_MINUTE
    }

    fn note_raised(&mut self, now: u64) {
        self.raised.push_back(now);
        while self.raised.len() > MAX_PER_MINUTE {
            self.raised.pop_front();
        }
    }

    fn track(&mut self, conversation: String, slot: Slot) {
        self.slots.insert(conversation, slot);
        while self.slots.len() > MAX_TRACKED {
            let oldest = self.slots.iter().min_by_key(|(_, s)| s.last_at).map(|(c, _)| c.clone());
            match oldest {
                Some(c) => self.slots.remove(&c),
                None => break,
            };
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests;
