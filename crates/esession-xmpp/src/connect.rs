//! Logging in: STARTTLS with the system's roots or a private CA, or plaintext
//! TCP only to a loopback server (for tests), behind an explicit option.
//!
//! The stanza stream is tokio-xmpp's, but with our own reconnector (see
//! [`client`]): a login the server refuses (wrong password, disabled account)
//! or a server certificate that fails verification (unknown issuer, wrong
//! name, expired) is reported as a [`LoginError`] instead of being retried
//! forever.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_xmpp::Stanza;
use tokio_xmpp::connect::tls_common::TlsConnectorError;
use tokio_xmpp::connect::{
    DnsConfig, ServerConnector, StartTlsServerConnector, TcpServerConnector,
};
use tokio_xmpp::error::AuthError;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::sasl::DefinedCondition as SaslCondition;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::rustls::{CertificateError, ClientConfig, Error as TlsError, RootCertStore};
use tokio_xmpp::stanzastream::{Connection, StanzaStream, XmppStream};
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

/// First wait before retrying a failed login; doubles up to [`MAX_RETRY_DELAY`]
/// (as tokio-xmpp's own c2s reconnector does).
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Longest wait between login attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Why logging in can never succeed with these settings: the server refused
/// our credentials, no authentication is possible at all, or the server's TLS
/// certificate failed verification. Retrying would only repeat it, so the
/// connection gives up (reported as a fatal [`crate::ClientEvent::Disconnected`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// SASL `<not-authorized/>` (RFC 6120, 6.5.10): the account does not
    /// exist or the password is wrong (servers do not say which).
    #[error("authentication failed: wrong JID or password")]
    WrongCredentials,
    /// SASL `<account-disabled/>` (RFC 6120, 6.5.2).
    #[error("authentication failed: the account is disabled")]
    AccountDisabled,
    /// SASL `<credentials-expired/>` (RFC 6120, 6.5.3).
    #[error("authentication failed: the password has expired")]
    CredentialsExpired,
    /// Any other SASL failure condition that retrying cannot fix (e.g.
    /// `mechanism-too-weak`, `encryption-required`), as its XML name.
    #[error("authentication failed: the server refused the login ({condition})")]
    Refused {
        /// The SASL defined condition, e.g. `mechanism-too-weak`.
        condition: String,
    },
    /// The SASL exchange itself broke down on our side (e.g. a SCRAM
    /// challenge we cannot use).
    #[error("authentication failed: {0}")]
    Sasl(String),
    /// The server offers no SASL mechanism we use (SCRAM-SHA-256,
    /// SCRAM-SHA-1 or PLAIN; never ANONYMOUS).
    #[error(
        "authentication impossible: the server offers none of SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN"
    )]
    NoMechanism,
    /// The server's TLS certificate failed verification (against the system's
    /// roots, or the CA file when one is given): we never sent the password.
    /// Retrying cannot help until the trust settings or the certificate change.
    #[error("the server's TLS certificate for {domain} is not trusted ({reason})")]
    UntrustedCertificate {
        /// The name the certificate was verified for: the JID's domain.
        domain: String,
        /// What is wrong with it.
        reason: CertificateProblem,
    },
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
            Self::Other(what) => f.write_str(what),
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
}

impl XmppConnection {
    /// The bare stanza stream, for using tokio-xmpp directly. A refused login
    /// is then not reported: the stream simply never comes online.
    pub fn into_stream(self) -> StanzaStream {
        self.stream
    }

