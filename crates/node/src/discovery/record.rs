//! What goes into our mDNS record and how a received one is read.
//!
//! A TXT record is a claim made by anyone on the LAN; the signed handshake
//! (see `signaling`) is what proves an identity. So reading one never panics
//! and never trusts: every way a record can be unusable has an
//! [`IgnoreReason`], and the caller counts it.

use std::fmt;
use std::io;
use std::net::IpAddr;

use festival_core::PeerId;
use mdns_sd::ResolvedService;

/// TXT key: the advertised PeerId, 64 hex characters.
pub const TXT_ID: &str = "id";
/// TXT key: the protocol version, decimal.
pub const TXT_VERSION: &str = "v";
/// TXT key: the festival this node belongs to.
pub const TXT_FESTIVAL: &str = "fest";
/// TXT key: the TCP port of the signaling endpoint, decimal.
pub const TXT_PORT: &str = "port";
/// `1` when the node runs on mains power (a venue box, a charging laptop).
/// Optional; anything else means battery or unknown. Peers prefer powered
/// nodes for their links (see `festival_core::mesh`).
pub const TXT_POWERED: &str = "pw";

/// Prefix of our instance and host names, so a person reading an mDNS browser
/// sees whose records these are.
const NAME_PREFIX: &str = "fc-";
/// Hex characters of the PeerId in the instance name: 64 bits make an
/// accidental clash between two devices at one festival negligible, while the
/// name stays far below the 63-byte DNS label limit.
const NAME_ID_HEX: usize = 16;
/// Addresses of one record that are dialed (the first in order, after
/// those out of scope are dropped).
pub const MAX_RECORD_ADDRS: usize = 4;
/// Longest festival id we advertise or accept. A TXT string holds at most 255
/// bytes; 64 keeps the record small next to the 64-character id.
pub const MAX_FESTIVAL_LEN: usize = 64;

/// The instance name a peer advertises under (`fc-` and 16 hex of its id).
/// Derived from the PeerId, so two devices never pick the same name and no
/// RFC 6762 probing is needed to find a free one.
pub fn instance_name(peer: &PeerId) -> String {
    let hex = peer.to_hex();
    format!("{NAME_PREFIX}{}", &hex[..NAME_ID_HEX])
}

/// The host name (target of SRV, owner of A/AAAA) for a peer's record. One per
/// node, so several nodes in one process do not share address records.
pub fn host_name(peer: &PeerId) -> String {
    format!("{}.local.", instance_name(peer))
}

/// Checks a festival id before we advertise it: non-empty, at most
/// [`MAX_FESTIVAL_LEN`] bytes, printable ASCII (TXT keys and values travel as
/// raw bytes; other apps' browsers show them).
pub fn check_festival(festival: &str) -> Result<(), &'static str> {
    if festival.is_empty() {
        return Err("it is empty");
    }
    if festival.len() > MAX_FESTIVAL_LEN {
        return Err("it is longer than 64 bytes");
    }
    if !festival.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("it has characters other than printable ASCII without spaces");
    }
    Ok(())
}

/// Why a received record was not reported as a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// One of `id`, `v`, `fest`, `port` is absent or has no value.
    MissingKey,
    /// `id` is not 64 hex characters.
    BadId,
    /// `v` is not a number.
    BadVersion,
    /// `v` is a protocol version this build does not speak.
    UnsupportedVersion,
    /// `fest` names another festival.
    OtherFestival,
    /// `port` is not a port number (or is 0).
    BadPort,
    /// The record resolved to no usable unicast address.
    NoAddress,
    /// Another instance claims our own PeerId (a clone, a spoof, or a stale
    /// record of ours under another name).
    ClaimsOurId,
    /// The instance name is not the one derived from the claimed id
    /// ([`instance_name`]): one id has one name, so a stranger cannot add
    /// records for someone else's id under names of its own.
    NameMismatch,
    /// Every address given is one we would not dial: loopback while we are
    /// on a real network, or outside the networks of our interfaces (a
    /// record naming `127.0.0.1:<any port>` would make every node dial its
    /// own services).
    AddressOutOfScope,
}

impl IgnoreReason {
    /// Every reason, in the order [`IgnoredCounts`] stores them.
    pub const ALL: [IgnoreReason; 10] = [
        Self::MissingKey,
        Self::BadId,
        Self::BadVersion,
        Self::UnsupportedVersion,
        Self::OtherFestival,
        Self::BadPort,
        Self::NoAddress,
        Self::ClaimsOurId,
        Self::NameMismatch,
        Self::AddressOutOfScope,
    ];

    fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::BadId => "bad_id",
            Self::BadVersion => "bad_version",
            Self::UnsupportedVersion => "unsupported_version",
            Self::OtherFestival => "other_festival",
            Self::BadPort => "bad_port",
            Self::NoAddress => "no_address",
            Self::ClaimsOurId => "claims_our_id",
            Self::NameMismatch => "name_mismatch",
            Self::AddressOutOfScope => "address_out_of_scope",
        }
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many records were ignored, by reason. A record is counted once per
/// reason it is ignored for, not on every re-announcement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IgnoredCounts {
    counts: [u64; IgnoreReason::ALL.len()],
}

impl IgnoredCounts {
    pub fn get(&self, reason: IgnoreReason) -> u64 {
        self.counts[reason.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(reason, count)` for every reason, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (IgnoreReason, u64)> + '_ {
        IgnoreReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }

    pub(crate) fn add(&mut self, reason: IgnoreReason) {
        let slot = &mut self.counts[reason.index()];
        *slot = slot.saturating_add(1);
    }
}

/// Which advertised addresses we would dial: those inside the networks of
/// our own interfaces, and loopback only in loopback mode (no interface
/// with another address: a test namespace, a machine alone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrScope {
    /// (address, prefix length) of each non-loopback interface address.
    nets: Vec<(IpAddr, u8)>,
}

impl AddrScope {
    /// Loopback mode: only loopback addresses are dialed.
    pub fn loopback() -> Self {
        Self::default()
    }

    /// The scope of these networks (address and prefix length each);
    /// loopback ones are left out (an empty list is loopback mode).
    pub fn of_networks(nets: impl IntoIterator<Item = (IpAddr, u8)>) -> Self {
        let mut nets: Vec<(IpAddr, u8)> = nets.into_iter().filter(|(ip, _)| !ip.is_loopback()).collect();
        nets.sort_unstable();
        nets.dedup();
        Self { nets }
    }

    /// The scope of this machine's interfaces that are up, or of those
    /// named in `only` (empty: all).
    pub fn local(only: &[String]) -> io::Result<Self> {
        let nets = if_addrs::get_if_addrs()?.into_iter().filter(|i| only.is_empty() || only.contains(&i.name)).map(
            |i| match i.addr {
                if_addrs::IfAddr::V4(v4) => (IpAddr::V4(v4.ip), v4.prefixlen),
                if_addrs::IfAddr::V6(v6) => (IpAddr::V6(v6.ip), v6.prefixlen),
            },
        );
        Ok(Self::of_networks(nets))
    }

    pub fn is_loopback_mode(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether we would dial `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if ip.is_loopback() {
            return self.is_loopback_mode();
        }
        self.nets.iter().any(|&(net, len)| same_network(ip, net, len))
    }
}

/// Whether `a` is in the network of `net` with prefix length `len`.
fn same_network(a: IpAddr, net: IpAddr, len: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A record that parsed: what a peer claims about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub peer: PeerId,
    pub festival: String,
    pub version: u8,
    pub port: u16,
    /// Sorted, without duplicates, unicast only.
    pub addrs: Vec<IpAddr>,
    pub powered: bool,
}

/// Whether a record's instance (the first label of its full name) is the
/// one [`instance_name`] gives for `peer`. DNS names are case-insensitive.
pub fn named_for(service: &ResolvedService, peer: &PeerId) -> bool {
    let instance = service.fullname.split('.').next().unwrap_or_default();
    instance.eq_ignore_ascii_case(&instance_name(peer))
}

/// Reads a resolved record, keeping the addresses `scope` allows. The
/// festival, our own id and the instance name ([`named_for`]) are checked
/// by the caller, which knows who we are.
pub fn parse(service: &ResolvedService, scope: &AddrScope) -> Result<Claim, IgnoreReason> {
    let id = txt_value(service, TXT_ID)?;
    let peer: PeerId = id.parse().map_err(|_| IgnoreReason::BadId)?;

    let version: u8 = txt_value(service, TXT_VERSION)?.parse().map_err(|_| IgnoreReason::BadVersion)?;
    // Older peers we still speak to are dialed; their hello sets the version.
    let spoken = festival_core::sync::MIN_PROTOCOL_VERSION..=festival_core::sync::PROTOCOL_VERSION;
    if !spoken.contains(&version) {
        return Err(IgnoreReason::UnsupportedVersion);
    }

    let festival = txt_value(service, TXT_FESTIVAL)?.to_owned();

    let port: u16 = txt_value(service, TXT_PORT)?.parse().map_err(|_| IgnoreReason::BadPort)?;
    if port == 0 {
        return Err(IgnoreReason::BadPort);
    }

    let mut addrs: Vec<IpAddr> = service
        .get_addresses()
        .iter()
        .map(|a| a.to_ip_addr())
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(IgnoreReason::NoAddress);
    }
    addrs.retain(|ip| scope.allows(*ip));
    if addrs.is_empty() {
        return Err(IgnoreReason::AddressOutOfScope);
    }
    // A device has an address or two per network; a record listing a
    // whole subnet would have every node dial each of them in turn.
    addrs.truncate(MAX_RECORD_ADDRS);

