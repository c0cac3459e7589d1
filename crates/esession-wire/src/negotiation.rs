//! The negotiation messages of XEP-0155, XEP-0116 and XEP-0217, each read
//! once from its data form into a typed value with closed enums.
//!
//! | message | type | who reads it |
//! |---|---|---|
//! | 1, the offer | [`Offer`] | the responder |
//! | 2, the answer | [`Response`] ([`Answer`] or a decline) | the initiator |
//! | 3, the completion (both flows) | [`Completion`] ([`CompletionFields`] or a decline) | the responder |
//! | 4, the final message (4 messages only) | [`Final`] | the initiator |
//!
//! Reading is *syntax only*: every field is parsed into its type, and what is
//! missing or unparsable stays visible ([`Single`]) so that the protocol core
//! can name it in its refusal in the order it checks (ESN-25, AMB-52). Whether a
//! value is acceptable (offered by us, in our policy, matching a commitment)
//! is the core's decision, not this module's. The bytes the protocol MACs
//! are never taken from these values: they come from the element as received
//! ([`crate::normalize`]).
//!
//! A form is parsed from the element by [`DataForm::try_from`] (or the relaxed
//! reading of the Gajim profile, [`DataForm::try_from_relaxed`]); each message
//! type then reads that form with `TryFrom<&DataForm>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub use esession_algorithms::{
    CipherAlgorithm, CompressionAlgorithm, HashAlgorithm, ModpGroup, SasAlgorithm,
    SignatureAlgorithm,
};

use crate::form::{DataForm, Field, FormKind, parse_bool};
use crate::ns;

/// Field names of the negotiation forms, as on the wire.
pub mod fields {
    #![allow(missing_docs)]
    pub const FORM_TYPE: &str = "FORM_TYPE";
    pub const ACCEPT: &str = "accept";
    pub const LOGGING: &str = "logging";
    pub const OTR: &str = "otr";
    pub const DISCLOSURE: &str = "disclosure";
    pub const SECURITY: &str = "security";
    pub const MODP: &str = "modp";
    pub const CRYPT_ALGS: &str = "crypt_algs";
    pub const HASH_ALGS: &str = "hash_algs";
    pub const COMPRESS: &str = "compress";
    pub const STANZAS: &str = "stanzas";
    pub const INIT_PUBKEY: &str = "init_pubkey";
    pub const RESP_PUBKEY: &str = "resp_pubkey";
    pub const SIGN_ALGS: &str = "sign_algs";
    pub const VER: &str = "ver";
    pub const REKEY_FREQ: &str = "rekey_freq";
    pub const MY_NONCE: &str = "my_nonce";
    pub const SAS_ALGS: &str = "sas_algs";
    pub const DHHASHES: &str = "dhhashes";
    pub const DHKEYS: &str = "dhkeys";
    pub const NONCE: &str = "nonce";
    pub const COUNTER: &str = "counter";
    pub const RSHASHES: &str = "rshashes";
    pub const SRSHASH: &str = "srshash";
    pub const IDENTITY: &str = "identity";
    pub const MAC: &str = "mac";
    pub const TERMINATE: &str = "terminate";
}

use fields::*;

