//! The 4-message ESession negotiation of XEP-0116 / XEP-0217 (SIGMA-R with a
//! hash commitment), carried in XEP-0155 forms.
//!
//! ```text
//!  Alice (initiator)                                   Bob (responder)
//!  offer: N_A, He per group, options  ---- 1 ---->   choose; N_B, C_A, y, d
//!  K; mac_A, ID_A, M_A; rshashes      <--- 2 ----    answer: choices, d, nonce, counter
//!  completion: e, rshashes, ID_A, M_A ---- 3 ---->   check He, M_A, mac_A; SRS; K_final
//!  check M_B, mac_B; SRS; K_final     <--- 4 ----    <init/>: srshash, ID_B, M_B
//! ```
//!
//! Each state is a struct consumed by the step that advances it: a failed step
//! leaves nothing behind (ESN-10) and a finished one cannot run twice.

pub(crate) mod fields;
pub(crate) mod initiator;
pub(crate) mod responder;
pub(crate) mod sigma;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use esession_wire::form::DataForm;

use crate::clock::Clock;
use crate::config::Config;
use crate::random::Randomness;
use crate::ssn::ErrorCondition;
use crate::trust::TrustStore;

/// What a negotiation step needs from its environment (all injected).
pub(crate) struct Context<'a> {
    pub(crate) config: &'a Config,
    pub(crate) rng: &'a mut dyn Randomness,
    pub(crate) trust: &'a mut dyn TrustStore,
    pub(crate) clock: &'a dyn Clock,
    /// Trust-store failures met during the step, reported as events.
    pub(crate) trust_failures: Vec<crate::trust::TrustStoreError>,
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
        peer: &str,
        hash: esession_crypto::HashAlgorithm,
        k_final: &esession_crypto::SecretBytes,
        verified: bool,
    ) -> String {
        let client = crate::stanza::resource(peer).unwrap_or_default().to_owned();
        let stored = self.trust.store_retained_secret(
            crate::stanza::bare(peer),
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
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes a Base64 form value, skipping white space (CMN-02). At most `max` bytes.
pub(crate) fn unb64(text: &str, max: usize) -> Option<Vec<u8>> {
    if text.len() > max.saturating_mul(2).saturating_add(64) {
        return None;
    }
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
        .collect();
    let bytes = STANDARD.decode(compact).ok()?;
    (!bytes.is_empty() && bytes.len() <= max).then_some(bytes)
}

/// The single value of `var`, if present exactly once.
pub(crate) fn single<'f>(form: &'f DataForm, var: &str) -> Option<&'f str> {
    let field = form.field(var)?;
    match field.values.as_slice() {
        [value] => Some(value.as_str()),
        _ => None,
    }
}

/// What both sides agreed in messages 1-2.
#[derive(Clone, Debug)]
pub(crate) struct Agreed {
    pub(crate) group: esession_crypto::ModpGroup,
    pub(crate) cipher: esession_crypto::CipherAlgorithm,
    pub(crate) hash: esession_crypto::HashAlgorithm,
    pub(crate) compression: esession_crypto::CompressionAlgorithm,
    pub(crate) logging: crate::ssn::Logging,
    pub(crate) disclosure: crate::ssn::Disclosure,
    /// Agreed `stanzas`: a non-empty subset of the offer (ENC-01, AMB-29).
    pub(crate) stanzas: Vec<crate::session::kinds::StanzaKind>,
}

/// A retained secret matched during negotiation, and what to do with it.
pub(crate) struct RetainedMatch {
    pub(crate) secret: esession_crypto::SecretBytes,
    pub(crate) verified: bool,
}

/// The options of a list field in rank order: a `<value/>` default first
/// (AMB-31), then the `<option/>`s; a field without options offers its values.
pub(crate) fn ranked(field: &esession_wire::form::Field) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for v in field
        .values
        .iter()
        .map(String::as_str)
        .chain(field.options.iter().map(|o| o.value.as_str()))
    {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Whether a retained secret created at `created` is still usable (ESN-35).
pub(crate) fn unexpired(config: &Config, clock: &dyn Clock, created: u64) -> bool {
    clock.now_unix() < created.saturating_add(config.retained_secret_lifetime)
}
