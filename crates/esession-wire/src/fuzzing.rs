//! Fuzz entry points (style practice 17): not part of the API.
//!
//! Each function takes the raw bytes a fuzzer (or a corpus file) supplies, runs one parser of
//! this crate on them, and checks properties that must hold for *every* input, with `assert!`:
//! a failed assertion is a finding, exactly like a panic inside the parser. The targets in
//! `fuzz/fuzz_targets/` are one-line wrappers, and `tests/fuzz_corpus.rs` replays every corpus
//! file through the same functions on the stable toolchain.
//!
//! Each function returns whether the parser under test accepted the input, so that corpus files
//! named `valid-*` / `invalid-*` can be checked in the replay test.

use minidom::{Element, Node};

use crate::form::DataForm;
use crate::normalize::{
    normalize, normalize_form_content, try_normalize, try_normalize_form_content,
};
use crate::{negotiation, ns, xml};

/// Inputs longer than this are ignored: every parser here is linear, and the limit keeps the
/// fuzzer on structure rather than size.
pub const MAX_INPUT: usize = 64 * 1024;

fn document(data: &[u8]) -> Option<Element> {
    if data.len() > MAX_INPUT {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    xml::parse_document(text).ok()
}

/// XEP-0004 data-form parsing ([`DataForm::try_from`]), target `form`.
///
/// Properties: an accepted form survives `DataForm → Element → DataForm` and
/// `DataForm → Element → serialize → parse_document → DataForm` unchanged, and the strict
/// form content of the re-encoded form is defined (a form we build must be one we can MAC).
pub fn data_form(data: &[u8]) -> bool {
    let Some(x) = document(data) else {
        return false;
    };
    let Ok(form) = DataForm::try_from(&x) else {
        // Rejected: normalization of the same element must still not panic.
        let _ = try_normalize_form_content(&x, &[]);
        return false;
    };
    let encoded = Element::from(&form);
    let again = DataForm::try_from(&encoded);
    assert_eq!(again.as_ref(), Ok(&form), "DataForm -> Element -> DataForm");

    let text = xml::serialize(&encoded, "");
    assert!(text.is_ok(), "a re-encoded form serializes: {text:?}");
    if let Ok(text) = text {
        let reparsed = xml::parse_document(&text);
        assert!(reparsed.is_ok(), "serialized form parses: {text}");
        if let Ok(reparsed) = reparsed {
            assert_eq!(
                DataForm::try_from(&reparsed).as_ref(),
                Ok(&form),
                "DataForm -> XML text -> DataForm"
            );
            assert_eq!(
                try_normalize_form_content(&reparsed, &[]),
                try_normalize_form_content(&encoded, &[]),
                "the wire trip does not change the form content"
            );
        }
    }
    assert!(
        try_normalize_form_content(&encoded, &[]).is_ok(),
        "a re-encoded form has a strict form content"
    );
    true
}

/// `NORM(x)` and form content ([`crate::normalize`]), target `normalize`.
///
/// Properties:
/// * strict and lenient NORM agree whenever strict succeeds;
/// * NORM is idempotent: its output parses as XML and normalizes to the same bytes;
/// * strict form content, when defined, is the concatenation of the strict NORM of the
///   children, and leaving out `var`s only removes bytes;
/// * lenient form content equals the concatenation of the lenient NORM of the children.
///
/// Returns whether strict NORM accepted the element.
pub fn normalization(data: &[u8]) -> bool {
    let Some(element) = document(data) else {
        return false;
    };
    let lenient = normalize(&element);
    if depth(&element) < xml::MAX_DEPTH {
        // (At the limit, the fragment wrapper used to read NORM back would exceed it.)
        check_idempotent(&lenient);
    }
    let strict = try_normalize(&element);
    if let Ok(strict) = &strict {
        assert_eq!(strict, &lenient, "strict and lenient NORM agree");
    }

    let children: Vec<u8> = element.children().flat_map(normalize).collect();
    assert_eq!(
        normalize_form_content(&element),
        children,
        "lenient content"
    );

    let whole = try_normalize_form_content(&element, &[]);
    if let Ok(whole) = &whole {
        let strict_children: Result<Vec<Vec<u8>>, _> =
            element.children().map(try_normalize).collect();
        assert_eq!(
            strict_children.map(|c| c.concat()).as_ref(),
            Ok(whole),
            "form content is the NORM of the children"
        );
        // The vars a negotiation leaves out (ESN-18/28/38, OFF-05), plus the first field's.
        let first_var = element
            .children()
            .find(|c| c.name() == "field")
            .and_then(|c| c.attr("var"))
            .unwrap_or("identity");
        let without = ["identity", "mac", "signs", first_var];
        let partial = try_normalize_form_content(&element, &without);
        assert!(partial.is_ok(), "leaving out fields cannot create errors");
        if let Ok(partial) = partial {
            assert!(
                partial.len() <= whole.len(),
                "leaving out fields only removes"
            );
        }
    }
    let element_only = element.nodes().all(|node| match node {
        Node::Text(t) => t.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')),
        Node::Element(_) => true,
    });
    if element.is("x", ns::DATA_FORMS) && element_only && strict.is_ok() {
        // (Text directly in <x/> is refused by form content even where NORM keeps it as
        // leaf text.)
        assert!(
            whole.is_ok(),
            "a strictly normalizable form has form content"
        );
    }
    strict.is_ok()
}

/// Nesting depth of `root` (1 for an element without children), iteratively.
fn depth(root: &Element) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((el, d)) = stack.pop() {
        deepest = deepest.max(d);
        stack.extend(el.children().map(|c| (c, d + 1)));
    }
    deepest
}

