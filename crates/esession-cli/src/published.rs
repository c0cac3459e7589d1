//! `esession keys publish`, `keys revoke` and `trust fetch`: XEP-0189 public keys through the
//! server (issue 13). Publication is no proof of ownership (PKP-09): a fetched key is
//! recorded as seen, never as verified, and a key that differs from the one a contact used
//! before raises the key-change alert (ESN-51).

use esession::Config;
use esession::published::{
    check_published_key, check_revocation, own_published_key, own_revocation,
};
use esession_crypto::SigningKey;
use esession_store::{KeyStatus, Store};
use esession_wire::pubkey::{PublishedKey, Timestamp};
use esession_xmpp::{EsessionClient, FetchedKeys};
use jid::BareJid;

use crate::account::{login, manager, open_store, store_error};
use crate::present::fingerprint_full;
use crate::settings::Settings;

/// Seconds since the Unix epoch.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A date for a person: the day, UTC.
fn day(timestamp: &Timestamp) -> String {
    timestamp
        .unix
        .and_then(|unix| chrono::DateTime::from_timestamp(unix, 0))
        .map_or_else(
            || format!("{} (no time zone)", timestamp.text),
            |time| time.format("%Y-%m-%d").to_string(),
        )
}

/// Our RSA signing key `id`, or without `id` the most recent one.
fn rsa_signing_key(
    store: &Store,
    account: &str,
    id: Option<i64>,
) -> Result<(i64, SigningKey), String> {
    let path = store.path();
    let keys = store
        .signing_keys(account)
        .map_err(|e| store_error(path, "read", &e))?;
    let mut candidates: Vec<_> = keys
        .iter()
        .filter(|k| id.is_none_or(|id| k.id.0 == id))
        .collect();
    candidates.sort_by_key(|k| std::cmp::Reverse(k.id.0));
    if candidates.is_empty() {
        return Err(match id {
            Some(id) => format!(
                "{account} has no signing key {id}: `esession keys list` shows the numbers of our \
                 keys (\"key N (ours, ...)\")"
            ),
            None => format!("{account} has no signing key: `esession keys generate` makes one"),
        });
    }
    for info in candidates {
        let der = store
            .signing_key_private(account, info.id)
            .map_err(|e| store_error(path, "read", &e))?;
        let key = SigningKey::from_pkcs8_der(der.expose())
            .map_err(|e| format!("signing key {}: {e}", info.id.0))?;
        if key.public_key_der().is_ok() {
            return Ok((info.id.0, key));
        }
        if id.is_some() {
            return Err(format!(
                "key {} is a DSA key, and XEP-0189 publishes RSA keys only; make one with \
                 `esession keys generate --algorithm rsa`",
                info.id.0
            ));
        }
    }
    Err(format!(
        "{account} has only DSA signing keys, and XEP-0189 publishes RSA keys only; make one with \
         `esession keys generate --algorithm rsa`"
    ))
}

/// Our account's bare JID, typed.
fn own_bare(account: &str) -> Result<BareJid, String> {
    BareJid::new(account).map_err(|e| format!("{account} is not a valid JID ({e})"))
}

/// Logs in with our stored keys out of the policy: these commands negotiate nothing.
async fn connect(settings: &Settings, store: &Store) -> Result<EsessionClient, String> {
    login(
        settings,
        manager(settings, store, Config::default())?,
        crate::account::Inbox::Ignores,
    )
    .await
}

/// `esession keys publish [ID] [--days N]`.
pub(crate) async fn publish(settings: &Settings, id: Option<i64>, days: u32) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let (id, key) = rsa_signing_key(&store, &account, id)?;
    let validity = i64::from(days).saturating_mul(24 * 60 * 60);
    let published = own_published_key(&key, &own_bare(&account)?, now(), validity)
        .map_err(|e| format!("could not publish key {id}: {e}"))?;
    let mut client = connect(settings, &store).await?;
    let result = client.publish_key(&published).await;
    client.disconnect().await;
    result.map_err(|e| format!("key {id} was not published: {e}"))?;
    let fingerprint = esession::trust::key_value_of(key.verifying_key())
        .map(|kv| fingerprint_full(&esession::trust::key_fingerprint(&kv)))
        .unwrap_or_default();
    println!(
        "Published key {id} of {account} ({fingerprint}), valid until {} (XEP-0189). Contacts who \
         share presence with you can fetch it with `esession trust fetch {account}`; it is no \
         proof of who holds it until they verify its fingerprint with you.",
        day(&published.end)
    );
    Ok(())
}

