//! Logging in: STARTTLS with the system's roots or a private CA, or plaintext
//! TCP only to a loopback server (for tests), behind an explicit option.
//!
//! The stanza stream is tokio-xmpp's, but connecting and authenticating are
//! ours, with our own reconnector (see [`client`]):
//!
//! - DNS (SRV `_xmpp-client._tcp`, then the domain itself), TCP and
//!   STARTTLS in `transport`, within a time budget; until the first login
//!   succeeded, a domain that does not exist, a DNS failure or a server that
//!   cannot be reached is reported at once ([`LoginError::DomainNotFound`],
//!   [`LoginError::Unreachable`], ...), later reconnects keep retrying;
//! - SASL in `sasl` (which mechanisms, in which order, and what a failure
//!   means), `scram` (SCRAM-SHA-1/256/512 with or without channel binding)
//!   and `login` (the exchange over the stream): SCRAM before PLAIN, the
//!   strongest first, channel binding (`-PLUS`) with a type both sides
//!   support, falling back to the next mechanism when one fails for another
//!   reason than the credentials;
//! - a login the server refuses (wrong password, disabled account), a
//!   server certificate that fails verification (unknown issuer, wrong name,
//!   expired) or a server without TLS is reported as a [`LoginError`]
//!   instead of being retried forever.
//!
//! How a successful login went (mechanism, channel binding, TLS version) is
//! in [`LoginInfo`], from [`crate::EsessionClient::login_info`].

mod login;
pub mod pinning;
mod presented;
mod sasl;
mod scram;
mod transport;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::SinkExt;
pub use presented::PresentedCertificate;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::connect::tls_common::TlsConnectorError;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::sasl_cb;
use tokio_xmpp::rustls::client::WebPkiServerVerifier;
use tokio_xmpp::rustls::{CertificateError, ClientConfig, Error as TlsError, RootCertStore};
use tokio_xmpp::stanzastream::{Connection, StanzaStream, XmppStream};
use tokio_xmpp::xmlstream::{FallibleStreamElement, StreamHeader, Timeouts};

use self::login::{Credentials, Exchange};
use self::sasl::{Plan, Verdict};
use self::transport::{Budget, ConnectFailure, Connected, Target, TransportError};

/// How to protect the client-to-server connection.
#[derive(Clone, Debug)]
pub enum TransportSecurity {
    /// STARTTLS, verifying the server against the system's roots, or only
    /// against the certificates in `ca_file` (PEM) when given.
    StartTls {
        /// A private CA (PEM) to trust instead of the system's roots.
        ca_file: Option<PathBuf>,
    },
    /// STARTTLS, accepting exactly the server certificate whose SHA-256 is
    /// `sha256` (a self-signed certificate, issue 15): its name and dates are
    /// not checked, the TLS handshake is (see [`pinning`]).
    StartTlsPinned {
        /// The pinned certificate's SHA-256.
        sha256: [u8; 32],
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
    /// The DNS server to ask (UDP) instead of the system's resolvers: for
    /// tests, or a network whose configured resolver does not work.
    pub dns_server: Option<SocketAddr>,
}

impl core::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("jid", &self.jid)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("dns_server", &self.dns_server)
            .finish_non_exhaustive()
    }
}

/// Why we could not even start connecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The JID is not a valid JID.
    #[error("\"{0}\" is not a valid JID: it must look like user@example.org.")]
    InvalidJid(String),
    /// Plaintext was requested for a server that is not on loopback.
    #[error(
        "Refusing an unencrypted connection to {0}: plaintext is only allowed to a loopback address. \
         Use TLS (STARTTLS) for any other server."
    )]
    PlaintextNotLoopback(String),
    /// The CA file could not be read or holds no certificate.
    #[error("Cannot use the CA file {}: {reason}. Give a PEM file with the CA certificate.", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Depth of tokio-xmpp's incoming and outgoing stanza queues.
const QUEUE_DEPTH: usize = 16;

/// First wait before retrying a failed login; doubles up to [`MAX_RETRY_DELAY`]
/// (as tokio-xmpp's own c2s reconnector does).
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Longest wait between login attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// New connections one login may open because the server closed the stream
/// after a failed mechanism (RFC 6120, 6.4.5 lets it).
const MAX_SASL_CONNECTIONS: usize = 3;

/// One SASL mechanism that failed for a reason other than the credentials
/// (the next one was tried).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MechanismFailure {
    /// The SASL mechanism, e.g. `SCRAM-SHA-1-PLUS`.
    pub mechanism: String,
    /// The channel binding type it used, e.g. `tls-exporter`.
    pub channel_binding: Option<String>,
    /// What went wrong, for people.
    pub reason: String,
}

impl core::fmt::Display for MechanismFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.channel_binding {
            Some(cb) => write!(
                f,
                "{} with {cb} channel binding failed because {}",
                self.mechanism, self.reason
            ),
            None => write!(f, "{} failed because {}", self.mechanism, self.reason),
        }
    }
}

/// How the current connection logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginInfo {
    /// The SASL mechanism that succeeded, e.g. `SCRAM-SHA-1`.
    pub mechanism: String,
    /// The channel binding type, with a `-PLUS` mechanism.
    pub channel_binding: Option<String>,
    /// The TLS version, e.g. `TLSv1.3` (`None` on the plaintext loopback option).
    pub tls_version: Option<String>,
    /// Mechanisms that failed before, in order (e.g. a `-PLUS` mechanism
    /// whose channel binding the server does not support).
    pub earlier_failures: Vec<MechanismFailure>,
}

/// Why a TCP connection to the server failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectProblem {
    /// The host refused it: nothing listens on the port.
    Refused,
    /// No answer within this time: the host is down or a firewall drops it.
    TimedOut(Duration),
    /// The network is unreachable.
    NetworkUnreachable,
    /// The host is unreachable.
    HostUnreachable,
    /// Anything else, as the operating system says it.
    Other(String),
}

