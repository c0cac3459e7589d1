//! Field names of the negotiation forms (XEP-0155, XEP-0116), as on the wire.

pub(crate) const FORM_TYPE: &str = "FORM_TYPE";
pub(crate) const ACCEPT: &str = "accept";
pub(crate) const LOGGING: &str = "logging";
pub(crate) const OTR: &str = "otr";
pub(crate) const DISCLOSURE: &str = "disclosure";
pub(crate) const SECURITY: &str = "security";
pub(crate) const MODP: &str = "modp";
pub(crate) const CRYPT_ALGS: &str = "crypt_algs";
pub(crate) const HASH_ALGS: &str = "hash_algs";
pub(crate) const COMPRESS: &str = "compress";
pub(crate) const STANZAS: &str = "stanzas";
pub(crate) const INIT_PUBKEY: &str = "init_pubkey";
pub(crate) const RESP_PUBKEY: &str = "resp_pubkey";
pub(crate) const SIGN_ALGS: &str = "sign_algs";
pub(crate) const VER: &str = "ver";
pub(crate) const REKEY_FREQ: &str = "rekey_freq";
pub(crate) const MY_NONCE: &str = "my_nonce";
pub(crate) const SAS_ALGS: &str = "sas_algs";
pub(crate) const DHHASHES: &str = "dhhashes";
pub(crate) const DHKEYS: &str = "dhkeys";
pub(crate) const NONCE: &str = "nonce";
pub(crate) const COUNTER: &str = "counter";
pub(crate) const RSHASHES: &str = "rshashes";
pub(crate) const SRSHASH: &str = "srshash";
pub(crate) const IDENTITY: &str = "identity";
pub(crate) const MAC: &str = "mac";

// The only protocol version (AMB-03), `1.0`, is `Profile::version`.

/// Fields an offer may carry that we understand (unknown *required* fields get
/// feature-not-implemented, SSN-08).
pub(crate) const KNOWN_OFFER_FIELDS: &[&str] = &[
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

/// Largest nonce accepted from a peer, in bytes.
pub(crate) const MAX_NONCE_LEN: usize = 64;
