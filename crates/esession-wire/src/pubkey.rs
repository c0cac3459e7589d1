//! XEP-0189 public key publishing, version 0.14: `<pubkey/>` (PKP-01/02, AMB-64/65/67),
//! `<revoke/>` (PKP-05, AMB-66) and `<attest/>` (PKP-05/06), strictly parsed.
//!
//! This module reads and writes the elements and produces the exact bytes that a print or a
//! signature covers; computing the hash and checking the signature is the caller's (the
//! crate has no cryptography). A parsed [`PublishedKey`] therefore still has to have its
//! [`PublishedKey::print_input`] hashed and compared with [`PublishedKey::print`] before it is
//! used, and [`PublishedKey::usable_at`] checked (PKP-03).
//!
//! Numbers are decimal on the wire (`rsakey`) and big-endian bytes here, without leading zero
//! octets; the print covers the canonical decimal (AMB-65), so a key re-encoded by us has the
//! print it had when it was published.

use minidom::Element;
use num_bigint::BigUint;

use crate::error::{Error, Result, peer_text};
use crate::util::{
    check_attributes, check_element_only, decode_base64, encode_base64, expect_element,
    is_xml_whitespace, leaf_text, text_element,
};

/// `urn:xmpp:pubkey:2`: the key element, its PEP node and its disco feature (PKP-01/04/08).
pub const PUBKEY_NS: &str = crate::ns::PUBKEY;
/// `urn:xmpp:revoke:2`: revocations and their PEP node (PKP-05, AMB-66).
pub const REVOKE_NS: &str = "urn:xmpp:revoke:2";
/// `urn:xmpp:attest:2`: attestations and their PEP node (PKP-05).
pub const ATTEST_NS: &str = "urn:xmpp:attest:2";

/// Largest modulus, in bytes (8192 bits, as for XEP-0116 keys).
pub const MAX_MODULUS_LEN: usize = 1024;
/// Largest public exponent, in bytes.
pub const MAX_EXPONENT_LEN: usize = 8;
/// Largest print (a SHA-256 output), in bytes.
pub const PRINT_LEN: usize = 32;
/// Largest signature, in bytes (an RSA-8192 signature).
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Largest DER key of a revocation, in bytes.
pub const MAX_DER_KEY_LEN: usize = 1200;
/// Longest text of a date, JID, URI or hex print.
const MAX_TEXT_LEN: usize = 3071;

/// A XEP-0082 DateTime as published: the text (what prints and signatures cover) and, when it
/// names its time zone, the instant it denotes (AMB-64: without a zone the key is unusable).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Timestamp {
    /// The element text with leading and trailing XML white space removed.
    pub text: String,
    /// Seconds since the Unix epoch, UTC; `None` without a time zone.
    pub unix: Option<i64>,
}

impl Timestamp {
    /// The timestamp of `unix` seconds, written `CCYY-MM-DDThh:mm:ssZ` (AMB-64).
    pub fn from_unix(unix: i64) -> Option<Self> {
        let time = chrono::DateTime::from_timestamp(unix, 0)?;
        Some(Self {
            text: time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            unix: Some(unix),
        })
    }

    /// A DateTime read from elsewhere (XEP-0187 `expires`): `unix` is `None` unless it is a
    /// XEP-0082 DateTime with its time zone.
    pub fn from_text(text: &str) -> Self {
        Self::parse(text, "DateTime").unwrap_or_else(|_| Self {
            text: trim_xml_whitespace(text).to_owned(),
            unix: None,
        })
    }

    fn parse(text: &str, element: &'static str) -> Result<Self> {
        let text = trim_xml_whitespace(text);
        if text.is_empty() {
            return Err(Error::EmptyValue { element });
        }
        if text.len() > 64 {
            return Err(Error::LimitExceeded { what: element });
        }
        let unix = match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(time) => Some(time.timestamp()),
            // A well-formed local date-time without a zone: readable, never usable.
            Err(_)
                if chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() =>
            {
                None
            }
            Err(_) => return Err(Error::InvalidNumber { element }),
        };
        Ok(Self {
            text: text.to_owned(),
            unix,
        })
    }
}

