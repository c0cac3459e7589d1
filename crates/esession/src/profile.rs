//! Wire profiles: the spec-correct behaviour of docs/requirements.md
//! (`standard`, the default for every contact) and the opt-in
//! compatibility profile for the one deployed implementation, Gajim 0.12-0.16
//! (`gajim`, reference-behaviour.md, issue 6).
//!
//! Every place where Gajim departs from our resolution of the specs is a named
//! parameter here; the negotiation and the record layer read the parameters,
//! never the profile's name. A profile is chosen per contact (bare JID) with
//! [`crate::Config::profiles`] or [`crate::SessionManager::set_profile`]: the
//! offers we send to that contact and the offers we receive from it use it.
//!
//! The parameters are private: only these two tested combinations exist.
//!
//! | parameter | standard | gajim |
//! |---|---|---|
//! | `cipher_key` | rightmost key-size bytes (AMB-12) | full HMAC output: `aes128-ctr` is AES-256 (fact 1) |
//! | `keystream` | fresh block per stanza from C (AMB-08/09) | one stream from C+1, spare bytes carried (fact 2) |
//! | `stanza_mac_counter` | 16 bytes | send 16 bytes, accept minimal too (fact 4, §17) |
//! | `identity_mac_counter` | 16 bytes (AMB-10) | minimal MPI (fact 6, §7) |
//! | `counter_field` | 16 bytes (AMB-10) | minimal MPI (fact 3) |
//! | `padding` | [`crate::Config::pad_to_multiple`] | spaces to a multiple of 16 bytes (fact 5) |
//! | `normalization` | NORM (CMN-06) | nbxmpp c14n (fact 7, §4) |
//! | `form_parsing` | strict | Gajim's `type="text-single"` accepted (§2) |
//! | `nonce_len` | config, at least 16 (AMB-40) | 8 bytes (fact 6, §17) |
//! | `sas` | padded to 5 (AMB-21) | unpadded (fact 9) |
//! | `responder_counter` | uniform | top octet neither 00 nor 80 (§17) |
//! | `answer_accept` | `1` | `true` (§2 message 2) |
//! | `version` | `1.0` | `1.0` (same) |
//! | `logging_field` | `logging` | `logging` (same) |
//! | `full_jid` | bare or full JID | full JID: Gajim keys sessions by it (§1, §14 item 15) |
//! | `termination` | encrypted, acknowledged (ESN-45/46) | encrypted then clear, no ack (fact 10, §11) |
//! | `clear_terminate` | reported, not honoured (AMB-54) | honoured (AMB-54) |
//! | `fallback_body` | none | Gajim's sentence after `<c/>` (§10) |
//! | `subset` | everything [`crate::Config`] allows | 4 messages, `none`, no rekey, `message`, groups 15, 16, 14 |
//!
//! The negotiation's key schedule is the same in both: K = HASH(MPI(g^xy)),
//! K_final = HASH(K | SRS), mac_A/mac_B over `N | N | MPI(e or d) | form | form2`,
//! ID_A under the provisional keys and ID_B under the final keys (facts 6 and 8),
//! feature-neg wrappers for messages 1-3 and `<init/>` for message 4 (fact 10).

use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, Counter, CtrCipher, HashAlgorithm, ModpGroup,
};
use esession_wire::minidom::Element;
use esession_wire::ns;

use crate::stanza::StanzaKind;

/// How the cipher key is cut from `HMAC(K, "... Cipher Key")`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CipherKey {
    /// The rightmost key-size bytes of the advertised cipher (AMB-12, CMN-04).
    AsAdvertised,
    /// The full hash output: with SHA-256 an advertised `aes128-ctr` is keyed
    /// with 32 bytes, i.e. AES-256 (reference-behaviour.md fact 1, §6).
    FullHashOutput,
}

/// How the CTR keystream runs over identities and stanzas.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Keystream {
    /// The first block of each encryption uses C, each full or partial block
    /// consumes one value, spare keystream is discarded (AMB-08, AMB-09).
    FreshBlockFromC,
    /// One continuous stream per direction: block i is E(C+i), so the first
    /// block ever used is C+1; the spare bytes of a partial block start the next
    /// stanza; C counts generated blocks (PyCrypto; fact 2, §10 item 4).
    ContinuousFromCPlusOne,
}