    let powered = service.get_property_val_str(TXT_POWERED) == Some("1");

    Ok(Claim { peer, festival, version, port, addrs, powered })
}

/// A TXT value as text. A key without `=` or with non-UTF-8 bytes counts as
/// missing: there is nothing we could use.
fn txt_value<'a>(service: &'a ResolvedService, key: &str) -> Result<&'a str, IgnoreReason> {
    match service.get_property_val(key) {
        Some(Some(bytes)) => std::str::from_utf8(bytes).map_err(|_| IgnoreReason::MissingKey),
        _ => Err(IgnoreReason::MissingKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdns_sd::{ServiceInfo, TxtProperty};

    const TY: &str = "_festival-chat._udp.local.";

    fn peer(byte: u8) -> PeerId {
        PeerId::from_bytes([byte; 32])
    }

    fn good_txt(id: &str) -> Vec<TxtProperty> {
        let version = festival_core::sync::PROTOCOL_VERSION.to_string();
        [(TXT_ID, id), (TXT_VERSION, version.as_str()), (TXT_FESTIVAL, "fest-a"), (TXT_PORT, "4242")]
            .iter()
            .map(TxtProperty::from)
            .collect()
    }

    fn resolved(txt: Vec<TxtProperty>, addrs: &str) -> ResolvedService {
        ServiceInfo::new(TY, "fc-x", "fc-x.local.", addrs, 9, txt).unwrap().as_resolved_service()
    }

    /// A LAN of 10.0.0.0/24 and fd00::/64.
    fn lan() -> AddrScope {
        AddrScope::of_networks([
            ("10.0.0.5".parse().unwrap(), 24),
            ("fd00::5".parse().unwrap(), 64),
            ("127.0.0.1".parse().unwrap(), 8),
        ])
    }

    fn parse(service: &ResolvedService) -> Result<Claim, IgnoreReason> {
        super::parse(service, &lan())
    }

    /// The good record with `key` replaced by `prop` (or dropped if `None`).
    fn parse_with(key: &str, prop: Option<TxtProperty>) -> Result<Claim, IgnoreReason> {
        let mut txt = good_txt(&peer(7).to_hex());
        txt.retain(|p| p.key() != key);
        txt.extend(prop);
        parse(&resolved(txt, "10.0.0.1"))
    }

    #[test]
    fn a_well_formed_record_yields_its_claim_with_sorted_unique_addresses() {
        let claim = parse(&resolved(good_txt(&peer(7).to_hex()), "10.0.0.2,10.0.0.1,fd00::1,10.0.0.1")).unwrap();
        assert_eq!(claim.peer, peer(7));
        assert_eq!(claim.festival, "fest-a");
        assert_eq!(claim.port, 4242);
        assert_eq!(claim.version, festival_core::sync::PROTOCOL_VERSION);
        let want: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "fd00::1"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(claim.addrs, want);
    }

    #[test]
    fn loopback_and_off_network_addresses_are_dialed_only_where_they_can_be_ours() {
        let txt = || good_txt(&peer(7).to_hex());
        // On a LAN: loopback and other networks are dropped from a record,
        // and a record with nothing else is refused.
        let mixed = parse(&resolved(txt(), "127.0.0.1,10.0.0.9,192.168.7.7,::1")).unwrap();
        assert_eq!(mixed.addrs, vec!["10.0.0.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(parse(&resolved(txt(), "127.0.0.1")), Err(IgnoreReason::AddressOutOfScope));
        assert_eq!(parse(&resolved(txt(), "::1,127.0.0.2")), Err(IgnoreReason::AddressOutOfScope));
        assert_eq!(parse(&resolved(txt(), "10.0.1.1,8.8.8.8")), Err(IgnoreReason::AddressOutOfScope));
        assert_eq!(parse(&resolved(txt(), "fd00:0:0:1::1")), Err(IgnoreReason::AddressOutOfScope));
        // Alone on loopback (a test namespace): loopback only.
        let alone = AddrScope::of_networks([("127.0.0.1".parse().unwrap(), 8)]);
        assert!(alone.is_loopback_mode());
        assert_eq!(super::parse(&resolved(txt(), "127.0.0.1"), &alone).map(|c| c.addrs.len()), Ok(1));
        assert_eq!(super::parse(&resolved(txt(), "10.0.0.9"), &alone), Err(IgnoreReason::AddressOutOfScope));
        // A record listing a subnet is dialed at its first few addresses.
        let many: String = (1..=50).map(|i| format!("10.0.0.{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(parse(&resolved(txt(), &many)).unwrap().addrs.len(), MAX_RECORD_ADDRS);
        // Prefix lengths are honoured at every size.
        let host = AddrScope::of_networks([("10.1.2.3".parse().unwrap(), 32)]);
        assert!(host.allows("10.1.2.3".parse().unwrap()) && !host.allows("10.1.2.4".parse().unwrap()));
        let any = AddrScope::of_networks([("10.1.2.3".parse().unwrap(), 0)]);
        assert!(any.allows("203.0.113.1".parse().unwrap()) && !any.allows("::2".parse().unwrap()));
    }

    #[test]
    fn a_record_is_named_for_one_id_only() {
        let p = peer(7);
        let named = |instance: &str| {
            let info = ServiceInfo::new(TY, instance, "h.local.", "10.0.0.1", 9, good_txt(&p.to_hex())).unwrap();
            named_for(&info.as_resolved_service(), &p)
        };
        assert!(named(&instance_name(&p)));
        assert!(named(&instance_name(&p).to_uppercase()), "DNS names are case-insensitive");
        assert!(!named("fc-x"));
        assert!(!named(&instance_name(&peer(8))));
        assert!(!named(&format!("{}x", instance_name(&p))));
    }

    #[test]
    fn the_power_claim_is_optional_and_only_1_means_powered() {
        let val = |v: &str| Some(TxtProperty::from((TXT_POWERED, v)));
        assert!(parse_with(TXT_POWERED, val("1")).unwrap().powered);
        assert!(!parse_with(TXT_POWERED, val("0")).unwrap().powered);
        assert!(!parse_with(TXT_POWERED, val("yes")).unwrap().powered);
        assert!(!parse_with(TXT_POWERED, None).unwrap().powered, "older nodes do not say");
    }

    #[test]
    fn each_kind_of_bad_record_has_its_own_reason() {
        let val = |k: &str, v: &str| Some(TxtProperty::from((k, v)));
        let short_id = &peer(7).to_hex()[..10];
        assert_eq!(parse_with(TXT_ID, val(TXT_ID, "not-hex")), Err(IgnoreReason::BadId));
        assert_eq!(parse_with(TXT_ID, val(TXT_ID, short_id)), Err(IgnoreReason::BadId));
        assert_eq!(parse_with(TXT_ID, None), Err(IgnoreReason::MissingKey));
        assert_eq!(parse_with(TXT_ID, Some(TxtProperty::from(TXT_ID))), Err(IgnoreReason::MissingKey));
        assert_eq!(parse_with(TXT_VERSION, val(TXT_VERSION, "one")), Err(IgnoreReason::BadVersion));
        assert_eq!(parse_with(TXT_VERSION, val(TXT_VERSION, "99")), Err(IgnoreReason::UnsupportedVersion));
        // A node of the first protocol version is told apart, not half-understood.
        assert_eq!(parse_with(TXT_VERSION, val(TXT_VERSION, "1")), Err(IgnoreReason::UnsupportedVersion));
        // Protocol 2 (before the room trees) is still spoken.
        assert_eq!(parse_with(TXT_VERSION, val(TXT_VERSION, "2")).map(|c| c.version), Ok(2));
        assert_eq!(parse_with(TXT_FESTIVAL, None), Err(IgnoreReason::MissingKey));
        assert_eq!(parse_with(TXT_PORT, val(TXT_PORT, "70000")), Err(IgnoreReason::BadPort));
        assert_eq!(parse_with(TXT_PORT, val(TXT_PORT, "0")), Err(IgnoreReason::BadPort));
        let non_utf8 = Some(TxtProperty::from((TXT_PORT, [0xff_u8, 0xfe])));
        assert_eq!(parse_with(TXT_PORT, non_utf8), Err(IgnoreReason::MissingKey));

        let id = peer(7).to_hex();
        assert_eq!(parse(&resolved(good_txt(&id), "")), Err(IgnoreReason::NoAddress));
        assert_eq!(parse(&resolved(good_txt(&id), "0.0.0.0,224.0.0.251")), Err(IgnoreReason::NoAddress));
    }

    #[test]
    fn instance_names_come_from_the_peer_id_and_differ_between_peers() {
        assert_eq!(instance_name(&peer(0xab)), "fc-abababababababab");
        assert_ne!(instance_name(&peer(1)), instance_name(&peer(2)));
        assert_eq!(host_name(&peer(1)), "fc-0101010101010101.local.");
    }

    #[test]
    fn festival_ids_that_do_not_fit_a_txt_record_are_refused() {
        assert!(check_festival("glasto-2026").is_ok());
        assert!(check_festival("").is_err());
        assert!(check_festival("has space").is_err());
        assert!(check_festival(&"x".repeat(MAX_FESTIVAL_LEN + 1)).is_err());
    }
}