/// `esession keys revoke ID`: fetches our own published key for `id` and publishes its
/// self-signed revocation.
/// Our signing key `key` as we published it (its dates are part of its print), fetched
/// from our own node.
async fn own_published(
    client: &mut EsessionClient,
    owner: &BareJid,
    key: &SigningKey,
) -> Result<Option<PublishedKey>, String> {
    let fetched = client.fetch_keys(owner).await.map_err(|e| e.to_string())?;
    let ours = esession::trust::key_value_of(key.verifying_key());
    Ok(fetched.keys.into_iter().find(|p| {
        ours.as_ref().is_some_and(|kv| {
            *kv == esession_wire::keyvalue::KeyValue::Rsa {
                modulus: p.modulus.clone(),
                exponent: p.exponent.clone(),
            }
        })
    }))
}

pub(crate) async fn revoke(settings: &Settings, id: i64) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let (id, key) = rsa_signing_key(&store, &account, Some(id))?;
    let owner = own_bare(&account)?;
    let mut client = connect(settings, &store).await?;
    let outcome = async {
        let published = own_published(&mut client, &owner, &key)
            .await?
            .ok_or_else(|| {
                format!(
                    "key {id} is not published for {account}, so there is nothing to revoke \
                     (`esession keys publish {id}` publishes it)"
                )
            })?;
        let revocation = own_revocation(&key, &published, now()).map_err(|e| e.to_string())?;
        client
            .publish_revocation(&revocation)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    client.disconnect().await;
    outcome.map_err(|e| format!("key {id} was not revoked: {e}"))?;
    // A revoked key is never used again: it leaves our store too.
    store
        .delete_signing_key(&account, esession_store::KeyId(id))
        .map_err(|e| store_error(store.path(), "change", &e))?;
    println!(
        "Revoked key {id} of {account} (XEP-0189) and removed it from your store: contacts who \
         fetch your keys now see it revoked and stop using it, and it will not identify you again. \
         Publish a new key with `esession keys generate --algorithm rsa` then `esession keys \
         publish`."
    );
    Ok(())
}

/// `esession keys attest CONTACT [--key N]` (PKP-05): an attestation of the contact's
/// published key that the user verified, signed with our published key, printed for them.
pub(crate) async fn attest(
    settings: &Settings,
    contact: &str,
    id: Option<i64>,
) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let (id, key) = rsa_signing_key(&store, &account, id)?;
    let owner = own_bare(&account)?;
    let contact =
        BareJid::new(contact).map_err(|e| format!("{contact} is not a valid JID ({e})"))?;
    let verified: Vec<Vec<u8>> = store
        .peer_keys_of(&account, contact.as_str())
        .map_err(|e| store_error(store.path(), "read", &e))?
        .into_iter()
        .filter(|k| k.verified)
        .map(|k| k.fingerprint)
        .collect();
    let mut client = connect(settings, &store).await?;
    let outcome = async {
        let ours = own_published(&mut client, &owner, &key).await?.ok_or_else(|| {
            format!("your key {id} is not published: publish it first with `esession keys publish {id}`")
        })?;
        let theirs = client.fetch_keys(&contact).await.map_err(|e| e.to_string())?;
        let attested = theirs
            .keys
            .iter()
            .filter(|k| !is_revoked(&theirs, k))
            .find(|k| {
                check_published_key(k, &contact, now())
                    .is_ok_and(|kv| verified.contains(&esession::trust::key_fingerprint(&kv)))
            })
            .ok_or_else(|| {
                format!(
                    "{contact} has published no key you verified: fetch it with `esession trust fetch {contact}`, \
                     compare its fingerprint with them, then `esession trust verify`"
                )
            })?;
        esession::published::own_attestation(&key, &ours, &owner, attested, now())
            .map_err(|e| e.to_string())
    }
    .await;
    client.disconnect().await;
    let attestation = outcome.map_err(|e| format!("no attestation was made: {e}"))?;
    let xml =
        esession_wire::xml::serialize(&esession_wire::minidom::Element::from(&attestation), "")
            .map_err(|e| e.to_string())?;
    println!("{xml}");
    eprintln!(
        "This attestation says that you, with key {id}, vouch for {contact}'s key. Send it to \
         {contact}; they publish it with `esession keys add-attestation FILE`."
    );
    Ok(())
}