/// Largest nonce accepted from a peer, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Largest encrypted identity (`identity` field) accepted from a peer, in bytes.
pub const MAX_IDENTITY_LEN: usize = 8192;
/// Largest MAC or hash value (`mac`, `srshash`, `rshashes`): Whirlpool's 64 bytes.
pub const MAX_MAC_LEN: usize = 64;
/// Largest DH public value (`dhkeys`): group 18's 8192 bits.
pub const MAX_DH_VALUE_LEN: usize = 1024;
/// Largest counter (`counter`): one 128-bit block.
pub const MAX_COUNTER_LEN: usize = 16;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// The wire value.
            pub const fn value(self) -> &'static str {
                match self { $(Self::$variant => $value,)* }
            }

            /// Parses a wire value; an unknown value is an unusable option.
            pub fn from_value(value: &str) -> Option<Self> {
                match value { $($value => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

wire_enum!(
    /// `logging` (SSN-02, AMB-01).
    Logging {
        /// `may`: either side may log the conversation.
        May = "may",
        /// `mustnot`: off the record.
        MustNot = "mustnot",
    }
);

impl Logging {
    /// AMB-01: the legacy boolean `otr` field (true = off the record).
    pub fn from_legacy_otr(value: bool) -> Self {
        if value { Self::MustNot } else { Self::May }
    }
}

wire_enum!(
    /// `disclosure` (SSN-02, ESN-53/54).
    Disclosure {
        /// No content is disclosed to third parties. The only value we offer or accept.
        Never = "never",
        /// A disclosure mechanism exists but is switched off.
        Disabled = "disabled",
        /// Content may be disclosed to third parties.
        Enabled = "enabled",
    }
);

wire_enum!(
    /// `security` (SSN-02).
    Security {
        /// End-to-end encryption: an ESession.
        E2e = "e2e",
        /// Client-to-server encryption only.
        C2s = "c2s",
        /// No encryption.
        None = "none",
    }
);

wire_enum!(
    /// An identification method of `init_pubkey`/`resp_pubkey` (ESN-05, ESN-17).
    PubkeyMethod {
        /// The full public key as an XML-DSig `<KeyValue/>`, with a signature.
        Key = "key",
        /// The key's fingerprint (the verifier must hold the key), with a signature (ESN-21).
        Hash = "hash",
        /// No public key: authentication by SAS, retained secrets or password
        /// only (4-message negotiations only, ESN-03).
        None = "none",
    }
);

wire_enum!(
    /// A stanza kind the `stanzas` field can name (ESN-05).
    StanzaKind {
        /// `<message/>`.
        Message = "message",
        /// `<presence/>`: only directed presence is ever encrypted (ENC-01).
        Presence = "presence",
        /// `<iq/>` of type get, set, result or error.
        Iq = "iq",
    }
);

impl StanzaKind {
    /// Every kind, in the order XEP-0116's registry lists them.
    pub const ALL: [Self; 3] = [Self::Message, Self::Presence, Self::Iq];

    /// The wire value (and the stanza's element name).
    pub const fn name(self) -> &'static str {
        self.value()
    }

    /// Parses a `stanzas` value; unknown values are unusable options.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::from_value(name)
    }
}

/// Decodes a Base64 form value, skipping white space (CMN-02). At most `max`
/// bytes, never empty; the text is refused unread when it is far too long.
pub fn unb64(text: &str, max: usize) -> Option<Vec<u8>> {
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

/// The single value of `var`, if the field is present with exactly one value.
pub fn single<'f>(form: &'f DataForm, var: &str) -> Option<&'f str> {
    match form.field(var)?.values.as_slice() {
        [value] => Some(value.as_str()),
        _ => None,
    }
}

/// A field's values then its options, each once, in that order: the
/// offerer's ranking (the default value is its first choice).
pub fn ranked(field: &Field) -> Vec<&str> {
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

/// A single-valued field as received.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Single<T> {
    /// Absent, or present without exactly one value.
    Missing,
    /// One value that does not parse as this field's type.
    Invalid,
    /// One value, parsed.
    Valid(T),
}

impl<T> Single<T> {
    /// Reads `var` of `form` with `parse`.
    pub fn read(form: &DataForm, var: &str, parse: impl FnOnce(&str) -> Option<T>) -> Self {
        match single(form, var) {
            None => Self::Missing,
            Some(value) => parse(value).map_or(Self::Invalid, Self::Valid),
        }
    }

    /// Whether the field had no single value.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing)
    }

    /// The value, when it parsed.
    pub fn valid(self) -> Option<T> {
        match self {
            Self::Valid(value) => Some(value),
            Self::Missing | Self::Invalid => None,
        }
    }

    /// The value by reference, when it parsed.
    pub fn as_valid(&self) -> Option<&T> {
        match self {
            Self::Valid(value) => Some(value),
            Self::Missing | Self::Invalid => None,
        }
    }
}

/// Reads a Base64 field of at most `max` bytes.
fn bytes(form: &DataForm, var: &str, max: usize) -> Single<Vec<u8>> {
    Single::read(form, var, |v| unb64(v, max))
}

/// Why a negotiation form cannot be read as the message expected: the
/// field at fault (`FORM_TYPE` for the form's type or kind).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("the negotiation form cannot be read: {0}")]
pub struct Unreadable(pub &'static str);

/// Whether `form` is an SSN form (`FORM_TYPE` `urn:xmpp:ssn`) of `kind`.
fn is_ssn(form: &DataForm, kind: FormKind) -> bool {
    form.form_type_value() == Some(ns::SSN) && form.kind == kind
}

/// The `accept` field: absent, a boolean, or not a boolean.
fn accept(form: &DataForm) -> Option<Result<bool, ()>> {
    form.field(ACCEPT).map(|f| f.as_bool().map_err(|_| ()))
}

/// Message 2 as sent: an answer, or Bob declining (SSN-05).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Response {
    /// `accept` true: Bob's choices.
    Accepted(Box<Answer>),
    /// `accept` false.
    Declined,
}

