//! `esession trust ...` and `esession keys ...`: the local trust store.

use esession_crypto::{SecretBytes, SigningKey};
use esession_store::Store;

use crate::account::open_store;
use crate::profile::ProfileName;
use crate::settings::Settings;

/// `esession trust` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TrustCommand {
    /// List contacts with retained secrets, SAS state and known keys.
    List,
    /// Mark a contact's key (by fingerprint, hex) as verified, or a client's SAS chain as confirmed.
    Verify {
        /// The contact's bare JID.
        contact: String,
        /// A key fingerprint in hex (from `trust list`).
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Give a contact's key a petname, shown more prominently than the JID (ESN-52).
    Petname {
        /// Key fingerprint (hex).
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
    /// Set (or with --clear, remove) the other shared secret agreed with a contact out of band.
    Secret {
        /// The contact's bare JID.
        contact: String,
        /// Remove the secret.
        #[arg(long)]
        clear: bool,
    },
}

/// `esession keys` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Generate a signing key for our account (RSA 2048/3072/4096 or DSA 2048/256).
    Generate {
        /// rsa or dsa.
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        /// RSA modulus size.
        #[arg(long, default_value_t = 3072)]
        bits: usize,
    },
    /// List our signing keys.
    List,
    /// Print a public key as its XML-DSig <KeyValue/>, with its SHA-256 fingerprint.
    Export {
        /// The key id from `keys list`.
        id: i64,
    },
}

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub(crate) fn trust(settings: &Settings, command: TrustCommand) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let e = |e: esession_store::StoreError| e.to_string();
    match command {
        TrustCommand::List => {
            for contact in store.contacts(&account).map_err(e)? {
                println!("{contact}");
                if let Some(profile) = store.contact_profile(&account, &contact).map_err(e)? {
                    println!("  profile: {profile}");
                }
                for rs in store.retained_secret_info(&account, &contact).map_err(e)? {
                    println!("  retained secret with client {:?}: {rs:?}", rs.client);
                }
                for key in store.peer_keys_of(&account, &contact).map_err(e)? {
                    println!(
                        "  key {} {}{}",
                        hex_of(&key.fingerprint),
                        key.petname
                            .as_deref()
                            .map(|p| format!("\"{p}\" "))
                            .unwrap_or_default(),
                        if key.verified {
                            "verified"
                        } else {
                            "NOT verified"
                        }
                    );
                }
            }
            for sas in store.sas_states(&account).map_err(e)? {
                println!("SAS {}/{}: {:?}", sas.peer, sas.client, sas.state);
            }
        }
        TrustCommand::Verify {
            contact,
            fingerprint,
        } => match fingerprint {
            Some(fp) => {
                let fp = hex::decode(fp).map_err(|_| "the fingerprint must be hex".to_owned())?;
                store.set_key_verified(&account, &fp, true).map_err(e)?;
                println!("Key marked verified.");
            }
            None => {
                let clients = store.retained_secret_info(&account, &contact).map_err(e)?;
                let mut trust = store.account(&account).map_err(e)?;
                for rs in clients {
                    esession::TrustStore::mark_verified(&mut trust, &contact, &rs.client)
                        .map_err(|e| e.to_string())?;
                    store
                        .set_sas_state(
                            &account,
                            &contact,
                            &rs.client,
                            esession_store::SasState::Confirmed,
                            now(),
                        )
                        .map_err(e)?;
                }
                println!("Retained-secret chains with {contact} marked SAS-verified.");
            }
        },
        TrustCommand::Petname { fingerprint, name } => {
            let fp =
                hex::decode(fingerprint).map_err(|_| "the fingerprint must be hex".to_owned())?;
            store
                .set_petname(&account, &fp, name.as_deref())
                .map_err(e)?;
        }
        TrustCommand::Forget { contact } => {
            store.forget_contact(&account, &contact).map_err(e)?;
            println!("Forgot {contact}.");
        }
        TrustCommand::Profile {
            contact,
            profile,
            clear,
        } => {
            let contact = contact_bare_jid(&contact)?;
            match (profile, clear) {
                (None, false) => match store.contact_profile(&account, contact).map_err(e)? {
                    Some(name) => println!("{contact}: profile {name}"),
                    None => println!("{contact}: profile standard (the default)"),
                },
                (None | Some(ProfileName::Standard), _) => {
                    store
                        .set_contact_profile(&account, contact, None)
                        .map_err(e)?;
                    println!("{contact}: profile standard (the default); no profile saved.");
                }
                (Some(name @ ProfileName::Gajim), _) => {
                    let name = name.profile().name;
                    store
                        .set_contact_profile(&account, contact, Some(name))
                        .map_err(e)?;
                    println!(
                        "{contact}: profile {name} saved. It is less standard: use it only for a                          contact on Gajim 0.12-0.16 (see `esession trust profile --help`)."
                    );
                }
            }
        }
        TrustCommand::Secret { contact, clear } => {
            if clear {
                store.clear_other_secret(&account, &contact).map_err(e)?;
                println!("Removed the shared secret for {contact}.");
            } else {
                let secret = rpassword::prompt_password(format!("Shared secret for {contact}: "))
                    .map_err(|e| e.to_string())?;
                // AMB-58: UTF-8 as typed (NFC is what keyboards produce).
                store
                    .set_other_secret(&account, &contact, SecretBytes::new(secret.into_bytes()))
                    .map_err(e)?;
                println!("Stored; both sides must set the same secret or negotiations will fail.");
            }
        }
    }
    Ok(())
}

