//! Field names of the negotiation forms (XEP-0155, XEP-0116), as on the wire.

pub(crate) use esession_wire::negotiation::fields::*;

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

pub(crate) use esession_wire::negotiation::MAX_NONCE_LEN;
