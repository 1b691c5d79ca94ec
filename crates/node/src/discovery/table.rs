//! One node's view of who is nearby: turns the hub's raw record changes into
//! `Found` / `Updated` / `Lost`, each peer found once until it is lost.
//!
//! Pure state, no sockets and no clock, so the dedup rules are tested without
//! a daemon. mdns-sd reports `ServiceResolved` again whenever any record of an
//! instance changes; this table is what makes that idempotent.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use festival_core::PeerId;
use mdns_sd::ResolvedService;

use super::record::{self, AddrScope, IgnoreReason, IgnoredCounts};
use super::DiscoveryEvent;

/// What we tell the subscriber about one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    peer: PeerId,
    addrs: Vec<IpAddr>,
    port: u16,
    version: u8,
    powered: bool,
}

/// An accepted instance. `seq` orders resolutions: when two instances claim
/// one peer (a restart under a renamed instance, say) the newest wins.
struct Accepted {
    view: View,
    /// The name as received, for `verify`, which needs mdns-sd's spelling.
    fullname: String,
    seq: u64,
}

pub(crate) struct PeerTable {
    me: PeerId,
    /// Our own instance (lowercase fullname): our record comes back to us
    /// through the shared browse and is skipped without being counted.
    own_instance: String,
    festival: String,
    /// The addresses we would dial (see [`AddrScope`]).
    scope: AddrScope,
    /// Keyed by lowercase fullname: DNS names are case-insensitive.
    accepted: HashMap<String, Accepted>,
    /// Instances we ignore, with the reason we last counted for each, so a
    /// re-announced bad record is counted once.
    rejected: HashMap<String, IgnoreReason>,
    /// What the subscriber has been told: the peers it believes are present.
    reported: HashMap<PeerId, View>,
    next_seq: u64,
    ignored: IgnoredCounts,
}

impl PeerTable {
    pub(crate) fn new(me: PeerId, own_instance: String, festival: String, scope: AddrScope) -> Self {
        Self {
            me,
            own_instance: own_instance.to_lowercase(),
            festival,
            scope,
            accepted: HashMap::new(),
            rejected: HashMap::new(),
            reported: HashMap::new(),
            next_seq: 0,
            ignored: IgnoredCounts::default(),
        }
    }

    /// Records resolved from now on are read with `scope` (the ones already
    /// accepted stay until they change or the caller syncs). Whether it
    /// differs from the one before.
    pub(crate) fn set_scope(&mut self, scope: AddrScope) -> bool {
        let changed = self.scope != scope;
        self.scope = scope;
        changed
    }

    pub(crate) fn ignored(&self) -> &IgnoredCounts {
        &self.ignored
    }

