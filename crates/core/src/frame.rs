//! Link frames: what two nodes say to each other over a data channel or the
//! relay. Encoding: one version byte, then a postcard `Frame`. Envelopes travel
//! inside as their exact signed bytes, so they are forwarded untouched.

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, PeerId, RoomId};

pub const FRAME_VERSION: u8 = 1;
/// Largest frame: a sync batch of envelopes. 256 KiB is the data channel's
/// `a=max-message-size` (str0m accepts a message only whole into its send
/// buffer, which the node sizes for one such frame) and bounds what one bad
/// peer can make us parse at once.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// Author heads per summary frame; a larger room is summarised in several.
pub const MAX_SUMMARY_HEADS: usize = 1024;
/// Message references per IHave or Graft frame.
pub const MAX_REFS: usize = 512;
/// Envelopes per batch (the byte limit usually binds first).
pub const MAX_BATCH_ITEMS: usize = 256;
/// Rooms named in one hello.
pub const MAX_HELLO_ROOMS: usize = 256;
/// Most hops a message is pushed; beyond it only sync carries it on.
pub const MAX_HOPS: u8 = 32;
/// Deepest place in a room's broadcast tree: adverts at this depth are not
/// taken (a node whose every candidate is this deep roots its own tree).
pub const MAX_TREE_DEPTH: u8 = 32;
/// Widest range one want (or one `Gone`) may name.
pub const MAX_WANT_RANGE: u64 = 4096;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u8,
    /// "I have your hello": ends the retransmission of hellos on lossy links.
    pub ack: bool,
    pub rooms: Vec<RoomId>,
    /// The sender forwards messages of others (off on low battery).
    pub relays: bool,
    /// The sender runs on mains power (a venue box, a charging phone).
    pub powered: bool,
}

/// Per author: highest contiguous seq, the highest seq held at all, and the
/// id of the message at `max` (all zero when the sender no longer holds it),
/// so two nodes that hold different messages at one position see it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Head {
    pub author: PeerId,
    pub contiguous: u64,
    pub max: u64,
    pub tip: MessageId,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub room: RoomId,
    pub heads: Vec<Head>,
    /// The sender wants the receiver's summary in return.
    pub reply: bool,
}

/// Ask for an author's messages `from..=to` in a room.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Want {
    pub room: RoomId,
    pub author: PeerId,
    pub from: u64,
    pub to: u64,
}

/// One envelope with the number of hops it has travelled.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Item {
    pub hops: u8,
    pub envelope: Vec<u8>,
}

/// Names a message by position and id, for announcements and grafts.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MsgRef {
    pub room: RoomId,
    pub author: PeerId,
    pub seq: u64,
    pub id: MessageId,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Frame {
    Hello(Hello),
    Summary(Summary),
    /// BLAKE3 of a room's heads; a mismatch asks for summaries.
    Digest {
        room: RoomId,
        digest: [u8; 32],
    },
    Want(Want),
    /// Envelopes answering a want or a graft, oldest first.
    Batch {
        items: Vec<Item>,
    },
    /// Eager push of a new message.
    Push(Item),
    /// Lazy announcement of new messages.
    IHave {
        refs: Vec<MsgRef>,
    },
    /// "Send me these, and push to me eagerly from now on."
    Graft {
        refs: Vec<MsgRef>,
    },
    /// "I got that twice: announce to me lazily in this room."
    Prune {
        room: RoomId,
    },
    /// The answer to a `Want` whose first seqs the sender cannot serve
    /// (expired, evicted for its budget, or never held): ask someone else.
    Gone {
        room: RoomId,
        author: PeerId,
        from: u64,
        to: u64,
    },
    /// Proof that an author signed two different messages for one position:
    /// both envelopes, exactly as signed.
    Proof {
        a: Vec<u8>,
        b: Vec<u8>,
    },
    /// Protocol 3: the sender's place in a room's broadcast tree. Sent on
    /// direct links only, to peers that said hello with version 3.
    Tree(TreeAdvert),
    /// Protocol 4: reconciliation of a room's heads, a node of the trie
    /// of author ids at a time (`sync::recon`). Sent to peers that said
    /// hello with version 4.
    Recon(Recon),
}

/// What the sender holds under some nodes of a room's trie of heads.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Recon {
    pub room: RoomId,
    pub parts: Vec<crate::sync::recon::Part>,
}

/// A node's place in a room's broadcast tree: the root it follows, the
/// root's latest beacon (`epoch`) it has heard, its distance from the root,
/// and whether the receiver is its parent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TreeAdvert {
    pub room: RoomId,
    pub root: PeerId,
    /// The root said it runs on mains power (roots on mains rank first).
    pub powered: bool,
    pub epoch: u32,
    pub depth: u8,
    /// "You are my parent": push this room's messages to me.
    pub parent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversized { len: usize, max: usize },
    #[error("frame version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("frame carries too many {what}: {count} > {max}")]
    TooMany { what: &'static str, count: usize, max: usize },
    #[error("frame field out of range: {0}")]
    OutOfRange(&'static str),
}

impl FrameError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Oversized { .. } => "frame_oversized",
            Self::UnsupportedVersion(_) => "frame_version",
            Self::Malformed(_) => "frame_malformed",
            Self::TooMany { .. } => "frame_too_many",
            Self::OutOfRange(_) => "frame_out_of_range",
        }
    }
}