impl core::fmt::Display for ConnectProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Refused => {
                f.write_str("the connection was refused, so nothing listens on that port")
            }
            Self::TimedOut(after) => write!(
                f,
                "there was no answer within {:.1} s, so the host is down or a firewall drops the connection",
                after.as_secs_f64()
            ),
            Self::NetworkUnreachable => {
                f.write_str("the network is unreachable (is this computer online?)")
            }
            Self::HostUnreachable => f.write_str("there is no route to the host"),
            Self::Other(what) => f.write_str(what),
        }
    }
}

impl From<ConnectFailure> for ConnectProblem {
    fn from(failure: ConnectFailure) -> Self {
        match failure {
            ConnectFailure::Refused => Self::Refused,
            ConnectFailure::TimedOut(after) => Self::TimedOut(after),
            ConnectFailure::NetworkUnreachable => Self::NetworkUnreachable,
            ConnectFailure::HostUnreachable => Self::HostUnreachable,
            ConnectFailure::Other(what) => Self::Other(what),
        }
    }
}

/// Why logging in can never succeed with these settings: the server refused
/// our credentials, no authentication works, the server's TLS certificate
/// failed verification, or (before the first successful login) the server
/// cannot be found or reached. Retrying would only repeat it, so the
/// connection gives up (reported as a fatal [`crate::ClientEvent::Disconnected`]).
///
/// Each message says what happened, why, and what to do, in full sentences.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginError {
    /// SASL `<not-authorized/>` (RFC 6120, 6.5.10) to a mechanism without
    /// channel binding, or to one with a binding the server announced: the
    /// account does not exist or the password is wrong (servers do not say which).
    WrongCredentials,
    /// SASL `<account-disabled/>` (RFC 6120, 6.5.2).
    AccountDisabled,
    /// SASL `<credentials-expired/>` (RFC 6120, 6.5.3).
    CredentialsExpired,
    /// Another SASL failure that retrying cannot fix (`encryption-required`).
    Refused {
        /// The SASL defined condition, e.g. `encryption-required`.
        condition: String,
    },
    /// Every mechanism the server offers and we use failed, and the server
    /// never said the credentials are wrong: e.g. a channel binding it does
    /// not support, a mechanism it offers but cannot run, a SCRAM message we
    /// cannot use.
    MechanismsFailed {
        /// Each failure, in the order tried.
        failures: Vec<MechanismFailure>,
    },
    /// SCRAM: the server accepted our proof but could not prove that it
    /// knows the password (a wrong or missing server signature). It may be
    /// an impostor; nothing else was tried (PLAIN would send the password).
    ServerNotAuthenticated {
        /// The SCRAM mechanism.
        mechanism: String,
    },
    /// The server offers no SASL mechanism we use (SCRAM-SHA-512/256/1 with
    /// or without `-PLUS`, or PLAIN; never ANONYMOUS).
    NoMechanism {
        /// What it offers.
        offered: Vec<String>,
    },
    /// The server's TLS certificate failed verification (against the system's
    /// roots, or the CA file when one is given): we never sent the password.
    /// Retrying cannot help until the trust settings or the certificate change.
    UntrustedCertificate {
        /// The name the certificate was verified for: the JID's domain.
        domain: String,
        /// What is wrong with it.
        reason: CertificateProblem,
        /// Which certificate the server presented (subject and SHA-256), when
        /// the verifier could say.
        certificate: Option<PresentedCertificate>,
    },
    /// The server does not offer STARTTLS: we do not log in unencrypted.
    NoTls {
        /// The JID's domain.
        domain: String,
    },
    /// DNS says the JID's domain does not exist (before the first login).
    DomainNotFound {
        /// The JID's domain.
        domain: String,
    },
    /// The domain exists, but DNS lists no XMPP server for it and no
    /// address, or an SRV record saying "no service" (before the first login).
    NoXmppService {
        /// The JID's domain.
        domain: String,
    },
    /// The server host (given in the settings, or named by the domain's SRV
    /// record) has no address in DNS (before the first login).
    HostNotFound {
        /// The host name.
        host: String,
    },
    /// A DNS lookup failed: no answer, or no usable DNS configuration
    /// (before the first login).
    DnsFailed {
        /// The name looked up.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The TCP connection to the server failed (before the first login).
    Unreachable {
        /// `host:port`.
        address: String,
        /// Why.
        reason: ConnectProblem,
    },
}

impl core::fmt::Display for LoginError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongCredentials => f.write_str(
                "The server refused the login: the JID or the password is wrong \
                 (servers do not say which). Check both, then try again.",
            ),
            Self::AccountDisabled => f.write_str(
                "The server refused the login: the account is disabled. \
                 Ask the server's administrator.",
            ),
            Self::CredentialsExpired => f.write_str(
                "The server refused the login: the password has expired. Set a new one \
                 (for example with another client or on the server's web site), then try again.",
            ),
            Self::Refused { condition } => write!(
                f,
                "The server refused the login with the SASL condition {condition}. \
                 Trying again will not help; ask the server's administrator."
            ),
            Self::MechanismsFailed { failures } => {
                let each: Vec<String> = failures.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "Logging in failed: no authentication mechanism worked, and the server \
                     did not say that the password is wrong. {}. \
                     Ask the server's administrator which authentication mechanisms work.",
                    each.join("; ")
                )
            }
            Self::ServerNotAuthenticated { mechanism } => write!(
                f,
                "Login stopped: during {mechanism} the server could not prove that it knows \
                 the password, so it may not be the real server. The password itself was not \
                 sent. Check the network and tell the server's administrator."
            ),
            Self::NoMechanism { offered } => write!(
                f,
                "Logging in is impossible: the server offers no authentication mechanism \
                 this client uses (it offers {}; this client uses SCRAM-SHA-512, SCRAM-SHA-256 \
                 and SCRAM-SHA-1, with or without -PLUS, and PLAIN). Ask the server's \
                 administrator to enable SCRAM.",
                if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                }
            ),
            Self::UntrustedCertificate {
                domain,
                reason,
                certificate,
            } => write!(
                f,
                "The server's TLS certificate for {domain}{} is not trusted ({reason}): {}. \
                 The password was not sent. {}",
                presented_clause(certificate.as_ref()),
                reason.explanation(domain),
                reason.advice()
            ),
            Self::NoTls { domain } => write!(
                f,
                "The server for {domain} does not offer TLS (STARTTLS), so the connection would \
                 not be encrypted, and this client did not log in. The password was not sent. \
                 Ask the server's administrator to enable TLS; something on the network may \
                 also be removing it."
            ),
            Self::DomainNotFound { domain } => write!(
                f,
                "There is no server for {domain}: that domain does not exist in DNS. \
                 Check the part of the JID after the @ for typing errors, or give the server's \
                 host name and port."
            ),
            Self::NoXmppService { domain } => write!(
                f,
                "There is no XMPP service for {domain}: DNS lists no XMPP server (SRV record) \
                 and no address for it. Check the part of the JID after the @, or give the server's \
                 host name and port."
            ),
            Self::HostNotFound { host } => write!(
                f,
                "The server host {host} has no address in DNS. Check the host name in the \
                 settings; if it came from the DNS record of the JID's domain, tell the domain's \
                 administrator."
            ),
            Self::DnsFailed { name, reason } => write!(
                f,
                "Cannot look up {name} in DNS: {reason}. Check the network connection and the \
                 DNS settings, then try again."
            ),
            Self::Unreachable { address, reason } => write!(
                f,
                "Cannot connect to the XMPP server at {address}: {reason}. Check the host name \
                 and port, and that the server is running and reachable from this network."
            ),
        }
    }
}

