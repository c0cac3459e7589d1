//! The ESession negotiations of XEP-0116 / XEP-0217, carried in XEP-0155 forms:
//! 4 messages (SIGMA-R with a hash commitment, client-to-client) or 3 messages
//! (SIGMA-I, client-to-service: e in `dhkeys`, AMB-07; Bob's identity in his
//! answer, ESN-15/23; Alice's completes it, ESN-29). Each side identifies with
//! a public key (`key`), its fingerprint (`hash`) or not at all (`none`, only
//! with 4 messages, ESN-03).
//!
//! ```text
//!  Alice (initiator)                                   Bob (responder)
//!  offer: N_A, He per group, options  ---- 1 ---->   choose; N_B, C_A, y, d
//!  K; mac_A, ID_A, M_A; rshashes      <--- 2 ----    answer: choices, d, nonce, counter
//!  completion: e, rshashes, ID_A, M_A ---- 3 ---->   check He, M_A, mac_A; SRS; K_final
//!  check M_B, mac_B; SRS; K_final     <--- 4 ----    <init/>: srshash, ID_B, M_B
//! ```
//!
//! ```text
//!  3 messages:  offer: N_A, e per group  ---- 1 ---->  choose; K; ID_B, M_B appended
//!               verify B; ID_A, M_A       <--- 2 ----  answer + identity + mac
//!               completion (+ <c/>)       ---- 3 ---->  verify A: established
//! ```
//!
//! Each state is a struct consumed by the step that advances it: a failed step
//! leaves nothing behind (ESN-10) and a finished one cannot run twice.

pub(crate) mod establish;
pub(crate) mod fields;
pub(crate) mod initiator;
pub(crate) mod responder;
pub(crate) mod secrets;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use esession_crypto::{Counter, SignatureAlgorithm};
use esession_wire::keyvalue::KeyValue;
use jid::Jid;

use crate::clock::Clock;
use crate::config::{Config, FlowPolicy, PubkeyMethod};
use crate::event::{PeerKeyInfo, SecurityAlert, SessionInfo};
use crate::identity::{self, Expect, IdentityKeys, OpenError, Transcript};
use crate::random::Randomness;
use crate::ssn::ErrorCondition;
use crate::trust::{PeerKeyObservation, PeerKeyStatus, TrustStore, key_fingerprint};

/// What a negotiation step needs from its environment (all injected).
pub(crate) struct Context<'a> {
    /// The policy for this peer: [`Config`] narrowed by the profile's subset.
    pub(crate) config: &'a Config,
    /// The peer's wire profile (issue 6).
    pub(crate) profile: crate::profile::Profile,
    pub(crate) rng: &'a mut dyn Randomness,
    pub(crate) trust: &'a mut dyn TrustStore,
    pub(crate) clock: &'a dyn Clock,
    /// Trust-store failures met during the step, reported as events.
    pub(crate) trust_failures: Vec<crate::trust::TrustStoreError>,
    /// Key alerts raised during the step (ESN-49..52), reported as events.
    pub(crate) alerts: Vec<SecurityAlert>,
}

impl Context<'_> {
    /// Reads, or notes the failure and continues with the fallback (nothing stored).
    pub(crate) fn read<T: Default>(
        &mut self,
        result: Result<T, crate::trust::TrustStoreError>,
    ) -> T {
        result.unwrap_or_else(|e| {
            self.trust_failures.push(e);
            T::default()
        })
    }

    /// ESN-40/42: stores RS_new = HMAC(K_final, "New Retained Secret") for the
    /// peer's client, carrying the chain's verified flag forward; returns the client.
    pub(crate) fn store_new_retained_secret(
        &mut self,
        peer: &Jid,
        hash: esession_crypto::HashAlgorithm,
        k_final: &esession_crypto::SecretBytes,
        verified: bool,
    ) -> String {
        let client = peer.resource().map_or("", |r| r.as_str()).to_owned();
        let stored = self.trust.store_retained_secret(
            peer.to_bare().as_str(),
            crate::trust::RetainedSecret {
                client: client.clone(),
                secret: esession_crypto::kdf::new_retained_secret(hash, k_final),
                created: self.clock.now_unix(),
                verified,
            },
        );
        self.write(stored);
        client
    }

    /// Writes, noting any failure.
    pub(crate) fn write(&mut self, result: Result<(), crate::trust::TrustStoreError>) {
        if let Err(e) = result {
            self.trust_failures.push(e);
        }
    }
}