fn at_most(what: &'static str, count: usize, max: usize) -> Result<(), FrameError> {
    if count > max {
        Err(FrameError::TooMany { what, count, max })
    } else {
        Ok(())
    }
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FRAME_VERSION];
        postcard::to_io(self, &mut out).expect("in-memory encode");
        out
    }

    /// Whether encoded `bytes` are a [`Frame::Batch`]: bulk answers to
    /// wants, which a sender may hold back behind everything else (pushes of
    /// new messages, announcements, requests) without changing what the
    /// receiver ends up with, since any frame order converges. Reads only
    /// the version and the tag (postcard writes a variant index as a
    /// varint: one byte here).
    pub fn is_batch(bytes: &[u8]) -> bool {
        bytes.len() >= 2 && bytes[0] == FRAME_VERSION && bytes[1] == tag::BATCH
    }

    /// How urgent encoded frame `bytes` is, for a link's send queue (what
    /// waits for room in the transport goes most urgent first; any order
    /// converges): requests, announcements (of what we hold, and the
    /// organiser's, the announcements room) and the rest of the control
    /// traffic first; then a sender's own new messages (a push whose `hops`
    /// is one) and DMs; then the room traffic it passes on, with summaries,
    /// digests and reconciliation; sync batches and photos' chunks last.
    /// Reads the tag and, for a push, its hops and the envelope's room (its
    /// fields before the room: version, 32-byte author, seq varint). What
    /// does not parse is room traffic.
    pub fn priority(bytes: &[u8]) -> Priority {
        match bytes.get(1).copied() {
            _ if Frame::is_batch(bytes) => Priority::Bulk,
            // Summaries and what follows them in the same round (a digest
            // compared with the view the summary updates, a reconciliation
            // after a delta) keep their order: one class.
            Some(tag::SUMMARY | tag::DIGEST | tag::RECON | tag::PROOF) => Priority::Room,
            Some(tag::PUSH) => match push_room(bytes) {
                Some((crate::ids::RoomId::ANNOUNCEMENTS, _)) => Priority::Control,
                // A photo's chunks (even one's own) go behind all text, as
                // sync does: a photo does not hold up a busy room.
                Some((_, kind)) if kind == u32::from(crate::envelope::Kind::PhotoChunk.code()) => Priority::Bulk,
                room if bytes.get(2) == Some(&1) || room.is_some_and(|(r, _)| r == crate::ids::RoomId::DIRECT) => {
                    Priority::Direct
                }
                _ => Priority::Room,
            },
            _ => Priority::Control,
        }
    }

    /// Whether encoded frame `bytes` is a `Hello`, by its version and tag
    /// only (see [`Frame::is_batch`]): a relay limits them per connection
    /// before decoding.
    pub fn is_hello(bytes: &[u8]) -> bool {
        bytes.len() >= 2 && bytes[0] == FRAME_VERSION && bytes[1] == tag::HELLO
    }

    /// Decode and check every bound a well-behaved peer keeps.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(FrameError::Oversized { len: bytes.len(), max: MAX_FRAME_BYTES });
        }
        let (&v, rest) = bytes.split_first().ok_or_else(|| FrameError::Malformed("empty".into()))?;
        if v != FRAME_VERSION {
            return Err(FrameError::UnsupportedVersion(v));
        }
        // The variant tag in its one shortest byte (every variant index is
        // below 128): postcard would also take a longer varint for it, which
        // would slip past `is_hello` and `is_batch`, read from the tag byte.
        if rest.first().is_some_and(|&tag| tag >= 0x80) {
            return Err(FrameError::Malformed("frame tag not in its shortest form".into()));
        }
        let frame: Frame = match postcard::take_from_bytes(rest) {
            Ok((f, [])) => f,
            Ok((_, tail)) => return Err(FrameError::Malformed(format!("{} trailing bytes", tail.len()))),
            Err(e) => return Err(FrameError::Malformed(e.to_string())),
        };
        // Every varint in its shortest form, so that one frame has one
        // encoding: the decoded value's shortest encoding is exactly as long
        // as what came (any longer varint makes it longer; only varints can
        // be spelled two ways). Counted, not written: no copy.
        let shortest =
            postcard::experimental::serialized_size(&frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
        if shortest != rest.len() {
            return Err(FrameError::Malformed("a varint not in its shortest form".into()));
        }
        frame.check()?;
        Ok(frame)
    }

    fn check(&self) -> Result<(), FrameError> {
        match self {
            Frame::Hello(h) => at_most("rooms", h.rooms.len(), MAX_HELLO_ROOMS),
            Frame::Summary(s) => {
                at_most("heads", s.heads.len(), MAX_SUMMARY_HEADS)?;
                // SQLite keeps seqs as signed integers: nothing above i64::MAX
                // can ever be held, so no honest node claims it.
                if s.heads.iter().any(|h| h.contiguous > h.max || h.max > i64::MAX as u64) {
                    return Err(FrameError::OutOfRange("head"));
                }
                Ok(())
            }
            Frame::Digest { .. } | Frame::Prune { .. } => Ok(()),
            Frame::Tree(t) => {
                // A root (depth 0) has no parent.
                if t.depth > MAX_TREE_DEPTH || (t.depth == 0 && t.parent) {
                    return Err(FrameError::OutOfRange("tree depth"));
                }
                Ok(())
            }
            Frame::Want(Want { from, to, .. }) | Frame::Gone { from, to, .. } => {
                if *from == 0 || to < from || to - from >= MAX_WANT_RANGE {
                    return Err(FrameError::OutOfRange("want range"));
                }
                Ok(())
            }
            Frame::Proof { a, b } => {
                let max = crate::envelope::MAX_ENVELOPE_BYTES;
                if a.len() > max || b.len() > max {
                    return Err(FrameError::OutOfRange("proof envelope size"));
                }
                Ok(())
            }
            Frame::Batch { items } => {
                at_most("items", items.len(), MAX_BATCH_ITEMS)?;
                items.iter().try_for_each(check_hops)
            }
            Frame::Push(item) => check_hops(item),
            Frame::Recon(r) => {
                at_most("parts", r.parts.len(), crate::sync::recon::MAX_PARTS)?;
                if !r.parts.iter().all(crate::sync::recon::Part::valid) {
                    return Err(FrameError::OutOfRange("recon part"));
                }
                // Each part about its own node: no node under another (an
                // honest exchange never names one twice), so answering one
                // frame reads each head a bounded number of times.
                if !crate::sync::recon::disjoint(r.parts.iter().map(crate::sync::recon::Part::node)) {
                    return Err(FrameError::OutOfRange("recon nodes overlap"));
                }
                Ok(())
            }
            Frame::IHave { refs } | Frame::Graft { refs } => {
                at_most("refs", refs.len(), MAX_REFS)?;
                if refs.iter().any(|r| r.seq == 0) {
                    return Err(FrameError::OutOfRange("seq 0"));
                }
                Ok(())
            }
        }
    }

    /// Short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Summary(_) => "summary",
            Frame::Digest { .. } => "digest",
            Frame::Want(_) => "want",
            Frame::Batch { .. } => "batch",
            Frame::Push(_) => "push",
            Frame::IHave { .. } => "ihave",
            Frame::Graft { .. } => "graft",
            Frame::Prune { .. } => "prune",
            Frame::Gone { .. } => "gone",
            Frame::Proof { .. } => "proof",
            Frame::Tree(_) => "tree",
            Frame::Recon(_) => "recon",
        }
    }
}

