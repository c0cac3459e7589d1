//! Policy: what we offer and accept. Defaults follow docs/requirements.md; risky
//! options carry `dangerously_` in their names (style practice 13).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, ExponentSize, HashAlgorithm, ModpGroup, SasAlgorithm,
    SignatureAlgorithm, SigningKey,
};

use crate::archiving::{ArchivingConflict, OtrPolicy};
use crate::error::ConfigError;
use crate::profile::Profile;
use crate::ssn::{Disclosure, Logging};
use crate::stanza::StanzaKind;

/// Configuration of a [`crate::SessionManager`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Our own full JID, put in `from` attributes (servers overwrite it anyway).
    pub own_jid: Option<String>,
    /// MODP groups to offer, best first. Alice computes e for each (ESN-06).
    pub groups: Vec<ModpGroup>,
    /// Ciphers to offer and accept, best first. `none` is never offered or
    /// accepted unless [`Config::dangerously_allow_none_cipher`] is set.
    pub ciphers: Vec<CipherAlgorithm>,
    /// Hashes to offer and accept, best first.
    pub hashes: Vec<HashAlgorithm>,
    /// Compression to offer and accept, best first. Default `none` only:
    /// ESN-05 does not recommend compression (the length of a compressed
    /// stanza tells an observer about its content), and a zlib session
    /// costs about 340 KB once both directions carry stanzas (issue 11).
    /// Add [`CompressionAlgorithm::Zlib`] to offer and accept it; then
    /// [`Limits::compressed_sessions_total`] bounds what peers can make us hold.
    pub compression: Vec<CompressionAlgorithm>,
    /// SAS algorithms.
    pub sas: Vec<SasAlgorithm>,
    /// The off-the-record policy (XEP-0136 `otr` mode, ARC-02) for every
    /// contact without an entry in [`Config::contact_otr_policies`]: it
    /// decides the `logging` options we offer (ARC-03) and the one we accept
    /// (ARC-04). Default [`OtrPolicy::Prefer`].
    pub otr_policy: OtrPolicy,
    /// The off-the-record policy per contact (normalized bare JID), set with
    /// [`crate::SessionManager::set_otr_policy`].
    pub contact_otr_policies: HashMap<String, OtrPolicy>,
    /// Whether our server's archive is known to keep nothing of an
    /// off-the-record session (ARC-07, SSN-03, AMB-59): only then is
    /// `logging=mustnot` offered or accepted. Default `false`: a core that
    /// was told nothing about the server never promises what the server
    /// may not keep. The adapter sets it once it has confirmed it (MAM or
    /// XEP-0136 preferences, or no archive at all).
    pub off_the_record_possible: bool,
    /// Stanza kinds we offer in the `stanzas` field, in this order, and accept
    /// from an offer (ESN-04/05, ENC-01, AMB-29). Only agreed kinds are ever
    /// encrypted; [`crate::SessionManager::send_stanza`] refuses the others.
    /// Default: `message` only, as every known deployment (Gajim) and the
    /// independent transcripts in `vectors/` offer; add [`StanzaKind::Presence`]
    /// and [`StanzaKind::Iq`] once the application routes those stanzas
    /// through the core (ESN-44: agreed kinds then go only encrypted to the peer).
    pub stanzas: Vec<StanzaKind>,
    /// End a session when the peer's full JID sends unavailable presence
    /// (SSN-16). XEP-0155 prefers assuming the peer continues (SHOULD); it MAY
    /// assume otherwise and then MUST terminate explicitly, which is what we do
    /// by default: a conforming ESession peer terminates before it goes offline
    /// (ESN-45), so unavailable presence without that means its keys are gone
    /// or it left silently, and ours should not outlive them (CMN-08). We send
    /// the encrypted terminate form and destroy the keys at once, without
    /// waiting for an acknowledgement that an offline peer cannot send.
    pub end_session_on_peer_unavailable: bool,
    /// Our minimum `rekey_freq` (1..=2^32-1): stanzas between key exchanges.
    pub rekey_freq: u32,
    /// Rekey after this many seconds without stanzas in either direction,
    /// when stanzas were exchanged under the current keys (ENC-19: "rekey or
    /// terminate after long idleness"); `None` never rekeys for idleness. The
    /// rekey is sent by [`crate::SessionManager::poll_timers`] and only when
    /// `rekey_freq` allows (ENC-14). Default: 600 (ten minutes).
    pub idle_rekey_after: Option<u64>,
    /// Encrypted blocks (both directions, AMB-28) after which one key exchange
    /// is used up (ENC-19: fewer than 2^32). We rekey once half of it is used
    /// and never send a stanza that would reach it; when `rekey_freq` bars the
    /// rekey the session is terminated. Clamped to 256..=2^32; lower values only
    /// rekey more often. Default: 2^32.
    pub rekey_block_limit: u64,
    /// Private exponent size (ESN-06).
    pub exponent_size: ExponentSize,
    /// Length of our nonces in bytes (CMN-07, AMB-40: at least 16).
    pub nonce_len: usize,
    /// Shortest peer nonce accepted, in bytes (AMB-40: 8, for Gajim).
    pub min_peer_nonce_len: usize,
    /// Random `rshashes` values added to every completion (ESN-30: at least 2).
    pub rshash_decoys: usize,
    /// Pad encrypted content with random whitespace to a multiple of this many
    /// bytes (ENC-04); `None` sends the exact length.
    pub pad_to_multiple: Option<usize>,
    /// Largest decrypted (and decompressed) stanza content accepted, in bytes.
    pub max_plaintext_len: usize,
    /// Answer offers automatically. When false, an offer raises
    /// [`crate::Event::OfferReceived`] and nothing is sent until the
    /// application calls accept or reject (SSN-09).
    pub auto_accept: bool,
    /// Answer an offer delivered from offline storage with a fresh offer
    /// (SSN-10: immediate sessions only). When false such offers are ignored.
    pub reoffer_delayed_offers: bool,
    /// Seconds a negotiation may wait for the peer's next message before it is
    /// forgotten by [`crate::SessionManager::expire_negotiations`].
    pub negotiation_timeout: u64,
    /// Lifetime of retained secrets in seconds (ESN-35: unexpired only).
    pub retained_secret_lifetime: u64,
    /// Accept plain (unencrypted) stanza sessions when the peer offers only
    /// `c2s`/`none` security (ESN-11). Off by default.
    pub accept_plain_sessions: bool,
    /// Allow the `none` cipher: messages are then NOT confidential. Off by default.
    pub dangerously_allow_none_cipher: bool,
    /// As responder, agree to a `disclosure` other than `never` when the
    /// initiator offers nothing else (it then discloses content to third
    /// parties; the user is alerted at once, ESN-53). Off by default: such
    /// offers are refused.
    pub accept_disclosure: bool,
    /// Our signing keys (ESN-17, ESN-55), injected: the core never generates
    /// or stores them. At most one per [`SignatureAlgorithm`] is used (the first).
    pub signing_keys: Vec<Arc<SigningKey>>,
    /// How we are prepared to identify ourselves (`init_pubkey` options when we
    /// initiate, `resp_pubkey` choices when we respond), best first. `key` and
    /// `hash` need a signing key of the agreed algorithm.
    pub own_identification: Vec<PubkeyMethod>,
    /// How we accept the peer to identify itself, best first. `hash` is used
    /// only when the trust store holds a key of the peer, and then ranks before
    /// `key` (XEP-0116 recommends the fingerprint then).
    pub peer_identification: Vec<PubkeyMethod>,
    /// Signature algorithms (`sign_algs`) offered and accepted, best first.
    pub sign_algs: Vec<SignatureAlgorithm>,
    /// Which negotiation we start: 3-message (SIGMA-I) or 4-message (SIGMA-R) (ESN-03).
    pub initiate_flow: FlowPolicy,
    /// Answer 3-message offers (SIGMA-I: our identity as responder is not
    /// protected against active attackers, ESN-03). When false such offers
    /// get `feature-not-implemented` naming `dhkeys` (ESN-08).
    pub accept_three_message: bool,
    /// Accept a peer key that the user never verified, and a `hash`
    /// identification is still refused: the session is then encrypted but NOT
    /// authenticated ([`crate::SessionInfo::peer_key`] says so, AMB-43). Off by
    /// default: an unverified key fails the negotiation (ESN-27, ESN-32).
    pub dangerously_accept_unverified_keys: bool,
    /// The wire profile of each contact, by bare JID (issue 6): offers we send
    /// to that contact and offers we receive from it use it. Contacts not
    /// listed use [`Profile::standard`]. See also
    /// [`crate::SessionManager::set_profile`].
    pub profiles: HashMap<String, Profile>,
    /// Answer offers only from JIDs subscribed to our presence (SSN-09,
    /// ESN-07): answering a stranger, even with an error, tells it we are
    /// online. When set, an offer from a bare JID not marked subscribed with
    /// [`crate::SessionManager::set_presence_subscription`] is never answered
    /// automatically and never refused with an error: it raises
    /// [`crate::Event::OfferReceived`] and waits for the user (an offer we
    /// could not accept is dropped in silence, with
    /// [`crate::Event::NegotiationFailed`] for the user only), and a delayed
    /// offer gets no fresh offer (SSN-10). Off by default, because the core
    /// knows subscriptions only when the application feeds them: an adapter
    /// that feeds its roster (subscription `from` or `both`, not blocked)
    /// should turn it on.
    pub answer_only_subscribers: bool,
    /// The `disclosure` values we offer as initiator, best first (ESN-53/54).
    /// Default `never`: we have no disclosure mechanism. An application that
    /// has one (an archive readable by third parties, say) MUST NOT agree
    /// `never` (ESN-54) and offers `enabled`; both users are then alerted at
    /// once ([`crate::SecurityAlert::DisclosureNotNever`]). Empty offers
    /// `never`. As responder, [`Config::accept_disclosure`] applies.
    pub offer_disclosure: Vec<Disclosure>,
    /// Responder: how long (seconds) [`crate::Event::Established`] waits for
    /// the initiator's first stanza when it claimed a retained secret, so
    /// that the event carries the final answer (issue 10): the claim is only
    /// proven by a stanza under the final keys (AMB-57). Our initiator sends
    /// one at once ([`Config::prove_retained_secret_at_once`]). After the
    /// wait the event says the secret is still unproven
    /// ([`crate::SessionInfo::retained_secret_unproven`]), and
    /// [`crate::Event::RetainedSecretProven`] follows if it is proven later.
    /// 0 announces at once.
    pub retained_secret_proof_wait: u64,
    /// Initiator: right after message 4, when the responder showed it holds
    /// one of our retained secrets, send one encrypted XEP-0085 `<active/>`
    /// chat state so the responder learns at once that we hold it too.
    pub prove_retained_secret_at_once: bool,
    /// XEP-0184 inside the encryption: [`crate::SessionManager::send_text`]
    /// asks for a receipt, receipts we get become
    /// [`crate::Event::MessageDelivered`], and a message that asks for one is
    /// answered with an encrypted `<received/>`. Messages already delivered
    /// (a resend whose receipt was lost) are acknowledged again but not
    /// delivered twice.
    pub delivery_receipts: bool,
    /// An encrypted stanza on a thread we hold no session for (we restarted
    /// or ended it) is answered with an `item-not-found` error on that
    /// thread, so its sender knows the session is gone (issue 10; the choice
    /// of error is documented in CONFORMANCE.md, "Sessions that are gone"). Subject to
    /// [`Config::answer_only_subscribers`].
    pub answer_unknown_sessions: bool,
    /// Responder: whose order decides among the acceptable MODP groups and
    /// compression methods an offer lists (issue 11). Default
    /// [`ResponderChoice::Ours`]: the first of [`Config::groups`] (and
    /// [`Config::compression`]) that the peer offered, so a stranger cannot
    /// make us compute in group 18 when group 14 was offered too, nor hold
    /// zlib contexts when `none` was offered.
    pub responder_choice: ResponderChoice,
    /// What a peer, authenticated or not, can make us spend (issue 11;
    /// docs/SECURITY.md gives the rationale of each default).
    pub limits: Limits,
}

