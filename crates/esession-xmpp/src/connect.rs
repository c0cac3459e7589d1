//! Logging in: STARTTLS with the system's roots or a private CA, or plaintext
//! TCP only to a loopback server (for tests), behind an explicit option.

use std::borrow::Cow;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_xmpp::connect::{
    DnsConfig, ServerConnector, StartTlsServerConnector, TcpServerConnector,
};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::rustls::{ClientConfig, RootCertStore};
use tokio_xmpp::stanzastream::StanzaStream;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts,
    XmppStreamElement, initiate_stream,
};

/// How to protect the client-to-server connection.
#[derive(Clone, Debug)]
pub enum TransportSecurity {
    /// STARTTLS, verifying the server against the system's roots, or only
    /// against the certificates in `ca_file` (PEM) when given.
    StartTls {
        /// A private CA (PEM) to trust instead of the system's roots.
        ca_file: Option<PathBuf>,
    },
    /// No TLS at all. Refused unless the server address is a loopback address.
    DangerousPlaintextLoopbackOnly,
}

/// Where and as whom to log in.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Our bare (or full) JID.
    pub jid: String,
    /// The password. Never logged.
    pub password: String,
    /// Server host; default: the JID's domain (SRV lookup when no port is given).
    pub host: Option<String>,
    /// Server port; default 5222.
    pub port: Option<u16>,
    /// TLS policy.
    pub security: TransportSecurity,
}

impl core::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("jid", &self.jid)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// Why we could not even start connecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The JID is not a valid JID.
    #[error("invalid JID {0:?}")]
    InvalidJid(String),
    /// Plaintext was requested for a server that is not on loopback.
    #[error(
        "refusing an unencrypted connection to {0}: plaintext is only allowed to a loopback address"
    )]
    PlaintextNotLoopback(String),
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Depth of tokio-xmpp's incoming and outgoing stanza queues.
const QUEUE_DEPTH: usize = 16;

/// Creates the tokio-xmpp stanza stream for `options` (for
/// [`crate::EsessionClient::new`]). It connects in the background at once (in
/// the current tokio runtime) and reconnects by itself.
pub fn client(options: &ConnectOptions) -> Result<StanzaStream, ConnectError> {
    let jid = Jid::new(&options.jid).map_err(|_| ConnectError::InvalidJid(options.jid.clone()))?;
    let domain = jid.domain().as_str().to_owned();
    let dns = match (&options.host, options.port) {
        (Some(host), port) => DnsConfig::no_srv(host, port.unwrap_or(5222)),
        (None, Some(port)) => DnsConfig::no_srv(&domain, port),
        (None, None) => DnsConfig::srv_default_client(&domain),
    };
    let password = options.password.clone();
    match &options.security {
        TransportSecurity::StartTls { ca_file: None } => Ok(StanzaStream::new_c2s(
            StartTlsServerConnector::from(dns),
            jid,
            password,
            Timeouts::default(),
            QUEUE_DEPTH,
        )),
        TransportSecurity::StartTls {
            ca_file: Some(path),
        } => {
            let config = tls_config_with_ca(path)?;
            let connector = PrivateCaStartTls {
                dns,
                tls: Arc::new(config),
            };
            Ok(StanzaStream::new_c2s(
                connector,
                jid,
                password,
                Timeouts::default(),
                QUEUE_DEPTH,
            ))
        }
        TransportSecurity::DangerousPlaintextLoopbackOnly => {
            let host = options.host.clone().unwrap_or(domain);
            let port = options.port.unwrap_or(5222);
            if !is_loopback(&host, port) {
                return Err(ConnectError::PlaintextNotLoopback(host));
            }
            Ok(StanzaStream::new_c2s(
                TcpServerConnector::from(DnsConfig::no_srv(&host, port)),
                jid,
                password,
                Timeouts::default(),
                QUEUE_DEPTH,
            ))
        }
    }
}

/// Every address `host` resolves to is a loopback address.
fn is_loopback(host: &str, port: u16) -> bool {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

fn tls_config_with_ca(path: &PathBuf) -> Result<ClientConfig, ConnectError> {
    let bad = |reason: String| ConnectError::CaFile {
        path: path.clone(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad("no usable certificate".to_owned()));
    }
    Ok(ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// STARTTLS like tokio-xmpp's own connector, but trusting a private CA.
#[derive(Clone)]
struct PrivateCaStartTls {
    dns: DnsConfig,
    tls: Arc<ClientConfig>,
}

impl core::fmt::Debug for PrivateCaStartTls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PrivateCaStartTls")
            .field("dns", &self.dns)
            .finish_non_exhaustive()
    }
}

impl ServerConnector for PrivateCaStartTls {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), tokio_xmpp::Error> {
        let domain = jid.domain().as_str().to_owned();
        let header = || StreamHeader {
            to: Some(Cow::Owned(domain.clone())),
            from: None,
            id: None,
        };
        let tcp = BufStream::new(self.dns.resolve().await?);
        let stream = initiate_stream(tcp, ns, header(), timeouts).await?;
        let (features, mut stream) = stream.recv_features::<FallibleStreamElement>().await?;
        if !features.can_starttls() {
            return Err(tokio_xmpp::Error::Protocol(
                tokio_xmpp::error::ProtocolError::NoTls,
            ));
        }
        stream
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match stream
                .next()
                .await
                .map(|v| v.map(|v| v.into_read_error()).and_then(|v| v))
            {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                Some(Err(ReadError::ParseError(e))) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e).into());
                }
                None | Some(Err(ReadError::StreamFooterReceived)) => {
                    return Err(tokio_xmpp::Error::Disconnected);
                }
            }
        }
        let tcp = stream.into_inner().into_inner();
        let name = ServerName::try_from(domain.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?;
        let binding = {
            let (_, connection) = tls.get_ref();
            match connection.protocol_version() {
                Some(tokio_xmpp::rustls::ProtocolVersion::TLSv1_3) => connection
                    .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
                    .map(ChannelBinding::TlsExporter)
                    .unwrap_or(ChannelBinding::None),
                _ => ChannelBinding::None,
            }
        };
        let stream = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((stream, binding))
    }
}