/// `esession keys add-attestation FILE` (PKP-05/06): publishes an attestation of one of
/// our published keys once it checks against the key its signer published.
pub(crate) async fn add_attestation(
    settings: &Settings,
    file: &std::path::Path,
) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{} could not be read: {e}", file.display()))?;
    let element = esession_wire::xml::parse_document(text.trim())
        .map_err(|_| format!("{} holds no well-formed XML", file.display()))?;
    let attestation = esession_wire::pubkey::Attestation::try_from(&element)
        .map_err(|e| format!("{} is not an XEP-0189 attestation: {e}", file.display()))?;
    let store = open_store(settings)?;
    let account = settings.account()?;
    let owner = own_bare(&account)?;
    let signer = BareJid::new(&attestation.signerjid)
        .map_err(|_| "the attestation names a signer that is not a JID".to_owned())?;
    let mut client = connect(settings, &store).await?;
    let outcome = async {
        let ours = client.fetch_keys(&owner).await.map_err(|e| e.to_string())?;
        let theirs = client.fetch_keys(&signer).await.map_err(|e| e.to_string())?;
        let checks = ours.keys.iter().any(|attested| {
            theirs.keys.iter().any(|k| {
                !is_revoked(&theirs, k)
                    && check_published_key(k, &signer, now()).is_ok()
                    && esession::published::check_attestation(&attestation, attested, k, &signer)
                        .is_ok()
            })
        });
        if !checks {
            return Err(format!(
                "it does not verify: it must name one of your published keys and be signed by a key {signer} published (and you must share presence with them)"
            ));
        }
        client
            .publish_attestation(&attestation)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    client.disconnect().await;
    outcome.map_err(|e| format!("the attestation was not published: {e}"))?;
    println!(
        "Published the attestation by {signer} (XEP-0189): contacts who fetch your keys see that {signer} vouches for your key."
    );
    Ok(())
}

/// Whether a valid revocation of `key` was fetched beside it (PKP-06).
fn is_revoked(fetched: &FetchedKeys, key: &PublishedKey) -> bool {
    fetched
        .revocations
        .iter()
        .any(|r| check_revocation(r, key).is_ok())
}

/// One fetched key, judged, as a line for a person.
fn describe_fetched(
    store: &Store,
    account: &str,
    contact: &BareJid,
    key: &PublishedKey,
    revoked: bool,
) -> Result<String, String> {
    let key_value = match check_published_key(key, contact, now()) {
        Ok(key_value) => key_value,
        Err(reason) => return Ok(format!("  a key that is not used: {reason}")),
    };
    let fingerprint = esession::trust::key_fingerprint(&key_value);
    let bits = key.modulus.len() * 8;
    let head = format!(
        "  {} (RSA-{bits}), valid {} to {}",
        fingerprint_full(&fingerprint),
        day(&key.begin),
        day(&key.end)
    );
    if revoked {
        // PKP-06: honoured at once. The owner's signed word outranks our own verification.
        let held = store
            .peer_keys_of(account, contact.as_str())
            .map_err(|e| store_error(store.path(), "read", &e))?
            .iter()
            .any(|k| k.fingerprint == fingerprint);
        if held {
            store
                .delete_peer_key(account, &fingerprint)
                .map_err(|e| store_error(store.path(), "change", &e))?;
            return Ok(format!(
                "{head}: REVOKED by its owner; removed from your trust store, no session will accept it"
            ));
        }
        return Ok(format!("{head}: REVOKED by its owner, not used"));
    }
    let xml = esession_wire::xml::serialize(&esession_wire::minidom::Element::from(&key_value), "")
        .map_err(|e| e.to_string())?;
    let seen = u64::try_from(now()).unwrap_or_default();
    let observation = store
        .record_peer_key(
            account,
            contact.as_str(),
            fingerprint,
            xml.into_bytes(),
            seen,
        )
        .map_err(|e| store_error(store.path(), "change", &e))?;
    let trust = if observation.verified {
        "verified"
    } else {
        "seen, NOT VERIFIED"
    };
    let note = match observation.status {
        KeyStatus::New => " (new)".to_owned(),
        KeyStatus::Known => String::new(),
        KeyStatus::SeenWithOtherJid => format!(
            " — !!! this key was seen before under {}: ask {contact} whether they share it",
            observation.other_jids.join(", ")
        ),
        KeyStatus::KeyChanged => format!(
            " — !!! KEY CHANGE: {contact} used another key before; verify this one with them \
             before trusting it"
        ),
    };
    Ok(format!("{head}: {trust}{note}"))
}