impl std::error::Error for LoginError {}

/// ` (subject ..., SHA-256 ...)` for a certificate the verifier named, or
/// nothing: the middle of "The server's TLS certificate for DOMAIN ...".
pub fn presented_clause(certificate: Option<&PresentedCertificate>) -> String {
    certificate.map_or_else(String::new, |certificate| format!(" ({certificate})"))
}

/// Why a server certificate failed verification (from rustls's
/// `CertificateError`; the names are rustls's).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// Not issued by a certificate authority we trust: self-signed, or from a
    /// private CA that is not in the CA file (or no CA file was given).
    UnknownIssuer,
    /// A trusted certificate has the name of the certificate's issuer, but
    /// did not sign it (its key does not verify the signature): a different
    /// CA, or another self-signed certificate, with the same name. (rustls's
    /// `BadSignature` or `UnsupportedSignatureAlgorithmForPublicKey`.)
    BadSignature,
    /// Valid, but not for the server's domain.
    NotValidForName {
        /// The names the certificate is valid for, as rustls lists them (e.g.
        /// `DnsName("example.org")`; empty if rustls did not say).
        presented: Vec<String>,
    },
    /// Past its `notAfter` time (or this computer's clock is wrong).
    Expired,
    /// Before its `notBefore` time (or this computer's clock is wrong).
    NotValidYet,
    /// Revoked by its issuer.
    Revoked,
    /// Not the pinned certificate (`--server-cert`, `--pin`): the server
    /// presented another one, with this SHA-256 (lower-case hex).
    NotPinned {
        /// The presented certificate's SHA-256.
        presented: String,
    },
    /// Any other verification failure (a bad encoding, an unsupported
    /// signature algorithm, a certificate not meant for TLS servers, ...), as
    /// rustls names it.
    Other(String),
}

impl core::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownIssuer => f.write_str("UnknownIssuer"),
            Self::BadSignature => f.write_str("BadSignature"),
            Self::NotValidForName { presented } if presented.is_empty() => {
                f.write_str("NotValidForName")
            }
            Self::NotValidForName { presented } => {
                write!(f, "NotValidForName: it is for {}", presented.join(", "))
            }
            Self::Expired => f.write_str("Expired"),
            Self::NotValidYet => f.write_str("NotValidYet"),
            Self::Revoked => f.write_str("Revoked"),
            Self::NotPinned { .. } => f.write_str("not the pinned certificate"),
            Self::Other(what) => f.write_str(what),
        }
    }
}

impl CertificateProblem {
    /// What is wrong, as the end of a sentence about the certificate for
    /// `domain` (no final period).
    pub fn explanation(&self, domain: &str) -> String {
        match self {
            Self::UnknownIssuer => "it was not issued by a certificate authority this client \
                                    trusts (it may be self-signed, or from a private CA)"
                .to_owned(),
            Self::BadSignature => "a trusted certificate authority has the name of its issuer, \
                                   but did not sign it"
                .to_owned(),
            Self::NotValidForName { .. } => format!("it is not valid for {domain}"),
            Self::Expired => "it has expired (or this computer's clock is wrong)".to_owned(),
            Self::NotValidYet => {
                "it is not valid yet (or this computer's clock is wrong)".to_owned()
            }
            Self::Revoked => "its issuer has revoked it".to_owned(),
            // The certificate's SHA-256 is in the sentence already
            // ([`presented_clause`]), not repeated here.
            Self::NotPinned { .. } => "it is not the certificate you pinned".to_owned(),
            Self::Other(_) => "it failed verification".to_owned(),
        }
    }

    /// What to do about it, in full sentences.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::UnknownIssuer => {
                "If the server uses a private certificate authority, trust that CA's \
                 certificate (a CA file)."
            }
            Self::BadSignature => {
                "Trust the certificate of the CA that actually signed the server's certificate."
            }
            Self::NotValidForName { .. } => {
                "Check the domain of the JID: the server must present a certificate for its \
                 XMPP domain."
            }
            Self::Expired => {
                "The server's administrator must renew it; also check this computer's clock."
            }
            Self::NotValidYet => "Check this computer's clock.",
            Self::NotPinned { .. } => {
                "If the server's administrator replaced the certificate, get the new one (or its \
                 fingerprint) from them over a channel you trust and pin it; otherwise someone \
                 may be impersonating the server."
            }
            Self::Revoked | Self::Other(_) => "Tell the server's administrator.",
        }
    }
}

/// A client-to-server connection: a tokio-xmpp [`StanzaStream`] that connects
/// in the background and reconnects by itself, except after a [`LoginError`],
/// which it reports instead of retrying. Wrap it in
/// [`crate::EsessionClient::new`].
#[derive(Debug)]
pub struct XmppConnection {
    stream: StanzaStream,
    login_errors: mpsc::Receiver<LoginError>,
    login_info: watch::Receiver<Option<LoginInfo>>,
}

