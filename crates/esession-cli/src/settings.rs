//! Where settings come from: flags, then the config file, then defaults; the
//! password from a file, an environment variable or a prompt — never a flag.

use esession_crypto::Hashing;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use esession::{OtrPolicy, StanzaKind};
use esession_crypto::SecretBytes;
use esession_store::Unlock;
use esession_xmpp::{ConnectOptions, TransportSecurity};
use serde::Deserialize;

/// Options shared by every command that logs in or opens the trust store.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct Global {
    /// More diagnostics on standard error: -v what the client does, -vv
    /// protocol steps, -vvv everything but the raw XML stream. Never key
    /// material, passwords or message text. RUST_LOG, if set, decides
    /// instead (RUST_LOG=tokio_xmpp=trace logs the raw stream, SASL included).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Configuration file (default: $XDG_CONFIG_HOME/esession/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Our account's JID (user@server), overriding the config file. Without a
    /// resource the client logs in as user@server/esession-XXXXXXXX, the same
    /// for this account and trust store every time (so contacts see one
    /// client of ours, not a new one per login).
    #[arg(long, global = true, value_name = "JID")]
    pub(crate) jid: Option<String>,
    /// Server host name or address (default: the JID's domain, via DNS SRV).
    #[arg(long, global = true)]
    pub(crate) host: Option<String>,
    /// Server port (default 5222).
    #[arg(long, global = true)]
    pub(crate) port: Option<u16>,
    /// Trust only this CA certificate (PEM) for the server's TLS certificate
    /// (not with --insecure-plaintext-loopback, nor with
    /// insecure_plaintext_loopback in the config file).
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        conflicts_with = "insecure_plaintext_loopback"
    )]
    pub(crate) ca_file: Option<PathBuf>,
    /// Trust exactly this server certificate (PEM), pinned by its SHA-256:
    /// for a server with a self-signed certificate. Its name and dates are
    /// not checked. Not with --ca-file or --pin.
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        conflicts_with_all = ["ca_file", "pin", "insecure_plaintext_loopback"]
    )]
    pub(crate) server_cert: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint (64
    /// hex digits, colons allowed), as the server's administrator gave it.
    #[arg(
        long,
        global = true,
        value_name = "SHA256",
        conflicts_with_all = ["ca_file", "insecure_plaintext_loopback"]
    )]
    pub(crate) pin: Option<String>,
    /// Read the account password from this file (else $ESESSION_PASSWORD, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Connect WITHOUT TLS. Refused unless the server is on a loopback address
    /// (tests); not with a CA file (--ca-file or ca_file in the config file).
    #[arg(long, global = true)]
    pub(crate) insecure_plaintext_loopback: bool,
    /// Identify with our stored signing key (`esession keys generate`) and
    /// accept contacts' keys; unverified keys are refused (see `trust`).
    #[arg(long, global = true)]
    pub(crate) public_keys: bool,
    /// When `chat` or `listen` ends, publish fresh offline options valid this
    /// many hours (XEP-0187: contacts who verified your key can then write to
    /// you while you are away; a new set on every departure). Needs a signing key.
    #[arg(long, global = true, value_name = "HOURS")]
    pub(crate) offline_on_exit: Option<u64>,
    /// Stanza kinds to offer and accept in sessions, comma-separated from
    /// message, presence, iq (default: message). Presence and iq are then
    /// encrypted too when the contact agrees.
    #[arg(long, global = true, value_name = "KINDS", value_delimiter = ',')]
    pub(crate) stanzas: Option<Vec<String>>,
    /// Off-the-record policy for sessions (XEP-0136's modes): require (off
    /// the record or no session), prefer (the default), approve, concede,
    /// oppose, forbid (always may be logged). Off the record is only ever
    /// agreed once the server's archive is confirmed to leave the session out.
    #[arg(long, global = true, value_name = "POLICY", value_parser = parse_otr_policy, conflicts_with = "otr")]
    pub(crate) archiving: Option<OtrPolicy>,
    /// Off the record or no session at all, for this run (`--archiving require`).
    /// Like --archiving, it applies to every contact in this run, over the
    /// per-contact policies of the config file.
    #[arg(long, global = true)]
    pub(crate) otr: bool,
    /// Trust store file (default: $XDG_DATA_HOME/esession/store.db).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) store: Option<PathBuf>,
    /// Unlock the trust store with this key file (mode 0600) instead of a
    /// passphrase (not with --store-passphrase-file, nor with passphrase_file
    /// in the config file).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "store_passphrase_file"
    )]
    pub(crate) store_key_file: Option<PathBuf>,
    /// Read the trust-store passphrase from this file (else $ESESSION_STORE_PASSPHRASE, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) store_passphrase_file: Option<PathBuf>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    account: AccountSection,
    #[serde(default)]
    store: StoreSection,
    /// Per-contact settings: `[contact."bob@example.com"]`.
    #[serde(default)]
    contact: std::collections::BTreeMap<String, ContactSection>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ContactSection {
    /// Off-the-record policy with this contact (overrides `[account] archiving`).
    archiving: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct AccountSection {
    jid: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    ca_file: Option<PathBuf>,
    password_file: Option<PathBuf>,
    #[serde(default)]
    insecure_plaintext_loopback: bool,
    /// Identify with our stored signing key and accept contacts' keys (ESN-17).
    #[serde(default)]
    public_keys: bool,
    /// Publish offline options valid this many hours when `chat` or `listen` ends.
    offline_on_exit: Option<u64>,
    /// Accept contacts' keys never verified (AMB-43): encrypted, NOT authenticated.
    #[serde(default)]
    dangerously_accept_unverified_keys: bool,
    /// Stanza kinds offered and accepted (XEP-0116 `stanzas`): `message`,
    /// `presence`, `iq`; default `["message"]`.
    stanzas: Option<Vec<String>>,
    /// Off-the-record policy (`require`, `prefer`, `approve`, `concede`,
    /// `oppose`, `forbid`); default `prefer`.
    archiving: Option<String>,
    /// Pin the server's certificate (PEM file) by its SHA-256.
    server_cert: Option<PathBuf>,
    /// Pin the server's certificate by this SHA-256 fingerprint.
    pin: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: Option<PathBuf>,
    key_file: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
}

/// Everything a command needs, resolved.
pub(crate) struct Settings {
    pub(crate) jid: Option<String>,
    /// A pinned server certificate's SHA-256 (`--server-cert`, `--pin`).
    pin: Option<[u8; 32]>,
    host: Option<String>,
    port: Option<u16>,
    ca_file: Option<PathBuf>,
    password_file: Option<PathBuf>,
    plaintext: bool,
    /// Use public keys (`[account] public_keys = true` or `--public-keys`).
    pub(crate) public_keys: bool,
    /// Hours of validity of the offline options published when `chat` or
    /// `listen` ends (`--offline-on-exit`, `[account] offline_on_exit`).
    pub(crate) offline_on_exit: Option<u64>,
    /// AMB-43 override (`[account] dangerously_accept_unverified_keys = true`).
    pub(crate) dangerously_accept_unverified_keys: bool,
    /// Stanza kinds offered and accepted (`--stanzas`, `[account] stanzas`).
    pub(crate) stanzas: Vec<StanzaKind>,
    /// Off-the-record policy (`--otr`, `--archiving`, `[account] archiving`).
    pub(crate) otr_policy: OtrPolicy,
    /// Per-contact policies (`[contact."jid"] archiving`), by bare JID.
    pub(crate) contact_otr_policies: std::collections::HashMap<String, OtrPolicy>,
    pub(crate) store_path: PathBuf,
    store_key_file: Option<PathBuf>,
    store_passphrase_file: Option<PathBuf>,
}

const NO_ACCOUNT: &str = "no account: pass --jid or set [account] jid in the config file";

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "esession")
}