/// Before negotiating with public keys (issue 13): when we hold no key for `contact`, fetch
/// the ones it published, judged and remembered as seen as `trust fetch` does, so that the
/// negotiation can name the key and the user sees its fingerprint. Returns the lines to
/// show (a failure to fetch is one calm line: the negotiation goes on without).
pub(crate) async fn fetch_before_negotiating(
    client: &mut EsessionClient,
    store: &Store,
    account: &str,
    contact: &str,
) -> Vec<String> {
    let bare = contact.split('/').next().unwrap_or(contact);
    let Ok(contact) = BareJid::new(bare) else {
        return Vec::new();
    };
    match store.peer_keys_of(account, contact.as_str()) {
        Ok(keys) if keys.is_empty() => {}
        _ => return Vec::new(),
    }
    let fetched = match client.fetch_keys(&contact).await {
        Ok(fetched) => fetched,
        Err(e) => return vec![format!("*** No published key of {contact} fetched: {e}")],
    };
    if fetched.keys.is_empty() {
        return vec![format!("*** {contact} has published no key (XEP-0189).")];
    }
    let mut lines = vec![format!(
        "*** {contact} published these keys (XEP-0189; not proof of who holds them):"
    )];
    for key in &fetched.keys {
        match describe_fetched(store, account, &contact, key, is_revoked(&fetched, key)) {
            Ok(line) => lines.push(format!("*** {}", line.trim_start())),
            Err(e) => lines.push(format!("!!! {e}")),
        }
    }
    lines
}

/// `esession trust fetch CONTACT`: the contact's published keys, checked, with their
/// fingerprints and validity; usable ones are remembered as seen.
pub(crate) async fn fetch(settings: &Settings, contact: &str) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let contact =
        BareJid::new(contact).map_err(|e| format!("{contact} is not a valid JID ({e})"))?;
    let mut client = connect(settings, &store).await?;
    let fetched = client.fetch_keys(&contact).await;
    let attested = match &fetched {
        Ok(fetched) => judge_attestations(&mut client, &store, &account, &contact, fetched).await,
        Err(_) => Vec::new(),
    };
    client.disconnect().await;
    let fetched = fetched.map_err(|e| format!("could not fetch the keys of {contact}: {e}"))?;
    if fetched.keys.is_empty() {
        println!("{contact} has published no key (XEP-0189), or none you may read.");
    } else {
        println!(
            "Keys {contact} published (XEP-0189). Publication is no proof of who holds a key: \
             compare its fingerprint with {contact} over another channel, then run `esession \
             trust verify {contact} --fingerprint \"FINGERPRINT\"`."
        );
    }
    for key in &fetched.keys {
        let revoked = is_revoked(&fetched, key);
        println!(
            "{}",
            describe_fetched(&store, &account, &contact, key, revoked)?
        );
    }
    for line in attested {
        println!("{line}");
    }
    if fetched.unreadable > 0 {
        println!(
            "  ({} published item(s) could not be read and were ignored.)",
            fetched.unreadable
        );
    }
    Ok(())
}

/// Attestations judged per fetch at most (each may fetch the signer's keys).
const MAX_ATTESTATIONS: usize = 8;