/// The bytes of a counter C inside a MAC or the `counter` field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CounterBytes {
    /// Exactly 16 big-endian bytes, CTRB(C) (AMB-10).
    Fixed16,
    /// Minimal big-endian bytes (Gajim `encode_mpi`; zero is one `00` octet).
    Minimal,
}

impl CounterBytes {
    /// C in this encoding.
    pub fn encode(self, counter: Counter) -> Vec<u8> {
        match self {
            Self::Fixed16 => counter.to_bytes().to_vec(),
            Self::Minimal => counter.to_minimal_bytes(),
        }
    }
}

/// The counter bytes of the XEP-0200 stanza MAC (ENC-07/09).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StanzaMacCounter {
    /// Sent and verified as CTRB(C), 16 bytes (AMB-10).
    Fixed16,
    /// Sent as 16 bytes, which Gajim verifies; accepted as 16 bytes or as the
    /// minimal form Gajim sends (fact 4, §15 bug 2, §17). The two differ only
    /// when C's top octet is zero.
    SendFixed16AcceptMinimal,
}

/// Padding of the encrypted stanza content.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Padding {
    /// Random white space to [`crate::Config::pad_to_multiple`], or none (ENC-04).
    AsConfigured,
    /// ASCII spaces up to the next multiple of 16 bytes, never a whole extra
    /// block (fact 5, §10 item 3, §17: bytes, so no spare keystream arises).
    SpacesToMultipleOf16,
}

/// Which normalization the MACed forms (form_A, form_B, form_A2, form_B2) use.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Normalization {
    /// NORM (CMN-06, AMB-15, AMB-47).
    Spec,
    /// nbxmpp's c14n (fact 7, §4): white-space text kept, `<x />` empties.
    Nbxmpp,
}

/// How strictly received negotiation forms are parsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FormParsing {
    /// XEP-0004 as written (FORM_TYPE hidden, one value per single field).
    Strict,
    /// Also Gajim's `type="text-single"` FORM_TYPE and multi-valued
    /// text-single fields in answers (§2).
    AcceptGajimTextSingle,
}

/// The SAS text (sas28x5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SasDigits {
    /// Five digits, padded with `a` (AMB-21).
    PaddedToFive,
    /// No padding: leading `a` digits dropped (fact 9, §8).
    Unpadded,
}

/// How the responder draws C_A.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ResponderCounter {
    /// A uniform 128-bit value (ESN-13).
    Uniform,
    /// A random value whose top octet is neither `00` nor `80`, so that neither
    /// C_A nor C_B = C_A xor 2^127 has a zero top octet (§17; avoids Gajim's
    /// bugs 2 and 3 of §15). A drawn `00` or `80` top octet gets its low bit set.
    TopOctetNot00Or80,
}

/// How we end an established session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Termination {
    /// The encrypted terminate form, then wait for the encrypted
    /// acknowledgement (ESN-45/46).
    EncryptedAwaitAck,
    /// The encrypted terminate form, then the clear-text feature-neg form
    /// (`submit`, FORM_TYPE, `terminate`=1, no `type` attribute, same thread);
    /// the session ends at once: no acknowledgement comes (fact 10, §11, §17).
    EncryptedThenClearNoAck,
}

/// What a clear-text terminate form inside an established session does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClearTerminate {
    /// Reported as [`crate::Event::UnauthenticatedTerminateRequest`]; the
    /// session continues (AMB-54).
    Report,
    /// Ends the session, no acknowledgement (AMB-54, Gajim profile).
    Honour,
}

