//! XEP-0155 control forms received inside an established ESession, other
//! than termination: renegotiation (SSN-14) and moving to another resource
//! (SSN-13). XEP-0116 says nothing about either; AMB-39 resolves it: keys and
//! counters belong to this negotiation and this full JID, so a renegotiation
//! is answered `renegotiate=0` (the agreed parameters stay, SSN-14 [8]) and a
//! `continue` ends the session and starts a fresh negotiation with the new
//! resource.
//!
//! Only authenticated (decrypted) forms are acted on; a clear one on the
//! session's thread is dropped like any clear stanza (ESN-44).

use esession_wire::form::{DataForm, Field, FormKind};
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};

use super::{EstablishedSession, Phase, Purpose};
use crate::Error;
use crate::random::Randomness;

/// `renegotiate` (SSN-02, SSN-14).
const RENEGOTIATE: &str = "renegotiate";
/// `continue` (SSN-02, SSN-13).
const CONTINUE: &str = "continue";
/// Longest resourcepart (RFC 7622 §3.4), in bytes.
const MAX_RESOURCE_LEN: usize = 1023;

/// What a decrypted SSN form asks of an established session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// A renegotiation request (`form`, renegotiate=1), with the fields it names.
    Renegotiate(Vec<String>),
    /// Move the session to this resource of the peer (`submit`, continue=R).
    Continue(String),
}

/// If the decrypted message is exactly one SSN renegotiation request or
/// `continue` form in a feature-neg wrapper, what it asks. `None` for
/// anything else, which is delivered as content as before (other SSN forms
/// too: we ask for neither renegotiation nor moves, so answers to them are
/// the application's business). Termination forms were already taken out by
/// [`EstablishedSession::open`].
pub(crate) fn classify(message: &Element) -> Option<Control> {
    let mut content = message.children().filter(|c| {
        let clear_part = c.is("amp", ns::AMP)
            || (c.ns() == ns::JABBER_CLIENT && matches!(c.name(), "thread" | "error"));
        !clear_part
    });
    let feature = content.next()?;
    if content.next().is_some() || !feature.is("feature", ns::FEATURE_NEG) {
        return None;
    }
    let mut forms = feature.children().filter(|c| c.is("x", ns::DATA_FORMS));
    let x = forms.next()?;
    if forms.next().is_some() {
        return None;
    }
    let form = DataForm::try_from(x).ok()?;
    if form.form_type_value() != Some(ns::SSN) {
        return None;
    }
    let flag = |var: &str| form.field(var).and_then(|f| f.as_bool().ok());
    if form.kind == FormKind::Form && flag(RENEGOTIATE) == Some(true) {
        let fields = form
            .fields
            .iter()
            .filter_map(|f| f.var.clone())
            .filter(|v| v != "FORM_TYPE" && v != RENEGOTIATE)
            .collect();
        return Some(Control::Renegotiate(fields));
    }
    if form.kind == FormKind::Submit
        && let Some(field) = form.field(CONTINUE)
        && let [resource] = field.values.as_slice()
        && valid_resource(resource)
    {
        return Some(Control::Continue(resource.clone()));
    }
    None
}

fn valid_resource(resource: &str) -> bool {
    !resource.is_empty()
        && resource.len() <= MAX_RESOURCE_LEN
        && !resource.chars().any(char::is_control)
}

impl EstablishedSession {
    /// SSN-14, AMB-39: the encrypted answer `renegotiate=0`, with the value
    /// in force of each requested field we know (as in XEP-0155's example).
    /// Sealed like any content: maybe after a rekey-only stanza, maybe with
    /// our `<key/>` (ENC-19), or [`Error::KeysExhausted`] (AMB-28).
    pub(crate) fn seal_renegotiation_refusal(
        &mut self,
        requested: &[String],
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Vec<Element>, Error> {
        if self.phase != Phase::Active {
            return Err(Error::SessionEnded);
        }
        let mut form = DataForm::new(FormKind::Submit)
            .with_field(Field::untyped("FORM_TYPE", vec![ns::SSN.to_owned()]))
            .with_field(Field::untyped(RENEGOTIATE, vec!["0".to_owned()]));
        for var in requested {
            if let Some(values) = self.value_in_force(var) {
                form = form.with_field(Field::untyped(var.as_str(), values));
            }
        }
        let mut feature = Element::bare("feature", ns::FEATURE_NEG);
        feature.append_child(Element::from(&form));
        let content = xml::serialize(&feature, ns::JABBER_CLIENT)
            .map_err(|_| Error::InvalidInput("unserializable form"))?;
        self.seal(content, None, None, Purpose::Content, rng, now)
    }

    /// The agreed value of a negotiation field, as sent in an answer.
    fn value_in_force(&self, var: &str) -> Option<Vec<String>> {
        let info = &self.info;
        let one = |v: &str| Some(vec![v.to_owned()]);
        match var {
            "logging" => one(info.logging.value()),
            "otr" => one(if info.logging == crate::ssn::Logging::MustNot {
                "true"
            } else {
                "false"
            }),
            "disclosure" => one(info.disclosure.value()),
            "security" => one("e2e"),
            "modp" => Some(vec![info.group.name()]),
            "crypt_algs" => one(info.cipher.name()),
            "hash_algs" => one(info.hash.name()),
            "compress" => one(info.compression.name()),
            "stanzas" => Some(info.stanzas.iter().map(|k| k.name().to_owned()).collect()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

    use super::*;

    fn message(form: &str) -> Element {
        xml::parse_document(&format!(
            "<message xmlns='jabber:client'><thread>t</thread><feature \
             xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' \
             {form}</x></feature></message>"
        ))
        .unwrap()
    }

    #[test]
    fn recognises_a_renegotiation_request_and_the_fields_it_names() {
        let m = message(
            "type='form'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:ssn</value></field>\
             <field var='renegotiate' type='boolean'><value>true</value></field>\
             <field var='crypt_algs' type='list-single'><option><value>aes256-ctr</value></option></field>",
        );
        assert_eq!(
            classify(&m),
            Some(Control::Renegotiate(vec!["crypt_algs".to_owned()]))
        );
    }

    #[test]
    fn recognises_continue_and_rejects_an_empty_resource() {
        let ok = message(
            "type='submit'><field var='FORM_TYPE'><value>urn:xmpp:ssn</value></field>\
             <field var='continue'><value>PDA</value></field>",
        );
        assert_eq!(classify(&ok), Some(Control::Continue("PDA".to_owned())));
        let empty = message(
            "type='submit'><field var='FORM_TYPE'><value>urn:xmpp:ssn</value></field>\
             <field var='continue'><value></value></field>",
        );
        assert_eq!(classify(&empty), None);
    }

    #[test]
    fn ordinary_content_and_foreign_forms_are_not_control() {
        let body = xml::parse_document(
            "<message xmlns='jabber:client'><body>renegotiate</body></message>",
        )
        .unwrap();
        assert_eq!(classify(&body), None);
        let foreign = message(
            "type='form'><field var='FORM_TYPE' type='hidden'><value>urn:example</value></field>\
             <field var='renegotiate' type='boolean'><value>1</value></field>",
        );
        assert_eq!(classify(&foreign), None);
    }
}