/// `<pubkey xmlns='urn:xmpp:pubkey:2'/>` (PKP-01): an RSA key, its validity and its owner.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PublishedKey {
    /// `<begin/>`: first instant of validity.
    pub begin: Timestamp,
    /// `<end/>`: last instant of validity.
    pub end: Timestamp,
    /// `<jid/>`: the owner's bare JID (AMB-67), as published.
    pub jid: String,
    /// `<modulus/>`, big-endian without leading zero octets.
    pub modulus: Vec<u8>,
    /// `<publicExponent/>`, big-endian without leading zero octets.
    pub exponent: Vec<u8>,
    /// `<print/>`, decoded: SHA-256 of [`Self::print_input`] when genuine.
    pub print: Vec<u8>,
    /// `<uri/>`, if any.
    pub uri: Option<String>,
}

impl PublishedKey {
    /// What the print covers (PKP-02, AMB-65): begin | end | jid | decimal modulus | decimal
    /// exponent, UTF-8.
    pub fn print_input(&self) -> Vec<u8> {
        print_input(
            &self.begin.text,
            &self.end.text,
            &self.jid,
            &self.modulus,
            &self.exponent,
        )
    }

    /// Whether the key may be used at `unix` (PKP-03): both dates name their zone and
    /// begin <= now <= end.
    pub fn usable_at(&self, unix: i64) -> bool {
        matches!((self.begin.unix, self.end.unix), (Some(b), Some(e)) if b <= unix && unix <= e)
    }

    /// The print as Base64, as published.
    pub fn print_base64(&self) -> String {
        encode_base64(&self.print)
    }
}

/// The print input of a key (PKP-02, AMB-65).
pub fn print_input(begin: &str, end: &str, jid: &str, modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut input = String::new();
    for part in [begin, end, jid] {
        input.push_str(part);
    }
    input.push_str(&decimal(modulus));
    input.push_str(&decimal(exponent));
    input.into_bytes()
}

/// The canonical decimal of a big-endian number ("0" for none).
fn decimal(bytes: &[u8]) -> String {
    BigUint::from_bytes_be(bytes).to_str_radix(10)
}

/// Base64 as the elements carry it (RFC 4648, padded, one line).
pub fn base64(bytes: &[u8]) -> String {
    encode_base64(bytes)
}

/// Leading and trailing XML white space removed.
fn trim_xml_whitespace(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// All XML white space removed (AMB-65/66).
fn without_xml_whitespace(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .collect()
}

/// A decimal number as published, white space anywhere, at most `max_len` bytes once decoded.
fn parse_decimal(text: &str, element: &'static str, max_len: usize) -> Result<Vec<u8>> {
    // Each byte is at most 3 digits: bound the text before anything is allocated.
    if text.len() > max_len.saturating_mul(3).saturating_add(1024) {
        return Err(Error::LimitExceeded { what: element });
    }
    let digits = without_xml_whitespace(text);
    if digits.is_empty() {
        return Err(Error::EmptyValue { element });
    }
    let value = BigUint::parse_bytes(digits.as_bytes(), 10)
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(Error::InvalidNumber { element })?;
    let bytes = value.to_bytes_be();
    if bytes.len() > max_len {
        return Err(Error::LimitExceeded { what: element });
    }
    if bytes == [0] {
        return Err(Error::InvalidNumber { element });
    }
    Ok(bytes)
}

/// The children of an element-only element, each name at most once and none other.
struct Children<'a> {
    parent: &'static str,
    found: Vec<(&'static str, &'a Element)>,
}

