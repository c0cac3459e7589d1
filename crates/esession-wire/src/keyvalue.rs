//! XML-DSig `<KeyValue/>` public keys (ESN-17, ESN-55, AMB-17) and the identity payload that
//! `ID_A`/`ID_B` encrypt (`pubKey | sign`, ESN-20..22, ESN-28, AMB-16, AMB-61).
//!
//! Values are CryptoBinary: Base64 of the big-endian integer without leading zero octets
//! (CMN-01's MPI). Input may carry leading zero octets (a few, bounded); they are stripped at
//! parse time, so a parsed [`KeyValue`] is always canonical and
//! [`KeyValue::normalized_bytes`] (what MACs and fingerprints cover) does not depend on how the
//! peer padded its numbers.
//!
//! Both the spec form `<KeyValue xmlns='http://www.w3.org/2000/09/xmldsig#'><RSAKeyValue>..`
//! and Gajim's bare `<RSAKeyValue xmlns=..>` are accepted; only the spec form is emitted and
//! normalized (AMB-17).

use minidom::{Element, Node};

use crate::error::{Error, Result, peer_text};
use crate::normalize::normalize;
use crate::ns;
use crate::util::{
    check_attributes, check_element_only, decode_base64, encode_base64, is_xml_whitespace,
    leaf_text, text_element,
};
use crate::xml::parse_fragment;

/// Largest key component after stripping leading zeros, in bytes (16384 bits).
pub const MAX_KEY_COMPONENT_LEN: usize = 2048;
/// Leading zero octets tolerated on input before a component counts as oversized.
pub const MAX_LEADING_ZEROS: usize = 16;
/// Largest `<fingerprint/>` (a hash output), in bytes.
pub const MAX_FINGERPRINT_LEN: usize = 64;
/// Largest `<SignatureValue/>`, in bytes (an RSA-16384 signature).
pub const MAX_SIGNATURE_LEN: usize = 2048;

/// A public signature-verification key in XML-DSig `<KeyValue/>` form (ESN-55).
///
/// All numbers are big-endian without leading zero octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyValue {
    /// `<RSAKeyValue>` (MUST, ESN-17).
    Rsa {
        /// `<Modulus/>` n.
        modulus: Vec<u8>,
        /// `<Exponent/>` e.
        exponent: Vec<u8>,
    },
    /// `<DSAKeyValue>` (SHOULD, ESN-17).
    Dsa {
        /// `<P/>`.
        p: Vec<u8>,
        /// `<Q/>`.
        q: Vec<u8>,
        /// `<G/>`.
        g: Vec<u8>,
        /// `<Y/>`.
        y: Vec<u8>,
        /// Optional `<J/>`.
        j: Option<Vec<u8>>,
        /// Optional `<Seed/>` (present iff `pgen_counter` is).
        seed: Option<Vec<u8>>,
        /// Optional `<PgenCounter/>` (present iff `seed` is).
        pgen_counter: Option<Vec<u8>>,
    },
}

impl KeyValue {
    /// `pubKey` for MACs and fingerprints (ESN-17, ESN-19, ESN-21, ESN-55): NORM (CMN-06) of
    /// the spec-form `<KeyValue/>`, no `xmlns`, numbers without leading zeros.
    pub fn normalized_bytes(&self) -> Vec<u8> {
        normalize(&Element::from(self))
    }
}

impl TryFrom<&Element> for KeyValue {
    type Error = Error;

    /// Parses `<KeyValue>` holding exactly one `<RSAKeyValue/>` or `<DSAKeyValue/>`, or a bare
    /// `<RSAKeyValue/>`/`<DSAKeyValue/>` (AMB-17), all in the XML-DSig namespace. RSA needs
    /// Modulus and Exponent, DSA needs P, Q, G, Y (J optional, Seed and PgenCounter together);
    /// any order, each at most once, nothing else.
    fn try_from(el: &Element) -> Result<Self> {
        if el.is("KeyValue", ns::XMLDSIG) {
            check_attributes(el, "KeyValue", &[])?;
            check_element_only(el, "KeyValue")?;
            let mut children = el.children();
            let inner = children.next().ok_or(Error::MissingChild {
                parent: "KeyValue",
                child: "RSAKeyValue",
            })?;
            if let Some(extra) = children.next() {
                return Err(Error::UnexpectedChild {
                    parent: "KeyValue",
                    child: peer_text(extra.name()),
                });
            }
            parse_inner(inner).map_err(|e| match e {
                Error::WrongElement { .. } => Error::UnexpectedChild {
                    parent: "KeyValue",
                    child: peer_text(inner.name()),
                },
                other => other,
            })
        } else {
            parse_inner(el).map_err(|e| match e {
                Error::WrongElement { .. } => Error::WrongElement {
                    name: "KeyValue",
                    namespace: ns::XMLDSIG,
                },
                other => other,
            })
        }
    }
}