impl XmppConnection {
    /// The bare stanza stream, for using tokio-xmpp directly. A refused login
    /// is then not reported: the stream simply never comes online.
    pub fn into_stream(self) -> StanzaStream {
        self.stream
    }

    /// The stream, the channel on which a refused login is reported (once),
    /// and how the latest login went.
    pub(crate) fn into_parts(
        self,
    ) -> (
        StanzaStream,
        mpsc::Receiver<LoginError>,
        watch::Receiver<Option<LoginInfo>>,
    ) {
        (self.stream, self.login_errors, self.login_info)
    }
}

/// Creates the connection for `options` (for [`crate::EsessionClient::new`]).
/// It connects in the background at once (in the current tokio runtime) and
/// reconnects by itself, but gives up on a [`LoginError`].
pub fn client(options: &ConnectOptions) -> Result<XmppConnection, ConnectError> {
    let jid = Jid::new(&options.jid).map_err(|_| ConnectError::InvalidJid(options.jid.clone()))?;
    // SASL needs a username: a JID without a local part names a server.
    let Some(username) = jid.node().map(|n| n.as_str().to_owned()) else {
        return Err(ConnectError::InvalidJid(options.jid.clone()));
    };
    let domain = jid.domain().as_str().to_owned();
    let target = match (&options.host, options.port) {
        (Some(host), port) => Target::Host {
            host: host.clone(),
            port: port.unwrap_or(5222),
        },
        (None, Some(port)) => Target::Host {
            host: domain.clone(),
            port,
        },
        (None, None) => Target::Srv {
            domain: domain.clone(),
        },
    };
    let security = match &options.security {
        TransportSecurity::StartTls { ca_file: None } => {
            Security::StartTls(Arc::new(tls_config_with_system_roots()))
        }
        TransportSecurity::StartTls {
            ca_file: Some(path),
        } => Security::StartTls(Arc::new(tls_config_with_ca(path)?)),
        TransportSecurity::StartTlsPinned { sha256 } => {
            Security::StartTls(Arc::new(pinning::tls_config_pinned(*sha256)))
        }
        TransportSecurity::DangerousPlaintextLoopbackOnly => {
            let host = options.host.clone().unwrap_or_else(|| domain.clone());
            let port = options.port.unwrap_or(5222);
            if !is_loopback(&host, port) {
                return Err(ConnectError::PlaintextNotLoopback(host));
            }
            Security::Plaintext
        }
    };
    let connector = Connector {
        target,
        dns_server: options.dns_server,
        security,
        domain,
    };
    let account = Account {
        jid,
        username,
        password: options.password.clone(),
    };
    let (report, login_errors) = mpsc::channel(1);
    let (info, login_info) = watch::channel(None);
    let reconnector = reconnector(connector, account, report, Arc::new(info));
    Ok(XmppConnection {
        stream: StanzaStream::new(reconnector, QUEUE_DEPTH),
        login_errors,
        login_info,
    })
}

/// Who logs in.
#[derive(Clone)]
struct Account {
    /// As given (bare, or full to ask for a resource).
    jid: Jid,
    /// The JID's local part.
    username: String,
    /// Never logged.
    password: String,
}

#[derive(Clone)]
enum Security {
    StartTls(Arc<ClientConfig>),
    Plaintext,
}

/// Where the server is and how to talk to it.
#[derive(Clone)]
struct Connector {
    target: Target,
    dns_server: Option<SocketAddr>,
    security: Security,
    /// The JID's domain (TLS name, stream `to`).
    domain: String,
}

/// What tokio-xmpp calls to get a new authenticated (not yet bound) stream.
type Reconnector = Box<dyn FnMut(Option<String>, oneshot::Sender<Connection>) + Send + 'static>;

/// Why one login attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// Retrying cannot help.
    Fatal(LoginError),
    /// The server cannot be found or reached: fatal until the first login
    /// succeeded (the settings are probably wrong), retried afterwards (the
    /// network is probably down for a while).
    Unreachable(LoginError),
    /// A later attempt may succeed.
    Transient,
}

/// Our replacement for the reconnector of tokio-xmpp 6's
/// `StanzaStream::new_c2s`, which retries every failed login forever (a wrong
/// password or an untrusted server certificate included) without telling
/// anyone. Each call spawns a task that logs in (retrying with a growing
/// delay while that may help) and hands the stream to tokio-xmpp, which then
/// binds a resource. On a [`LoginError`] it reports the error on `report`
/// and stops trying.
fn reconnector(
    connector: Connector,
    account: Account,
    report: mpsc::Sender<LoginError>,
    info: Arc<watch::Sender<Option<LoginInfo>>>,
) -> Reconnector {
    let online_before = Arc::new(AtomicBool::new(false));
    Box::new(move |_preferred_location, mut slot| {
        let connector = connector.clone();
        let account = account.clone();
        let report = report.clone();
        let info = info.clone();
        let online_before = online_before.clone();
        tokio::spawn(async move {
            let mut delay = FIRST_RETRY_DELAY;
            loop {
                let first = !online_before.load(Ordering::Relaxed);
                let budget = if first { Budget::FIRST } else { Budget::LATER };
                let fatal = match login(&connector, &account, budget).await {
                    Ok((connection, login_info)) => {
                        online_before.store(true, Ordering::Relaxed);
                        info.send_replace(Some(login_info));
                        if let Err(mut unwanted) = slot.send(connection) {
                            // The stanza stream is gone: close the new stream politely.
                            let _: Result<_, _> = tokio::time::timeout(
                                SHUTDOWN_TIMEOUT,
                                <XmppStream as SinkExt<&Stanza>>::close(&mut unwanted.stream),
                            )
                            .await;
                        }
                        return;
                    }
                    Err(AttemptError::Fatal(error)) => Some(error),
                    Err(AttemptError::Unreachable(error)) if first => Some(error),
                    Err(AttemptError::Unreachable(_) | AttemptError::Transient) => None,
                };
                if let Some(fatal) = fatal {
                    // Only one report matters; a full channel already holds one.
                    let _ = report.try_send(fatal);
                    // Dropping `slot` would make tokio-xmpp 6's worker panic
                    // ("Backend was unable to handle reconnect request"), so
                    // keep it until the worker itself is gone; the stream stays
                    // idle (never online) meanwhile.
                    slot.closed().await;
                    return;
                }
                // Transient (network after having been online, TLS other than
                // certificate verification, temporary-auth-failure, ...):
                // retry, unless the stanza stream has gone away meanwhile.
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = slot.closed() => return,
                }
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        });
    })
}

