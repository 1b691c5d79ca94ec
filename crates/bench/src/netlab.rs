//! Just enough network lab for the benchmarks: re-running ourselves inside a
//! private namespace, and a two-host LAN of `ip netns` hosts on a bridge that
//! lives in its own namespace. Everything is removed on drop.

use std::process::{Command, Stdio};

use anyhow::{ensure, Context};

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("ip").args(args).stdout(Stdio::null()).status().context("running ip")?;
    ensure!(st.success(), "ip {} failed", args.join(" "));
    Ok(())
}

/// Loopback up, with multicast for mDNS.
pub const LAN_SETUP: &str = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo";

/// Run this same benchmark again inside `unshare --net`, after the shell
/// commands `setup` (e.g. [`LAN_SETUP`]), and return its JSON line.
pub fn rerun_in_private_netns(setup: &str) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = Command::new("unshare")
        .args(["--net", "bash", "-c"])
        .arg(format!("{setup} && exec \"$@\""))
        .arg("_")
        .arg(exe)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("unshare --net (needs root)")?;
    ensure!(out.status.success(), "benchmark inside the namespace failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Hosts `fb<tag>h1..n` on bridge namespace `fb<tag>br`, 10.77.<sub>.i/24.
pub struct Lan {
    pub hosts: Vec<String>,
    bridge: String,
}

impl Lan {
    pub fn new(n: usize) -> anyhow::Result<Lan> {
        let tag = format!("{:x}", std::process::id() & 0xffff);
        let sub = std::process::id() % 200 + 20;
        let bridge = format!("fb{tag}br");
        ip(&["netns", "add", &bridge])?;
        let mut lan = Lan { hosts: Vec::new(), bridge: bridge.clone() };
        ip(&["-n", &bridge, "link", "set", "lo", "up"])?;
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let host = format!("fb{tag}h{i}");
            ip(&["netns", "add", &host])?;
            lan.hosts.push(host.clone());
            let port = format!("p{i}");
            ip(&["-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "veth0", "netns", &host])?;
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
            ip(&["-n", &host, "addr", "add", &format!("10.77.{sub}.{i}/24"), "dev", "veth0"])?;
            ip(&["-n", &host, "link", "set", "veth0", "up", "multicast", "on"])?;
            ip(&["-n", &host, "route", "add", "224.0.0.0/4", "dev", "veth0"])?;
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for h in self.hosts.iter().chain(std::iter::once(&self.bridge)) {
            let _ = ip(&["netns", "del", h]);
        }
    }
}
