//! Getting a byte stream to the server: DNS (SRV, then A/AAAA), TCP within
//! a time budget, STARTTLS, and the channel binding data of the TLS session.
//!
//! Failures are classified ([`TransportError`]) so that the first login can
//! explain them at once (wrong domain, DNS down, nothing listening, host not
//! answering) instead of retrying silently.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use rustls_pki_types::ServerName;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::rustls::{ClientConfig, ProtocolVersion};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts,
    XmppStreamElement, initiate_stream,
};

use super::sasl::Channel;
use super::scram::{CbType, tls_server_end_point};

/// Where the server is.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// The JID's domain: SRV `_xmpp-client._tcp`, else the domain on 5222.
    Srv {
        /// The XMPP domain.
        domain: String,
    },
    /// A given host (name or address) and port.
    Host {
        /// Name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
}

/// Time limits for finding and reaching the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// For all DNS queries of one attempt.
    pub(crate) dns: Duration,
    /// For the TCP connection (all addresses).
    pub(crate) connect: Duration,
}

impl Budget {
    /// The first login: a wrong domain or an unreachable server must be
    /// reported within 5 s in total.
    pub(crate) const FIRST: Self = Self {
        dns: Duration::from_secs(2),
        connect: Duration::from_millis(2500),
    };
    /// Reconnecting after having been online: more patience.
    pub(crate) const LATER: Self = Self {
        dns: Duration::from_secs(10),
        connect: Duration::from_secs(20),
    };
}

/// Why the TCP connection failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    /// RST: nothing listens on the port.
    Refused,
    /// No answer within the budget.
    TimedOut(Duration),
    /// No route to the network.
    NetworkUnreachable,
    /// No route to the host.
    HostUnreachable,
    /// Anything else, as the OS says it.
    Other(String),
}

/// Why we have no stream to the server.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// The domain does not exist (NXDOMAIN for SRV and address lookups).
    DomainNotFound { domain: String },
    /// The domain exists but has no XMPP service: an SRV record `.`
    /// (RFC 6120, 3.2.1), or neither SRV nor address records.
    NoXmppService { domain: String },
    /// A server host (given, or named by an SRV record) has no address:
    /// it does not exist (`nx`) or has no A/AAAA record.
    NoAddress { host: String, nx: bool },
    /// A DNS lookup failed (no answer, no configuration, a server error).
    Dns { name: String, reason: String },
    /// The TCP connection failed.
    Connect {
        address: String,
        reason: ConnectFailure,
    },
    /// The server offers no STARTTLS.
    NoStartTls,
    /// The XML stream or TLS failed (certificate errors included).
    Stream(tokio_xmpp::Error),
}

impl From<tokio_xmpp::Error> for TransportError {
    fn from(error: tokio_xmpp::Error) -> Self {
        Self::Stream(error)
    }
}

impl From<std::io::Error> for TransportError {
    fn from(error: std::io::Error) -> Self {
        Self::Stream(error.into())
    }
}