impl Settings {
    /// Flags over the config file over defaults.
    pub(crate) fn resolve(global: &Global) -> Result<Self, String> {
        let default_config = dirs().map(|d| d.config_dir().join("config.toml"));
        let path = global.config.clone().or(default_config);
        let file: FileConfig = match &path {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text)
                    .map_err(|e| format!("invalid config file {}: {e}", path.display()))?
            }
            Some(path) if global.config.is_some() => {
                return Err(format!("config file {} does not exist", path.display()));
            }
            _ => FileConfig::default(),
        };
        let default_store = dirs()
            .map(|d| d.data_dir().join("store.db"))
            .unwrap_or_else(|| PathBuf::from("esession-store.db"));
        let config_file = path.as_deref().unwrap_or(Path::new("config.toml"));
        check_conflicts(global, &file, config_file)?;
        let from_file = |value: &str, key: &str| {
            OtrPolicy::from_value(value).ok_or_else(|| {
                format!(
                    "invalid config file {}: {key} = \"{value}\" is not an archiving policy \
                     (require, prefer, approve, concede, oppose or forbid)",
                    config_file.display()
                )
            })
        };
        let otr_policy = match (global.otr, global.archiving, &file.account.archiving) {
            (true, _, _) => OtrPolicy::Require,
            (false, Some(policy), _) => policy,
            (false, None, Some(value)) => from_file(value, "[account] archiving")?,
            (false, None, None) => OtrPolicy::default(),
        };
        let mut contact_otr_policies = std::collections::HashMap::new();
        for (jid, section) in &file.contact {
            if let Some(value) = &section.archiving {
                let policy = from_file(value, &format!("[contact.\"{jid}\"] archiving"))?;
                contact_otr_policies.insert(jid.to_lowercase(), policy);
            }
        }
        if global.otr || global.archiving.is_some() {
            // The flag is for this run, whoever the contact.
            contact_otr_policies.clear();
        }
        let pin = server_pin(global, &file, config_file)?;
        if pin.is_some() && file.account.insecure_plaintext_loopback {
            return Err(format!(
                "a pinned server certificate (--server-cert, --pin) needs TLS, and {} sets \
                 insecure_plaintext_loopback: drop one",
                config_file.display()
            ));
        }
        if pin.is_some()
            && file.account.ca_file.is_some()
            && global.pin.is_none()
            && global.server_cert.is_none()
        {
            return Err(format!(
                "a pinned server certificate (--server-cert, --pin) and a CA file ([account] \
                 ca_file in {}) exclude each other: the pin alone decides; drop one",
                config_file.display()
            ));
        }
        Ok(Self {
            pin,
            otr_policy,
            contact_otr_policies,
            jid: global.jid.clone().or(file.account.jid),
            host: global.host.clone().or(file.account.host),
            port: global.port.or(file.account.port),
            ca_file: global.ca_file.clone().or(file.account.ca_file),
            password_file: global.password_file.clone().or(file.account.password_file),
            plaintext: global.insecure_plaintext_loopback
                || file.account.insecure_plaintext_loopback,
            public_keys: global.public_keys || file.account.public_keys,
            offline_on_exit: global.offline_on_exit.or(file.account.offline_on_exit),
            dangerously_accept_unverified_keys: file.account.dangerously_accept_unverified_keys,
            stanzas: stanza_kinds(
                global
                    .stanzas
                    .as_deref()
                    .or(file.account.stanzas.as_deref()),
            )?,
            store_path: global
                .store
                .clone()
                .or(file.store.path)
                .unwrap_or(default_store),
            store_key_file: global.store_key_file.clone().or(file.store.key_file),
            store_passphrase_file: global
                .store_passphrase_file
                .clone()
                .or(file.store.passphrase_file),
        })
    }

    /// Our account's bare JID.
    pub(crate) fn account(&self) -> Result<String, String> {
        let jid = self.jid.as_deref().ok_or(NO_ACCOUNT)?;
        Ok(jid.split('/').next().unwrap_or_default().to_owned())
    }

    /// The JID we log in with: the configured one if it names a resource,
    /// else the bare JID with [`stable_resource`] of it and the trust store,
    /// so that every login of this account with this store is the same
    /// client to our contacts (who keep retained secrets per client).
    pub(crate) fn login_jid(&self) -> Result<String, String> {
        let jid = self.jid.as_deref().ok_or(NO_ACCOUNT)?;
        if jid.contains('/') {
            return Ok(jid.to_owned());
        }
        Ok(format!("{jid}/{}", stable_resource(jid, &self.store_path)))
    }

    /// Refuses at once, before the trust store is opened or anything is sent,
    /// a contact that is not a person's JID or is our own account.
    pub(crate) fn check_contact(&self, contact: &str) -> Result<String, String> {
        let normalized = check_contact_jid(contact)?;
        let account = self.account()?;
        let bare = normalized.split('/').next().unwrap_or(&normalized);
        if bare == account.to_lowercase() {
            return Err(format!(
                "{contact} is your own account ({account}): an encrypted session is with \
                 someone else; give the contact's JID"
            ));
        }
        Ok(normalized)
    }

    /// Whether the server's certificate is pinned (`--server-cert`, `--pin`).
    pub(crate) fn pinned(&self) -> bool {
        self.pin.is_some()
    }

    /// Login options, reading the password.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, String> {
        let jid = self.login_jid()?;
        let password = match (&self.password_file, std::env::var("ESESSION_PASSWORD")) {
            (Some(file), _) => read_secret_file(file)?,
            (None, Ok(value)) => value,
            (None, Err(_)) => prompt(&format!("Password for {jid}: "))?,
        };
        let security = match (self.plaintext, self.pin) {
            (true, _) => TransportSecurity::DangerousPlaintextLoopbackOnly,
            (false, Some(sha256)) => TransportSecurity::StartTlsPinned { sha256 },
            (false, None) => TransportSecurity::StartTls {
                ca_file: self.ca_file.clone(),
            },
        };
        Ok(ConnectOptions {
            jid,
            password,
            host: self.host.clone(),
            port: self.port,
            security,
            dns_server: None,
        })
    }

    /// The CA file the server's certificate is verified against, if any
    /// (else the system's roots).
    pub(crate) fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Where [`Self::connect_options`] takes the password from, for messages:
    /// the password file, `$ESESSION_PASSWORD` or the prompt.
    pub(crate) fn password_source(&self) -> String {
        match (&self.password_file, std::env::var("ESESSION_PASSWORD")) {
            (Some(file), _) => format!("the password file {}", file.display()),
            (None, Ok(_)) => "$ESESSION_PASSWORD".to_owned(),
            (None, Err(_)) => "the password you typed".to_owned(),
        }
    }

    /// How to unlock the trust store.
    pub(crate) fn unlock(&self, creating: bool) -> Result<Unlock, String> {
        if let Some(key) = &self.store_key_file {
            return Ok(Unlock::KeyFile(key.clone()));
        }
        let passphrase = match (
            &self.store_passphrase_file,
            std::env::var("ESESSION_STORE_PASSPHRASE"),
        ) {
            (Some(file), _) => read_secret_file(file)?,
            (None, Ok(value)) => value,
            (None, Err(_)) => {
                let first = prompt("Trust-store passphrase: ")?;
                if creating && prompt("Repeat the passphrase: ")? != first {
                    return Err("the passphrases differ".to_owned());
                }
                first
            }
        };
        if passphrase.is_empty() {
            return Err("empty trust-store passphrase".to_owned());
        }
        Ok(Unlock::Passphrase(SecretBytes::new(
            passphrase.into_bytes(),
        )))
    }
}