/// Message 2 (ESN-14, ESN-23/25/26): one choice per offered field, each read
/// into its type. Whether each choice was offered is checked by the initiator.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Answer {
    /// `logging`.
    pub logging: Single<Logging>,
    /// `disclosure`.
    pub disclosure: Single<Disclosure>,
    /// `security`.
    pub security: Single<Security>,
    /// `modp`.
    pub modp: Single<ModpGroup>,
    /// `crypt_algs`.
    pub crypt_algs: Single<CipherAlgorithm>,
    /// `hash_algs`.
    pub hash_algs: Single<HashAlgorithm>,
    /// `compress`.
    pub compress: Single<CompressionAlgorithm>,
    /// `init_pubkey`.
    pub init_pubkey: Single<PubkeyMethod>,
    /// `resp_pubkey`.
    pub resp_pubkey: Single<PubkeyMethod>,
    /// `ver`, as sent.
    pub ver: Single<String>,
    /// `rekey_freq`.
    pub rekey_freq: Single<u32>,
    /// `sas_algs` (4 messages only).
    pub sas_algs: Single<SasAlgorithm>,
    /// `my_nonce`: N_B.
    pub my_nonce: Single<Vec<u8>>,
    /// `dhkeys`: MPI(d).
    pub dhkeys: Single<Vec<u8>>,
    /// `nonce`: N_A echoed.
    pub nonce: Single<Vec<u8>>,
    /// `counter`: C_A, big-endian, at most one block.
    pub counter: Single<Vec<u8>>,
    /// `identity`: ID_B, encrypted (3 messages only, ESN-23).
    pub identity: Single<Vec<u8>>,
    /// `mac`: M_B (3 messages only).
    pub mac: Single<Vec<u8>>,
    /// `sign_algs`.
    pub sign_algs: Single<SignatureAlgorithm>,
    /// `stanzas`: every value, `None` where unknown; `None` when the field is absent.
    pub stanzas: Option<Vec<Option<StanzaKind>>>,
}

impl TryFrom<&DataForm> for Response {
    type Error = Unreadable;

    /// An SSN `submit` form with a boolean `accept` (ESN-25); anything else
    /// names `FORM_TYPE` or `accept`.
    fn try_from(form: &DataForm) -> Result<Self, Unreadable> {
        if !is_ssn(form, FormKind::Submit) {
            return Err(Unreadable(FORM_TYPE));
        }
        match accept(form) {
            Some(Ok(true)) => Ok(Self::Accepted(Box::new(Answer::read(form)))),
            Some(Ok(false)) => Ok(Self::Declined),
            _ => Err(Unreadable(ACCEPT)),
        }
    }
}

impl Answer {
    /// XEP-0187 (OFF-10): Bob's offline `<init/>` form answers options that
    /// had no `accept`, so it has none (or `accept=1`): an SSN `submit` form
    /// read like an answer; anything else names `FORM_TYPE` or `accept`.
    pub fn from_offline_init(form: &DataForm) -> Result<Self, Unreadable> {
        if !is_ssn(form, FormKind::Submit) {
            return Err(Unreadable(FORM_TYPE));
        }
        match accept(form) {
            None | Some(Ok(true)) => Ok(Self::read(form)),
            _ => Err(Unreadable(ACCEPT)),
        }
    }