fn parse_inner(el: &Element) -> Result<KeyValue> {
    if el.is("RSAKeyValue", ns::XMLDSIG) {
        let mut parts = Components::new("RSAKeyValue", &["Modulus", "Exponent"]);
        parts.read(el)?;
        Ok(KeyValue::Rsa {
            modulus: parts.required("Modulus")?,
            exponent: parts.required("Exponent")?,
        })
    } else if el.is("DSAKeyValue", ns::XMLDSIG) {
        let mut parts = Components::new(
            "DSAKeyValue",
            &["P", "Q", "G", "Y", "J", "Seed", "PgenCounter"],
        );
        parts.read(el)?;
        let seed = parts.optional("Seed");
        let pgen_counter = parts.optional("PgenCounter");
        match (&seed, &pgen_counter) {
            (Some(_), None) => {
                return Err(Error::MissingChild {
                    parent: "DSAKeyValue",
                    child: "PgenCounter",
                });
            }
            (None, Some(_)) => {
                return Err(Error::MissingChild {
                    parent: "DSAKeyValue",
                    child: "Seed",
                });
            }
            _ => {}
        }
        Ok(KeyValue::Dsa {
            p: parts.required("P")?,
            q: parts.required("Q")?,
            g: parts.required("G")?,
            y: parts.required("Y")?,
            j: parts.optional("J"),
            seed,
            pgen_counter,
        })
    } else {
        Err(Error::WrongElement {
            name: "RSAKeyValue",
            namespace: ns::XMLDSIG,
        })
    }
}

/// Collects CryptoBinary children by name.
struct Components {
    parent: &'static str,
    names: &'static [&'static str],
    values: Vec<Option<Vec<u8>>>,
}