/// A DNS resolver: the system's, or one server (for tests, or a network
/// whose configured resolver is broken).
fn resolver(dns_server: Option<SocketAddr>, timeout: Duration) -> Result<TokioResolver, String> {
    let mut builder = match dns_server {
        Some(server) => {
            let mut name_server = NameServerConfig::udp(server.ip());
            for connection in &mut name_server.connections {
                connection.port = server.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("the system's DNS configuration cannot be read ({e})"))?,
    };
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    builder
        .build()
        .map_err(|e| format!("the DNS resolver cannot start ({e})"))
}

fn dns_reason(error: &NetError) -> String {
    match error {
        NetError::Timeout => "the DNS server did not answer in time".to_owned(),
        other => other.to_string(),
    }
}

/// Opens a TCP connection to the server for `target` within `budget`.
pub(crate) async fn tcp(
    target: &Target,
    dns_server: Option<SocketAddr>,
    budget: Budget,
) -> Result<TcpStream, TransportError> {
    let dns = |name: &str, reason: String| TransportError::Dns {
        name: name.to_owned(),
        reason,
    };
    let (host, port) = match target {
        Target::Host { host, port } => (host.clone(), *port),
        Target::Srv { domain } => {
            if let Ok(ip) = domain.parse::<IpAddr>() {
                return connect_any(&domain.clone(), &[SocketAddr::new(ip, 5222)], budget).await;
            }
            let resolver = resolver(dns_server, budget.dns).map_err(|e| dns(domain, e))?;
            let name = format!("_xmpp-client._tcp.{domain}");
            let query = format!("{name}.");
            let lookup =
                tokio::time::timeout(budget.dns, resolver.srv_lookup(query.as_str())).await;
            match lookup {
                Err(_) => {
                    return Err(dns(
                        &name,
                        "the DNS server did not answer in time".to_owned(),
                    ));
                }
                Ok(Ok(lookup)) => {
                    let mut records: Vec<_> = lookup
                        .answers()
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::SRV(srv) => Some(srv.clone()),
                            _ => None,
                        })
                        .collect();
                    // RFC 6120, 3.2.1: a single "." target means "no service here".
                    if records.len() == 1 && records.iter().all(|r| r.target.is_root()) {
                        return Err(TransportError::NoXmppService {
                            domain: domain.clone(),
                        });
                    }
                    records.retain(|r| !r.target.is_root());
                    // Lowest priority first, then the heaviest (RFC 2782,
                    // without the random part).
                    records.sort_by_key(|r| (r.priority, std::cmp::Reverse(r.weight)));
                    if !records.is_empty() {
                        let mut first_error = None;
                        for record in records {
                            let host = record.target.to_ascii();
                            let host = host.trim_end_matches('.');
                            match resolve_and_connect(&resolver, host, record.port, budget).await {
                                Ok(stream) => return Ok(stream),
                                Err(e) => {
                                    first_error.get_or_insert(e);
                                }
                            }
                        }
                        return Err(
                            first_error.unwrap_or_else(|| TransportError::NoXmppService {
                                domain: domain.clone(),
                            }),
                        );
                    }
                }
                Ok(Err(e)) if e.is_no_records_found() || e.is_nx_domain() => {}
                Ok(Err(e)) => return Err(dns(&name, dns_reason(&e))),
            }
            // No SRV record: the domain itself, on the default port.
            return match resolve_and_connect(&resolver, domain, 5222, budget).await {
                Err(TransportError::NoAddress { nx: true, .. }) => {
                    Err(TransportError::DomainNotFound {
                        domain: domain.clone(),
                    })
                }
                Err(TransportError::NoAddress { nx: false, .. }) => {
                    Err(TransportError::NoXmppService {
                        domain: domain.clone(),
                    })
                }
                other => other,
            };
        }
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return connect_any(
            &format!("{host}:{port}"),
            &[SocketAddr::new(ip, port)],
            budget,
        )
        .await;
    }
    let resolver = resolver(dns_server, budget.dns).map_err(|e| dns(&host, e))?;
    resolve_and_connect(&resolver, &host, port, budget).await
}

async fn resolve_and_connect(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    budget: Budget,
) -> Result<TcpStream, TransportError> {
    let name = format!("{host}.");
    let addresses: Vec<SocketAddr> =
        match tokio::time::timeout(budget.dns, resolver.lookup_ip(name.as_str())).await {
            Err(_) => {
                return Err(TransportError::Dns {
                    name: host.to_owned(),
                    reason: "the DNS server did not answer in time".to_owned(),
                });
            }
            Ok(Ok(ips)) => ips.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
            Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => {
                return Err(TransportError::NoAddress {
                    host: host.to_owned(),
                    nx: e.is_nx_domain(),
                });
            }
            Ok(Err(e)) => {
                return Err(TransportError::Dns {
                    name: host.to_owned(),
                    reason: dns_reason(&e),
                });
            }
        };
    if addresses.is_empty() {
        return Err(TransportError::NoAddress {
            host: host.to_owned(),
            nx: false,
        });
    }
    connect_any(&format!("{host}:{port}"), &addresses, budget).await
}