/// PKP-06: each attestation of one of `contact`'s usable keys, checked against the key its
/// signer published, as a line for a person. A valid one only matters if the user verified
/// the signer's key, and even then it verifies nothing by itself: it is shown, not acted on.
async fn judge_attestations(
    client: &mut EsessionClient,
    store: &Store,
    account: &str,
    contact: &BareJid,
    fetched: &FetchedKeys,
) -> Vec<String> {
    let mut lines = Vec::new();
    for attestation in fetched.attestations.iter().take(MAX_ATTESTATIONS) {
        let attested = fetched.keys.iter().find(|k| {
            attestation
                .attested_print()
                .is_ok_and(|p| esession_crypto::ct_eq(&p, &k.print))
                && check_published_key(k, contact, now()).is_ok()
        });
        let Some(attested) = attested else {
            continue; // Of a key not published or not usable: nothing to say about it.
        };
        let signer = attestation.signerjid.as_str();
        let Ok(signer_jid) = BareJid::new(signer) else {
            lines.push("    an attestation names a signer that is not a JID: ignored".to_owned());
            continue;
        };
        let signer_keys = client.fetch_keys(&signer_jid).await.unwrap_or_default();
        let verdict = signer_keys
            .keys
            .iter()
            // PKP-06: a signer key its owner revoked vouches for nothing.
            .filter(|k| !is_revoked(&signer_keys, k))
            .filter(|k| {
                attestation
                    .signer_print()
                    .is_ok_and(|p| esession_crypto::ct_eq(&p, &k.print))
            })
            .find_map(|k| {
                let key_value = check_published_key(k, &signer_jid, now()).ok()?;
                esession::published::check_attestation(attestation, attested, k, &signer_jid)
                    .ok()
                    .map(|()| key_value)
            });
        lines.push(match verdict {
            None => format!(
                "    an attestation by {signer} could not be checked (their key is not published, not readable to you, or does not match): ignored"
            ),
            Some(key_value) => {
                let fingerprint = esession::trust::key_fingerprint(&key_value);
                let verified = store
                    .peer_keys_of(account, signer_jid.as_str())
                    .map(|keys| keys.iter().any(|k| k.fingerprint == fingerprint && k.verified))
                    .unwrap_or(false);
                if verified {
                    format!(
                        "    attested by {signer}, whose key {} you verified: they vouch for {contact}'s key (it is still yours to verify)",
                        fingerprint_full(&fingerprint)
                    )
                } else {
                    format!(
                        "    attested by {signer} (key {}), whom you have not verified: this adds nothing",
                        fingerprint_full(&fingerprint)
                    )
                }
            }
        });
    }
    lines
}

/// XEP-0187 (OFF-13): takes the option sets kept in the store and hands them to the
/// client's manager, then withdraws the published set from our server. Returns how many.
pub(crate) async fn hold_kept_offline_options(
    settings: &Settings,
    store: &Store,
    client: &mut EsessionClient,
) -> Result<usize, String> {
    let account = settings.account()?;
    let kept = store
        .account(&account)
        .and_then(|a| a.take_offline_options())
        .map_err(|e| format!("the offline option sets could not be read from the store: {e}"))?;
    let found = kept.sets.len() + kept.unreadable;
    for set in kept.sets {
        client.manager_mut().hold_offline_options(set);
    }
    client.manager_mut().discard_expired_offline_options();
    if found > 0 {
        // OFF-13: unpublish; a failure only leaves options nobody can use any more.
        let _ = client.retract_offline_options().await;
    }
    if kept.unreadable > 0 {
        return Err(format!(
            "{} kept offline option set(s) could not be read (damaged, or edited without your passphrase) and were destroyed; messages written to them cannot be read",
            kept.unreadable
        ));
    }
    Ok(client.manager().held_offline_options())
}

/// `esession offline-publish [--hours N]` (OFF-01..06, OFF-18): a new signed option set,
/// kept sealed in the store and published to our subscriber node.
pub(crate) async fn publish_offline(settings: &Settings, hours: u64) -> Result<(), String> {
    let store = open_store(settings)?;
    let mut departure = Departure::new(settings, &store, hours)?;
    let mut client = login(
        settings,
        manager(settings, &store, Config::default())?,
        crate::account::Inbox::Ignores,
    )
    .await?;
    let result = departure.publish(&store, &mut client).await;
    client.disconnect().await;
    let until = result?;
    println!(
        "Published offline options valid until {until} (XEP-0187). Contacts who verified your key \
         can now write to you while you are offline; `esession listen` reads it when you are back."
    );
    Ok(())
}

