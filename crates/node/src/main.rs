//! `festival-node`: the headless Festival Chat node. Thin: parse arguments,
//! set up logging, call the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use festival_node::local::LocalNode;
use festival_node::paths::default_data_dir;

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
    let node = LocalNode::open(&dir).await?;
    match cli.cmd {
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
        Cmd::History { room, limit } => {
            for line in node.history(&room, limit).await? {
                let who = if line.mine {
                    "you".to_owned()
                } else {
                    line.author_name.clone().unwrap_or_else(|| line.author.fingerprint())
                };
                println!("{}  {who}: {}", format_time(line.created_at), line.text);
            }
        }
    }
    node.store.close().await;
    Ok(())
}

/// `HH:MM:SS` UTC: enough to follow a conversation in a terminal.
fn format_time(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}
