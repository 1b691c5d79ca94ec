//! A LAN of network namespaces: one bridge namespace, `n` hosts on veth
//! pairs, each host a namespace with `lo` and `veth0` (10.a.b.i/24).
//!
//! Names are `flab<pid>x<n>br` and `flab<pid>x<n>h<i>`, unique per process
//! and instance; a run that died without cleaning up is cleaned by the next
//! [`Lan::new`] (its pid is gone). Dropping a `Lan` kills every process left
//! in its hosts and deletes the namespaces, also while a test unwinds.

use std::collections::HashSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::node::NodeProc;
use crate::proxy::DelayProxy;
use crate::relay::RelayProc;
use crate::sys::{self, ip, kill9, pid_alive, run_quiet, LabLock};

/// Every namespace the lab makes starts with this.
const PREFIX: &str = "flab";
/// Lan instances made by this process: part of names and subnets.
static INSTANCES: AtomicU32 = AtomicU32::new(0);

/// Pids of node processes started in a Lan and not yet reaped.
pub type Children = Arc<Mutex<HashSet<u32>>>;

pub struct Lan {
    tag: String,
    subnet: [u8; 2],
    bridge: Option<String>,
    hosts: Vec<String>,
    /// Hosts behind a NAT router (see [`Lan::add_behind_nat`]): their
    /// private addresses.
    private: std::collections::HashMap<usize, Ipv4Addr>,
    children: Children,
    _lock: LabLock,
}

