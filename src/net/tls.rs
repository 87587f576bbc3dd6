//! HTTPS: rustls server connections driven by the event loops (no thread per connection), and a
//! certificate that is read again when its files change, so renewals need no restart.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use mio::net::TcpStream;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};

/// TLS records waiting to be sent, per connection, before plaintext writes pause.
const TLS_BUFFER: usize = 64 * 1024;
/// A TLS handshake record starts with this byte; anything else on a TLS port is not TLS.
const HANDSHAKE_RECORD: u8 = 0x16;
/// What a plain-HTTP client gets on a TLS port before the connection is closed.
const NOT_TLS: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n\
Connection: close\r\n\r\nThis port speaks HTTPS: use https://.\r\n";

/// The certificate and key in use, and the files they come from.
#[derive(Debug)]
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last read.
    read_at: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads a PEM certificate chain and its private key, and checks they belong together.
fn read_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .with_context(|| format!("--tls-cert {}", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--tls-cert {}: not a PEM certificate", cert_path.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "--tls-cert {}: no certificate in the file",
        cert_path.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_path).with_context(|| {
        format!(
            "--tls-key {}: no PEM private key in the file",
            key_path.display()
        )
    })?;
    let signing = ring::default_provider()
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("--tls-key {}: unusable key", key_path.display()))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().with_context(|| {
        format!(
            "--tls-key {} does not belong to --tls-cert {}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    Ok(pair)
}

impl Certificates {
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<Certificates>> {
        let stamps = (modified(cert_path), modified(key_path));
        let pair = read_pair(cert_path, key_path)?;
        Ok(Arc::new(Certificates {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(Arc::new(pair)),
            read_at: Mutex::new(stamps),
        }))
    }

    /// Reads the files again if either changed since they were last read. `None`: unchanged;
    /// `Some(Err)`: a new certificate that cannot be used (the old one keeps serving).
    pub fn reload_if_changed(&self) -> Option<anyhow::Result<()>> {
        let stamps = (modified(&self.cert_path), modified(&self.key_path));
        let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
        if *read_at == stamps {
            return None;
        }
        // Whatever comes of it, these files are not read again until they change again.
        *read_at = stamps;
        Some(read_pair(&self.cert_path, &self.key_path).map(|pair| {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        }))
    }

    /// The server settings: TLS 1.2 and 1.3, HTTP/1.1, this certificate (as it is at each
    /// handshake).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS settings")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// One HTTPS connection: the socket and its TLS state. Reads give plaintext; writes take
/// plaintext and send records as the socket takes them.
pub struct TlsStream {
    pub tcp: TcpStream,
    tls: ServerConnection,
    /// Nothing has arrived yet: the first byte says whether it is TLS at all.
    first: bool,
}

impl TlsStream {
    pub fn new(tcp: TcpStream, config: &Arc<ServerConfig>) -> io::Result<TlsStream> {
        let mut tls = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(TLS_BUFFER));
        Ok(TlsStream {
            tcp,
            tls,
            first: true,
        })
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Sends the TLS records waiting. Ok(true): none is left; Ok(false): the socket is full.
    pub fn push(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// A plain-HTTP client (or anything else) on the TLS port: told so, in plain text, and dropped.
    fn refuse_plaintext(&mut self) -> io::Error {
        // What it sent is read first: closing with unread bytes would reset the connection and
        // could take the answer with it.
        let mut scratch = [0u8; 4096];
        for _ in 0..4 {
            if !matches!(self.tcp.read(&mut scratch), Ok(n) if n > 0) {
                break;
            }
        }
        let _ = self.tcp.write(NOT_TLS);
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
        io::Error::new(io::ErrorKind::InvalidData, "not TLS")
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the end of what it sent all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.first {
                let mut byte = [0u8; 1];
                match self.tcp.peek(&mut byte)? {
                    0 => return Ok(0),
                    _ if byte[0] != HANDSHAKE_RECORD => return Err(self.refuse_plaintext()),
                    _ => self.first = false,
                }
            }
            if self.tls.read_tls(&mut self.tcp)? == 0 {
                return Ok(0);
            }
            if let Err(e) = self.tls.process_new_packets() {
                // The alert that says why, if the socket takes it.
                let _ = self.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake answers go out as soon as they are made.
            self.push()?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push()?;
        let n = self.tls.writer().write(buf)?;
        self.push()?;
        if n == 0 && !buf.is_empty() {
            // The records already made wait for the socket: come back when it is writable.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push().map(|_| ())
    }
}