/// Each [`Frame`] variant's index, the byte after the version in an
/// encoded frame (postcard writes it as a varint, one byte for all of
/// them): what [`Frame::is_batch`], [`Frame::is_hello`] and
/// [`Frame::priority`] read, and what counters by kind count.
pub mod tag {
    pub const HELLO: u8 = 0;
    pub const SUMMARY: u8 = 1;
    pub const DIGEST: u8 = 2;
    pub const WANT: u8 = 3;
    pub const BATCH: u8 = 4;
    pub const PUSH: u8 = 5;
    pub const IHAVE: u8 = 6;
    pub const GRAFT: u8 = 7;
    pub const PRUNE: u8 = 8;
    pub const GONE: u8 = 9;
    pub const PROOF: u8 = 10;
    pub const TREE: u8 = 11;
    pub const RECON: u8 = 12;
}

/// A link's send queue's classes, most urgent first ([`Frame::priority`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Control = 0,
    /// Own new messages and DMs.
    Direct = 1,
    /// Others' room messages passed on.
    Room = 2,
    /// Sync batches.
    Bulk = 3,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Control, Priority::Direct, Priority::Room, Priority::Bulk];
}

/// The room name and kind (its code) of an encoded `Push` frame's
/// envelope: after the version byte, tag and hops, the envelope's bytes
/// (length-prefixed), whose room follows its version byte, 32-byte author
/// and seq, and whose kind follows its room.
fn push_room(bytes: &[u8]) -> Option<(&str, u32)> {
    let (envelope, _) = postcard::take_from_bytes::<&[u8]>(bytes.get(3..)?).ok()?;
    let (_seq, rest) = postcard::take_from_bytes::<u64>(envelope.get(33..)?).ok()?;
    let (room, rest) = postcard::take_from_bytes::<&str>(rest).ok()?;
    let (kind, _) = postcard::take_from_bytes::<u32>(rest).ok()?;
    Some((room, kind))
}

fn check_hops(item: &Item) -> Result<(), FrameError> {
    if item.hops > MAX_HOPS {
        return Err(FrameError::OutOfRange("hops"));
    }
    Ok(())
}