/// The resource we log in with when the user gave a bare JID:
/// `esession-` and 8 hex digits of SHA-256 over the account's bare JID and the
/// canonical path of the trust store. Stable across logins, different for
/// another store of the same account (another client, with other secrets).
pub(crate) fn stable_resource(account: &str, store: &Path) -> String {
    let path = canonical(store);
    let digest = esession_crypto::HashAlgorithm::Sha256.digest(&[
        account.to_lowercase().as_bytes(),
        b"\0",
        path.to_string_lossy().as_bytes(),
    ]);
    format!(
        "esession-{}",
        hex::encode(digest.get(..4).unwrap_or(&digest))
    )
}

/// `path` made absolute with symbolic links resolved, as far as it exists
/// (the store file may not be created yet): the same file always gives the
/// same path however it was named.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(path) {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            canonical(parent).join(name)
        }
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
    }
}

/// Whether `contact` is a person's JID: `user@domain`, optionally with
/// `/resource`. A JID without `@` names a server, not someone to talk to.
/// Checks what the user typed as a contact and returns it normalized (RFC
/// 7622: `Bob@Example.com` is `bob@example.com`), the spelling every
/// comparison with the sessions' JIDs uses.
pub(crate) fn check_contact_jid(contact: &str) -> Result<String, String> {
    const FORM: &str = "a contact's JID is user@domain, e.g. bob@example.com (bob@example.com/laptop for one of their clients)";
    if contact.is_empty() {
        return Err(format!("no contact given: {FORM}"));
    }
    if contact.contains(char::is_whitespace) {
        return Err(format!(
            "\"{contact}\" is not a JID (it contains a space): {FORM}"
        ));
    }
    let (bare, resource) = match contact.split_once('/') {
        Some((bare, resource)) => (bare, Some(resource)),
        None => (contact, None),
    };
    let problem = match bare.split_once('@') {
        None => "it has no user part (without an @ it names a server, not a person)",
        Some(("", _)) => "it has nothing before the @",
        Some((_, "")) => "it has no domain after the @",
        Some((_, domain)) if domain.contains('@') => "it has more than one @",
        Some(_) if resource == Some("") => "it ends with / but names no client after it",
        Some(_) => {
            return jid::Jid::new(contact)
                .map(|jid| jid.as_str().to_owned())
                .map_err(|e| format!("\"{contact}\" is not a valid JID ({e}); {FORM}"));
        }
    };
    Err(format!(
        "\"{contact}\" is not a contact's JID: {problem}; {FORM}"
    ))
}

