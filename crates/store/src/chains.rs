//! What the writer remembers of chains between batches: each chain's id and
//! marks, so that a batch from a thousand chains it has seen before does
//! not look each one up in `heads` again (a thousand index probes and rows
//! of text, the largest share of a batch after the inserts themselves).
//!
//! The memory is only ever a copy of rows the writer read or wrote inside
//! its own transactions, and it is trusted only while nothing else wrote
//! to the file: every batch reads SQLite's `data_version` in the query it
//! makes anyway, and a change (another connection committed: a second
//! `Store` on the same file, a tool) forgets everything. A chain whose
//! marks were computed in SQL (a probe over a gap, `advance_contiguous`) is
//! forgotten rather than copied. Entries are updated after a commit while
//! the writer connection is still held, so no other write can read them in
//! between; a batch that fails or is dropped between its commit and that
//! update forgets everything, since it cannot know what was committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use festival_core::{PeerId, RoomId};

use crate::heads::{Chain, Marks};

/// Chains remembered at most: ~100 bytes each, so a few MiB. A festival's
/// rooms and people give tens of thousands; past the bound (fresh keys
/// flooding a room) everything is forgotten and filled again, and batches
/// look chains up in SQLite as they did without this.
pub const MAX_REMEMBERED_CHAINS: usize = 65_536;

#[derive(Debug, Default)]
struct Memory {
    rooms: HashMap<RoomId, HashMap<PeerId, (i64, Marks)>>,
    len: usize,
    /// `PRAGMA data_version` on the writer when the entries were last
    /// known to match the file; `None` when there are none.
    data_version: Option<i64>,
}

impl Memory {
    fn forget(&mut self) {
        *self = Memory::default();
    }
}

/// Shared by a store's clones; locked only between awaits.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownChains(Arc<Mutex<Memory>>);

impl KnownChains {
    fn lock(&self) -> MutexGuard<'_, Memory> {
        // A copy that a panicking thread may have left half-updated is not
        // to be trusted: forget it.
        self.0.lock().unwrap_or_else(|poisoned| {
            let mut memory = poisoned.into_inner();
            memory.forget();
            memory
        })
    }

    /// The remembered chains among `keys` (in order, `None` where not
    /// remembered), and the `data_version` they are valid for.
    pub(crate) fn recall(&self, keys: &[(&RoomId, PeerId)]) -> (Vec<Option<Chain>>, Option<i64>) {
        let memory = self.lock();
        let found = keys
            .iter()
            .map(|(room, author)| {
                let (id, marks) = *memory.rooms.get(*room)?.get(author)?;
                Some(Chain { id, marks, new: false })
            })
            .collect();
        (found, memory.data_version)
    }

    /// The writer read `data_version` in a transaction: keep the entries if
    /// it is what they were valid for (returns true), else forget them.
    pub(crate) fn check(&self, data_version: i64) -> bool {
        let mut memory = self.lock();
        if memory.data_version == Some(data_version) {
            return true;
        }
        memory.forget();
        memory.data_version = Some(data_version);
        false
    }

    /// After a commit, with the writer connection still held: chains and
    /// their marks as the file now holds them (`Some`), or chains whose
    /// marks SQL computed (`None`).
    pub(crate) fn remember<'a>(&self, chains: impl IntoIterator<Item = (&'a RoomId, PeerId, i64, Option<Marks>)>) {
        let mut memory = self.lock();
        for (room, author, id, marks) in chains {
            match marks {
                Some(marks) => {
                    if memory.len >= MAX_REMEMBERED_CHAINS {
                        let version = memory.data_version;
                        memory.forget();
                        memory.data_version = version;
                    }
                    let room_chains = memory.rooms.entry(room.clone()).or_default();
                    if room_chains.insert(author, (id, marks)).is_none() {
                        memory.len += 1;
                    }
                }
                None => {
                    if let Some(room_chains) = memory.rooms.get_mut(room) {
                        if room_chains.remove(&author).is_some() {
                            memory.len -= 1;
                        }
                    }
                }
            }
        }
    }

    /// Forget one chain (its marks change in SQL).
    pub(crate) fn forget_chain(&self, room: &RoomId, author: PeerId) {
        self.remember([(room, author, 0, None)]);
    }

    /// A guard that forgets everything when dropped, unless
    /// [`Unsure::resolved`]: for the moment between a commit and
    /// [`KnownChains::remember`].
    pub(crate) fn unsure(&self) -> Unsure<'_> {
        Unsure(Some(self))
    }
}

/// See [`KnownChains::unsure`].
pub(crate) struct Unsure<'a>(Option<&'a KnownChains>);

impl Unsure<'_> {
    pub(crate) fn resolved(mut self) {
        self.0 = None;
    }
}

impl Drop for Unsure<'_> {
    fn drop(&mut self) {
        if let Some(known) = self.0 {
            known.lock().forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId::try_from(&[n; 32][..]).expect("32 bytes")
    }

    #[test]
    fn remembered_chains_are_recalled_until_the_file_changes_under_them() {
        let known = KnownChains::default();
        let room: RoomId = "stage".parse().unwrap();
        assert!(!known.check(7), "nothing to trust at first");
        known.remember([(&room, peer(1), 3, Some((5, 6))), (&room, peer(2), 4, Some((1, 1)))]);
        let (found, version) = known.recall(&[(&room, peer(2)), (&room, peer(9))]);
        assert_eq!(version, Some(7));
        assert_eq!(found[0].map(|c| (c.id, c.marks)), Some((4, (1, 1))));
        assert!(found[1].is_none());

        known.forget_chain(&room, peer(2));
        assert!(known.recall(&[(&room, peer(2))]).0[0].is_none(), "forgotten when SQL moved its marks");
        assert!(known.check(7));
        assert!(!known.check(8), "another connection wrote");
        assert!(known.recall(&[(&room, peer(1))]).0[0].is_none(), "and everything was forgotten");
    }

    #[test]
    fn an_unresolved_commit_forgets_everything() {
        let known = KnownChains::default();
        let room: RoomId = "stage".parse().unwrap();
        known.check(1);
        known.remember([(&room, peer(1), 3, Some((5, 6)))]);
        drop(known.unsure());
        assert!(known.recall(&[(&room, peer(1))]).0[0].is_none());
        assert_eq!(known.recall(&[]).1, None, "and trusts no version");
    }
}