    fn read(form: &DataForm) -> Self {
        Self {
            logging: Single::read(form, LOGGING, Logging::from_value),
            disclosure: Single::read(form, DISCLOSURE, Disclosure::from_value),
            security: Single::read(form, SECURITY, Security::from_value),
            modp: Single::read(form, MODP, |v| ModpGroup::from_name(v).ok()),
            crypt_algs: Single::read(form, CRYPT_ALGS, |v| CipherAlgorithm::from_name(v).ok()),
            hash_algs: Single::read(form, HASH_ALGS, |v| HashAlgorithm::from_name(v).ok()),
            compress: Single::read(form, COMPRESS, |v| CompressionAlgorithm::from_name(v).ok()),
            init_pubkey: Single::read(form, INIT_PUBKEY, PubkeyMethod::from_value),
            resp_pubkey: Single::read(form, RESP_PUBKEY, PubkeyMethod::from_value),
            ver: Single::read(form, VER, |v| Some(v.to_owned())),
            rekey_freq: Single::read(form, REKEY_FREQ, |v| v.parse::<u32>().ok()),
            sas_algs: Single::read(form, SAS_ALGS, |v| SasAlgorithm::from_name(v).ok()),
            my_nonce: bytes(form, MY_NONCE, MAX_NONCE_LEN),
            dhkeys: bytes(form, DHKEYS, MAX_DH_VALUE_LEN),
            nonce: bytes(form, NONCE, MAX_NONCE_LEN),
            counter: bytes(form, COUNTER, MAX_COUNTER_LEN),
            identity: bytes(form, IDENTITY, MAX_IDENTITY_LEN),
            mac: bytes(form, MAC, MAX_MAC_LEN),
            sign_algs: Single::read(form, SIGN_ALGS, |v| SignatureAlgorithm::from_uri(v).ok()),
            stanzas: form.field(STANZAS).map(|field| {
                field
                    .values
                    .iter()
                    .map(|v| StanzaKind::from_name(v))
                    .collect()
            }),
        }
    }
}

/// Message 3 as sent: Alice's completion, or Alice cancelling (SSN-12).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Completion {
    /// `accept` true in a `result` form.
    Accepted(CompletionFields),
    /// `accept` false in a `result` form, or a `cancel` form.
    Declined,
}

/// Message 3's fields, for both flows (ESN-29..32): the 4-message flow needs
/// `dhkeys` and may carry `rshashes`; the 3-message flow may carry `terminate`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CompletionFields {
    /// `nonce`: N_B echoed.
    pub nonce: Option<Vec<u8>>,
    /// `dhkeys`: MPI(e) (4 messages).
    pub dhkeys: Option<Vec<u8>>,
    /// `identity`: ID_A, encrypted.
    pub identity: Option<Vec<u8>>,
    /// `mac`: M_A.
    pub mac: Option<Vec<u8>>,
    /// `rshashes`: every value that decodes (4 messages, ESN-30).
    pub rshashes: Vec<Vec<u8>>,
    /// `terminate` (3 messages, ESN-29): absent is `false`; `Err` when not a boolean.
    pub terminate: Result<bool, Unreadable>,
}

impl TryFrom<&DataForm> for Completion {
    type Error = Unreadable;

    fn try_from(form: &DataForm) -> Result<Self, Unreadable> {
        if form.form_type_value() != Some(ns::SSN) {
            return Err(Unreadable(FORM_TYPE));
        }
        match (form.kind, accept(form)) {
            (FormKind::Result, Some(Ok(false))) | (FormKind::Cancel, _) => Ok(Self::Declined),
            (FormKind::Result, Some(Ok(true))) => Ok(Self::Accepted(CompletionFields::read(form))),
            (FormKind::Result, _) => Err(Unreadable(ACCEPT)),
            _ => Err(Unreadable(FORM_TYPE)),
        }
    }
}

impl CompletionFields {
    fn read(form: &DataForm) -> Self {
        let terminate = match form.field(TERMINATE).map(Field::as_bool) {
            None => Ok(false),
            Some(Ok(value)) => Ok(value),
            Some(Err(_)) => Err(Unreadable(TERMINATE)),
        };
        Self {
            nonce: bytes(form, NONCE, MAX_NONCE_LEN).valid(),
            dhkeys: bytes(form, DHKEYS, MAX_DH_VALUE_LEN).valid(),
            identity: bytes(form, IDENTITY, MAX_IDENTITY_LEN).valid(),
            mac: bytes(form, MAC, MAX_MAC_LEN).valid(),
            rshashes: form
                .field(RSHASHES)
                .map(|field| {
                    field
                        .values
                        .iter()
                        .filter_map(|v| unb64(v, MAX_MAC_LEN))
                        .collect()
                })
                .unwrap_or_default(),
            terminate,
        }
    }
}

/// Message 4 (ESN-37..39), Bob's final message of the 4-message flow.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Final {
    /// `nonce`: N_A echoed.
    pub nonce: Vec<u8>,
    /// `srshash`: the proof of a retained secret, or a random placeholder.
    pub srshash: Vec<u8>,
    /// `identity`: ID_B, encrypted.
    pub identity: Vec<u8>,
    /// `mac`: M_B.
    pub mac: Vec<u8>,
}

