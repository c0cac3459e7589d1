//! Service discovery (XEP-0030) and entity capabilities (XEP-0115): what we
//! advertise, and reading what a contact advertises (ESN-01, SSN-19).

use tokio_xmpp::parsers::caps::{Caps, compute_disco, hash_caps};
use tokio_xmpp::parsers::disco::{DiscoInfoResult, Identity};
use tokio_xmpp::parsers::hashes::Algo;

use esession_wire::ns;

/// The XEP-0115 node naming this software.
pub const CAPS_NODE: &str = "https://example.invalid/esession";

/// The features we implement, as advertised in disco#info.
pub const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/caps",
    "urn:xmpp:ping",
    ns::SSN,
    ns::ESESSION,
    ns::STANZA_ENCRYPTION,
    // XEP-0189: we fetch keys and answer a request for ours (PKP-07/08), publish and honour
    // revocations, and make, publish and check attestations.
    ns::PUBKEY,
    esession_wire::pubkey::REVOKE_NS,
    esession_wire::pubkey::ATTEST_NS,
];

/// Our disco#info result (for `node`, when a caps node#ver was queried).
pub fn our_disco_info(node: Option<String>) -> DiscoInfoResult {
    DiscoInfoResult {
        node,
        identities: vec![Identity::new("client", "pc", "en", "esession")],
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
        extensions: Vec::new(),
    }
}

/// Our XEP-0115 `<c/>` for presence, hashed over [`our_disco_info`].
pub fn our_caps() -> Option<Caps> {
    let hash = hash_caps(&compute_disco(&our_disco_info(None)), Algo::Sha_1).ok()?;
    Some(Caps::new(CAPS_NODE, hash))
}

/// Whether a disco#info result shows ESession support (ESN-01: the XEP-0116 namespace).
pub fn supports_esessions(info: &DiscoInfoResult) -> bool {
    info.features.contains(ns::ESESSION)
}