/// The part of the protocol a profile allows, on top of [`crate::Config`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Subset {
    /// Groups offered, in this order, and accepted.
    pub groups: &'static [ModpGroup],
    /// The only cipher offered and accepted (as advertised on the wire).
    pub cipher: CipherAlgorithm,
    /// The only hash.
    pub hash: HashAlgorithm,
    /// The only compression.
    pub compression: CompressionAlgorithm,
    /// The only stanza kinds.
    pub stanzas: &'static [StanzaKind],
    /// 3-message negotiations allowed (offered by policy or answered).
    pub three_message: bool,
    /// Public-key identification (`key`/`hash`) allowed.
    pub public_keys: bool,
    /// XEP-0200 rekeying allowed (sent or accepted).
    pub rekeying: bool,
}

/// Gajim's default `esession_modp` = "15,16,14" (§5).
const GAJIM_GROUPS: [ModpGroup; 3] = [ModpGroup::Group15, ModpGroup::Group16, ModpGroup::Group14];

/// The fallback body Gajim puts after `<c/>` (§10 item 6, English text).
pub const GAJIM_FALLBACK_BODY: &str =
    "[This is part of an encrypted session. If you see this message, something went wrong.]";

/// A wire profile: every parameter where implementations of ESessions differ.
/// See the module documentation for the values of both profiles.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Profile {
    /// A short name for logs and settings (`standard`, `gajim`).
    pub(crate) name: &'static str,
    /// Cipher key length versus the advertised algorithm.
    pub(crate) cipher_key: CipherKey,
    /// The CTR keystream over identities and stanzas.
    pub(crate) keystream: Keystream,
    /// Counter bytes in the stanza MAC.
    pub(crate) stanza_mac_counter: StanzaMacCounter,
    /// Counter bytes in M_A / M_B.
    pub(crate) identity_mac_counter: CounterBytes,
    /// Bytes of C_A in the `counter` field we send (any length up to 16 is accepted).
    pub(crate) counter_field: CounterBytes,
    /// Padding of encrypted content we send.
    pub(crate) padding: Padding,
    /// Normalization of the MACed forms.
    pub(crate) normalization: Normalization,
    /// Parsing of received negotiation forms.
    pub(crate) form_parsing: FormParsing,
    /// Length of the nonces we send; `None`: [`crate::Config::nonce_len`], at least 16.
    /// Peer nonces of [`crate::Config::min_peer_nonce_len`] (8) bytes are accepted by both.
    pub(crate) nonce_len: Option<usize>,
    /// SAS text.
    pub(crate) sas: SasDigits,
    /// How the responder draws C_A.
    pub(crate) responder_counter: ResponderCounter,
    /// The `accept` value of the responder's answer (message 2).
    pub(crate) answer_accept: &'static str,
    /// The `ver` value offered, answered and required.
    pub(crate) version: &'static str,
    /// The name of the logging field we offer (`logging`, not `otr`).
    pub(crate) logging_field: &'static str,
    /// Sessions must be addressed to, and are keyed by, the full JID.
    pub(crate) full_jid: bool,
    /// How we end a session.
    pub(crate) termination: Termination,
    /// What a received clear-text terminate form does.
    pub(crate) clear_terminate: ClearTerminate,
    /// A clear `<body/>` after `<c/>` on every encrypted message we send.
    pub(crate) fallback_body: Option<&'static str>,
    /// What is negotiated at all; `None`: whatever [`crate::Config`] allows.
    pub(crate) subset: Option<Subset>,
}

impl Default for Profile {
    fn default() -> Self {
        Self::standard()
    }
}

impl Profile {
    /// Today's behaviour: the specs as resolved in docs/requirements.md.
    pub const fn standard() -> Self {
        Self {
            name: "standard",
            cipher_key: CipherKey::AsAdvertised,
            keystream: Keystream::FreshBlockFromC,
            stanza_mac_counter: StanzaMacCounter::Fixed16,
            identity_mac_counter: CounterBytes::Fixed16,
            counter_field: CounterBytes::Fixed16,
            padding: Padding::AsConfigured,
            normalization: Normalization::Spec,
            form_parsing: FormParsing::Strict,
            nonce_len: None,
            sas: SasDigits::PaddedToFive,
            responder_counter: ResponderCounter::Uniform,
            answer_accept: "1",
            version: "1.0",
            logging_field: "logging",
            full_jid: false,
            termination: Termination::EncryptedAwaitAck,
            clear_terminate: ClearTerminate::Report,
            fallback_body: None,
            subset: None,
        }
    }