impl TryFrom<&DataForm> for Final {
    type Error = Unreadable;

    /// An SSN `result` form with all four fields (AMB-52: any problem here is
    /// one refusal, whichever field it is).
    fn try_from(form: &DataForm) -> Result<Self, Unreadable> {
        if !is_ssn(form, FormKind::Result) {
            return Err(Unreadable(FORM_TYPE));
        }
        let need =
            |var: &'static str, max: usize| bytes(form, var, max).valid().ok_or(Unreadable(var));
        Ok(Self {
            nonce: need(NONCE, MAX_NONCE_LEN)?,
            srshash: need(SRSHASH, MAX_MAC_LEN)?,
            identity: need(IDENTITY, MAX_IDENTITY_LEN)?,
            mac: need(MAC, MAX_MAC_LEN)?,
        })
    }
}

/// Parses the boolean of a field value (`1`/`true`/`0`/`false`).
pub fn boolean(value: &str) -> Option<bool> {
    parse_bool(value).ok()
}

/// Fields an offer may carry that we understand; an unknown *required*
/// field gets feature-not-implemented (SSN-08).
pub const KNOWN_OFFER_FIELDS: &[&str] = &[
    FORM_TYPE,
    ACCEPT,
    LOGGING,
    OTR,
    DISCLOSURE,
    SECURITY,
    MODP,
    CRYPT_ALGS,
    HASH_ALGS,
    COMPRESS,
    STANZAS,
    INIT_PUBKEY,
    RESP_PUBKEY,
    SIGN_ALGS,
    VER,
    REKEY_FREQ,
    MY_NONCE,
    SAS_ALGS,
    DHHASHES,
    DHKEYS,
    "multisession",
    "language",
    "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/xhtml-im",
    "presence",
    "reason",
];

/// One offered option: the token as sent (an answer echoes it) and what it
/// means, when it is one of ours.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Offered<T> {
    /// The value as sent.
    pub token: String,
    /// Its meaning; `None` for a name we do not implement.
    pub value: Option<T>,
}

/// A field's options in the offerer's order of preference ([`ranked`]),
/// each parsed with `parse`; `None` when the field is absent.
fn offered<T>(
    form: &DataForm,
    var: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<Vec<Offered<T>>> {
    form.field(var).map(|field| {
        ranked(field)
            .into_iter()
            .map(|token| Offered {
                token: token.to_owned(),
                value: parse(token),
            })
            .collect()
    })
}

/// A field's options in the offerer's order of preference, each parsed
/// with `parse`; `None` when the field is absent.
fn choices<T>(form: &DataForm, var: &str, parse: fn(&str) -> Option<T>) -> Option<Vec<Option<T>>> {
    form.field(var)
        .map(|field| ranked(field).into_iter().map(parse).collect())
}

/// The `modp` field of an offer and the commitment per group (AMB-51).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ModpOffer {
    /// Every `<option/>` value, in the order sent: the commitments follow it.
    pub options: Vec<String>,
    /// Whether every default `<value/>` is one of the options.
    pub defaults_are_options: bool,
    /// The groups in the offerer's order of preference.
    pub ranked: Vec<Offered<ModpGroup>>,
}

impl ModpOffer {
    /// The position of `token` among the `<option/>`s: the index of its commitment.
    pub fn option_index(&self, token: &str) -> Option<usize> {
        self.options.iter().position(|o| o == token)
    }
}

