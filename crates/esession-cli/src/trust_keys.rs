//! `esession trust ...` and `esession keys ...`: the local trust store.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;

use chrono::TimeZone;
use esession_crypto::{SecretBytes, SigningKey};
use esession_store::{PeerKey, SasState, SigningKeyInfo, Store, StoreError};
use esession_wire::keyvalue::KeyValue;

use crate::account::{now, open_store, store_error};
use crate::present::fingerprint_full;
use crate::profile::ProfileName;
use crate::settings::{Settings, check_contact_jid};

/// `esession trust` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TrustCommand {
    /// List the contacts we remember, one line each (petnames, JID, whether
    /// the short authentication string was compared, clients, when last seen in a session or a fetched key),
    /// each followed by its public keys, one line each (petname, fingerprint,
    /// algorithm, verified or not, first seen, JIDs). Dates are local time.
    List {
        /// One JSON object per contact (clients' SAS states, last seen in Unix
        /// seconds, profile, shared secret set, keys with fingerprints in hex).
        #[arg(long)]
        json: bool,
    },
    /// Mark a contact's key (--fingerprint, as `trust list` shows it) as
    /// verified, or without --fingerprint every retained-secret chain with the
    /// contact's clients as SAS-verified.
    Verify {
        /// The contact's bare JID.
        contact: String,
        /// A key fingerprint in hex as `trust list` shows it (quote it: it has
        /// spaces; spaces, colons and case are ignored).
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Give a contact's key a petname, shown more prominently than the JID (ESN-52).
    Petname {
        /// Key fingerprint in hex as `trust list` shows it (quoted).
        fingerprint: String,
        /// The petname; omit to remove it.
        name: Option<String>,
    },
    /// Forget everything about a contact (retained secrets, keys, settings).
    Forget {
        /// The contact's bare JID.
        contact: String,
    },
    /// Show, set or clear (--clear, or `standard`) a contact's wire profile,
    /// used by `chat`, `send` and `listen`: `gajim` for a contact on Gajim
    /// 0.12-0.16.
    ///
    /// The profiles are described at the end.
    #[command(after_long_help = crate::profile::PROFILES_HELP)]
    Profile {
        /// The contact's bare JID (profiles are per contact, not per client).
        contact: String,
        /// The profile to save; omit to show the current one.
        #[arg(value_enum)]
        profile: Option<ProfileName>,
        /// Remove the saved profile (back to `standard`).
        #[arg(long, conflicts_with = "profile")]
        clear: bool,
    },
    /// Fetch the keys a contact published (XEP-0189), with their fingerprints and validity;
    /// usable ones are remembered as seen (not verified), and a changed key is reported.
    /// Logs in.
    Fetch {
        /// The contact's bare JID.
        contact: String,
    },
    /// Remember a contact's public key from a file, without a session: an
    /// XML-DSig `<KeyValue/>` (as XEP-0116 carries it) or a PEM `PUBLIC KEY`
    /// (as `openssl pkey -pubout` writes it), RSA or DSA. Its fingerprint is
    /// shown; the key is remembered as seen, NOT verified, unless --verified
    /// says you compared that fingerprint with the contact.
    Import {
        /// The contact's bare JID.
        contact: String,
        /// The key file.
        file: std::path::PathBuf,
        /// You compared the fingerprint shown with the contact over another
        /// channel: mark the key verified at once.
        #[arg(long)]
        verified: bool,
    },
    /// Set (or with --clear, remove) the other shared secret agreed with a contact out of band.
    Secret {
        /// The contact's bare JID.
        contact: String,
        /// Remove the secret.
        #[arg(long, conflicts_with_all = ["secret_file", "secret_env"])]
        clear: bool,
        /// Read the secret from this file (its first line) instead of a prompt.
        #[arg(long, value_name = "FILE", conflicts_with = "secret_env")]
        secret_file: Option<std::path::PathBuf>,
        /// Read the secret from this environment variable instead of a prompt.
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
    },
}

/// `trust import`: reads the key, remembers it for `contact` (seen, or
/// verified when the user says they compared it), and says what it is.
fn import_key(
    store: &Store,
    account: &str,
    contact: &str,
    file: &std::path::Path,
    verified: bool,
) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("the key file {} could not be read: {e}", file.display()))?;
    let key_value = read_key_file(&text).ok_or_else(|| {
        format!(
            "{} holds no public key we can read: give an XML <KeyValue/> (RSA or DSA) or a PEM \
             \"PUBLIC KEY\" (e.g. from `openssl pkey -pubout`)",
            file.display()
        )
    })?;
    let fingerprint = esession::key_fingerprint(&key_value);
    let xml = esession_wire::xml::serialize(&esession_wire::minidom::Element::from(&key_value), "")
        .map_err(|e| e.to_string())?;
    let path = store.path();
    let observation = store
        .record_peer_key(
            account,
            contact,
            fingerprint.clone(),
            xml.into_bytes(),
            now(),
        )
        .map_err(|e| store_error(path, "change", &e))?;
    let print = fingerprint_full(&fingerprint);
    if verified {
        let message = verify_key(store, account, contact, &print)?;
        return Ok(format!("Imported {contact}'s key {print}. {message}"));
    }
    let changed = matches!(observation.status, esession_store::KeyStatus::KeyChanged)
        .then_some(" !!! KEY CHANGE: they used another key before.")
        .unwrap_or_default();
    Ok(format!(
        "Imported {contact}'s key {print}, remembered as seen, NOT verified.{changed} Compare this \
         fingerprint with {contact} over another channel, then run `esession trust verify \
         {contact} --fingerprint \"{print}\"`."
    ))
}