impl<'a> Children<'a> {
    /// The children of the root element `name`, which carries no attribute.
    fn of_root(
        el: &'a Element,
        name: &'static str,
        ns: &'static str,
        known: &[&'static str],
    ) -> Result<Self> {
        expect_element(el, name, ns)?;
        check_attributes(el, name, &[])?;
        Self::of(el, name, ns, known)
    }

    fn of(el: &'a Element, parent: &'static str, ns: &str, known: &[&'static str]) -> Result<Self> {
        check_element_only(el, parent)?;
        let mut found: Vec<(&'static str, &'a Element)> = Vec::new();
        for child in el.children() {
            let name = known
                .iter()
                .copied()
                .find(|k| child.is(*k, ns))
                .ok_or_else(|| Error::UnexpectedChild {
                    parent,
                    child: peer_text(child.name()),
                })?;
            if found.iter().any(|(n, _)| *n == name) {
                return Err(Error::DuplicateChild {
                    parent,
                    child: name,
                });
            }
            found.push((name, child));
        }
        Ok(Self { parent, found })
    }

    fn optional(&self, name: &'static str) -> Option<&'a Element> {
        self.found.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }

    fn required(&self, name: &'static str) -> Result<&'a Element> {
        self.optional(name).ok_or(Error::MissingChild {
            parent: self.parent,
            child: name,
        })
    }

    /// The text of a required leaf child, checked for attributes and length.
    fn text(&self, name: &'static str) -> Result<String> {
        let el = self.required(name)?;
        check_attributes(el, name, &[])?;
        let text = leaf_text(el, name)?;
        if text.len() > MAX_TEXT_LEN.max(MAX_SIGNATURE_LEN * 2) {
            return Err(Error::LimitExceeded { what: name });
        }
        Ok(text)
    }
}

/// A fingerprint element's text, with its `algo` (only `sha-256`, AMB-65).
fn print_text(el: &Element, name: &'static str) -> Result<String> {
    check_attributes(el, name, &["algo"])?;
    if el.attr("algo").is_some_and(|a| a != "sha-256") {
        return Err(Error::InvalidAttribute {
            element: name,
            attribute: "algo",
        });
    }
    let text = leaf_text(el, name)?;
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::LimitExceeded { what: name });
    }
    Ok(text)
}

/// A JID's text: trimmed, non-empty, bounded (its syntax is the caller's to judge).
fn jid_text(text: &str, element: &'static str) -> Result<String> {
    let text = trim_xml_whitespace(text);
    if text.is_empty() {
        return Err(Error::EmptyValue { element });
    }
    if text.contains(char::is_whitespace) {
        return Err(Error::InvalidNumber { element });
    }
    Ok(text.to_owned())
}

impl TryFrom<&Element> for PublishedKey {
    type Error = Error;

    /// `<pubkey/>` with `<begin/>`, `<end/>`, `<jid/>` and `<rsakey/>` (modulus,
    /// publicExponent, print), an optional `<uri/>`, in any order, each once, nothing else.
    fn try_from(el: &Element) -> Result<Self> {
        let children = Children::of_root(
            el,
            "pubkey",
            PUBKEY_NS,
            &["begin", "end", "jid", "rsakey", "uri"],
        )?;
        let begin = Timestamp::parse(&children.text("begin")?, "begin")?;
        let end = Timestamp::parse(&children.text("end")?, "end")?;
        let jid = jid_text(&children.text("jid")?, "jid")?;
        let uri = match children.optional("uri") {
            Some(_) => Some(trim_xml_whitespace(&children.text("uri")?).to_owned()),
            None => None,
        };
        let rsakey = children.required("rsakey")?;
        check_attributes(rsakey, "rsakey", &[])?;
        let numbers = Children::of(
            rsakey,
            "rsakey",
            PUBKEY_NS,
            &["modulus", "publicExponent", "print"],
        )?;
        let modulus = parse_decimal(&numbers.text("modulus")?, "modulus", MAX_MODULUS_LEN)?;
        let exponent = parse_decimal(
            &numbers.text("publicExponent")?,
            "publicExponent",
            MAX_EXPONENT_LEN,
        )?;
        let print = decode_base64(
            &print_text(numbers.required("print")?, "print")?,
            "print",
            PRINT_LEN,
        )?;
        if print.len() != PRINT_LEN {
            return Err(Error::InvalidBase64 { element: "print" });
        }
        Ok(Self {
            begin,
            end,
            jid,
            modulus,
            exponent,
            print,
            uri,
        })
    }
}

impl From<&PublishedKey> for Element {
    fn from(key: &PublishedKey) -> Element {
        let leaf = |name: &str, text: String| text_element(name, PUBKEY_NS, text);
        let print = Element::builder("print", PUBKEY_NS)
            .attr(crate::util::ncname("algo"), "sha-256")
            .append(key.print_base64())
            .build();
        let rsakey = Element::builder("rsakey", PUBKEY_NS)
            .append(leaf("modulus", decimal(&key.modulus)))
            .append(leaf("publicExponent", decimal(&key.exponent)))
            .append(print)
            .build();
        let mut pubkey = Element::builder("pubkey", PUBKEY_NS)
            .append(leaf("begin", key.begin.text.clone()))
            .append(leaf("end", key.end.text.clone()))
            .append(leaf("jid", key.jid.clone()))
            .append(rsakey);
        if let Some(uri) = &key.uri {
            pubkey = pubkey.append(leaf("uri", uri.clone()));
        }
        pubkey.build()
    }
}

/// `<revoke xmlns='urn:xmpp:revoke:2'/>` (PKP-05, AMB-66; `<revocation/>` accepted): the
/// owner withdraws a key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Revocation {
    /// `<key/>`: the revoked key, Base64 DER SubjectPublicKeyInfo, white space removed.
    pub key: String,
    /// `<keyprint/>`: the revoked key's print (Base64), white space removed.
    pub keyprint: String,
    /// `<revocationprint/>`: the signer's print, white space removed (equal to `keyprint`
    /// when the key revokes itself).
    pub revocationprint: String,
    /// `<revocationtime/>`.
    pub revocationtime: Timestamp,
    /// `<signature/>`, decoded: RSASSA-PKCS1-v1_5 / SHA-256 over [`Self::signed_data`].
    pub signature: Vec<u8>,
}

impl Revocation {
    /// What the signature covers (PKP-05, AMB-66): key | keyprint | revocationprint |
    /// revocationtime, all white space removed, UTF-8.
    pub fn signed_data(&self) -> Vec<u8> {
        let mut data = String::new();
        for part in [
            &self.key,
            &self.keyprint,
            &self.revocationprint,
            &self.revocationtime.text,
        ] {
            data.push_str(&without_xml_whitespace(part));
        }
        data.into_bytes()
    }