/// Message 1, the offer (SSN-02/08, ESN-04..12): every field read into its
/// type, in the offerer's order of preference. Which options are acceptable,
/// and which one is chosen, is the responder's policy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Offer {
    /// Every field's `var`, in the order received: the answer makes one
    /// choice per field in this order (ESN-14).
    pub vars: Vec<String>,
    /// Required fields not in [`KNOWN_OFFER_FIELDS`], in the order received.
    pub unknown_required: Vec<String>,
    /// `accept`: the offerer's first value, when it is a boolean.
    pub accept: Option<bool>,
    /// `logging`.
    pub logging: Option<Vec<Option<Logging>>>,
    /// The legacy `otr` field (AMB-01): its first value, when a boolean.
    pub otr: Option<Option<bool>>,
    /// `disclosure`.
    pub disclosure: Option<Vec<Option<Disclosure>>>,
    /// `security`.
    pub security: Option<Vec<Option<Security>>>,
    /// `modp`.
    pub modp: Option<ModpOffer>,
    /// `dhhashes` (4 messages): He per group option, Base64 as sent.
    pub dhhashes: Option<Vec<String>>,
    /// `dhkeys` (3 messages): e per group option, Base64 as sent.
    pub dhkeys: Option<Vec<String>>,
    /// `crypt_algs`.
    pub crypt_algs: Option<Vec<Offered<CipherAlgorithm>>>,
    /// `hash_algs`.
    pub hash_algs: Option<Vec<Offered<HashAlgorithm>>>,
    /// `compress`.
    pub compress: Option<Vec<Offered<CompressionAlgorithm>>>,
    /// `sas_algs`.
    pub sas_algs: Option<Vec<Offered<SasAlgorithm>>>,
    /// `sign_algs`.
    pub sign_algs: Option<Vec<Offered<SignatureAlgorithm>>>,
    /// `init_pubkey`.
    pub init_pubkey: Option<Vec<Option<PubkeyMethod>>>,
    /// `resp_pubkey`.
    pub resp_pubkey: Option<Vec<Option<PubkeyMethod>>>,
    /// `ver`, as sent.
    pub ver: Option<Vec<String>>,
    /// `stanzas`.
    pub stanzas: Option<Vec<Option<StanzaKind>>>,
    /// `rekey_freq`: `None` when absent.
    pub rekey_freq: Option<Single<u32>>,
    /// `my_nonce`: N_A.
    pub my_nonce: Single<Vec<u8>>,
}

impl Offer {
    /// Whether the offer is for the 3-message flow: `dhkeys` without
    /// `dhhashes` (AMB-07).
    pub fn is_three_message(&self) -> bool {
        self.dhkeys.is_some() && self.dhhashes.is_none()
    }
}

impl TryFrom<&DataForm> for Offer {
    type Error = Unreadable;

    /// An SSN `form`; anything else names `FORM_TYPE` (AMB-52: the
    /// responder answers service-unavailable).
    fn try_from(form: &DataForm) -> Result<Self, Unreadable> {
        if !is_ssn(form, FormKind::Form) {
            return Err(Unreadable(FORM_TYPE));
        }
        let vars: Vec<String> = form.fields.iter().filter_map(|f| f.var.clone()).collect();
        let unknown_required = form
            .fields
            .iter()
            .filter(|f| f.required)
            .filter_map(|f| f.var.as_deref())
            .filter(|var| !KNOWN_OFFER_FIELDS.contains(var))
            .map(str::to_owned)
            .collect();
        let first_bool = |var: &str| {
            form.field(var)
                .map(|f| ranked(f).first().and_then(|v| boolean(v)))
        };
        let values = |var: &str| form.field(var).map(|f| f.values.clone());
        let names = |var: &str| {
            form.field(var)
                .map(|f| ranked(f).into_iter().map(str::to_owned).collect())
        };
        Ok(Self {
            vars,
            unknown_required,
            accept: first_bool(ACCEPT).flatten(),
            logging: choices(form, LOGGING, Logging::from_value),
            otr: first_bool(OTR),
            disclosure: choices(form, DISCLOSURE, Disclosure::from_value),
            security: choices(form, SECURITY, Security::from_value),
            modp: form.field(MODP).map(|field| {
                let options: Vec<String> = field.options.iter().map(|o| o.value.clone()).collect();
                ModpOffer {
                    defaults_are_options: field.values.iter().all(|v| options.contains(v)),
                    options,
                    ranked: ranked(field)
                        .into_iter()
                        .map(|token| Offered {
                            token: token.to_owned(),
                            value: ModpGroup::from_name(token).ok(),
                        })
                        .collect(),
                }
            }),
            dhhashes: values(DHHASHES),
            dhkeys: values(DHKEYS),
            crypt_algs: offered(form, CRYPT_ALGS, |v| CipherAlgorithm::from_name(v).ok()),
            hash_algs: offered(form, HASH_ALGS, |v| HashAlgorithm::from_name(v).ok()),
            compress: offered(form, COMPRESS, |v| CompressionAlgorithm::from_name(v).ok()),
            sas_algs: offered(form, SAS_ALGS, |v| SasAlgorithm::from_name(v).ok()),
            sign_algs: offered(form, SIGN_ALGS, |v| SignatureAlgorithm::from_uri(v).ok()),
            init_pubkey: choices(form, INIT_PUBKEY, PubkeyMethod::from_value),
            resp_pubkey: choices(form, RESP_PUBKEY, PubkeyMethod::from_value),
            ver: names(VER),
            stanzas: choices(form, STANZAS, StanzaKind::from_name),
            rekey_freq: form
                .field(REKEY_FREQ)
                .map(|_| Single::read(form, REKEY_FREQ, |v| v.parse::<u32>().ok())),
            my_nonce: bytes(form, MY_NONCE, MAX_NONCE_LEN),
        })
    }
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

