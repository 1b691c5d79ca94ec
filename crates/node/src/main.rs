//! `festival-node`: the headless Festival Chat node. Thin: parse arguments,
//! set up logging, call the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use festival_core::policy::PowerState;
use festival_core::PeerId;
use festival_node::datadir::default_data_dir;
use festival_node::local::LocalNode;
use festival_node::power::parse_power;
use festival_node::runtime::{NodeConfig, PowerConfig};

mod run;

#[derive(Parser)]
#[command(name = "festival-node", version, about = "Festival Chat headless node")]
struct Cli {
    /// Where the node keeps its database (default: the platform's data dir).
    #[arg(long, global = true, env = "FESTIVAL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create this device's identity and pick a display name.
    Init {
        #[arg(long)]
        name: String,
    },
    /// Show this device's PeerId and fingerprint.
    Whoami,
    /// Save a message to a room; it goes out when peers are reachable.
    Send {
        #[arg(long, default_value = "festival")]
        room: String,
        /// The message text.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Save the organiser's announcement; it goes out when peers are
    /// reachable, ahead of room traffic, and is shown pinned until its end.
    /// Only for the organiser's own node (the festival's `--organiser` key
    /// is this node's PeerId). Run it while the node is stopped, or type
    /// `/announce UNTIL TEXT` in `festival-node run`.
    Announce {
        /// When it ends: a time of day `HH:MM` (UTC, the next one to come),
        /// or a time from now such as `45m`, `2h`, `1d`.
        #[arg(long)]
        until: String,
        /// The festival's message lifetime in hours (as `run` is given it):
        /// an announcement ends within it.
        #[arg(long, env = "FESTIVAL_MESSAGE_LIFETIME_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..))]
        message_lifetime_hours: u64,
        /// The announcement's text.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Join the festival on the LAN and chat: prints events, reads lines
    /// (a line is a message; /help lists commands). Runs until stopped.
    Run {
        /// Display name (required on first start).
        #[arg(long)]
        name: Option<String>,
        /// Festival id: only nodes of the same festival link up.
        #[arg(long, default_value = "festival")]
        festival: String,
        /// Network interface to use (repeatable; default: all).
        #[arg(long = "interface")]
        interfaces: Vec<String>,
        /// TCP port for signaling (default: any free port, advertised via mDNS).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// UDP port for WebRTC (default: any free port).
        #[arg(long, default_value_t = 0)]
        udp_port: u16,
        /// Most links at once (default: from the power policy).
        #[arg(long)]
        peer_limit: Option<usize>,
        /// `mains` or `battery:NN` instead of reading the battery.
        #[arg(long, value_parser = parse_power)]
        power: Option<PowerState>,
        /// Offer loopback addresses to peers too (several nodes on one host).
        #[arg(long)]
        loopback: bool,
        /// Print events as JSON lines.
        #[arg(long)]
        json: bool,
        /// A festival relay (`wss://host[:port]`, or `ws://host:port` on a
        /// trusted network; path `/v1/relay` by default) for when direct
        /// paths fail. None is contacted unless given. Repeat it (or list
        /// them, comma-separated, in FESTIVAL_RELAY) for several instances:
        /// the node keeps one session and moves to the next when its
        /// instance dies or stalls; a name with several addresses counts as
        /// several.
        #[arg(long, env = "FESTIVAL_RELAY", value_delimiter = ',')]
        relay: Vec<String>,
        /// PEM file of CA certificates to trust for the relay's `wss://`, on
        /// top of the built-in roots (a self-hosted relay's own CA).
        #[arg(long, env = "FESTIVAL_RELAY_CA", value_name = "FILE")]
        relay_ca: Option<PathBuf>,
        /// Pin the relay's identity: its PeerId (64 hex digits, as it logs
        /// at start). A relay that cannot prove this key is refused, whatever
        /// its certificate says.
        #[arg(long, env = "FESTIVAL_RELAY_ID", value_name = "PEER_ID")]
        relay_id: Option<String>,
        /// The festival's organiser key (a PeerId, 64 hex digits; `self`
        /// for this node's own, on the organiser's venue box): the only
        /// author whose announcements are taken, passed on and shown.
        /// Without it none are.
        #[arg(long, env = "FESTIVAL_ORGANISER", value_name = "PEER_ID")]
        organiser: Option<String>,
        /// Disk the store may use, in MiB (database and its log together;
        /// expired messages go first, then others' mail, then the oldest).
        #[arg(long, env = "FESTIVAL_DISK_BUDGET_MB", default_value_t = 512, value_parser = clap::value_parser!(u64).range(64..))]
        disk_budget_mb: u64,
        /// The festival's message lifetime in hours: older messages are not
        /// taken, not served and deleted (default: a week).
        #[arg(long, env = "FESTIVAL_MESSAGE_LIFETIME_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..))]
        message_lifetime_hours: u64,
    },
    /// Show the latest messages of a room.
    History {
        #[arg(long, default_value = "festival")]
        room: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let dir = cli.data_dir.unwrap_or_else(default_data_dir);
    if let Cmd::Run {
        name,
        festival,
        interfaces,
        port,
        udp_port,
        peer_limit,
        power,
        loopback,
        json,
        relay,
        relay_ca,
        relay_id,
        organiser,
        disk_budget_mb,
        message_lifetime_hours,
    } = cli.cmd
    {
        let organiser = match organiser.as_deref().map(str::trim).unwrap_or_default() {
            "" => None,
            "self" => {
                // This node's key; on a first start, made now from --name
                // (as the start itself would).
                let node = LocalNode::open(&dir).await?;
                let me = match (node.store.identity().await?, &name) {
                    (Some(me), _) => Ok(me.identity.peer_id()),
                    (None, Some(name)) => node.init(name).await.map_err(anyhow::Error::from),
                    (None, None) => Err(anyhow::anyhow!("--organiser self: no identity yet; give --name NAME")),
                };
                node.store.close().await;
                Some(me?)
            }
            key => Some(parse_key(key, "--organiser", "an organiser key", "the organiser's PeerId")?),
        };
        let retention = festival_node::retention::Retention::with_limits(disk_budget_mb, message_lifetime_hours);
        let cfg = NodeConfig {
            name,
            festival,
            interfaces,
            signaling_port: port,
            udp_port,
            peer_limit,
            power: power.map_or(PowerConfig::Auto, PowerConfig::Fixed),
            loopback_candidates: loopback,
            relay_url: Some(relay.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).collect::<Vec<_>>().join(" "))
                .filter(|r| !r.is_empty()),
            relay_ca: relay_ca.filter(|p| !p.as_os_str().is_empty()),
            relay_id: parse_relay_id(relay_id.as_deref().unwrap_or_default())?,
            organiser,
            retention,
            ..NodeConfig::new(dir)
        };
        return run::run(cfg, json).await;
    }
    let node = LocalNode::open(&dir).await?;
    match cli.cmd {
        Cmd::Run { .. } => unreachable!("handled above"),
        Cmd::Init { name } => {
            let peer = node.init(&name).await?;
            println!("identity created for {name}");
            println!("peer id:     {peer}");
            println!("fingerprint: {}", peer.fingerprint());
            println!("data dir:    {}", dir.display());
        }
        Cmd::Whoami => {
            let me = node.store.identity().await?.context("no identity yet: run `festival-node init --name NAME`")?;
            let peer = me.identity.peer_id();
            println!("name:        {}", me.name);
            println!("peer id:     {peer}");
            println!("fingerprint: {}", peer.fingerprint());
            println!("data dir:    {}", dir.display());
        }
        Cmd::Send { room, text } => {
            let id = node.send(&room, &text.join(" ")).await?;
            println!("saved {id}");
        }
        Cmd::Announce { until, message_lifetime_hours, text } => {
            let until = run::parse_until(&until, festival_node::clock::now_ms())?;
            let lifetime_ms = message_lifetime_hours.saturating_mul(3_600_000);
            let id = node.announce(&text.join(" "), until, lifetime_ms).await?;
            println!("saved {id}");
        }
        Cmd::History { room, limit } => {
            for m in node.history(&room, limit).await? {
                let who = if m.mine { "you".to_owned() } else { m.sender.label() };
                let text = match &m.body {
                    festival_node::runtime::MessageBody::Text { text }
                    | festival_node::runtime::MessageBody::Direct { text, .. } => text.clone(),
                    festival_node::runtime::MessageBody::Group { text, .. } => format!("[group] {text}"),
                    festival_node::runtime::MessageBody::GroupMembers { name, members, .. } => {
                        format!("[group] made \"{name}\" ({} members)", members.len())
                    }
                    festival_node::runtime::MessageBody::GroupAdded { name, added, .. } => {
                        format!("[group] added {} people to \"{name}\"", added.len())
                    }
                    festival_node::runtime::MessageBody::GroupLeft { .. } => "[group] left".to_owned(),
                    festival_node::runtime::MessageBody::Photo(p) => {
                        format!("[photo {}x{}] {}", p.width, p.height, p.caption)
                    }
                    festival_node::runtime::MessageBody::Meetup(c) => format!(
                        "meet at {} at {} UTC ({} coming, {} can't) [meet-up {}]",
                        c.place,
                        &format_time(c.at)[..5],
                        c.coming,
                        c.cant,
                        m.id
                    ),
                };
                println!("{}  {who}: {text}", format_time(m.created_at));
            }
        }
    }
    node.store.close().await;
    Ok(())
}

/// A relay's PeerId; empty (an unset `FESTIVAL_RELAY_ID=`) pins nothing.
fn parse_relay_id(s: &str) -> anyhow::Result<Option<PeerId>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    Ok(Some(parse_key(s, "--relay-id", "a relay id", "the relay's PeerId")?))
}

/// A PeerId given on the command line (a valid public key).
fn parse_key(s: &str, flag: &str, noun: &str, what: &str) -> anyhow::Result<PeerId> {
    s.to_ascii_lowercase()
        .parse()
        .ok()
        .filter(festival_core::identity::is_valid_key)
        .with_context(|| format!("{flag} {s:?} is not {noun}: give {what}, 64 hex digits"))
}

/// `HH:MM:SS` UTC: enough to follow a conversation in a terminal.
fn format_time(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}
