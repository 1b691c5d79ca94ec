//! A direct link's frames waiting for room in its send buffer, by
//! [`Priority`]: control first, then own messages and DMs, then room
//! traffic passed on, sync batches last. A DM or one's own new message
//! never waits behind a queue of the crowd's messages, nor a message behind
//! megabytes of catch-up. Any frame order converges, so reordering is safe.

use std::collections::VecDeque;

use festival_core::frame::Priority;
use festival_core::Frame;

/// Frames queued per class while the send buffer is full (at worst 16 MiB
/// of batches, 64 of 256 KiB; the other classes' frames are far smaller);
/// beyond it frames are dropped and sync repairs the loss.
pub const MAX_QUEUED_FRAMES: usize = 64;

pub struct SendQueue {
    classes: [VecDeque<Vec<u8>>; 4],
    /// Frames per class at most.
    cap: usize,
}

impl Default for SendQueue {
    fn default() -> Self {
        SendQueue::bounded(MAX_QUEUED_FRAMES)
    }
}

/// What to do with a frame that is to be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Nothing as urgent waits: try the transport now.
    SendNow,
    /// Queued behind frames as urgent or more.
    Queued,
    /// Its class is full: dropped.
    Dropped,
}

impl SendQueue {
    /// At most `cap` frames per class.
    pub fn bounded(cap: usize) -> Self {
        SendQueue { classes: Default::default(), cap }
    }

    /// Where `bytes` goes: straight to the transport when no frame of its
    /// class or a more urgent one waits, else into its class.
    pub fn admit(&mut self, bytes: &[u8]) -> Admit {
        let p = Frame::priority(bytes);
        if self.classes[..=p as usize].iter().all(VecDeque::is_empty) {
            Admit::SendNow
        } else {
            self.enqueue(bytes.to_vec())
        }
    }

    /// Queue `bytes` in its class (the transport had no room for it).
    pub fn enqueue(&mut self, bytes: Vec<u8>) -> Admit {
        let cap = self.cap;
        let class = &mut self.classes[Frame::priority(&bytes) as usize];
        if class.len() >= cap {
            return Admit::Dropped;
        }
        class.push_back(bytes);
        Admit::Queued
    }

    /// The most urgent frame waiting.
    pub fn front(&self) -> Option<&Vec<u8>> {
        Priority::ALL.iter().find_map(|p| self.classes[*p as usize].front())
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        Priority::ALL.iter().find_map(|p| self.classes[*p as usize].pop_front())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.classes.iter().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use festival_core::frame::Item;
    use festival_core::{Draft, Identity, Kind, RoomId, SignedEnvelope};

    fn push(author: u8, room: &str, seq: u64, hops: u8) -> Vec<u8> {
        let me = Identity::from_secret_bytes(&[author; 32]);
        let body = if room == RoomId::DIRECT {
            let to = Identity::from_secret_bytes(&[99; 32]).peer_id();
            festival_core::Body::SealedDm(
                festival_core::body::seal_dm(&me, &to, "meet at the gate", &mut rand_core::OsRng).unwrap(),
            )
        } else {
            festival_core::Body::Text(format!("crowd {seq}"))
        };
        let draft = Draft { seq, room: room.parse().unwrap(), kind: body.kind(), created_at: 1, body: body.encode() };
        let env = SignedEnvelope::sign(&me, draft).unwrap();
        assert!(room != RoomId::DIRECT || env.kind() == Kind::SealedDm);
        Frame::Push(Item { hops, envelope: env.bytes().to_vec() }).encode()
    }

    #[test]
    fn a_dm_overtakes_a_queue_of_room_traffic() {
        let mut q = SendQueue::default();
        // The buffer is full: the crowd's messages queue up.
        for seq in 1..=40 {
            assert_eq!(q.enqueue(push(7, "festival", seq, 3)), Admit::Queued);
        }
        let batch = Frame::Batch { items: vec![] }.encode();
        assert_eq!(q.admit(&batch), Admit::Queued);
        let dm = push(8, RoomId::DIRECT, 1, 5);
        // Nothing as urgent waits: it may go at once...
        assert_eq!(q.admit(&dm), Admit::SendNow);
        // ...and when the buffer is full for it too, it is next anyway.
        assert_eq!(q.enqueue(dm.clone()), Admit::Queued);
        let own = push(9, "festival", 1, 1);
        assert_eq!(q.enqueue(own.clone()), Admit::Queued);
        assert_eq!(q.pop_front(), Some(dm), "the DM first");
        assert_eq!(q.pop_front(), Some(own), "then our own message");
        assert_eq!(q.pop_front(), Some(push(7, "festival", 1, 3)), "then the crowd, in order");
        assert_eq!(q.len(), 40);
        // Another room message waits behind the 39 queued before it.
        assert_eq!(q.admit(&push(7, "festival", 41, 3)), Admit::Queued);
        while q.len() > 1 {
            q.pop_front();
        }
        assert_eq!(q.front(), Some(&batch), "the batch last");
    }

    #[test]
    fn each_class_is_bounded() {
        let mut q = SendQueue::default();
        for seq in 1..=MAX_QUEUED_FRAMES as u64 {
            assert_eq!(q.enqueue(push(7, "festival", seq, 3)), Admit::Queued);
        }
        assert_eq!(q.enqueue(push(7, "festival", 999, 3)), Admit::Dropped);
        // A full class does not block a more urgent one.
        assert_eq!(q.enqueue(push(8, RoomId::DIRECT, 1, 2)), Admit::Queued);
    }
}