    fn ssn(kind: FormKind, fields: Vec<Field>) -> DataForm {
        let mut form = DataForm::new(kind).with_field(Field::hidden(FORM_TYPE, [ns::SSN]));
        for field in fields {
            form = form.with_field(field);
        }
        form
    }

    #[test]
    fn an_offer_keeps_unknown_names_as_sent_beside_the_known_ones() {
        let form = ssn(
            FormKind::Form,
            vec![
                Field::boolean(ACCEPT, true),
                Field::list_single(MODP, ["3", "14", "99"]).with_value("14"),
                Field::list_multi(CRYPT_ALGS, ["des-ctr", "aes128-ctr", "aes128-ctr"]),
                Field::text_single("x-future", "1").required(),
                Field::untyped(DHHASHES, ["AA==", "AA==", "AA=="]),
            ],
        );
        let offer = Offer::try_from(&form).unwrap();
        assert_eq!(offer.accept, Some(true));
        assert_eq!(offer.unknown_required, ["x-future"]);
        assert_eq!(
            offer.vars,
            [FORM_TYPE, ACCEPT, MODP, CRYPT_ALGS, "x-future", DHHASHES]
        );
        let modp = offer.modp.clone().unwrap();
        // The default first, each token once; 3 is elliptic (AMB-22), 99 unknown.
        let ranked: Vec<(&str, Option<ModpGroup>)> = modp
            .ranked
            .iter()
            .map(|o| (o.token.as_str(), o.value))
            .collect();
        assert_eq!(
            ranked,
            [("14", Some(ModpGroup::Group14)), ("3", None), ("99", None)]
        );
        assert!(modp.defaults_are_options);
        assert_eq!(modp.option_index("14"), Some(1));
        let ciphers: Vec<Option<CipherAlgorithm>> = offer
            .crypt_algs
            .as_ref()
            .unwrap()
            .iter()
            .map(|o| o.value)
            .collect();
        assert_eq!(ciphers, [None, Some(CipherAlgorithm::Aes128Ctr)]);
        assert!(!offer.is_three_message());
        assert_eq!(offer.rekey_freq, None);
        assert_eq!(offer.my_nonce, Single::Missing);
    }

    #[test]
    fn an_offer_with_dhkeys_and_no_dhhashes_is_for_three_messages() {
        let three = ssn(FormKind::Form, vec![Field::untyped(DHKEYS, ["AQ=="])]);
        assert!(Offer::try_from(&three).unwrap().is_three_message());
        let both = ssn(
            FormKind::Form,
            vec![
                Field::untyped(DHKEYS, ["AQ=="]),
                Field::untyped(DHHASHES, ["AQ=="]),
            ],
        );
        assert!(!Offer::try_from(&both).unwrap().is_three_message());
    }

    #[test]
    fn only_an_ssn_form_of_the_right_kind_is_read() {
        let submit = ssn(FormKind::Submit, vec![Field::boolean(ACCEPT, true)]);
        assert_eq!(Offer::try_from(&submit), Err(Unreadable(FORM_TYPE)));
        let other = DataForm::new(FormKind::Form)
            .with_field(Field::hidden(FORM_TYPE, ["urn:example"]))
            .with_field(Field::boolean(ACCEPT, true));
        assert_eq!(Offer::try_from(&other), Err(Unreadable(FORM_TYPE)));
        let offer = ssn(FormKind::Form, vec![Field::boolean(ACCEPT, true)]);
        assert_eq!(Response::try_from(&offer), Err(Unreadable(FORM_TYPE)));
        assert_eq!(Final::try_from(&offer), Err(Unreadable(FORM_TYPE)));
        assert_eq!(Completion::try_from(&offer), Err(Unreadable(FORM_TYPE)));
    }