/// NORM output must itself be XML whose NORM is the same bytes (leniently: the strict reading
/// is checked separately). NORM drops namespaces, so it is read back as a fragment with a
/// default namespace (minidom refuses elements in no namespace).
fn check_idempotent(norm: &[u8]) {
    let text = std::str::from_utf8(norm);
    assert!(text.is_ok(), "NORM output is UTF-8");
    let Ok(text) = text else { return };
    let reparsed = xml::parse_fragment(text, "urn:fuzzing:norm");
    assert!(reparsed.is_ok(), "NORM output parses: {text}");
    let nodes = reparsed.unwrap_or_default();
    assert!(
        matches!(nodes.as_slice(), [Node::Element(_)]),
        "NORM output is one element: {text}"
    );
    if let [Node::Element(reparsed)] = nodes.as_slice() {
        assert_eq!(
            String::from_utf8_lossy(&normalize(reparsed)),
            text,
            "NORM is idempotent"
        );
    }
}

/// The fragment parser for decrypted stanza content ([`xml::parse_fragment`]), target
/// `xml_fragment`. The whole input is the fragment (as after decryption, ENC-13).
///
/// Property: whatever is accepted and serializes (namespaced attributes other than `xml:`
/// are refused by the serializer) re-parses to nodes that serialize to the same text.
pub fn xml_fragment(data: &[u8]) -> bool {
    if data.len() > MAX_INPUT {
        return false;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(nodes) = xml::parse_fragment(text, ns::JABBER_CLIENT) else {
        return false;
    };
    if let Some(first) = serialize_nodes(nodes) {
        let again = xml::parse_fragment(&first, ns::JABBER_CLIENT);
        assert!(again.is_ok(), "serialized fragment parses: {first}");
        if let Ok(again) = again {
            assert_eq!(
                serialize_nodes(again).as_deref(),
                Some(first.as_str()),
                "fragment -> text -> fragment"
            );
        }
    }
    true
}

/// Serializes `nodes` as the content of a `jabber:client` wrapper and strips the wrapper.
fn serialize_nodes(nodes: Vec<Node>) -> Option<String> {
    let mut wrapper = Element::bare("w", ns::JABBER_CLIENT);
    for node in nodes {
        match node {
            Node::Element(el) => {
                wrapper.append_child(el);
            }
            Node::Text(t) => wrapper.append_text_node(t),
        }
    }
    let text = xml::serialize(&wrapper, ns::JABBER_CLIENT).ok()?;
    let inner = text
        .strip_prefix("<w>")
        .and_then(|t| t.strip_suffix("</w>"))
        .unwrap_or("");
    Some(inner.to_owned())
}

/// The data form of `data`, read strictly and, failing that, the relaxed
/// way of the Gajim profile: the two ways the core reads a negotiation form.
fn negotiation_form(data: &[u8]) -> Option<DataForm> {
    let x = document(data)?;
    DataForm::try_from(&x)
        .or_else(|_| DataForm::try_from_relaxed(&x))
        .ok()
}

/// Every decoded byte field of a message respects its bound.
fn within(value: Option<&Vec<u8>>, max: usize) -> bool {
    value.is_none_or(|v| !v.is_empty() && v.len() <= max)
}

/// Message 1 ([`negotiation::Offer`]), target `negotiation_offer`.
///
/// Properties: reading is deterministic; every field `var` the offer lists
/// is one of the form's; unknown required fields are never known ones; the
/// nonce respects its bound; a ranked list never repeats a token.
pub fn negotiation_offer(data: &[u8]) -> bool {
    let Some(form) = negotiation_form(data) else {
        return false;
    };
    let Ok(offer) = negotiation::Offer::try_from(&form) else {
        return false;
    };
    assert_eq!(negotiation::Offer::try_from(&form).as_ref(), Ok(&offer));
    assert!(offer.vars.iter().all(|v| form.field(v).is_some()));
    assert!(
        offer
            .unknown_required
            .iter()
            .all(|v| !negotiation::KNOWN_OFFER_FIELDS.contains(&v.as_str()))
    );
    assert!(within(
        offer.my_nonce.as_valid(),
        negotiation::MAX_NONCE_LEN
    ));
    for tokens in [
        offer
            .crypt_algs
            .as_ref()
            .map(|o| o.iter().map(|t| &t.token).collect::<Vec<_>>()),
        offer
            .hash_algs
            .as_ref()
            .map(|o| o.iter().map(|t| &t.token).collect()),
        offer
            .modp
            .as_ref()
            .map(|m| m.ranked.iter().map(|t| &t.token).collect()),
    ]
    .into_iter()
    .flatten()
    {
        let mut unique = tokens.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), tokens.len(), "a ranked list repeats a token");
    }
    true
}

