//! Local interface addresses, turned into ICE host candidates.
//!
//! str0m gathers nothing itself and refuses `0.0.0.0` as a candidate, so a
//! node whose socket is bound to the wildcard address must name one host
//! candidate per real interface address. We only gather IPv4: festival Wi-Fi
//! hands out IPv4 leases, and every extra candidate is another pair that ICE
//! checks on every link.
//!
//! Enumeration uses the C library's `getifaddrs` (Linux, Android 7+, macOS,
//! iOS). The choice of addresses is a pure function ([`select_host_ips`]) so
//! that it can be tested without touching the machine's interfaces.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

/// One IPv4 address of a local network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// Interface name as the OS reports it (`wlan0`, `en0`, `lo`).
    pub name: String,
    pub ip: Ipv4Addr,
    /// Whether the interface is a loopback interface.
    pub loopback: bool,
}

/// Which interface addresses become host candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceFilter {
    /// Offer loopback addresses even when a real interface is up. Off by
    /// default: a loopback candidate only helps two nodes on one machine and
    /// costs one more failing ICE pair on every real link. When no other
    /// address exists, loopback is used regardless, so a lone machine (and a
    /// test namespace) still works.
    pub include_loopback: bool,
    /// Only these interfaces (by name); empty means all of them.
    pub only: Vec<String>,
}

/// The host candidates for a socket bound to `bound_port` on the wildcard
/// address: one per selected interface address.
pub fn host_candidates(bound_port: u16, filter: &InterfaceFilter) -> io::Result<Vec<SocketAddr>> {
    let interfaces = local_interfaces()?;
    Ok(select_host_ips(&interfaces, filter).into_iter().map(|ip| SocketAddr::from((ip, bound_port))).collect())
}

/// Picks the addresses that can serve as host candidates. Link-local
/// (169.254/16) addresses are skipped because str0m rejects them as
/// candidates; duplicates are removed; order follows `interfaces`.
pub fn select_host_ips(interfaces: &[InterfaceAddr], filter: &InterfaceFilter) -> Vec<Ipv4Addr> {
    let wanted = |i: &&InterfaceAddr| {
        (filter.only.is_empty() || filter.only.contains(&i.name))
            && !i.ip.is_link_local()
            && !i.ip.is_unspecified()
            && !i.ip.is_broadcast()
            && !i.ip.is_multicast()
    };
    let mut real: Vec<Ipv4Addr> = Vec::new();
    let mut loopback: Vec<Ipv4Addr> = Vec::new();
    for i in interfaces.iter().filter(wanted) {
        let list = if i.loopback || i.ip.is_loopback() { &mut loopback } else { &mut real };
        if !list.contains(&i.ip) {
            list.push(i.ip);
        }
    }
    if real.is_empty() || filter.include_loopback {
        real.extend(loopback);
    }
    real
}

/// Every IPv4 address of every interface that is up (through `if-addrs`,
/// which mdns-sd already uses, rather than our own `getifaddrs` bindings).
pub fn local_interfaces() -> io::Result<Vec<InterfaceAddr>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) => Some(InterfaceAddr { loopback: v4.ip.is_loopback(), ip: v4.ip, name: i.name }),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, ip: [u8; 4], loopback: bool) -> InterfaceAddr {
        InterfaceAddr { name: name.into(), ip: ip.into(), loopback }
    }

    #[test]
    fn loopback_is_used_only_when_nothing_else_is_up() {
        let lo = iface("lo", [127, 0, 0, 1], true);
        let wlan = iface("wlan0", [192, 168, 1, 20], false);
        let alone = select_host_ips(std::slice::from_ref(&lo), &InterfaceFilter::default());
        assert_eq!(alone, vec![Ipv4Addr::LOCALHOST]);
        let both = select_host_ips(&[lo.clone(), wlan.clone()], &InterfaceFilter::default());
        assert_eq!(both, vec![Ipv4Addr::new(192, 168, 1, 20)]);
        let asked = InterfaceFilter { include_loopback: true, ..Default::default() };
        let with_lo = select_host_ips(&[lo, wlan], &asked);
        assert_eq!(with_lo, vec![Ipv4Addr::new(192, 168, 1, 20), Ipv4Addr::LOCALHOST]);
    }

    #[test]
    fn link_local_and_unlisted_interfaces_are_skipped() {
        let list = [
            iface("wlan0", [169, 254, 3, 4], false),
            iface("docker0", [172, 17, 0, 1], false),
            iface("wlan0", [10, 0, 0, 7], false),
            iface("wlan0", [10, 0, 0, 7], false),
        ];
        let only_wlan = InterfaceFilter { only: vec!["wlan0".into()], ..Default::default() };
        assert_eq!(select_host_ips(&list, &only_wlan), vec![Ipv4Addr::new(10, 0, 0, 7)]);
    }
}