/// A public key from a file's text: PEM, or XML `<KeyValue/>` (bounded like
/// a key received in a negotiation).
fn read_key_file(text: &str) -> Option<KeyValue> {
    if text.contains("-----BEGIN") {
        let key = esession_crypto::VerifyingKey::from_public_key_pem(text).ok()?;
        return esession::trust::key_value_of(&key);
    }
    // The element alone: `keys export` follows it with a fingerprint line.
    let (start, end) = (text.find('<')?, text.rfind('>')?);
    let element = esession_wire::xml::parse_document(text.get(start..=end)?).ok()?;
    let key_value = KeyValue::try_from(&element).ok()?;
    // The same bounds as a key from a negotiation.
    match &key_value {
        KeyValue::Rsa { modulus, exponent } => {
            esession_crypto::VerifyingKey::rsa(modulus, exponent).ok()?
        }
        KeyValue::Dsa { p, q, g, y, .. } => esession_crypto::VerifyingKey::dsa(p, q, g, y).ok()?,
    };
    Some(key_value)
}

/// The other shared secret for `contact`: from a file (its first line), an
/// environment variable, or a prompt on the terminal.
fn read_secret(
    contact: &str,
    file: Option<&std::path::Path>,
    env: Option<&str>,
) -> Result<String, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "the shared secret for {contact} could not be read from {}: {e}",
                path.display()
            )
        })?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if let Some(var) = env {
        return std::env::var(var).map_err(|_| {
            format!("the environment variable {var} (the shared secret for {contact}) is not set")
        });
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "the shared secret for {contact} is typed at a prompt, and there is no terminal to \
             ask on: give it with --secret-file FILE or --secret-env VAR, or run \
             `esession trust secret {contact}` in a terminal"
        ));
    }
    rpassword::prompt_password(format!("Shared secret for {contact}: "))
        .map_err(|e| format!("could not read the shared secret for {contact}: {e}"))
}

/// The algorithms `keys generate` makes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    /// RSA (2048, 3072 or 4096 bits).
    Rsa,
    /// DSA with a 2048-bit p and a 256-bit q.
    Dsa,
}

/// `esession keys` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Generate a signing key for our account (RSA 2048/3072/4096 or DSA 2048/256).
    Generate {
        /// The algorithm.
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: KeyAlgorithm,
        /// RSA modulus size (default 3072; RSA only).
        #[arg(long, value_parser = ["2048", "3072", "4096"])]
        bits: Option<String>,
    },
    /// List our signing keys, then the contacts' keys we remember, one line
    /// each (petname, fingerprint, algorithm, verified or not, first seen in
    /// local time, JIDs).
    List {
        /// One JSON object per key (owner ours/contact, fingerprint in hex,
        /// algorithm, verified, petname, times in Unix seconds, JIDs).
        #[arg(long)]
        json: bool,
    },
    /// Print a public key as its XML-DSig <KeyValue/>, with its SHA-256 fingerprint.
    Export {
        /// The key number from `keys list` ("key 1 (ours)").
        id: i64,
    },
    /// Publish an RSA signing key (XEP-0189) on your account, readable by the contacts who
    /// share presence with you (`esession trust fetch YOU` shows it to them). Logs in.
    Publish {
        /// The key number from `keys list`; default: the newest RSA key.
        id: Option<i64>,
        /// How many days the published key stays valid.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
    /// Revoke a published key (XEP-0189): contacts who fetch your keys see it revoked and stop
    /// using it. Logs in.
    Revoke {
        /// The key number from `keys list`.
        id: i64,
    },
    /// Vouch for a contact's published key (XEP-0189 attestation), signed with your
    /// published key: the contact's key must be one you verified. Prints the attestation
    /// for the contact, who publishes it with `keys add-attestation`. Logs in.
    Attest {
        /// The contact whose key you vouch for.
        contact: String,
        /// Your key number from `keys list`; default: the newest RSA key.
        #[arg(long)]
        key: Option<i64>,
    },
    /// Publish an attestation a contact made of your key (from `keys attest`), after
    /// checking that it names your published key and verifies with the signer's. Logs in.
    AddAttestation {
        /// The file holding the `<attest/>` element.
        file: std::path::PathBuf,
    },
}

