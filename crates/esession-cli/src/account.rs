//! Opening the trust store and logging in.

use std::path::Path;
use std::sync::Arc;

use esession::{
    Config, KeyPairPool, PooledRandomness, PubkeyMethod, SessionManager, SystemRandomness,
};
use esession_crypto::SigningKey;
use esession_store::{Store, StoreError};
use esession_xmpp::{
    CertificateProblem, ClientEvent, EsessionClient, LoginError, LoginInfo, PresentedCertificate,
    SystemClock, connect, presented_clause,
};

use crate::settings::Settings;

/// Opens (or, on first use, creates) the encrypted trust store.
pub(crate) fn open_store(settings: &Settings) -> Result<Store, String> {
    let path = &settings.store_path;
    if path.exists() {
        Store::open(path, settings.unlock(false)?).map_err(|e| store_error(path, "open", &e))
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        eprintln!("Creating a new encrypted trust store at {}", path.display());
        Store::create(path, settings.unlock(true)?).map_err(|e| store_error(path, "create", &e))
    }
}

/// A trust-store failure for a person: what we were doing, what happened,
/// and what to do about it.
pub(crate) fn store_error(path: &Path, doing: &str, error: &StoreError) -> String {
    let store = path.display();
    let what = format!("could not {doing} the trust store {store}: {error}");
    match error {
        StoreError::WrongPassphrase => format!(
            "{what}; give the passphrase it was created with (prompt, --store-passphrase-file \
             or $ESESSION_STORE_PASSPHRASE)"
        ),
        StoreError::WrongKeyFile => {
            format!("{what}; give the key file it was created with (--store-key-file)")
        }
        StoreError::UnlockMismatch { expected, .. } if *expected == "key file" => {
            format!("{what}; pass its key file with --store-key-file (or key_file in [store])")
        }
        StoreError::UnlockMismatch { .. } => format!(
            "{what}; unlock it with its passphrase (drop --store-key-file and key_file in [store])"
        ),
        StoreError::NotAStore { .. } => format!(
            "{what}; pass the path of your trust store with --store, or move this file away \
             to start a new store there"
        ),
        StoreError::TooNew { .. } => {
            format!("{what}; use the newer esession that wrote it")
        }
        StoreError::Corrupt(_) => format!(
            "{what}; it was damaged or changed outside esession: restore it from a backup, or \
             move it away to start a new one (what it remembered is then lost)"
        ),
        StoreError::Tampered { .. } => format!(
            "{what}. Someone who could write the file may have tried to change whom you trust: \
             restore the store from a backup you trust, or run `esession trust forget <contact>` \
             for the contact named above to drop what is remembered about it (and verify that \
             contact again)"
        ),
        StoreError::KdfOutOfRange { .. } => what,
        StoreError::Rekeyed => format!("{what}; run the command again"),
        StoreError::KeyFilePermissions { .. } | StoreError::KeyFileInvalid { .. } => what,
        _ => format!(
            "{what}; check that {store} and its folder are readable and writable and the disk \
             has space, then run the command again"
        ),
    }
}

/// A session manager for our account, over the persistent store, with each
/// contact's stored wire profile (`esession trust profile`, issue 6).
pub(crate) fn manager(
    settings: &Settings,
    store: &Store,
    config: Config,
) -> Result<SessionManager, String> {
    let account = settings.account()?;
    let trust = store.account(&account).map_err(|e| e.to_string())?;
    let rng = crate::rng::os_seeded()?;
    let mut config = if settings.public_keys {
        with_public_keys(store, &account, settings, config)?
    } else {
        config
    };
    let mut profiles = std::mem::take(&mut config.profiles);
    profiles.extend(crate::profile::stored_profiles(store, &account)?);
    // Issue 16: one fresh key pair per offered group, computed ahead of time
    // on a background thread, so that starting (eight groups by default) or
    // answering does not wait for them. Without the thread, pairs are
    // computed on demand as before.
    let pool = KeyPairPool::for_config(&config, 1);
    if let Err(e) = esession_xmpp::key_pool::spawn_refiller(pool.clone(), crate::rng::os_seeded()?)
    {
        tracing::debug!("no key-pair pool thread ({e}): key pairs are computed on demand");
    }
    SessionManager::new(
        Config {
            own_jid: None,
            stanzas: settings.stanzas.clone(),
            profiles,
            otr_policy: settings.otr_policy,
            contact_otr_policies: settings.contact_otr_policies.clone(),
            ..config
        },
        Box::new(PooledRandomness::new(SystemRandomness::new(rng), pool)),
        Box::new(trust),
        Box::new(SystemClock),
    )
    .map_err(|e| e.to_string())
}