/// Where a setting was given, for messages: the flag, or the key in the
/// config file.
fn origin(from_flag: bool, flag: &str, section: &str, key: &str, config: &Path) -> String {
    if from_flag {
        flag.to_owned()
    } else {
        format!("{key} in [{section}] of {}", config.display())
    }
}

/// Settings that exclude each other, once flags and the config file are
/// merged (the parser already refuses two such flags together): plaintext
/// with a CA file, and two ways to unlock the trust store.
fn check_conflicts(global: &Global, file: &FileConfig, config: &Path) -> Result<(), String> {
    let plaintext = global.insecure_plaintext_loopback || file.account.insecure_plaintext_loopback;
    if plaintext && (global.ca_file.is_some() || file.account.ca_file.is_some()) {
        let plain = origin(
            global.insecure_plaintext_loopback,
            "--insecure-plaintext-loopback",
            "account",
            "insecure_plaintext_loopback",
            config,
        );
        let ca = origin(
            global.ca_file.is_some(),
            "--ca-file",
            "account",
            "ca_file",
            config,
        );
        return Err(format!(
            "{plain} and {ca} cannot be used together: a plaintext connection has no TLS \
             certificate to check against a CA; remove one of them"
        ));
    }
    let key_file = global.store_key_file.is_some() || file.store.key_file.is_some();
    let passphrase_file =
        global.store_passphrase_file.is_some() || file.store.passphrase_file.is_some();
    if key_file && passphrase_file {
        let key = origin(
            global.store_key_file.is_some(),
            "--store-key-file",
            "store",
            "key_file",
            config,
        );
        let passphrase = origin(
            global.store_passphrase_file.is_some(),
            "--store-passphrase-file",
            "store",
            "passphrase_file",
            config,
        );
        return Err(format!(
            "{key} and {passphrase} cannot be used together: the trust store is unlocked \
             either with a key file or with a passphrase; remove one of them"
        ));
    }
    Ok(())
}