pub(crate) fn trust(settings: &Settings, command: TrustCommand) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let path = settings.store_path.as_path();
    let read = |e: StoreError| store_error(path, "read", &e);
    let write = |e: StoreError| store_error(path, "change", &e);
    match command {
        TrustCommand::List { json: true } => {
            for contact in trust_list_json(&store, &account).map_err(read)? {
                println!("{contact}");
            }
        }
        TrustCommand::List { json: false } => {
            let lines = trust_list(&store, &account, &chrono::Local).map_err(read)?;
            if lines.is_empty() {
                println!(
                    "No contacts remembered for {account} yet: a contact appears here after a \
                     first encrypted session."
                );
            }
            for line in &lines {
                println!("{line}");
            }
            if lines.iter().any(|l| l.contains(NOT_VERIFIED)) {
                eprintln!(
                    "To verify a key, compare its fingerprint with the contact over another \
                     channel, then run: esession trust verify CONTACT --fingerprint \"FINGERPRINT\""
                );
            }
        }
        TrustCommand::Verify {
            contact,
            fingerprint,
        } => {
            let contact = &contact_bare_jid(&contact, "trust is per contact")?;
            let message = match fingerprint {
                Some(fp) => verify_key(&store, &account, contact, &fp)?,
                None => verify_chains(&store, &account, contact)?,
            };
            println!("{message}");
        }
        TrustCommand::Petname { fingerprint, name } => {
            let fp = parse_fingerprint(&fingerprint)?;
            let keys = store.peer_keys(&account).map_err(read)?;
            let key = keys
                .iter()
                .find(|k| esession_crypto::ct_eq(&k.fingerprint, &fp))
                .ok_or_else(|| {
                    format!(
                        "no contact's key has the fingerprint {}: `esession trust list` shows \
                         the fingerprints of the keys we remember (copy one in full)",
                        fingerprint_full(&fp)
                    )
                })?;
            let name = name.map(|n| n.trim().to_owned());
            if name.as_deref() == Some("") {
                return Err(
                    "a petname cannot be empty: omit it to remove the key's petname".to_owned(),
                );
            }
            store
                .set_petname(&account, &fp, name.as_deref())
                .map_err(write)?;
            let jids = key_jids(key);
            match name {
                Some(name) => println!(
                    "The key {} of {jids} is now called \"{name}\".",
                    fingerprint_full(&fp)
                ),
                None => println!(
                    "Removed the petname of the key {} of {jids}.",
                    fingerprint_full(&fp)
                ),
            }
        }
        TrustCommand::Forget { contact } => {
            let contact = &contact_bare_jid(&contact, "trust is per contact")?;
            if !store
                .contacts(&account)
                .map_err(read)?
                .iter()
                .any(|c| c == contact)
            {
                println!("Nothing is remembered about {contact}: nothing to forget.");
                return Ok(());
            }
            store.forget_contact(&account, contact).map_err(write)?;
            println!(
                "Forgot {contact}: retained secrets, SAS states, settings and the keys seen only \
                 with {contact} are deleted."
            );
        }
        TrustCommand::Profile {
            contact,
            profile,
            clear,
        } => {
            let contact = &contact_bare_jid(&contact, "profiles are per contact")?;
            match (profile, clear) {
                (None, false) => match store.contact_profile(&account, contact).map_err(read)? {
                    Some(name) => println!("{contact}: profile {name}"),
                    None => println!("{contact}: profile standard (the default)"),
                },
                (None | Some(ProfileName::Standard), _) => {
                    store
                        .set_contact_profile(&account, contact, None)
                        .map_err(write)?;
                    println!("{contact}: profile standard (the default); no profile saved.");
                }
                (Some(name @ ProfileName::Gajim), _) => {
                    let name = name.profile().name();
                    store
                        .set_contact_profile(&account, contact, Some(name))
                        .map_err(write)?;
                    println!(
                        "{contact}: profile {name} saved. It is less standard: use it only for a \
                         contact on Gajim 0.12-0.16 (see `esession trust profile --help`)."
                    );
                }
            }
        }
        TrustCommand::Fetch { contact } => {
            let contact = contact_bare_jid(&contact, "keys are published per contact")?;
            crate::runtime()?.block_on(crate::published::fetch(settings, &contact))?;
        }
        TrustCommand::Import {
            contact,
            file,
            verified,
        } => {
            let contact = &contact_bare_jid(&contact, "keys belong to contacts")?;
            println!(
                "{}",
                import_key(&store, &account, contact, &file, verified)?
            );
        }
        TrustCommand::Secret {
            contact,
            clear,
            secret_file,
            secret_env,
        } => {
            let contact = &contact_bare_jid(&contact, "shared secrets are per contact")?;
            if clear {
                if store.clear_other_secret(&account, contact).map_err(write)? {
                    println!("Removed the shared secret for {contact}.");
                } else {
                    println!("There was no shared secret for {contact}: nothing to remove.");
                }
            } else {
                let secret = read_secret(contact, secret_file.as_deref(), secret_env.as_deref())?;
                if secret.is_empty() {
                    return Err(format!(
                        "the shared secret for {contact} is empty: give the secret you agreed \
                         with {contact} (or use --clear to remove one)"
                    ));
                }
                // AMB-58: UTF-8 as typed (NFC is what keyboards produce).
                store
                    .set_other_secret(&account, contact, SecretBytes::new(secret.into_bytes()))
                    .map_err(write)?;
                println!(
                    "Stored the shared secret for {contact}; {contact} must set the same secret \
                     for you, or negotiations will fail."
                );
            }
        }
    }
    Ok(())
}

/// `trust verify CONTACT --fingerprint FP`: the key must be one `contact`
/// was seen with.
fn verify_key(store: &Store, account: &str, contact: &str, typed: &str) -> Result<String, String> {
    let path = store.path();
    let fp = parse_fingerprint(typed)?;
    let keys = store
        .peer_keys_of(account, contact)
        .map_err(|e| store_error(path, "read", &e))?;
    if keys.is_empty() {
        return Err(format!(
            "no public key of {contact} is known yet: a key is remembered once {contact} \
             identifies with it in an encrypted session (both sides with --public-keys); have \
             a session with {contact}, compare the fingerprint that `esession trust list` then \
             shows with {contact}, and run this command again"
        ));
    }
    let Some(key) = keys
        .iter()
        .find(|k| esession_crypto::ct_eq(&k.fingerprint, &fp))
    else {
        let elsewhere = store
            .peer_keys(account)
            .map_err(|e| store_error(path, "read", &e))?
            .into_iter()
            .find(|k| esession_crypto::ct_eq(&k.fingerprint, &fp));
        let hint = match elsewhere {
            Some(other) => format!(
                "that key was seen with {}, not with {contact}: check whom you compared it with",
                key_jids(&other)
            ),
            None => format!(
                "`esession trust list` shows the fingerprints of {contact}'s keys: copy the one \
                 you compared in full"
            ),
        };
        return Err(format!(
            "{contact} has no key with the fingerprint {}; {hint}",
            fingerprint_full(&fp)
        ));
    };
    store
        .set_key_verified(account, &key.fingerprint, true)
        .map_err(|e| store_error(path, "change", &e))?;
    Ok(format!(
        "Marked the key {} of {contact} as verified: sessions where {contact} proves it are \
         authenticated.",
        fingerprint_full(&key.fingerprint)
    ))
}

