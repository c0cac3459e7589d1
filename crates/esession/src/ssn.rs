//! XEP-0155 stanza session negotiation vocabulary (SSN-01..19): field values,
//! and the error replies of SSN-08.

use esession_wire::minidom::Element;
use esession_wire::ns;

use crate::stanza::{message, set_attr, text_child};

pub use esession_wire::negotiation::{Disclosure, Logging, Security};

/// The stanza error conditions negotiation uses (SSN-08, AMB-30).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ErrorCondition {
    /// No stanza session support, or an unknown FORM_TYPE (AMB-52). Type `cancel`.
    ServiceUnavailable,
    /// A required field we do not know, or any failure in messages 3-4 (AMB-52). Type `cancel`.
    FeatureNotImplemented,
    /// No acceptable option, a bad value or a bad DH value (ESN-09, ESN-26). Type `modify`.
    NotAcceptable,
}

impl ErrorCondition {
    /// The defined-condition element name.
    pub const fn element(self) -> &'static str {
        match self {
            Self::ServiceUnavailable => "service-unavailable",
            Self::FeatureNotImplemented => "feature-not-implemented",
            Self::NotAcceptable => "not-acceptable",
        }
    }

    /// The error `type` we emit (AMB-30).
    pub const fn error_type(self) -> &'static str {
        match self {
            Self::NotAcceptable => "modify",
            Self::ServiceUnavailable | Self::FeatureNotImplemented => "cancel",
        }
    }

    /// Reads the defined condition of a received `<error/>`.
    pub fn from_error_element(error: &Element) -> Option<Self> {
        error.children().find_map(|c| {
            if c.ns() != ns::XMPP_STANZAS {
                return None;
            }
            match c.name() {
                "service-unavailable" => Some(Self::ServiceUnavailable),
                "feature-not-implemented" => Some(Self::FeatureNotImplemented),
                "not-acceptable" => Some(Self::NotAcceptable),
                _ => None,
            }
        })
    }
}

/// Fields named in one error reply at most.
const MAX_ERROR_FIELDS: usize = 32;

/// A negotiation error reply (SSN-08): `type='error'`, the thread, the received
/// form echoed, and `<error/>` with the condition and the offending fields. No
/// `<text/>` names the failed check (AMB-30).
pub(crate) fn error_reply(
    to: &str,
    from: Option<&str>,
    thread: &str,
    echoed: Option<&Element>,
    condition: ErrorCondition,
    fields: &[String],
) -> Element {
    let mut stanza = message(to, from, Some("error"));
    stanza.append_child(text_child("thread", ns::JABBER_CLIENT, thread));
    if let Some(echoed) = echoed {
        stanza.append_child(echoed.clone());
    }
    let mut error = Element::bare("error", ns::JABBER_CLIENT);
    set_attr(&mut error, "type", condition.error_type());
    error.append_child(Element::bare(condition.element(), ns::XMPP_STANZAS));
    if !fields.is_empty() {
        let mut feature = Element::bare("feature", ns::FEATURE_NEG);
        // Issue 11: a bounded list (a peer can name 256 unknown fields).
        for field in fields.iter().take(MAX_ERROR_FIELDS) {
            let mut f = Element::bare("field", ns::FEATURE_NEG);
            set_attr(&mut f, "var", field.as_str());
            feature.append_child(f);
        }
        error.append_child(feature);
    }
    stanza.append_child(error);
    stanza
}

/// Issue 10: the answer to an encrypted stanza on a thread we hold no session
/// for: `<item-not-found/>` (RFC 6120 §8.3.3.7: the addressed item, here the
/// session, does not exist), type `cancel`, on the stanza's thread, without
/// echoing its `<c/>`. XEP-0155 and XEP-0200 name no error for this case.
pub(crate) fn session_gone_reply(to: &str, from: Option<&str>, thread: &str) -> Element {
    let mut stanza = message(to, from, Some("error"));
    stanza.append_child(text_child("thread", ns::JABBER_CLIENT, thread));
    let mut error = Element::bare("error", ns::JABBER_CLIENT);
    set_attr(&mut error, "type", "cancel");
    error.append_child(Element::bare("item-not-found", ns::XMPP_STANZAS));
    stanza.append_child(error);
    stanza
}

/// Whether a clear error stanza says the peer holds no session for its
/// thread ([`session_gone_reply`]).
pub(crate) fn is_session_gone(stanza: &Element) -> bool {
    stanza
        .get_child("error", ns::JABBER_CLIENT)
        .is_some_and(|e| {
            e.children()
                .any(|c| c.is("item-not-found", ns::XMPP_STANZAS))
        })
}

/// Reads the field names listed in a received error's `<feature/>` (SSN-08).
pub(crate) fn error_fields(error: &Element) -> Vec<String> {
    error
        .children()
        .filter(|c| c.is("feature", ns::FEATURE_NEG))
        .flat_map(|f| {
            f.children()
                .filter_map(|field| field.attr("var").map(str::to_owned))
        })
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_otr_true_means_mustnot() {
        // AMB-01.
        assert_eq!(Logging::from_legacy_otr(true), Logging::MustNot);
        assert_eq!(Logging::from_legacy_otr(false), Logging::May);
    }

    #[test]
    fn error_reply_lists_fields_and_uses_amb30_types() {
        // SSN-08 / AMB-30.
        let reply = error_reply(
            "alice@example.org/pda",
            None,
            "t1",
            None,
            ErrorCondition::NotAcceptable,
            &["crypt_algs".to_owned(), "modp".to_owned()],
        );
        assert_eq!(reply.attr("type"), Some("error"));
        let error = reply.get_child("error", ns::JABBER_CLIENT).unwrap();
        assert_eq!(error.attr("type"), Some("modify"));
        assert_eq!(
            ErrorCondition::from_error_element(error),
            Some(ErrorCondition::NotAcceptable)
        );
        assert_eq!(error_fields(error), vec!["crypt_algs", "modp"]);
        assert!(error.get_child("text", ns::XMPP_STANZAS).is_none());
    }
}