    /// The revoked key's print, decoded (what a [`PublishedKey::print`] is compared with).
    pub fn revoked_print(&self) -> Result<Vec<u8>> {
        decode_base64(&self.keyprint, "keyprint", PRINT_LEN)
    }
}

impl TryFrom<&Element> for Revocation {
    type Error = Error;

    fn try_from(el: &Element) -> Result<Self> {
        let name = if el.is("revoke", REVOKE_NS) {
            "revoke"
        } else if el.is("revocation", REVOKE_NS) {
            "revocation"
        } else {
            return Err(Error::WrongElement {
                name: "revoke",
                namespace: REVOKE_NS,
            });
        };
        check_attributes(el, name, &[])?;
        let children = Children::of(
            el,
            "revoke",
            REVOKE_NS,
            &[
                "key",
                "keyprint",
                "revocationprint",
                "revocationtime",
                "signature",
            ],
        )?;
        let key = without_xml_whitespace(&children.text("key")?);
        decode_base64(&key, "key", MAX_DER_KEY_LEN)?;
        let keyprint =
            without_xml_whitespace(&print_text(children.required("keyprint")?, "keyprint")?);
        let revocationprint = without_xml_whitespace(&print_text(
            children.required("revocationprint")?,
            "revocationprint",
        )?);
        let revocationtime = Timestamp::parse(&children.text("revocationtime")?, "revocationtime")?;
        let signature =
            decode_base64(&children.text("signature")?, "signature", MAX_SIGNATURE_LEN)?;
        if signature.is_empty() {
            return Err(Error::EmptyValue {
                element: "signature",
            });
        }
        Ok(Self {
            key,
            keyprint,
            revocationprint,
            revocationtime,
            signature,
        })
    }
}

impl From<&Revocation> for Element {
    fn from(revocation: &Revocation) -> Element {
        let leaf = |name: &str, text: &str| text_element(name, REVOKE_NS, text);
        Element::builder("revoke", REVOKE_NS)
            .append(leaf("key", &revocation.key))
            .append(leaf("keyprint", &revocation.keyprint))
            .append(leaf("revocationprint", &revocation.revocationprint))
            .append(leaf("revocationtime", &revocation.revocationtime.text))
            .append(leaf("signature", &encode_base64(&revocation.signature)))
            .build()
    }
}

/// `<attest xmlns='urn:xmpp:attest:2'/>` (PKP-05/06): someone signed a key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Attestation {
    /// `<keyprint/>`: the attested key's print, white space removed.
    pub keyprint: String,
    /// `<signature/>`, white space removed; its format depends on the signer's key.
    pub signature: String,
    /// `<signerjid/>`.
    pub signerjid: String,
    /// `<signerprint/>`: the signer's print, white space removed.
    pub signerprint: String,
    /// `<signtime/>`.
    pub signtime: Timestamp,
}