/// How long to wait for a polite close of a stream nobody wants any more.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What one login carries over from a connection the server closed after a
/// failed mechanism to the next connection.
#[derive(Default)]
struct Progress {
    /// Mechanisms that failed (not tried again).
    tried: BTreeSet<&'static str>,
    /// Why they failed.
    failures: Vec<MechanismFailure>,
}

/// How authenticating on one connection ended, short of success.
enum Outcome {
    /// Give up on this attempt.
    Failed(AttemptError),
    /// The server closed the stream after a failed mechanism: go on with the
    /// next one on a new connection.
    Reconnect,
}

/// One login: connect (DNS, TCP, STARTTLS), authenticate with the best
/// mechanism that works (on new connections if the server closes the stream
/// after a failure), restart the stream and read the new features. Resource
/// binding is left to the stanza stream.
async fn login(
    connector: &Connector,
    account: &Account,
    budget: Budget,
) -> Result<(Connection, LoginInfo), AttemptError> {
    let domain = connector.domain.as_str();
    let mut progress = Progress::default();
    for _ in 0..MAX_SASL_CONNECTIONS {
        let tcp = transport::tcp(&connector.target, connector.dns_server, budget)
            .await
            .map_err(|e| transport_error(e, domain))?;
        let outcome = match &connector.security {
            Security::StartTls(tls) => {
                let connected = transport::starttls(tcp, domain, tls.clone(), Timeouts::default())
                    .await
                    .map_err(|e| transport_error(e, domain))?;
                authenticate(connected, account, domain, &mut progress).await
            }
            Security::Plaintext => {
                let connected = transport::plaintext(tcp, domain, Timeouts::default())
                    .await
                    .map_err(|e| transport_error(e, domain))?;
                authenticate(connected, account, domain, &mut progress).await
            }
        };
        match outcome {
            Ok(done) => return Ok(done),
            Err(Outcome::Failed(error)) => return Err(error),
            Err(Outcome::Reconnect) => {}
        }
    }
    Err(AttemptError::Transient)
}

fn header(domain: &str) -> StreamHeader<'static> {
    StreamHeader {
        to: Some(Cow::Owned(domain.to_owned())),
        from: None,
        id: None,
    }
}

/// SASL on one connection, then the stream restart.
async fn authenticate<Io>(
    connected: Connected<Io>,
    account: &Account,
    domain: &str,
    progress: &mut Progress,
) -> Result<(Connection, LoginInfo), Outcome>
where
    Io: AsyncBufRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |error: tokio_xmpp::Error| Outcome::Failed(stream_error(&error, domain));
    let Connected {
        pending,
        channel,
        bindings,
        tls_version,
    } = connected;
    let (features, mut stream) = pending
        .recv_features::<Element>()
        .await
        .map_err(|e| failed(e.into()))?;
    let announced = features.sasl_cb.map(|cb| {
        cb.types
            .iter()
            .map(|t| cb_type_name(t).to_owned())
            .collect()
    });
    let mut plan = Plan::new(
        &features.sasl_mechanisms,
        announced,
        &channel,
        true,
        &progress.tried,
        progress.failures.clone(),
    );
    let credentials = Credentials {
        username: &account.username,
        password: &account.password,
        bindings: &bindings,
    };
    let mut failed_here = false;
    while let Some(candidate) = plan.next() {
        match login::authenticate(&mut stream, &candidate, &credentials).await {
            Exchange::Success => {
                let stream = stream
                    .initiate_reset()
                    .send_header(header(domain))
                    .await
                    .map_err(|e| failed(e.into()))?;
                let (features, stream) = stream
                    .recv_features::<FallibleStreamElement>()
                    .await
                    .map_err(|e| failed(e.into()))?;
                let info = LoginInfo {
                    mechanism: candidate.mechanism().to_owned(),
                    channel_binding: match candidate {
                        sasl::Candidate::Scram(_, sasl::Binding::Bound(cb)) => {
                            Some(cb.name().to_owned())
                        }
                        _ => None,
                    },
                    tls_version,
                    earlier_failures: plan.failures().to_vec(),
                };
                let connection = Connection {
                    stream: stream.box_stream(),
                    features,
                    identity: account.jid.clone(),
                };
                return Ok((connection, info));
            }
            Exchange::Failed(failure) => {
                progress.tried.insert(candidate.mechanism());
                let verdict = plan.on_failure(&candidate, failure);
                progress.failures = plan.failures().to_vec();
                match verdict {
                    Verdict::Continue => failed_here = true,
                    Verdict::Fatal(error) => {
                        return Err(Outcome::Failed(AttemptError::Fatal(error)));
                    }
                    Verdict::Transient(_) => return Err(Outcome::Failed(AttemptError::Transient)),
                }
            }
            // A server may close the stream after a failed mechanism.
            Exchange::StreamLost(_) if failed_here => return Err(Outcome::Reconnect),
            Exchange::StreamLost(error) => return Err(failed(error)),
        }
    }
    Err(Outcome::Failed(AttemptError::Fatal(plan.exhausted())))
}

/// The XEP-0440 name of a channel binding type.
fn cb_type_name(cb: &sasl_cb::Type) -> &'static str {
    match cb {
        sasl_cb::Type::TlsUnique => "tls-unique",
        sasl_cb::Type::TlsServerEndPoint => "tls-server-end-point",
        sasl_cb::Type::TlsUniqueForTelnet => "tls-unique-for-telnet",
        sasl_cb::Type::TlsExporter => "tls-exporter",
    }
}