    #[test]
    fn an_answer_tells_a_missing_field_from_an_unparsable_one() {
        let form = ssn(
            FormKind::Submit,
            vec![
                Field::boolean(ACCEPT, true),
                Field::text_single(LOGGING, "sometimes"),
                Field::untyped(DISCLOSURE, ["never", "never"]),
                Field::text_single(MY_NONCE, "not base64!"),
                Field::text_single(NONCE, STANDARD.encode([7u8; 65])),
                Field::text_single(COUNTER, STANDARD.encode([1u8; 16])),
                Field::text_single(REKEY_FREQ, "4294967296"),
                Field::untyped(STANZAS, ["message", "telepathy"]),
            ],
        );
        let Response::Accepted(answer) = Response::try_from(&form).unwrap() else {
            panic!("accept is true");
        };
        assert_eq!(answer.logging, Single::Invalid);
        assert_eq!(answer.disclosure, Single::Missing, "two values are not one");
        assert_eq!(answer.security, Single::Missing);
        assert_eq!(answer.my_nonce, Single::Invalid);
        assert_eq!(
            answer.nonce,
            Single::Invalid,
            "65 bytes exceed MAX_NONCE_LEN"
        );
        assert_eq!(answer.counter, Single::Valid(vec![1u8; 16]));
        assert_eq!(answer.rekey_freq, Single::Invalid, "beyond 2^32 - 1");
        assert_eq!(answer.stanzas, Some(vec![Some(StanzaKind::Message), None]));
    }

    #[test]
    fn accept_decides_between_an_answer_a_decline_and_an_error() {
        let with = |accept: Field| ssn(FormKind::Submit, vec![accept]);
        assert_eq!(
            Response::try_from(&with(Field::boolean(ACCEPT, false))),
            Ok(Response::Declined)
        );
        assert_eq!(
            Response::try_from(&with(Field::text_single(ACCEPT, "perhaps"))),
            Err(Unreadable(ACCEPT))
        );
        assert_eq!(
            Response::try_from(&ssn(FormKind::Submit, vec![])),
            Err(Unreadable(ACCEPT))
        );
    }

    #[test]
    fn a_completion_is_a_decline_when_cancelled_and_keeps_a_bad_terminate() {
        assert_eq!(
            Completion::try_from(&ssn(FormKind::Cancel, vec![])),
            Ok(Completion::Declined)
        );
        assert_eq!(
            Completion::try_from(&ssn(FormKind::Result, vec![Field::boolean(ACCEPT, false)])),
            Ok(Completion::Declined)
        );
        let form = ssn(
            FormKind::Result,
            vec![
                Field::boolean(ACCEPT, true),
                Field::text_single(NONCE, "AQID"),
                Field::text_single(TERMINATE, "maybe"),
                Field::untyped(RSHASHES, ["AQ==", "???", "Ag=="]),
            ],
        );
        let Ok(Completion::Accepted(fields)) = Completion::try_from(&form) else {
            panic!("accept is true");
        };
        assert_eq!(fields.nonce, Some(vec![1, 2, 3]));
        assert_eq!(fields.identity, None);
        assert_eq!(fields.terminate, Err(Unreadable(TERMINATE)));
        assert_eq!(
            fields.rshashes,
            [vec![1u8], vec![2u8]],
            "undecodable hashes are skipped"
        );
    }

    #[test]
    fn a_final_message_needs_all_four_fields() {
        let all = |skip: &str| {
            let fields = [NONCE, SRSHASH, IDENTITY, MAC]
                .into_iter()
                .filter(|v| *v != skip)
                .map(|v| Field::text_single(v, "AQID"))
                .collect();
            ssn(FormKind::Result, fields)
        };
        let message = Final::try_from(&all("")).unwrap();
        assert_eq!(message.srshash, [1, 2, 3]);
        for var in [NONCE, SRSHASH, IDENTITY, MAC] {
            assert_eq!(Final::try_from(&all(var)), Err(Unreadable(var)));
        }
    }

    #[test]
    fn base64_values_skip_white_space_and_refuse_empty_or_oversized_input() {
        assert_eq!(unb64(" AQ\nID ", 3), Some(vec![1, 2, 3]));
        assert_eq!(unb64("", 3), None);
        assert_eq!(unb64("AQID", 2), None);
        assert_eq!(unb64(&"A".repeat(200), 64), None);
    }
}
