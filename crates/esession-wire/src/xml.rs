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

/// Bytes offered to the XML lexer per read.
const READ_CHUNK: usize = 4096;

/// Parses `xml` as exactly one element: trailing content (anything but white space after the
/// root), malformed XML, undeclared prefixes and nesting deeper than [`MAX_DEPTH`] are
/// [`Error::MalformedXml`].
pub fn parse_document(xml: &str) -> Result<Element> {
    parse_document_bounded(xml, usize::MAX)
}

/// Like [`parse_document`], refusing more than `max_elements` elements (the
/// root included) before building them: the memory and time a decrypted
/// stanza costs are bounded by its element count, not only by its size.
pub fn parse_document_bounded(xml: &str, max_elements: usize) -> Result<Element> {
    let mut elements = 0usize;
    // rxml scans all the bytes a read offers for the end of a text token but
    // consumes at most its token limit of them: handing it the whole input
    // made a long text O(n^2) (800 KiB: 38 ms). Small reads keep it linear.
    let mut reader = RawReader::new(std::io::BufReader::with_capacity(
        READ_CHUNK,
        xml.as_bytes(),
    ));
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
                elements += 1;
                if depth > MAX_DEPTH || elements > max_elements {
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
    parse_fragment_bounded(fragment, default_ns, usize::MAX)
}

/// Like [`parse_fragment`], with at most `max_elements` elements in the
/// fragment (see [`parse_document_bounded`]).
pub fn parse_fragment_bounded(
    fragment: &str,
    default_ns: &str,
    max_elements: usize,
) -> Result<Vec<Node>> {
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
    // The wrapper is one element more.
    let mut wrapper = parse_document_bounded(&doc, max_elements.saturating_add(1))?;
    Ok(wrapper.take_nodes())
}

/// The XML namespace, bound to the `xml` prefix by definition.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Serializes `element` as UTF-8 XML text, byte for byte deterministic: the
/// bytes a sender encrypts (ENC-04). `inherited_ns` is the default namespace in
/// scope (e.g. [`crate::ns::JABBER_CLIENT`] for a stanza's children), so an
/// element in that namespace carries no `xmlns`. Attributes are written
/// double-quoted in byte order of their names after `xmlns`; `xml:`-prefixed
/// attributes (e.g. `xml:lang`) keep their prefix, other namespaced attributes
/// are refused. Empty elements use the `<x/>` form.
pub fn serialize(element: &Element, inherited_ns: &str) -> Result<String> {
    let mut out = String::new();
    write_element(&mut out, element, inherited_ns, 0)?;
    Ok(out)
}

/// The length in bytes of [`serialize`]'s text, without building it (issue
/// 16: size limits on received offers are checked on every offer).
pub fn serialized_len(element: &Element, inherited_ns: &str) -> Result<usize> {
    let mut length = Length(0);
    write_element(&mut length, element, inherited_ns, 0)?;
    Ok(length.0)
}

/// Where [`write_element`] writes: the text, or only its length.
trait Sink {
    /// Whether the order of attributes matters (it does not for a length).
    const ORDERED: bool;
    fn push_str(&mut self, text: &str);
    fn push(&mut self, c: char);
}

impl Sink for String {
    const ORDERED: bool = true;
    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
}

/// Counts the bytes that would be written.
struct Length(usize);

impl Sink for Length {
    const ORDERED: bool = false;
    fn push_str(&mut self, text: &str) {
        self.0 += text.len();
    }
    fn push(&mut self, c: char) {
        self.0 += c.len_utf8();
    }
}

fn write_element<S: Sink>(
    out: &mut S,
    el: &Element,
    inherited_ns: &str,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(Error::LimitExceeded {
            what: "serialization depth",
        });
    }
    // Most elements share their parent's namespace: no copy of it then.
    let ns: std::borrow::Cow<'_, str> = if el.has_ns(inherited_ns) {
        std::borrow::Cow::Borrowed(inherited_ns)
    } else {
        std::borrow::Cow::Owned(el.ns())
    };
    out.push('<');
    out.push_str(el.name());
    if ns != inherited_ns {
        out.push_str(" xmlns=\"");
        escape_attribute_into(out, &ns);
        out.push('"');
    }
    // (prefix, name, value): sorted by the qualified name when written; a
    // length needs no order, and no list.
    let mut attributes: Vec<(&str, &str, &str)> = Vec::new();
    for ((attr_ns, name), value) in el.attrs().iter() {
        let attr_ns: &str = attr_ns.as_ref();
        let prefix = if attr_ns.is_empty() {
            ""
        } else if attr_ns == XML_NS {
            "xml:"
        } else {
            return Err(Error::UnexpectedAttribute {
                element: "serialized element",
                attribute: crate::error::peer_text(name.as_ref()),
            });
        };
        if S::ORDERED {
            attributes.push((prefix, name.as_ref(), value.as_str()));
        } else {
            write_attribute(out, prefix, name.as_ref(), value.as_str());
        }
    }
    if S::ORDERED {
        // Byte order of "prefix:name": the prefix's bytes, then the name's.
        attributes.sort_by(|a, b| {
            a.0.bytes()
                .chain(a.1.bytes())
                .cmp(b.0.bytes().chain(b.1.bytes()))
        });
    }
    for (prefix, name, value) in attributes {
        write_attribute(out, prefix, name, value);
    }
    let mut nodes = el.nodes().peekable();
    if nodes.peek().is_none() {
        out.push_str("/>");
        return Ok(());
    }
    out.push('>');
    for node in nodes {
        match node {
            Node::Element(child) => write_element(out, child, &ns, depth + 1)?,
            Node::Text(text) => escape_text_into(out, text),
        }
    }
    out.push_str("</");
    out.push_str(el.name());
    out.push('>');
    Ok(())
}