/// A contact's bare JID from what the user typed: profiles are per contact,
/// so a resource is refused rather than silently dropped.
fn contact_bare_jid(contact: &str) -> Result<&str, String> {
    let valid = !contact.is_empty()
        && !contact.contains(char::is_whitespace)
        && !contact.starts_with('@')
        && !contact.ends_with('@');
    if !valid {
        return Err(format!("{contact:?} is not a JID"));
    }
    if let Some((bare, _)) = contact.split_once('/') {
        return Err(format!(
            "profiles are per contact: give the bare JID {bare}, not the full JID {contact}"
        ));
    }
    Ok(contact)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn keys(settings: &Settings, command: KeysCommand) -> Result<(), String> {
    let store: Store = open_store(settings)?;
    let account = settings.account()?;
    let e = |e: esession_store::StoreError| e.to_string();
    match command {
        KeysCommand::Generate { algorithm, bits } => {
            let key = match algorithm.as_str() {
                "rsa" => SigningKey::generate_rsa(bits).map_err(|e| e.to_string())?,
                "dsa" => SigningKey::generate_dsa(&mut crate::rng::os_seeded()?)
                    .map_err(|e| e.to_string())?,
                other => return Err(format!("unknown algorithm {other:?} (rsa or dsa)")),
            };
            // The public key as its XML-DSig <KeyValue/> (ESN-55), the form peers see.
            let keyvalue = esession::trust::key_value_of(key.verifying_key())
                .ok_or_else(|| "unsupported key type".to_owned())?;
            let element = esession_wire::minidom::Element::from(&keyvalue);
            let public = esession_wire::xml::serialize(&element, "").map_err(|e| e.to_string())?;
            let id = store
                .add_signing_key(
                    &account,
                    key.algorithm().uri(),
                    public.into_bytes(),
                    key.to_pkcs8_der().map_err(|e| e.to_string())?,
                )
                .map_err(e)?;
            println!("Generated {} key {}", key.algorithm().uri(), id.0);
        }
        KeysCommand::List => {
            for key in store.signing_keys(&account).map_err(e)? {
                println!("{}  {}  created {}", key.id.0, key.algorithm, key.created);
            }
        }
        KeysCommand::Export { id } => {
            let keys = store.signing_keys(&account).map_err(e)?;
            let key = keys
                .iter()
                .find(|k| k.id.0 == id)
                .ok_or(format!("no key {id}"))?;
            let text = String::from_utf8_lossy(&key.public_key).into_owned();
            let element = esession_wire::xml::parse_document(&text).map_err(|e| e.to_string())?;
            let keyvalue =
                esession_wire::keyvalue::KeyValue::try_from(&element).map_err(|e| e.to_string())?;
            let fingerprint =
                esession_crypto::HashAlgorithm::Sha256.digest(&[&keyvalue.normalized_bytes()]);
            println!("{text}");
            println!("SHA-256 fingerprint: {}", hex::encode(fingerprint));
        }
    }
    Ok(())
}