    /// Compatibility with Gajim 0.12-0.16 (reference-behaviour.md §17).
    pub const fn gajim() -> Self {
        Self {
            name: "gajim",
            cipher_key: CipherKey::FullHashOutput,
            keystream: Keystream::ContinuousFromCPlusOne,
            stanza_mac_counter: StanzaMacCounter::SendFixed16AcceptMinimal,
            identity_mac_counter: CounterBytes::Minimal,
            counter_field: CounterBytes::Minimal,
            padding: Padding::SpacesToMultipleOf16,
            normalization: Normalization::Nbxmpp,
            form_parsing: FormParsing::AcceptGajimTextSingle,
            nonce_len: Some(8),
            sas: SasDigits::Unpadded,
            responder_counter: ResponderCounter::TopOctetNot00Or80,
            answer_accept: "true",
            version: "1.0",
            logging_field: "logging",
            full_jid: true,
            termination: Termination::EncryptedThenClearNoAck,
            clear_terminate: ClearTerminate::Honour,
            fallback_body: Some(GAJIM_FALLBACK_BODY),
            subset: Some(Subset {
                groups: &GAJIM_GROUPS,
                cipher: CipherAlgorithm::Aes128Ctr,
                hash: HashAlgorithm::Sha256,
                compression: CompressionAlgorithm::None,
                stanzas: &[StanzaKind::Message],
                three_message: false,
                public_keys: false,
                rekeying: false,
            }),
        }
    }

    /// Its short name for logs and settings (`standard`, `gajim`).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Whether sessions with a contact of this profile must be addressed to
    /// its full JID (Gajim keys sessions by it: reference-behaviour.md §1,
    /// §14 item 15).
    pub const fn needs_full_jid(&self) -> bool {
        self.full_jid
    }

    /// The clear `<body/>` we put after `<c/>` on every encrypted message, if any.
    pub const fn fallback_body(&self) -> Option<&'static str> {
        self.fallback_body
    }

    /// The profile named `name` (`standard` or `gajim`).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "standard" => Some(Self::standard()),
            "gajim" => Some(Self::gajim()),
            _ => None,
        }
    }

    /// What the profile narrows in a policy (see [`crate::Config::for_profile`]).
    pub(crate) const fn subset(&self) -> Option<Subset> {
        self.subset
    }

    /// The nonce length the profile imposes, if any.
    pub(crate) const fn nonce_len(&self) -> Option<usize> {
        self.nonce_len
    }

    /// Whether XEP-0200 rekeying is allowed.
    pub fn allows_rekeying(&self) -> bool {
        self.subset.is_none_or(|s| s.rekeying)
    }

    /// The cipher that really runs for the `advertised` one.
    pub fn effective_cipher(&self, advertised: CipherAlgorithm) -> CipherAlgorithm {
        match (self.cipher_key, advertised) {
            (
                CipherKey::FullHashOutput,
                CipherAlgorithm::Aes128Ctr | CipherAlgorithm::Aes192Ctr,
            ) => CipherAlgorithm::Aes256Ctr,
            (
                CipherKey::FullHashOutput,
                CipherAlgorithm::Twofish128Ctr | CipherAlgorithm::Twofish192Ctr,
            ) => CipherAlgorithm::Twofish256Ctr,
            (
                CipherKey::FullHashOutput,
                CipherAlgorithm::Serpent128Ctr | CipherAlgorithm::Serpent192Ctr,
            ) => CipherAlgorithm::Serpent256Ctr,
            _ => advertised,
        }
    }

    /// The normalized content of a MACed form (minus `without` fields).
    pub(crate) fn normalize(
        &self,
        x: &Element,
        without: &[&str],
    ) -> Result<Vec<u8>, esession_wire::Error> {
        match self.normalization {
            Normalization::Spec => esession_wire::normalize::try_normalize_form_content(x, without),
            Normalization::Nbxmpp => esession_wire::normalize::nbxmpp_form_content(x, without),
        }
    }

    /// Parses a received negotiation form.
    pub(crate) fn parse_form(
        &self,
        x: &Element,
    ) -> Result<esession_wire::form::DataForm, esession_wire::Error> {
        match self.form_parsing {
            FormParsing::Strict => esession_wire::form::DataForm::try_from(x),
            FormParsing::AcceptGajimTextSingle => {
                esession_wire::form::DataForm::try_from_relaxed(x)
            }
        }
    }

    /// The SAS text.
    pub(crate) fn sas(&self, hash: HashAlgorithm, m_a: &[u8], form_b: &[u8]) -> String {
        match self.sas {
            SasDigits::PaddedToFive => esession_crypto::sas28x5(hash, m_a, form_b),
            SasDigits::Unpadded => esession_crypto::sas28x5_unpadded(hash, m_a, form_b),
        }
    }

    /// C_A from 16 random bytes.
    pub(crate) fn responder_counter(&self, mut bytes: [u8; 16]) -> Counter {
        if self.responder_counter == ResponderCounter::TopOctetNot00Or80
            && matches!(bytes[0], 0x00 | 0x80)
        {
            bytes[0] |= 1;
        }
        Counter::new(u128::from_be_bytes(bytes))
    }

    /// Encrypts or decrypts `data` at `counter` (and `used`, the bytes of the
    /// last block consumed, for the continuous stream), advancing both.
    pub(crate) fn apply_ctr(
        &self,
        cipher: &CtrCipher,
        counter: &mut Counter,
        used: &mut u8,
        data: &mut [u8],
    ) {
        match self.keystream {
            Keystream::FreshBlockFromC => cipher.apply(counter, data),
            Keystream::ContinuousFromCPlusOne => cipher.apply_continuous(counter, used, data),
        }
    }
}

