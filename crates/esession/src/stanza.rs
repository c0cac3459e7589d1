//! Stanza vocabulary shared by every layer of the core ([`StanzaKind`]) and
//! small helpers to build and read `<message/>` stanzas. A bottom module: it
//! imports nothing of the crate.

use esession_wire::minidom::Element;
use esession_wire::ns;

/// `<message to=.. from=.. type=..>` in `jabber:client`.
pub(crate) fn message(to: &str, from: Option<&str>, kind: Option<&str>) -> Element {
    let mut stanza = Element::bare("message", ns::JABBER_CLIENT);
    if let Some(from) = from {
        set_attr(&mut stanza, "from", from);
    }
    set_attr(&mut stanza, "to", to);
    if let Some(kind) = kind {
        set_attr(&mut stanza, "type", kind);
    }
    stanza
}

/// Sets an attribute whose name is a constant of this crate (always a valid NCName).
pub(crate) fn set_attr(element: &mut Element, name: &str, value: impl Into<String>) {
    // Names passed here are literals such as "to" or "type"; an invalid one
    // would be a bug caught by the tests, never peer input.
    let _ = esession_wire::xml::set_attr(element, name, value);
}

/// `<name xmlns=ns>text</name>`.
pub(crate) fn text_child(name: &str, namespace: &str, text: &str) -> Element {
    let mut el = Element::bare(name, namespace);
    if !text.is_empty() {
        el.append_text_node(text);
    }
    el
}

/// The stanza's `<thread/>` text, if exactly one is present (THR-06: compared exactly).
pub(crate) fn thread_of(stanza: &Element) -> Option<String> {
    let mut threads = stanza
        .children()
        .filter(|c| c.is("thread", ns::JABBER_CLIENT));
    let first = threads.next()?;
    if threads.next().is_some() {
        return None;
    }
    let text = first.text();
    (!text.is_empty() && text.len() <= 256).then_some(text)
}

/// The bare part of a JID string (`local@domain` or `domain`).
pub(crate) fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

/// The bare JID of `jid` as the configuration keys it: normalized when it is
/// a JID (RFC 7622), else as written.
pub(crate) fn normalized_bare(jid: &str) -> String {
    jid::Jid::new(jid).map_or_else(
        |_| bare(jid).to_owned(),
        |jid| jid.to_bare().as_str().to_owned(),
    )
}

pub use esession_wire::negotiation::StanzaKind;

/// The kind of a `jabber:client` stanza.
pub(crate) fn kind_of(stanza: &Element) -> Option<StanzaKind> {
    if stanza.ns() != ns::JABBER_CLIENT {
        return None;
    }
    StanzaKind::from_name(stanza.name())
}
