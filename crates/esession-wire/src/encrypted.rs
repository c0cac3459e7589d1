//! The XEP-0200 `<c xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'/>` element
//! (ENC-07..10, ENC-16, ENC-20) and its MAC input `m_content` (ENC-09, AMB-49).
//!
//! `m_content` is: each child of `<c/>` except `<mac/>`, in the order it was *received*, as
//! `<name>` + its character data exactly as parsed (entities decoded, internal white space
//! kept) re-escaped only for `&`, `<`, `>` + `</name>`; no attributes, nothing between the
//! children. A received `<c/>` is therefore parsed into [`ReceivedEncryptedContent`], which
//! keeps the `m_content` computed from the element as received beside the typed value
//! (practice 6: hash what was received). There is deliberately no way to parse a `<c/>`
//! without it.
//!
//! We emit `<data/>`, `<key/>`, `<new/>`, `<old/>`*, `<mac/>` in that order (ENC-10,
//! AMB-24), Base64 without white space; [`EncryptedContent::m_content`] is what a receiver of
//! that serialization computes.

use std::num::NonZeroU32;

use minidom::Element;

use crate::error::{Error, Result, peer_text};
use crate::ns;
use crate::util::{
    check_attributes, check_element_only, decode_base64, encode_base64, expect_element, leaf_text,
    text_element,
};

/// Largest decoded `<data/>`, in bytes.
pub const MAX_DATA_LEN: usize = 1024 * 1024;
/// Largest decoded `<key/>` (MPI of a rekey DH value; MODP group 18 has 8192 bits).
pub const MAX_KEY_LEN: usize = 1024;
/// Largest decoded `<mac/>` or `<old/>` (HMAC output or MAC key; Whirlpool/SHA-512 size).
pub const MAX_MAC_LEN: usize = 64;
/// Most `<old/>` children.
pub const MAX_OLD: usize = 16;

/// The typed content of a `<c/>` element.
///
/// The fields are wire data, not secrets: `<old/>` values are expired MAC keys published on
/// purpose (ENC-20).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedContent {
    /// `<data/>`: `m_final` (ENC-07), absent for empty content (ENC-10).
    pub data: Option<Vec<u8>>,
    /// `<key/>`: `MPI(e)` of a rekey (ENC-16).
    pub key: Option<Vec<u8>>,
    /// `<new/>`: number of `<key/>` stanzas received since we last sent, present iff >= 1
    /// (ENC-08).
    pub new: Option<NonZeroU32>,
    /// `<old/>`*: published expired MAC keys (ENC-20).
    pub old: Vec<Vec<u8>>,
    /// `<mac/>`: `a_mac` (ENC-09).
    pub mac: Vec<u8>,
}

impl EncryptedContent {
    /// The ENC-09 `m_content` of this value as we serialize it: `<data/>`, `<key/>`, `<new/>`,
    /// `<old/>`* (ignoring [`EncryptedContent::mac`], so it can be computed before the MAC
    /// exists). Equals what a receiver computes from [`Element::from`] of `self`.
    pub fn m_content(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, text) in self.children_without_mac() {
            push_m_content_child(&mut out, name, &text);
        }
        out
    }

    fn children_without_mac(&self) -> Vec<(&'static str, String)> {
        let mut children = Vec::with_capacity(3 + self.old.len());
        if let Some(data) = &self.data {
            children.push(("data", encode_base64(data)));
        }
        if let Some(key) = &self.key {
            children.push(("key", encode_base64(key)));
        }
        if let Some(new) = self.new {
            children.push(("new", new.to_string()));
        }
        for old in &self.old {
            children.push(("old", encode_base64(old)));
        }
        children
    }
}

impl EncryptedContent {
    /// Builds the `<c/>` element with a MAC computed by `mac` over this
    /// content's `m_content` (ENC-09), Base64-encoding each child once. The
    /// `mac` field of `self` is ignored.
    pub fn seal_with(&self, mac: impl FnOnce(&[u8]) -> Vec<u8>) -> Element {
        let children = self.children_without_mac();
        let mut m_content = Vec::with_capacity(children.iter().map(|(_, t)| t.len() + 16).sum());
        for (name, text) in &children {
            push_m_content_child(&mut m_content, name, text);
        }
        let tag = mac(&m_content);
        let mut b = Element::builder("c", ns::STANZA_ENCRYPTION);
        for (name, text) in children {
            b = b.append(text_element(name, ns::STANZA_ENCRYPTION, text));
        }
        b.append(text_element(
            "mac",
            ns::STANZA_ENCRYPTION,
            encode_base64(&tag),
        ))
        .build()
    }
}