/// What publishing offline options needs besides the connection: our signing keys in a
/// manager of their own (the client's policy may not identify by key), the account and how
/// long the options stay valid (OFF-03/05/18).
pub(crate) struct Departure {
    signer: esession::SessionManager,
    account: String,
    hours: u64,
}

impl Departure {
    /// For `hours` of validity, with our stored keys.
    pub(crate) fn new(settings: &Settings, store: &Store, hours: u64) -> Result<Self, String> {
        let account = settings.account()?;
        let config = crate::account::config_with_public_keys(store, &account, settings)?;
        Ok(Self {
            signer: manager(settings, store, config)?,
            account,
            hours,
        })
    }

    /// `--offline-on-exit HOURS` (OFF-18): the departure `chat` and `listen` prepare at start.
    pub(crate) fn on_exit(settings: &Settings, store: &Store) -> Result<Option<Self>, String> {
        settings
            .offline_on_exit
            .map(|hours| Self::new(settings, store, hours))
            .transpose()
    }

    /// A fresh set (new N_A and x, OFF-18), kept sealed in the store, then published
    /// through `client`. Returns its expiry as text.
    pub(crate) async fn publish(
        &mut self,
        store: &Store,
        client: &mut EsessionClient,
    ) -> Result<String, String> {
        let set = self
            .signer
            .offline_options(self.hours.saturating_mul(3600), None)
            .map_err(|e| {
                format!("no offline options were made: {e}. Create a signing key first with `esession keys generate`.")
            })?;
        store
            .account(&self.account)
            .and_then(|a| a.save_offline_options(&set))
            .map_err(|e| {
                format!(
                    "the offline options were not kept in the store, so nothing was published: {e}"
                )
            })?;
        client
            .publish_offline_options(&set.options)
            .await
            .map_err(|e| format!("the offline options were not published: {e}"))?;
        Ok(Timestamp::from_unix(set.expires_at)
            .map(|t| t.text)
            .unwrap_or_default())
    }

    /// [`Self::publish`] when leaving, as a line for the user.
    pub(crate) async fn announce(&mut self, store: &Store, client: &mut EsessionClient) -> String {
        match self.publish(store, client).await {
            Ok(until) => format!(
                "*** Offline options published, valid until {until}: contacts who verified your key can write to you while you are away."
            ),
            Err(e) => format!("!!! {e}"),
        }
    }
}

/// `esession send --offline CONTACT`: the contact is offline; encrypt to the options they
/// published (OFF-07..12), as a one-shot session.
pub(crate) async fn send_offline(
    settings: &Settings,
    contact: &str,
    message: &str,
) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let config = crate::account::config_with_public_keys(&store, &account, settings)?;
    let mut client = login(
        settings,
        manager(settings, &store, config)?,
        crate::account::Inbox::Ignores,
    )
    .await?;
    eprintln!("{}", crate::account::archive_line(&client));
    let bare = BareJid::new(contact).map_err(|_| format!("{contact} is not a JID"))?;
    // An online contact gets a normal session: their client may hold no option set.
    if !contact_seems_offline(&mut client, contact, std::time::Duration::from_secs(3)).await {
        client.disconnect().await;
        return Err(format!(
            "{contact} is online: nothing was sent offline. Use `esession send {contact}` for a normal session."
        ));
    }
    let history = store.account(&account).ok();
    let result = send_offline_with(&mut client, &bare, message, history.as_ref()).await;
    client.disconnect().await;
    match result? {
        Some(signer) => {
            report_sent_offline(contact, &signer);
            Ok(())
        }
        None => Err(format!(
            "{contact} published no offline options (XEP-0187): nothing was sent. Ask them to run `esession offline-publish` before going offline."
        )),
    }
}

/// What the user is told once an offline session carried the message.
pub(crate) fn report_sent_offline(contact: &str, signer: &str) {
    println!("{}", sent_offline_sentence(contact, signer));
}