/// A refused step: the condition and fields to report (AMB-52).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) condition: ErrorCondition,
    pub(crate) fields: Vec<String>,
}

impl Refusal {
    pub(crate) fn new(condition: ErrorCondition, fields: &[&str]) -> Self {
        Self {
            condition,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// Messages 3 and 4: every failure is feature-not-implemented without detail (AMB-52).
    pub(crate) fn crypto() -> Self {
        Self {
            condition: ErrorCondition::FeatureNotImplemented,
            fields: Vec::new(),
        }
    }
}

/// Base64 of bytes (CMN-02, RFC 4648 §4 with padding).
impl From<crate::identity::OpenError> for Refusal {
    fn from(_: crate::identity::OpenError) -> Self {
        Refusal::crypto()
    }
}

impl From<crate::identity::SealError> for Refusal {
    fn from(_: crate::identity::SealError) -> Self {
        Refusal::crypto()
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) use esession_wire::negotiation::unb64;

/// What both sides agreed in messages 1-2.
#[derive(Clone, Debug)]
pub(crate) struct Agreed {
    pub(crate) group: esession_crypto::ModpGroup,
    pub(crate) cipher: esession_crypto::CipherAlgorithm,
    pub(crate) hash: esession_crypto::HashAlgorithm,
    pub(crate) compression: esession_crypto::CompressionAlgorithm,
    pub(crate) logging: crate::ssn::Logging,
    pub(crate) disclosure: crate::ssn::Disclosure,
    /// The 3-message flow (SIGMA-I).
    pub(crate) three_message: bool,
    /// `init_pubkey`: how Alice identifies.
    pub(crate) init_pubkey: PubkeyMethod,
    /// `resp_pubkey`: how Bob identifies.
    pub(crate) resp_pubkey: PubkeyMethod,
    /// `sign_algs`, when either side signs.
    pub(crate) sign_alg: Option<esession_crypto::SignatureAlgorithm>,
    /// Agreed `stanzas`: a non-empty subset of the offer (ENC-01, AMB-29).
    pub(crate) stanzas: Vec<crate::stanza::StanzaKind>,
    /// XEP-0187: Bob answered Alice's published options while she was offline.
    pub(crate) offline: bool,
}

/// A retained secret matched during negotiation, and what to do with it.
pub(crate) struct RetainedMatch {
    pub(crate) secret: esession_crypto::SecretBytes,
    pub(crate) verified: bool,
}

/// Whether a retained secret created at `created` is still usable (ESN-35).
pub(crate) fn unexpired(config: &Config, clock: &dyn Clock, created: u64) -> bool {
    clock.now_unix() < created.saturating_add(config.retained_secret_lifetime)
}

/// Whether we start a 3-message negotiation with `peer` (ESN-03): by policy,
/// and only when both sides can identify by public key (never `none`).
pub(crate) fn use_three_message(config: &Config, peer: &Jid) -> bool {
    let wanted = match config.initiate_flow {
        FlowPolicy::FourMessage => false,
        FlowPolicy::ThreeMessage => true,
        // A service: a JID without a node part.
        FlowPolicy::ByPeerKind => peer.node().is_none(),
    };
    let signs = config
        .own_identification
        .iter()
        .any(|m| *m != PubkeyMethod::None)
        && config
            .sign_algs
            .iter()
            .any(|a| config.signing_key(*a).is_some());
    let verifies = config
        .peer_identification
        .iter()
        .any(|m| *m != PubkeyMethod::None);
    wanted && signs && verifies
}

/// The methods we accept from a peer, best first: `hash` only when we hold a
/// key bound to the peer's JID, and then before `key` (XEP-0116 §4.3 note).
pub(crate) fn peer_methods(config: &Config, have_peer_key: bool) -> Vec<PubkeyMethod> {
    let mut out: Vec<PubkeyMethod> = config
        .peer_identification
        .iter()
        .copied()
        .filter(|m| *m != PubkeyMethod::Hash || have_peer_key)
        .collect();
    out.dedup();
    if have_peer_key
        && let (Some(k), Some(h)) = (
            out.iter().position(|m| *m == PubkeyMethod::Key),
            out.iter().position(|m| *m == PubkeyMethod::Hash),
        )
        && h > k
    {
        out.remove(h);
        out.insert(k, PubkeyMethod::Hash);
    }
    out
}

/// ESN-49..52, AMB-43: records the key the peer proved it holds (or that it
/// showed none), raises the alerts, and decides whether the negotiation goes on:
/// an unverified key fails it unless the dangerous override is set.
pub(crate) fn judge_peer_key(
    ctx: &mut Context<'_>,
    peer: &Jid,
    proven: Option<KeyValue>,
) -> Result<Option<PeerKeyInfo>, Refusal> {
    let peer_bare = peer.to_bare();
    let peer_bare = peer_bare.as_str();
    let Some(key) = proven else {
        // ESN-51: a JID with stored keys now shows none.
        let known = ctx.trust.peer_keys(Some(peer_bare));
        let known = ctx.read(known);
        if !known.is_empty() {
            ctx.alerts.push(SecurityAlert::PeerKeyMissing {
                previous_fingerprints: known.into_iter().map(|k| k.fingerprint).collect(),
            });
        }
        return Ok(None);
    };
    let Some(algorithm) = crate::identity::verifying_key_of(&key).map(|k| k.algorithm()) else {
        return Err(Refusal::crypto());
    };
    let fingerprint = key_fingerprint(&key);
    let observed = ctx
        .trust
        .record_peer_key(peer_bare, &key, ctx.clock.now_unix());
    let observation = observed.unwrap_or_else(|e| {
        ctx.trust_failures.push(e);
        PeerKeyObservation {
            status: PeerKeyStatus::New,
            other_jids: Vec::new(),
            previous_fingerprints: Vec::new(),
            verified: false,
            petname: None,
        }
    });
    let info = PeerKeyInfo {
        petname: observation.petname.clone(),
        fingerprint,
        algorithm,
        verified: observation.verified,
    };
    match observation.status {
        PeerKeyStatus::New => ctx.alerts.push(SecurityAlert::NewPeerKey(info.clone())),
        PeerKeyStatus::Known => {}
        PeerKeyStatus::KeyChanged => ctx.alerts.push(SecurityAlert::PeerKeyChanged {
            key: info.clone(),
            previous_fingerprints: observation.previous_fingerprints.clone(),
        }),
        PeerKeyStatus::SeenWithOtherJid => {}
    }
    if observation.status != PeerKeyStatus::Known && !observation.other_jids.is_empty() {
        ctx.alerts.push(SecurityAlert::PeerKeySeenWithOtherJid {
            key: info.clone(),
            other_jids: observation.other_jids,
        });
    }
    if !info.verified {
        ctx.alerts
            .push(SecurityAlert::UnverifiedPeerKey(info.clone()));
        if !ctx.config.dangerously_accept_unverified_keys {
            return Err(Refusal::crypto());
        }
    }
    Ok(Some(info))
}

/// The stored keys a `hash` identification may name (ESN-27): every key we
/// remember (a key first seen under another JID then raises ESN-50's alert).
pub(crate) fn hash_candidates(
    ctx: &mut Context<'_>,
    method: PubkeyMethod,
) -> Vec<crate::trust::StoredPeerKey> {
    if method != PubkeyMethod::Hash {
        return Vec::new();
    }
    let all = ctx.trust.peer_keys(None);
    ctx.read(all)
}

/// Whether the trust store holds a key bound to `peer`'s bare JID.
pub(crate) fn have_peer_key(ctx: &mut Context<'_>, peer: &Jid) -> bool {
    let keys = ctx.trust.peer_keys(Some(peer.to_bare().as_str()));
    !ctx.read(keys).is_empty()
}

/// The proof we give for `method` with the agreed algorithm (None: we cannot).
pub(crate) fn own_proof<'c>(
    config: &'c Config,
    method: PubkeyMethod,
    alg: Option<esession_crypto::SignatureAlgorithm>,
) -> Option<crate::identity::Proof<'c>> {
    match method {
        PubkeyMethod::None => Some(crate::identity::Proof::None),
        PubkeyMethod::Key | PubkeyMethod::Hash => Some(crate::identity::Proof::Signed {
            method,
            key: config.signing_key(alg?)?,
        }),
    }
}

/// Why a step did not advance.
#[derive(Debug)]
pub(crate) enum StepError {
    /// Refuse with this error reply and forget the attempt.
    Refuse(Refusal),
    /// The peer declined (SSN-07): forget silently.
    Declined,
}

impl From<Refusal> for StepError {
    fn from(r: Refusal) -> Self {
        Self::Refuse(r)
    }
}

/// ESN-27/32: verifies the peer's identity proof, turning an unknown
/// fingerprint into an alert (ESN-27: terminate).
pub(crate) fn open_identity(
    ctx: &mut Context<'_>,
    keys: &IdentityKeys<'_>,
    counter: &mut Counter,
    transcript: &Transcript<'_>,
    (method, algorithm): (PubkeyMethod, Option<SignatureAlgorithm>),
    sealed: &[u8],
    m: &[u8],
) -> Result<identity::VerifiedIdentity, Refusal> {
    let candidates = hash_candidates(ctx, method);
    let expect = Expect {
        method,
        algorithm,
        candidates: &candidates,
    };
    identity::open(keys, counter, transcript, &expect, sealed, m).map_err(|e| {
        if let OpenError::UnknownFingerprint(fingerprint) = e {
            ctx.alerts
                .push(crate::event::SecurityAlert::UnknownKeyFingerprint { fingerprint });
        }
        Refusal::crypto()
    })
}

/// What was agreed, for the application; retained-secret facts start false
/// (the caller or the session fills them in). The SAS reminder is off only
/// once the peer is authenticated by a key the user verified (ESN-34).
pub(crate) fn session_info(
    ctx: &Context<'_>,
    agreed: &Agreed,
    sas: String,
    peer_key: Option<crate::event::PeerKeyInfo>,
    we_initiated: bool,
) -> SessionInfo {
    let (own, peer) = if we_initiated {
        (agreed.init_pubkey, agreed.resp_pubkey)
    } else {
        (agreed.resp_pubkey, agreed.init_pubkey)
    };
    let key_verified = peer_key.as_ref().is_some_and(|k| k.verified);
    SessionInfo {
        sas,
        authenticated_by_retained_secret: false,
        retained_chain_verified: false,
        other_secret_used: false,
        sas_reminder: !agreed.three_message && !key_verified,
        logging: agreed.logging,
        disclosure: agreed.disclosure,
        group: agreed.group,
        cipher: agreed.cipher,
        hash: agreed.hash,
        compression: agreed.compression,
        stanzas: agreed.stanzas.clone(),
        we_initiated,
        three_message: agreed.three_message,
        peer_identification: peer,
        own_identification: own,
        peer_key,
        key_alerts: ctx.alerts.clone(),
        sas_confirmed: false,
        broken_chain: None,
        retained_secret_unproven: false,
        offline: agreed.offline,
    }
}

/// A negotiation step's environment for the unit tests of the steps.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