impl Attestation {
    /// What the signature covers (PKP-05): key | keyprint | signerjid | signerprint |
    /// signtime, where `key` is the attested key's character data (Base64 DER), all white
    /// space removed.
    pub fn signed_data(&self, key: &str) -> Vec<u8> {
        let mut data = without_xml_whitespace(key);
        for part in [
            &self.keyprint,
            &self.signerjid,
            &self.signerprint,
            &self.signtime.text,
        ] {
            data.push_str(&without_xml_whitespace(part));
        }
        data.into_bytes()
    }

    /// The attested key's print, decoded (Base64, or hex as some prints are, AMB-37).
    pub fn attested_print(&self) -> Result<Vec<u8>> {
        decode_print(&self.keyprint, "keyprint")
    }

    /// The signer's print, decoded (hex, as the XEP's example, or Base64).
    pub fn signer_print(&self) -> Result<Vec<u8>> {
        decode_print(&self.signerprint, "signerprint")
    }

    /// The signature, decoded from Base64.
    pub fn signature_bytes(&self) -> Result<Vec<u8>> {
        decode_base64(&self.signature, "signature", MAX_SIGNATURE_LEN)
    }
}

/// A SHA-256 print written as 64 hex digits or as Base64 (AMB-37: both occur).
fn decode_print(text: &str, element: &'static str) -> Result<Vec<u8>> {
    if text.len() == 2 * PRINT_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(text).map_err(|_| Error::InvalidBase64 { element });
    }
    let print = decode_base64(text, element, PRINT_LEN)?;
    if print.len() == PRINT_LEN {
        Ok(print)
    } else {
        Err(Error::InvalidBase64 { element })
    }
}

impl From<&Attestation> for Element {
    fn from(attestation: &Attestation) -> Element {
        let leaf = |name: &str, text: &str| text_element(name, ATTEST_NS, text);
        Element::builder("attest", ATTEST_NS)
            .append(leaf("keyprint", &attestation.keyprint))
            .append(leaf("signature", &attestation.signature))
            .append(leaf("signerjid", &attestation.signerjid))
            .append(leaf("signerprint", &attestation.signerprint))
            .append(leaf("signtime", &attestation.signtime.text))
            .build()
    }
}

impl TryFrom<&Element> for Attestation {
    type Error = Error;

    fn try_from(el: &Element) -> Result<Self> {
        let children = Children::of_root(
            el,
            "attest",
            ATTEST_NS,
            &[
                "keyprint",
                "signature",
                "signerjid",
                "signerprint",
                "signtime",
            ],
        )?;
        let signature = without_xml_whitespace(&children.text("signature")?);
        if signature.is_empty() {
            return Err(Error::EmptyValue {
                element: "signature",
            });
        }
        Ok(Self {
            keyprint: without_xml_whitespace(&print_text(
                children.required("keyprint")?,
                "keyprint",
            )?),
            signature,
            signerjid: jid_text(&children.text("signerjid")?, "signerjid")?,
            signerprint: without_xml_whitespace(&print_text(
                children.required("signerprint")?,
                "signerprint",
            )?),
            signtime: Timestamp::parse(&children.text("signtime")?, "signtime")?,
        })
    }
}