/// Issue 10: whether a negotiation wrapper (`<feature/>` or `<init/>`) shows
/// the habits of Gajim 0.12-0.16 (reference-behaviour §2, §17): a
/// `FORM_TYPE` typed `text-single`, or an 8-byte nonce. Used only to suggest
/// [`Profile::gajim`] to the user after a refusal; it changes nothing.
pub fn looks_like_gajim(wrapper: &Element) -> bool {
    use base64::Engine as _;
    let fields = wrapper
        .children()
        .filter(|x| x.is("x", ns::DATA_FORMS))
        .flat_map(|x| x.children().filter(|f| f.is("field", ns::DATA_FORMS)));
    for field in fields {
        match field.attr("var") {
            Some("FORM_TYPE") if field.attr("type") == Some("text-single") => return true,
            Some("nonce" | "my_nonce") => {
                let value = field
                    .get_child("value", ns::DATA_FORMS)
                    .map(|v| v.text())
                    .unwrap_or_default();
                let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim());
                if decoded.is_ok_and(|bytes| bytes.len() == 8) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
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
    fn the_gajim_responder_counter_avoids_top_octets_00_and_80() {
        // §17: neither C_A nor C_B may have a zero top octet.
        let gajim = Profile::gajim();
        for top in [0x00u8, 0x80] {
            let mut bytes = [0x5au8; 16];
            bytes[0] = top;
            let c_a = gajim.responder_counter(bytes);
            let top_a = c_a.to_bytes()[0];
            let top_b = c_a.flip_top_bit().to_bytes()[0];
            assert!(top_a != 0 && top_b != 0, "{top:02x}");
            assert_eq!(c_a.to_bytes()[1..], bytes[1..]);
        }
        let mut other = [0x5au8; 16];
        other[0] = 0x42;
        assert_eq!(gajim.responder_counter(other).to_bytes(), other);
        // The standard profile keeps the uniform draw.
        assert_eq!(Profile::standard().responder_counter([0u8; 16]).value(), 0);
    }

    #[test]
    fn profiles_are_found_by_name() {
        assert_eq!(Profile::by_name("gajim"), Some(Profile::gajim()));
        assert_eq!(Profile::by_name("standard"), Some(Profile::standard()));
        assert_eq!(Profile::by_name("psi"), None);
    }
}