/// The sentence of [`report_sent_offline`].
pub(crate) fn sent_offline_sentence(contact: &str, signer: &str) -> String {
    format!(
        "{contact} is offline: sent as an offline encrypted session (XEP-0187) to the options \
         they published, signed by their key {signer}. They read it when they are back."
    )
}

/// Whether `contact` (a bare JID) shows no online resource within `wait`: the events that
/// arrive meanwhile concern no session of ours yet. A contact who does not share presence
/// with us always seems offline; their options are then unreadable to us too (OFF-01).
pub(crate) async fn contact_seems_offline(
    client: &mut EsessionClient,
    contact: &str,
    wait: std::time::Duration,
) -> bool {
    let online =
        crate::profile::wait_until(client, wait, |c| !c.online_resources(contact).is_empty()).await;
    matches!(online, Some((false, _)))
}

/// OFF-07..12: encrypts `message` to the options `contact` published, as a one-shot
/// offline session. `Ok(None)` when they published none; `Ok(Some(fingerprint))` of their
/// key that signed the options once sent.
pub(crate) async fn send_offline_with(
    client: &mut EsessionClient,
    contact: &BareJid,
    message: &str,
    history: Option<&esession_store::AccountStore>,
) -> Result<Option<String>, String> {
    let options = client
        .fetch_offline_options(contact)
        .await
        .map_err(|e| format!("{contact}'s offline options could not be fetched: {e}"))?;
    if options.is_empty() {
        return Ok(None);
    }
    send_to_options(client, contact, &options, message, true, history)
        .await
        .map(|(_, signer)| Some(signer))
}

/// Opens an offline session with the first of `options` (as the contact published them)
/// that we can use, `message` in it; with `one_shot` it ends there. Returns the session and
/// the fingerprint of the contact's key that signed the options; otherwise why not, in words.
pub(crate) async fn send_to_options(
    client: &mut EsessionClient,
    contact: &BareJid,
    options: &[esession_wire::minidom::Element],
    message: &str,
    one_shot: bool,
    history: Option<&esession_store::AccountStore>,
) -> Result<(esession::SessionId, String), String> {
    let mut plain =
        esession_wire::minidom::Element::bare("message", esession_wire::ns::JABBER_CLIENT);
    let _ = esession_wire::xml::set_attr(&mut plain, "type", "chat");
    plain.append_child(
        esession_wire::minidom::Element::builder("body", esession_wire::ns::JABBER_CLIENT)
            .append(message)
            .build(),
    );
    let mut last = String::new();
    for x in options {
        match client
            .start_offline_session(contact, x, &plain, one_shot)
            .await
        {
            Ok((id, info)) => {
                // Issue 14: kept like any message of a session that may be logged.
                let kept = history.map_or(Ok(false), |account| {
                    account.record_message(&id, &info, true, crate::account::now(), message)
                });
                if let Err(e) = kept {
                    eprintln!("!!! this message could not be kept in your history ({e})");
                }
                let signer = info
                    .peer_key
                    .map(|k| fingerprint_full(&k.fingerprint))
                    .unwrap_or_default();
                return Ok((id, signer));
            }
            Err(esession_xmpp::ClientError::Session(esession::Error::OfflineOptions(
                esession::offline::OptionsError::NotSigned,
            ))) => {
                last = format!(
                    "their offline options are signed by no key of theirs you verified. \
                     Fetch their key with `esession trust fetch {contact}`, compare its fingerprint \
                     with them over another channel, then run `esession trust verify {contact} \
                     --fingerprint \"FINGERPRINT\"`"
                );
            }
            Err(esession_xmpp::ClientError::Session(esession::Error::OfflineOptions(
                esession::offline::OptionsError::Expired,
            ))) => {
                last = "their offline options have expired; they must publish new ones".to_owned();
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("nothing was sent to {contact}: {last}"))
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

    #[test]
    fn a_day_is_shown_as_a_date_or_says_it_has_no_time_zone() {
        assert_eq!(
            day(&Timestamp::from_unix(1_800_000_000).unwrap()),
            "2027-01-15"
        );
        let unzoned = Timestamp {
            text: "2027-01-15T08:00:00".to_owned(),
            unix: None,
        };
        assert_eq!(day(&unzoned), "2027-01-15T08:00:00 (no time zone)");
    }
}