    /// The stream and the channel on which a refused login is reported (once).
    pub(crate) fn into_parts(self) -> (StanzaStream, mpsc::Receiver<LoginError>) {
        (self.stream, self.login_errors)
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
    let dns = match (&options.host, options.port) {
        (Some(host), port) => DnsConfig::no_srv(host, port.unwrap_or(5222)),
        (None, Some(port)) => DnsConfig::no_srv(&domain, port),
        (None, None) => DnsConfig::srv_default_client(&domain),
    };
    let account = Account {
        jid,
        username,
        password: options.password.clone(),
    };
    let (report, login_errors) = mpsc::channel(1);
    let reconnector = match &options.security {
        TransportSecurity::StartTls { ca_file: None } => {
            reconnector(StartTlsServerConnector::from(dns), account, report)
        }
        TransportSecurity::StartTls {
            ca_file: Some(path),
        } => {
            let config = tls_config_with_ca(path)?;
            let connector = PrivateCaStartTls {
                dns,
                tls: Arc::new(config),
            };
            reconnector(connector, account, report)
        }
        TransportSecurity::DangerousPlaintextLoopbackOnly => {
            let host = options.host.clone().unwrap_or(domain);
            let port = options.port.unwrap_or(5222);
            if !is_loopback(&host, port) {
                return Err(ConnectError::PlaintextNotLoopback(host));
            }
            let connector = TcpServerConnector::from(DnsConfig::no_srv(&host, port));
            reconnector(connector, account, report)
        }
    };
    Ok(XmppConnection {
        stream: StanzaStream::new(reconnector, QUEUE_DEPTH),
        login_errors,
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

/// What tokio-xmpp calls to get a new authenticated (not yet bound) stream.
type Reconnector = Box<dyn FnMut(Option<String>, oneshot::Sender<Connection>) + Send + 'static>;

/// Our replacement for the reconnector of tokio-xmpp 6's
/// `StanzaStream::new_c2s`, which retries every failed login forever (a wrong
/// password or an untrusted server certificate included) without telling
/// anyone. Each call spawns a task that
/// logs in (retrying with a growing delay while that may help) and hands the
/// stream to tokio-xmpp, which then binds a resource. On a [`LoginError`] it
/// reports the error on `report` and stops trying.
fn reconnector<C: ServerConnector>(
    server: C,
    account: Account,
    report: mpsc::Sender<LoginError>,
) -> Reconnector
where
    C::Stream: 'static,
{
    Box::new(move |_preferred_location, mut slot| {
        let server = server.clone();
        let account = account.clone();
        let report = report.clone();
        tokio::spawn(async move {
            let mut delay = FIRST_RETRY_DELAY;
            loop {
                let error = match login(server.clone(), &account).await {
                    Ok(connection) => {
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
                    Err(error) => error,
                };
                if let Some(fatal) = fatal_login_error(&error, account.jid.domain().as_str()) {
                    // Only one report matters; a full channel already holds one.
                    let _ = report.try_send(fatal);
                    // Dropping `slot` would make tokio-xmpp 6's worker panic
                    // ("Backend was unable to handle reconnect request"), so
                    // keep it until the worker itself is gone; the stream stays
                    // idle (never online) meanwhile.
                    slot.closed().await;
                    return;
                }
                // Transient (network, TLS other than certificate verification,
                // temporary-auth-failure, ...): retry, unless the stanza stream
                // has gone away meanwhile.
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

/// One login as tokio-xmpp's `client_auth` does it: connect (TLS as the
/// connector does it), read the stream features, authenticate with SASL
/// (channel binding from the connector), restart the stream and read the new
/// features. Resource binding is left to the stanza stream.
async fn login<C: ServerConnector>(
    server: C,
    account: &Account,
) -> Result<Connection, tokio_xmpp::Error>
where
    C::Stream: 'static,
{
    let jid = &account.jid;
    let (stream, binding) = server
        .connect(jid, ns::JABBER_CLIENT, Timeouts::default())
        .await?;
    let (features, stream) = stream.recv_features::<FallibleStreamElement>().await?;
    let credentials = Credentials::default()
        .with_username(account.username.as_str())
        .with_password(account.password.as_str())
        .with_channel_binding(binding);
    let stream = tokio_xmpp::client_login(
        stream,
        usable_mechanisms(features.sasl_mechanisms),
        credentials,
    )
    .await?;
    let stream = stream
        .send_header(StreamHeader {
            to: Some(Cow::Owned(jid.domain().as_str().to_owned())),
            from: None,
            id: None,
        })
        .await?;
    let (features, stream) = stream.recv_features::<FallibleStreamElement>().await?;
    Ok(Connection {
        stream: stream.box_stream(),
        features,
        identity: jid.clone(),
    })
}

/// The server's SASL mechanisms that we are willing to use: all but
/// ANONYMOUS, which tokio-xmpp would otherwise fall back to, logging us in as
/// a throw-away identity instead of the account asked for.
fn usable_mechanisms(offered: BTreeSet<String>) -> BTreeSet<String> {
    offered.into_iter().filter(|m| m != "ANONYMOUS").collect()
}

/// The [`LoginError`] for a login failure that retrying cannot fix (a refused
/// login, or a server certificate that failed verification for `domain`);
/// `None` for one that a later attempt may overcome (network errors, other
/// TLS failures, stream errors, `temporary-auth-failure`, `aborted`).
fn fatal_login_error(error: &tokio_xmpp::Error, domain: &str) -> Option<LoginError> {
    if let Some(reason) = certificate_problem(error) {
        return Some(LoginError::UntrustedCertificate {
            domain: domain.to_owned(),
            reason,
        });
    }
    let tokio_xmpp::Error::Auth(auth) = error else {
        return None;
    };
    match auth {
        AuthError::Fail(condition) => match condition {
            SaslCondition::NotAuthorized => Some(LoginError::WrongCredentials),
            SaslCondition::AccountDisabled => Some(LoginError::AccountDisabled),
            SaslCondition::CredentialsExpired => Some(LoginError::CredentialsExpired),
            // RFC 6120, 6.5.12: "the client MAY try again later".
            SaslCondition::TemporaryAuthFailure | SaslCondition::Aborted => None,
            SaslCondition::EncryptionRequired
            | SaslCondition::IncorrectEncoding
            | SaslCondition::InvalidAuthzid
            | SaslCondition::InvalidMechanism
            | SaslCondition::MalformedRequest
            | SaslCondition::MechanismTooWeak => Some(LoginError::Refused {
                condition: sasl_condition_name(condition).to_owned(),
            }),
        },
        AuthError::NoMechanism => Some(LoginError::NoMechanism),
        AuthError::Sasl(e) => Some(LoginError::Sasl(e.to_string())),
        AuthError::ComponentFail => Some(LoginError::Sasl(auth.to_string())),
    }
}

/// The certificate verification failure behind a failed login, if that is
/// what it was. rustls reports it as `Error::InvalidCertificate` while
/// processing the server's handshake messages; tokio-rustls wraps that in an
/// `io::Error` (kind `InvalidData`), which tokio-xmpp wraps in `Error::Io`
/// (our private-CA connector does the same). Any other rustls error (an
/// alert, a protocol mismatch) and every plain I/O error (refused, reset,
/// end of file, timeout) is not a certificate problem.
fn certificate_problem(error: &tokio_xmpp::Error) -> Option<CertificateProblem> {
    let start: &(dyn std::error::Error + 'static) = match error {
        // A connector's own error is boxed without being its `source()`.
        tokio_xmpp::Error::Connection(inner) => &**inner,
        other => other,
    };
    match rustls_error_in(start)? {
        TlsError::InvalidCertificate(problem) => Some(classify_certificate_error(problem)),
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

/// Our [`CertificateProblem`] for rustls's verdict.
fn classify_certificate_error(error: &CertificateError) -> CertificateProblem {
    match error {
        CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
        CertificateError::NotValidForName => CertificateProblem::NotValidForName {
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext { presented, .. } => {
            CertificateProblem::NotValidForName {
                presented: presented.clone(),
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
        other => CertificateProblem::Other(certificate_error_name(other)),
    }
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

/// The XML name of a SASL defined condition (RFC 6120, 6.5).
fn sasl_condition_name(condition: &SaslCondition) -> &'static str {
    match condition {
        SaslCondition::Aborted => "aborted",
        SaslCondition::AccountDisabled => "account-disabled",
        SaslCondition::CredentialsExpired => "credentials-expired",
        SaslCondition::EncryptionRequired => "encryption-required",
        SaslCondition::IncorrectEncoding => "incorrect-encoding",
        SaslCondition::InvalidAuthzid => "invalid-authzid",
        SaslCondition::InvalidMechanism => "invalid-mechanism",
        SaslCondition::MalformedRequest => "malformed-request",
        SaslCondition::MechanismTooWeak => "mechanism-too-weak",
        SaslCondition::NotAuthorized => "not-authorized",
        SaslCondition::TemporaryAuthFailure => "temporary-auth-failure",
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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;
    use rustls_pki_types::UnixTime;

    fn fatal(error: &tokio_xmpp::Error) -> Option<LoginError> {
        fatal_login_error(error, "localhost")
    }

    fn auth_failure(condition: SaslCondition) -> tokio_xmpp::Error {
        tokio_xmpp::Error::Auth(AuthError::Fail(condition))
    }

    #[test]
    fn refused_credentials_are_fatal() {
        assert_eq!(
            fatal(&auth_failure(SaslCondition::NotAuthorized)),
            Some(LoginError::WrongCredentials)
        );
        assert_eq!(
            fatal(&auth_failure(SaslCondition::AccountDisabled)),
            Some(LoginError::AccountDisabled)
        );
        assert_eq!(
            fatal(&auth_failure(SaslCondition::CredentialsExpired)),
            Some(LoginError::CredentialsExpired)
        );
        assert_eq!(
            fatal(&auth_failure(SaslCondition::MechanismTooWeak)),
            Some(LoginError::Refused {
                condition: "mechanism-too-weak".to_owned()
            })
        );
        assert_eq!(
            fatal(&tokio_xmpp::Error::Auth(AuthError::NoMechanism)),
            Some(LoginError::NoMechanism)
        );
    }

    /// What a later attempt may overcome is retried, not reported.
    #[test]
    fn transient_failures_are_retried() {
        for condition in [SaslCondition::TemporaryAuthFailure, SaslCondition::Aborted] {
            assert_eq!(fatal(&auth_failure(condition)), None);
        }
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
            presented: vec!["example.org".to_owned(), "*.example.org".to_owned()],
        };
        assert_eq!(
            fatal(&certificate_failure(wrong_name)),
            untrusted(CertificateProblem::NotValidForName {
                presented: vec!["example.org".to_owned(), "*.example.org".to_owned()]
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
    fn untrusted_certificate_message_names_domain_and_reason() {
        assert_eq!(
            untrusted(CertificateProblem::UnknownIssuer)
                .unwrap()
                .to_string(),
            "the server's TLS certificate for localhost is not trusted (UnknownIssuer)"
        );
        assert_eq!(
            untrusted(CertificateProblem::NotValidForName {
                presented: vec!["a.example".to_owned(), "b.example".to_owned()]
            })
            .unwrap()
            .to_string(),
            "the server's TLS certificate for localhost is not trusted \
             (NotValidForName: it is for a.example, b.example)"
        );
        assert_eq!(
            untrusted(CertificateProblem::Expired).unwrap().to_string(),
            "the server's TLS certificate for localhost is not trusted (Expired)"
        );
    }

    #[test]
    fn wrong_credentials_message_is_actionable() {
        assert_eq!(
            LoginError::WrongCredentials.to_string(),
            "authentication failed: wrong JID or password"
        );
    }

    /// tokio-xmpp would log in anonymously when the server offers only ANONYMOUS.
    #[test]
    fn anonymous_is_never_used() {
        let offered: BTreeSet<String> = ["ANONYMOUS", "PLAIN", "SCRAM-SHA-1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let usable: Vec<String> = usable_mechanisms(offered).into_iter().collect();
        assert_eq!(usable, ["PLAIN", "SCRAM-SHA-1"]);
        let only_anonymous = BTreeSet::from(["ANONYMOUS".to_owned()]);
        assert!(usable_mechanisms(only_anonymous).is_empty());
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
        };
        assert!(matches!(
            client(&options),
            Err(ConnectError::InvalidJid(jid)) if jid == "example.org"
        ));
    }
}