impl Components {
    fn new(parent: &'static str, names: &'static [&'static str]) -> Self {
        Components {
            parent,
            names,
            values: vec![None; names.len()],
        }
    }

    fn read(&mut self, el: &Element) -> Result<()> {
        check_attributes(el, self.parent, &[])?;
        check_element_only(el, self.parent)?;
        for child in el.children() {
            let index = self
                .names
                .iter()
                .position(|n| child.is(*n, ns::XMLDSIG))
                .ok_or_else(|| Error::UnexpectedChild {
                    parent: self.parent,
                    child: peer_text(child.name()),
                })?;
            let name = self.names[index];
            if self.values[index].is_some() {
                return Err(Error::DuplicateChild {
                    parent: self.parent,
                    child: name,
                });
            }
            check_attributes(child, name, &[])?;
            let text = leaf_text(child, name)?;
            self.values[index] = Some(crypto_binary(&text, name)?);
        }
        Ok(())
    }

    fn take(&mut self, name: &'static str) -> Option<Vec<u8>> {
        let index = self.names.iter().position(|n| *n == name)?;
        self.values[index].take()
    }

    /// A mandatory, non-zero component.
    fn required(&mut self, name: &'static str) -> Result<Vec<u8>> {
        let value = self.take(name).ok_or(Error::MissingChild {
            parent: self.parent,
            child: name,
        })?;
        if value.is_empty() {
            return Err(Error::EmptyValue { element: name });
        }
        Ok(value)
    }

    /// An optional component (zero allowed, encoded as empty).
    fn optional(&mut self, name: &'static str) -> Option<Vec<u8>> {
        self.take(name)
    }
}

/// Decodes CryptoBinary, strips leading zero octets, bounds the size.
fn crypto_binary(text: &str, name: &'static str) -> Result<Vec<u8>> {
    let bytes = decode_base64(text, name, MAX_KEY_COMPONENT_LEN + MAX_LEADING_ZEROS)?;
    let mpi = strip_leading_zeros(&bytes);
    if mpi.len() > MAX_KEY_COMPONENT_LEN {
        return Err(Error::LimitExceeded { what: name });
    }
    Ok(mpi.to_vec())
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn crypto_binary_element(name: &str, value: &[u8]) -> Element {
    text_element(name, ns::XMLDSIG, encode_base64(strip_leading_zeros(value)))
}

impl From<&KeyValue> for Element {
    /// The spec form `<KeyValue xmlns='http://www.w3.org/2000/09/xmldsig#'>` with
    /// `<RSAKeyValue>` (Modulus, Exponent) or `<DSAKeyValue>` (P, Q, G, Y, J, Seed,
    /// PgenCounter), numbers without leading zero octets (ESN-55).
    fn from(key: &KeyValue) -> Element {
        let inner = match key {
            KeyValue::Rsa { modulus, exponent } => Element::builder("RSAKeyValue", ns::XMLDSIG)
                .append(crypto_binary_element("Modulus", modulus))
                .append(crypto_binary_element("Exponent", exponent))
                .build(),
            KeyValue::Dsa {
                p,
                q,
                g,
                y,
                j,
                seed,
                pgen_counter,
            } => {
                let mut b = Element::builder("DSAKeyValue", ns::XMLDSIG)
                    .append(crypto_binary_element("P", p))
                    .append(crypto_binary_element("Q", q))
                    .append(crypto_binary_element("G", g))
                    .append(crypto_binary_element("Y", y));
                if let Some(j) = j {
                    b = b.append(crypto_binary_element("J", j));
                }
                if let Some(seed) = seed {
                    b = b.append(crypto_binary_element("Seed", seed));
                }
                if let Some(counter) = pgen_counter {
                    b = b.append(crypto_binary_element("PgenCounter", counter));
                }
                b.build()
            }
        };
        Element::builder("KeyValue", ns::XMLDSIG)
            .append(inner)
            .build()
    }
}

/// The `pubKey` part of an identity payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PresentedKey {
    /// `key` identification: the full public key (ESN-17).
    Key(KeyValue),
    /// `hash` identification: `<fingerprint>B64(HASH(NORM(KeyValue)))</fingerprint>` (ESN-21,
    /// AMB-16); the raw hash bytes.
    Fingerprint(Vec<u8>),
}

impl PresentedKey {
    /// The bytes of this part inside the identity payload: NORM of `<KeyValue/>` or of
    /// `<fingerprint/>`, no `xmlns`.
    ///
    /// For MACs (`mac_A`/`mac_B`) `pubKey` is always the full key's
    /// [`KeyValue::normalized_bytes`], also under `hash` identification (ESN-21, ESN-27).
    pub fn normalized_bytes(&self) -> Vec<u8> {
        match self {
            PresentedKey::Key(key) => key.normalized_bytes(),
            PresentedKey::Fingerprint(hash) => normalize(&text_element(
                "fingerprint",
                ns::XMLDSIG,
                encode_base64(hash),
            )),
        }
    }
}

/// The plaintext of `ID_A`/`ID_B` under `key` or `hash` identification: `pubKey | sign`, where
/// `sign` = `<SignatureValue>B64(signature)</SignatureValue>` (ESN-20, ESN-22, ESN-28).
///
/// (Under `none` identification the plaintext is the raw `mac_A`/`mac_B` and this type is not
/// involved.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedIdentity {
    /// The key or its fingerprint.
    pub key: PresentedKey,
    /// The raw signature bytes (`r|s` for DSA, the PKCS#1 v1.5 block for RSA; ESN-55).
    pub signature: Vec<u8>,
}