/// Whether `text` holds nothing but XML white space (an empty `<pubkey/>` request, PKP-07).
pub fn is_key_request(el: &Element) -> bool {
    el.is("pubkey", PUBKEY_NS)
        && el.children().next().is_none()
        && el.texts().all(is_xml_whitespace)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;
    use crate::xml::parse_document;

    /// The key of XEP-0189 0.14 Example 1, verbatim.
    const EXAMPLE_KEY: &str = r#"<pubkey xmlns='urn:xmpp:pubkey:2'>
    <begin>2010-01-14T18:44:18Z</begin>
    <end>2011-01-14T18:44:18Z</end>
    <jid>alice@example.com</jid>
    <rsakey>
      <modulus>
1379023255526646700594339116162946782578210615394951216941818138582610132470
1538683909348374935399508656737300036572749687356120324044452513265157631177
7178489330603814456987700147603113573139002085123800563057708424072367754377
0906580036148700287401094143051242586181831057271078882862257109043483553172
66153
      </modulus>
      <publicExponent>65537</publicExponent>
      <print algo='sha-256'>eWGdcl+AzN0treQoRry+/zYqYJ7ZEAzwIvTossTURLw=</print>
    </rsakey>
  </pubkey>"#;

    /// The revoked key's character data of XEP-0189 0.14 Examples 2 and 3.
    const EXAMPLE_DER: &str = "
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA25/Y7oonF3+pRjZCk0cQ
    lQFiUFvyMeUOnn01NLfqfBeT4xjahsxaYFPd+V8jIHtpO3nbkpfrBh5aLPCkqDzS
    UFvmLaVSIMUt085kcT/Yv72BUWUGaISt7swSNfictRbVZ0k8TbXUDLIAYWN8lsie
    NVxL13PS9pu3WNoORuKAV5RuzDS3djnjb6fti7fTwEUpQVwRrJXY6jNhv4c4zE3x
    Pjm48gIlHbZrxuWNrXnKT6uwXnr6PJ6O3YspferJG1oA3kmOwm41yWDkalbKgkNZ
    WeS+ahB/i9LIG+41CdekPpI0Kr0Ll9X7+zaPV6xzjlG8dYy7ZGm4eTL9STuWlPdL
    +wIDAQAB";

    fn element(xml: &str) -> Element {
        parse_document(xml).unwrap()
    }

    #[test]
    fn the_example_key_parses_and_its_print_input_is_the_canonical_concatenation() {
        let key = PublishedKey::try_from(&element(EXAMPLE_KEY)).unwrap();
        assert_eq!(key.jid, "alice@example.com");
        assert_eq!(key.exponent, [1, 0, 1]);
        assert_eq!(key.modulus.len(), 128, "a 1024-bit modulus");
        assert_eq!(key.begin.unix, Some(1_263_494_658));
        // AMB-65: dates and JID as published, then the decimal numbers without white space.
        let modulus: String =
            "1379023255526646700594339116162946782578210615394951216941818138582610132470\
1538683909348374935399508656737300036572749687356120324044452513265157631177\
7178489330603814456987700147603113573139002085123800563057708424072367754377\
0906580036148700287401094143051242586181831057271078882862257109043483553172\
66153"
                .to_owned();
        let expected =
            format!("2010-01-14T18:44:18Z2011-01-14T18:44:18Zalice@example.com{modulus}65537");
        assert_eq!(String::from_utf8(key.print_input()).unwrap(), expected);
        // PKP-03: usable only between begin and end.
        assert!(key.usable_at(1_263_494_658));
        assert!(!key.usable_at(1_263_494_657));
        assert!(key.usable_at(1_294_000_000));
        assert!(!key.usable_at(1_295_030_659));
    }

    #[test]
    fn a_key_we_write_reads_back_unchanged_with_the_same_print_input() {
        let key = PublishedKey {
            begin: Timestamp::from_unix(1_700_000_000).unwrap(),
            end: Timestamp::from_unix(1_800_000_000).unwrap(),
            jid: "bob@example.com".to_owned(),
            modulus: vec![0xc5; 256],
            exponent: vec![1, 0, 1],
            print: vec![7; 32],
            uri: Some("https://example.com/bob.pem".to_owned()),
        };
        assert_eq!(key.begin.text, "2023-11-14T22:13:20Z");
        let again = PublishedKey::try_from(&Element::from(&key)).unwrap();
        assert_eq!(again, key);
        assert_eq!(again.print_input(), key.print_input());
    }

    #[test]
    fn a_date_without_a_time_zone_makes_the_key_unusable() {
        // AMB-64: readable (Example 5 of the XEP has such dates), never usable.
        let xml = EXAMPLE_KEY.replace("2010-01-14T18:44:18Z", "2010-01-14T18:44:18");
        let key = PublishedKey::try_from(&element(&xml)).unwrap();
        assert_eq!(key.begin.unix, None);
        assert!(!key.usable_at(1_270_000_000));
    }

    #[test]
    fn malformed_keys_are_refused_with_the_element_at_fault() {
        let cases: [(&str, &str, Error); 7] = [
            (
                "<publicExponent>65537</publicExponent>",
                "<publicExponent>65537</publicExponent><publicExponent>3</publicExponent>",
                Error::DuplicateChild {
                    parent: "rsakey",
                    child: "publicExponent",
                },
            ),
            (
                "<publicExponent>65537</publicExponent>",
                "<publicExponent>0x10001</publicExponent>",
                Error::InvalidNumber {
                    element: "publicExponent",
                },
            ),
            (
                "<publicExponent>65537</publicExponent>",
                "<publicExponent>123456789012345678901234567890</publicExponent>",
                Error::LimitExceeded {
                    what: "publicExponent",
                },
            ),
            (
                "algo='sha-256'",
                "algo='sha-1'",
                Error::InvalidAttribute {
                    element: "print",
                    attribute: "algo",
                },
            ),
            (
                "eWGdcl+AzN0treQoRry+/zYqYJ7ZEAzwIvTossTURLw=",
                "eWGdcl+AzN0treQo",
                Error::InvalidBase64 { element: "print" },
            ),
            (
                "<jid>alice@example.com</jid>",
                "",
                Error::MissingChild {
                    parent: "pubkey",
                    child: "jid",
                },
            ),
            (
                "<begin>2010-01-14T18:44:18Z</begin>",
                "<begin>yesterday</begin>",
                Error::InvalidNumber { element: "begin" },
            ),
        ];
        for (from, to, error) in cases {
            let xml = EXAMPLE_KEY.replace(from, to);
            assert_eq!(PublishedKey::try_from(&element(&xml)), Err(error), "{to}");
        }
        let extra = EXAMPLE_KEY.replace("<jid>", "<note>hi</note><jid>");
        assert!(matches!(
            PublishedKey::try_from(&element(&extra)),
            Err(Error::UnexpectedChild {
                parent: "pubkey",
                ..
            })
        ));
        let huge = EXAMPLE_KEY.replace("66153\n", &"9".repeat(3000));
        assert_eq!(
            PublishedKey::try_from(&element(&huge)),
            Err(Error::LimitExceeded { what: "modulus" })
        );
    }

    #[test]
    fn revocation_and_attestation_sign_the_strings_the_xep_shows() {
        // XEP-0189 0.14 §3 and §4 give the signed strings (line breaks not significant).
        let revocation = Revocation {
            key: without_xml_whitespace(EXAMPLE_DER),
            keyprint: "13475c8e27399908b4447d7c52ab30822872832eba3a654f0d80e07fb4157673".to_owned(),
            revocationprint: "becb78566783166f4a1a7c64e28dae288fe1a0f2825f6b593b336ce186c6b056"
                .to_owned(),
            revocationtime: Timestamp::parse("2009-12-14T20:49:16Z", "revocationtime").unwrap(),
            signature: vec![1],
        };
        let published = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA25/Y7oonF3+pRjZCk0cQ
    lQFiUFvyMeUOnn01NLfqfBeT4xjahsxaYFPd+V8jIHtpO3nbkpfrBh5aLPCkqDzS
    UFvmLaVSIMUt085kcT/Yv72BUWUGaISt7swSNfictRbVZ0k8TbXUDLIAYWN8lsie
    NVxL13PS9pu3WNoORuKAV5RuzDS3djnjb6fti7fTwEUpQVwRrJXY6jNhv4c4zE3x
    Pjm48gIlHbZrxuWNrXnKT6uwXnr6PJ6O3YspferJG1oA3kmOwm41yWDkalbKgkNZ
    WeS+ahB/i9LIG+41CdekPpI0Kr0Ll9X7+zaPV6xzjlG8dYy7ZGm4eTL9STuWlPdL
    +wIDAQAB13475c8e27399908b4447d7c52ab30822872832eba3a654f0d80e07f
    b4157673becb78566783166f4a1a7c64e28dae288fe1a0f2825f6b593b336ce1
    86c6b0562009-12-14T20:49:16Z";
        assert_eq!(
            revocation.signed_data(),
            without_xml_whitespace(published).into_bytes()
        );

        let attestation = Attestation::try_from(&element(
            "<attest xmlns='urn:xmpp:attest:2'>
  <keyprint>13475c8e27399908b4447d7c52ab30822872832eba3a654f0d80e07fb4157673</keyprint>
  <signature>
    iEYEARECAAYFAksnyJ0ACgkQNL8k5A2w/vy9DgCfc1eOYZlp1P456NkjgvCtJaRX
    Wi4AoIGhfzr7XMzeOzOBi9A/bxopH8O4
    =MMuz
  </signature>
  <signerjid>stpeter@jabber.org</signerjid>
  <signerprint>becb78566783166f4a1a7c64e28dae288fe1a0f2825f6b593b336ce186c6b056</signerprint>
  <signtime>2009-12-14T18:43:00Z</signtime>
</attest>",
        ))
        .unwrap();
        let published = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA25/Y7oonF3+pRjZCk0cQ
    lQFiUFvyMeUOnn01NLfqfBeT4xjahsxaYFPd+V8jIHtpO3nbkpfrBh5aLPCkqDzS
    UFvmLaVSIMUt085kcT/Yv72BUWUGaISt7swSNfictRbVZ0k8TbXUDLIAYWN8lsie
    NVxL13PS9pu3WNoORuKAV5RuzDS3djnjb6fti7fTwEUpQVwRrJXY6jNhv4c4zE3x
    Pjm48gIlHbZrxuWNrXnKT6uwXnr6PJ6O3YspferJG1oA3kmOwm41yWDkalbKgkNZ
    WeS+ahB/i9LIG+41CdekPpI0Kr0Ll9X7+zaPV6xzjlG8dYy7ZGm4eTL9STuWlPdL
    +wIDAQAB13475c8e27399908b4447d7c52ab30822872832eba3a654f0d80e07f
    b4157673stpeter@jabber.orgbecb78566783166f4a1a7c64e28dae288fe1a0
    f2825f6b593b336ce186c6b0562009-12-14T18:43:00Z";
        assert_eq!(
            attestation.signed_data(EXAMPLE_DER),
            without_xml_whitespace(published).into_bytes()
        );
    }

    #[test]
    fn a_revocation_reads_back_and_the_older_element_name_is_accepted() {
        let revocation = Revocation {
            key: without_xml_whitespace(EXAMPLE_DER),
            keyprint: "iof8LEqhKyItN0TsVgWuIFBhEwHsORgp6nocM1WAUmk=".to_owned(),
            revocationprint: "iof8LEqhKyItN0TsVgWuIFBhEwHsORgp6nocM1WAUmk=".to_owned(),
            revocationtime: Timestamp::from_unix(1_260_823_756).unwrap(),
            signature: vec![9; 256],
        };
        let element = Element::from(&revocation);
        assert!(element.is("revoke", REVOKE_NS), "AMB-66: <revoke/> is sent");
        assert_eq!(Revocation::try_from(&element).unwrap(), revocation);
        let older = String::from(&element)
            .replace("<revoke ", "<revocation ")
            .replace("</revoke>", "</revocation>");
        assert_eq!(
            Revocation::try_from(&parse_document(&older).unwrap()).unwrap(),
            revocation
        );
        assert_eq!(revocation.revoked_print().unwrap().len(), 32);
        // The XEP's own example carries an OpenPGP armour checksum: not Base64, refused.
        let pgp = String::from(&element).replace(&encode_base64(&[9; 256]), "iEYEARECAAYF\n=PGFT");
        assert_eq!(
            Revocation::try_from(&parse_document(&pgp).unwrap()),
            Err(Error::InvalidBase64 {
                element: "signature"
            })
        );
    }

    #[test]
    fn an_empty_pubkey_is_a_key_request() {
        assert!(is_key_request(&element(
            "<pubkey xmlns='urn:xmpp:pubkey:2'/>"
        )));
        assert!(!is_key_request(&element(EXAMPLE_KEY)));
    }
}