/// How a failure to get a stream ends the attempt.
fn transport_error(error: TransportError, domain: &str) -> AttemptError {
    match error {
        TransportError::DomainNotFound { domain } => {
            AttemptError::Unreachable(LoginError::DomainNotFound { domain })
        }
        TransportError::NoXmppService { domain } => {
            AttemptError::Unreachable(LoginError::NoXmppService { domain })
        }
        TransportError::NoAddress { host, .. } => {
            AttemptError::Unreachable(LoginError::HostNotFound { host })
        }
        TransportError::Dns { name, reason } => {
            AttemptError::Unreachable(LoginError::DnsFailed { name, reason })
        }
        TransportError::Connect { address, reason } => {
            AttemptError::Unreachable(LoginError::Unreachable {
                address,
                reason: reason.into(),
            })
        }
        TransportError::NoStartTls => AttemptError::Fatal(LoginError::NoTls {
            domain: domain.to_owned(),
        }),
        TransportError::Stream(error) => stream_error(&error, domain),
    }
}

/// A stream or TLS error: fatal if the server's certificate failed
/// verification for `domain`, transient otherwise (network errors, other
/// TLS failures, stream errors).
fn stream_error(error: &tokio_xmpp::Error, domain: &str) -> AttemptError {
    match certificate_problem(error) {
        Some((reason, certificate)) => AttemptError::Fatal(LoginError::UntrustedCertificate {
            domain: domain.to_owned(),
            reason,
            certificate,
        }),
        None => AttemptError::Transient,
    }
}

/// The certificate verification failure behind a failed login, if that is
/// what it was. rustls reports it as `Error::InvalidCertificate` while
/// processing the server's handshake messages; tokio-rustls wraps that in an
/// `io::Error` (kind `InvalidData`), which tokio-xmpp wraps in `Error::Io`
/// (our private-CA connector does the same). Any other rustls error (an
/// alert, a protocol mismatch) and every plain I/O error (refused, reset,
/// end of file, timeout) is not a certificate problem.
fn certificate_problem(
    error: &tokio_xmpp::Error,
) -> Option<(CertificateProblem, Option<PresentedCertificate>)> {
    let start: &(dyn std::error::Error + 'static) = match error {
        // A connector's own error is boxed without being its `source()`.
        tokio_xmpp::Error::Connection(inner) => &**inner,
        other => other,
    };
    match rustls_error_in(start)? {
        TlsError::InvalidCertificate(problem) => Some(classify_refusal(problem)),
        _ => None,
    }
}

/// How deep [`rustls_error_in`] looks into an error chain.
const MAX_ERROR_DEPTH: usize = 16;

/// The first rustls error in `error`'s chain. Walks `source()`, but looks
/// into an `io::Error` through `get_ref` (its `source()` skips the wrapped
/// error itself) and into tokio-xmpp's `TlsConnectorError` (no `source()`).
fn rustls_error_in<'a>(mut error: &'a (dyn std::error::Error + 'static)) -> Option<&'a TlsError> {
    for _ in 0..MAX_ERROR_DEPTH {
        if let Some(tls) = error.downcast_ref::<TlsError>() {
            return Some(tls);
        }
        if let Some(TlsConnectorError::Tls(tls)) = error.downcast_ref::<TlsConnectorError>() {
            return Some(tls);
        }
        let next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
        error = next?;
    }
    None
}

/// Our [`CertificateProblem`] for a refusal, and the certificate refused when
/// our verifier named it ([`presented::Described`]).
fn classify_refusal(
    error: &CertificateError,
) -> (CertificateProblem, Option<PresentedCertificate>) {
    if let CertificateError::Other(other) = error
        && let Some(refused) = other.0.downcast_ref::<presented::Refused>()
    {
        return (
            classify_certificate_error(&refused.problem),
            Some(refused.certificate.clone()),
        );
    }
    (classify_certificate_error(error), None)
}

/// Our [`CertificateProblem`] for rustls's verdict.
fn classify_certificate_error(error: &CertificateError) -> CertificateProblem {
    match error {
        CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
        CertificateError::NotValidForName => CertificateProblem::NotValidForName {
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext { presented, .. } => {
            CertificateProblem::NotValidForName {
                presented: presented.iter().filter_map(|n| readable_name(n)).collect(),
            }
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            CertificateProblem::Expired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            CertificateProblem::NotValidYet
        }
        CertificateError::Revoked => CertificateProblem::Revoked,
        // webpki picks trust anchors (and intermediates) by the issuer's
        // name, then checks the signature with that certificate's key.
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            CertificateProblem::BadSignature
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<pinning::PinMismatch>() {
            Some(mismatch) => CertificateProblem::NotPinned {
                presented: mismatch.presented.clone(),
            },
            None => CertificateProblem::Other(certificate_error_name(error)),
        },
        other => CertificateProblem::Other(certificate_error_name(other)),
    }
}

/// A certificate name as webpki lists it (its `Debug` form:
/// `DnsName("example.org")`, `IpAddress(192.0.2.1)`, ...) as people write it;
/// `None` for kinds without a name (`DirectoryName`, `Unsupported(..)`).
fn readable_name(presented: &str) -> Option<String> {
    for kind in ["DnsName", "UniformResourceIdentifier", "IpAddress"] {
        if let Some(inner) = presented
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
        {
            let inner = inner
                .strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .unwrap_or(inner);
            return Some(inner.to_owned());
        }
    }
    // Already plain (another webpki version), unless it is a bare kind.
    (!presented.contains(['(', ')', '"']) && presented.contains('.')).then(|| presented.to_owned())
}

/// rustls's name for a certificate error (its `Display` of some variants is
/// a dump of object identifiers).
fn certificate_error_name(error: &CertificateError) -> String {
    #[allow(deprecated, reason = "rustls may still report the old variants")]
    let name = match error {
        CertificateError::BadSignature => "BadSignature",
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "UnsupportedSignatureAlgorithmForPublicKey"
        }
        CertificateError::BadEncoding => "BadEncoding",
        CertificateError::UnhandledCriticalExtension => "UnhandledCriticalExtension",
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
            "UnsupportedSignatureAlgorithm"
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "InvalidPurpose"
        }
        CertificateError::InvalidOcspResponse => "InvalidOcspResponse",
        CertificateError::ApplicationVerificationFailure => "ApplicationVerificationFailure",
        CertificateError::UnknownRevocationStatus => "UnknownRevocationStatus",
        CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => "ExpiredRevocationList",
        other => return other.to_string(),
    };
    name.to_owned()
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
    Ok(tls_config_with_roots(roots))
}