/// `trust verify CONTACT`: every retained-secret chain with `contact`'s
/// clients becomes SAS-verified.
fn verify_chains(store: &Store, account: &str, contact: &str) -> Result<String, String> {
    let path = store.path();
    let clients: BTreeSet<String> = store
        .retained_secret_info(account, contact)
        .map_err(|e| store_error(path, "read", &e))?
        .into_iter()
        .map(|rs| rs.client)
        .collect();
    if clients.is_empty() {
        return Err(format!(
            "there is no session with {contact} to mark verified: no secret is retained from an \
             encrypted session with {contact} yet; start one (`esession chat {contact}`) and \
             compare the short authentication string there (/verify), or verify one of \
             {contact}'s public keys with --fingerprint"
        ));
    }
    let mut trust = store
        .account(account)
        .map_err(|e| store_error(path, "open", &e))?;
    for client in &clients {
        esession::TrustStore::mark_verified(&mut trust, contact, client)
            .map_err(|e| format!("could not mark {contact}/{client} verified: {e}"))?;
        store
            .set_sas_state(account, contact, client, SasState::Confirmed, now())
            .map_err(|e| store_error(path, "change", &e))?;
    }
    Ok(format!(
        "Marked the retained-secret chains with {contact} ({}) as SAS-verified.",
        plural(clients.len(), "client", "clients")
    ))
}

/// A contact's bare JID from what the user typed: trust, profiles and
/// secrets are per contact, so a resource is refused rather than silently
/// dropped. `why` says so in the message.
fn contact_bare_jid(contact: &str, why: &str) -> Result<String, String> {
    let normalized = check_contact_jid(contact)?;
    if let Some((bare, _)) = normalized.split_once('/') {
        return Err(format!(
            "{why}: give the bare JID {bare}, not the full JID {contact}"
        ));
    }
    Ok(normalized)
}

/// A fingerprint as the user typed it: hex, with or without the spaces (or
/// colons) that `trust list` shows, in either case.
fn parse_fingerprint(typed: &str) -> Result<Vec<u8>, String> {
    let digits: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let bytes = hex::decode(&digits).map_err(|_| {
        format!(
            "\"{typed}\" is not a fingerprint: give the hexadecimal digits that `esession trust \
             list` shows (spaces and case do not matter)"
        )
    })?;
    if bytes.is_empty() {
        return Err(
            "no fingerprint given: copy one from `esession trust list` (in quotes)".to_owned(),
        );
    }
    Ok(bytes)
}

/// How an unverified key is marked in listings.
const NOT_VERIFIED: &str = "NOT verified";

/// `n` things, in words: "1 client", "2 clients".
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A Unix time as a date and time in `zone`, labelled with its offset from
/// UTC (e.g. `2025-06-01 14:03 UTC+02:00`).
pub(crate) fn date_time<Tz: TimeZone>(secs: u64, zone: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    {
        Some(utc) if secs > 0 => utc
            .with_timezone(zone)
            .format("%Y-%m-%d %H:%M UTC%:z")
            .to_string(),
        _ => "an unknown date".to_owned(),
    }
}

/// The size in bits of a big-endian number.
fn bit_len(number: &[u8]) -> usize {
    let digits = number
        .iter()
        .position(|b| *b != 0)
        .map_or(&[][..], |i| number.get(i..).unwrap_or_default());
    match digits.first() {
        Some(first) => digits.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// A stored `<KeyValue/>` (as XML text), if it is one.
fn key_value(stored: &[u8]) -> Option<KeyValue> {
    let text = std::str::from_utf8(stored).ok()?;
    let element = esession_wire::xml::parse_document(text).ok()?;
    KeyValue::try_from(&element).ok()
}

/// A key's algorithm and size in words: "RSA-3072", "DSA-2048".
fn algorithm_of(key: Option<&KeyValue>) -> String {
    match key {
        Some(KeyValue::Rsa { modulus, .. }) => format!("RSA-{}", bit_len(modulus)),
        Some(KeyValue::Dsa { p, .. }) => format!("DSA-{}", bit_len(p)),
        None => "unknown algorithm".to_owned(),
    }
}

/// The JIDs a contact key was seen with, comma-separated.
fn key_jids(key: &PeerKey) -> String {
    let jids: Vec<&str> = key.jids.iter().map(|j| j.jid.as_str()).collect();
    if jids.is_empty() {
        "no JID".to_owned()
    } else {
        jids.join(", ")
    }
}

/// One line for a contact's key: petname first (ESN-52), then the
/// fingerprint in full, algorithm, verified or not, first seen, JIDs.
fn peer_key_line<Tz: TimeZone>(key: &PeerKey, zone: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let petname = key
        .petname
        .as_deref()
        .map(|p| format!("\"{p}\" "))
        .unwrap_or_default();
    format!(
        "{petname}key {}, {}, {}, first seen {}, seen as {}",
        fingerprint_full(&key.fingerprint),
        algorithm_of(key_value(&key.keyvalue).as_ref()),
        if key.verified {
            "verified"
        } else {
            NOT_VERIFIED
        },
        date_time(key.first_seen, zone),
        key_jids(key)
    )
}

/// One line for one of our signing keys.
fn own_key_line<Tz: TimeZone>(account: &str, key: &SigningKeyInfo, zone: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let value = key_value(&key.public_key);
    let fingerprint = value.as_ref().map_or_else(
        || "(not a <KeyValue/>)".to_owned(),
        |v| fingerprint_full(&esession::trust::key_fingerprint(v)),
    );
    format!(
        "key {} (ours, {account}): {fingerprint}, {}, created {}",
        key.id.0,
        algorithm_of(value.as_ref()),
        date_time(key.created, zone)
    )
}

/// The SAS state of one client of a contact.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ClientState {
    Verified,
    Dismissed,
    Unverified,
}

impl ClientState {
    /// For JSON.
    fn name(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Dismissed => "dismissed",
            Self::Unverified => "unverified",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Verified => "verified (SAS compared)",
            Self::Dismissed => "reminder dismissed",
            Self::Unverified => "unverified",
        }
    }
}

