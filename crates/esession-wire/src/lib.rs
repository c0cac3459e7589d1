//! ESession wire formats: what goes over the wire, with no cryptography and no state.
//!
//! This crate maps the XML of XMPP Encrypted Sessions (XEP-0155 stanza session negotiation,
//! XEP-0116/0217 key agreement, XEP-0200 stanza encryption) to typed values and back, and
//! produces the exact bytes that the protocol core MACs, hashes and signs.
//!
//! | module | wire element | requirements |
//! |---|---|---|
//! | [`ns`] | namespace constants | AMB-05 |
//! | [`normalize`] | `NORM(x)` and "form content" | CMN-06, AMB-15, AMB-47, AMB-48, AMB-50 |
//! | [`negotiation`] | messages 1-4 of the negotiation, typed | SSN-05/12, ESN-14, ESN-23..39, AMB-52 |
//! | [`form`] | XEP-0004 `<x xmlns='jabber:x:data'/>` | SSN-01..19, ESN-04..39, AMB-29, AMB-32 |
//! | [`encrypted`] | XEP-0200 `<c/>` and its `m_content` | ENC-07..10, ENC-16, ENC-20, AMB-24, AMB-49 |
//! | [`keyvalue`] | XML-DSig `<KeyValue/>`, identity payload | ESN-17, ESN-20..22, ESN-55, AMB-16, AMB-17, AMB-61 |
//! | [`pubkey`] | XEP-0189 `<pubkey/>`, `<revoke/>`, `<attest/>` | PKP-01/02/05, AMB-64..67 |
//! | [`xml`] | strict parsing of decrypted bytes | ENC-13 |
//! | [`error`] | the crate's error type | practice 8 |
//!
//! Two rules run through the crate:
//!
//! * **Parse strictly** (practice 5). Peer input is hostile: unknown attributes or children,
//!   duplicates, malformed Base64 or numbers, mixed content and oversized input are errors,
//!   never silently accepted, and parsing never panics.
//! * **MAC what was received** (practice 6, AMB-50). The normalized bytes of a form are taken
//!   from the element tree as received ([`normalize::try_normalize_form_content`]), and a
//!   received `<c/>` keeps its `m_content` beside the typed value
//!   ([`encrypted::ReceivedEncryptedContent`]). Typed values are for reading, not for hashing.
//!
//! ```
//! use esession_wire::form::{DataForm, Field, FormKind, FORM_TYPE};
//! use esession_wire::normalize::try_normalize_form_content;
//! use esession_wire::ns;
//! use minidom::Element;
//!
//! let offer = DataForm::new(FormKind::Form)
//!     .with_field(Field::hidden(FORM_TYPE, [ns::SSN]))
//!     .with_field(Field::boolean("accept", true).required());
//! let x = Element::from(&offer);
//! // What the peer receives parses back to the same form ...
//! let received: Element = String::from(&x).parse().unwrap();
//! assert_eq!(DataForm::try_from(&received).unwrap(), offer);
//! // ... and both sides compute the same form content (CMN-06).
//! assert_eq!(
//!     try_normalize_form_content(&received, &[]).unwrap(),
//!     br#"<field type="hidden" var="FORM_TYPE"><value>urn:xmpp:ssn</value></field><field type="boolean" var="accept"><value>1</value><required></required></field>"#
//! );
//! ```

pub mod encrypted;
pub mod error;
pub mod form;
#[doc(hidden)]
pub mod fuzzing;
pub mod keyvalue;
pub mod negotiation;
pub mod normalize;
pub mod ns;
pub mod pubkey;
pub mod xml;

mod util;

pub use error::{Error, Result};
/// The DOM this crate's types convert to and from, re-exported so that dependents use the
/// same version.
pub use minidom;
