//! Strict parsing of XML from bytes a peer controls.
//!
//! `minidom`'s `str::parse::<Element>()` stops at the end of the first element and ignores
//! whatever follows, and imposes no depth limit. That is fine for stanzas delivered by the
//! XMPP stream parser, but not for bytes that come out of a decryption (ENC-13) or an identity
//! payload (ESN-22): there, `a</wrapper><b/>` would silently lose its tail. These functions
//! parse exactly one document, insist on reaching the end of input, and bound nesting depth.

use minidom::rxml::{RawEvent, RawReader};
use minidom::tree_builder::TreeBuilder;
use minidom::{Element, Node};

use crate::error::{Error, Result};

/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// Parses `xml` as exactly one element: trailing content (anything but white space after the
/// root), malformed XML, undeclared prefixes and nesting deeper than [`MAX_DEPTH`] are
/// [`Error::MalformedXml`].
pub fn parse_document(xml: &str) -> Result<Element> {
    let mut reader = RawReader::new(xml.as_bytes());
    let mut builder = TreeBuilder::new();
    let mut root = None;
    let mut depth = 0usize;
    loop {
        let event = match reader.read() {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => return Err(Error::MalformedXml),
        };
        if root.is_some() {
            // rxml already rejects content after the root; never accept a second tree.
            return Err(Error::MalformedXml);
        }
        match &event {
            RawEvent::ElementHeadOpen(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::MalformedXml);
                }
            }
            RawEvent::ElementFoot(..) => depth = depth.saturating_sub(1),
            _ => {}
        }
        builder
            .process_event(event)
            .map_err(|_| Error::MalformedXml)?;
        if let Some(done) = builder.root.take() {
            root = Some(done);
        }
    }
    root.ok_or(Error::MalformedXml)
}

/// Parses a sequence of nodes (elements and text) such as the decrypted content of a `<c/>`
/// (ENC-04, ENC-13: the plaintext children of the stanza, possibly followed by padding white
/// space). Unprefixed elements without `xmlns` get `default_ns` (e.g. [`crate::ns::JABBER_CLIENT`]).
///
/// The fragment must be complete and balanced: an end tag that would close the implicit
/// wrapper, trailing garbage or nesting deeper than [`MAX_DEPTH`] - 1 is
/// [`Error::MalformedXml`].
pub fn parse_fragment(fragment: &str, default_ns: &str) -> Result<Vec<Node>> {
    let mut doc = String::with_capacity(fragment.len() + default_ns.len() + 32);
    doc.push_str("<fragment xmlns=\"");
    for c in default_ns.chars() {
        match c {
            '&' => doc.push_str("&amp;"),
            '<' => doc.push_str("&lt;"),
            '"' => doc.push_str("&quot;"),
            _ => doc.push(c),
        }
    }
    doc.push_str("\">");
    doc.push_str(fragment);
    doc.push_str("</fragment>");
    let mut wrapper = parse_document(&doc)?;
    Ok(wrapper.take_nodes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_document() {
        let el = parse_document("<a xmlns='urn:a'><b/>t</a>\n").unwrap();
        assert_eq!(el.name(), "a");
        assert_eq!(el.children().count(), 1);
    }

    #[test]
    fn rejects_trailing_content_that_minidom_from_str_ignores() {
        let xml = "<a xmlns='urn:a'/><b xmlns='urn:a'/>";
        // minidom's own parser silently drops the tail.
        assert!(xml.parse::<Element>().is_ok());
        assert_eq!(parse_document(xml), Err(Error::MalformedXml));
        assert_eq!(
            parse_document("<a xmlns='urn:a'/>tail"),
            Err(Error::MalformedXml)
        );
    }

    #[test]
    fn rejects_malformed_and_incomplete_xml() {
        for bad in [
            "",
            "<a xmlns='urn:a'>",
            "<a>",
            "<p:a/>",
            "<a xmlns='urn:a'></b>",
            "text",
            "<!-- c --><a xmlns='u'/>",
        ] {
            assert_eq!(parse_document(bad), Err(Error::MalformedXml), "{bad}");
        }
    }

    #[test]
    fn enforces_the_depth_limit() {
        let ok = format!(
            "{}{}",
            "<a xmlns='u'>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        assert!(parse_document(&ok).is_ok());
        let deep = format!(
            "{}{}",
            "<a xmlns='u'>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse_document(&deep), Err(Error::MalformedXml));
    }

    #[test]
    fn parses_a_decrypted_fragment_with_the_default_namespace_enc_13() {
        let nodes = parse_fragment(
            "<body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/>   ",
            crate::ns::JABBER_CLIENT,
        )
        .unwrap();
        let elements: Vec<&Element> = nodes.iter().filter_map(Node::as_element).collect();
        assert_eq!(elements.len(), 2);
        assert!(elements[0].is("body", crate::ns::JABBER_CLIENT));
        assert_eq!(elements[0].text(), "hi");
        assert!(elements[1].is("active", "http://jabber.org/protocol/chatstates"));
        assert_eq!(nodes.last().and_then(Node::as_text), Some("   "));
    }

    #[test]
    fn a_fragment_cannot_close_the_wrapper_enc_13() {
        assert_eq!(
            parse_fragment(
                "<body>a</body></fragment><evil/><fragment>",
                "jabber:client"
            ),
            Err(Error::MalformedXml)
        );
        assert_eq!(
            parse_fragment("<body>unclosed", "jabber:client"),
            Err(Error::MalformedXml)
        );
        assert_eq!(
            parse_fragment("</fragment>", "jabber:client"),
            Err(Error::MalformedXml)
        );
    }

    #[test]
    fn an_empty_fragment_is_no_nodes() {
        assert!(parse_fragment("", "jabber:client").unwrap().is_empty());
    }
}
