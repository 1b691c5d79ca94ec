//! `festival-relay`: parse flags (over an optional TOML file), set up
//! logging, bind the sockets, run the relay until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use festival_relay::RelayConfig;

/// The Festival Chat relay: a mailbox node, a path between nodes that cannot
/// reach each other, a signaling relay and a STUN responder.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// TOML file with any `RelayConfig` field; flags override it.
    #[arg(long, env = "FESTIVAL_RELAY_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP/WebSocket address (default 127.0.0.1:8443).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// STUN UDP address (default 127.0.0.1:3478).
    #[arg(long, conflicts_with = "no_stun")]
    stun: Option<SocketAddr>,
    /// Do not answer STUN.
    #[arg(long)]
    no_stun: bool,
    /// TLS certificate chain (PEM): serve wss:// and HTTPS. Needs --tls-key.
    #[arg(long, env = "FESTIVAL_RELAY_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(long, env = "FESTIVAL_RELAY_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Store and identity (default ./relay-data).
    #[arg(long, env = "FESTIVAL_RELAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A cluster's shared store: a PostgreSQL URL (default: SQLite in the
    /// data dir).
    #[arg(long, env = "FESTIVAL_RELAY_STORE", value_name = "URL")]
    store: Option<String>,
    /// A cluster's bus: a Redis URL. Needs --store.
    #[arg(long, env = "FESTIVAL_RELAY_BUS", value_name = "URL")]
    bus: Option<String>,
    /// This instance's name in its cluster (default: host name and port).
    #[arg(long, env = "FESTIVAL_RELAY_INSTANCE")]
    instance: Option<String>,
    /// Worker threads (default 0: one per core).
    #[arg(long, env = "FESTIVAL_RELAY_THREADS")]
    threads: Option<usize>,
    /// Serve only nodes of this festival.
    #[arg(long)]
    festival: Option<String>,
    /// The festival's organiser key (its PeerId): the only author whose
    /// announcements are stored and passed on.
    #[arg(long, env = "FESTIVAL_ORGANISER", value_name = "PEER_ID")]
    organiser: Option<String>,
    #[arg(long)]
    max_connections: Option<usize>,
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Sockets not authenticated yet, in all.
    #[arg(long)]
    max_unauthenticated: Option<usize>,
    /// Sockets not authenticated yet, per IPv4 address or IPv6 /56.
    #[arg(long)]
    max_unauthenticated_per_prefix: Option<usize>,
    /// Frames per second per identity.
    #[arg(long)]
    frames_per_sec: Option<u32>,
    #[arg(long)]
    frames_burst: Option<u32>,
    /// Commits per second of what nodes send, at most; above it messages
    /// share commits.
    #[arg(long)]
    commits_per_sec: Option<u32>,
    /// Storage quota: messages kept per author.
    #[arg(long)]
    max_messages_per_author: Option<u64>,
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
}

fn config(args: &Args) -> anyhow::Result<RelayConfig> {
    let mut cfg = match &args.config {
        Some(path) => RelayConfig::from_file(path)?,
        None => RelayConfig::default(),
    };
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = args.$field.clone() { cfg.$field = v; } )* };
    }
    set!(listen, data_dir, max_connections, max_connections_per_ip, frames_per_sec, frames_burst);
    set!(max_messages_per_author, idle_timeout_secs, max_unauthenticated, max_unauthenticated_per_prefix, threads);
    set!(commits_per_sec);
    if let Some(url) = &args.store {
        cfg.store = Some(url.clone());
    }
    if let Some(url) = &args.bus {
        cfg.bus = Some(url.clone());
    }
    if let Some(name) = &args.instance {
        cfg.instance = Some(name.clone());
    }
    if let Some(f) = &args.festival {
        cfg.festival = Some(f.clone());
    }
    if let Some(o) = &args.organiser {
        cfg.organiser = Some(o.clone());
    }
    if let Some(p) = &args.tls_cert {
        cfg.tls_cert = Some(p.clone());
    }
    if let Some(p) = &args.tls_key {
        cfg.tls_key = Some(p.clone());
    }
    if let Some(s) = args.stun {
        cfg.stun = Some(s);
    }
    if args.no_stun {
        cfg.stun = None;
    }
    cfg.check()?;
    Ok(cfg)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cfg = config(&args)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if cfg.threads > 0 {
        runtime.worker_threads(cfg.threads);
    }
    runtime.enable_all().build().context("starting the runtime")?.block_on(serve(cfg))
}

async fn serve(cfg: RelayConfig) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let stun = match cfg.stun {
        Some(addr) => Some(tokio::net::UdpSocket::bind(addr).await.with_context(|| format!("binding STUN {addr}"))?),
        None => None,
    };
    // One line on stdout with the bound addresses (port 0 picks one), for
    // scripts and tests.
    let stun_addr = stun.as_ref().and_then(|s| s.local_addr().ok());
    println!(
        "{{\"listen\":\"{}\",\"stun\":{},\"tls\":{}}}",
        listener.local_addr()?,
        stun_addr.map_or("null".to_owned(), |a| format!("\"{a}\"")),
        cfg.tls_cert.is_some()
    );
    festival_relay::run(listener, stun, cfg, shutdown_signal()).await.context("relay failed")
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