/// Message 2 ([`negotiation::Response`]), target `negotiation_answer`.
///
/// Properties: deterministic; every decoded field respects its bound.
pub fn negotiation_answer(data: &[u8]) -> bool {
    let Some(form) = negotiation_form(data) else {
        return false;
    };
    let Ok(response) = negotiation::Response::try_from(&form) else {
        return false;
    };
    assert_eq!(
        negotiation::Response::try_from(&form).as_ref(),
        Ok(&response)
    );
    if let negotiation::Response::Accepted(answer) = &response {
        assert!(within(
            answer.my_nonce.as_valid(),
            negotiation::MAX_NONCE_LEN
        ));
        assert!(within(answer.nonce.as_valid(), negotiation::MAX_NONCE_LEN));
        assert!(within(
            answer.dhkeys.as_valid(),
            negotiation::MAX_DH_VALUE_LEN
        ));
        assert!(within(
            answer.counter.as_valid(),
            negotiation::MAX_COUNTER_LEN
        ));
        assert!(within(
            answer.identity.as_valid(),
            negotiation::MAX_IDENTITY_LEN
        ));
        assert!(within(answer.mac.as_valid(), negotiation::MAX_MAC_LEN));
    }
    true
}

/// Message 3 ([`negotiation::Completion`]), target `negotiation_completion`.
///
/// Properties: deterministic; every decoded field respects its bound; a
/// `cancel` form is always a decline.
pub fn negotiation_completion(data: &[u8]) -> bool {
    let Some(form) = negotiation_form(data) else {
        return false;
    };
    let Ok(completion) = negotiation::Completion::try_from(&form) else {
        return false;
    };
    assert_eq!(
        negotiation::Completion::try_from(&form).as_ref(),
        Ok(&completion)
    );
    match &completion {
        negotiation::Completion::Accepted(fields) => {
            assert_ne!(form.kind, crate::form::FormKind::Cancel);
            assert!(within(fields.nonce.as_ref(), negotiation::MAX_NONCE_LEN));
            assert!(within(
                fields.dhkeys.as_ref(),
                negotiation::MAX_DH_VALUE_LEN
            ));
            assert!(within(
                fields.identity.as_ref(),
                negotiation::MAX_IDENTITY_LEN
            ));
            assert!(within(fields.mac.as_ref(), negotiation::MAX_MAC_LEN));
            assert!(
                fields
                    .rshashes
                    .iter()
                    .all(|h| within(Some(h), negotiation::MAX_MAC_LEN))
            );
        }
        negotiation::Completion::Declined => {}
    }
    true
}

/// Message 4 ([`negotiation::Final`]), target `negotiation_final`.
///
/// Properties: deterministic; all four fields present and within bounds.
pub fn negotiation_final(data: &[u8]) -> bool {
    let Some(form) = negotiation_form(data) else {
        return false;
    };
    let Ok(message) = negotiation::Final::try_from(&form) else {
        return false;
    };
    assert_eq!(negotiation::Final::try_from(&form).as_ref(), Ok(&message));
    assert!(within(Some(&message.nonce), negotiation::MAX_NONCE_LEN));
    assert!(within(Some(&message.srshash), negotiation::MAX_MAC_LEN));
    assert!(within(
        Some(&message.identity),
        negotiation::MAX_IDENTITY_LEN
    ));
    assert!(within(Some(&message.mac), negotiation::MAX_MAC_LEN));
    true
}

/// XEP-0189 elements fetched from a contact's PEP node ([`crate::pubkey`]), target `pubkey`.
///
/// Properties: whichever of `<pubkey/>`, `<revoke/>` or `<attest/>` the input is, reading it
/// never panics; an accepted key or revocation survives `value → Element → value` unchanged,
/// with the same print input or signed data (what hashes and signatures cover).
pub fn published_key(data: &[u8]) -> bool {
    use crate::pubkey::{Attestation, PublishedKey, Revocation};
    let Some(x) = document(data) else {
        return false;
    };
    if let Ok(key) = PublishedKey::try_from(&x) {
        let again = PublishedKey::try_from(&Element::from(&key));
        assert_eq!(
            again.as_ref(),
            Ok(&key),
            "PublishedKey -> Element -> PublishedKey"
        );
        if let Ok(again) = again {
            assert_eq!(again.print_input(), key.print_input());
        }
        return true;
    }
    if let Ok(revocation) = Revocation::try_from(&x) {
        let again = Revocation::try_from(&Element::from(&revocation));
        assert_eq!(
            again.as_ref(),
            Ok(&revocation),
            "Revocation -> Element -> Revocation"
        );
        if let Ok(again) = again {
            assert_eq!(again.signed_data(), revocation.signed_data());
        }
        return true;
    }
    Attestation::try_from(&x).is_ok()
}