/// Connects to the first of `addresses` that answers (all at once, as
/// "happy eyeballs" would), within the budget.
async fn connect_any(
    shown: &str,
    addresses: &[SocketAddr],
    budget: Budget,
) -> Result<TcpStream, TransportError> {
    let attempts = addresses.iter().map(|a| Box::pin(TcpStream::connect(*a)));
    let outcome = tokio::time::timeout(budget.connect, futures::future::select_ok(attempts)).await;
    match outcome {
        Ok(Ok((stream, _))) => {
            // Each stanza is written as it is sent: with Nagle's algorithm
            // a small stanza waited for the peer's delayed ACK, about 40 ms
            // each way (issue 16 measured 88 ms chat round trips through a
            // server on loopback, 0.3 ms without). If the option cannot be
            // set the connection still works, only slower.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY not set: {e}");
            }
            Ok(stream)
        }
        Ok(Err(e)) => Err(TransportError::Connect {
            address: shown.to_owned(),
            reason: match e.kind() {
                std::io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
                std::io::ErrorKind::NetworkUnreachable => ConnectFailure::NetworkUnreachable,
                std::io::ErrorKind::HostUnreachable => ConnectFailure::HostUnreachable,
                std::io::ErrorKind::TimedOut => ConnectFailure::TimedOut(budget.connect),
                _ => ConnectFailure::Other(e.to_string()),
            },
        }),
        Err(_) => Err(TransportError::Connect {
            address: shown.to_owned(),
            reason: ConnectFailure::TimedOut(budget.connect),
        }),
    }
}

/// A stream ready for SASL: the server's stream header was received, its
/// features are next.
pub(crate) struct Connected<Io> {
    /// The stream, features not yet read.
    pub(crate) pending: PendingFeaturesRecv<Io>,
    /// What SASL can bind to.
    pub(crate) channel: Channel,
    /// The data of each computed binding type.
    pub(crate) bindings: Vec<(CbType, Vec<u8>)>,
    /// The TLS version, e.g. "TLSv1.3" (none without TLS).
    pub(crate) tls_version: Option<String>,
}

fn header(domain: &str) -> StreamHeader<'static> {
    StreamHeader {
        to: Some(Cow::Owned(domain.to_owned())),
        from: None,
        id: None,
    }
}

/// Opens the XML stream over plain TCP (loopback only; the caller checked).
pub(crate) async fn plaintext(
    tcp: TcpStream,
    domain: &str,
    timeouts: Timeouts,
) -> Result<Connected<BufStream<TcpStream>>, TransportError> {
    let pending = initiate_stream(
        BufStream::new(tcp),
        tokio_xmpp::parsers::ns::JABBER_CLIENT,
        header(domain),
        timeouts,
    )
    .await?;
    Ok(Connected {
        pending,
        channel: Channel::default(),
        bindings: Vec::new(),
        tls_version: None,
    })
}

/// STARTTLS (RFC 6120, 5), verifying the server's certificate for `domain`
/// with `tls`, then a new XML stream over TLS.
pub(crate) async fn starttls(
    tcp: TcpStream,
    domain: &str,
    tls: Arc<ClientConfig>,
    timeouts: Timeouts,
) -> Result<Connected<BufStream<TlsStream<TcpStream>>>, TransportError> {
    let ns = tokio_xmpp::parsers::ns::JABBER_CLIENT;
    let stream = initiate_stream(BufStream::new(tcp), ns, header(domain), timeouts).await?;
    let (features, mut stream) = stream
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(tokio_xmpp::Error::from)?;
    if !features.can_starttls() {
        return Err(TransportError::NoStartTls);
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
                return Err(tokio_xmpp::Error::Disconnected.into());
            }
        }
    }
    let tcp = stream.into_inner().into_inner();
    let name = ServerName::try_from(domain.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tls = TlsConnector::from(tls).connect(name, tcp).await?;
    let (channel, bindings, tls_version) = {
        let (_, connection) = tls.get_ref();
        let version = connection.protocol_version();
        let tls13 = version == Some(ProtocolVersion::TLSv1_3);
        let mut bindings = Vec::new();
        // RFC 9266: defined for TLS 1.3 (TLS 1.2 only with the extended
        // master secret, which we do not check, so not used there).
        if tls13
            && let Ok(data) =
                connection.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
        {
            bindings.push((CbType::TlsExporter, data));
        }
        if let Some(data) = connection
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| tls_server_end_point(cert.as_ref()))
        {
            bindings.push((CbType::TlsServerEndPoint, data));
        }
        let channel = Channel {
            tls: true,
            tls13,
            types: bindings.iter().map(|(cb, _)| *cb).collect(),
        };
        let shown = version.map(|v| match v {
            ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("TLS version 0x{:04x}", u16::from(other)),
        });
        (channel, bindings, shown)
    };
    let pending = initiate_stream(BufStream::new(tls), ns, header(domain), timeouts).await?;
    Ok(Connected {
        pending,
        channel,
        bindings,
        tls_version,
    })
}