impl SignedIdentity {
    /// `pubKey | sign` as sent: both parts normalized (CMN-06), without `xmlns` (AMB-61).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.key.normalized_bytes();
        out.extend(normalize(&text_element(
            "SignatureValue",
            ns::XMLDSIG,
            encode_base64(&self.signature),
        )));
        out
    }

    /// Parses a decrypted identity payload: exactly a `<KeyValue/>` (or bare
    /// `<RSAKeyValue/>`/`<DSAKeyValue/>`, AMB-17) or `<fingerprint/>`, followed by a
    /// `<SignatureValue/>`; elements without `xmlns` are taken to be in the XML-DSig namespace,
    /// and an explicit XML-DSig `xmlns` is accepted too (AMB-61). White space between the two
    /// is tolerated; anything else, including trailing bytes, is an error.
    pub fn from_bytes(plaintext: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(plaintext).map_err(|_| Error::MalformedXml)?;
        let nodes = parse_fragment(text, ns::XMLDSIG)?;
        let mut elements = Vec::with_capacity(2);
        for node in &nodes {
            match node {
                Node::Element(el) => elements.push(el),
                Node::Text(t) if is_xml_whitespace(t) => {}
                Node::Text(_) => {
                    return Err(Error::MixedContent {
                        element: "identity".into(),
                    });
                }
            }
        }
        if let Some(extra) = elements.get(2) {
            return Err(Error::UnexpectedChild {
                parent: "identity",
                child: peer_text(extra.name()),
            });
        }
        let [key_el, sig_el] = elements.as_slice() else {
            return Err(Error::MissingChild {
                parent: "identity",
                child: "SignatureValue",
            });
        };
        let key = if key_el.is("fingerprint", ns::XMLDSIG) {
            PresentedKey::Fingerprint(base64_leaf(key_el, "fingerprint", MAX_FINGERPRINT_LEN)?)
        } else {
            PresentedKey::Key(KeyValue::try_from(*key_el)?)
        };
        if !sig_el.is("SignatureValue", ns::XMLDSIG) {
            return Err(Error::UnexpectedChild {
                parent: "identity",
                child: peer_text(sig_el.name()),
            });
        }
        let signature = base64_leaf(sig_el, "SignatureValue", MAX_SIGNATURE_LEN)?;
        Ok(SignedIdentity { key, signature })
    }
}

