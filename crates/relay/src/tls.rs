//! Optional TLS termination (`tls_cert` + `tls_key`): `wss://`, and
//! `/healthz` and `/metrics` over HTTPS, on the one listening port.
//!
//! rustls on aws-lc-rs (as the node: one crypto library in the workspace,
//! no ring) through tokio-rustls, under the same `axum::serve` as plain
//! HTTP: [`TlsListener`] is an axum `Listener` whose connections are already
//! past the handshake. Each handshake runs in a task of its own, with a
//! deadline, so a client that stalls or sends garbage holds up nobody; a
//! failed or timed-out handshake is counted as the rejection `tls_handshake`.
//! (axum-server would do the same with one more dependency and its own
//! shutdown handling; this keeps axum's graceful shutdown as it is.)
//!
//! The certificate is read once at start: after renewing it, restart the
//! relay (nodes reconnect by themselves within their backoff).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::metrics::Metrics;

/// Handshakes in progress at once. Past this the relay stops accepting for
/// a moment (new connections wait in the kernel's backlog) instead of
/// holding an unbounded number of half-open TLS sessions.
const MAX_HANDSHAKES: usize = 1_024;
/// Connections past their handshake that axum has not taken yet.
const READY_QUEUE: usize = 64;
/// The rejection label of a failed or timed-out handshake.
pub const HANDSHAKE_REJECTION: &str = "tls_handshake";

/// The rustls server settings from a PEM certificate chain (leaf first) and
/// a PEM private key (PKCS#8, PKCS#1 or SEC1). HTTP/1.1 only: the WebSocket
/// upgrade is an HTTP/1.1 request.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("tls_cert {}: no PEM certificate in it", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("tls_cert/tls_key {} / {}: {e}", cert.display(), key.display()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Start accepting on `listener`; handshakes that take longer than
    /// `deadline` are dropped.
    pub fn new(
        listener: TcpListener,
        cfg: Arc<ServerConfig>,
        metrics: Arc<Metrics>,
        deadline: Duration,
    ) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(cfg), metrics, deadline, tx));
        Ok(TlsListener { ready, local, acceptor })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Stop accepting (and free the port) once axum lets go of us.
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop is gone (it only ends when we are dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    metrics: Arc<Metrics>,
    deadline: Duration,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (tcp, addr) = tokio::select! {
            _ = ready.closed() => return,
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, metrics, ready) = (acceptor.clone(), metrics.clone(), ready.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(deadline, acceptor.accept(tcp)).await;
            drop(slot);
            match handshake {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, addr)).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "TLS handshake failed");
                    metrics.reject(HANDSHAKE_REJECTION);
                }
                Err(_) => {
                    tracing::debug!(%addr, "TLS handshake timed out");
                    metrics.reject(HANDSHAKE_REJECTION);
                }
            }
        });
    }
}

/// As axum's own TCP listener does: errors of one connection are skipped,
/// running out of file descriptors pauses accepting for a second.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