/// The system's CA certificates (as tokio-xmpp's `rustls-native-certs`
/// feature loads them). None found gives an empty store: every server
/// certificate is then `UnknownIssuer`, which the login reports.
fn tls_config_with_system_roots() -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    tls_config_with_roots(roots)
}

/// Verification against `roots` by webpki, its refusals naming the
/// certificate ([`presented::Described`]). With no root at all (webpki's
/// builder refuses that) every certificate is `UnknownIssuer` anyway, and
/// rustls's own configuration says so without the name.
fn tls_config_with_roots(roots: RootCertStore) -> ClientConfig {
    let roots = Arc::new(roots);
    match WebPkiServerVerifier::builder(roots.clone()).build() {
        Ok(webpki) => ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(presented::Described { inner: webpki }))
            .with_no_client_auth(),
        Err(_) => ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;
    use rustls_pki_types::{ServerName, UnixTime};

    fn fatal(error: &tokio_xmpp::Error) -> Option<LoginError> {
        match stream_error(error, "localhost") {
            AttemptError::Fatal(e) => Some(e),
            AttemptError::Unreachable(_) | AttemptError::Transient => None,
        }
    }

    /// Network trouble in the stream is retried, not reported.
    #[test]
    fn transient_failures_are_retried() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(fatal(&refused.into()), None);
        assert_eq!(fatal(&tokio_xmpp::Error::Disconnected), None);
    }

    /// A rustls error as tokio-rustls reports a failed handshake, as
    /// tokio-xmpp hands it to us.
    fn tls_failure(error: TlsError) -> tokio_xmpp::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error).into()
    }

    fn certificate_failure(error: CertificateError) -> tokio_xmpp::Error {
        tls_failure(TlsError::InvalidCertificate(error))
    }

    fn untrusted(reason: CertificateProblem) -> Option<LoginError> {
        Some(LoginError::UntrustedCertificate {
            domain: "localhost".to_owned(),
            reason,
            certificate: None,
        })
    }

    /// Each certificate verdict of rustls is fatal, with its reason.
    #[test]
    fn certificate_verification_failures_are_fatal() {
        assert_eq!(
            fatal(&certificate_failure(CertificateError::UnknownIssuer)),
            untrusted(CertificateProblem::UnknownIssuer)
        );
        let wrong_name = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("localhost").unwrap(),
            presented: vec![
                "DnsName(\"example.org\")".to_owned(),
                "DnsName(\"*.example.org\")".to_owned(),
                "IpAddress(192.0.2.1)".to_owned(),
                "DirectoryName".to_owned(),
            ],
        };
        assert_eq!(
            fatal(&certificate_failure(wrong_name)),
            untrusted(CertificateProblem::NotValidForName {
                presented: vec![
                    "example.org".to_owned(),
                    "*.example.org".to_owned(),
                    "192.0.2.1".to_owned()
                ]
            })
        );
        assert_eq!(
            fatal(&certificate_failure(CertificateError::NotValidForName)),
            untrusted(CertificateProblem::NotValidForName { presented: vec![] })
        );
        let expired = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(2_000_000_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_000_000_000)),
        };
        assert_eq!(
            fatal(&certificate_failure(expired)),
            untrusted(CertificateProblem::Expired)
        );
        assert_eq!(
            fatal(&certificate_failure(CertificateError::Expired)),
            untrusted(CertificateProblem::Expired)
        );
        assert_eq!(
            fatal(&certificate_failure(CertificateError::NotValidYet)),
            untrusted(CertificateProblem::NotValidYet)
        );
        assert_eq!(
            fatal(&certificate_failure(CertificateError::Revoked)),
            untrusted(CertificateProblem::Revoked)
        );
        assert_eq!(
            fatal(&certificate_failure(CertificateError::BadSignature)),
            untrusted(CertificateProblem::BadSignature)
        );
        // What webpki reports when a trust anchor with the issuer's name has
        // a key of another type (Debian's RSA snakeoil certificate is named
        // "localhost"): ecdsa-with-SHA256 over an rsaEncryption key.
        let other_key_type = CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
            signature_algorithm_id: vec![6, 8, 42, 134, 72, 206, 61, 4, 3, 2],
            public_key_algorithm_id: vec![6, 9, 42, 134, 72, 134, 247, 13, 1, 1, 1, 5, 0],
        };
        assert_eq!(
            fatal(&certificate_failure(other_key_type)),
            untrusted(CertificateProblem::BadSignature)
        );
        assert_eq!(
            fatal(&certificate_failure(CertificateError::InvalidPurpose)),
            untrusted(CertificateProblem::Other("InvalidPurpose".to_owned()))
        );
        assert_eq!(
            fatal(&certificate_failure(CertificateError::BadEncoding)),
            untrusted(CertificateProblem::Other("BadEncoding".to_owned()))
        );
    }

    /// The rustls error is found however deeply it is wrapped: an `io::Error`
    /// around an `io::Error`, or tokio-xmpp's `TlsConnectorError` boxed in
    /// `Error::Connection`.
    #[test]
    fn certificate_failures_are_found_in_the_error_chain() {
        let inner = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let outer = std::io::Error::other(inner);
        assert_eq!(
            fatal(&outer.into()),
            untrusted(CertificateProblem::UnknownIssuer)
        );
        let connector = tokio_xmpp::Error::from(TlsConnectorError::Tls(
            TlsError::InvalidCertificate(CertificateError::Expired),
        ));
        assert!(matches!(connector, tokio_xmpp::Error::Connection(_)));
        assert_eq!(fatal(&connector), untrusted(CertificateProblem::Expired));
    }

    /// Network trouble and TLS failures that are not about the certificate
    /// stay transient, and nothing is decided by an error's text.
    #[test]
    fn other_tls_and_network_failures_are_retried() {
        use tokio_xmpp::rustls::{AlertDescription, PeerIncompatible};
        let alert = tls_failure(TlsError::AlertReceived(AlertDescription::HandshakeFailure));
        assert_eq!(fatal(&alert), None);
        // The server rejecting a certificate (we send none) is not ours to fix here.
        let alert = tls_failure(TlsError::AlertReceived(AlertDescription::BadCertificate));
        assert_eq!(fatal(&alert), None);
        let incompatible = tls_failure(TlsError::PeerIncompatible(
            PeerIncompatible::Tls13RequiredForQuic,
        ));
        assert_eq!(fatal(&incompatible), None);
        let connector = tokio_xmpp::Error::from(TlsConnectorError::Tls(TlsError::AlertReceived(
            AlertDescription::InternalError,
        )));
        assert_eq!(fatal(&connector), None);
        for kind in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::TimedOut,
        ] {
            assert_eq!(fatal(&std::io::Error::from(kind).into()), None);
        }
        // tokio-rustls's own message when the server hangs up mid-handshake.
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(fatal(&eof.into()), None);
        // Text that looks like a certificate error is not one.
        let lookalike = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        assert_eq!(fatal(&lookalike.into()), None);
        assert_eq!(
            fatal(&tokio_xmpp::Error::Protocol(
                tokio_xmpp::error::ProtocolError::NoTls
            )),
            None
        );
    }

    #[test]
    fn untrusted_certificate_message_names_domain_reason_and_remedy() {
        assert_eq!(
            untrusted(CertificateProblem::UnknownIssuer)
                .unwrap()
                .to_string(),
            "The server's TLS certificate for localhost is not trusted (UnknownIssuer): it was \
             not issued by a certificate authority this client trusts (it may be self-signed, or \
             from a private CA). The password was not sent. If the server uses a private \
             certificate authority, trust that CA's certificate (a CA file)."
        );
        assert_eq!(
            untrusted(CertificateProblem::NotValidForName {
                presented: vec!["a.example".to_owned(), "b.example".to_owned()]
            })
            .unwrap()
            .to_string(),
            "The server's TLS certificate for localhost is not trusted \
             (NotValidForName: it is for a.example, b.example): it is not valid for localhost. \
             The password was not sent. Check the domain of the JID: the server must present a \
             certificate for its XMPP domain."
        );
        assert_eq!(
            untrusted(CertificateProblem::Expired).unwrap().to_string(),
            "The server's TLS certificate for localhost is not trusted (Expired): it has expired \
             (or this computer's clock is wrong). The password was not sent. The server's \
             administrator must renew it; also check this computer's clock."
        );
    }

    /// Every message is made of full sentences: it starts with a capital
    /// letter and ends with a period, with nothing cut off.
    #[test]
    fn every_login_error_is_full_sentences() {
        let failure = MechanismFailure {
            mechanism: "SCRAM-SHA-1-PLUS".to_owned(),
            channel_binding: Some("tls-exporter".to_owned()),
            reason: "the server answered not-authorized".to_owned(),
        };
        let mut errors = vec![
            LoginError::WrongCredentials,
            LoginError::AccountDisabled,
            LoginError::CredentialsExpired,
            LoginError::Refused {
                condition: "encryption-required".to_owned(),
            },
            LoginError::MechanismsFailed {
                failures: vec![failure],
            },
            LoginError::ServerNotAuthenticated {
                mechanism: "SCRAM-SHA-1".to_owned(),
            },
            LoginError::NoMechanism { offered: vec![] },
            LoginError::NoMechanism {
                offered: vec!["X-OAUTH2".to_owned()],
            },
            LoginError::NoTls {
                domain: "example.org".to_owned(),
            },
            LoginError::DomainNotFound {
                domain: "example.invalid".to_owned(),
            },
            LoginError::NoXmppService {
                domain: "example.org".to_owned(),
            },
            LoginError::HostNotFound {
                host: "xmpp.example.org".to_owned(),
            },
            LoginError::DnsFailed {
                name: "example.org".to_owned(),
                reason: "the DNS server did not answer in time".to_owned(),
            },
        ];
        for reason in [
            ConnectProblem::Refused,
            ConnectProblem::TimedOut(Duration::from_millis(2500)),
            ConnectProblem::NetworkUnreachable,
            ConnectProblem::HostUnreachable,
        ] {
            errors.push(LoginError::Unreachable {
                address: "127.0.0.1:1".to_owned(),
                reason,
            });
        }
        for reason in [
            CertificateProblem::UnknownIssuer,
            CertificateProblem::BadSignature,
            CertificateProblem::NotValidForName { presented: vec![] },
            CertificateProblem::Expired,
            CertificateProblem::NotValidYet,
            CertificateProblem::Revoked,
            CertificateProblem::Other("InvalidPurpose".to_owned()),
        ] {
            errors.push(untrusted(reason).unwrap());
        }
        for error in errors {
            let text = error.to_string();
            assert!(text.starts_with(|c: char| c.is_uppercase()), "{text}");
            assert!(text.ends_with('.'), "{text}");
            assert!(!text.contains(".."), "{text}");
            assert!(!text.contains("{") && !text.contains("\""), "{text}");
            // What to do is always said.
            assert!(
                [
                    "Check",
                    "Ask",
                    "Tell",
                    "Trust",
                    "Set",
                    "If ",
                    "Trying again",
                    "The server's administrator"
                ]
                .iter()
                .any(|advice| text.contains(advice)),
                "{text}"
            );
        }
        assert!(
            LoginError::Unreachable {
                address: "127.0.0.1:1".to_owned(),
                reason: ConnectProblem::TimedOut(Duration::from_millis(2500)),
            }
            .to_string()
            .contains("within 2.5 s")
        );
    }

    #[test]
    fn wrong_credentials_message_is_actionable() {
        assert_eq!(
            LoginError::WrongCredentials.to_string(),
            "The server refused the login: the JID or the password is wrong \
             (servers do not say which). Check both, then try again."
        );
    }

    /// A JID without a local part has no SASL username (tokio-xmpp's own
    /// login would panic on it).
    #[test]
    fn jid_without_local_part_is_refused() {
        let options = ConnectOptions {
            jid: "example.org".to_owned(),
            password: "pw".to_owned(),
            host: None,
            port: None,
            security: TransportSecurity::StartTls { ca_file: None },
            dns_server: None,
        };
        assert!(matches!(
            client(&options),
            Err(ConnectError::InvalidJid(jid)) if jid == "example.org"
        ));
    }
}
