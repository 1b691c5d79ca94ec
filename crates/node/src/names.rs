//! Who wrote this, as far as anyone can tell: the name a peer claims, the
//! verified mark (fingerprints compared in person) or a short fingerprint,
//! a flag when the name looks like mine, a verified contact's or another
//! known peer's (compared by `festival_core::name::skeleton`), and a mark on
//! authors proven to have signed two messages for one position.

use std::collections::{BTreeSet, HashMap};

use festival_core::name::skeleton;
use festival_core::PeerId;
use festival_store::{Store, StoreError};
use serde::Serialize;

/// An author as the UI shows one, wherever a name appears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Author {
    pub name: Option<String>,
    /// The first group of the fingerprint ("3F2A"): shown beside an
    /// unverified name, so two people with one name can be told apart.
    pub short_fingerprint: String,
    /// Fingerprints compared in person.
    pub verified: bool,
    /// The name looks like mine, a verified contact's or another known
    /// peer's: shown with a warning.
    pub name_clash: bool,
    /// Signed two different messages for one position (proof kept).
    pub equivocated: bool,
}

impl Author {
    /// How a terminal shows the author: "Ana ✓" when verified, else the
    /// name and the short fingerprint, "Ana (3F2A)"; a warning for a
    /// lookalike name and for a proven equivocator.
    pub fn label(&self) -> String {
        let mut s = match (&self.name, self.verified) {
            (Some(n), true) => format!("{n} ✓"),
            (Some(n), false) => format!("{n} ({})", self.short_fingerprint),
            (None, _) => format!("({})", self.short_fingerprint),
        };
        if self.name_clash {
            s.push_str(" [looks like another name]");
        }
        if self.equivocated {
            s.push_str(" [sent conflicting messages]");
        }
        s
    }
}

/// What is known of every peer's name, loaded once per view or page.
pub struct Names {
    me: PeerId,
    peers: HashMap<PeerId, (Option<String>, bool)>,
    /// Skeleton -> the peers whose names have it, verified ones marked.
    by_skeleton: HashMap<String, Vec<(PeerId, bool)>>,
    equivocators: BTreeSet<PeerId>,
}

impl Names {
    pub async fn load(store: &Store, me: PeerId, my_name: &str) -> Result<Names, StoreError> {
        let mut peers = HashMap::new();
        let mut by_skeleton: HashMap<String, Vec<(PeerId, bool)>> = HashMap::new();
        by_skeleton.entry(skeleton(my_name)).or_default().push((me, true));
        for p in store.peers().await? {
            if p.peer == me {
                continue;
            }
            if let Some(n) = &p.name {
                by_skeleton.entry(skeleton(n)).or_default().push((p.peer, p.verified));
            }
            peers.insert(p.peer, (p.name, p.verified));
        }
        let equivocators = store.equivocators().await?.into_iter().collect();
        Ok(Names { me, peers, by_skeleton, equivocators })
    }

    pub fn author(&self, peer: &PeerId) -> Author {
        let short_fingerprint = peer.fingerprint().chars().take(4).collect();
        if *peer == self.me {
            return Author { name: None, short_fingerprint, verified: true, name_clash: false, equivocated: false };
        }
        let (name, verified) = self.peers.get(peer).cloned().unwrap_or((None, false));
        // A verified contact keeps its name; anyone else whose name looks
        // like another's (mine included) is flagged.
        let name_clash = !verified
            && name.as_deref().is_some_and(|n| {
                self.by_skeleton.get(&skeleton(n)).is_some_and(|same| same.iter().any(|(p, _)| p != peer))
            });
        Author { name, short_fingerprint, verified, name_clash, equivocated: self.equivocators.contains(peer) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(me: u8, my_name: &str, peers: &[(u8, &str, bool)]) -> Names {
        let me = PeerId::from_bytes([me; 32]);
        let mut by_skeleton: HashMap<String, Vec<(PeerId, bool)>> = HashMap::new();
        by_skeleton.entry(skeleton(my_name)).or_default().push((me, true));
        let mut map = HashMap::new();
        for (b, n, v) in peers {
            let p = PeerId::from_bytes([*b; 32]);
            by_skeleton.entry(skeleton(n)).or_default().push((p, *v));
            map.insert(p, (Some(n.to_string()), *v));
        }
        Names { me, peers: map, by_skeleton, equivocators: BTreeSet::new() }
    }

    #[test]
    fn a_name_like_mine_or_a_contacts_is_flagged_and_the_verified_one_is_not() {
        let n = names(1, "Ana", &[(2, "Аna", false), (3, "Bob", true), (4, "B0b", false), (5, "Cleo", false)]);
        let a = |b: u8| n.author(&PeerId::from_bytes([b; 32]));
        assert!(a(2).name_clash, "Cyrillic А passing for my name");
        assert!(!a(3).name_clash && a(3).verified, "the verified Bob keeps his name");
        assert!(a(4).name_clash, "B0b passing for verified Bob");
        assert!(!a(5).name_clash);
        assert_eq!(a(5).short_fingerprint.len(), 4);
        assert!(a(1).verified, "I am me");
    }
}
