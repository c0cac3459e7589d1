//! Opening the trust store and logging in.

use std::sync::Arc;

use esession::{Config, PubkeyMethod, SessionManager, SystemRandomness};
use esession_crypto::SigningKey;
use esession_store::Store;
use esession_xmpp::{ClientEvent, EsessionClient, LoginError, SystemClock, connect};

use crate::settings::Settings;

/// Opens (or, on first use, creates) the encrypted trust store.
pub(crate) fn open_store(settings: &Settings) -> Result<Store, String> {
    let path = &settings.store_path;
    if path.exists() {
        Store::open(path, settings.unlock(false)?)
            .map_err(|e| format!("trust store {}: {e}", path.display()))
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        eprintln!("Creating a new encrypted trust store at {}", path.display());
        Store::create(path, settings.unlock(true)?)
            .map_err(|e| format!("trust store {}: {e}", path.display()))
    }
}

/// A session manager for our account, over the persistent store.
pub(crate) fn manager(
    settings: &Settings,
    store: &Store,
    config: Config,
) -> Result<SessionManager, String> {
    let account = settings.account()?;
    let trust = store.account(&account).map_err(|e| e.to_string())?;
    let rng = crate::rng::os_seeded()?;
    let config = if settings.public_keys {
        with_public_keys(store, &account, settings, config)?
    } else {
        config
    };
    Ok(SessionManager::new(
        Config {
            own_jid: None,
            stanzas: settings.stanzas.clone(),
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
                "could not log in to {server} within 20 s: a server certificate we do not trust (try --ca-file), or no XMPP service there"
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
        other => format!("login as {account} failed: {other}"),
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
