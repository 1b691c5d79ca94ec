//! The views the node answers `/peers` and `/status` with, built from what
//! the actor and the store hold: plain functions, so the event loop only
//! gathers their inputs.

use std::collections::{BTreeMap, BTreeSet};

use festival_core::PeerId;
use festival_store::PeerRecord;

use super::events::{PeerPath, PeerView};
use crate::discovery::IgnoredCounts;
use crate::names::Names;

/// How each known peer is reached now, for the peers list: a direct data
/// channel first, then the relay we are connected to, else through others.
/// We are not in our own list.
pub(super) fn peer_views(
    me: PeerId,
    known: Vec<PeerRecord>,
    linked: &BTreeSet<PeerId>,
    relay: Option<PeerId>,
    names: Option<&Names>,
    discovered: impl Fn(&PeerId) -> bool,
) -> Vec<PeerView> {
    known
        .into_iter()
        .filter(|p| p.peer != me)
        .map(|p| {
            let who = names.map(|n| n.author(&p.peer));
            let (is_linked, is_relay) = (linked.contains(&p.peer), relay == Some(p.peer));
            PeerView {
                fingerprint: p.peer.fingerprint(),
                path: if is_linked {
                    PeerPath::Lan
                } else if is_relay {
                    PeerPath::Relay
                } else {
                    PeerPath::ViaOthers
                },
                linked: is_linked || is_relay,
                discovered: discovered(&p.peer),
                name: p.name,
                verified: p.verified,
                name_clash: who.as_ref().is_some_and(|w| w.name_clash),
                equivocated: who.as_ref().is_some_and(|w| w.equivocated),
                last_seen: p.last_seen,
                // Filled in by `NodeHandle::peers` from the store's choices.
                muted: false,
                blocked: false,
                peer: p.peer,
            }
        })
        .collect()
}

/// Everything refused, by label, from every layer: the runtime's own
/// counts, mDNS records ignored (`mdns_<reason>`, e.g. `mdns_bad_id`), data-channel messages
/// that were no valid bundle (`bundle_malformed`) and discovered peers
/// forgotten to keep the mesh's table bounded (`mesh_peers_forgotten`).
/// Labels with no count are left out.
pub(super) fn rejected(
    runtime: &BTreeMap<String, u64>,
    mdns: &IgnoredCounts,
    bad_bundles: u64,
    forgotten: u64,
) -> BTreeMap<String, u64> {
    let mut all = runtime.clone();
    for (code, n) in mdns.iter().filter(|(_, n)| *n > 0) {
        *all.entry(format!("mdns_{}", code.as_str())).or_default() += n;
    }
    for (label, n) in [("bundle_malformed", bad_bundles), ("mesh_peers_forgotten", forgotten)] {
        if n > 0 {
            *all.entry(label.to_owned()).or_default() += n;
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes([b; 32])
    }

    fn record(b: u8, name: &str) -> PeerRecord {
        PeerRecord { peer: peer(b), name: Some(name.into()), verified: b == 2, first_seen: None, last_seen: Some(7) }
    }

    #[test]
    fn a_peer_is_shown_by_its_best_path_and_we_are_not_listed() {
        let known = vec![record(0, "me"), record(1, "ana"), record(2, "relay"), record(3, "bo")];
        let linked = BTreeSet::from([peer(1), peer(2)]);
        let views = peer_views(peer(0), known, &linked, Some(peer(2)), None, |p| *p == peer(3));
        let shown: Vec<_> =
            views.iter().map(|v| (v.name.as_deref().unwrap(), v.path, v.linked, v.discovered)).collect();
        assert_eq!(
            shown,
            vec![
                ("ana", PeerPath::Lan, true, false),
                // Linked directly and our relay too: the direct link counts.
                ("relay", PeerPath::Lan, true, false),
                ("bo", PeerPath::ViaOthers, false, true),
            ]
        );
        assert!(views[1].verified && !views[0].verified);
        let relay_only =
            peer_views(peer(0), vec![record(2, "relay")], &BTreeSet::new(), Some(peer(2)), None, |_| false);
        assert_eq!((relay_only[0].path, relay_only[0].linked), (PeerPath::Relay, true));
    }

    #[test]
    fn refusals_of_every_layer_are_summed_under_their_labels() {
        let runtime = BTreeMap::from([("signal_malformed".to_owned(), 2), ("bundle_malformed".to_owned(), 1)]);
        let all = rejected(&runtime, &IgnoredCounts::default(), 3, 0);
        assert!(!all.keys().any(|k| k.starts_with("mdns_")), "no count, no label: {all:?}");
        assert_eq!(all.get("signal_malformed"), Some(&2));
        assert_eq!(all.get("bundle_malformed"), Some(&4), "added to, not replaced");
        assert!(!all.contains_key("mesh_peers_forgotten"), "no count, no label");
        assert_eq!(rejected(&BTreeMap::new(), &IgnoredCounts::default(), 0, 5).get("mesh_peers_forgotten"), Some(&5));
    }
}