fn write_attribute<S: Sink>(out: &mut S, prefix: &str, name: &str, value: &str) {
    out.push(' ');
    out.push_str(prefix);
    out.push_str(name);
    out.push_str("=\"");
    escape_attribute_into(out, value);
    out.push('"');
}

fn escape_text_into<S: Sink>(out: &mut S, text: &str) {
    escape_into(out, text, false);
}

fn escape_attribute_into<S: Sink>(out: &mut S, text: &str) {
    escape_into(out, text, true);
}

/// Copies `text` with Canonical-XML escapes, in runs between the (ASCII) escaped bytes.
fn escape_into<S: Sink>(out: &mut S, text: &str, attribute: bool) {
    let bytes = text.as_bytes();
    let plain = memchr::memchr3(b'&', b'<', b'>', bytes).is_none()
        && memchr::memchr(b'\r', bytes).is_none()
        && (!attribute || memchr::memchr3(b'"', b'\t', b'\n', bytes).is_none());
    if plain {
        out.push_str(text);
        return;
    }
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\r' => "&#xD;",
            b'"' if attribute => "&quot;",
            b'\t' if attribute => "&#x9;",
            b'\n' if attribute => "&#xA;",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(replacement);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// Sets attribute `name` (an unprefixed NCName) to `value`. Invalid names are refused.
pub fn set_attr(element: &mut Element, name: &str, value: impl Into<String>) -> Result<()> {
    let name = minidom::rxml::NcName::try_from(name).map_err(|_| Error::InvalidAttribute {
        element: "element",
        attribute: "name",
    })?;
    element
        .attrs_mut()
        .insert(minidom::rxml::Namespace::NONE, name, value.into());
    Ok(())
}

#[cfg(test)]
mod tests {

    /// Issue 16: the counted length is the serialized text's, escapes,
    /// `xml:` attributes and multi-byte text included.
    #[test]
    fn serialized_len_counts_what_serialize_writes() {
        for xml in [
            "<message xmlns='jabber:client' xml:lang='en' type='chat' to='b@x'><body>a &amp; b &lt; c \u{e9}\u{1f600}</body><x xmlns='jabber:x:data' type='form'><field var='a\"b'><value>1\r2</value></field></x></message>",
            "<feature xmlns='http://jabber.org/protocol/feature-neg'/>",
        ] {
            let el = parse_document(xml).unwrap();
            for inherited in ["", "jabber:client"] {
                assert_eq!(
                    super::serialized_len(&el, inherited).unwrap(),
                    super::serialize(&el, inherited).unwrap().len(),
                    "{xml}"
                );
            }
        }
    }

    #[test]
    fn serializes_stanza_children_without_the_inherited_namespace() {
        let el = parse_document(
            "<message xmlns='jabber:client'><body>a &amp; b &lt; c</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        )
        .unwrap();
        let parts: Vec<String> = el
            .children()
            .map(|c| serialize(c, crate::ns::JABBER_CLIENT).unwrap())
            .collect();
        assert_eq!(parts[0], "<body>a &amp; b &lt; c</body>");
        assert_eq!(
            parts[1],
            "<active xmlns=\"http://jabber.org/protocol/chatstates\"/>"
        );
    }

    #[test]
    fn serialization_sorts_and_escapes_attributes_and_round_trips() {
        let el = parse_document(
            "<x xmlns='jabber:x:data' type='submit' a='&quot;&lt;&#9;'><field var='FORM_TYPE'><value>urn:xmpp:ssn</value></field></x>",
        )
        .unwrap();
        let text = serialize(&el, "").unwrap();
        assert_eq!(
            text,
            "<x xmlns=\"jabber:x:data\" a=\"&quot;&lt;&#x9;\" type=\"submit\"><field var=\"FORM_TYPE\"><value>urn:xmpp:ssn</value></field></x>"
        );
        assert_eq!(parse_document(&text).unwrap(), el);
    }

    #[test]
    fn serialization_keeps_xml_lang() {
        let el = parse_document("<body xmlns='jabber:client' xml:lang='de'>Hallo</body>").unwrap();
        assert_eq!(
            serialize(&el, "jabber:client").unwrap(),
            "<body xml:lang=\"de\">Hallo</body>"
        );
    }

    #[test]
    fn set_attr_refuses_invalid_names() {
        let mut el = Element::bare("message", "jabber:client");
        set_attr(&mut el, "to", "bob@example.com").unwrap();
        assert_eq!(el.attr("to"), Some("bob@example.com"));
        assert!(set_attr(&mut el, "bad name", "x").is_err());
    }
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
