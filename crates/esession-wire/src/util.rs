//! Strict-parsing helpers shared by the element modules.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minidom::rxml::NcName;
use minidom::{Element, Node};

use crate::error::{Error, Result, peer_text};

/// True if `s` consists only of XML white space (space, tab, LF, CR); true for "".
pub(crate) fn is_xml_whitespace(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Checks local name and namespace.
pub(crate) fn expect_element(el: &Element, name: &'static str, ns: &'static str) -> Result<()> {
    if el.is(name, ns) {
        Ok(())
    } else {
        Err(Error::WrongElement {
            name,
            namespace: ns,
        })
    }
}

/// Rejects unprefixed attributes outside `allowed`. Namespaced attributes (`xml:lang`, ...) are
/// ignored: they are not part of NORM (AMB-48) and carry no protocol meaning here.
pub(crate) fn check_attributes(
    el: &Element,
    element: &'static str,
    allowed: &[&str],
) -> Result<()> {
    for ((ns, name), _) in el.attrs().iter() {
        if ns.is_none() && !allowed.contains(&name.as_str()) {
            return Err(Error::UnexpectedAttribute {
                element,
                attribute: peer_text(name.as_str()),
            });
        }
    }
    Ok(())
}

/// For elements that hold only child elements: text between them must be white space
/// (AMB-47).
pub(crate) fn check_element_only(el: &Element, element: &str) -> Result<()> {
    if el.texts().all(is_xml_whitespace) {
        Ok(())
    } else {
        Err(Error::MixedContent {
            element: peer_text(element),
        })
    }
}

/// For elements that hold only text: returns the concatenated character data, exactly as
/// parsed. Child elements are an error.
pub(crate) fn leaf_text(el: &Element, element: &'static str) -> Result<String> {
    let mut text = String::new();
    for node in el.nodes() {
        match node {
            Node::Text(t) => text.push_str(t),
            Node::Element(child) => {
                return Err(Error::UnexpectedChild {
                    parent: element,
                    child: peer_text(child.name()),
                });
            }
        }
    }
    Ok(text)
}

/// Rejects any content (for `<required/>`).
pub(crate) fn check_empty(el: &Element, element: &'static str) -> Result<()> {
    if let Some(child) = el.children().next() {
        return Err(Error::UnexpectedChild {
            parent: element,
            child: peer_text(child.name()),
        });
    }
    if el.texts().any(|t| !t.is_empty()) {
        return Err(Error::UnexpectedText { element });
    }
    Ok(())
}

/// Decodes RFC 4648 §4 Base64 (padding required, no trailing bits) after removing XML white
/// space anywhere in the text (CMN-02). `max_len` bounds the decoded length; the text length is
/// bounded before anything is allocated.
pub(crate) fn decode_base64(text: &str, element: &'static str, max_len: usize) -> Result<Vec<u8>> {
    let max_encoded = max_len.div_ceil(3).saturating_mul(4);
    // Generous room for line wrapping, still bounded.
    if text.len() > max_encoded.saturating_mul(2).saturating_add(1024) {
        return Err(Error::LimitExceeded { what: element });
    }
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let bytes = text.as_bytes();
    let has_space = memchr::memchr3(b' ', b'\t', b'\n', bytes).is_some()
        || memchr::memchr(b'\r', bytes).is_some();
    let compact: std::borrow::Cow<'_, [u8]> = if has_space {
        text.bytes()
            .filter(|b| !is_space(b))
            .collect::<Vec<u8>>()
            .into()
    } else {
        text.as_bytes().into()
    };
    if compact.len() > max_encoded {
        return Err(Error::LimitExceeded { what: element });
    }
    let bytes = STANDARD
        .decode(&compact)
        .map_err(|_| Error::InvalidBase64 { element })?;
    if bytes.len() > max_len {
        return Err(Error::LimitExceeded { what: element });
    }
    Ok(bytes)
}

/// RFC 4648 §4 Base64 with padding, no line breaks.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Attribute name for minidom's builder.
///
/// Only called with the crate's own constant names (`type`, `var`, `label`), each a valid
/// NCName; the test `attribute_names_are_ncnames` covers every one of them.
pub(crate) fn ncname(name: &'static str) -> NcName {
    #[allow(clippy::expect_used)]
    NcName::try_from(name).expect("attribute names used by this crate are valid NCNames")
}

/// A leaf element `<name xmlns=ns>text</name>`; no text node when `text` is empty.
pub(crate) fn text_element(name: &str, ns: &str, text: impl Into<String>) -> Element {
    let text = text.into();
    let builder = Element::builder(name, ns);
    if text.is_empty() {
        builder.build()
    } else {
        builder.append(text).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_are_ncnames() {
        for name in ["type", "var", "label"] {
            assert_eq!(ncname(name).as_str(), name);
        }
    }

    #[test]
    fn base64_skips_white_space_inside_values_cmn_02() {
        assert_eq!(
            decode_base64(" AQ\nID\r\n\tBA== ", "v", 16).unwrap(),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn base64_rejects_garbage_missing_padding_and_trailing_bits_cmn_02() {
        for bad in ["AQID!", "AQIDBA", "AQ=D", "AR==", "-_8=", "A"] {
            assert_eq!(
                decode_base64(bad, "v", 16),
                Err(Error::InvalidBase64 { element: "v" }),
                "{bad}"
            );
        }
    }

    #[test]
    fn base64_enforces_the_decoded_length_bound() {
        assert_eq!(decode_base64("AAAA", "v", 3).unwrap(), vec![0, 0, 0]);
        assert_eq!(
            decode_base64("AAAAAA==", "v", 3),
            Err(Error::LimitExceeded { what: "v" })
        );
        let huge = " ".repeat(10_000);
        assert_eq!(
            decode_base64(&huge, "v", 3),
            Err(Error::LimitExceeded { what: "v" })
        );
    }

    #[test]
    fn whitespace_test_accepts_only_xml_white_space() {
        assert!(is_xml_whitespace(" \t\r\n"));
        assert!(is_xml_whitespace(""));
        assert!(!is_xml_whitespace("\u{a0}"));
        assert!(!is_xml_whitespace(" x "));
    }
}
