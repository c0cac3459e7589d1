//! Namespace constants, verbatim as on the wire.
//!
//! The ESession namespaces are the historical URLs, never URNs (AMB-05); the SSN `FORM_TYPE`
//! is [`SSN`].

/// RFC 6120 client stanzas.
pub const JABBER_CLIENT: &str = "jabber:client";

/// XEP-0004 data forms (`<x/>`).
pub const DATA_FORMS: &str = "jabber:x:data";

/// XEP-0020 feature negotiation wrapper (`<feature/>`) around SSN forms.
pub const FEATURE_NEG: &str = "http://jabber.org/protocol/feature-neg";

/// XEP-0155 stanza session negotiation: the `FORM_TYPE` value and disco feature.
pub const SSN: &str = "urn:xmpp:ssn";

/// XEP-0116 ESession disco feature and PEP node (ESN-01, AMB-05).
pub const ESESSION: &str = "http://www.xmpp.org/extensions/xep-0116.html#ns";

/// XEP-0116 `<init/>` wrapper of Bob's final message (ESN-39, AMB-04).
pub const ESESSION_INIT: &str = "http://www.xmpp.org/extensions/xep-0116.html#ns-init";

/// XEP-0200 stanza encryption (`<c/>`).
pub const STANZA_ENCRYPTION: &str = "http://www.xmpp.org/extensions/xep-0200.html#ns";

/// W3C XML Signature (`<KeyValue/>`, `<SignatureValue/>`, ESN-55).
pub const XMLDSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// XEP-0079 advanced message processing (SSN-04, AMB-23, AMB-60).
pub const AMP: &str = "http://jabber.org/protocol/amp";

/// XEP-0189 public key publishing (PKP-01).
pub const PUBKEY: &str = "urn:xmpp:pubkey:2";

/// XEP-0187 offline ESession options (subscriber node, OFF-01).
pub const OFFLINE_ESESSION: &str = "http://www.xmpp.org/extensions/xep-0187.html#ns";

/// XEP-0136 message archiving (ARC-01, AMB-38).
pub const ARCHIVE: &str = "urn:xmpp:archive";

/// RFC 6120 stanza error conditions.
pub const XMPP_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