impl Lan {
    /// A bridge and `n` hosts, all up. Takes the lab lock first (see
    /// [`LabLock`]): so make one `Lan` per test at a time.
    pub fn new(n: usize) -> Lan {
        assert!((1..=250).contains(&n), "1 to 250 hosts");
        let lock = LabLock::take();
        clean_stale();
        sys::clean_stale_dirs();
        let k = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Each LAN is its own broadcast domain in its own namespaces, so
        // subnets could repeat; distinct ones keep captures and logs apart.
        let subnet = [100 + (pid % 100) as u8, (k % 256) as u8];
        let mut lan = Lan {
            tag: format!("{PREFIX}{pid}x{k}"),
            subnet,
            bridge: None,
            hosts: Vec::new(),
            private: Default::default(),
            children: Children::default(),
            _lock: lock,
        };
        let br = format!("{}br", lan.tag);
        ip(&["netns", "add", &br]);
        lan.bridge = Some(br.clone());
        ip(&["-n", &br, "link", "set", "lo", "up"]);
        // No multicast snooping: mDNS (224.0.0.251, ff02::fb) must reach
        // every port whether or not anyone sent an IGMP/MLD report.
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for i in 0..n {
            let h = format!("{}h{i}", lan.tag);
            ip(&["netns", "add", &h]);
            lan.hosts.push(h.clone());
            let port = format!("p{i}");
            ip(&["-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "veth0", "netns", &h]);
            ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &h, "link", "set", "lo", "up"]);
            ip(&["-n", &h, "link", "set", "lo", "multicast", "on"]);
            ip(&["-n", &h, "link", "set", "veth0", "multicast", "on"]);
            ip(&["-n", &h, "addr", "add", &format!("{}/24", lan.ip(i)), "dev", "veth0"]);
            ip(&["-n", &h, "link", "set", "veth0", "up"]);
            // mdns-sd names the interface for each multicast send; the route
            // covers stacks that rely on the routing table instead.
            ip(&["-n", &h, "route", "add", "224.0.0.0/4", "dev", "veth0"]);
        }
        lan
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The namespace of host `i` (for `ip netns exec`).
    pub fn ns(&self, host: usize) -> &str {
        &self.hosts[host]
    }

    /// Host `i`'s address on the LAN (a private one behind a NAT router).
    pub fn ip(&self, host: usize) -> Ipv4Addr {
        if let Some(ip) = self.private.get(&host) {
            return *ip;
        }
        Ipv4Addr::new(10, self.subnet[0], self.subnet[1], host as u8 + 1)
    }

    /// A home router: LAN host `router` forwards and masquerades (source
    /// NAT, nftables) for a private /24 behind it, where a new host sits
    /// with a default route through it. Returns the new host's index. The
    /// new host reaches the LAN and beyond, but nothing on the LAN can reach
    /// it unless it sent there first (the NAT's connection tracking), and no
    /// multicast crosses the router: no mDNS either way. Like a home router,
    /// it drops unsolicited packets from the LAN silently; a packet it took
    /// in would leave a conntrack entry that makes the NAT pick another port
    /// for the host's own flow to that sender (the clash behind failed hole
    /// punching on Linux routers).
    pub fn add_behind_nat(&mut self, router: usize) -> usize {
        let i = self.hosts.len();
        let r = self.hosts[router].clone();
        let h = format!("{}h{i}", self.tag);
        let net = [192, 168, i as u8];
        let (gw, me) = (format!("{}.{}.{}.1", net[0], net[1], net[2]), format!("{}.{}.{}.2", net[0], net[1], net[2]));
        ip(&["netns", "add", &h]);
        self.hosts.push(h.clone());
        self.private.insert(i, me.parse().expect("private address"));
        let port = format!("nat{i}");
        ip(&["-n", &r, "link", "add", &port, "type", "veth", "peer", "name", "veth0", "netns", &h]);
        ip(&["-n", &r, "addr", "add", &format!("{gw}/24"), "dev", &port]);
        ip(&["-n", &r, "link", "set", &port, "up"]);
        ip(&["-n", &h, "link", "set", "lo", "up"]);
        ip(&["-n", &h, "link", "set", "lo", "multicast", "on"]);
        ip(&["-n", &h, "link", "set", "veth0", "multicast", "on"]);
        ip(&["-n", &h, "addr", "add", &format!("{me}/24"), "dev", "veth0"]);
        ip(&["-n", &h, "link", "set", "veth0", "up"]);
        ip(&["-n", &h, "route", "add", "default", "via", &gw]);
        ip(&["-n", &h, "route", "add", "224.0.0.0/4", "dev", "veth0"]);
        sys::run("ip", &["netns", "exec", &r, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let nat = format!(
            "add table ip flabnat; \
             add chain ip flabnat post {{ type nat hook postrouting priority 100; }}; \
             add rule ip flabnat post ip saddr {}.{}.{}.0/24 oifname \"veth0\" masquerade; \
             add chain ip flabnat in {{ type filter hook input priority 0; }}; \
             add rule ip flabnat in iifname \"veth0\" ct state new drop",
            net[0], net[1], net[2]
        );
        sys::run("ip", &["netns", "exec", &r, "nft", &nat]);
        i
    }

    /// Starts `festival-node run --json` on `host` and waits for its `ready`
    /// line. `extra` goes after the lab's own flags (`--name`, `--json`,
    /// `--power mains` unless `extra` has `--power`).
    pub fn spawn(&self, host: usize, name: &str, extra: &[&str]) -> NodeProc {
        NodeProc::start(self.ns(host).to_owned(), host, name, extra, self.children.clone())
    }

    /// Starts `festival-relay` on `host`, listening on all its addresses at
    /// `port` (STUN on UDP 3478), and waits until it has bound.
    pub fn spawn_relay(&self, host: usize, port: u16) -> RelayProc {
        RelayProc::start(self.ns(host).to_owned(), host, self.ip(host), port, self.children.clone())
    }

    /// Client isolation (venue Wi-Fi that blocks P2P): host `i` exchanges
    /// packets only with the hosts in `allow` (e.g. the relay's); everything
    /// else on the LAN, multicast and IPv6 included, is dropped both ways,
    /// by an nftables table in the host. Undone by [`Self::clear_impairments`].
    pub fn isolate(&self, host: usize, allow: &[usize]) -> Result<(), String> {
        let ips: Vec<String> = allow.iter().map(|h| self.ip(*h).to_string()).collect();
        let set = if ips.is_empty() { "0.0.0.0".to_owned() } else { ips.join(", ") };
        let script = format!(
            "add table inet flab; \
             add chain inet flab out {{ type filter hook output priority 0; }}; \
             add chain inet flab in {{ type filter hook input priority 0; }}; \
             flush chain inet flab out; flush chain inet flab in; \
             add rule inet flab out oifname \"veth0\" ip daddr {{ {set} }} accept; \
             add rule inet flab out oifname \"veth0\" drop; \
             add rule inet flab in iifname \"veth0\" ip saddr {{ {set} }} accept; \
             add rule inet flab in iifname \"veth0\" drop"
        );
        sys::try_run("ip", &["netns", "exec", self.ns(host), "nft", &script])
    }

    /// A venue network that drops multicast (no mDNS between hosts) but
    /// routes unicast: host `i` sends and takes no multicast on the LAN, in
    /// an nftables table in the host. Undone by [`Self::clear_impairments`].
    pub fn block_multicast(&self, host: usize) -> Result<(), String> {
        let script = "add table inet flab; \
             add chain inet flab out { type filter hook output priority 0; }; \
             add chain inet flab in { type filter hook input priority 0; }; \
             flush chain inet flab out; flush chain inet flab in; \
             add rule inet flab out oifname \"veth0\" ip daddr 224.0.0.0/4 drop; \
             add rule inet flab out oifname \"veth0\" ip6 daddr ff00::/8 drop; \
             add rule inet flab in iifname \"veth0\" ip daddr 224.0.0.0/4 drop; \
             add rule inet flab in iifname \"veth0\" ip6 daddr ff00::/8 drop";
        sys::try_run("ip", &["netns", "exec", self.ns(host), "nft", script])
    }

    /// Host `i` stops hearing host `from`'s mDNS (records and answers to
    /// its queries; both are UDP to port 5353), while `from` still hears
    /// `i` and unicast passes both ways: a newcomer whose query went
    /// unanswered. mDNS over IPv6 (from link-local addresses) is dropped
    /// from every host. An nftables table in host `i`; undone by
    /// [`Self::clear_impairments`].
    pub fn deafen_to_mdns_of(&self, host: usize, from: usize) -> Result<(), String> {
        let script = format!(
            "add table inet flab; \
             add chain inet flab in {{ type filter hook input priority 0; }}; \
             flush chain inet flab in; \
             add rule inet flab in iifname \"veth0\" ip saddr {} udp dport 5353 drop; \
             add rule inet flab in iifname \"veth0\" meta nfproto ipv6 udp dport 5353 drop",
            self.ip(from)
        );
        sys::try_run("ip", &["netns", "exec", self.ns(host), "nft", &script])
    }

    /// A slow path into host `i`: a TCP forwarder listening on
    /// `listen_port` of the host's LAN address that passes everything to
    /// `upstream_port` on the same host, `one_way` late in each direction
    /// (see [`DelayProxy`]). Stops when dropped.
    pub fn slow_path(&self, host: usize, listen_port: u16, upstream_port: u16, one_way: Duration) -> DelayProxy {
        let listen = SocketAddr::from((self.ip(host), listen_port));
        let upstream = SocketAddr::from((self.ip(host), upstream_port));
        DelayProxy::start(format!("/var/run/netns/{}", self.ns(host)), listen, upstream, one_way)
    }

    /// Cuts host `i` off the LAN (its end of the veth pair goes down).
    pub fn link_down(&self, host: usize) {
        ip(&["-n", self.ns(host), "link", "set", "veth0", "down"]);
    }

    /// Puts host `i` back. The address and the multicast route go with the
    /// link's state in the kernel's tables, so both are put back if missing.
    pub fn link_up(&self, host: usize) {
        let ns = self.ns(host);
        ip(&["-n", ns, "link", "set", "veth0", "up"]);
        run_quiet("ip", &["-n", ns, "route", "replace", "224.0.0.0/4", "dev", "veth0"]);
    }

    /// Bad Wi-Fi on host `i`'s outgoing side with netem, e.g.
    /// `"loss 10% delay 50ms 20ms"`. `Err` when the kernel has no netem
    /// (`CONFIG_NET_SCH_NETEM`; this machine's has not): use [`Self::loss`]
    /// and [`Self::rate`] there.
    pub fn netem(&self, host: usize, spec: &str) -> Result<(), String> {
        let mut args = vec!["netns", "exec", self.ns(host), "tc", "qdisc", "replace", "dev", "veth0", "root", "netem"];
        args.extend(spec.split_whitespace());
        sys::try_run("ip", &args)
    }

    /// Drops `percent` % of host `i`'s packets at random, each way, with an
    /// nftables rule in the host (the kernel's nf_tables and `numgen`; the
    /// `nft` tool from Debian's `nftables` package). `Err` without `nft`.
    pub fn loss(&self, host: usize, percent: u8) -> Result<(), String> {
        // nft refuses `< 100` against `mod 100` (always true): say it plainly.
        let drop = if percent >= 100 { "drop".to_owned() } else { format!("numgen random mod 100 < {percent} drop") };
        let script = format!(
            "add table inet flab; \
             add chain inet flab out {{ type filter hook output priority 0; }}; \
             add chain inet flab in {{ type filter hook input priority 0; }}; \
             flush chain inet flab out; flush chain inet flab in; \
             add rule inet flab out oifname \"veth0\" {drop}; \
             add rule inet flab in iifname \"veth0\" {drop}"
        );
        sys::try_run("ip", &["netns", "exec", self.ns(host), "nft", &script])
    }

    /// A slow link: host `i` sends at most `rate` (tc syntax, `"1mbit"`).
    pub fn rate(&self, host: usize, rate: &str) -> Result<(), String> {
        let ns = self.ns(host);
        let args = ["netns", "exec", ns, "tc", "qdisc", "replace", "dev", "veth0", "root", "tbf", "rate", rate];
        sys::try_run("ip", &[&args[..], &["burst", "32kbit", "latency", "400ms"]].concat())
    }

    /// Undoes [`Self::netem`], [`Self::rate`] and [`Self::loss`] on host `i`.
    pub fn clear_impairments(&self, host: usize) {
        let ns = self.ns(host);
        run_quiet("ip", &["netns", "exec", ns, "tc", "qdisc", "del", "dev", "veth0", "root"]);
        run_quiet("ip", &["netns", "exec", ns, "nft", "delete table inet flab"]);
    }

    /// Runs `f` on a thread that has entered host `i`'s network namespace:
    /// every socket `f` opens is on that host (a probe, an attacker). The
    /// thread ends with `f`, so the switch never leaks to other code. Build a
    /// current-thread tokio runtime inside `f` for async I/O.
    pub fn in_host<T: Send>(&self, host: usize, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.ns(host));
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: setns(2) on a namespace fd we hold; it changes only
                // this thread's network namespace.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for pid in self.children.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            kill9(pid);
        }
        for h in &self.hosts {
            remove_ns(h);
        }
        if let Some(br) = &self.bridge {
            remove_ns(br);
        }
    }
}

/// Kills whatever still runs in a lab namespace (only lab processes can be
/// there), then deletes it.
fn remove_ns(ns: &str) {
    if let Ok(out) = std::process::Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()) {
            kill9(pid);
        }
    }
    if !run_quiet("ip", &["netns", "del", ns]) {
        eprintln!("warning: could not delete network namespace {ns}");
    }
}

/// Namespaces left by lab runs whose process is gone (killed mid-test).
fn clean_stale() {
    let Ok(out) = std::process::Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('x').next()).and_then(|p| p.parse().ok()) else {
            continue;
        };
        if !pid_alive(pid) {
            remove_ns(name);
        }
    }
}
