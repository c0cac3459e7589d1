//! The one way from a negotiation to an established session (issue 12).
//!
//! Both roles and both flows end here, and only with the
//! [`IdentityProof`] that [`crate::identity::open`] makes when the peer's
//! identity verified (ESN-27, ESN-32): a session whose peer was not verified
//! cannot be built.

use esession_crypto::kdf::SessionKeys;
use esession_crypto::{CipherAlgorithm, Counter, DhKeyPair, DhPublicValue, HashAlgorithm};

use super::{Context, Refusal};
use crate::event::{SessionId, SessionInfo};
use crate::identity::IdentityProof;
use crate::profile::Profile;
use crate::session::{Direction, EstablishedSession, RekeySetup, SessionSetup};

/// What a negotiation agreed and derived, for [`establish`].
pub(crate) struct Agreement<'k> {
    /// The peer's wire profile.
    pub(crate) profile: Profile,
    pub(crate) id: SessionId,
    /// What the application is told; `we_initiated` decides which keys are ours.
    pub(crate) info: SessionInfo,
    pub(crate) cipher: CipherAlgorithm,
    pub(crate) hash: HashAlgorithm,
    /// The session keys of both directions (ESN-26).
    pub(crate) keys: &'k SessionKeys,
    /// C_A and C_B after the identity proofs (ESN-43).
    pub(crate) c_a: Counter,
    pub(crate) c_b: Counter,
    /// The agreed `rekey_freq` (ENC-14).
    pub(crate) rekey_freq: u32,
    /// Our DH key pair and the peer's public value, kept for rekeying
    /// (ENC-15/18; in the 3-message flow too).
    pub(crate) own_pair: DhKeyPair,
    pub(crate) peer_value: DhPublicValue,
    /// The responder's retained secret awaiting the initiator's first stanza (AMB-57).
    pub(crate) unconfirmed_secret: Option<(String, String)>,
    /// The responder's retained-secret claim, verified or not, until proven (issue 10).
    pub(crate) pending_retained_claim: Option<bool>,
}

/// Builds the established session from `agreement`, given the proof that
/// the peer's identity verified.
pub(crate) fn establish(
    ctx: &Context<'_>,
    proof: IdentityProof,
    agreement: Agreement<'_>,
) -> Result<EstablishedSession, Refusal> {
    let Agreement {
        profile,
        id,
        info,
        cipher,
        hash,
        keys,
        c_a,
        c_b,
        rekey_freq,
        own_pair,
        peer_value,
        unconfirmed_secret,
        pending_retained_claim,
    } = agreement;
    let ((ours, our_counter), (theirs, their_counter)) = if info.we_initiated {
        ((&keys.initiator, c_a), (&keys.responder, c_b))
    } else {
        ((&keys.responder, c_b), (&keys.initiator, c_a))
    };
    // Stanza keys the crypto layer refuses (a key of the wrong size) fail
    // the negotiation like any failure in messages 3-4 (AMB-52).
    let stanza_keys = |keys: &esession_crypto::kdf::DirectionKeys, counter| {
        Direction::new(cipher, hash, &keys.cipher, &keys.mac, counter)
            .map_err(|_| Refusal::crypto())
    };
    let send = stanza_keys(ours, our_counter)?;
    let receive = stanza_keys(theirs, their_counter)?;
    let setup = SessionSetup {
        profile,
        id,
        info,
        own_jid: ctx.config.own_jid.clone(),
        send,
        receive,
        rekey: RekeySetup {
            group: own_pair.group(),
            exponent_size: ctx.config.exponent_size,
            rekey_freq,
            own: own_pair,
            peer: peer_value,
            idle_rekey_after: ctx.config.idle_rekey_after,
            block_limit: ctx.config.rekey_block_limit,
            now: ctx.clock.now_unix(),
            rekeying: true,
            peer_rekeys_per_minute: ctx.config.limits.peer_rekeys_per_minute,
        },
        pad_to_multiple: ctx.config.pad_to_multiple,
        max_plaintext_len: ctx.config.max_plaintext_len,
        max_elements: ctx.config.limits.max_decrypted_elements,
        unconfirmed_secret,
        pending_retained_claim,
    };
    Ok(EstablishedSession::new(setup, proof))
}