/// Whose preference order a responder follows among acceptable options.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ResponderChoice {
    /// Ours ([`Config::groups`], [`Config::compression`] order).
    #[default]
    Ours,
    /// The initiator's (XEP-0155: options are listed in its order of
    /// preference); lets a stranger choose the most expensive group we accept.
    Peers,
}

/// Bounds on the work and state peers can cause (issue 11). Every limit
/// reached is reported as an event; none is silent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Negotiations in progress (offers received or sent, not yet
    /// established) per bare JID; the oldest is dropped for a new one.
    pub pending_negotiations_per_peer: usize,
    /// Negotiations in progress in all; the oldest is dropped for a new one.
    pub pending_negotiations_total: usize,
    /// Established sessions per bare JID; a new one beyond this is refused.
    pub sessions_per_peer: usize,
    /// Established sessions in all; a new one beyond this is refused.
    pub sessions_total: usize,
    /// Negotiations an unauthenticated stanza may make us start (a delayed
    /// offer re-offered under SSN-10) per bare JID per minute.
    pub unsolicited_starts_per_minute: u32,
    /// Elements in one decrypted stanza (with its descendants).
    pub max_decrypted_elements: usize,
    /// Incoming rekeys (`<key/>`) per session per minute, on top of the
    /// agreed `rekey_freq` (ENC-14), which is enforced on the peer too.
    pub peer_rekeys_per_minute: u32,
    /// Bytes of the peer's own form echoed in an error reply; a larger one
    /// is not echoed.
    pub max_error_echo: usize,
    /// Bytes of an offer's `<feature/>` (serialized) we evaluate; a larger
    /// one is refused (`not-acceptable`) before anything is kept, so an
    /// answered offer leaves at most about 16 KiB of state. Our own offers
    /// are about 3 KiB (all eight groups). With
    /// [`Config::accept_three_message`] at least 12 KiB apply (such offers
    /// carry every group's public value).
    pub max_offer_len: usize,
    /// Groups larger than this many bits are expensive (by default groups
    /// 16, 17 and 18: a key pair costs 1.3 to 6.6 ms, against 0.3 ms for
    /// group 14). An offer whose only acceptable groups are expensive is
    /// answered automatically at most [`Limits::expensive_answers_per_peer`]
    /// times a minute per bare JID and [`Limits::expensive_answers_total`]
    /// times a minute in all; beyond that it is refused (`not-acceptable`
    /// on `modp`).
    pub expensive_group_bits: u32,
    /// See [`Limits::expensive_group_bits`].
    pub expensive_answers_per_peer: u32,
    /// See [`Limits::expensive_group_bits`].
    pub expensive_answers_total: u32,
    /// Established sessions compressed with zlib, in all (only where
    /// [`Config::compression`] allows zlib). Each holds up to about 340 KB
    /// of compression state, so the default bounds it to about 85 MB; an
    /// offer beyond it that leaves only zlib is refused (`not-acceptable`
    /// on `compress`).
    pub compressed_sessions_total: usize,
    /// XEP-0187 offline sessions read per sender (bare JID) per minute; each
    /// costs a DH computation in a group of our options. The server hands over
    /// everything kept for us at once on login, so this allows a burst; beyond
    /// it an offline message is reported as not read.
    pub offline_messages_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pending_negotiations_per_peer: 4,
            pending_negotiations_total: 1000,
            sessions_per_peer: 16,
            sessions_total: 10_000,
            unsolicited_starts_per_minute: 2,
            max_decrypted_elements: 4096,
            peer_rekeys_per_minute: 60,
            max_error_echo: 4096,
            max_offer_len: 6 * 1024,
            expensive_group_bits: 3072,
            expensive_answers_per_peer: 2,
            expensive_answers_total: 30,
            compressed_sessions_total: 256,
            offline_messages_per_minute: 30,
        }
    }
}

