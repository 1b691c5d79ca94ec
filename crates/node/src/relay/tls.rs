//! TLS for the relay link (`wss://`), node side.
//!
//! rustls on the aws-lc-rs provider: aws-lc-rs is already in the node through
//! str0m (DTLS), so TLS adds rustls and no second crypto library (no ring).
//! The provider is passed explicitly, so nothing depends on a process-wide
//! default being installed.
//!
//! Trusted roots: Mozilla's list compiled in (webpki-roots), plus the CA
//! certificates the node was given for a self-hosted relay
//! (`--relay-ca FILE`, [`super::RelayClientConfig::extra_roots`]). Compiled-in
//! roots rather than the platform's store, on purpose: the node runs on
//! desktops today and on phones and bare venue boxes next, and the same list
//! everywhere means a relay that works for one device works for all (no
//! missing `ca-certificates` package on a minimal box, no platform verifier
//! to port to Android/iOS, no file or OS lookups at connect time). The price:
//! the list is as fresh as the binary, and a CA that only an organisation's
//! machines trust must be given with `--relay-ca`, which is what a festival
//! running its own relay does anyway.
//!
//! We do the TCP connect and the TLS handshake ourselves and hand the stream
//! to tokio-tungstenite, instead of enabling its TLS features: so a failed
//! handshake is told apart from a refused TCP connect and from an HTTP
//! refusal, and surfaces as [`RelayError::Tls`] with rustls's reason.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::RelayError;

/// The rustls client settings: compiled-in roots plus `extra_roots` (DER).
/// A certificate that does not parse is a [`RelayError::Tls`].
pub fn client_config(extra_roots: &[Vec<u8>]) -> Result<Arc<ClientConfig>, RelayError> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| RelayError::Tls(format!("an extra trusted certificate is unusable: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RelayError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Every certificate in a PEM file (a CA, or a bundle of them), as DER.
pub fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}

/// TLS over `io` to `host` (a DNS name or an IP address, without brackets).
/// A failure of TLS itself (the certificate, an alert, a peer that does not
/// speak TLS) is [`RelayError::Tls`]; a failure of the connection under it is
/// [`RelayError::Io`].
pub async fn handshake<IO>(cfg: Arc<ClientConfig>, host: &str, io: IO) -> Result<TlsStream<IO>, RelayError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| RelayError::Url(format!("{host}: not a host name TLS can check")))?;
    TlsConnector::from(cfg).connect(name, io).await.map_err(|e| match tls_reason(&e) {
        Some(reason) => RelayError::Tls(reason),
        None => RelayError::Io(format!("during the TLS handshake: {e}")),
    })
}

/// rustls's own error inside the I/O error tokio-rustls returns, in words.
fn tls_reason(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match inner {
        rustls::Error::InvalidCertificate(c @ rustls::CertificateError::UnknownIssuer) => format!(
            "the relay's certificate is not trusted: {c} (its CA is not a trusted root: a self-hosted \
             relay's CA is given with --relay-ca)"
        ),
        rustls::Error::InvalidCertificate(c) => format!("the relay's certificate is not trusted: {c}"),
        rustls::Error::InvalidMessage(_) => format!("{inner} (does the relay speak TLS? try ws://)"),
        other => other.to_string(),
    })
}

/// The socket under the WebSocket: plain TCP for `ws://`, TLS for `wss://`.
pub enum RelayStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for RelayStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RelayStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