fn base64_leaf(el: &Element, name: &'static str, max: usize) -> Result<Vec<u8>> {
    check_attributes(el, name, &[])?;
    let bytes = decode_base64(&leaf_text(el, name)?, name, max)?;
    if bytes.is_empty() {
        return Err(Error::EmptyValue { element: name });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DS: &str = "xmlns='http://www.w3.org/2000/09/xmldsig#'";

    fn parse(xml: &str) -> Result<KeyValue> {
        let el: Element = xml.parse().unwrap();
        KeyValue::try_from(&el)
    }

    fn rsa() -> KeyValue {
        KeyValue::Rsa {
            modulus: vec![0xc5, 0x01, 0x02],
            exponent: vec![0x01, 0x00, 0x01],
        }
    }

    #[test]
    fn parses_the_spec_form_rsa_key_esn_55() {
        let key = parse(&format!(
            "<KeyValue {DS}><RSAKeyValue><Modulus>xQEC</Modulus><Exponent>AQAB</Exponent>\
             </RSAKeyValue></KeyValue>"
        ))
        .unwrap();
        assert_eq!(key, rsa());
    }

    #[test]
    fn parses_gajims_bare_rsa_key_value_amb_17() {
        let key = parse(&format!(
            "<RSAKeyValue {DS}>\n <Modulus>xQ\nEC</Modulus>\n <Exponent>AQAB</Exponent>\n</RSAKeyValue>"
        ))
        .unwrap();
        assert_eq!(key, rsa());
    }

    #[test]
    fn strips_leading_zero_octets_on_input_cmn_01() {
        // 0x00c50102 with a sign-padding zero; exponent as 0x00010001.
        let key = parse(&format!(
            "<KeyValue {DS}><RSAKeyValue><Modulus>AMUBAg==</Modulus><Exponent>AAEAAQ==</Exponent>\
             </RSAKeyValue></KeyValue>"
        ))
        .unwrap();
        assert_eq!(key, rsa());
    }

    #[test]
    fn normalizes_to_the_spec_form_without_xmlns_esn_17() {
        assert_eq!(
            String::from_utf8(rsa().normalized_bytes()).unwrap(),
            "<KeyValue><RSAKeyValue><Modulus>xQEC</Modulus><Exponent>AQAB</Exponent>\
             </RSAKeyValue></KeyValue>"
        );
        // The bare Gajim form normalizes to the same bytes once parsed (AMB-17).
        let bare = parse(&format!(
            "<RSAKeyValue {DS}><Exponent>AQAB</Exponent><Modulus>AMUBAg==</Modulus></RSAKeyValue>"
        ))
        .unwrap();
        assert_eq!(bare.normalized_bytes(), rsa().normalized_bytes());
    }

    #[test]
    fn serializes_with_leading_zeros_stripped() {
        let key = KeyValue::Rsa {
            modulus: vec![0, 0, 0xc5, 1, 2],
            exponent: vec![0, 1, 0, 1],
        };
        assert_eq!(key.normalized_bytes(), rsa().normalized_bytes());
        assert_eq!(
            String::from(&Element::from(&rsa())),
            "<KeyValue xmlns='http://www.w3.org/2000/09/xmldsig#'><RSAKeyValue>\
             <Modulus>xQEC</Modulus><Exponent>AQAB</Exponent></RSAKeyValue></KeyValue>"
        );
    }

    #[test]
    fn parses_and_serializes_dsa_keys_with_optional_parts_esn_55() {
        let xml = format!(
            "<KeyValue {DS}><DSAKeyValue><P>AQ==</P><Q>Ag==</Q><G>Aw==</G><Y>BA==</Y><J>BQ==</J>\
             <Seed>Bg==</Seed><PgenCounter>Bw==</PgenCounter></DSAKeyValue></KeyValue>"
        );
        let key = parse(&xml).unwrap();
        assert_eq!(
            key,
            KeyValue::Dsa {
                p: vec![1],
                q: vec![2],
                g: vec![3],
                y: vec![4],
                j: Some(vec![5]),
                seed: Some(vec![6]),
                pgen_counter: Some(vec![7]),
            }
        );
        assert_eq!(
            String::from_utf8(key.normalized_bytes()).unwrap(),
            "<KeyValue><DSAKeyValue><P>AQ==</P><Q>Ag==</Q><G>Aw==</G><Y>BA==</Y><J>BQ==</J>\
             <Seed>Bg==</Seed><PgenCounter>Bw==</PgenCounter></DSAKeyValue></KeyValue>"
        );
        let minimal = parse(&format!(
            "<DSAKeyValue {DS}><P>AQ==</P><Q>Ag==</Q><G>Aw==</G><Y>BA==</Y></DSAKeyValue>"
        ))
        .unwrap();
        assert!(matches!(
            minimal,
            KeyValue::Dsa {
                j: None,
                seed: None,
                pgen_counter: None,
                ..
            }
        ));
    }

    #[test]
    fn rejects_missing_duplicate_and_unknown_components() {
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus>AQ==</Modulus></RSAKeyValue>"
            )),
            Err(Error::MissingChild {
                parent: "RSAKeyValue",
                child: "Exponent"
            })
        );
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus>AQ==</Modulus><Modulus>AQ==</Modulus><Exponent>AQ==</Exponent></RSAKeyValue>"
            )),
            Err(Error::DuplicateChild {
                parent: "RSAKeyValue",
                child: "Modulus"
            })
        );
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus>AQ==</Modulus><Exponent>AQ==</Exponent><P>AQ==</P></RSAKeyValue>"
            )),
            Err(Error::UnexpectedChild {
                parent: "RSAKeyValue",
                child: "P".into()
            })
        );
        assert_eq!(
            parse(&format!(
                "<DSAKeyValue {DS}><P>AQ==</P><Q>Ag==</Q><Y>BA==</Y></DSAKeyValue>"
            )),
            Err(Error::MissingChild {
                parent: "DSAKeyValue",
                child: "G"
            })
        );
        assert_eq!(
            parse(&format!(
                "<DSAKeyValue {DS}><P>AQ==</P><Q>Ag==</Q><G>Aw==</G><Y>BA==</Y><Seed>AQ==</Seed></DSAKeyValue>"
            )),
            Err(Error::MissingChild {
                parent: "DSAKeyValue",
                child: "PgenCounter"
            })
        );
        assert_eq!(
            parse(&format!(
                "<DSAKeyValue {DS}><P>AQ==</P><Q>Ag==</Q><G>Aw==</G><Y>BA==</Y><PgenCounter>AQ==</PgenCounter></DSAKeyValue>"
            )),
            Err(Error::MissingChild {
                parent: "DSAKeyValue",
                child: "Seed"
            })
        );
    }

    #[test]
    fn rejects_malformed_wrappers() {
        assert_eq!(
            parse(&format!("<KeyValue {DS}/>")),
            Err(Error::MissingChild {
                parent: "KeyValue",
                child: "RSAKeyValue"
            })
        );
        assert_eq!(
            parse(&format!("<KeyValue {DS}><ECKeyValue/></KeyValue>")),
            Err(Error::UnexpectedChild {
                parent: "KeyValue",
                child: "ECKeyValue".into()
            })
        );
        assert_eq!(
            parse(&format!(
                "<KeyValue {DS}><RSAKeyValue><Modulus>AQ==</Modulus><Exponent>AQ==</Exponent></RSAKeyValue><RSAKeyValue/></KeyValue>"
            )),
            Err(Error::UnexpectedChild {
                parent: "KeyValue",
                child: "RSAKeyValue".into()
            })
        );
        assert_eq!(
            parse("<KeyValue xmlns='urn:other'/>"),
            Err(Error::WrongElement {
                name: "KeyValue",
                namespace: ns::XMLDSIG
            })
        );
        assert_eq!(
            parse(&format!("<KeyValue {DS}>text<RSAKeyValue/></KeyValue>")),
            Err(Error::MixedContent {
                element: "KeyValue".into()
            })
        );
        assert!(matches!(
            parse(&format!("<KeyValue {DS} Id='k'><RSAKeyValue/></KeyValue>")),
            Err(Error::UnexpectedAttribute {
                element: "KeyValue",
                ..
            })
        ));
        // Components in a foreign namespace are not components.
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus xmlns='urn:x'>AQ==</Modulus><Exponent>AQ==</Exponent></RSAKeyValue>"
            )),
            Err(Error::UnexpectedChild {
                parent: "RSAKeyValue",
                child: "Modulus".into()
            })
        );
    }

    #[test]
    fn rejects_zero_bad_base64_and_oversized_components() {
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus>AAA=</Modulus><Exponent>AQ==</Exponent></RSAKeyValue>"
            )),
            Err(Error::EmptyValue { element: "Modulus" })
        );
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus>A?==</Modulus><Exponent>AQ==</Exponent></RSAKeyValue>"
            )),
            Err(Error::InvalidBase64 { element: "Modulus" })
        );
        let big = encode_base64(&vec![0xff; MAX_KEY_COMPONENT_LEN + 1]);
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus>{big}</Modulus><Exponent>AQ==</Exponent></RSAKeyValue>"
            )),
            Err(Error::LimitExceeded { what: "Modulus" })
        );
        let mut padded = vec![0u8; MAX_LEADING_ZEROS];
        padded.extend(vec![0xff; MAX_KEY_COMPONENT_LEN]);
        let padded = encode_base64(&padded);
        let key = parse(&format!(
            "<RSAKeyValue {DS}><Modulus>{padded}</Modulus><Exponent>AQ==</Exponent></RSAKeyValue>"
        ))
        .unwrap();
        assert!(
            matches!(key, KeyValue::Rsa { modulus, .. } if modulus.len() == MAX_KEY_COMPONENT_LEN)
        );
        let too_padded = encode_base64(&vec![0u8; MAX_KEY_COMPONENT_LEN + MAX_LEADING_ZEROS + 1]);
        assert_eq!(
            parse(&format!(
                "<RSAKeyValue {DS}><Modulus>{too_padded}</Modulus><Exponent>AQ==</Exponent></RSAKeyValue>"
            )),
            Err(Error::LimitExceeded { what: "Modulus" })
        );
    }

    #[test]
    fn identity_payload_is_norm_keyvalue_then_signature_value_without_xmlns_amb_61() {
        let id = SignedIdentity {
            key: PresentedKey::Key(rsa()),
            signature: vec![9, 9, 9],
        };
        assert_eq!(
            String::from_utf8(id.to_bytes()).unwrap(),
            "<KeyValue><RSAKeyValue><Modulus>xQEC</Modulus><Exponent>AQAB</Exponent>\
             </RSAKeyValue></KeyValue><SignatureValue>CQkJ</SignatureValue>"
        );
        assert_eq!(SignedIdentity::from_bytes(&id.to_bytes()).unwrap(), id);
    }

    #[test]
    fn identity_payload_with_fingerprint_amb_16() {
        let id = SignedIdentity {
            key: PresentedKey::Fingerprint(vec![0xab; 32]),
            signature: vec![1],
        };
        let bytes = id.to_bytes();
        assert!(bytes.starts_with(b"<fingerprint>q6ur"));
        assert_eq!(SignedIdentity::from_bytes(&bytes).unwrap(), id);
    }

    #[test]
    fn identity_payload_accepts_explicit_xmlns_and_the_bare_gajim_key_amb_17_amb_61() {
        let bytes = format!(
            "<RSAKeyValue {DS}><Modulus>xQEC</Modulus><Exponent>AQAB</Exponent></RSAKeyValue>\
             <SignatureValue {DS}>CQkJ</SignatureValue>"
        );
        let id = SignedIdentity::from_bytes(bytes.as_bytes()).unwrap();
        assert_eq!(id.key, PresentedKey::Key(rsa()));
        assert_eq!(id.signature, [9, 9, 9]);
    }

    #[test]
    fn identity_payload_rejects_anything_else() {
        let key = "<KeyValue><RSAKeyValue><Modulus>xQEC</Modulus><Exponent>AQAB</Exponent></RSAKeyValue></KeyValue>";
        let sig = "<SignatureValue>CQkJ</SignatureValue>";
        assert_eq!(
            SignedIdentity::from_bytes(key.as_bytes()),
            Err(Error::MissingChild {
                parent: "identity",
                child: "SignatureValue"
            })
        );
        assert_eq!(
            SignedIdentity::from_bytes(format!("{key}{sig}{sig}").as_bytes()),
            Err(Error::UnexpectedChild {
                parent: "identity",
                child: "SignatureValue".into()
            })
        );
        assert_eq!(
            SignedIdentity::from_bytes(format!("{sig}{key}").as_bytes()),
            Err(Error::WrongElement {
                name: "KeyValue",
                namespace: ns::XMLDSIG
            })
        );
        assert_eq!(
            SignedIdentity::from_bytes(format!("{key}x{sig}").as_bytes()),
            Err(Error::MixedContent {
                element: "identity".into()
            })
        );
        assert_eq!(
            SignedIdentity::from_bytes(format!("{key}{sig}</fragment><x/>").as_bytes()),
            Err(Error::MalformedXml)
        );
        assert_eq!(
            SignedIdentity::from_bytes(format!("{key}<SignatureValue/>").as_bytes()),
            Err(Error::EmptyValue {
                element: "SignatureValue"
            })
        );
        assert_eq!(
            SignedIdentity::from_bytes(
                format!("{key}<SignatureValue xmlns='urn:x'>AQ==</SignatureValue>").as_bytes()
            ),
            Err(Error::UnexpectedChild {
                parent: "identity",
                child: "SignatureValue".into()
            })
        );
        assert_eq!(
            SignedIdentity::from_bytes(&[0xff, 0xfe]),
            Err(Error::MalformedXml)
        );
        // Raw HMAC bytes (the `none` payload) are not an identity payload.
        assert!(SignedIdentity::from_bytes(&[0x1f, 0x03, 0x11]).is_err());
    }

    fn arb_mpi() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 1..300).prop_map(|mut v| {
            if v[0] == 0 {
                v[0] = 1;
            }
            v
        })
    }

    fn arb_key() -> impl Strategy<Value = KeyValue> {
        prop_oneof![
            (arb_mpi(), arb_mpi())
                .prop_map(|(modulus, exponent)| KeyValue::Rsa { modulus, exponent }),
            (
                arb_mpi(),
                arb_mpi(),
                arb_mpi(),
                arb_mpi(),
                prop::option::of(arb_mpi()),
                prop::option::of((arb_mpi(), arb_mpi()))
            )
                .prop_map(|(p, q, g, y, j, sp)| KeyValue::Dsa {
                    p,
                    q,
                    g,
                    y,
                    j,
                    seed: sp.as_ref().map(|s| s.0.clone()),
                    pgen_counter: sp.map(|s| s.1),
                }),
        ]
    }

    proptest! {
        #[test]
        fn keys_round_trip_through_xml_and_identity_payloads(key in arb_key(), sig in prop::collection::vec(any::<u8>(), 1..100)) {
            let xml = String::from(&Element::from(&key));
            let el: Element = xml.parse().unwrap();
            prop_assert_eq!(&KeyValue::try_from(&el).unwrap(), &key);
            let id = SignedIdentity { key: PresentedKey::Key(key.clone()), signature: sig };
            let parsed = SignedIdentity::from_bytes(&id.to_bytes()).unwrap();
            prop_assert_eq!(parsed, id);
            prop_assert!(key.normalized_bytes().starts_with(b"<KeyValue><"));
        }

        #[test]
        fn identity_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(id) = SignedIdentity::from_bytes(&bytes) {
                prop_assert!(!id.signature.is_empty());
            }
        }
    }
}