pub use esession_wire::negotiation::PubkeyMethod;

/// Which negotiation the initiator starts (ESN-03).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlowPolicy {
    /// Always the 4-message negotiation (SIGMA-R, hides the responder).
    FourMessage,
    /// Always the 3-message negotiation (SIGMA-I); needs public keys both ways.
    ThreeMessage,
    /// 3-message towards a service (a JID without a node part), when public
    /// keys can be used both ways; otherwise 4-message (ESN-03).
    ByPeerKind,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            own_jid: None,
            groups: ModpGroup::ALL.to_vec(),
            ciphers: CipherAlgorithm::CONFIDENTIAL.to_vec(),
            hashes: HashAlgorithm::ALL.to_vec(),
            compression: vec![CompressionAlgorithm::None],
            sas: vec![SasAlgorithm::Sas28x5],
            otr_policy: OtrPolicy::Prefer,
            contact_otr_policies: HashMap::new(),
            off_the_record_possible: false,
            stanzas: vec![StanzaKind::Message],
            end_session_on_peer_unavailable: true,
            rekey_freq: 1,
            idle_rekey_after: Some(600),
            rekey_block_limit: 1 << 32,
            exponent_size: ExponentSize::Recommended,
            nonce_len: 16,
            min_peer_nonce_len: 8,
            rshash_decoys: 2,
            pad_to_multiple: None,
            max_plaintext_len: 1 << 20,
            auto_accept: true,
            reoffer_delayed_offers: true,
            negotiation_timeout: 120,
            retained_secret_lifetime: 180 * 24 * 3600,
            accept_plain_sessions: false,
            dangerously_allow_none_cipher: false,
            accept_disclosure: false,
            signing_keys: Vec::new(),
            own_identification: vec![PubkeyMethod::None],
            peer_identification: vec![PubkeyMethod::None],
            sign_algs: SignatureAlgorithm::ALL.to_vec(),
            initiate_flow: FlowPolicy::ByPeerKind,
            accept_three_message: false,
            dangerously_accept_unverified_keys: false,
            profiles: HashMap::new(),
            answer_only_subscribers: false,
            offer_disclosure: vec![Disclosure::Never],
            retained_secret_proof_wait: 10,
            prove_retained_secret_at_once: true,
            delivery_receipts: true,
            answer_unknown_sessions: true,
            responder_choice: ResponderChoice::Ours,
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// The wire profile for `peer` (a bare or full JID): its entry in
    /// [`Config::profiles`], else [`Profile::standard`].
    pub fn profile_for(&self, peer: &str) -> Profile {
        // Normalized (RFC 7622) as `set_profile` stores it; as written for
        // keys put in the map by hand.
        self.profiles
            .get(&crate::stanza::normalized_bare(peer))
            .or_else(|| self.profiles.get(crate::stanza::bare(peer)))
            .copied()
            .unwrap_or_else(Profile::standard)
    }

    /// The off-the-record policy for `peer` (a bare or full JID): its entry
    /// in [`Config::contact_otr_policies`], else [`Config::otr_policy`].
    pub fn otr_policy_for(&self, peer: &str) -> OtrPolicy {
        self.contact_otr_policies
            .get(&crate::stanza::normalized_bare(peer))
            .or_else(|| self.contact_otr_policies.get(crate::stanza::bare(peer)))
            .copied()
            .unwrap_or(self.otr_policy)
    }

    /// The `logging` options we offer `peer`, best first (ARC-03, ARC-07).
    pub fn logging_to_offer(&self, peer: &str) -> Result<Vec<Logging>, ArchivingConflict> {
        crate::archiving::logging_to_offer(self.otr_policy_for(peer), self.off_the_record_possible)
    }

    /// Whether a session with `peer` agreed with `logging` is still allowed
    /// by its policy and the server's archive (ARC-05, ARC-07).
    pub(crate) fn logging_still_allowed(&self, peer: &str, logging: Logging) -> bool {
        crate::archiving::still_allowed(
            self.otr_policy_for(peer),
            logging,
            self.off_the_record_possible,
        )
    }

    /// The policy for a contact of `profile`: this one, or a copy narrowed
    /// to what the profile allows (its `Subset`).
    pub fn for_profile(&self, profile: &Profile) -> Cow<'_, Config> {
        let Some(subset) = profile.subset() else {
            return Cow::Borrowed(self);
        };
        let mut c = self.clone();
        c.groups = subset.groups.to_vec();
        c.ciphers = vec![subset.cipher];
        c.dangerously_allow_none_cipher = false;
        c.hashes = vec![subset.hash];
        c.compression = vec![subset.compression];
        c.sas = vec![SasAlgorithm::Sas28x5];
        c.stanzas = subset.stanzas.to_vec();
        if !subset.three_message {
            c.initiate_flow = FlowPolicy::FourMessage;
            c.accept_three_message = false;
        }
        if !subset.public_keys {
            c.own_identification = vec![PubkeyMethod::None];
            c.peer_identification = vec![PubkeyMethod::None];
        }
        if !subset.rekeying {
            c.idle_rekey_after = None;
        }
        if let Some(len) = profile.nonce_len() {
            c.nonce_len = len;
        }
        c.accept_plain_sessions = false;
        c.accept_disclosure = false;
        Cow::Owned(c)
    }

    /// The length of the nonces we send to a contact of `profile`.
    pub(crate) fn own_nonce_len(&self, profile: &Profile) -> usize {
        profile.nonce_len().unwrap_or(self.nonce_len.max(16))
    }

    /// Our first signing key for `algorithm`, if any.
    pub(crate) fn signing_key(&self, algorithm: SignatureAlgorithm) -> Option<&SigningKey> {
        self.signing_keys
            .iter()
            .map(Arc::as_ref)
            .find(|k| k.algorithm() == algorithm)
    }

    /// The `disclosure` values we offer, `never` when none is configured.
    pub(crate) fn offered_disclosure(&self) -> Vec<Disclosure> {
        match self.offer_disclosure.is_empty() {
            true => vec![Disclosure::Never],
            false => self.offer_disclosure.clone(),
        }
    }

    /// The ciphers we may use, with `none` removed unless explicitly allowed.
    /// Checks that this policy can work (run by [`crate::SessionManager::new`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let lists = [
            ("groups", self.groups.is_empty()),
            ("ciphers", self.ciphers.is_empty()),
            ("hashes", self.hashes.is_empty()),
            ("compression", self.compression.is_empty()),
            ("sas", self.sas.is_empty()),
            ("stanzas", self.stanzas.is_empty()),
            ("own_identification", self.own_identification.is_empty()),
            ("peer_identification", self.peer_identification.is_empty()),
        ];
        if let Some((name, _)) = lists.iter().find(|(_, empty)| *empty) {
            return Err(ConfigError::Empty(name));
        }
        if self.usable_ciphers().next().is_none() {
            return Err(ConfigError::NoConfidentialCipher);
        }
        if self.limits.sessions_total == 0 {
            return Err(ConfigError::ZeroLimit("sessions_total"));
        }
        if self.limits.sessions_per_peer == 0 {
            return Err(ConfigError::ZeroLimit("sessions_per_peer"));
        }
        if self.max_plaintext_len == 0 {
            return Err(ConfigError::ZeroPlaintextLen);
        }
        Ok(())
    }

    pub(crate) fn usable_ciphers(&self) -> impl Iterator<Item = CipherAlgorithm> + '_ {
        self.ciphers
            .iter()
            .copied()
            .filter(|c| c.is_confidential() || self.dangerously_allow_none_cipher)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn a_contact_profile_applies_however_its_jid_is_spelled() {
        let mut config = Config::default();
        config
            .profiles
            .insert("gajim@example.org".to_owned(), Profile::gajim());
        // RFC 7622: node and domain are case-insensitive; any resource.
        for peer in [
            "gajim@example.org/pc",
            "Gajim@Example.ORG/pc",
            "GAJIM@example.org",
        ] {
            assert_eq!(config.profile_for(peer), Profile::gajim(), "{peer}");
        }
        assert_eq!(config.profile_for("other@example.org"), Profile::standard());
        assert_eq!(
            crate::stanza::normalized_bare("Bob@Example.COM/Phone"),
            "bob@example.com"
        );
        assert_eq!(crate::stanza::normalized_bare("not@@a/jid"), "not@@a");
    }

    #[test]
    fn the_standard_profile_leaves_the_config_untouched() {
        let config = Config::default();
        assert!(matches!(
            config.for_profile(&Profile::standard()),
            Cow::Borrowed(_)
        ));
        assert!(Profile::standard().allows_rekeying());
        assert_eq!(Profile::default(), Profile::standard());
        assert_eq!(
            Profile::standard().effective_cipher(CipherAlgorithm::Aes128Ctr),
            CipherAlgorithm::Aes128Ctr
        );
    }

    #[test]
    fn the_gajim_profile_narrows_the_config_to_gajims_subset() {
        // §17: 4 messages, no public keys, no rekey, message only, groups 15, 16, 14.
        let config = Config {
            accept_three_message: true,
            own_identification: vec![PubkeyMethod::Key, PubkeyMethod::None],
            stanzas: vec![StanzaKind::Message, StanzaKind::Iq],
            ..Config::default()
        };
        let gajim = Profile::gajim();
        let c = config.for_profile(&gajim);
        assert_eq!(
            c.groups,
            vec![ModpGroup::Group15, ModpGroup::Group16, ModpGroup::Group14]
        );
        assert_eq!(c.ciphers, vec![CipherAlgorithm::Aes128Ctr]);
        assert_eq!(c.hashes, vec![HashAlgorithm::Sha256]);
        assert_eq!(c.compression, vec![CompressionAlgorithm::None]);
        assert_eq!(c.stanzas, vec![StanzaKind::Message]);
        assert!(!c.accept_three_message);
        assert_eq!(c.initiate_flow, FlowPolicy::FourMessage);
        assert_eq!(c.own_identification, vec![PubkeyMethod::None]);
        assert_eq!(c.peer_identification, vec![PubkeyMethod::None]);
        assert_eq!(c.idle_rekey_after, None);
        assert_eq!(c.nonce_len, 8);
        assert!(!gajim.allows_rekeying());
        // Fact 1: aes128-ctr on the wire, AES-256 in use.
        assert_eq!(
            gajim.effective_cipher(CipherAlgorithm::Aes128Ctr),
            CipherAlgorithm::Aes256Ctr
        );
    }

    #[test]
    fn a_policy_that_cannot_work_is_refused_with_what_to_change() {
        assert_eq!(Config::default().validate(), Ok(()));
        let cases: [(Config, ConfigError); 5] = [
            (
                Config {
                    groups: Vec::new(),
                    ..Config::default()
                },
                ConfigError::Empty("groups"),
            ),
            (
                Config {
                    sas: Vec::new(),
                    ..Config::default()
                },
                ConfigError::Empty("sas"),
            ),
            (
                Config {
                    ciphers: vec![CipherAlgorithm::None],
                    ..Config::default()
                },
                ConfigError::NoConfidentialCipher,
            ),
            (
                Config {
                    limits: Limits {
                        sessions_total: 0,
                        ..Limits::default()
                    },
                    ..Config::default()
                },
                ConfigError::ZeroLimit("sessions_total"),
            ),
            (
                Config {
                    max_plaintext_len: 0,
                    ..Config::default()
                },
                ConfigError::ZeroPlaintextLen,
            ),
        ];
        for (config, expected) in cases {
            let error = config.validate().unwrap_err();
            assert_eq!(error, expected);
            // Every message names what to do.
            let text = error.to_string();
            assert!(
                text.contains("list") || text.contains("use") || text.contains("set"),
                "{text}"
            );
        }
        // `none` alone is fine when explicitly allowed.
        let allowed = Config {
            ciphers: vec![CipherAlgorithm::None],
            dangerously_allow_none_cipher: true,
            ..Config::default()
        };
        assert_eq!(allowed.validate(), Ok(()));
    }
}