/// The chain state of a contact's clients in words.
fn chain_state(states: &BTreeMap<String, ClientState>) -> String {
    let total = states.len();
    if total == 0 {
        return "no retained secret".to_owned();
    }
    let mut counts: BTreeMap<ClientState, usize> = BTreeMap::new();
    for state in states.values() {
        *counts.entry(*state).or_default() += 1;
    }
    let clients = plural(total, "client", "clients");
    if counts.len() == 1 {
        let state = counts.keys().next().map_or("unverified", |s| s.words());
        return format!("{state}, {clients}");
    }
    counts
        .iter()
        .map(|(state, n)| format!("{} on {n} of {clients}", state.words()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What we remember about one contact, for `trust list`.
struct ContactSummary {
    contact: String,
    /// The SAS state of each client with a retained secret or a SAS record.
    states: BTreeMap<String, ClientState>,
    /// The last session (a retained secret) or key sighting.
    last_seen: Option<u64>,
    profile: Option<String>,
    shared_secret: bool,
    keys: Vec<PeerKey>,
}

/// Every contact we remember, in the store's order.
fn contact_summaries(store: &Store, account: &str) -> Result<Vec<ContactSummary>, StoreError> {
    let mut sas: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for record in store.sas_states(account)? {
        sas.entry(record.peer.clone()).or_default().push(record);
    }
    let mut out = Vec::new();
    for contact in store.contacts(account)? {
        let secrets = store.retained_secret_info(account, &contact)?;
        let keys = store.peer_keys_of(account, &contact)?;
        let mut states: BTreeMap<String, ClientState> = BTreeMap::new();
        for rs in &secrets {
            let state = states
                .entry(rs.client.clone())
                .or_insert(ClientState::Unverified);
            if rs.verified {
                *state = ClientState::Verified;
            }
        }
        for record in sas.get(&contact).into_iter().flatten() {
            let state = states
                .entry(record.client.clone())
                .or_insert(ClientState::Unverified);
            *state = match (record.state, *state) {
                (SasState::Confirmed, _) | (_, ClientState::Verified) => ClientState::Verified,
                (SasState::Dismissed, _) => ClientState::Dismissed,
                (SasState::Pending, current) => current,
            };
        }
        let last_seen = secrets
            .iter()
            .map(|rs| rs.created)
            .chain(
                keys.iter()
                    .flat_map(|k| &k.jids)
                    .filter(|j| j.jid == contact)
                    .map(|j| j.last_seen),
            )
            .max();
        out.push(ContactSummary {
            profile: store.contact_profile(account, &contact)?,
            shared_secret: store.other_secret(account, &contact)?.is_some(),
            contact,
            states,
            last_seen,
            keys,
        });
    }
    Ok(out)
}

/// The lines of `trust list`: one per contact, then one per key of it.
fn trust_list<Tz: TimeZone>(
    store: &Store,
    account: &str,
    zone: &Tz,
) -> Result<Vec<String>, StoreError>
where
    Tz::Offset: std::fmt::Display,
{
    let mut lines = Vec::new();
    for summary in contact_summaries(store, account)? {
        let ContactSummary {
            contact,
            states,
            last_seen,
            profile,
            shared_secret,
            keys,
        } = summary;
        let mut petnames: Vec<String> = Vec::new();
        for key in &keys {
            if let Some(p) = &key.petname {
                let quoted = format!("\"{p}\"");
                if !petnames.contains(&quoted) {
                    petnames.push(quoted);
                }
            }
        }
        let mut line = String::new();
        if !petnames.is_empty() {
            line.push_str(&petnames.join(", "));
            line.push(' ');
        }
        match last_seen {
            Some(when) => line.push_str(&format!(
                "{contact}: {}, last seen {}",
                chain_state(&states),
                date_time(when, zone)
            )),
            None if states.is_empty() => line.push_str(&format!("{contact}: no session yet")),
            None => line.push_str(&format!("{contact}: {}", chain_state(&states))),
        }
        if let Some(profile) = profile {
            line.push_str(&format!(", profile {profile}"));
        }
        if shared_secret {
            line.push_str(", shared secret set");
        }
        lines.push(line);
        for key in &keys {
            lines.push(format!("  {}", peer_key_line(key, zone)));
        }
    }
    Ok(lines)
}

/// `trust list --json`: one object per contact, its keys inside.
fn trust_list_json(store: &Store, account: &str) -> Result<Vec<serde_json::Value>, StoreError> {
    Ok(contact_summaries(store, account)?
        .into_iter()
        .map(|c| {
            let clients: serde_json::Map<String, serde_json::Value> = c
                .states
                .iter()
                .map(|(client, state)| (client.clone(), serde_json::json!(state.name())))
                .collect();
            serde_json::json!({
                "contact": c.contact,
                "clients": clients,
                "last_seen": c.last_seen,
                "profile": c.profile,
                "shared_secret": c.shared_secret,
                "keys": c.keys.iter().map(peer_key_json).collect::<Vec<_>>(),
            })
        })
        .collect())
}

/// A contact's key in JSON: fingerprint as lower-case hex, times in Unix seconds.
fn peer_key_json(key: &PeerKey) -> serde_json::Value {
    serde_json::json!({
        "owner": "contact",
        "fingerprint": hex::encode(&key.fingerprint),
        "algorithm": algorithm_of(key_value(&key.keyvalue).as_ref()),
        "verified": key.verified,
        "petname": key.petname,
        "first_seen": key.first_seen,
        "jids": key.jids.iter().map(|j| j.jid.as_str()).collect::<Vec<_>>(),
    })
}

/// One of our signing keys in JSON.
fn own_key_json(account: &str, key: &SigningKeyInfo) -> serde_json::Value {
    let value = key_value(&key.public_key);
    serde_json::json!({
        "owner": "ours",
        "id": key.id.0,
        "account": account,
        "fingerprint": value.as_ref().map(|v| hex::encode(esession::trust::key_fingerprint(v))),
        "algorithm": algorithm_of(value.as_ref()),
        "created": key.created,
    })
}

/// The lines of `keys list`: our signing keys, then every contact key.
fn keys_list<Tz: TimeZone>(
    store: &Store,
    account: &str,
    zone: &Tz,
) -> Result<Vec<String>, StoreError>
where
    Tz::Offset: std::fmt::Display,
{
    let mut lines: Vec<String> = store
        .signing_keys(account)?
        .iter()
        .map(|key| own_key_line(account, key, zone))
        .collect();
    lines.extend(
        store
            .peer_keys(account)?
            .iter()
            .map(|key| peer_key_line(key, zone)),
    );
    Ok(lines)
}

pub(crate) fn keys(settings: &Settings, command: KeysCommand) -> Result<(), String> {
    let store: Store = open_store(settings)?;
    let account = settings.account()?;
    let path = settings.store_path.as_path();
    let read = |e: StoreError| store_error(path, "read", &e);
    match command {
        KeysCommand::Generate { algorithm, bits } => {
            let key = match (algorithm, bits) {
                (KeyAlgorithm::Rsa, bits) => {
                    let bits = bits.as_deref().unwrap_or("3072").parse().unwrap_or(3072);
                    SigningKey::generate_rsa(bits)
                        .map_err(|e| format!("could not generate an RSA-{bits} key: {e}"))?
                }
                (KeyAlgorithm::Dsa, Some(bits)) => {
                    return Err(format!(
                        "--bits {bits} is for RSA keys: DSA keys are always 2048/256 bits; drop \
                         --bits, or use --algorithm rsa"
                    ));
                }
                (KeyAlgorithm::Dsa, None) => {
                    SigningKey::generate_dsa(&mut crate::rng::os_seeded()?)
                        .map_err(|e| format!("could not generate a DSA key: {e}"))?
                }
            };
            // The public key as its XML-DSig <KeyValue/> (ESN-55), the form peers see.
            let keyvalue = esession::trust::key_value_of(key.verifying_key())
                .ok_or_else(|| "the generated key has no XML-DSig <KeyValue/> form".to_owned())?;
            let element = esession_wire::minidom::Element::from(&keyvalue);
            let public = esession_wire::xml::serialize(&element, "").map_err(|e| e.to_string())?;
            let id = store
                .add_signing_key(
                    &account,
                    key.algorithm().uri(),
                    public.into_bytes(),
                    key.to_pkcs8_der().map_err(|e| e.to_string())?,
                )
                .map_err(|e| store_error(path, "change", &e))?;
            println!(
                "Generated key {} for {account}: {}, {} ({}). Use it with --public-keys.",
                id.0,
                fingerprint_full(&esession::trust::key_fingerprint(&keyvalue)),
                algorithm_of(Some(&keyvalue)),
                key.algorithm().uri()
            );
        }
        KeysCommand::List { json: true } => {
            for key in store.signing_keys(&account).map_err(read)? {
                println!("{}", own_key_json(&account, &key));
            }
            for key in store.peer_keys(&account).map_err(read)? {
                println!("{}", peer_key_json(&key));
            }
        }
        KeysCommand::List { json: false } => {
            let lines = keys_list(&store, &account, &chrono::Local).map_err(read)?;
            if !lines.iter().any(|l| l.contains("(ours")) {
                println!(
                    "{account} has no signing key: `esession keys generate` makes one (needed \
                     for --public-keys)."
                );
            }
            for line in lines {
                println!("{line}");
            }
        }
        KeysCommand::Publish { id, days } => {
            crate::runtime()?.block_on(crate::published::publish(settings, id, days))?;
        }
        KeysCommand::Revoke { id } => {
            crate::runtime()?.block_on(crate::published::revoke(settings, id))?;
        }
        KeysCommand::Attest { contact, key } => {
            let contact = settings.check_contact(&contact)?;
            crate::runtime()?.block_on(crate::published::attest(settings, &contact, key))?;
        }
        KeysCommand::AddAttestation { file } => {
            crate::runtime()?.block_on(crate::published::add_attestation(settings, &file))?;
        }
        KeysCommand::Export { id } => {
            let keys = store.signing_keys(&account).map_err(read)?;
            let key = keys.iter().find(|k| k.id.0 == id).ok_or_else(|| {
                format!(
                    "{account} has no signing key {id}: `esession keys list` shows the numbers \
                     of our keys (\"key N (ours, ...)\")"
                )
            })?;
            let text = String::from_utf8_lossy(&key.public_key).into_owned();
            let keyvalue = key_value(&key.public_key).ok_or_else(|| {
                format!(
                    "signing key {id} of {account} is not stored as an XML-DSig <KeyValue/>, \
                     so it cannot be exported; generate a new one with `esession keys generate`"
                )
            })?;
            println!("{text}");
            println!(
                "SHA-256 fingerprint: {}",
                fingerprint_full(&esession::trust::key_fingerprint(&keyvalue))
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use esession::TrustStore as _;
    use esession::trust::RetainedSecret;
    use esession_store::{KdfParams, KeyId, Unlock};

    use super::*;

    const ME: &str = "alice@example.org";
    /// 2023-11-14 22:13:20 UTC.
    const T0: u64 = 1_700_000_000;

    fn plus_two() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(2 * 3600).unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create_with_params(
            dir.path().join("s.db"),
            Unlock::Passphrase(SecretBytes::from_slice(b"pw")),
            KdfParams::insecure_fast_for_tests(),
        )
        .unwrap();
        (dir, store)
    }

    /// An RSA-2048 `<KeyValue/>` (not a real key: listings never check it).
    fn rsa_key(fill: u8) -> (KeyValue, Vec<u8>) {
        let key = KeyValue::Rsa {
            modulus: vec![fill; 256],
            exponent: vec![1, 0, 1],
        };
        let xml = esession_wire::xml::serialize(&esession_wire::minidom::Element::from(&key), "")
            .unwrap();
        (key, xml.into_bytes())
    }

    fn retain(store: &Store, peer: &str, client: &str, created: u64, verified: bool) {
        store
            .account(ME)
            .unwrap()
            .store_retained_secret(
                peer,
                RetainedSecret {
                    client: client.to_owned(),
                    secret: SecretBytes::from_slice(&[7; 32]),
                    created,
                    verified,
                },
            )
            .unwrap();
    }

    #[test]
    fn fingerprints_are_shown_in_full_in_groups_of_eight_upper_case_digits() {
        let fp: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            fingerprint_full(&fp),
            "00010203 04050607 08090A0B 0C0D0E0F 10111213 14151617 18191A1B 1C1D1E1F"
        );
        assert_eq!(
            fingerprint_full(&[0xab; 32]),
            "ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB ABABABAB"
        );
        assert_eq!(
            fingerprint_full(&[0xde, 0xad, 0xbe, 0xef, 0x01]),
            "DEADBEEF 01"
        );
    }

    #[test]
    fn fingerprints_are_accepted_as_shown_or_as_plain_hex() {
        let fp = vec![0x1a; 32];
        assert_eq!(parse_fingerprint(&fingerprint_full(&fp)).unwrap(), fp);
        assert_eq!(parse_fingerprint(&hex::encode(&fp)).unwrap(), fp);
        assert_eq!(parse_fingerprint("1a:1A 1a").unwrap(), [0x1a; 3]);
        assert_eq!(
            parse_fingerprint("12345G").unwrap_err(),
            "\"12345G\" is not a fingerprint: give the hexadecimal digits that `esession trust \
             list` shows (spaces and case do not matter)"
        );
        assert!(
            parse_fingerprint("  ")
                .unwrap_err()
                .starts_with("no fingerprint given")
        );
    }

    #[test]
    fn dates_are_shown_in_the_given_zone_with_its_offset() {
        assert_eq!(date_time(T0, &plus_two()), "2023-11-15 00:13 UTC+02:00");
        assert_eq!(date_time(T0, &chrono::Utc), "2023-11-14 22:13 UTC+00:00");
        assert_eq!(date_time(0, &chrono::Utc), "an unknown date");
        assert_eq!(date_time(u64::MAX, &chrono::Utc), "an unknown date");
    }

    #[test]
    fn key_sizes_are_counted_in_bits() {
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&[0, 0, 0x01, 0xff]), 9);
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(algorithm_of(Some(&rsa_key(0xc5).0)), "RSA-2048");
        assert_eq!(algorithm_of(None), "unknown algorithm");
    }

    #[test]
    fn trust_list_shows_one_line_per_contact_then_one_per_key() {
        let (_dir, store) = store();
        let bob = "bob@example.com";
        // Bob: two clients, one chain SAS-verified, the other's reminder
        // dismissed; a verified key with a petname, seen last.
        retain(&store, bob, "laptop", T0, true);
        retain(&store, bob, "phone", T0 + 50, false);
        store
            .set_sas_state(ME, bob, "phone", SasState::Dismissed, T0 + 60)
            .unwrap();
        let (key, xml) = rsa_key(0xc5);
        let fp = esession::trust::key_fingerprint(&key);
        store
            .record_peer_key(ME, bob, fp.clone(), xml.clone(), T0 + 100)
            .unwrap();
        store.set_petname(ME, &fp, Some("Bob's laptop")).unwrap();
        store.set_key_verified(ME, &fp, true).unwrap();
        // Carol: a profile and a shared secret, no session.
        let carol = "carol@example.net";
        store.set_contact_profile(ME, carol, Some("gajim")).unwrap();
        store
            .set_other_secret(ME, carol, SecretBytes::from_slice(b"s3cret"))
            .unwrap();
        // Dave: one unverified client; an unverified key also seen as dave@work.
        let dave = "dave@example.org";
        retain(&store, dave, "pc", T0 + 3600, false);
        let (key, xml) = rsa_key(0x7f);
        let dave_fp = esession::trust::key_fingerprint(&key);
        store
            .record_peer_key(ME, dave, dave_fp.clone(), xml.clone(), T0)
            .unwrap();
        store
            .record_peer_key(ME, "dave@work.example", dave_fp.clone(), xml, T0 + 7200)
            .unwrap();

        let lines = trust_list(&store, ME, &plus_two()).unwrap();
        assert_eq!(
            lines,
            [
                "\"Bob's laptop\" bob@example.com: verified (SAS compared) on 1 of 2 clients, \
                 reminder dismissed on 1 of 2 clients, last seen 2023-11-15 00:15 UTC+02:00"
                    .to_owned(),
                format!(
                    "  \"Bob's laptop\" key {}, RSA-2048, verified, first seen 2023-11-15 00:15 \
                     UTC+02:00, seen as bob@example.com",
                    fingerprint_full(&fp)
                ),
                "carol@example.net: no session yet, profile gajim, shared secret set".to_owned(),
                "dave@example.org: unverified, 1 client, last seen 2023-11-15 01:13 UTC+02:00"
                    .to_owned(),
                format!(
                    "  key {}, RSA-2047, NOT verified, first seen 2023-11-15 00:13 UTC+02:00, \
                     seen as dave@example.org, dave@work.example",
                    fingerprint_full(&dave_fp)
                ),
                "dave@work.example: no retained secret, last seen 2023-11-15 02:13 UTC+02:00"
                    .to_owned(),
                format!(
                    "  key {}, RSA-2047, NOT verified, first seen 2023-11-15 00:13 UTC+02:00, \
                     seen as dave@example.org, dave@work.example",
                    fingerprint_full(&dave_fp)
                ),
            ]
        );
        for line in &lines {
            for debug in ["Some(", "[", "verified: ", "Confirmed", "Dismissed"] {
                assert!(!line.contains(debug), "{line}");
            }
        }
    }

    #[test]
    fn a_confirmed_sas_makes_the_client_verified() {
        let (_dir, store) = store();
        retain(&store, "bob@example.com", "laptop", T0, false);
        store
            .set_sas_state(ME, "bob@example.com", "laptop", SasState::Confirmed, T0)
            .unwrap();
        assert_eq!(
            trust_list(&store, ME, &chrono::Utc).unwrap(),
            [
                "bob@example.com: verified (SAS compared), 1 client, last seen 2023-11-14 22:13 UTC+00:00"
            ]
        );
    }

    #[test]
    fn our_keys_are_listed_with_number_fingerprint_algorithm_and_date() {
        let (key, xml) = rsa_key(0xff);
        let info = SigningKeyInfo {
            id: KeyId(3),
            algorithm: "http://www.w3.org/2000/09/xmldsig#rsa-sha256".to_owned(),
            public_key: xml,
            created: T0,
        };
        assert_eq!(
            own_key_line(ME, &info, &plus_two()),
            format!(
                "key 3 (ours, alice@example.org): {}, RSA-2048, created 2023-11-15 00:13 UTC+02:00",
                fingerprint_full(&esession::trust::key_fingerprint(&key))
            )
        );
    }

    #[test]
    fn verifying_a_key_never_seen_names_the_contact_and_says_what_to_do() {
        let (_dir, store) = store();
        let error = verify_key(&store, ME, "bob@example.com", "ab").unwrap_err();
        assert_eq!(
            error,
            "no public key of bob@example.com is known yet: a key is remembered once \
             bob@example.com identifies with it in an encrypted session (both sides with \
             --public-keys); have a session with bob@example.com, compare the fingerprint that \
             `esession trust list` then shows with bob@example.com, and run this command again"
        );
        let error = verify_chains(&store, ME, "bob@example.com").unwrap_err();
        assert!(
            error.starts_with(
                "there is no session with bob@example.com to mark verified: no secret is \
                 retained from an encrypted session with bob@example.com yet"
            ),
            "{error}"
        );
        assert!(!error.contains(ME), "{error}");
    }

    #[test]
    fn verifying_checks_that_the_key_is_the_contacts() {
        let (_dir, store) = store();
        let (key, xml) = rsa_key(0xc5);
        let fp = esession::trust::key_fingerprint(&key);
        store
            .record_peer_key(ME, "carol@example.net", fp.clone(), xml, T0)
            .unwrap();
        let (other, other_xml) = rsa_key(0xc6);
        store
            .record_peer_key(
                ME,
                "bob@example.com",
                esession::trust::key_fingerprint(&other),
                other_xml,
                T0,
            )
            .unwrap();
        let error = verify_key(&store, ME, "bob@example.com", &hex::encode(&fp)).unwrap_err();
        assert_eq!(
            error,
            format!(
                "bob@example.com has no key with the fingerprint {}; that key was seen with \
                 carol@example.net, not with bob@example.com: check whom you compared it with",
                fingerprint_full(&fp)
            )
        );
        assert!(!store.peer_keys(ME).unwrap().iter().any(|k| k.verified));
        // As `trust list` shows it, it verifies Carol's key.
        let done = verify_key(&store, ME, "carol@example.net", &fingerprint_full(&fp)).unwrap();
        assert_eq!(
            done,
            format!(
                "Marked the key {} of carol@example.net as verified: sessions where \
                 carol@example.net proves it are authenticated.",
                fingerprint_full(&fp)
            )
        );
        assert!(store.peer_keys_of(ME, "carol@example.net").unwrap()[0].verified);
    }

    #[test]
    fn verifying_chains_marks_every_client_of_the_contact() {
        let (_dir, store) = store();
        retain(&store, "bob@example.com", "laptop", T0, false);
        retain(&store, "bob@example.com", "phone", T0, false);
        assert_eq!(
            verify_chains(&store, ME, "bob@example.com").unwrap(),
            "Marked the retained-secret chains with bob@example.com (2 clients) as SAS-verified."
        );
        assert_eq!(
            trust_list(&store, ME, &chrono::Utc).unwrap(),
            [
                "bob@example.com: verified (SAS compared), 2 clients, last seen 2023-11-14 22:13 UTC+00:00"
            ]
        );
    }

    #[test]
    fn contacts_must_be_bare_jids_of_people() {
        assert_eq!(
            contact_bare_jid("bob@example.com", "trust is per contact").unwrap(),
            "bob@example.com"
        );
        assert_eq!(
            contact_bare_jid("bob@example.com/phone", "trust is per contact").unwrap_err(),
            "trust is per contact: give the bare JID bob@example.com, not the full JID \
             bob@example.com/phone"
        );
        assert!(
            contact_bare_jid("example.com", "trust is per contact")
                .unwrap_err()
                .starts_with("\"example.com\" is not a contact's JID")
        );
    }
}