/// The default policy with our stored signing keys (XEP-0187 needs them on both sides).
pub(crate) fn config_with_public_keys(
    store: &Store,
    account: &str,
    settings: &Settings,
) -> Result<Config, String> {
    with_public_keys(store, account, settings, Config::default())
}

/// Our stored signing keys injected into the policy (the core never reads
/// the store's private keys itself): we identify by key, ask for a contact's
/// fingerprint once we hold its key, and still accept `none` (SAS) from
/// contacts without keys, which raises an alert if they had one (ESN-51).
fn with_public_keys(
    store: &Store,
    account: &str,
    settings: &Settings,
    config: Config,
) -> Result<Config, String> {
    let mut keys = Vec::new();
    for info in store.signing_keys(account).map_err(|e| e.to_string())? {
        let der = store
            .signing_key_private(account, info.id)
            .map_err(|e| e.to_string())?;
        let key = SigningKey::from_pkcs8_der(der.expose())
            .map_err(|e| format!("signing key {}: {e}", info.id.0))?;
        keys.push(Arc::new(key));
    }
    if keys.is_empty() {
        return Err(
            "public keys are enabled but the account has no signing key: run `esession keys generate`"
                .to_owned(),
        );
    }
    Ok(Config {
        signing_keys: keys,
        own_identification: vec![PubkeyMethod::Key, PubkeyMethod::None],
        peer_identification: vec![PubkeyMethod::Key, PubkeyMethod::Hash, PubkeyMethod::None],
        accept_three_message: true,
        dangerously_accept_unverified_keys: settings.dangerously_accept_unverified_keys,
        ..config
    })
}

/// How long a login may take once the server has been reached (finding and
/// reaching it is bounded by the connection itself, about 5 s).
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Logs in and waits until online (or a clear error). A wrong domain, a DNS
/// failure or a server that cannot be reached is reported by the
/// connection within about 5 s; so is a refused login or an untrusted
/// certificate.
/// What a command does with messages sent to our bare JID.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Inbox {
    /// It reads them (`chat`, `listen`): presence priority 0, so the server hands it
    /// messages to the bare JID, among them those kept while we were offline.
    Reads,
    /// It does one thing and leaves: a negative priority keeps the server from handing
    /// it what it would not read (XEP-0187 sessions above all: lost otherwise).
    Ignores,
}