    pub(crate) fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.reported.keys().copied()
    }

    /// The instance fullname currently speaking for `peer`.
    pub(crate) fn instance_of(&self, peer: &PeerId) -> Option<&str> {
        self.current(peer).map(|a| a.fullname.as_str())
    }

    /// An instance resolved (first time or changed).
    pub(crate) fn resolved(&mut self, service: &ResolvedService) -> Vec<DiscoveryEvent> {
        let key = service.fullname.to_lowercase();
        if key == self.own_instance {
            return Vec::new();
        }
        let verdict = record::parse(service, &self.scope).and_then(|claim| {
            if claim.peer == self.me {
                Err(IgnoreReason::ClaimsOurId)
            } else if !record::named_for(service, &claim.peer) {
                Err(IgnoreReason::NameMismatch)
            } else if claim.festival != self.festival {
                Err(IgnoreReason::OtherFestival)
            } else {
                Ok(View {
                    peer: claim.peer,
                    addrs: claim.addrs,
                    port: claim.port,
                    version: claim.version,
                    powered: claim.powered,
                })
            }
        });
        match verdict {
            Ok(view) => {
                self.rejected.remove(&key);
                self.next_seq += 1;
                let accepted = Accepted { view, fullname: service.fullname.clone(), seq: self.next_seq };
                self.set(key, Some(accepted))
            }
            Err(reason) => {
                if self.rejected.insert(key.clone(), reason) != Some(reason) {
                    self.ignored.add(reason);
                    tracing::debug!(instance = %service.fullname, %reason, "ignoring an mDNS record");
                }
                self.set(key, None)
            }
        }
    }

    /// An instance said goodbye or expired.
    pub(crate) fn removed(&mut self, fullname: &str) -> Vec<DiscoveryEvent> {
        let key = fullname.to_lowercase();
        self.rejected.remove(&key);
        self.set(key, None)
    }

    /// Brings the table in line with a full snapshot of the hub (at start, and
    /// after the subscriber fell behind and lost events).
    pub(crate) fn sync(&mut self, snapshot: &[Arc<ResolvedService>]) -> Vec<DiscoveryEvent> {
        let present: HashSet<String> = snapshot.iter().map(|s| s.fullname.to_lowercase()).collect();
        let gone: Vec<String> =
            self.accepted.keys().chain(self.rejected.keys()).filter(|k| !present.contains(*k)).cloned().collect();
        let mut out = Vec::new();
        for key in gone {
            out.extend(self.removed(&key));
        }
        for service in snapshot {
            out.extend(self.resolved(service));
        }
        out
    }

    /// Replaces (or removes) one instance and reports what that changed for
    /// the peers it spoke for before and after.
    fn set(&mut self, key: String, accepted: Option<Accepted>) -> Vec<DiscoveryEvent> {
        let before = self.accepted.get(&key).map(|a| a.view.peer);
        let after = accepted.as_ref().map(|a| a.view.peer);
        match accepted {
            Some(a) => self.accepted.insert(key, a),
            None => self.accepted.remove(&key),
        };
        let mut out: Vec<DiscoveryEvent> = before.into_iter().filter_map(|p| self.reconcile(p)).collect();
        if after != before {
            out.extend(after.and_then(|p| self.reconcile(p)));
        }
        out
    }

    fn current(&self, peer: &PeerId) -> Option<&Accepted> {
        self.accepted.values().filter(|a| a.view.peer == *peer).max_by_key(|a| a.seq)
    }

    /// Compares what the subscriber was told about `peer` with what the
    /// records say now; the difference is at most one event.
    fn reconcile(&mut self, peer: PeerId) -> Option<DiscoveryEvent> {
        let now = self.current(&peer).map(|a| a.view.clone());
        match (self.reported.get(&peer), now) {
            (None, None) => None,
            (Some(old), Some(new)) if *old == new => None,
            (old, Some(new)) => {
                let first = old.is_none();
                self.reported.insert(peer, new.clone());
                let View { peer, addrs, port, version, powered } = new;
                Some(if first {
                    DiscoveryEvent::Found { peer, addrs, port, version, powered }
                } else {
                    DiscoveryEvent::Updated { peer, addrs, port, version, powered }
                })
            }
            (Some(_), None) => {
                self.reported.remove(&peer);
                Some(DiscoveryEvent::Lost { peer })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::record::{instance_name, TXT_FESTIVAL, TXT_ID, TXT_PORT, TXT_VERSION};
    use crate::discovery::SERVICE_TYPE;
    use mdns_sd::ServiceInfo;

    fn peer(byte: u8) -> PeerId {
        PeerId::from_bytes([byte; 32])
    }

    fn table() -> PeerTable {
        let me = peer(1);
        let lan = AddrScope::of_networks([("10.0.0.1".parse().unwrap(), 24)]);
        PeerTable::new(me, format!("{}.{SERVICE_TYPE}", instance_name(&me)), "fest".into(), lan)
    }

    fn record(instance: &str, id: &str, festival: &str, addrs: &str) -> ResolvedService {
        let version = festival_core::sync::PROTOCOL_VERSION.to_string();
        let txt = [(TXT_ID, id), (TXT_VERSION, version.as_str()), (TXT_FESTIVAL, festival), (TXT_PORT, "7000")];
        ServiceInfo::new(SERVICE_TYPE, instance, "h.local.", addrs, 7000, &txt[..]).unwrap().as_resolved_service()
    }

    fn of(p: &PeerId, addrs: &str) -> ResolvedService {
        record(&instance_name(p), &p.to_hex(), "fest", addrs)
    }

    fn fullname(p: &PeerId) -> String {
        format!("{}.{SERVICE_TYPE}", instance_name(p))
    }

    #[test]
    fn a_peer_is_found_once_however_often_its_record_is_resolved() {
        let mut t = table();
        let b = peer(2);
        let first = t.resolved(&of(&b, "10.0.0.2"));
        assert!(matches!(first.as_slice(), [DiscoveryEvent::Found { peer, port: 7000, .. }] if *peer == b));
        assert!(t.resolved(&of(&b, "10.0.0.2")).is_empty());
        assert!(t.sync(&[Arc::new(of(&b, "10.0.0.2"))]).is_empty());
    }

    #[test]
    fn an_address_change_is_an_update_and_a_goodbye_is_lost_once() {
        let mut t = table();
        let b = peer(2);
        t.resolved(&of(&b, "10.0.0.2"));
        let moved = t.resolved(&of(&b, "10.0.0.9"));
        assert!(
            matches!(moved.as_slice(), [DiscoveryEvent::Updated { addrs, .. }] if addrs == &["10.0.0.9".parse::<IpAddr>().unwrap()])
        );
        assert_eq!(t.removed(&fullname(&b)), vec![DiscoveryEvent::Lost { peer: b }]);
        assert!(t.removed(&fullname(&b)).is_empty());
        assert!(matches!(t.resolved(&of(&b, "10.0.0.9")).as_slice(), [DiscoveryEvent::Found { .. }]));
    }

    #[test]
    fn our_own_record_is_skipped_silently_but_a_stranger_claiming_our_id_is_counted() {
        let mut t = table();
        assert!(t.resolved(&of(&peer(1), "10.0.0.1")).is_empty());
        assert_eq!(t.ignored().total(), 0);
        assert!(t.resolved(&record("impostor", &peer(1).to_hex(), "fest", "10.0.0.66")).is_empty());
        assert_eq!(t.ignored().get(IgnoreReason::ClaimsOurId), 1);
    }

    #[test]
    fn other_festivals_and_bad_records_are_counted_once_each_and_never_reported() {
        let mut t = table();
        let other = record(&instance_name(&peer(3)), &peer(3).to_hex(), "elsewhere", "10.0.0.3");
        assert!(t.resolved(&other).is_empty());
        assert!(t.resolved(&other).is_empty());
        let bad = record("fc-y", "zz", "fest", "10.0.0.4");
        assert!(t.resolved(&bad).is_empty());
        assert_eq!(t.ignored().get(IgnoreReason::OtherFestival), 1);
        assert_eq!(t.ignored().get(IgnoreReason::BadId), 1);
        assert_eq!(t.ignored().total(), 2);
    }

    #[test]
    fn a_peer_that_switches_festival_is_lost() {
        let mut t = table();
        let b = peer(2);
        t.resolved(&of(&b, "10.0.0.2"));
        let switched = record(&instance_name(&b), &b.to_hex(), "elsewhere", "10.0.0.2");
        assert_eq!(t.resolved(&switched), vec![DiscoveryEvent::Lost { peer: b }]);
    }

    #[test]
    fn a_record_for_someone_elses_id_under_another_name_changes_nothing() {
        let mut t = table();
        let b = peer(2);
        t.resolved(&of(&b, "10.0.0.2"));
        // A stranger announces b's id under a name of its own, at its
        // own address: refused, counted once, b stays where it is.
        let spoof = record("fc-spoof", &b.to_hex(), "fest", "10.0.0.66");
        assert!(t.resolved(&spoof).is_empty());
        assert!(t.resolved(&spoof).is_empty());
        assert_eq!(t.ignored().get(IgnoreReason::NameMismatch), 1);
        assert!(t.removed(&spoof.fullname).is_empty());
        assert_eq!(t.peers().collect::<Vec<_>>(), vec![b]);
        assert_eq!(t.removed(&fullname(&b)), vec![DiscoveryEvent::Lost { peer: b }]);
    }

    #[test]
    fn a_record_pointing_at_loopback_or_another_network_is_not_dialed() {
        let mut t = table();
        let (b, c) = (peer(2), peer(3));
        assert!(t.resolved(&of(&b, "127.0.0.1")).is_empty());
        assert!(t.resolved(&of(&c, "192.168.9.9")).is_empty());
        assert_eq!(t.ignored().get(IgnoreReason::AddressOutOfScope), 2);
        // Once our interfaces say we are alone on loopback, the record
        // refused before is read again from a snapshot (mdns-sd would not
        // report it again unchanged) and dialed.
        assert!(t.set_scope(AddrScope::loopback()));
        assert!(!t.set_scope(AddrScope::loopback()), "no change, no resync");
        let events = t.sync(&[Arc::new(of(&b, "127.0.0.1")), Arc::new(of(&c, "192.168.9.9"))]);
        assert!(matches!(events.as_slice(), [DiscoveryEvent::Found { peer, .. }] if *peer == b), "{events:?}");
        assert_eq!(t.ignored().get(IgnoreReason::AddressOutOfScope), 2, "c counted once, not again");
    }

    #[test]
    fn a_snapshot_sync_reports_what_was_missed_in_both_directions() {
        let mut t = table();
        let (b, c) = (peer(2), peer(3));
        t.resolved(&of(&b, "10.0.0.2"));
        let events = t.sync(&[Arc::new(of(&c, "10.0.0.3"))]);
        assert_eq!(events.len(), 2);
        assert!(events.contains(&DiscoveryEvent::Lost { peer: b }));
        assert!(events.iter().any(|e| matches!(e, DiscoveryEvent::Found { peer, .. } if *peer == c)));
        assert_eq!(t.peers().collect::<Vec<_>>(), vec![c]);
    }
}