/// The stanza kinds to offer (ENC-01, AMB-29): known names only, `message`
/// always among them (the chat needs it), each once; default `message`.
fn stanza_kinds(names: Option<&[String]>) -> Result<Vec<StanzaKind>, String> {
    let Some(names) = names else {
        return Ok(vec![StanzaKind::Message]);
    };
    let mut kinds = Vec::new();
    for name in names {
        let kind = StanzaKind::from_name(name.trim()).ok_or_else(|| {
            format!("unknown stanza kind \"{name}\" in stanzas: use message, presence, iq")
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if !kinds.contains(&StanzaKind::Message) {
        return Err(
            "stanzas must include \"message\" (presence and iq come in addition)".to_owned(),
        );
    }
    Ok(kinds)
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn prompt(label: &str) -> Result<String, String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "{}needed, but there is no terminal to ask on (use a file or environment variable)",
            label.trim_end_matches([':', ' '])
        ));
    }
    rpassword::prompt_password(label).map_err(|e| e.to_string())
}

/// The pinned server certificate's SHA-256: from the flags (`--server-cert`,
/// `--pin`), else from the config file unless a flag chose another way to
/// trust the server (`--ca-file`, `--insecure-plaintext-loopback`).
fn server_pin(
    global: &Global,
    file: &FileConfig,
    config_file: &Path,
) -> Result<Option<[u8; 32]>, String> {
    use esession_xmpp::connect::pinning::{certificate_sha256, parse_pin};
    match (&global.server_cert, &global.pin) {
        (Some(cert), _) => return certificate_sha256(cert).map(Some),
        (None, Some(text)) => return parse_pin(text).map(Some),
        (None, None) => {}
    }
    if global.ca_file.is_some() || global.insecure_plaintext_loopback {
        return Ok(None);
    }
    match (&file.account.server_cert, &file.account.pin) {
        (Some(_), Some(_)) => Err(format!(
            "{} sets both server_cert and pin in [account]: they are two ways to pin one \
             certificate; keep one",
            config_file.display()
        )),
        (Some(cert), None) => certificate_sha256(cert).map(Some),
        (None, Some(text)) => parse_pin(text).map(Some),
        (None, None) => Ok(None),
    }
}

