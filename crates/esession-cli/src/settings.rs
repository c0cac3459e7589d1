//! Where settings come from: flags, then the config file, then defaults; the
//! password from a file, an environment variable or a prompt — never a flag.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use esession::StanzaKind;
use esession_crypto::SecretBytes;
use esession_store::Unlock;
use esession_xmpp::{ConnectOptions, TransportSecurity};
use serde::Deserialize;

/// Options shared by every command that logs in or opens the trust store.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct Global {
    /// Configuration file (default: $XDG_CONFIG_HOME/esession/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Our account's JID (user@server), overriding the config file.
    #[arg(long, global = true, value_name = "JID")]
    pub(crate) jid: Option<String>,
    /// Server host name or address (default: the JID's domain, via DNS SRV).
    #[arg(long, global = true)]
    pub(crate) host: Option<String>,
    /// Server port (default 5222).
    #[arg(long, global = true)]
    pub(crate) port: Option<u16>,
    /// Trust only this CA certificate (PEM) for the server's TLS certificate.
    #[arg(long, global = true, value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Read the account password from this file (else $ESESSION_PASSWORD, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Connect WITHOUT TLS. Refused unless the server is on a loopback address (tests).
    #[arg(long, global = true)]
    pub(crate) insecure_plaintext_loopback: bool,
    /// Identify with our stored signing key (`esession keys generate`) and
    /// accept contacts' keys; unverified keys are refused (see `trust`).
    #[arg(long, global = true)]
    pub(crate) public_keys: bool,
    /// Stanza kinds to offer and accept in sessions, comma-separated from
    /// message, presence, iq (default: message). Presence and iq are then
    /// encrypted too when the contact agrees.
    #[arg(long, global = true, value_name = "KINDS", value_delimiter = ',')]
    pub(crate) stanzas: Option<Vec<String>>,
    /// Trust store file (default: $XDG_DATA_HOME/esession/store.db).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) store: Option<PathBuf>,
    /// Unlock the trust store with this key file (mode 0600) instead of a passphrase.
    #[arg(long, global = true, value_name = "FILE")]
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
    /// Accept contacts' keys never verified (AMB-43): encrypted, NOT authenticated.
    #[serde(default)]
    dangerously_accept_unverified_keys: bool,
    /// Stanza kinds offered and accepted (XEP-0116 `stanzas`): `message`,
    /// `presence`, `iq`; default `["message"]`.
    stanzas: Option<Vec<String>>,
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
    host: Option<String>,
    port: Option<u16>,
    ca_file: Option<PathBuf>,
    password_file: Option<PathBuf>,
    plaintext: bool,
    /// Use public keys (`[account] public_keys = true` or `--public-keys`).
    pub(crate) public_keys: bool,
    /// AMB-43 override (`[account] dangerously_accept_unverified_keys = true`).
    pub(crate) dangerously_accept_unverified_keys: bool,
    /// Stanza kinds offered and accepted (`--stanzas`, `[account] stanzas`).
    pub(crate) stanzas: Vec<StanzaKind>,
    pub(crate) store_path: PathBuf,
    store_key_file: Option<PathBuf>,
    store_passphrase_file: Option<PathBuf>,
}

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
        Ok(Self {
            jid: global.jid.clone().or(file.account.jid),
            host: global.host.clone().or(file.account.host),
            port: global.port.or(file.account.port),
            ca_file: global.ca_file.clone().or(file.account.ca_file),
            password_file: global.password_file.clone().or(file.account.password_file),
            plaintext: global.insecure_plaintext_loopback
                || file.account.insecure_plaintext_loopback,
            public_keys: global.public_keys || file.account.public_keys,
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
        let jid = self
            .jid
            .clone()
            .ok_or("no account: pass --jid or set [account] jid in the config file")?;
        Ok(jid.split('/').next().unwrap_or_default().to_owned())
    }

    /// Login options, reading the password.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, String> {
        let jid = self
            .jid
            .clone()
            .ok_or("no account: pass --jid or set [account] jid in the config file")?;
        let password = match (&self.password_file, std::env::var("ESESSION_PASSWORD")) {
            (Some(file), _) => read_secret_file(file)?,
            (None, Ok(value)) => value,
            (None, Err(_)) => prompt(&format!("Password for {jid}: "))?,
        };
        let security = if self.plaintext {
            TransportSecurity::DangerousPlaintextLoopbackOnly
        } else {
            TransportSecurity::StartTls {
                ca_file: self.ca_file.clone(),
            }
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

/// The stanza kinds to offer (ENC-01, AMB-29): known names only, `message`
/// always among them (the chat needs it), each once; default `message`.
fn stanza_kinds(names: Option<&[String]>) -> Result<Vec<StanzaKind>, String> {
    let Some(names) = names else {
        return Ok(vec![StanzaKind::Message]);
    };
    let mut kinds = Vec::new();
    for name in names {
        let kind = StanzaKind::from_name(name.trim()).ok_or_else(|| {
            format!("unknown stanza kind {name:?} in stanzas: use message, presence, iq")
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| (*n).to_owned()).collect()
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
}