pub(crate) async fn login(
    settings: &Settings,
    manager: SessionManager,
    inbox: Inbox,
) -> Result<EsessionClient, String> {
    let options = settings.connect_options()?;
    let server = options
        .host
        .clone()
        .unwrap_or_else(|| options.jid.split('@').nth(1).unwrap_or_default().to_owned());
    let xmpp = connect::client(&options).map_err(|e| e.to_string())?;
    let mut client = EsessionClient::new(xmpp, manager);
    // Issue 14: what the server archives is known before anyone sees us.
    client.check_archive_on_login(true);
    if inbox == Inbox::Ignores {
        client.set_presence_priority(-1);
    }
    let deadline = tokio::time::sleep(LOGIN_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = client.next_event() => match event {
                Some(ClientEvent::Online { jid }) => {
                    match client.login_info() {
                        Some(info) => eprintln!("Logged in as {jid} ({})", describe_login(&info)),
                        None => eprintln!("Logged in as {jid}"),
                    }
                    return Ok(client);
                }
                Some(ClientEvent::Disconnected { login_error: Some(error), .. }) => {
                    return Err(login_failure(settings, &error));
                }
                Some(ClientEvent::Disconnected { reason, fatal: true, .. }) => return Err(reason),
                Some(ClientEvent::Disconnected { reason, .. }) => {
                    return Err(format!(
                        "The connection to the XMPP server {server} broke before the login \
                         finished ({reason}). Try again; if it keeps happening, check the network."
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(format!(
                        "The connection to the XMPP server {server} closed before the login \
                         finished. Try again; if it keeps happening, check the network."
                    ));
                }
            },
            _ = &mut deadline => return Err(format!(
                "Could not log in to {server} within {} s: the server was reached but did not \
                 complete the login (it may be overloaded, or the TLS handshake keeps failing). \
                 Try again later, or tell the server's administrator.",
                LOGIN_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Issue 14: what the server archives (checked at every login, before our
/// presence goes out: see `EsessionClient::check_archive_on_login`), in one
/// line; off the record is promised only when the session is kept out.
pub(crate) fn archive_line(client: &EsessionClient) -> String {
    format!("Server archive: {}.", client.server_archive().describe())
}

/// How the login went, for the "Logged in" line: "SCRAM-SHA-1 over TLSv1.3".
fn describe_login(info: &LoginInfo) -> String {
    let mechanism = match &info.channel_binding {
        Some(cb) => format!("{} bound to {cb}", info.mechanism),
        None => info.mechanism.clone(),
    };
    match &info.tls_version {
        Some(tls) => format!("{mechanism} over {tls}"),
        None => format!("{mechanism}, NOT encrypted"),
    }
}

/// What to tell the user when logging in failed for good: who could not log
/// in, why, and what to do (with this program's options), in full sentences.
fn login_failure(settings: &Settings, error: &LoginError) -> String {
    let account = settings.account().unwrap_or_default();
    let check = settings.password_source();
    let where_host = "The server's address comes from the JID's domain, or from --host and \
                      --port (or host and port in the config file).";
    match error {
        LoginError::WrongCredentials => format!(
            "The server refused the login as {account}: the JID or the password is wrong \
             (servers do not say which). Check the JID and {check}, then try again."
        ),
        LoginError::CredentialsExpired => format!(
            "The server refused the login as {account}: the password has expired. Set a new one \
             (for example with another client), then update {check}."
        ),
        LoginError::UntrustedCertificate {
            domain,
            reason,
            certificate,
        } => untrusted_certificate(settings, &account, domain, reason, certificate.as_ref()),
        LoginError::DomainNotFound { .. }
        | LoginError::NoXmppService { .. }
        | LoginError::HostNotFound { .. }
        | LoginError::Unreachable { .. } => format!("{error} {where_host}"),
        other => format!("Logging in as {account} failed. {other}"),
    }
}

/// What to tell the user when the server's TLS certificate failed
/// verification: which certificate, why, and what to do about it.
fn untrusted_certificate(
    settings: &Settings,
    account: &str,
    domain: &str,
    reason: &CertificateProblem,
    certificate: Option<&PresentedCertificate>,
) -> String {
    let base = format!(
        "The server's TLS certificate for {domain}{} is not trusted ({reason}): {}. \
         The password was not sent.",
        presented_clause(certificate),
        reason.explanation(domain)
    );
    // The fingerprint to pin is only offered with the warning that it must be
    // checked: pinning whatever was presented is what an attacker wants.
    let pin = match certificate {
        Some(certificate) => format!(
            "--pin {}, only after the server's administrator has confirmed that this is its \
             certificate's SHA-256",
            certificate.sha256
        ),
        None => "--pin SHA256, its fingerprint from the server's administrator".to_owned(),
    };
    let private_ca = format!(
        "If the server uses a private CA, pass that CA's certificate with --ca-file PATH (or \
         set ca_file in the config). If it uses a self-signed certificate, pin that \
         certificate with --server-cert PATH (or {pin})."
    );
    match (reason, settings.ca_file()) {
        (CertificateProblem::NotPinned { .. }, _) => format!("{base} {}", reason.advice()),
        // Pinned, and the pinned certificate itself did not pass the handshake.
        (_, _) if settings.pinned() => format!(
            "{base} You pinned this server's certificate (--server-cert or --pin): the server \
             presented it, but the handshake did not verify with it, so the server may not \
             hold its private key. Tell the server's administrator."
        ),
        (CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature, None) => {
            format!("{base} {private_ca}")
        }
        (CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature, Some(ca)) => {
            format!(
                "{base} It is not signed by the CA in {} (from --ca-file or ca_file in the \
                 config). Pass the certificate of the CA that signed the server's certificate.",
                ca.display()
            )
        }
        (CertificateProblem::NotValidForName { .. }, _) => format!(
            "{base} {domain} is the domain of {account}: check the JID. The server must present \
             a certificate for its XMPP domain."
        ),
        (CertificateProblem::Other(_), None) => {
            format!("{base} {private_ca} Otherwise, tell the server's administrator.")
        }
        (CertificateProblem::Other(_), Some(ca)) => format!(
            "{base} The CA file is {} (from --ca-file or ca_file in the config). Tell the \
             server's administrator.",
            ca.display()
        ),
        (other, _) => format!("{base} {}", other.advice()),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch as HH:MM:SS UTC.
pub(crate) fn clock_time() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}Z", day / 3600, (day / 60) % 60, day % 60)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use std::path::PathBuf;

    use super::*;
    use crate::settings::Global;

    /// Settings for alice@localhost from flags only (an empty config file).
    fn settings(ca_file: Option<PathBuf>) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "").unwrap();
        let global = Global {
            config: Some(config),
            jid: Some("alice@localhost/cli".to_owned()),
            ca_file,
            ..Global::default()
        };
        let settings = Settings::resolve(&global).unwrap();
        (dir, settings)
    }

    fn untrusted(reason: CertificateProblem) -> LoginError {
        LoginError::UntrustedCertificate {
            domain: "localhost".to_owned(),
            reason,
            certificate: None,
        }
    }

    /// Issue 15: the refused certificate is named by subject and SHA-256,
    /// and the pin offered for it comes with the warning to confirm it first.
    #[test]
    fn a_named_certificate_is_shown_with_a_guarded_pin() {
        let (_dir, settings) = settings(None);
        let sha256 = "ab".repeat(32);
        let error = LoginError::UntrustedCertificate {
            domain: "localhost".to_owned(),
            reason: CertificateProblem::UnknownIssuer,
            certificate: Some(PresentedCertificate {
                subject: Some("CN=localhost,O=Example".to_owned()),
                sha256: sha256.clone(),
            }),
        };
        let text = login_failure(&settings, &error);
        assert!(
            text.starts_with(&format!(
                "The server's TLS certificate for localhost (SHA-256 {sha256}, claiming \
                 subject CN=localhost,O=Example) is not trusted (UnknownIssuer): "
            )),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "(or --pin {sha256}, only after the server's administrator has confirmed that \
                 this is its certificate's SHA-256)."
            )),
            "{text}"
        );
        // Without a readable subject, the fingerprint alone.
        let error = LoginError::UntrustedCertificate {
            domain: "localhost".to_owned(),
            reason: CertificateProblem::Expired,
            certificate: Some(PresentedCertificate {
                subject: None,
                sha256: sha256.clone(),
            }),
        };
        let text = login_failure(&settings, &error);
        assert!(
            text.starts_with(&format!(
                "The server's TLS certificate for localhost (SHA-256 {sha256}, no readable \
                 subject) is not trusted (Expired): "
            )),
            "{text}"
        );
    }

    /// Without a CA file, an unknown issuer points to --ca-file.
    #[test]
    fn unknown_issuer_without_ca_file_suggests_ca_file() {
        let (_dir, settings) = settings(None);
        for (reason, name) in [
            (CertificateProblem::UnknownIssuer, "UnknownIssuer"),
            (CertificateProblem::BadSignature, "BadSignature"),
        ] {
            let text = login_failure(&settings, &untrusted(reason));
            assert!(
                text.starts_with(&format!(
                    "The server's TLS certificate for localhost is not trusted ({name}): "
                )),
                "{text}"
            );
            assert!(
                text.ends_with(
                    "The password was not sent. If the server uses a private CA, pass that CA's \
                     certificate with --ca-file PATH (or set ca_file in the config). If it uses \
                     a self-signed certificate, pin that certificate with --server-cert PATH (or \
                     --pin SHA256, its fingerprint from the server's administrator)."
                ),
                "{text}"
            );
        }
    }

    /// With a CA file, the message names it as the one that does not match.
    #[test]
    fn unknown_issuer_with_ca_file_names_it() {
        let (_dir, settings) = settings(Some(PathBuf::from("/etc/our-ca.pem")));
        assert_eq!(
            login_failure(&settings, &untrusted(CertificateProblem::UnknownIssuer)),
            "The server's TLS certificate for localhost is not trusted (UnknownIssuer): it was \
             not issued by a certificate authority this client trusts (it may be self-signed, or \
             from a private CA). The password was not sent. It is not signed by the CA in \
             /etc/our-ca.pem (from --ca-file or ca_file in the config). Pass the certificate of \
             the CA that signed the server's certificate."
        );
    }

    /// A wrong name, an expired or not yet valid certificate: no CA file
    /// would help, so none is suggested.
    #[test]
    fn other_certificate_problems_say_what_to_check() {
        let (_dir, settings) = settings(None);
        let message = |reason| login_failure(&settings, &untrusted(reason));
        let wrong_name = message(CertificateProblem::NotValidForName {
            presented: vec!["example.org".to_owned()],
        });
        assert_eq!(
            wrong_name,
            "The server's TLS certificate for localhost is not trusted (NotValidForName: it is \
             for example.org): it is not valid for localhost. The password was not sent. \
             localhost is the domain of alice@localhost: check the JID. The server must present \
             a certificate for its XMPP domain."
        );
        let expired = message(CertificateProblem::Expired);
        assert!(
            expired.contains(
                "(Expired): it has expired (or this computer's clock is wrong). The password was \
                 not sent. The server's administrator must renew it"
            ),
            "{expired}"
        );
        let early = message(CertificateProblem::NotValidYet);
        assert!(early.ends_with("Check this computer's clock."), "{early}");
        for text in [&wrong_name, &expired, &early] {
            assert!(!text.contains("--ca-file"), "{text}");
        }
        let other = message(CertificateProblem::Other("InvalidPurpose".to_owned()));
        assert!(
            other.starts_with(
                "The server's TLS certificate for localhost is not trusted (InvalidPurpose): it \
                 failed verification. The password was not sent. If the server uses a private \
                 CA, pass that CA's certificate with --ca-file PATH"
            ),
            "{other}"
        );
    }

    /// Every login failure the user can see is made of full sentences.
    #[test]
    fn every_login_failure_is_full_sentences() {
        let (_dir, settings) = settings(None);
        let (_dir2, with_ca) = settings_with_ca();
        let mut errors = vec![
            LoginError::WrongCredentials,
            LoginError::CredentialsExpired,
            LoginError::AccountDisabled,
            LoginError::DomainNotFound {
                domain: "example.invalid".to_owned(),
            },
            LoginError::HostNotFound {
                host: "xmpp.example.invalid".to_owned(),
            },
        ];
        for reason in [
            CertificateProblem::UnknownIssuer,
            CertificateProblem::BadSignature,
            CertificateProblem::NotValidForName { presented: vec![] },
            CertificateProblem::Expired,
            CertificateProblem::NotValidYet,
            CertificateProblem::Revoked,
            CertificateProblem::Other("InvalidPurpose".to_owned()),
        ] {
            errors.push(untrusted(reason));
        }
        for error in &errors {
            for settings in [&settings, &with_ca] {
                let text = login_failure(settings, error);
                assert!(text.starts_with(|c: char| c.is_uppercase()), "{text}");
                assert!(text.ends_with('.'), "{text}");
                assert!(!text.contains(".."), "{text}");
            }
        }
    }

    fn settings_with_ca() -> (tempfile::TempDir, Settings) {
        settings(Some(PathBuf::from("/etc/our-ca.pem")))
    }
}