/// Reads `--archiving`.
fn parse_otr_policy(value: &str) -> Result<OtrPolicy, String> {
    OtrPolicy::from_value(value).ok_or_else(|| {
        format!(
            "\"{value}\" is not an archiving policy: use require, prefer, approve, concede, oppose or forbid"
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| (*n).to_owned()).collect()
    }

    /// docs/config.example.toml is a valid config file and shows every key
    /// of every section (a key added to a section must be added there too:
    /// this list is the sections' fields).
    #[test]
    fn the_example_config_file_is_valid_and_complete() {
        let example = include_str!("../../../docs/config.example.toml");
        let file: FileConfig = toml::from_str(example).unwrap();
        assert_eq!(file.account.archiving.as_deref(), Some("prefer"));
        assert_eq!(
            file.contact["bob@example.org"].archiving.as_deref(),
            Some("require")
        );
        let keys = [
            "jid",
            "host",
            "port",
            "ca_file",
            "password_file",
            "insecure_plaintext_loopback",
            "public_keys",
            "offline_on_exit",
            "dangerously_accept_unverified_keys",
            "stanzas",
            "archiving",
            "server_cert",
            "pin",
            "path",
            "key_file",
            "passphrase_file",
        ];
        for key in keys {
            assert!(
                example
                    .lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "docs/config.example.toml lacks {key}"
            );
        }
    }

    #[test]
    fn stanzas_default_to_message_only() {
        assert_eq!(stanza_kinds(None).unwrap(), [StanzaKind::Message]);
    }

    #[test]
    fn stanzas_accept_every_kind_once_in_the_given_order() {
        assert_eq!(
            stanza_kinds(Some(&names(&["message", "iq", " presence", "iq"]))).unwrap(),
            [StanzaKind::Message, StanzaKind::Iq, StanzaKind::Presence]
        );
    }

    #[test]
    fn stanzas_refuse_unknown_kinds_and_a_list_without_message() {
        let unknown = stanza_kinds(Some(&names(&["message", "pubsub"]))).unwrap_err();
        assert!(unknown.contains("\"pubsub\""), "{unknown}");
        let no_message = stanza_kinds(Some(&names(&["presence", "iq"]))).unwrap_err();
        assert!(
            no_message.contains("must include \"message\""),
            "{no_message}"
        );
        assert!(stanza_kinds(Some(&[])).is_err());
    }

    #[test]
    fn stanzas_are_read_from_the_account_section() {
        let file: FileConfig = toml::from_str(
            "[account]\njid = \"a@example.org\"\nstanzas = [\"message\", \"presence\", \"iq\"]\n",
        )
        .unwrap();
        assert_eq!(
            stanza_kinds(file.account.stanzas.as_deref()).unwrap(),
            StanzaKind::ALL
        );
    }

    /// Settings from `global` and a config file with `config` in it.
    fn resolve(dir: &Path, config: &str, global: Global) -> Result<Settings, String> {
        let path = dir.join("config.toml");
        std::fs::write(&path, config).unwrap();
        Settings::resolve(&Global {
            config: Some(path),
            ..global
        })
    }

    #[test]
    fn a_bare_jid_logs_in_with_a_resource_stable_for_account_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let global = |jid: &str, store: PathBuf| Global {
            jid: Some(jid.to_owned()),
            store: Some(store),
            ..Global::default()
        };
        let store = dir.path().join("store.db");
        let first = resolve(dir.path(), "", global("alice@example.org", store.clone()))
            .unwrap()
            .login_jid()
            .unwrap();
        let (bare, resource) = first.split_once('/').unwrap();
        assert_eq!(bare, "alice@example.org");
        assert_eq!(resource.len(), "esession-".len() + 8, "{resource}");
        assert!(resource.starts_with("esession-"), "{resource}");
        assert!(
            resource["esession-".len()..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{resource}"
        );
        assert_eq!(
            resource,
            stable_resource(
                "alice@example.org",
                &std::fs::canonicalize(dir.path()).unwrap().join("store.db")
            )
        );
        // The same store named another way (it exists now): the same resource.
        std::fs::write(&store, "").unwrap();
        let other_name = dir.path().join(".").join("store.db");
        assert_eq!(
            stable_resource("alice@example.org", &other_name),
            stable_resource("alice@example.org", &store)
        );
        // Another store or another account: another client.
        assert_ne!(
            stable_resource("alice@example.org", &dir.path().join("other.db")),
            stable_resource("alice@example.org", &store)
        );
        assert_ne!(
            stable_resource("bob@example.org", &store),
            stable_resource("alice@example.org", &store)
        );
        // A full JID is used as given.
        let full = resolve(dir.path(), "", global("alice@example.org/phone", store))
            .unwrap()
            .login_jid()
            .unwrap();
        assert_eq!(full, "alice@example.org/phone");
    }

    #[test]
    fn contacts_must_be_someone_elses_jid() {
        let dir = tempfile::tempdir().unwrap();
        let settings = resolve(
            dir.path(),
            "",
            Global {
                jid: Some("alice@example.org/pda".to_owned()),
                ..Global::default()
            },
        )
        .unwrap();
        assert_eq!(
            settings.check_contact("bob@example.com"),
            Ok("bob@example.com".to_owned())
        );
        assert_eq!(
            settings.check_contact("bob@example.com/laptop"),
            Ok("bob@example.com/laptop".to_owned())
        );
        // Normalized as the server and the sessions spell it; the resource keeps its case.
        assert_eq!(
            settings.check_contact("Bob@Example.COM/Laptop"),
            Ok("bob@example.com/Laptop".to_owned())
        );
        for own in ["alice@example.org", "Alice@Example.org/phone"] {
            assert_eq!(
                settings.check_contact(own).unwrap_err(),
                format!(
                    "{own} is your own account (alice@example.org): an encrypted session is \
                     with someone else; give the contact's JID"
                )
            );
        }
        let form = "a contact's JID is user@domain, e.g. bob@example.com \
                    (bob@example.com/laptop for one of their clients)";
        for (contact, problem) in [
            (
                "example.com",
                "it has no user part (without an @ it names a server, not a person)",
            ),
            (
                "bob",
                "it has no user part (without an @ it names a server, not a person)",
            ),
            ("@example.com", "it has nothing before the @"),
            ("bob@", "it has no domain after the @"),
            ("bob@@example.com", "it has more than one @"),
            (
                "bob@example.com/",
                "it ends with / but names no client after it",
            ),
        ] {
            assert_eq!(
                settings.check_contact(contact).unwrap_err(),
                format!("\"{contact}\" is not a contact's JID: {problem}; {form}")
            );
        }
        assert_eq!(
            settings.check_contact("bob smith@example.com").unwrap_err(),
            format!("\"bob smith@example.com\" is not a JID (it contains a space): {form}")
        );
    }

    #[test]
    fn conflicting_settings_across_flags_and_the_config_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml").display().to_string();
        let error = resolve(
            dir.path(),
            "[account]\ninsecure_plaintext_loopback = true\n",
            Global {
                ca_file: Some(PathBuf::from("/ca.pem")),
                ..Global::default()
            },
        )
        .err()
        .unwrap();
        assert_eq!(
            error,
            format!(
                "insecure_plaintext_loopback in [account] of {config} and --ca-file cannot be \
                 used together: a plaintext connection has no TLS certificate to check against \
                 a CA; remove one of them"
            )
        );
        let error = resolve(
            dir.path(),
            "[account]\nca_file = \"/ca.pem\"\ninsecure_plaintext_loopback = true\n",
            Global::default(),
        )
        .err()
        .unwrap();
        assert!(
            error.starts_with(&format!(
                "insecure_plaintext_loopback in [account] of {config} and ca_file in [account] \
                 of {config} cannot be used together"
            )),
            "{error}"
        );
        let error = resolve(
            dir.path(),
            "[store]\npassphrase_file = \"/pass\"\n",
            Global {
                store_key_file: Some(PathBuf::from("/key")),
                ..Global::default()
            },
        )
        .err()
        .unwrap();
        assert_eq!(
            error,
            format!(
                "--store-key-file and passphrase_file in [store] of {config} cannot be used \
                 together: the trust store is unlocked either with a key file or with a \
                 passphrase; remove one of them"
            )
        );
        // Flags that agree with the file are fine.
        assert!(
            resolve(
                dir.path(),
                "[store]\nkey_file = \"/key\"\n[account]\nca_file = \"/ca.pem\"\n",
                Global {
                    store_key_file: Some(PathBuf::from("/other-key")),
                    ca_file: Some(PathBuf::from("/other-ca.pem")),
                    ..Global::default()
                },
            )
            .is_ok()
        );
    }
}