    use esession_wire::minidom::Element;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    use super::Context;
    use crate::{Config, FixedClock, MemoryTrustStore, SystemRandomness};

    pub(crate) const ALICE: &str = "alice@example.org/pda";
    pub(crate) const BOB: &str = "bob@example.com/laptop";

    /// A test JID, parsed.
    pub(crate) fn jid(text: &str) -> jid::Jid {
        jid::Jid::new(text).unwrap()
    }

    /// What a [`Context`] borrows.
    pub(crate) struct Env {
        pub(crate) config: Config,
        rng: SystemRandomness<ChaCha20Rng>,
        trust: MemoryTrustStore,
        clock: FixedClock,
    }

    impl Env {
        /// `config` (small groups, like the two-party tests) with its own JID.
        pub(crate) fn new(own_jid: &str, config: Config, seed: u64) -> Self {
            Self {
                config: Config {
                    own_jid: Some(own_jid.to_owned()),
                    ..config
                },
                rng: SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed)),
                trust: MemoryTrustStore::new(),
                clock: FixedClock(1_700_000_000),
            }
        }

        pub(crate) fn ctx(&mut self) -> Context<'_> {
            Context {
                config: &self.config,
                profile: crate::Profile::standard(),
                rng: &mut self.rng,
                trust: &mut self.trust,
                clock: &self.clock,
                trust_failures: Vec::new(),
                alerts: Vec::new(),
            }
        }
    }

    /// The small, fast policy of the tests.
    pub(crate) fn small() -> Config {
        Config {
            groups: vec![
                esession_crypto::ModpGroup::Group1,
                esession_crypto::ModpGroup::Group2,
            ],
            ..Config::default()
        }
    }

    /// The data form inside a negotiation stanza, with the stanza's sender set.
    pub(crate) fn form_of(stanza: &Element) -> Element {
        stanza
            .children()
            .find(|c| c.name() == "feature" || c.name() == "init")
            .and_then(|w| w.children().find(|c| c.name() == "x"))
            .cloned()
            .expect("a negotiation form")
    }
}
