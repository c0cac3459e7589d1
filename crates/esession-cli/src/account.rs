//! Opening the trust store and logging in.

use std::path::Path;
use std::sync::Arc;

use esession::{Config, PubkeyMethod, SessionManager, SystemRandomness};
use esession_crypto::SigningKey;
use esession_store::{Store, StoreError};
use esession_xmpp::{
    CertificateProblem, ClientEvent, EsessionClient, LoginError, SystemClock, connect,
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
    Ok(SessionManager::new(
        Config {
            own_jid: None,
            stanzas: settings.stanzas.clone(),
            profiles,
            ..config
        },
        Box::new(SystemRandomness::new(rng)),
        Box::new(trust),
        Box::new(SystemClock),
    ))
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

/// Logs in and waits until online (or a clear error).
pub(crate) async fn login(
    settings: &Settings,
    manager: SessionManager,
) -> Result<EsessionClient, String> {
    let options = settings.connect_options()?;
    let server = options
        .host
        .clone()
        .unwrap_or_else(|| options.jid.split('@').nth(1).unwrap_or_default().to_owned());
    // A clear message for an unreachable server before tokio-xmpp's silent retries.
    let port = options.port.unwrap_or(5222);
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((server.as_str(), port)),
    )
    .await;
    match probe {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if options.host.is_some() || options.port.is_some() => {
            return Err(format!("cannot reach the XMPP server {server}:{port}: {e}"));
        }
        Err(_) if options.host.is_some() || options.port.is_some() => {
            return Err(format!(
                "cannot reach the XMPP server {server}:{port}: no answer within 10 s"
            ));
        }
        // Without an explicit host or port the server may be found through DNS SRV.
        _ => {}
    }
    let xmpp = connect::client(&options).map_err(|e| e.to_string())?;
    let mut client = EsessionClient::new(xmpp, manager);
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(20));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = client.next_event() => match event {
                Some(ClientEvent::Online { jid }) => {
                    eprintln!("Logged in as {jid}");
                    return Ok(client);
                }
                Some(ClientEvent::Disconnected { login_error: Some(error), .. }) => {
                    return Err(login_failure(settings, &error));
                }
                Some(ClientEvent::Disconnected { reason, fatal: true, .. }) => return Err(reason),
                Some(ClientEvent::Disconnected { reason, .. }) => {
                    return Err(format!("cannot reach the XMPP server {server}: {reason}"));
                }
                Some(_) => {}
                None => return Err(format!("the connection to {server} closed")),
            },
            _ = &mut deadline => return Err(format!(
                "could not log in to {server} within 20 s: no XMPP service there, or it does not answer"
            )),
        }
    }
}

/// What to tell the user when the server refused the login for good: who
/// could not log in, why, and where the password came from.
fn login_failure(settings: &Settings, error: &LoginError) -> String {
    let account = settings.account().unwrap_or_default();
    let check = settings.password_source();
    match error {
        LoginError::WrongCredentials => {
            format!("authentication failed for {account}: wrong JID or password (check {check})")
        }
        LoginError::CredentialsExpired => format!(
            "authentication failed for {account}: the password has expired (change it, then update {check})"
        ),
        LoginError::UntrustedCertificate { domain, reason } => {
            untrusted_certificate(settings, &account, domain, reason)
        }
        other => format!("login as {account} failed: {other}"),
    }
}

/// What to tell the user when the server's TLS certificate failed
/// verification: which certificate, why, and what to do about it.
fn untrusted_certificate(
    settings: &Settings,
    account: &str,
    domain: &str,
    reason: &CertificateProblem,
) -> String {
    let base = format!("the server's TLS certificate for {domain} is not trusted ({reason})");
    let private_ca =
        "if the server uses a private CA, pass --ca-file PATH (or set ca_file in the config)";
    match (reason, settings.ca_file()) {
        (CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature, None) => {
            format!("{base}: {private_ca}")
        }
        (CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature, Some(ca)) => {
            format!(
                "{base}: it is not signed by the CA in {} (from --ca-file or ca_file in the config); \
                 pass the CA certificate that signed the server's",
                ca.display()
            )
        }
        (CertificateProblem::NotValidForName { .. }, _) => format!(
            "{base}: it is not valid for {domain}, the domain of {account}; check the JID \
             (the server must present a certificate for its XMPP domain)"
        ),
        (CertificateProblem::Expired, _) => format!(
            "{base}: it has expired; the server's administrator must renew it \
             (or this computer's clock is wrong)"
        ),
        (CertificateProblem::NotValidYet, _) => {
            format!("{base}: it is not valid yet; check this computer's clock")
        }
        (CertificateProblem::Revoked, _) => {
            format!("{base}: its issuer has revoked it; tell the server's administrator")
        }
        (_, None) => format!("{base}; {private_ca}"),
        (_, Some(ca)) => format!("{base} (CA file {})", ca.display()),
    }
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
        }
    }

    /// Without a CA file, an unknown issuer points to --ca-file.
    #[test]
    fn unknown_issuer_without_ca_file_suggests_ca_file() {
        let (_dir, settings) = settings(None);
        for (reason, name) in [
            (CertificateProblem::UnknownIssuer, "UnknownIssuer"),
            (CertificateProblem::BadSignature, "BadSignature"),
        ] {
            assert_eq!(
                login_failure(&settings, &untrusted(reason)),
                format!(
                    "the server's TLS certificate for localhost is not trusted ({name}): \
                     if the server uses a private CA, pass --ca-file PATH (or set ca_file in the config)"
                )
            );
        }
    }

    /// With a CA file, the message names it as the one that does not match.
    #[test]
    fn unknown_issuer_with_ca_file_names_it() {
        let (_dir, settings) = settings(Some(PathBuf::from("/etc/our-ca.pem")));
        assert_eq!(
            login_failure(&settings, &untrusted(CertificateProblem::UnknownIssuer)),
            "the server's TLS certificate for localhost is not trusted (UnknownIssuer): \
             it is not signed by the CA in /etc/our-ca.pem (from --ca-file or ca_file in the config); \
             pass the CA certificate that signed the server's"
        );
    }

    /// A wrong name, an expired or not yet valid certificate: no CA file
    /// would help, so none is suggested.
    #[test]
    fn other_certificate_problems_say_what_to_check() {
        let (_dir, settings) = settings(None);
        let message = |reason| login_failure(&settings, &untrusted(reason));
        let wrong_name = message(CertificateProblem::NotValidForName {
            presented: vec!["DnsName(\"example.org\")".to_owned()],
        });
        assert!(
            wrong_name.starts_with(
                "the server's TLS certificate for localhost is not trusted \
                 (NotValidForName: it is for DnsName(\"example.org\")): \
                 it is not valid for localhost, the domain of alice@localhost; check the JID"
            ),
            "{wrong_name}"
        );
        let expired = message(CertificateProblem::Expired);
        assert!(
            expired.contains("(Expired): it has expired; the server's administrator must renew it"),
            "{expired}"
        );
        let early = message(CertificateProblem::NotValidYet);
        assert!(early.contains("check this computer's clock"), "{early}");
        for text in [wrong_name, expired, early] {
            assert!(!text.contains("--ca-file"), "{text}");
        }
        let other = message(CertificateProblem::Other("InvalidPurpose".to_owned()));
        assert!(
            other.starts_with(
                "the server's TLS certificate for localhost is not trusted (InvalidPurpose); \
                 if the server uses a private CA, pass --ca-file PATH"
            ),
            "{other}"
        );
    }
}
