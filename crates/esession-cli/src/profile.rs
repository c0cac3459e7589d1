//! Wire profiles per contact (issue 6): `--profile`, `esession trust profile`,
//! loading the stored profiles into the session manager, and the full JID
//! that Gajim needs.

use std::collections::HashMap;
use std::time::Duration;

use esession::Profile;
use esession_store::Store;
use esession_xmpp::{ClientEvent, EsessionClient};

/// What `--help` says about the profiles (shared by `chat`, `send` and
/// `trust profile`).
pub(crate) const PROFILES_HELP: &str = "\
Profiles:
standard (the default): the specifications as written.
gajim: interoperability with Gajim 0.12-0.16, the one client that shipped ESessions. It \
reproduces Gajim's departures from the specs, so it is LESS STANDARD: 4-message negotiation \
only (no 3-message variant), no public keys (SAS and retained secrets only), no rekeying, only \
message stanzas, AES-256 keys while the form advertises aes128-ctr, 8-byte nonces, unpadded \
SAS, and a clear-text termination next to the encrypted one. Gajim addresses its request to a \
full JID: give CONTACT/RESOURCE, or a bare JID whose online resource we see in presence. \
See docs/INTEROP.md.";

/// A profile name on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProfileName {
    /// The specifications as written (the default).
    Standard,
    /// Gajim 0.12-0.16 compatibility (less standard).
    Gajim,
}

impl ProfileName {
    /// The core's profile of this name.
    pub(crate) fn profile(self) -> Profile {
        match self {
            Self::Standard => Profile::standard(),
            Self::Gajim => Profile::gajim(),
        }
    }
}

/// The bare JID of `jid`.
pub(crate) fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

/// Whether `profile` needs the contact's full JID (Gajim addresses its
/// request to the full JID and keys sessions by it: reference-behaviour.md
/// §1 and §14 item 15).
pub(crate) fn needs_full_jid(profile: &Profile) -> bool {
    profile.needs_full_jid()
}

/// The stored profiles of `account`'s contacts, for `Config::profiles`.
/// A name this build does not know (written by a newer one) is reported and
/// skipped: that contact gets the standard profile.
pub(crate) fn stored_profiles(
    store: &Store,
    account: &str,
) -> Result<HashMap<String, Profile>, String> {
    let mut profiles = HashMap::new();
    for (contact, name) in store.contact_profiles(account).map_err(|e| e.to_string())? {
        match Profile::by_name(&name) {
            Some(profile) if profile != Profile::standard() => {
                profiles.insert(contact, profile);
            }
            Some(_) => {}
            None => eprintln!(
                "esession: ignoring the unknown profile \"{name}\" stored for {contact}; \
                 using the standard profile (set it with `esession trust profile`)"
            ),
        }
    }
    Ok(profiles)
}

/// Prints a one-line notice when `contact` is on a non-standard profile.
pub(crate) fn announce(client: &EsessionClient, contact: &str) {
    let profile = client.manager().profile_for(contact);
    if profile != Profile::standard() {
        eprintln!(
            "Using the {} compatibility profile with {} (less standard; see `esession chat --help`).",
            profile.name(),
            bare(contact)
        );
    }
}

/// The JID to start a session with `contact` at. Under a profile that needs
/// the full JID, a bare `contact` is resolved to an online resource seen in
/// presence, waiting up to `wait` for one to show up after login. Events that
/// arrive meanwhile are returned for the caller to handle.
pub(crate) async fn session_target(
    client: &mut EsessionClient,
    contact: &str,
    wait: Duration,
) -> Result<(String, Vec<ClientEvent>), String> {
    let profile = client.manager().profile_for(contact);
    let (ready, seen) = wait_until(client, wait, |c| target_now(c, contact).is_ok())
        .await
        .ok_or_else(|| "the connection closed".to_owned())?;
    if !ready {
        return Err(no_resource(contact, profile.name()));
    }
    let target = target_now(client, contact)?;
    if target != contact {
        eprintln!(
            "The {} profile needs a full JID: starting the session with {target}.",
            profile.name()
        );
    }
    Ok((target, seen))
}

/// Handles events for up to `wait` until `ready` holds (checked first, then after each
/// event). Returns whether it did, and the events that arrived meanwhile; `None` when the
/// connection closed.
pub(crate) async fn wait_until(
    client: &mut EsessionClient,
    wait: Duration,
    ready: impl Fn(&EsessionClient) -> bool,
) -> Option<(bool, Vec<ClientEvent>)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        if ready(client) {
            return Some((true, seen));
        }
        tokio::select! {
            event = client.next_event() => seen.push(event?),
            () = &mut deadline => return Some((false, seen)),
        }
    }
}

/// The JID to start a session with `contact` at, now: `contact` itself, or
/// under a profile that needs the full JID and a bare `contact`, its first
/// online resource; an error saying what to do if it has none.
pub(crate) fn target_now(client: &EsessionClient, contact: &str) -> Result<String, String> {
    let profile = client.manager().profile_for(contact);
    if contact.contains('/') || !needs_full_jid(&profile) {
        return Ok(contact.to_owned());
    }
    client
        .online_resources(contact)
        .first()
        .cloned()
        .ok_or_else(|| no_resource(contact, profile.name()))
}

/// Why a bare JID cannot be used under a profile that needs the full JID.
fn no_resource(contact: &str, profile: &str) -> String {
    format!(
        "{contact} has no online resource that we can see, and the {profile} profile needs the \
         contact's full JID (Gajim addresses its ESession request to a full JID): give \
         {contact}/RESOURCE, or subscribe to {contact}'s presence and try again when it is online"
    )
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
    fn names_map_to_the_cores_profiles() {
        assert_eq!(ProfileName::Gajim.profile(), Profile::gajim());
        assert_eq!(ProfileName::Standard.profile(), Profile::standard());
        for name in [ProfileName::Gajim, ProfileName::Standard] {
            let profile = name.profile();
            assert_eq!(Profile::by_name(profile.name()), Some(profile));
        }
        assert!(needs_full_jid(&Profile::gajim()));
        assert!(!needs_full_jid(&Profile::standard()));
    }

    #[test]
    fn stored_profiles_load_known_names_and_skip_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create_with_params(
            dir.path().join("s.db"),
            esession_store::Unlock::Passphrase(esession_crypto::SecretBytes::from_slice(b"pw")),
            esession_store::KdfParams::insecure_fast_for_tests(),
        )
        .unwrap();
        let me = "me@example.org";
        store
            .set_contact_profile(me, "gajim@example.net", Some("gajim"))
            .unwrap();
        store
            .set_contact_profile(me, "std@example.net", Some("standard"))
            .unwrap();
        store
            .set_contact_profile(me, "future@example.net", Some("psi-2031"))
            .unwrap();
        let loaded = stored_profiles(&store, me).unwrap();
        assert_eq!(loaded.len(), 1, "{:?}", loaded.keys());
        assert_eq!(loaded.get("gajim@example.net"), Some(&Profile::gajim()));
        let config = esession::Config {
            profiles: loaded,
            ..esession::Config::default()
        };
        assert_eq!(
            config.profile_for("gajim@example.net/Gajim"),
            Profile::gajim()
        );
        assert_eq!(
            config.profile_for("future@example.net"),
            Profile::standard()
        );
    }

    #[test]
    fn the_missing_resource_message_says_what_to_do() {
        let text = no_resource("bob@example.net", "gajim");
        assert!(text.contains("bob@example.net/RESOURCE"), "{text}");
        assert!(text.contains("full JID"), "{text}");
    }
}