impl From<&EncryptedContent> for Element {
    /// `<c/>` with `<data/>`, `<key/>`, `<new/>`, `<old/>`*, `<mac/>` (AMB-24).
    fn from(c: &EncryptedContent) -> Element {
        let mut b = Element::builder("c", ns::STANZA_ENCRYPTION);
        for (name, text) in c.children_without_mac() {
            b = b.append(text_element(name, ns::STANZA_ENCRYPTION, text));
        }
        b.append(text_element(
            "mac",
            ns::STANZA_ENCRYPTION,
            encode_base64(&c.mac),
        ))
        .build()
    }
}

/// A `<c/>` as received: the typed content plus the `m_content` of the received children
/// (ENC-09, AMB-49). Verify the MAC over [`ReceivedEncryptedContent::m_content`] before using
/// anything else (ENC-12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEncryptedContent {
    content: EncryptedContent,
    m_content: Vec<u8>,
}

impl ReceivedEncryptedContent {
    /// The typed content.
    pub fn content(&self) -> &EncryptedContent {
        &self.content
    }

    /// The MAC input computed from the element as received (ENC-09, AMB-49).
    pub fn m_content(&self) -> &[u8] {
        &self.m_content
    }

    /// Splits into the typed content and `m_content`.
    pub fn into_parts(self) -> (EncryptedContent, Vec<u8>) {
        (self.content, self.m_content)
    }
}

impl TryFrom<&Element> for ReceivedEncryptedContent {
    type Error = Error;

    /// Strict parse: exactly one `<mac/>`; at most one each of `<data/>`, `<key/>`, `<new/>`;
    /// up to [`MAX_OLD`] `<old/>`; any order (AMB-24); no other children, no unprefixed
    /// attributes, no non-white-space text between children; Base64 per RFC 4648 §4 with
    /// white space inside values skipped (CMN-02); `<new/>` a canonical positive decimal
    /// `u32` (ENC-08); values non-empty and within the size bounds.
    fn try_from(c: &Element) -> Result<Self> {
        expect_element(c, "c", ns::STANZA_ENCRYPTION)?;
        check_attributes(c, "c", &[])?;
        check_element_only(c, "c")?;

        let mut data = None;
        let mut key = None;
        let mut new = None;
        let mut old = Vec::new();
        let mut mac = None;
        let mut m_content = Vec::new();
        for child in c.children() {
            let name: &'static str = match child.name() {
                "data" if child.has_ns(ns::STANZA_ENCRYPTION) => "data",
                "key" if child.has_ns(ns::STANZA_ENCRYPTION) => "key",
                "new" if child.has_ns(ns::STANZA_ENCRYPTION) => "new",
                "old" if child.has_ns(ns::STANZA_ENCRYPTION) => "old",
                "mac" if child.has_ns(ns::STANZA_ENCRYPTION) => "mac",
                other => {
                    return Err(Error::UnexpectedChild {
                        parent: "c",
                        child: peer_text(other),
                    });
                }
            };
            check_attributes(child, name, &[])?;
            let text = leaf_text(child, name)?;
            match name {
                "data" => set_once(&mut data, decode_nonempty(&text, name, MAX_DATA_LEN)?, name)?,
                "key" => set_once(&mut key, decode_nonempty(&text, name, MAX_KEY_LEN)?, name)?,
                "new" => set_once(&mut new, parse_new(&text)?, name)?,
                "old" => {
                    if old.len() >= MAX_OLD {
                        return Err(Error::LimitExceeded { what: "old" });
                    }
                    old.push(decode_nonempty(&text, name, MAX_MAC_LEN)?);
                }
                _ => set_once(&mut mac, decode_nonempty(&text, name, MAX_MAC_LEN)?, name)?,
            }
            if name != "mac" {
                push_m_content_child(&mut m_content, name, &text);
            }
        }
        let mac = mac.ok_or(Error::MissingChild {
            parent: "c",
            child: "mac",
        })?;
        Ok(ReceivedEncryptedContent {
            content: EncryptedContent {
                data,
                key,
                new,
                old,
                mac,
            },
            m_content,
        })
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<()> {
    if slot.is_some() {
        return Err(Error::DuplicateChild {
            parent: "c",
            child: name,
        });
    }
    *slot = Some(value);
    Ok(())
}

fn decode_nonempty(text: &str, name: &'static str, max: usize) -> Result<Vec<u8>> {
    let bytes = decode_base64(text, name, max)?;
    if bytes.is_empty() {
        return Err(Error::EmptyValue { element: name });
    }
    Ok(bytes)
}

/// Canonical positive decimal: digits only, no sign, no leading zero, no white space, fits
/// `u32` (ENC-08: present iff N >= 1).
fn parse_new(text: &str) -> Result<NonZeroU32> {
    let invalid = Error::InvalidNumber { element: "new" };
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    text.parse::<NonZeroU32>().map_err(|_| invalid)
}

/// Appends `<name>text</name>` with `&`, `<`, `>` escaped (AMB-49).
fn push_m_content_child(out: &mut Vec<u8>, name: &str, text: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    // Copy runs between the three escaped bytes (all ASCII, so no char is
    // split); Base64 values have none, so this is one copy on the hot path.
    let bytes = text.as_bytes();
    let mut start = 0;
    for i in memchr::memchr3_iter(b'&', b'<', b'>', bytes) {
        let replacement: &[u8] = match bytes[i] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            _ => b"&gt;",
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(replacement);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C: &str = "xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'";

    fn parse(inner: &str) -> Result<ReceivedEncryptedContent> {
        let el: Element = format!("<c {C}>{inner}</c>").parse().unwrap();
        ReceivedEncryptedContent::try_from(&el)
    }

    fn m_content_str(r: &ReceivedEncryptedContent) -> &str {
        std::str::from_utf8(r.m_content()).unwrap()
    }

    #[test]
    fn parses_data_and_mac_and_computes_m_content_enc_09() {
        let r = parse("<data>AQID</data><mac>BAUG</mac>").unwrap();
        assert_eq!(r.content().data.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(r.content().mac, [4, 5, 6]);
        assert_eq!(m_content_str(&r), "<data>AQID</data>");
    }

    #[test]
    fn m_content_follows_received_order_amb_24_amb_49() {
        let r = parse("<old>BwcH</old><mac>BAUG</mac><new>2</new><data>AQID</data><key>CAgI</key>")
            .unwrap();
        assert_eq!(
            m_content_str(&r),
            "<old>BwcH</old><new>2</new><data>AQID</data><key>CAgI</key>"
        );
        // Our own serialization orders them data, key, new, old.
        assert_eq!(
            String::from_utf8(r.content().m_content()).unwrap(),
            "<data>AQID</data><key>CAgI</key><new>2</new><old>BwcH</old>"
        );
        assert_eq!(r.content().new, NonZeroU32::new(2));
        assert_eq!(r.content().old, vec![vec![7u8, 7, 7]]);
        assert_eq!(r.content().key.as_deref(), Some(&[8u8, 8, 8][..]));
    }

    #[test]
    fn m_content_keeps_white_space_inside_values_and_drops_it_between_children_amb_49() {
        let r = parse("\n  <data>AQ\n ID</data>\n  <mac>BAUG</mac>\n").unwrap();
        assert_eq!(r.content().data.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(m_content_str(&r), "<data>AQ\n ID</data>");
    }

    #[test]
    fn m_content_has_no_attributes_or_namespaces_and_reescapes_amb_49() {
        // Prefixed attributes are ignored by the parser and never MACed.
        let el: Element =
            "<e:c xmlns:e='http://www.xmpp.org/extensions/xep-0200.html#ns' xml:lang='en'>\
             <e:data xml:lang='en'>AQID</e:data><e:mac>BAUG</e:mac></e:c>"
                .parse()
                .unwrap();
        let r = ReceivedEncryptedContent::try_from(&el).unwrap();
        assert_eq!(m_content_str(&r), "<data>AQID</data>");
        // A CR from a character reference is whitespace for Base64 and kept raw in m_content.
        let r = parse("<data>AQ&#xD;ID</data><mac>BAUG</mac>").unwrap();
        assert_eq!(m_content_str(&r), "<data>AQ\rID</data>");
    }

    #[test]
    fn serializes_data_key_new_old_then_mac_enc_10_amb_24() {
        let c = EncryptedContent {
            data: Some(vec![1, 2, 3]),
            key: Some(vec![8]),
            new: NonZeroU32::new(3),
            old: vec![vec![7], vec![9]],
            mac: vec![4, 5, 6],
        };
        let xml = String::from(&Element::from(&c));
        assert_eq!(
            xml,
            "<c xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'><data>AQID</data>\
             <key>CA==</key><new>3</new><old>Bw==</old><old>CQ==</old><mac>BAUG</mac></c>"
        );
    }

    #[test]
    fn rekey_only_content_has_no_data_but_a_mac_enc_10() {
        let c = EncryptedContent {
            data: None,
            key: Some(vec![2]),
            new: None,
            old: vec![],
            mac: vec![1],
        };
        assert_eq!(c.m_content(), b"<key>Ag==</key>");
        let empty = EncryptedContent {
            data: None,
            key: None,
            new: None,
            old: vec![],
            mac: vec![1],
        };
        assert_eq!(empty.m_content(), b"");
        let r = parse("<mac>AQ==</mac>").unwrap();
        assert_eq!(r.m_content(), b"");
        assert_eq!(r.content(), &empty);
    }

    #[test]
    fn seal_with_macs_the_same_m_content_a_receiver_computes() {
        let content = EncryptedContent {
            data: Some(b"<&>".to_vec()),
            key: Some(vec![1, 2, 3]),
            new: NonZeroU32::new(2),
            old: vec![vec![9; 32]],
            mac: Vec::new(),
        };
        let mut seen = Vec::new();
        let el = content.seal_with(|m| {
            seen = m.to_vec();
            vec![0xAB; 32]
        });
        let received = ReceivedEncryptedContent::try_from(&el).unwrap();
        assert_eq!(received.m_content(), &seen[..]);
        assert_eq!(seen, content.m_content());
        assert_eq!(received.content().mac, vec![0xAB; 32]);
    }

    #[test]
    fn rejects_a_missing_or_repeated_mac() {
        assert_eq!(
            parse("<data>AQID</data>"),
            Err(Error::MissingChild {
                parent: "c",
                child: "mac"
            })
        );
        assert_eq!(
            parse("<mac>AQID</mac><mac>AQID</mac>"),
            Err(Error::DuplicateChild {
                parent: "c",
                child: "mac"
            })
        );
    }

    #[test]
    fn rejects_repeated_data_key_or_new() {
        for (inner, child) in [
            ("<data>AQ==</data><data>AQ==</data>", "data"),
            ("<key>AQ==</key><key>AQ==</key>", "key"),
            ("<new>1</new><new>1</new>", "new"),
        ] {
            assert_eq!(
                parse(&format!("{inner}<mac>AQ==</mac>")),
                Err(Error::DuplicateChild { parent: "c", child }),
                "{inner}"
            );
        }
    }

    #[test]
    fn rejects_unknown_or_foreign_children() {
        assert_eq!(
            parse("<body>hi</body><mac>AQ==</mac>"),
            Err(Error::UnexpectedChild {
                parent: "c",
                child: "body".into()
            })
        );
        assert_eq!(
            parse("<data xmlns='urn:other'>AQ==</data><mac>AQ==</mac>"),
            Err(Error::UnexpectedChild {
                parent: "c",
                child: "data".into()
            })
        );
        assert_eq!(
            parse("<data><b/></data><mac>AQ==</mac>"),
            Err(Error::UnexpectedChild {
                parent: "data",
                child: "b".into()
            })
        );
    }

    #[test]
    fn rejects_attributes_and_mixed_text() {
        assert!(matches!(
            ReceivedEncryptedContent::try_from(
                &format!("<c {C} n='1'><mac>AQ==</mac></c>")
                    .parse::<Element>()
                    .unwrap()
            ),
            Err(Error::UnexpectedAttribute { element: "c", .. })
        ));
        assert!(matches!(
            parse("<data n='1'>AQ==</data><mac>AQ==</mac>"),
            Err(Error::UnexpectedAttribute {
                element: "data",
                ..
            })
        ));
        assert_eq!(
            parse("x<mac>AQ==</mac>"),
            Err(Error::MixedContent {
                element: "c".into()
            })
        );
    }

    #[test]
    fn rejects_a_wrong_element() {
        let el: Element = "<c xmlns='urn:other'><mac>AQ==</mac></c>".parse().unwrap();
        assert_eq!(
            ReceivedEncryptedContent::try_from(&el),
            Err(Error::WrongElement {
                name: "c",
                namespace: ns::STANZA_ENCRYPTION
            })
        );
    }

    #[test]
    fn rejects_bad_base64_cmn_02() {
        for child in ["data", "key", "old", "mac"] {
            let inner = if child == "mac" {
                "<mac>AQ=</mac>".to_string()
            } else {
                format!("<{child}>!!!!</{child}><mac>AQ==</mac>")
            };
            assert_eq!(
                parse(&inner),
                Err(Error::InvalidBase64 { element: child }),
                "{child}"
            );
        }
    }

    #[test]
    fn rejects_empty_values() {
        for child in ["data", "key", "old"] {
            assert_eq!(
                parse(&format!("<{child}/><mac>AQ==</mac>")),
                Err(Error::EmptyValue { element: child })
            );
        }
        assert_eq!(
            parse("<mac> </mac>"),
            Err(Error::EmptyValue { element: "mac" })
        );
    }

    #[test]
    fn accepts_only_canonical_positive_new_counts_enc_08() {
        assert_eq!(
            parse("<new>1</new><mac>AQ==</mac>").unwrap().content().new,
            NonZeroU32::new(1)
        );
        assert_eq!(
            parse("<new>4294967295</new><mac>AQ==</mac>")
                .unwrap()
                .content()
                .new,
            NonZeroU32::new(u32::MAX)
        );
        for bad in [
            "0",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "",
            "1.0",
            "0x1",
            "4294967296",
            "١",
        ] {
            assert_eq!(
                parse(&format!("<new>{bad}</new><mac>AQ==</mac>")),
                Err(Error::InvalidNumber { element: "new" }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn enforces_size_bounds() {
        let big = encode_base64(&vec![0u8; MAX_DATA_LEN + 1]);
        assert_eq!(
            parse(&format!("<data>{big}</data><mac>AQ==</mac>")),
            Err(Error::LimitExceeded { what: "data" })
        );
        let ok = encode_base64(&vec![0u8; MAX_DATA_LEN]);
        assert!(parse(&format!("<data>{ok}</data><mac>AQ==</mac>")).is_ok());
        let key = encode_base64(&vec![1u8; MAX_KEY_LEN + 1]);
        assert_eq!(
            parse(&format!("<key>{key}</key><mac>AQ==</mac>")),
            Err(Error::LimitExceeded { what: "key" })
        );
        let mac = encode_base64(&[1u8; MAX_MAC_LEN + 1]);
        assert_eq!(
            parse(&format!("<mac>{mac}</mac>")),
            Err(Error::LimitExceeded { what: "mac" })
        );
        let olds: String = (0..=MAX_OLD).map(|_| "<old>AQ==</old>").collect();
        assert_eq!(
            parse(&format!("{olds}<mac>AQ==</mac>")),
            Err(Error::LimitExceeded { what: "old" })
        );
        let olds: String = (0..MAX_OLD).map(|_| "<old>AQ==</old>").collect();
        assert_eq!(
            parse(&format!("{olds}<mac>AQ==</mac>"))
                .unwrap()
                .content()
                .old
                .len(),
            MAX_OLD
        );
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 1..=max)
    }

    fn arb_content() -> impl Strategy<Value = EncryptedContent> {
        (
            prop::option::of(arb_bytes(200)),
            prop::option::of(arb_bytes(MAX_KEY_LEN)),
            prop::option::of(1u32..),
            prop::collection::vec(arb_bytes(MAX_MAC_LEN), 0..=MAX_OLD),
            arb_bytes(MAX_MAC_LEN),
        )
            .prop_map(|(data, key, new, old, mac)| EncryptedContent {
                data,
                key,
                new: new.and_then(NonZeroU32::new),
                old,
                mac,
            })
    }

    proptest! {
        #[test]
        fn serialize_then_parse_gives_the_same_content_and_m_content(c in arb_content()) {
            let xml = String::from(&Element::from(&c));
            let el: Element = xml.parse().unwrap();
            let r = ReceivedEncryptedContent::try_from(&el).unwrap();
            let expected = c.m_content();
            prop_assert_eq!(r.m_content(), expected.as_slice());
            prop_assert_eq!(r.into_parts().0, c);
        }

        #[test]
        fn parsing_arbitrary_children_never_panics(s in "[<>a-z/=A-Z0-9+ ]{0,80}") {
            if let Ok(el) = format!("<c {C}>{s}</c>").parse::<Element>()
                && let Ok(r) = ReceivedEncryptedContent::try_from(&el)
            {
                prop_assert!(!r.content().mac.is_empty());
            }
        }
    }
}
